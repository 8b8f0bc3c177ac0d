-- Runtime 4: the settings of the group API's quotas and of the identity
-- block's token rules; random group ids; the index the quota of groups
-- created per user counts with; group roles as data. Each change only
-- where it is missing: a database whose recorded version is behind its
-- tables (set back by hand) runs this again, and must come out the same.

alter table iam.settings
    add column if not exists max_groups_created_per_user integer not null default 100,
    add column if not exists max_groups_per_user integer not null default 200,
    add column if not exists max_members_per_group integer not null default 1000,
    add column if not exists audience text,
    add column if not exists expiry_required boolean not null default true;

-- Up to runtime 3 the id was `generated always as identity` (1, 2, 3...).
-- An install made then keeps its ids, and new groups get random ones
-- (iam.new_group_id): the identity (and its sequence) goes, or a serial's
-- default and sequence.
declare
    seq text := pg_catalog.pg_get_serial_sequence('iam.groups', 'id');
begin
    if exists (select from pg_catalog.pg_attribute a
               where a.attrelid = 'iam.groups'::pg_catalog.regclass and a.attname = 'id' and a.attidentity <> '') then
        alter table iam.groups alter column id drop identity;
        seq := null; -- dropped with the identity
    end if;
    if not exists (
        select from pg_catalog.pg_attrdef d
        join pg_catalog.pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
        join pg_catalog.pg_depend dep on dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass and dep.objid = d.oid
        where d.adrelid = 'iam.groups'::pg_catalog.regclass and a.attname = 'id'
          and dep.refobjid = 'iam.new_group_id()'::pg_catalog.regprocedure) then
        alter table iam.groups alter column id set default iam.new_group_id();
        if seq is not null then
            execute pg_catalog.format('drop sequence %s', seq);
        end if;
    end if;
end;

create index if not exists groups_created_by_idx on iam.groups (created_by);

-- Group roles are rows the build writes from the .iam files, no longer
-- CHECKs naming member, admin and owner: a membership's role and the token
-- role are foreign keys to them (so a role still in use cannot go), and the
-- helpers read the ranks here. Seeded with the roles the CHECKs allowed,
-- so that every stored membership has its role before the keys are added
-- (adding a key reads iam.group_members once, under a lock that holds off
-- membership changes: a one-time cost of the upgrade).
-- A rank is unique when the build commits (deferred): a build that
-- reorders roles updates them one by one.
create table if not exists iam.group_roles (
    name text primary key check (length(name) between 1 and 63),
    rank integer not null check (rank > 0) unique deferrable initially deferred
);

insert into iam.group_roles (name, rank) values ('member', 1), ('admin', 2), ('owner', 3)
on conflict (name) do nothing;

alter table iam.group_members drop constraint if exists group_members_role_check;
alter table iam.settings drop constraint if exists settings_token_group_role_check;
if not exists (select from pg_catalog.pg_constraint c
               where c.conrelid = 'iam.group_members'::pg_catalog.regclass and c.conname = 'group_members_role_fkey') then
    alter table iam.group_members add constraint group_members_role_fkey
        foreign key (role) references iam.group_roles (name);
end if;
if not exists (select from pg_catalog.pg_constraint c
               where c.conrelid = 'iam.settings'::pg_catalog.regclass and c.conname = 'settings_token_group_role_fkey') then
    alter table iam.settings add constraint settings_token_group_role_fkey
        foreign key (token_group_role) references iam.group_roles (name);
end if;
-- A build that would remove a role members hold, or swap two they hold,
-- is refused with a message saying what to declare instead
-- (iam.guard_group_roles, defined before the steps).
if not exists (select from pg_catalog.pg_trigger t
               where t.tgrelid = 'iam.group_roles'::pg_catalog.regclass and t.tgname = 'group_roles_kept') then
    create trigger group_roles_kept before delete on iam.group_roles
        for each row execute function iam.guard_group_roles();
end if;
if not exists (select from pg_catalog.pg_trigger t
               where t.tgrelid = 'iam.group_roles'::pg_catalog.regclass and t.tgname = 'group_roles_ordered') then
    create trigger group_roles_ordered after update on iam.group_roles
        referencing old table as old_roles
        for each statement execute function iam.guard_group_roles();
end if;
