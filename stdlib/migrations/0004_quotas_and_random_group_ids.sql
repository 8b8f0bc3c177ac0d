-- Runtime 4: the settings of the group API's quotas and of the identity
-- block's token rules; random group ids; the index the quota of groups
-- created per user counts with. Each change only where it is missing:
-- a database whose recorded version is behind its tables (set back by
-- hand) runs this again, and must come out the same.

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
