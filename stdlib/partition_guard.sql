do $do$
-- The event trigger that locks down new partitions of a table with
-- row-level security as they are created or attached (iamc build's preamble,
-- before it switches to the owner role). Only a superuser may create an
-- event trigger, and the function it runs must belong to a superuser too:
-- it runs as whoever runs the DDL, a superuser included, so a function the
-- owner role could change would run the owner role's code with a
-- superuser's rights. Hence its own schema, iam_ddl, owned by a superuser
-- (the owner role owns schema iam and could replace anything in it). Run
-- by anyone else, or where no resource is partitioned, this does nothing.
declare
    p record;
begin
    if not coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user), false)
       or not exists (select from pg_catalog.pg_class c
                      where c.oid = any ({{tables}}::pg_catalog.oid[]) and c.relkind = 'p') then
        return;
    end if;
    create schema if not exists iam_ddl;
    if not (select r.rolsuper from pg_catalog.pg_namespace n join pg_catalog.pg_roles r on r.oid = n.nspowner where n.nspname = 'iam_ddl') then
        alter schema iam_ddl owner to current_user;
    end if;
    revoke all on schema iam_ddl from public;
    comment on schema iam_ddl is 'iamc: the function of the event trigger iam_lock_partitions, owned by a superuser (it runs as whoever runs DDL).';

    create or replace function iam_ddl.lock_partitions() returns event_trigger
        language plpgsql
        set search_path = pg_catalog, pg_temp
    as $fn$
    -- A partition is a table of its own: queried directly, the row-level
    -- security of its parent does not apply (PostgreSQL applies only the
    -- policies of the table a query names). After a command that creates or
    -- attaches a partition, changes one, or grants a privilege, every
    -- partition it concerns whose root table (or any ancestor) has row-level
    -- security gets what iamc gives every partition of a resource: row-level
    -- security enabled and forced with no policy, no privilege for anyone
    -- but its owner, and the owner of its root table as owner. It is then
    -- reached only through its parent. This runs as the role that ran the
    -- command and touches only partitions that role may change; an error
    -- here fails the command: a partition is never left open.
    declare
        cmd record;
        tables oid[] := '{}';
        everywhere boolean := false;
        p record;
        done text[];
    begin
        if current_setting('iam_ddl.locking', true) = 'on' then
            return; -- the statements below
        end if;
        for cmd in select * from pg_event_trigger_ddl_commands() loop
            if cmd.command_tag = 'GRANT' then
                -- GRANT does not say on which table: every partition.
                everywhere := everywhere or cmd.object_type = 'TABLE';
            elsif cmd.classid = 'pg_class'::regclass then
                tables := tables || cmd.objid;
            end if;
        end loop;
        if not everywhere and cardinality(tables) = 0 then
            return;
        end if;
        perform set_config('iam_ddl.locking', 'on', true);
        for p in
            select c.oid::regclass as part, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relowner,
                   r.oid::regclass as root, r.relowner as root_owner,
                   (select string_agg(case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end, ', '
                                      order by a.grantee)
                    from (select distinct x.grantee from aclexplode(c.relacl) x where x.grantee <> c.relowner) a) as grantees
            from (select t.relid from unnest(tables) x(oid), pg_partition_tree(x.oid) t
                  union
                  select x.oid from pg_class x where everywhere and x.relispartition) concerned
            join pg_class c on c.oid = concerned.relid
            join pg_class r on r.oid = pg_partition_root(c.oid)
            where c.relispartition
              and exists (select from pg_partition_ancestors(c.oid) a join pg_class ac on ac.oid = a.relid
                          where a.relid <> c.oid and ac.relrowsecurity)
              and pg_has_role(current_user, c.relowner, 'USAGE')
            order by c.oid
        loop
            done := '{}';
            if p.grantees is not null then
                execute format('revoke all on table %s from %s cascade', p.part, p.grantees);
                done := done || format('revoked the privileges of %s', p.grantees);
            end if;
            if p.relkind <> 'f' and not (p.relrowsecurity and p.relforcerowsecurity) then
                execute format('alter table %s enable row level security, force row level security', p.part);
                done := done || 'enabled and forced row-level security'::text;
            end if;
            if p.relowner <> p.root_owner then
                begin
                    execute format('alter table %s owner to %I', p.part, pg_get_userbyid(p.root_owner));
                    done := done || format('made %I its owner', pg_get_userbyid(p.root_owner));
                exception when others then
                    raise warning using
                        message = format('partition %s is owned by %s, not by %s, the owner of %s', p.part, pg_get_userbyid(p.relowner), pg_get_userbyid(p.root_owner), p.root),
                        detail = sqlerrm,
                        hint = format('alter table %s owner to %I; iamc build changes its partitions as the owner role.', p.part, pg_get_userbyid(p.root_owner));
                end;
            end if;
            if cardinality(done) > 0 then
                raise notice using
                    message = format('iam: locked down partition %s of %s: %s', p.part, p.root, array_to_string(done, ', ')),
                    detail = format('Queried directly, a partition skips the policies of %s; it is reached through %s only.', p.root, p.root);
            end if;
        end loop;
        perform set_config('iam_ddl.locking', '', true);
    end
    $fn$;
    if not (select r.rolsuper from pg_catalog.pg_proc f join pg_catalog.pg_roles r on r.oid = f.proowner
            where f.oid = 'iam_ddl.lock_partitions()'::pg_catalog.regprocedure) then
        alter function iam_ddl.lock_partitions() owner to current_user;
    end if;
    revoke all on function iam_ddl.lock_partitions() from public;
    comment on function iam_ddl.lock_partitions() is 'iamc: the event trigger iam_lock_partitions runs it after CREATE TABLE, CREATE FOREIGN TABLE, ALTER TABLE and GRANT: a partition of a table with row-level security gets row-level security enabled and forced, no privilege but its owner''s, and its root table''s owner.';

    if not exists (select from pg_catalog.pg_event_trigger e
                   where e.evtname = 'iam_lock_partitions' and e.evtevent = 'ddl_command_end'
                     and e.evtfoid = 'iam_ddl.lock_partitions()'::pg_catalog.regprocedure
                     and e.evttags::text[] operator(pg_catalog.@>) array['CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER TABLE', 'GRANT']) then
        drop event trigger if exists iam_lock_partitions;
        create event trigger iam_lock_partitions on ddl_command_end
            when tag in ('CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER TABLE', 'GRANT')
            execute function iam_ddl.lock_partitions();
    end if;
    -- Always: also under session_replication_role = replica.
    if (select e.evtenabled from pg_catalog.pg_event_trigger e where e.evtname = 'iam_lock_partitions') <> 'A' then
        alter event trigger iam_lock_partitions enable always;
    end if;
    if not (select r.rolsuper from pg_catalog.pg_event_trigger e join pg_catalog.pg_roles r on r.oid = e.evtowner
            where e.evtname = 'iam_lock_partitions') then
        alter event trigger iam_lock_partitions owner to current_user;
    end if;
    comment on event trigger iam_lock_partitions is 'iamc: locks down new partitions of tables with row-level security (iam_ddl.lock_partitions).';

    -- The partitions of the resources take their table's owner, as the
    -- event trigger gives new ones (pg_partman, run by a superuser before
    -- this build, leaves them the superuser's): the build, run as the owner
    -- role, must be able to lock them down and change the table.
    for p in
        select c.oid::pg_catalog.regclass as part, r.relowner
        from pg_catalog.pg_class r, pg_catalog.pg_partition_tree(r.oid) t
        join pg_catalog.pg_class c on c.oid = t.relid
        where r.oid = any ({{tables}}::pg_catalog.oid[]) and r.relkind = 'p' and t.level > 0 and c.relowner <> r.relowner
    loop
        execute pg_catalog.format('alter table %s owner to %I', p.part, pg_catalog.pg_get_userbyid(p.relowner));
    end loop;
end
$do$;
