-- The iam runtime, version 1: what every generated policy calls.
-- Embedded in the iamc binary and emitted at the top of every `iamc build`.
-- It runs as the owner role (the build script sets it), so every object
-- here is owned by that role. Nothing here writes on the read path:
-- PostgREST runs GET and HEAD in READ ONLY transactions.

create table if not exists iam.runtime (
    singleton boolean primary key default true check (singleton),
    version integer not null,
    installed_at timestamptz not null default now()
);

comment on table iam.runtime is
    'Which iam runtime version iamc installed here; a newer iamc upgrades it in place, an older one refuses to run.';

do $do$
declare
    installed integer;
begin
    select version into installed from iam.runtime;
    if installed > 1 then
        raise exception using
            errcode = '55000',
            message = format('the iam runtime in this database is version %s, newer than this iamc (version 1)', installed),
            detail = 'Applying older policies over a newer runtime could remove protections it added.',
            hint = 'Build with the iamc release that installed it, or a newer one.';
    end if;
end
$do$;

insert into iam.runtime (version) values (1)
on conflict (singleton) do update set version = excluded.version, installed_at = now()
where iam.runtime.version is distinct from excluded.version;

create or replace function iam.claims() returns jsonb
    language sql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
    select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$fn$;

comment on function iam.claims() is
    'The JWT claims PostgREST set for this request (request.jwt.claims), or {} outside a request. Read-only.';

create or replace function iam.user_id_text(claim text) returns text
    language sql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
    select nullif(iam.claims() ->> claim, '')
$fn$;

comment on function iam.user_id_text(text) is
    'The caller''s user id as text, from the named claim; NULL when the request has none. Policies call it as (select ...) so it runs once per statement.';

create or replace function iam.user_id_uuid(claim text) returns uuid
    language plpgsql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- The text is checked before the cast instead of catching the cast's error:
-- an exception block starts a subtransaction, which PostgreSQL forbids in a
-- parallel query (a count over a large table is planned in parallel).
declare
    raw text := nullif(iam.claims() ->> claim, '');
begin
    if raw !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        raise exception using
            errcode = '28000',
            message = format('the JWT claim %s is not a uuid', claim),
            detail = format('This API identifies users by the uuid in the %s claim; the token carries %s.', claim, raw),
            hint = 'Use a token whose subject is a uuid, or declare `identity { type text }` when users come from a federated provider.';
    end if;
    return raw::uuid;
end
$fn$;

comment on function iam.user_id_uuid(text) is
    'The caller''s user id as a uuid, cast once; NULL when the request has none; SQLSTATE 28000 (HTTP 403 in PostgREST) when it is not a uuid. Policies call it as (select ...) so it runs once per statement.';

create or replace function iam.bypasses_rls() returns boolean
    language sql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
    select coalesce((select rolsuper or rolbypassrls from pg_roles where rolname = current_user), false)
$fn$;

comment on function iam.bypasses_rls() is
    'True for roles that RLS does not apply to (superusers, BYPASSRLS): backend jobs that may set or change owners explicitly.';

create or replace function iam.guard_owner() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $fn$
-- Arguments: owner column, identity claim, identity type (uuid or text).
declare
    owner_column text := tg_argv[0];
    claim text := tg_argv[1];
    caller text := case tg_argv[2]
        when 'uuid' then iam.user_id_uuid(claim)::text
        else iam.user_id_text(claim)
    end;
    new_owner text := to_jsonb(new) ->> owner_column;
begin
    if tg_op = 'INSERT' then
        if caller is null then
            if iam.bypasses_rls() then
                return new;
            end if;
            raise exception using
                errcode = '28000',
                message = format('cannot create a row in %I.%I without a user id', tg_table_schema, tg_table_name),
                detail = format('Rows are owned by the caller, named by the %s claim of the JWT, and this request has none.', claim),
                hint = format('Sign in and send a JWT with a %s claim.', claim);
        end if;
        if new_owner is null then
            new := jsonb_populate_record(new, jsonb_build_object(owner_column, caller));
        elsif new_owner is distinct from caller then
            raise exception using
                errcode = '42501',
                message = format('%s must be the caller''s own user id', owner_column),
                detail = format('A row of %I.%I is created by, and owned by, the caller.', tg_table_schema, tg_table_name),
                hint = format('Leave %s out of the request: it is filled from the JWT.', owner_column);
        end if;
    elsif new_owner is distinct from (to_jsonb(old) ->> owner_column) and not iam.bypasses_rls() then
        raise exception using
            errcode = '42501',
            message = format('the owner of a row of %I.%I cannot be changed', tg_table_schema, tg_table_name),
            detail = format('%s is fixed when the row is created.', owner_column),
            hint = format('Leave %s out of the update; ownership transfer is not offered by this version of iamc.', owner_column);
    end if;
    return new;
end
$fn$;

comment on function iam.guard_owner() is
    'Trigger: fills the owner column from the JWT on INSERT, rejects a forged owner, and keeps the owner immutable on UPDATE. RLS cannot compare OLD and NEW, so this is a trigger.';

create or replace procedure iam.grant_serial_sequences(tbl regclass, grantee name)
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $fn$
-- serial columns draw from sequences the inserting role must be able to use;
-- identity columns need no grant, so only 'a' (auto) dependencies count.
declare
    seq regclass;
begin
    for seq in
        select d.objid::regclass
        from pg_depend d
        join pg_class c on c.oid = d.objid and c.relkind = 'S'
        where d.refobjid = tbl and d.classid = 'pg_class'::regclass and d.deptype = 'a'
        order by 1
    loop
        execute format('grant usage on sequence %s to %I', seq, grantee);
    end loop;
end
$fn$;

comment on procedure iam.grant_serial_sequences(regclass, name) is
    'Build-time helper: grants USAGE on the serial sequences of a table to the role that inserts into it.';
