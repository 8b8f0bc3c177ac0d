-- The iam runtime, version {{version}}: what every generated policy calls.
-- Embedded in the iamc binary and emitted at the top of every `iamc build`.
-- It runs as the owner role (the build script sets it), so every object
-- here is owned by that role. Nothing here writes on the read path:
-- PostgREST runs GET and HEAD in READ ONLY transactions.
--
-- Two layers. The tables (and their stored data) change by the steps of
-- stdlib/migrations, each run once: only where the installed runtime is
-- older than the step's number (stdlib.go puts them after the version
-- check below). The rest, functions and comments, is run again by every
-- build (create or replace), so a change to it needs no step.

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
    if installed > {{version}} then
        raise exception using
            errcode = '55000',
            message = format('the iam runtime in this database is version %s, newer than this iamc (version {{version}})', installed),
            detail = 'Applying older policies over a newer runtime could remove protections it added.',
            hint = 'Build with the iamc release that installed it, or a newer one.';
    end if;
end
$do$;

create table if not exists iam.migrations (
    name text primary key,
    step integer not null,
    applied_at timestamptz not null default now()
);

comment on table iam.migrations is
    'The steps of stdlib/migrations (the runtime''s table changes) that ran here, by file name, with the runtime version that brought each (step), and when. A step runs only where iam.runtime says an older version; runtimes 1 to 3 ran none (their tables are those of the steps up to their version).';

-- Before the steps: iam.groups.id defaults to it (step 4).
create or replace function iam.new_group_id() returns bigint
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $fn$
-- A sequential id tells whoever creates a group how many groups there are
-- and how fast they come; a random one tells nothing. 53 bits, so that the
-- id stays exact in JavaScript (Number.MAX_SAFE_INTEGER is 2^53 - 1), from
-- gen_random_uuid (core since PostgreSQL 13, a strong random source):
-- hex digits 1-12 and 14-15 of a version 4 uuid are random (digit 13 is
-- its version). Not unique by itself: iam.create_group retries on the
-- rare collision.
declare
    hex text;
    id bigint;
begin
    loop
        hex := replace(gen_random_uuid()::text, '-', '');
        id := ('x' || substr(hex, 1, 12) || substr(hex, 14, 2))::bit(56)::bigint >> 3;
        exit when id > 0;
    end loop;
    return id;
end
$fn$;

comment on function iam.new_group_id() is
    'A random group id in [1, 2^53): the default of iam.groups.id. Sequential ids would tell every user how many groups exist.';

-- Before the steps: step 4 puts it on iam.group_roles as triggers. Every
-- build writes the roles of the .iam files into that table (an upsert of
-- their ranks, then a delete of the roles no longer declared); these say,
-- plainly, why a build that would take access from members stops.
create or replace function iam.guard_group_roles() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    n bigint;
    swapped record;
begin
    if tg_op = 'DELETE' then
        -- A role still held: the membership's foreign key would refuse the
        -- delete anyway (23503), with a message about constraints.
        select count(*) into n from iam.group_members m where m.role = old.name;
        if n > 0 then
            raise exception using
                errcode = '23503',
                message = format('group role %s is still held by %s membership(s), and the .iam files no longer declare it', old.name, n),
                detail = 'Removing the role would take from those members what rules for it (and for the roles below it) give them; nothing was changed.',
                hint = format('Declare %s again in the groups block''s roles, or move its memberships to a declared role: role %s becomes ROLE.', old.name, old.name);
        end if;
        return old;
    end if;
    -- UPDATE, once per statement: ranks that changed (a role inserted
    -- between two moves the ones above it). Roles that memberships hold
    -- must keep their order: a rule for one applies to the roles above it,
    -- so swapping two would give one's members what the other had.
    if not exists (select from old_roles) then
        return null;
    end if;
    with held as (
        select r.name, r.rank, coalesce(o.rank, r.rank) as old_rank
        from iam.group_roles r
        left join old_roles o on o.name = r.name
        where exists (select from iam.group_members m where m.role = r.name)
           or r.name = (select s.token_group_role from iam.settings s)
    )
    select a.name as raised, b.name as passed into swapped
    from held a join held b on a.rank > b.rank and a.old_rank < b.old_rank
    limit 1;
    if found then
        raise exception using
            errcode = '55000',
            message = format('the .iam files put group role %s above %s, which members hold in the other order', swapped.raised, swapped.passed),
            detail = 'Every rule for one of them would then cover the other''s members: some would gain access, others lose it; nothing was changed.',
            hint = 'Keep the installed order of roles members hold (new roles may go anywhere between them), or move the memberships with role X becomes Y.';
    end if;
    return null;
end
$fn$;

comment on function iam.guard_group_roles() is
    'Triggers on iam.group_roles: a build may not remove a role memberships hold (23503), nor reorder two roles memberships hold (55000); the messages say what to write in the groups block instead.';

{{migrations}}

-- After the steps, which read the version installed before.
insert into iam.runtime (version) values ({{version}})
on conflict (singleton) do update set version = excluded.version, installed_at = now()
where iam.runtime.version is distinct from excluded.version;

create or replace function iam.claims() returns jsonb
    language sql stable parallel safe
as $fn$
    -- No SET clause, so PostgreSQL inlines it into its callers (every helper
    -- reads the claims through it). Without a pinned search_path, nothing
    -- here may depend on one: functions, types and operators are
    -- schema-qualified (no NULLIF: its = would be looked up). Not a
    -- definer: it runs with the caller's rights.
    select case
        when pg_catalog.current_setting('request.jwt.claims', true) operator(pg_catalog.<>) ''
            then pg_catalog.current_setting('request.jwt.claims', true)::pg_catalog.jsonb
        else '{}'::pg_catalog.jsonb
    end
$fn$;

comment on function iam.claims() is
    'The JWT claims PostgREST set for this request (request.jwt.claims), or {} outside a request. Read-only.';

-- ---------------------------------------------------------------------------
-- Revocation: a deny list, consulted wherever the caller's id is computed.
-- A JWT stays valid until it expires, even after the user is disabled in
-- Keycloak. A DBA blocks the subject here, and the helpers below that
-- compute the caller's id (so every policy with an owner or group arm, the
-- row guard and the group API) refuse it: no PostgREST setting is needed.
-- It only reads: it runs in READ ONLY transactions and on hot standbys.
-- ---------------------------------------------------------------------------

comment on table iam.blocked_subjects is
    'Subjects (values of the identity claim) the runtime refuses (SQLSTATE 28000) wherever it computes the caller''s id: every token, or only tokens issued (iat) before tokens_issued_before. Written by iam.block_subject and iam.unblock_subject; no runtime role can read it.';

-- A SECURITY DEFINER function the runtime roles may execute says so with
-- [runtime-callable] in its comment (iamc lint, IAM008): it
-- answers only about the caller (their id, token, groups, role in a group)
-- or checks the caller's rights before it touches anyone else's data.
-- Definers without it (iam.refuse_blocked, iam.group_exists, ...) are
-- called only by other definers, or by the owner, and granted to no one.

create or replace function iam.refuse_blocked(subject text, shown text) returns void
    language plpgsql stable parallel safe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- Called once a probe found the subject (its deny list key) on the list, so
-- the common path pays only for the probe: raises 28000 (HTTP 403), unless
-- the block is for older tokens and this one was issued since.
declare
    b iam.blocked_subjects;
    claims jsonb;
begin
    select * into b from iam.blocked_subjects where blocked_subjects.subject = refuse_blocked.subject;
    if not found then
        return;
    end if;
    if b.tokens_issued_before is not null then
        claims := iam.claims();
        if jsonb_typeof(claims -> 'iat') = 'number'
           and to_timestamp((claims ->> 'iat')::double precision) >= b.tokens_issued_before then
            return;
        end if;
        raise exception using
            errcode = '28000',
            message = 'this token was revoked',
            detail = format('Tokens of this user issued before %s are no longer accepted.', b.tokens_issued_before),
            hint = 'Sign in again to get a new token.';
    end if;
    raise exception using
        errcode = '28000',
        message = 'this user is blocked',
        detail = format('Access of %s was revoked at %s.', left(shown, 100), b.blocked_at),
        hint = 'Ask an administrator; signing in again does not lift a block.';
end
$fn$;

comment on function iam.refuse_blocked(text, text) is
    'Raises 28000 for a subject on the deny list (every token, or tokens issued before tokens_issued_before); shown is the subject as the token spells it, for the message. Definer: the list is not readable by the runtime roles.';

create or replace function iam.refuse_user_id_type(claim text, value jsonb) returns void
    language plpgsql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- The one refusal of a user id claim that is not a JSON string, shared by
-- iam.user_id_text and iam.user_id_uuid (called only when refusing).
begin
    raise exception using
        errcode = '28000',
        message = format('the JWT claim %s is not a string', claim),
        detail = format('A user id is a JSON string; the token carries a %s: %s.', jsonb_typeof(value), left(value::text, 100)),
        hint = format('Map the user id to a string claim in the identity provider (Keycloak''s %s always is one).', claim);
end
$fn$;

comment on function iam.refuse_user_id_type(text, jsonb) is
    'Raises 28000: the named claim holds a number, object, array or boolean where a user id (a JSON string) belongs.';

-- ---------------------------------------------------------------------------
-- The caller's context: who the caller is (their user id, checked against
-- the deny list) and their groups (each role's group ids), computed at most
-- once per statement and read by everything that asks in that statement:
-- the arms of every policy (each (select ...) is an InitPlan of its own),
-- the row guard, the page functions, the shared-rows helpers.
--
-- Where: transaction-local settings (set_config(..., true)), keyed by the
-- statement's start (statement_timestamp(), one per client statement) and
-- the request's claims, so a later statement, or a statement with other
-- claims, computes afresh; a change of memberships, groups, group roles,
-- settings or the deny list in this transaction clears them at once
-- (iam.forget_caller, a statement trigger on each). The readers below are
-- SQL functions PostgreSQL inlines into the policy: a statement that finds
-- the context pays for reading a setting, not for a function call.
--
-- Writing a setting is not allowed while a parallel plan runs, so every
-- function that may compute the context is PARALLEL UNSAFE, and so are the
-- policies that call them: a statement on a protected table is planned
-- without parallel workers (SPEC, "The caller's context").
--
-- Trust: a role that may run SQL can write these settings, as it can write
-- request.jwt.claims itself; PostgREST's clients can do neither.
-- ---------------------------------------------------------------------------

create or replace function iam.caller_key() returns text
    language sql stable parallel unsafe
as $fn$
    -- Inlined (no SET clause): functions and operators are schema-qualified.
    select pg_catalog.statement_timestamp()::pg_catalog.text
        operator(pg_catalog.||) ' '
        operator(pg_catalog.||) coalesce(pg_catalog.current_setting('request.jwt.claims', true), '')
$fn$;

comment on function iam.caller_key() is
    'The key of the caller''s context: this statement''s start and the request''s claims. A context saved under another key is not read.';

create or replace function iam.forget_caller() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $fn$
-- After any statement that changes who is in which group, the groups, their
-- roles, the settings or the deny list: the next question about the caller
-- in this transaction is answered afresh.
begin
    perform set_config('iam.caller_key', '', true),
            set_config('iam.caller_id_key', '', true),
            set_config('iam.caller_groups_key', '', true);
    return null;
end
$fn$;

comment on function iam.forget_caller() is
    'Statement trigger: clears the caller''s context of this transaction after a change of memberships, groups, group roles, settings or the deny list.';

create or replace trigger forget_caller after insert or update or delete or truncate on iam.group_members
    for each statement execute function iam.forget_caller();
create or replace trigger forget_caller after insert or update or delete or truncate on iam.groups
    for each statement execute function iam.forget_caller();
create or replace trigger forget_caller after insert or update or delete or truncate on iam.group_roles
    for each statement execute function iam.forget_caller();
create or replace trigger forget_caller after insert or update or delete or truncate on iam.settings
    for each statement execute function iam.forget_caller();
create or replace trigger forget_caller after insert or update or delete or truncate on iam.blocked_subjects
    for each statement execute function iam.forget_caller();

create or replace function iam.compute_user_id_text(claim text) returns text
    language plpgsql stable parallel unsafe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- Only a JSON string is a user id: a number, object or array in the claim is
-- refused rather than turned into text that could equal someone's id.
-- (No exception block: see iam.compute_user_id_uuid.) Definer: it reads the
-- deny list, keyed by iam.canonical_subject. Remembers its answer for the
-- statement (iam.user_id_text reads it).
declare
    value jsonb := iam.claims() -> claim;
    raw text;
    deny_key text;
begin
    if value is null or jsonb_typeof(value) = 'null' then
        return null;
    end if;
    if jsonb_typeof(value) <> 'string' then
        perform iam.refuse_user_id_type(claim, value);
    end if;
    raw := nullif(value #>> '{}', '');
    if raw is null then
        return null;
    end if;
    deny_key := iam.canonical_subject(raw);
    if exists (select from iam.blocked_subjects b where b.subject = deny_key) then
        perform iam.refuse_blocked(deny_key, raw);
    end if;
    perform set_config('iam.caller_key', iam.caller_key(), true),
            set_config('iam.caller_claim', 'text ' || claim, true),
            set_config('iam.caller_uid', raw, true);
    return raw;
end
$fn$;

comment on function iam.compute_user_id_text(text) is
    '[runtime-callable] iam.user_id_text when the statement has not computed it yet: the caller''s user id as text from the named claim, checked (28000 when not a string, or blocked), and remembered for the statement.';

create or replace function iam.user_id_text(claim text) returns text
    language sql stable parallel unsafe
as $fn$
    select case
        when pg_catalog.current_setting('iam.caller_key', true) operator(pg_catalog.=) iam.caller_key()
         and pg_catalog.current_setting('iam.caller_claim', true) operator(pg_catalog.=) ('text ' operator(pg_catalog.||) claim)
        then pg_catalog.current_setting('iam.caller_uid', true)
        else iam.compute_user_id_text(claim)
    end
$fn$;

comment on function iam.user_id_text(text) is
    '[runtime-callable] The caller''s user id as text, from the named claim; NULL when the request has none (or an empty one); SQLSTATE 28000 when the claim is not a JSON string or the subject is blocked. Computed once per statement (the caller''s context); policies call it as (select ...).';

create or replace function iam.compute_user_id_uuid(claim text) returns uuid
    language plpgsql stable parallel unsafe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- The text is checked before the cast instead of catching the cast's error:
-- an exception block starts a subtransaction, which costs more than the
-- check. Definer: it reads the deny list, where a uuid is kept in lower
-- case. Remembers its answer for the statement (iam.user_id_uuid reads it).
declare
    value jsonb := iam.claims() -> claim;
    raw text;
begin
    -- iam.compute_user_id_text's type check, inline (not a call of it): a
    -- nested call costs as much as the check.
    if value is null or jsonb_typeof(value) = 'null' then
        return null;
    end if;
    if jsonb_typeof(value) <> 'string' then
        perform iam.refuse_user_id_type(claim, value);
    end if;
    raw := nullif(value #>> '{}', '');
    if raw is null then
        return null;
    end if;
    if raw !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        raise exception using
            errcode = '28000',
            message = format('the JWT claim %s is not a uuid', claim),
            detail = format('This API identifies users by the uuid in the %s claim; the token carries %s.', claim, left(raw, 100)),
            hint = 'Use a token whose subject is a uuid, or declare `identity { type text }` when users come from a federated provider.';
    end if;
    -- One primary-key probe per statement; an empty list costs about as
    -- much as an empty index.
    raw := lower(raw);
    if exists (select from iam.blocked_subjects b where b.subject = raw) then
        perform iam.refuse_blocked(raw, value #>> '{}');
    end if;
    perform set_config('iam.caller_key', iam.caller_key(), true),
            set_config('iam.caller_claim', 'uuid ' || claim, true),
            set_config('iam.caller_uid', raw, true);
    return raw::uuid;
end
$fn$;

comment on function iam.compute_user_id_uuid(text) is
    '[runtime-callable] iam.user_id_uuid when the statement has not computed it yet: the caller''s user id as a uuid from the named claim, checked (28000 when not a uuid, or blocked), and remembered for the statement.';

create or replace function iam.user_id_uuid(claim text) returns uuid
    language sql stable parallel unsafe
as $fn$
    select case
        when pg_catalog.current_setting('iam.caller_key', true) operator(pg_catalog.=) iam.caller_key()
         and pg_catalog.current_setting('iam.caller_claim', true) operator(pg_catalog.=) ('uuid ' operator(pg_catalog.||) claim)
        then pg_catalog.current_setting('iam.caller_uid', true)::pg_catalog.uuid
        else iam.compute_user_id_uuid(claim)
    end
$fn$;

comment on function iam.user_id_uuid(text) is
    '[runtime-callable] The caller''s user id as a uuid, cast once; NULL when the request has none; SQLSTATE 28000 (HTTP 403 in PostgREST) when it is not a uuid or the subject is blocked. Computed once per statement (the caller''s context); policies call it as (select ...).';

create or replace function iam.bypasses_rls() returns boolean
    language plpgsql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- The helpers on the request path are PL/pgSQL, not SQL: PL/pgSQL keeps its
-- plans from one transaction to the next, while a SQL function that cannot
-- be inlined (a SET clause, a definer) is planned again in every request.
begin
    return coalesce((select rolsuper or rolbypassrls from pg_roles where rolname = current_user), false);
end
$fn$;

comment on function iam.bypasses_rls() is
    'True for roles that RLS does not apply to (superusers, BYPASSRLS): backend jobs that may set or change owners explicitly.';

comment on table iam.settings is
    'The identity and group settings of the .iam files, written by every iamc build; read by the helpers below.';

create or replace function iam.compute_caller_id() returns text
    language plpgsql stable parallel unsafe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- iam.caller_id when the statement has not asked yet: the identity claim
-- and type from the settings, the id from the caller's context (computed
-- there once), remembered in canonical text ('' for none).
declare
    s iam.settings;
    me text;
begin
    select * into s from iam.settings;
    if s.identity_type = 'uuid' then
        me := iam.user_id_uuid(s.identity_claim)::text;
    else
        me := iam.user_id_text(s.identity_claim);
    end if;
    perform set_config('iam.caller_id_key', iam.caller_key(), true),
            set_config('iam.caller_id', coalesce(me, ''), true);
    return me;
end
$fn$;

comment on function iam.compute_caller_id() is
    '[runtime-callable] iam.caller_id when the statement has not asked yet: reads iam.settings (definer) and remembers the answer for the statement.';

create or replace function iam.caller_id() returns text
    language sql stable parallel unsafe
as $fn$
    select case
        when pg_catalog.current_setting('iam.caller_id_key', true) operator(pg_catalog.=) iam.caller_key()
        then case when pg_catalog.current_setting('iam.caller_id', true) operator(pg_catalog.=) '' then null
                  else pg_catalog.current_setting('iam.caller_id', true) end
        else iam.compute_caller_id()
    end
$fn$;

comment on function iam.caller_id() is
    '[runtime-callable] The caller''s user id in canonical text form (a uuid is normalised), as stored in iam.group_members; NULL without one. Once per statement (the caller''s context).';

create or replace function iam.identity_claim() returns text
    language plpgsql stable parallel safe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
begin
    return (select identity_claim from iam.settings);
end
$fn$;

comment on function iam.identity_claim() is
    '[runtime-callable] The JWT claim holding the user id, for error messages.';

create or replace function iam.has_realm_role(role_name text) returns boolean
    language plpgsql stable parallel unsafe
    set search_path = pg_catalog, pg_temp
as $fn$
-- Only an array counts: jsonb's ? also matches an object's keys and a bare
-- string, so {"roles": "iam-admin"} must not make an admin.
declare
    roles jsonb := iam.claims() -> 'realm_access' -> 'roles';
begin
    if jsonb_typeof(roles) = 'array' and roles ? role_name then
        -- A realm role does not outrank the deny list: computing the
        -- caller's id refuses a blocked admin.
        perform iam.caller_id();
        return true;
    end if;
    return false;
end
$fn$;

comment on function iam.has_realm_role(text) is
    'Does the Keycloak token list this realm role in realm_access.roles? Used for the declared admin role.';

create or replace function iam.is_admin() returns boolean
    language plpgsql stable parallel unsafe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    admin_role text := (select s.admin_role from iam.settings s);
begin
    return admin_role is not null and iam.has_realm_role(admin_role);
end
$fn$;

comment on function iam.is_admin() is
    '[runtime-callable] True when the .iam files declare an admin realm role and the token carries it: such callers bypass the row rules.';

comment on table iam.group_roles is
    'The group roles of the .iam files and their order (rank, lowest first): a rule for a role applies to the roles above it. Written by every iamc build; memberships and the token role refer to it.';

create or replace function iam.role_rank(role_name text) returns integer
    language plpgsql stable parallel safe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- Definer: the row guard asks it as the caller (iam.check_group_entry),
-- who cannot read iam.group_roles. The ranks are the .iam files' roles,
-- the same for everyone. Not for a call per row: a join with
-- iam.group_roles costs less (iam.my_groups, the group API's view).
begin
    return (select r.rank from iam.group_roles r where r.name = role_name);
end
$fn$;

comment on function iam.role_rank(text) is
    '[runtime-callable] The rank of a group role (iam.group_roles: member < admin < owner); NULL for a role the .iam files do not declare. A rule for a role applies to the roles above it.';

create or replace function iam.manage_role() returns text
    language plpgsql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- The lowest role that manages a group's members: admin when the .iam
-- files declare it, else owner. A build whose groups block says `members
-- managed by R` replaces this function with one that answers R (after
-- this file, so a build without it puts this one back).
begin
    if exists (select from iam.group_roles r where r.name = 'admin') then
        return 'admin';
    end if;
    return 'owner';
end
$fn$;

comment on function iam.manage_role() is
    'The lowest group role that manages members (adds, removes, changes roles up to its own rank): admin when declared, else owner; a build whose groups block says members managed by R replaces it.';

create or replace function iam.token_subgroups() returns table (name text, role text)
    language plpgsql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- The Keycloak subgroups that confer a role in the group above them: none.
-- A build whose groups block declares `token subgroup 'managers' as
-- manager` replaces this function with one that lists them (after this
-- file, so a build without them puts this one back).
begin
    return;
end
$fn$;

comment on function iam.token_subgroups() is
    'The Keycloak subgroups (token subgroup ... as ...) whose path under a group''s token name confers a role in that group: none; a build that declares some replaces it.';

create or replace function iam.token_roles(paths text[], token_role text) returns table (group_id bigint, role text)
    language plpgsql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- The token's group paths as memberships: a group whose token_name is a
-- path, with the token role; and, for each declared subgroup, a group whose
-- token_name is a path without its last segment /<subgroup>, with the
-- subgroup's role (/campus/chicago/managers: /campus/chicago as manager).
-- Only token names a DBA set are matched, so nobody claims a group. Not a
-- definer: the definers that list the caller's groups call it.
begin
    if cardinality(paths) = 0 then
        return;
    end if;
    return query
    select g.id, token_role from iam.groups g where g.token_name = any (paths);
    return query
    select g.id, sub.role
    from iam.token_subgroups() sub
    join lateral (select left(p, -length(sub.name) - 1) as parent
                  from unnest(paths) p
                  where right(p, length(sub.name) + 1) = '/' || sub.name) t on true
    join iam.groups g on g.token_name = t.parent;
end
$fn$;

comment on function iam.token_roles(text[], text) is
    'The memberships the token''s group paths give: groups whose token_name is a path (with the token role), and groups whose token_name is a path above a declared subgroup (with the subgroup''s role). Called by the definers that list the caller''s groups.';

create or replace function iam.role_holders(min_role text) returns text
    language plpgsql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- Who holds min_role or a higher one, for messages, highest first:
-- 'owners and admins'.
declare
    names text[] := array(select r.name || 's' from iam.group_roles r
                          where r.rank >= (select m.rank from iam.group_roles m where m.name = min_role)
                          order by r.rank desc);
begin
    if cardinality(names) < 2 then
        return coalesce(names[1], min_role || 's');
    end if;
    return array_to_string(names[1:cardinality(names) - 1], ', ') || ' and ' || names[cardinality(names)];
end
$fn$;

comment on function iam.role_holders(text) is
    'The roles at min_role or above, highest first, as the group API''s messages name them: owners and admins.';

comment on table iam.groups is
    'Groups. token_name, when set by a DBA, is a Keycloak group path (e.g. /team-a): tokens naming it count as memberships.';

comment on table iam.group_members is
    'Who is in which group, with which role. Only the iam functions write it; no runtime role can read it directly.';

create or replace function iam.token_groups(claim text) returns text[]
    language plpgsql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- Only the string elements of an array name groups: a number, object or
-- nested array is ignored rather than compared as its JSON text. PL/pgSQL
-- keeps its plan between calls. Most tokens carry no groups claim: a look
-- at the raw text spares parsing the claims (a claim name written with
-- JSON escapes is not seen, which only withholds its groups, from every
-- caller alike).
declare
    value jsonb;
begin
    if strpos(current_setting('request.jwt.claims', true), '"' || claim || '"') is distinct from 0 then
        value := iam.claims() -> claim;
    end if;
    if jsonb_typeof(value) is distinct from 'array' or jsonb_array_length(value) = 0 then
        return '{}';
    end if;
    return array(select e #>> '{}' from jsonb_array_elements(value) e where jsonb_typeof(e) = 'string');
end
$fn$;

comment on function iam.token_groups(text) is
    'The group paths the token lists in the named claim (Keycloak''s Group Membership mapper): its string elements; {} when the claim is missing or not an array.';

create or replace function iam.my_groups() returns table (group_id bigint, role text)
    language plpgsql stable parallel unsafe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- Database memberships, plus the groups named in the token's groups claim
-- (with the declared token role); the higher role wins.
declare
    me text := iam.caller_id();
    s iam.settings;
begin
    select * into s from iam.settings;
    return query
    select m.group_id, m.role
    from (
        select gm.group_id, gm.role
        from iam.group_members gm
        where gm.user_id = me
        union all
        select t.group_id, t.role
        from iam.token_roles(iam.token_groups(s.token_groups_claim), s.token_group_role) t
        where s.token_groups_claim is not null
    ) m
    join iam.group_roles r on r.name = m.role
    where me is not null or s.token_groups_claim is not null
    order by m.group_id, r.rank desc;
end
$fn$;

comment on function iam.my_groups() is
    '[runtime-callable] The caller''s groups and role in each (a group may appear twice, highest role first). Definer: group tables are not readable by the runtime roles.';

create or replace function iam.compute_group_ids(min_role text) returns bigint[]
    language plpgsql stable parallel unsafe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- The caller's groups, for every role at once: one index lookup of their
-- memberships (and, when the token lists groups, one of the token names),
-- remembered for the statement as each role's group ids (a role's ids are
-- the groups where the caller has that role or a higher one), so the other
-- roles' arms of the statement's policies read them too. A group may
-- appear twice (a membership and a token group), which = any does not mind.
declare
    s iam.settings;
    me text;
    token_groups text[];
    ids bigint[];
    ranks integer[];
begin
    select * into s from iam.settings;
    if s.identity_type = 'uuid' then
        me := iam.user_id_uuid(s.identity_claim)::text;
    else
        me := iam.user_id_text(s.identity_claim);
    end if;
    if s.token_groups_claim is not null then
        token_groups := iam.token_groups(s.token_groups_claim);
    end if;
    if me is not null then
        select array_agg(gm.group_id), array_agg(r.rank) into ids, ranks
        from iam.group_members gm
        join iam.group_roles r on r.name = gm.role
        where gm.user_id = me;
    end if;
    if cardinality(token_groups) > 0 then
        select ids || array_agg(t.group_id), ranks || array_agg(r.rank) into ids, ranks
        from iam.token_roles(token_groups, s.token_group_role) t
        join iam.group_roles r on r.name = t.role;
    end if;
    -- Role names are identifiers (the .iam files'); a name that could not
    -- be a setting's is not remembered, and asked afresh.
    perform set_config('iam.caller_groups_' || r.name,
                       coalesce(array(select u.id from unnest(ids, ranks) u (id, rank) where u.rank >= r.rank), '{}')::text, true)
    from iam.group_roles r
    where r.name ~ '^[a-z_][a-z0-9_]*$';
    perform set_config('iam.caller_groups_key', iam.caller_key(), true);
    return coalesce(current_setting('iam.caller_groups_' || min_role, true)::bigint[],
                    array(select u.id from unnest(ids, ranks) u (id, rank)
                          where u.rank >= (select r.rank from iam.group_roles r where r.name = min_role)));
end
$fn$;

comment on function iam.compute_group_ids(text) is
    '[runtime-callable] iam.group_ids when the statement has not computed the caller''s groups yet: computes them for every role and remembers them for the statement.';

create or replace function iam.group_ids(min_role text) returns bigint[]
    language sql stable parallel unsafe
as $fn$
    select coalesce(
        case when pg_catalog.current_setting('iam.caller_groups_key', true) operator(pg_catalog.=) iam.caller_key()
             then pg_catalog.current_setting('iam.caller_groups_' operator(pg_catalog.||) min_role, true)::pg_catalog.int8[]
        end,
        iam.compute_group_ids(min_role))
$fn$;

comment on function iam.group_ids(text) is
    '[runtime-callable] Ids of the groups where the caller has min_role or higher. Computed once per statement for every role (the caller''s context); policies call it as (select ...)::bigint[] so that group_id = any(...) can use an index.';

create or replace function iam.group_role(gid bigint) returns text
    language plpgsql stable parallel unsafe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
begin
    return (select g.role from iam.my_groups() g where g.group_id = gid order by iam.role_rank(g.role) desc limit 1);
end
$fn$;

comment on function iam.group_role(bigint) is
    '[runtime-callable] The caller''s role in one group, or NULL when not a member.';

create or replace function iam.group_exists(gid bigint) returns boolean
    language plpgsql stable parallel safe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
begin
    return exists (select from iam.groups where id = gid);
end
$fn$;

comment on function iam.group_exists(bigint) is
    'Does the group exist? The row guard asks it only as the table''s owner (the foreign key''s ON DELETE SET NULL), to let rows leave a deleted group. Not executable by the runtime roles: it answers about every group, not only the caller''s.';

create or replace function iam.privileged() returns boolean
    language plpgsql stable
    set search_path = pg_catalog, pg_temp
as $fn$
begin
    return iam.bypasses_rls() or iam.is_admin();
end
$fn$;

comment on function iam.privileged() is
    'Roles the row guard lets set owners and move rows: superusers, BYPASSRLS roles, and the declared admin realm role.';

create or replace function iam.may_enter_group(gid bigint, create_role text, group_required boolean) returns boolean
    language plpgsql stable parallel unsafe
    set search_path = pg_catalog, pg_temp
as $fn$
-- The row guard asks this for every insert into a group. The insert
-- policy's group arm asks for the caller's groups in the same statement
-- (group_id = any (iam.group_ids(...))), so the answer comes from the
-- caller's context both compute once.
begin
    if gid is null then
        return not group_required;
    end if;
    if create_role is null then
        return false;
    end if;
    return gid = any (iam.group_ids(create_role));
end
$fn$;

comment on function iam.may_enter_group(bigint, text, boolean) is
    'May the caller put a row into this group (NULL: no group)? gid = any (iam.group_ids(create_role)), from the caller''s context. The row guard asks it first and explains a no with iam.check_group_entry.';

create or replace function iam.guard_row() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $fn$
-- Arguments: owner column ('' for none), group column ('' for none), the
-- lowest group role that may put rows into a group ('' for none), and
-- 'required' when every row must be in a group; with a tenant column, two
-- more: the column, and its claim's path (a text[] literal, as
-- iam.claim_text takes it). With column rules (write lists), the tenant's
-- two ('' and '{}' without one), then 'columns' and the columns every
-- writer may change: the trigger then fires on every update and notes the
-- other columns the update changes, for the update policy
-- (iam.check_columns).
declare
    owner_column text := tg_argv[0];
    group_column text := tg_argv[1];
    create_role text := nullif(tg_argv[2], '');
    group_required boolean := tg_argv[3] = 'required';
    tenant_column text := coalesce(tg_argv[4], '');
    caller text;
    new_row jsonb := to_jsonb(new);
    old_row jsonb;
    new_owner text;
    new_group bigint;
    old_group bigint;
    -- The table the request named, for messages: a partitioned table's
    -- trigger fires on the partition a row is in, and errors name the
    -- table (looked up only when there is one to raise).
    tbl_schema name := tg_table_schema;
    tbl_name name := tg_table_name;
    free_columns text[];
    written text[];
begin
    if owner_column <> '' then
        new_owner := new_row ->> owner_column;
    end if;
    if group_column <> '' then
        new_group := (new_row ->> group_column)::bigint;
    end if;
    -- The tenant is the token's, for every request (the admin role too);
    -- only roles that bypass RLS (backend jobs) write other tenants' rows.
    -- An update that leaves it as it is needs no check (and asks the
    -- database nothing).
    if tenant_column <> ''
       and (tg_op = 'INSERT' or (new_row -> tenant_column) is distinct from (to_jsonb(old) -> tenant_column))
       and not iam.bypasses_rls() then
        new := iam.guard_tenant(new, case when tg_op = 'UPDATE' then to_jsonb(old) end, tenant_column, tg_argv[5]::text[], tg_table_schema, tg_table_name);
    end if;

    if tg_op = 'INSERT' then
        if owner_column <> '' then
            caller := iam.caller_id();
            if caller is null then
                if iam.privileged() then
                    return new;
                end if;
                select n.nspname, c.relname into tbl_schema, tbl_name from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where c.oid = coalesce(pg_partition_root(tg_relid), tg_relid);
                raise exception using
                    errcode = '28000',
                    message = format('cannot create a row in %I.%I without a user id', tbl_schema, tbl_name),
                    detail = format('Rows are owned by the caller, named by the %s claim of the JWT, and this request has none.', iam.identity_claim()),
                    hint = format('Sign in and send a JWT with a %s claim.', iam.identity_claim());
            end if;
            if new_owner is null then
                new := jsonb_populate_record(new, jsonb_build_object(owner_column, caller));
            elsif new_owner is distinct from caller and not iam.privileged() then
                select n.nspname, c.relname into tbl_schema, tbl_name from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where c.oid = coalesce(pg_partition_root(tg_relid), tg_relid);
                raise exception using
                    errcode = '42501',
                    message = format('%s must be the caller''s own user id', owner_column),
                    detail = format('A row of %I.%I is created by, and owned by, the caller.', tbl_schema, tbl_name),
                    hint = format('Leave %s out of the request: it is filled from the JWT.', owner_column);
            end if;
        end if;
        -- A row outside any group (when allowed) needs no lookup; a member
        -- posting into their group costs one probe of that membership; who
        -- is privileged is asked only when the answer is no.
        if group_column <> '' and (new_group is not null or group_required)
           and not iam.may_enter_group(new_group, create_role, group_required)
           and not iam.privileged() then
            select n.nspname, c.relname into tbl_schema, tbl_name from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where c.oid = coalesce(pg_partition_root(tg_relid), tg_relid);
            perform iam.check_group_entry(tbl_schema, tbl_name, group_column, new_group, create_role, group_required);
        end if;
        return new;
    end if;

    -- UPDATE: the trigger fires only when the owner or group column is set,
    -- or on every update with column rules.
    old_row := to_jsonb(old);
    if tg_nargs > 6 and tg_argv[6] = 'columns' then
        -- Column rules: the columns this update changes, but those every
        -- writer may change, compared in memory (no query per row). The
        -- update policy's WITH CHECK, which PostgreSQL evaluates right
        -- after the BEFORE triggers, reads the note (iam.check_columns).
        free_columns := coalesce(tg_argv[7:tg_nargs - 1], '{}');
        written := array(select k from jsonb_object_keys(new_row) k
                         where k <> all (free_columns) and new_row -> k is distinct from old_row -> k
                         order by k);
        -- In a BEFORE trigger a stored generated column is NULL in NEW
        -- (computed later): such a column is not written by the caller.
        if exists (select from unnest(written) k where jsonb_typeof(new_row -> k) = 'null') then
            written := array(select k from unnest(written) k
                             where not exists (select from pg_attribute a
                                               where a.attrelid = tg_relid and a.attname = k and a.attgenerated <> ''));
        end if;
        perform set_config('iam.written_columns', to_jsonb(written)::text, true);
    end if;
    if (owner_column = '' or new_owner is not distinct from (old_row ->> owner_column))
       and (group_column = '' or new_group is not distinct from (old_row ->> group_column)::bigint) then
        -- Neither the owner nor the group changes: nothing more to check,
        -- and nothing asked of the database.
        return new;
    end if;
    if iam.privileged() then
        return new;
    end if;
    caller := iam.caller_id();
    -- The owner changes only through the resource's transfer function
    -- (owner can transfer): iam.grant_transfer leaves a grant for its own
    -- transaction (on the table, a partitioned one's root), and
    -- iam.take_transfer checks it and who gets the row.
    if owner_column <> '' and new_owner is distinct from (old_row ->> owner_column)
       and not iam.take_transfer(coalesce(pg_partition_root(tg_relid), tg_relid), new_row, old_row ->> owner_column, new_owner, new_group, create_role) then
        select n.nspname, c.relname into tbl_schema, tbl_name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.oid = coalesce(pg_partition_root(tg_relid), tg_relid);
        raise exception using
            errcode = '42501',
            message = format('the owner of a row of %I.%I cannot be changed', tbl_schema, tbl_name),
            detail = format('%s is fixed when the row is created.', owner_column),
            hint = format('Leave %s out of the update; where the .iam file says owner can transfer, the owner hands the row over with POST /rpc/%s_transfer.', owner_column, tbl_name);
    end if;
    if group_column <> '' then
        old_group := (old_row ->> group_column)::bigint;
        if new_group is distinct from old_group then
            -- A row whose group was deleted may leave it: the foreign key's
            -- ON DELETE SET NULL does exactly that. PostgreSQL runs that
            -- action as the table's owner (a partitioned table's, for a row
            -- in a partition), never as a runtime role, so only
            -- the owner asks whether the group still exists: iam.group_exists
            -- is not executable by the runtime roles (it would tell anyone
            -- which group ids exist). A runtime caller's row is always in a
            -- group that exists (the foreign key sees to it), so it skips
            -- this and meets the checks below. (Two IFs: PostgreSQL checks
            -- EXECUTE on every function of an expression before it
            -- evaluates any part of it, AND or not.)
            if new_group is null
               and current_user = (select pg_get_userbyid(c.relowner) from pg_class c
                                   where c.oid = coalesce(pg_partition_root(tg_relid), tg_relid)) then
                if not iam.group_exists(old_group) then
                    return new;
                end if;
            end if;
            select n.nspname, c.relname into tbl_schema, tbl_name from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where c.oid = coalesce(pg_partition_root(tg_relid), tg_relid);
            if owner_column = '' or caller is distinct from (old_row ->> owner_column) then
                raise exception using
                    errcode = '42501',
                    message = format('only the owner of a row of %I.%I can move it between groups', tbl_schema, tbl_name),
                    detail = format('The row is in group %s; group members may change it but not move it.', coalesce(old_group::text, 'none')),
                    hint = format('Leave %s out of the update.', group_column);
            end if;
            perform iam.check_group_entry(tbl_schema, tbl_name, group_column, new_group, create_role, group_required);
        end if;
    end if;
    return new;
end
$fn$;

create or replace function iam.guard_tenant(
    new_row anyelement, old_row jsonb, tenant_column text, claim text[],
    table_schema name, table_name name) returns anyelement
    language plpgsql stable
    set search_path = pg_catalog, pg_temp
as $fn$
-- Part of the row guard, for a resource with a tenant column: an insert
-- takes the tenant from the token (filled when left out, refused when it
-- names another), an update keeps it (old_row: the row before an update,
-- NULL on insert). Without a tenant in the token (the claim missing, empty,
-- or not a string) nothing is created.
declare
    tenant text := iam.claim_text(variadic claim);
    given text := to_jsonb(new_row) ->> tenant_column;
    value jsonb;
begin
    if old_row is null then
        if tenant is null then
            value := iam.claims() #> claim;
            raise exception using
                errcode = '28000',
                message = format('cannot create a row in %I.%I without a tenant', table_schema, table_name),
                detail = case
                    when value is null or jsonb_typeof(value) = 'null' or value = '""'
                        then format('Rows of %I.%I belong to the tenant named by the %s claim of the JWT, and this request has none.', table_schema, table_name, array_to_string(claim, '.'))
                    else format('The JWT claim %s is a %s, not a string: %s.', array_to_string(claim, '.'), jsonb_typeof(value), left(value::text, 100))
                end,
                hint = format('Sign in with a token that carries the tenant in %s as a string (a Keycloak mapper).', array_to_string(claim, '.'));
        end if;
        if given is null then
            return jsonb_populate_record(new_row, jsonb_build_object(tenant_column, tenant));
        end if;
        if given is distinct from tenant then
            raise exception using
                errcode = '42501',
                message = format('%s must be the caller''s tenant', tenant_column),
                detail = format('A row of %I.%I is created in the tenant of the %s claim of the JWT.', table_schema, table_name, array_to_string(claim, '.')),
                hint = format('Leave %s out of the request: it is filled from the JWT.', tenant_column);
        end if;
        return new_row;
    end if;
    if given is distinct from (old_row ->> tenant_column) then
        raise exception using
            errcode = '42501',
            message = format('the tenant of a row of %I.%I cannot be changed', table_schema, table_name),
            detail = format('%s is fixed when the row is created.', tenant_column),
            hint = format('Leave %s out of the update.', tenant_column);
    end if;
    return new_row;
end
$fn$;

comment on function iam.guard_tenant(anyelement, jsonb, text, text[], name, name) is
    'Part of the row guard: an inserted row takes the caller''s tenant (the tenant column''s claim), a row never changes tenant.';

comment on function iam.guard_row() is
    'Trigger: fills the owner column from the JWT on INSERT and rejects a forged owner; keeps the owner immutable; lets rows into a group only for callers with the create role there, and lets only the owner move a row. RLS cannot compare OLD and NEW, so this is a trigger; it gives clear errors, and the policies enforce the same rules again.';

create or replace function iam.check_columns(tbl regclass, wide boolean, names text[], allowed boolean[]) returns boolean
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $fn$
-- Column rules, in the WITH CHECK of an update policy: the row guard noted
-- which columns the update of this row changes (iam.written_columns);
-- wide is whether a write rule without a column list holds on the row;
-- names are the columns write rules list and allowed, for each, whether a
-- rule listing it holds. A noted column is refused (42501, naming it)
-- unless wide or allowed. The note is consumed: an update the row guard
-- did not see is refused, not let through. In-memory work: the conditions
-- are the policy's own, their sub-selects once per statement.
declare
    noted text := current_setting('iam.written_columns', true);
    col text;
    mine text[];
begin
    perform set_config('iam.written_columns', '', true);
    if noted is null or noted = '' then
        raise exception using
            errcode = '42501',
            message = format('the row guard did not note the columns of this update of %s', tbl),
            detail = 'The column rules of this table are checked with what the row guard (trigger iam_guard_row) notes of each updated row; it did not run.',
            hint = 'Enable the trigger iam_guard_row on the table (iamc apply puts it back).';
    end if;
    if wide then
        return true;
    end if;
    for col in select jsonb_array_elements_text(noted::jsonb) loop
        if not coalesce(allowed[array_position(names, col)], false) then
            mine := array(select names[i] from generate_subscripts(names, 1) i where allowed[i] order by i);
            raise exception using
                errcode = '42501',
                message = format('you cannot change column %s of %s', col, tbl),
                detail = case when cardinality(mine) = 0 then 'Your rights on this row let you change none of its columns.'
                              else format('Your rights on this row let you change only %s.', array_to_string(mine, ', ')) end,
                hint = format('Leave %s out of the request (a PATCH sends only the columns it changes).', col);
        end if;
    end loop;
    return true;
end
$fn$;

comment on function iam.check_columns(regclass, boolean, text[], boolean[]) is
    '[row-local] Column rules: in the WITH CHECK of the update policy of a table with write lists, refuses (42501, naming it) a column the row guard saw change that the caller may not write on this row. It reads only its arguments and a setting of the transaction, no table (iamc lint, IAM004).';

create or replace function iam.check_group_entry(
    table_schema name, table_name name, group_column text,
    gid bigint, create_role text, group_required boolean) returns void
    language plpgsql stable
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    my_rank integer;
begin
    if gid is null then
        if group_required then
            raise exception using
                errcode = '23502',
                message = format('every row of %I.%I belongs to a group', table_schema, table_name),
                detail = format('%s is required.', group_column),
                hint = format('Set %s to a group you can post into.', group_column);
        end if;
        return;
    end if;
    my_rank := iam.role_rank(iam.group_role(gid));
    if create_role is null or my_rank is null or my_rank < iam.role_rank(create_role) then
        raise exception using
            errcode = '42501',
            message = format('you cannot put rows of %I.%I into group %s', table_schema, table_name, gid),
            detail = case
                when create_role is null then 'No group role may put rows into groups on this table.'
                else format('Putting a row into a group takes the %s role (or higher) in that group.', create_role)
            end,
            hint = 'Ask an admin of the group to add you, or pick one of your groups.';
    end if;
end
$fn$;

comment on function iam.check_group_entry(name, name, text, bigint, text, boolean) is
    'Part of the row guard: may the caller put a row into this group?';

-- The group API. The iamc build exposes these through thin wrappers in the
-- declared API schema (PostgREST RPC). Definer: the group tables are not
-- readable or writable by the runtime roles; every rule is checked here.

create or replace function iam.require_caller() returns text
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    me text := iam.caller_id();
begin
    if me is null then
        raise exception using
            errcode = '28000',
            message = 'groups need a signed-in user',
            detail = format('This request carries no %s claim.', iam.identity_claim()),
            hint = format('Sign in and send a JWT with a %s claim.', iam.identity_claim());
    end if;
    return me;
end
$fn$;

-- Errors of the group API, as PostgREST answers them (SPEC §9, §11): bad
-- input 22023 (HTTP 400), naming the parameter as the HTTP API spells it;
-- a group the caller is not in, or a user not in the group, PT404 (404:
-- PostgREST answers a SQLSTATE PTxyz with HTTP status xyz, where P0002
-- would be 500); a member without the right 42501 (403); already a member
-- 23505 (409); the last owner 23514 (400). Every input is checked here,
-- before any write, so that no constraint of the group tables ever answers
-- (a CHECK's error shows the whole failing row, internal columns
-- included), and a value the caller sent is cut to 100 characters when an
-- error shows it.

create or replace function iam.refuse_null(param text, hint text) returns void
    language plpgsql stable
    set search_path = pg_catalog, pg_temp
as $fn$
begin
    raise exception using
        errcode = '22023',
        message = format('%s is required', param),
        detail = format('The request has no %s, or it is null.', param),
        hint = hint;
end
$fn$;

comment on function iam.refuse_null(text, text) is
    'Raises 22023 (HTTP 400) "<param> is required": the group API refuses a null argument by the name the HTTP API gives it.';

create or replace function iam.refuse_not_in_group(gid bigint) returns void
    language plpgsql stable
    set search_path = pg_catalog, pg_temp
as $fn$
-- One answer, whatever the reason: a group that does not exist and one the
-- caller is not in must not be told apart, or group ids would be an
-- existence oracle.
begin
    raise exception using
        errcode = 'PT404',
        message = format('you are not a member of group %s', gid),
        detail = 'No group with this id has you as a member: it does not exist, or you are not in it (the two are not told apart).',
        hint = 'GET /groups lists your groups.';
end
$fn$;

comment on function iam.refuse_not_in_group(bigint) is
    'Raises PT404 (HTTP 404 in PostgREST): the caller is in no group of this id, whether it exists or not.';

create or replace function iam.clean_group_name(group_name text) returns text
    language plpgsql stable
    set search_path = pg_catalog, pg_temp
as $fn$
-- The name as stored: Unicode NFC (when the database is UTF8), white space
-- trimmed at both ends (Unicode spaces and invisible characters such as
-- U+200B and U+FEFF too), every inner run of white space (tabs and line
-- breaks included) one space. Zero-width joiners inside the name stay
-- (emoji sequences and some scripts need them). What is left must hold a
-- visible character, no control character, and at most 200 characters:
-- the CHECK on iam.groups.name is then never what answers.
declare
    name text := group_name;
    n integer;
begin
    if name is null then
        perform iam.refuse_null('name', 'Pass {"name": "..."}.');
    end if;
    if current_setting('server_encoding') = 'UTF8' then
        name := normalize(name, nfc);
    end if;
    name := regexp_replace(name,
        E'^[[:space:]\\u0085\\u00a0\\u00ad\\u034f\\u115f\\u1160\\u1680\\u180e\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u2064\\u3000\\u3164\\ufeff\\uffa0]+'
        '|[[:space:]\\u0085\\u00a0\\u00ad\\u034f\\u115f\\u1160\\u1680\\u180e\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u2064\\u3000\\u3164\\ufeff\\uffa0]+$',
        '', 'g');
    name := regexp_replace(name, E'[[:space:]\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+', ' ', 'g');
    if name = '' then
        raise exception using
            errcode = '22023',
            message = 'a group needs a name',
            detail = 'The name is empty or only white space (Unicode and zero-width spaces count as white space).',
            hint = 'Pass {"name": "..."} with a visible character.';
    end if;
    if name ~ E'[\\u0001-\\u001f\\u007f-\\u009f]' then
        raise exception using
            errcode = '22023',
            message = 'a group name cannot contain a control character',
            detail = 'Control characters (U+0001 to U+001F, U+007F to U+009F) other than white space are refused.',
            hint = 'Remove them from the name.';
    end if;
    n := char_length(name);
    if n > 200 then
        raise exception using
            errcode = '22023',
            message = format('a group name is at most 200 characters; this one has %s', n),
            detail = 'Characters are counted after trimming the white space at both ends.',
            hint = 'Pass a shorter name.';
    end if;
    return name;
end
$fn$;

comment on function iam.clean_group_name(text) is
    'The name create_group stores: NFC, trimmed of (Unicode) white space, inner white space runs made one space; 22023 when that leaves nothing, a control character or more than 200 characters.';

create or replace function iam.normalize_user_id(user_id text) returns text
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    id_type text := (select identity_type from iam.settings);
begin
    if user_id is null or user_id = '' then
        raise exception using errcode = '22023', message = 'user_id is required',
            hint = 'Pass the user''s id (the sub claim of their token).';
    end if;
    -- An identity provider's subject is short (Keycloak's at most 255
    -- characters); the deny list keeps at most 1000. A longer one is a
    -- mistake, or an attempt to bloat the membership index.
    if char_length(user_id) > 1000 then
        raise exception using errcode = '22023',
            message = 'user_id is too long',
            detail = format('A user id is at most 1000 characters; this one has %s.', char_length(user_id)),
            hint = 'Pass the user''s id (the sub claim of their token).';
    end if;
    if id_type = 'uuid' then
        begin
            return user_id::uuid::text;
        exception when invalid_text_representation then
            raise exception using errcode = '22023',
                message = format('user_id %s is not a uuid', left(user_id, 100)),
                hint = 'Users are identified by the uuid in their token''s sub claim.';
        end;
    end if;
    return user_id;
end
$fn$;

create or replace function iam.check_role_name(role_name text) returns void
    language plpgsql stable
    set search_path = pg_catalog, pg_temp
as $fn$
-- Called by the group API (definers), so it reads iam.group_roles as its
-- owner. The hint lists the roles the .iam files declare, lowest first:
-- "member, admin or owner".
declare
    known text;
begin
    if role_name is null or iam.role_rank(role_name) is null then
        select regexp_replace(string_agg(r.name, ', ' order by r.rank), ', ([^,]*)$', ' or \1') into known
        from iam.group_roles r;
        if role_name is null then
            perform iam.refuse_null('role', format('A group role is %s.', known));
        end if;
        raise exception using errcode = '22023',
            message = format('unknown group role %s', left(role_name, 100)),
            hint = format('A group role is %s.', known);
    end if;
end
$fn$;

create or replace function iam.require_group_role(gid bigint, min_role text, action text) returns text
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- Only database memberships manage a group: a token group confers access
-- to rows, not the right to change who is in the group. A caller in no
-- way a member gets PT404, as for a group that does not exist; a member
-- (by row or by token) without the role gets 42501.
declare
    my_role text;
begin
    select gm.role into my_role from iam.group_members gm
    where gm.group_id = gid and gm.user_id = iam.require_caller();
    if my_role is null and iam.group_role(gid) is null then
        perform iam.refuse_not_in_group(gid);
    end if;
    if my_role is null or iam.role_rank(my_role) < iam.role_rank(min_role) then
        raise exception using
            errcode = '42501',
            message = format('only %s of group %s can %s', iam.role_holders(min_role), gid, action),
            detail = case when my_role is null then 'Your token''s groups make you a member; they give access to rows, not the right to manage the group.'
                          else format('Your role in this group is %s.', my_role) end,
            hint = 'Ask an owner of the group.';
    end if;
    return my_role;
end
$fn$;

-- ---------------------------------------------------------------------------
-- Quotas of the group API (the groups block: max groups created per user,
-- max groups per user, max members per group). Without them one user could
-- create thousands of groups, or be put in thousands: every policy compares
-- a row's group with the caller's groups, so the per-row cost of a list
-- grows with them, and one user's slow requests fill PostgREST's pool for
-- everyone. Only database memberships count: token groups are the realm's.
-- ---------------------------------------------------------------------------

create or replace function iam.check_user_quota(uid text, creating boolean) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- Before uid gets one more membership (and, when creating, one more group
-- of their own). The per-user advisory lock, held to the end of the
-- transaction, makes concurrent calls for one user count one after the
-- other, so none can slip past the limit. Raises PT429, which PostgREST
-- answers with HTTP 429 (a quota, as gRPC's RESOURCE_EXHAUSTED).
declare
    s iam.settings;
    n bigint;
begin
    select * into s from iam.settings;
    perform pg_advisory_xact_lock(hashtext('iam.user_quota'), hashtext(uid));
    if creating then
        select count(*) into n from iam.groups g where g.created_by = uid;
        if n >= s.max_groups_created_per_user then
            raise exception using errcode = 'PT429',
                message = format('you cannot create more than %s groups', s.max_groups_created_per_user),
                detail = format('You have created %s groups that still exist; the limit is max groups created per user in the .iam groups block.', n),
                hint = 'Delete a group you no longer need, or ask an administrator to raise the limit.';
        end if;
    end if;
    select count(*) into n from iam.group_members m where m.user_id = uid;
    if n >= s.max_groups_per_user then
        if uid = iam.caller_id() then
            raise exception using errcode = 'PT429',
                message = format('you cannot be in more than %s groups', s.max_groups_per_user),
                detail = 'The limit is max groups per user in the .iam groups block.',
                hint = 'Leave a group you no longer need, or ask an administrator to raise the limit.';
        end if;
        -- Someone else's count is theirs: the message does not give it.
        raise exception using errcode = 'PT429',
            message = 'this user cannot be added to another group',
            detail = format('A user may be in at most %s groups (max groups per user in the .iam groups block).', s.max_groups_per_user),
            hint = 'Ask them to leave a group first, or ask an administrator to raise the limit.';
    end if;
end
$fn$;

comment on function iam.check_user_quota(text, boolean) is
    'Raises PT429 (HTTP 429) when uid is in max_groups_per_user groups already, or (creating) has created max_groups_created_per_user. Definer, called by the group API only.';

create or replace function iam.check_group_quota(gid bigint) returns void
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- Called with the group's row locked (iam.lock_group), so concurrent adds
-- to one group count one after the other.
declare
    s iam.settings;
    n bigint;
begin
    select * into s from iam.settings;
    select count(*) into n from iam.group_members m where m.group_id = gid;
    if n >= s.max_members_per_group then
        raise exception using errcode = 'PT429',
            message = format('group %s is full', gid),
            detail = format('A group may have at most %s members (max members per group in the .iam groups block).', s.max_members_per_group),
            hint = 'Remove a member first, or ask an administrator to raise the limit.';
    end if;
end
$fn$;

comment on function iam.check_group_quota(bigint) is
    'Raises PT429 (HTTP 429) when the group has max_members_per_group members already. Definer, called by the group API only, with the group locked.';

create or replace function iam.create_group(group_name text) returns bigint
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    me text := iam.require_caller();
    gid bigint;
    clean_name text := iam.clean_group_name(group_name);
begin
    perform iam.sync_user(false);
    perform iam.check_user_quota(me, true);
    -- Ids are random (iam.new_group_id): on the rare collision, draw again.
    loop
        insert into iam.groups (id, name, created_by) values (iam.new_group_id(), clean_name, me)
        on conflict (id) do nothing
        returning id into gid;
        exit when gid is not null;
    end loop;
    insert into iam.group_members (group_id, user_id, role, added_by) values (gid, me, 'owner', me);
    perform iam.audit('group.create', gid, me, null, null, jsonb_build_object('name', clean_name, 'role', 'owner'));
    return gid;
end
$fn$;

-- Concurrency: every change of a group's members locks the group's row
-- (FOR UPDATE) before it reads anything, and only then checks the caller's
-- role. So changes of one group run one after the other, each seeing the
-- members the previous one left: a caller demoted or removed by a change
-- that committed while they waited acts on their new role, never on the
-- one they had (two admins demoting each other: the second is refused),
-- and the last-owner check counts the owners that are really left. Checking
-- the role before the lock let both of two racing demotions succeed.
-- Inserts into a group hold FOR KEY SHARE on the same row (the foreign
-- key's check) until they commit, so a removal waits for them.
create or replace function iam.lock_group(gid bigint) returns void
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $fn$
-- A caller in no way a member is refused before the lock (and refused
-- again after it, by the role check, if removed while waiting): an
-- outsider cannot hold a group's row lock and stall its members' changes,
-- and a group that exists costs an outsider the same as one that does not.
begin
    if iam.group_role(gid) is null then
        perform iam.refuse_not_in_group(gid);
    end if;
    perform from iam.groups where id = gid for update;
end
$fn$;

comment on function iam.lock_group(bigint) is
    'Serialises the membership changes of one group: the group API (definer functions) calls it before it checks the caller''s role; PT404 for a caller in no way a member, before any lock. Not a definer itself, and not granted to the runtime roles: it runs with the rights of the API function that calls it.';

-- Runtime 4 names the new member by user id, username or email (runtime 3
-- took a user id only): the three-argument form goes.
drop function if exists iam.add_group_member(bigint, text, text);

create or replace function iam.add_group_member(gid bigint, member_id text, member_role text, member_username text, member_email text)
    returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- A username or an email is looked up only after the caller is known to
-- manage the group, and only among the people who share a group with the
-- caller (iam.find_user): neither a stranger nor a group's owner can use
-- this to learn whether anyone else exists.
declare
    me text := iam.require_caller();
    my_role text;
    uid text;
begin
    perform iam.sync_user(false);
    if gid is null then
        perform iam.refuse_null('group_id', 'Pass the group''s id, as create_group returned it.');
    end if;
    perform iam.check_role_name(member_role);
    perform iam.check_one_person(member_id, member_username, member_email, 'user_id, username or email');
    if member_id is not null then
        uid := iam.normalize_user_id(member_id);
    end if;
    -- Lock first, then check the caller's role (see iam.lock_group).
    perform iam.lock_group(gid);
    my_role := iam.require_group_role(gid, iam.manage_role(), 'add members');
    if uid is null then
        uid := iam.find_user(member_username, member_email);
    end if;
    -- Nobody gives a role above their own (so only owners make owners).
    if iam.role_rank(member_role) > iam.role_rank(my_role) then
        raise exception using errcode = '42501',
            message = format('only %s of group %s can add %ss', iam.role_holders(member_role), gid, member_role),
            hint = format('Add the user with a role up to yours (%s).', my_role);
    end if;
    if exists (select from iam.group_members where group_id = gid and user_id = uid) then
        raise exception using errcode = '23505',
            message = format('%s is already a member of group %s', left(uid, 100), gid),
            hint = 'Use set_group_member_role to change their role.';
    end if;
    perform iam.check_group_quota(gid);
    perform iam.check_user_quota(uid, false);
    insert into iam.group_members (group_id, user_id, role, added_by) values (gid, uid, member_role, me);
    perform iam.audit('member.add', gid, uid, null, null, jsonb_strip_nulls(jsonb_build_object('role', member_role,
        'by', case when member_username is not null then 'username' when member_email is not null then 'email' end)));
end
$fn$;

create or replace function iam.check_keeps_owner(gid bigint, uid text, action text) returns void
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $fn$
begin
    if (select role from iam.group_members where group_id = gid and user_id = uid) = 'owner'
       and (select count(*) from iam.group_members where group_id = gid and role = 'owner') = 1 then
        raise exception using errcode = '23514',
            message = format('group %s must keep at least one owner', gid),
            detail = format('%s is its last owner, so they cannot %s.', left(uid, 100), action),
            hint = 'Make another member owner first, or delete the group.';
    end if;
end
$fn$;

create or replace function iam.remove_group_member(gid bigint, member_id text) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    uid text := iam.normalize_user_id(member_id);
    my_role text;
    their_role text;
begin
    if gid is null then
        perform iam.refuse_null('group_id', 'Pass the group''s id, as create_group returned it.');
    end if;
    -- Lock first, then check the caller's role (see iam.lock_group).
    perform iam.lock_group(gid);
    my_role := iam.require_group_role(gid, iam.manage_role(), 'remove members');
    select role into their_role from iam.group_members where group_id = gid and user_id = uid;
    if their_role is null then
        raise exception using errcode = 'PT404',
            message = format('%s is not a member of group %s', left(uid, 100), gid),
            hint = 'GET /group_members lists the group''s members.';
    end if;
    if iam.role_rank(their_role) > iam.role_rank(my_role) then
        raise exception using errcode = '42501',
            message = format('%ss cannot remove %ss of group %s', my_role, their_role, gid),
            hint = 'Ask an owner of the group.';
    end if;
    perform iam.check_keeps_owner(gid, uid, 'be removed');
    delete from iam.group_members where group_id = gid and user_id = uid;
    perform iam.audit('member.remove', gid, uid, null, jsonb_build_object('role', their_role), null);
end
$fn$;

create or replace function iam.set_group_member_role(gid bigint, member_id text, member_role text) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    uid text := iam.normalize_user_id(member_id);
    my_role text;
    their_role text;
    top_role text;
begin
    if gid is null then
        perform iam.refuse_null('group_id', 'Pass the group''s id, as create_group returned it.');
    end if;
    perform iam.check_role_name(member_role);
    -- Lock first, then check the caller's role (see iam.lock_group).
    perform iam.lock_group(gid);
    my_role := iam.require_group_role(gid, iam.manage_role(), 'change roles');
    select role into their_role from iam.group_members where group_id = gid and user_id = uid;
    if their_role is null then
        raise exception using errcode = 'PT404',
            message = format('%s is not a member of group %s', left(uid, 100), gid),
            hint = 'Use add_group_member to add them.';
    end if;
    -- Nobody gives or takes a role above their own (so only owners make
    -- or unmake owners).
    top_role := case when iam.role_rank(their_role) > iam.role_rank(member_role) then their_role else member_role end;
    if iam.role_rank(top_role) > iam.role_rank(my_role) then
        raise exception using errcode = '42501',
            message = format('only %s of group %s can make or unmake %ss', iam.role_holders(top_role), gid, top_role),
            hint = 'Ask an owner of the group.';
    end if;
    if member_role <> 'owner' then
        perform iam.check_keeps_owner(gid, uid, 'be demoted');
    end if;
    if their_role is distinct from member_role then
        update iam.group_members set role = member_role where group_id = gid and user_id = uid;
        perform iam.audit('member.role', gid, uid, null, jsonb_build_object('role', their_role), jsonb_build_object('role', member_role));
    end if;
end
$fn$;

create or replace function iam.leave_group(gid bigint) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    me text := iam.require_caller();
    my_role text;
begin
    if gid is null then
        perform iam.refuse_null('group_id', 'Pass the group''s id, as create_group returned it.');
    end if;
    perform iam.lock_group(gid);
    if not exists (select from iam.group_members where group_id = gid and user_id = me) then
        -- A member only through the token's groups cannot leave here: a
        -- conflict with where the membership comes from (HTTP 409).
        if iam.group_role(gid) is not null then
            raise exception using errcode = 'PT409',
                message = format('you are a member of group %s through your token''s groups', gid),
                detail = 'The identity provider''s groups make you a member; there is no membership to leave here.',
                hint = 'Ask an administrator to take you out of the group in the identity provider.';
        end if;
        perform iam.refuse_not_in_group(gid);
    end if;
    perform iam.check_keeps_owner(gid, me, 'leave');
    delete from iam.group_members where group_id = gid and user_id = me
    returning role into my_role;
    perform iam.audit('member.leave', gid, me, null, jsonb_build_object('role', my_role), null);
end
$fn$;

create or replace function iam.delete_group(gid bigint) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- Memberships go with the group; rows of protected tables follow their
-- foreign key: ON DELETE SET NULL (back to their owners only) or CASCADE
-- (deleted with the group), as the .iam file's group column says.
begin
    if gid is null then
        perform iam.refuse_null('group_id', 'Pass the group''s id, as create_group returned it.');
    end if;
    -- Lock first, then check the caller's role (see iam.lock_group).
    perform iam.lock_group(gid);
    perform iam.require_group_role(gid, 'owner', 'delete the group');
    -- The entry names what went: the group, its members and their roles.
    perform iam.audit('group.delete', gid, null, null,
        jsonb_build_object('name', g.name, 'members', (select jsonb_agg(jsonb_build_object('user_id', m.user_id, 'role', m.role) order by m.user_id)
                                                       from iam.group_members m where m.group_id = gid)),
        null)
    from iam.groups g where g.id = gid;
    delete from iam.groups where id = gid;
end
$fn$;

-- The group API is executable by the authenticated role (the API schema's
-- wrappers call it as the caller): each function checks the caller's role
-- in the group before it reads or changes anyone else's membership, hence
-- the marker iamc lint's IAM008 looks for.
comment on function iam.create_group(text) is
    '[runtime-callable] Creates a group owned by the caller; returns its id.';
comment on function iam.add_group_member(bigint, text, text, text, text) is
    '[runtime-callable] The group''s managers (iam.manage_role() and above: owners and admins by default) add a member, with a role up to their own (only owners add owners), named by user id, or by username or email among the people who share a group with the caller.';
comment on function iam.remove_group_member(bigint, text) is
    '[runtime-callable] The group''s managers (owners and admins by default) remove a member whose role is not above their own (admins cannot remove owners); the last owner stays.';
comment on function iam.set_group_member_role(bigint, text, text) is
    '[runtime-callable] The group''s managers (owners and admins by default) change a member''s role, neither role above their own (only owners make or unmake owners); the last owner stays.';
comment on function iam.leave_group(bigint) is
    '[runtime-callable] The caller leaves the group, unless they are its last owner.';
comment on function iam.delete_group(bigint) is
    '[runtime-callable] Owners delete the group; rows in it follow their foreign key.';

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

create or replace procedure iam.lock_partitions(tbl regclass)
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $fn$
-- A partition is a table of its own: queried directly, the row-level
-- security of its parent does not apply to it (PostgreSQL applies only the
-- policies of the table a query names). Every partition of a resource, at
-- every level, is therefore reached only through its parent: row-level
-- security enabled and forced with no policy, and no privilege for anyone
-- but its owner. Only what differs is changed (ALTER TABLE takes an ACCESS
-- EXCLUSIVE lock). A plain table has no partitions: nothing to do.
declare
    p record;
    grantees text;
begin
    for p in
        select c.oid::regclass as part, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relowner,
               (select string_agg(case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end, ', '
                                  order by a.grantee)
                from (select distinct x.grantee from aclexplode(c.relacl) x where x.grantee <> c.relowner) a) as grantees
        from pg_partition_tree(tbl) t
        join pg_class c on c.oid = t.relid
        where t.level > 0
        order by t.level, c.relname
    loop
        continue when p.grantees is null
            and (p.relkind = 'f' or p.relrowsecurity and p.relforcerowsecurity);
        if not pg_has_role(current_user, p.relowner, 'USAGE') then
            raise exception using
                errcode = '42501',
                message = format('partition %s of %s is owned by %s, not by %s: it cannot be locked down',
                                 p.part, tbl, pg_get_userbyid(p.relowner), current_user),
                detail = 'Queried directly, a partition skips the policies of its parent; iamc enables and forces its row-level security and revokes every privilege on it, which only its owner may do.',
                hint = format('alter table %s owner to %I; (the owner of %s) and apply again.', p.part, current_user, tbl);
        end if;
        if p.grantees is not null then
            execute format('revoke all on table %s from %s cascade', p.part, p.grantees);
        end if;
        if p.relkind <> 'f' and not (p.relrowsecurity and p.relforcerowsecurity) then
            execute format('alter table %s enable row level security, force row level security', p.part);
        end if;
    end loop;
    if exists (select from pg_class c where c.oid = tbl and c.relkind = 'p')
       and not exists (select from pg_event_trigger e
                       where e.evtname = 'iam_lock_partitions' and e.evtenabled in ('O', 'A')) then
        raise warning using
            message = format('new partitions of %s are not locked down when they are created', tbl),
            detail = 'Without the event trigger iam_lock_partitions, a partition created later (by hand or by pg_partman) has no row-level security of its own until the next build is applied: a privilege granted on it meanwhile (pg_partman''s inherit_privileges, default privileges) opens every row in it.',
            hint = 'Apply this build once as a superuser: it installs the event trigger (creating one needs a superuser).';
    end if;
end
$fn$;

comment on procedure iam.lock_partitions(regclass) is
    'Build-time helper: every partition of a table, at every level, gets row-level security enabled and forced (no policy) and loses every privilege but its owner''s, so that it is reached only through its parent, whose policies apply. Warns when new partitions are not locked down as they are created (no event trigger iam_lock_partitions).';

-- ---------------------------------------------------------------------------
-- The deny list's keys and its administration (DBA only; the list itself
-- and its check are at the top).
-- ---------------------------------------------------------------------------

create or replace function iam.canonical_subject(subject text) returns text
    language plpgsql stable parallel safe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- A uuid is compared in canonical (lower-case) form, as iam.caller_id gives
-- it; any other subject exactly as the token spells it. PL/pgSQL: it runs
-- in requests (iam.user_id_text, iam.check_request) and keeps its plan
-- between them.
begin
    if (select identity_type from iam.settings) = 'uuid'
       and subject ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        return lower(subject);
    end if;
    return subject;
end
$fn$;

comment on function iam.canonical_subject(text) is
    'The deny list key of a subject: a uuid in lower case when users are identified by uuid, otherwise the text unchanged (block, unblock and iam.check_request all key by it). Definer: it reads iam.settings.';

create or replace function iam.block_subject(subject text, reason text, tokens_issued_before timestamptz default null)
    returns void
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $fn$
-- Not a definer: only roles that may write iam.blocked_subjects (the owner
-- role, superusers) can block. No runtime role is granted it.
begin
    if subject is null or subject = '' then
        raise exception using errcode = '22023', message = 'a subject is required',
            hint = 'Pass the value of the user''s identity claim (the sub of their token).';
    end if;
    if reason is null or btrim(reason) = '' then
        raise exception using errcode = '22023', message = 'a reason is required',
            detail = 'The deny list records why each subject was blocked.',
            hint = 'Pass a short reason, e.g. ''disabled in Keycloak, ticket 123''.';
    end if;
    insert into iam.blocked_subjects as b (subject, reason, tokens_issued_before)
    values (iam.canonical_subject(subject), reason, tokens_issued_before)
    on conflict on constraint blocked_subjects_pkey do update
        set reason = excluded.reason, tokens_issued_before = excluded.tokens_issued_before,
            blocked_at = now(), blocked_by = current_user;
    perform iam.audit('subject.block', null, iam.canonical_subject(subject), null, null,
        jsonb_build_object('reason', reason, 'tokens_issued_before', tokens_issued_before));
end
$fn$;

comment on function iam.block_subject(text, text, timestamptz) is
    'DBA: refuse every request of the subject (tokens_issued_before NULL), or only those whose token was issued before that time (a forced re-login). Takes effect at the next request.';

create or replace function iam.unblock_subject(subject text) returns boolean
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    removed integer;
begin
    delete from iam.blocked_subjects b where b.subject = iam.canonical_subject(unblock_subject.subject);
    get diagnostics removed = row_count;
    if removed > 0 then
        perform iam.audit('subject.unblock', null, iam.canonical_subject(unblock_subject.subject), null, null, null);
    end if;
    return removed > 0;
end
$fn$;

comment on function iam.unblock_subject(text) is
    'DBA: lift a block; true when the subject was blocked.';

-- ---------------------------------------------------------------------------
-- The db-pre-request: what PostgREST 12 lets through and the runtime
-- refuses before the request's query runs (the deny list above; tokens
-- without the declared audience or without an expiry; planner-estimate
-- counts on protected relations). Shipped in policies/postgrest.conf.
-- ---------------------------------------------------------------------------

comment on column iam.settings.audience is
    'The identity block''s audience: a token must name it in aud (a string, or an array holding it); NULL when none is declared. Checked by iam.check_request.';
comment on column iam.settings.expiry_required is
    'False when the identity block says expiry optional; otherwise a token must carry a numeric exp. Checked by iam.check_request.';

create or replace function iam.check_token(claims jsonb, audience text, expiry_required boolean) returns void
    language plpgsql immutable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- PostgREST 12 verifies aud only when a token has one, and accepts a token
-- without exp (valid for ever). A request carries a token when its claims
-- hold anything beside the role: PostgREST's anonymous requests carry
-- {"role": <db-anon-role>} only, and are not refused here.
begin
    if jsonb_typeof(claims) is distinct from 'object' or claims - 'role' = '{}'::jsonb then
        return;
    end if;
    if audience is not null and not coalesce(
           (jsonb_typeof(claims -> 'aud') = 'string' and claims ->> 'aud' = audience)
           or (jsonb_typeof(claims -> 'aud') = 'array' and claims -> 'aud' @> jsonb_build_array(audience)),
           false) then
        raise exception using
            errcode = '28000',
            message = case when claims ? 'aud' then 'this token is not issued for this API'
                           else 'this token has no audience (aud)' end,
            detail = format('This API accepts only tokens whose aud names %s; PostgREST checks aud only when a token has one.', audience),
            hint = format('Have the identity provider add %s to aud (Keycloak: an Audience mapper on the client), then sign in again.', audience);
    end if;
    if expiry_required and jsonb_typeof(claims -> 'exp') is distinct from 'number' then
        raise exception using
            errcode = '28000',
            message = 'this token has no expiry (exp)',
            detail = 'A token without a numeric exp would be valid for ever; PostgREST accepts it, this API does not.',
            hint = 'Have the identity provider set exp (Keycloak always does), or declare expiry optional in the identity block.';
    end if;
end
$fn$;

comment on function iam.check_token(jsonb, text, boolean) is
    'Raises 28000 for a token (claims beyond the role) whose aud does not name the audience (when one is declared) or that has no numeric exp (when required). Called by iam.check_request.';

create or replace function iam.check_count(headers text, path text) returns void
    language plpgsql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- Prefer: count=planned and count=estimated answer from the planner's
-- statistics, which cover every row, visible or not: on a protected table
-- they tell a stranger how many rows someone owns, or that a group exists.
-- They are refused on a protected relation: the first segment of the path
-- names a table (in any schema: PostgREST's schema comes from a header this
-- check does not trust to be the only one) with row-level security, a
-- partition of one, or a view (a view can filter rows itself, as the group
-- API's views do). /rpc/ is refused whatever the function (the planner
-- sees through inlined SQL functions), and so is a name no relation has (a
-- quoted or percent-encoded name this check cannot match is not let
-- through). count=exact counts only the rows the caller can see.
declare
    prefer text;
    kind text;
    target text;
begin
    -- Most requests ask for no count: skip parsing the headers (the
    -- Authorization header alone is a kilobyte or more) when no header
    -- mentions one.
    if coalesce(headers, '') not ilike '%count%' then
        return;
    end if;
    prefer := headers::jsonb ->> 'prefer';
    kind := lower((regexp_match(prefer, '(?:^|,)\s*count\s*=\s*(planned|estimated)\s*(?:,|$)', 'i'))[1]);
    if kind is null then
        return;
    end if;
    target := split_part(ltrim(coalesce(path, ''), '/'), '/', 1);
    if target = '' then
        return;
    end if;
    if target <> 'rpc' and not coalesce((
        select bool_or(c.relrowsecurity or c.relkind = 'v' or exists (
                   select from pg_partition_ancestors(c.oid) a
                   join pg_class p on p.oid = a.relid
                   where p.relrowsecurity))
        from pg_class c
        where c.relname = target and c.relkind in ('r', 'p', 'v', 'm', 'f')), true) then
        return;
    end if;
    raise exception using
        errcode = '22023',
        message = format('Prefer: count=%s is not allowed on %s', kind, left(target, 100)),
        detail = 'Planned and estimated counts come from the planner''s statistics, which cover rows this request may not see.',
        hint = 'Ask for Prefer: count=exact, which counts only the rows you can see, or for no count.';
end
$fn$;

comment on function iam.check_count(text, text) is
    'Raises 22023 (HTTP 400) for Prefer: count=planned or count=estimated on a protected relation: a table with row-level security or a partition of one, any view, any /rpc/ function, or a name no relation has. headers is request.headers, path request.path. Called by iam.check_request.';

create or replace function iam.check_request() returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- PostgREST's db-pre-request (policies/postgrest.conf sets it): runs after
-- PostgREST's set_configs, before any query, including RPCs and tables
-- iamc does not manage. In order: the request's count (anyone's), the
-- token's audience and expiry, the deny list (the runtime refuses a blocked
-- subject anyway wherever it computes the caller's id). The subject is read
-- as text whatever its JSON type, so a malformed claim cannot dodge the
-- list. Then, in a write request only, the caller's profile in the user
-- directory (iam.sync_user: a probe, and a write only when the token says
-- something new or the last one is a minute old); GET and HEAD run READ
-- ONLY and write nothing. Volatile for that write.
declare
    s iam.settings;
    claims jsonb := iam.claims();
    raw text;
    subject text;
begin
    select * into s from iam.settings;
    perform iam.check_count(current_setting('request.headers', true), current_setting('request.path', true));
    perform iam.check_token(claims, s.audience, s.expiry_required);
    raw := nullif(claims ->> s.identity_claim, '');
    if raw is not null then
        subject := iam.canonical_subject(raw);
        perform iam.refuse_blocked(subject, raw);
        -- The profile, in write requests: written by iam.sync_user unless
        -- one probe finds it fresh and as the token says (most requests).
        if current_setting('transaction_read_only') = 'off' and not exists (
            select from iam.users u
            where u.user_id = subject and u.last_seen >= now() - interval '1 minute'
              and u.username is not distinct from (claims ->> s.username_claim)
              and u.email is not distinct from (claims ->> s.email_claim)
              and u.name is not distinct from (claims ->> s.name_claim)
              and u.email_verified = (u.email is not null and coalesce(claims -> 'email_verified' = 'true'::jsonb, false))) then
            perform iam.sync_user(false);
        end if;
    end if;
end
$fn$;

comment on function iam.check_request() is
    '[runtime-callable] PostgREST db-pre-request: refuses Prefer: count=planned/estimated on protected relations (22023, HTTP 400), a token without the declared audience or without exp (28000, HTTP 403) and a subject on iam.blocked_subjects (28000, HTTP 403) before the request''s query runs, whatever the request touches; in write requests, keeps the caller''s profile in iam.users. Definer: the settings, the deny list and the directory are not readable by the runtime roles.';

-- ---------------------------------------------------------------------------
-- People: the user directory, invitations, ownership transfer and the audit
-- trail (SPEC §11, "People"). The tables are step 0004b's.
-- ---------------------------------------------------------------------------

comment on table iam.audit_log is
    'Every change of who may do what, appended in the transaction of the change: group and membership changes, invitations, ownership transfers, blocks, iamc apply runs. Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE; iam.purge_audit_log(days) removes old entries. actor is the caller''s user id (NULL for a DBA''s SQL), db_role the login role (session_user).';

create or replace function iam.audit(action text, gid bigint, subject text, object text, old_value jsonb, new_value jsonb)
    returns void
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $fn$
-- Called by the functions that change who may do what, in their
-- transaction, after the change: a failed change leaves no entry, and an
-- entry never stands without its change. Not a definer: it runs with the
-- rights of its caller (the group API's definers, the owner role's block
-- and unblock); no runtime role may call it.
begin
    insert into iam.audit_log (actor, action, group_id, subject, object, old_value, new_value)
    values (iam.caller_id(), action, gid, subject, object, old_value, new_value);
end
$fn$;

comment on function iam.audit(text, bigint, text, text, jsonb, jsonb) is
    'Appends one entry to iam.audit_log: the caller (iam.caller_id), the action, the group, the subject (a user id), the object (an invitation, a row) and the old and new values. Called by the functions that make the change; granted to nobody.';

create or replace function iam.audit_log_append_only() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $fn$
-- UPDATE never; DELETE only from iam.purge_audit_log, which says so for its
-- own statement; TRUNCATE never. The owner role and superusers can still
-- drop the trigger (DDL, which plan reports as drift): the guarantee is
-- against ordinary SQL, by every role.
begin
    if tg_op = 'DELETE' and current_setting('iam.purging_audit_log', true) = 'on' then
        return old;
    end if;
    raise exception using
        errcode = '42501',
        message = format('iam.audit_log is append-only: %s is refused', tg_op),
        detail = 'Entries record changes of who may do what; they are never changed or removed one by one.',
        hint = 'To remove entries older than N days, run select iam.purge_audit_log(N) as the owner role.';
end
$fn$;

comment on function iam.audit_log_append_only() is
    'Trigger of iam.audit_log: refuses UPDATE, TRUNCATE and DELETE (but that of iam.purge_audit_log).';

create or replace trigger audit_log_append_only
    before update or delete on iam.audit_log
    for each row execute function iam.audit_log_append_only();

create or replace trigger audit_log_no_truncate
    before truncate on iam.audit_log
    for each statement execute function iam.audit_log_append_only();

create or replace function iam.purge_audit_log(days integer) returns bigint
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $fn$
-- Retention: the one way entries go. Not a definer, and granted to nobody:
-- only the owner role (and superusers) may run it. The purge is itself an
-- entry, which stays.
declare
    removed bigint;
    cutoff timestamptz;
begin
    if days is null or days < 1 then
        raise exception using errcode = '22023',
            message = 'days must be at least 1',
            detail = 'Entries older than this many days are removed; the newest day always stays.',
            hint = 'For example: select iam.purge_audit_log(365);';
    end if;
    cutoff := now() - make_interval(days => days);
    perform set_config('iam.purging_audit_log', 'on', true);
    delete from iam.audit_log where at < cutoff;
    get diagnostics removed = row_count;
    perform set_config('iam.purging_audit_log', 'off', true);
    perform iam.audit('audit.purge', null, null, null, null, jsonb_build_object('older_than', cutoff, 'removed', removed));
    return removed;
end
$fn$;

comment on function iam.purge_audit_log(integer) is
    'Retention of the audit trail: removes the entries of iam.audit_log older than this many days (at least 1) and records that it did; returns how many. Owner role only.';

comment on table iam.users is
    'The user directory: each user''s username, email (with email_verified) and name as their last write request''s token said (the claims of the .iam groups block), first and last seen. Filled by iam.sync_user; read only by the iam functions: no request lists it.';

create or replace function iam.profile_claim(claims jsonb, claim text, max_length integer) returns text
    language plpgsql immutable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- A profile claim as the directory keeps it: a JSON string, trimmed, at
-- most max_length characters, without control characters; anything else
-- is not kept (NULL) rather than refused: a profile never fails a request.
declare
    value text;
begin
    if claim is null or jsonb_typeof(claims -> claim) is distinct from 'string' then
        return null;
    end if;
    value := btrim(claims ->> claim);
    if value = '' or char_length(value) > max_length or value ~ E'[\\u0001-\\u001f\\u007f-\\u009f]' then
        return null;
    end if;
    return value;
end
$fn$;

comment on function iam.profile_claim(jsonb, text, integer) is
    'A claim of the token as the user directory keeps it: a non-empty string of at most max_length characters without control characters, trimmed; NULL otherwise.';

create or replace function iam.sync_user(force boolean) returns iam.users
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- The caller's profile from their token: inserted the first time, updated
-- when a claim changed or (force, or) the last update is a minute old, and
-- otherwise only read (a primary-key probe), so most requests write
-- nothing. Never waits: a profile another request of the same user is
-- updating is left to it (skip locked). Never refuses: a request without a
-- usable user id gets NULL (the functions that need one refuse it
-- themselves). Only in read-write transactions: callers check.
declare
    s iam.settings;
    claims jsonb := iam.claims();
    raw text;
    me text;
    u iam.users;
    p_username text;
    p_email text;
    p_verified boolean;
    p_name text;
begin
    select * into s from iam.settings;
    if jsonb_typeof(claims -> s.identity_claim) is distinct from 'string' then
        return null;
    end if;
    raw := nullif(claims ->> s.identity_claim, '');
    if raw is null or char_length(raw) > 1000 then
        return null;
    end if;
    if s.identity_type = 'uuid' then
        if raw !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
            return null;
        end if;
        me := lower(raw);
    else
        me := raw;
    end if;
    select * into u from iam.users where user_id = me;
    -- The common case, first and cheap: a profile written within the minute
    -- whose stored values are the token's claims as they stand (a stored
    -- value is a clean claim, so a claim equal to it is clean too).
    if found and not force and u.last_seen >= now() - interval '1 minute'
       and u.username is not distinct from (claims ->> s.username_claim)
       and u.email is not distinct from (claims ->> s.email_claim)
       and u.name is not distinct from (claims ->> s.name_claim)
       and u.email_verified = (u.email is not null and coalesce(claims -> 'email_verified' = 'true'::jsonb, false)) then
        return u;
    end if;
    p_username := iam.profile_claim(claims, s.username_claim, 255);
    p_email := iam.profile_claim(claims, s.email_claim, 320);
    -- Keycloak's email_verified: an address the user typed but did not
    -- confirm is kept, never found (iam.find_user), never shown as theirs.
    p_verified := p_email is not null and coalesce(claims -> 'email_verified' = 'true'::jsonb, false);
    p_name := iam.profile_claim(claims, s.name_claim, 255);

    if u.user_id is null then
        insert into iam.users (user_id, username, email, email_verified, name)
        values (me, p_username, p_email, p_verified, p_name)
        on conflict (user_id) do nothing
        returning * into u;
        if found then
            return u;
        end if;
        select * into u from iam.users where user_id = me;
    end if;
    if force or u.last_seen < now() - interval '1 minute'
       or u.username is distinct from p_username or u.email is distinct from p_email
       or u.email_verified is distinct from p_verified or u.name is distinct from p_name then
        update iam.users set username = p_username, email = p_email, email_verified = p_verified,
                             name = p_name, last_seen = now()
        where user_id = (select x.user_id from iam.users x where x.user_id = me for update skip locked)
        returning * into u;
    end if;
    return u;
end
$fn$;

comment on function iam.sync_user(boolean) is
    'Keeps the caller''s row of iam.users in step with their token (the profile claims of the groups block); writes only when something changed or a minute passed (always with force). NULL without a usable user id. Called in write requests by iam.check_request, the group API and sync_profile; granted to nobody.';

create or replace function iam.sync_profile() returns jsonb
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- POST /rpc/sync_profile: how a user who only ever reads enters the
-- directory (GET and HEAD write nothing). Returns the caller's own profile.
declare
    me text := iam.require_caller();
    u iam.users;
begin
    u := iam.sync_user(true);
    if u.user_id is null then
        select * into u from iam.users where user_id = me;
    end if;
    return jsonb_build_object('user_id', me, 'username', u.username, 'name', u.name, 'email', u.email,
                              'email_verified', coalesce(u.email_verified, false),
                              'first_seen', u.first_seen, 'last_seen', u.last_seen);
end
$fn$;

comment on function iam.sync_profile() is
    '[runtime-callable] POST /rpc/sync_profile: puts the caller''s profile (username, email, name from their token) into the user directory now, and returns it; the caller''s own data only.';

create or replace function iam.check_one_person(user_id text, username text, email text, params text) returns void
    language plpgsql immutable
    set search_path = pg_catalog, pg_temp
as $fn$
-- None: "user_id is required", as before usernames and emails (a client
-- that sends none gets the answer it always got); more than one: which?
begin
    if num_nonnulls(user_id, username, email) = 0 then
        raise exception using errcode = '22023',
            message = 'user_id is required',
            detail = format('The request names nobody: pass one of %s.', params),
            hint = 'For example {"group_id": 1, "username": "bob"}; users are identified by the sub claim of their token.';
    end if;
    if num_nonnulls(user_id, username, email) > 1 then
        raise exception using errcode = '22023',
            message = format('name one person: one of %s, not several', params),
            detail = 'The request names more than one of them.',
            hint = 'For example {"group_id": 1, "username": "bob"}.';
    end if;
end
$fn$;

comment on function iam.check_one_person(text, text, text, text) is
    'Raises 22023 unless exactly one of a user id, a username and an email names the person a call is about (none: user_id is required).';

create or replace function iam.find_user(username text, email text) returns text
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- Finds a user by exact username or verified email (case-insensitive),
-- only among the people who share a group with the caller (database
-- memberships): whoever the caller can see in GET /group_members. A name
-- nobody has and a name of someone else get the same PT404, word for
-- word: no request tells whether a stranger exists. A name two profiles
-- held (Keycloak renamed one user and gave the name to another) is the one
-- seen last, before the shared group is asked for, so an old profile
-- never stands in for the current holder.
declare
    me text := iam.require_caller();
    found_id text;
    shown text := left(coalesce(username, email), 100);
begin
    if username is not null then
        select u.user_id into found_id from iam.users u
        where lower(u.username) = lower(find_user.username)
        order by u.last_seen desc, u.user_id limit 1;
    else
        select u.user_id into found_id from iam.users u
        where lower(u.email) = lower(find_user.email) and u.email_verified
        order by u.last_seen desc, u.user_id limit 1;
    end if;
    if found_id is null or not exists (
        select from iam.group_members mine
        join iam.group_members theirs on theirs.group_id = mine.group_id
        where mine.user_id = me and theirs.user_id = found_id) then
        raise exception using errcode = 'PT404',
            message = format('no one who shares a group with you has the %s %s', case when username is not null then 'username' else 'email' end, shown),
            detail = 'People are found by username or email only among those who share a group with you; whether anyone else has this name is not told.',
            hint = 'Invite them instead: POST /rpc/create_invitation, and send them the token.';
    end if;
    return found_id;
end
$fn$;

comment on function iam.find_user(text, text) is
    'The user id of the person with this exact username or verified email who shares a group with the caller; PT404, the same for everyone else and for nobody. Called by the group API; granted to nobody.';

create or replace function iam.managed_group_ids() returns bigint[]
    language plpgsql stable parallel unsafe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- The groups whose invitations and audit trail the caller reads: those
-- where a membership row makes them admin or higher (membership rows
-- manage a group; a token group gives access to rows only).
declare
    me text := iam.caller_id();
begin
    if me is null then
        return '{}';
    end if;
    return coalesce((select array_agg(m.group_id) from iam.group_members m
                     join iam.group_roles r on r.name = m.role
                     where m.user_id = me and r.rank >= iam.role_rank(iam.manage_role())), '{}');
end
$fn$;

comment on function iam.managed_group_ids() is
    '[runtime-callable] Ids of the groups the caller manages (a membership row with iam.manage_role() or higher: admin by default): the rows of GET /group_invitations and GET /group_audit.';

-- Invitations ----------------------------------------------------------------

comment on table iam.invitations is
    'Invitations to groups: the SHA-256 of a random token (the token itself is never stored), the role it gives, how often it may be used and until when. Written by iam.create_invitation, accept_invitation and revoke_invitation; no runtime role reads it.';

create or replace function iam.new_invitation_token() returns text
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $fn$
-- 32 bytes from two version 4 uuids of gen_random_uuid (PostgreSQL's strong
-- random source, core since 13; 244 of the 256 bits are random), as
-- base64url without padding: 43 characters a URL or a JSON string carries
-- unchanged.
begin
    return rtrim(translate(encode(decode(
        replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64'), '+/', '-_'), '=');
end
$fn$;

comment on function iam.new_invitation_token() is
    'A new invitation token: 43 characters of base64url carrying 244 random bits (two gen_random_uuid). Stored only as its SHA-256.';

create or replace function iam.refuse_invitation() returns void
    language plpgsql immutable
    set search_path = pg_catalog, pg_temp
as $fn$
-- One answer for an unknown, expired, revoked or used-up token: whoever
-- holds a token learns nothing from the refusal but that it does not work.
begin
    raise exception using
        errcode = 'PT404',
        message = 'this invitation is not valid',
        detail = 'The token is unknown, expired, revoked or used up (the four are not told apart).',
        hint = 'Ask whoever invited you for a new invitation.';
end
$fn$;

comment on function iam.refuse_invitation() is
    'Raises PT404 (HTTP 404): the one answer to a token that does not make anyone a member.';

create or replace function iam.invitation_usable(inv iam.invitations, at timestamptz) returns boolean
    language plpgsql immutable
    set search_path = pg_catalog, pg_temp
as $fn$
-- Can the invitation still make someone a member at this time? Not once
-- revoked, expired (expires_at is the first moment it no longer works) or
-- used max_uses times. The time is an argument: accept_invitation passes
-- now(), tests any time they like.
begin
    return inv.revoked_at is null and at < inv.expires_at and inv.uses < inv.max_uses;
end
$fn$;

comment on function iam.invitation_usable(iam.invitations, timestamptz) is
    'Whether an invitation can still be accepted at a time: not revoked, not expired (at < expires_at), not used up.';

create or replace function iam.create_invitation(gid bigint, invite_role text, expires_in interval, max_uses integer) returns jsonb
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- The group's managers invite (iam.manage_role() and above: owners and
-- admins by default), each to a role up to their own, as they add members
-- (so only owners invite owners). The token is returned once and stored
-- only as its SHA-256.
declare
    me text := iam.require_caller();
    my_role text;
    s iam.settings;
    token text := iam.new_invitation_token();
    inv iam.invitations;
    open_count bigint;
begin
    perform iam.sync_user(false);
    if gid is null then
        perform iam.refuse_null('group_id', 'Pass the group''s id, as create_group returned it.');
    end if;
    perform iam.check_role_name(invite_role);
    if expires_in is null then
        perform iam.refuse_null('expires_in', 'Pass how long the invitation stays valid, e.g. "7 days" or "2 hours".');
    end if;
    if max_uses is null then
        perform iam.refuse_null('max_uses', 'Pass how many people may use the invitation, e.g. 1.');
    end if;
    select * into s from iam.settings;
    if expires_in <= interval '0' or expires_in > interval '30 days' then
        raise exception using errcode = '22023',
            message = format('expires_in must be more than 0 and at most 30 days, not %s', left(expires_in::text, 100)),
            detail = 'An invitation is a secret that makes anyone holding it a member: it expires within 30 days.',
            hint = 'Pass e.g. "7 days" or "2 hours"; invite again when it expired.';
    end if;
    if max_uses < 1 or max_uses > s.max_members_per_group then
        raise exception using errcode = '22023',
            message = format('max_uses must be from 1 to %s, not %s', s.max_members_per_group, max_uses),
            detail = 'A group has at most max members per group members (the .iam groups block).',
            hint = 'Pass 1 for one person, more for a link several people use.';
    end if;
    -- Lock first, then check the caller's role (see iam.lock_group).
    perform iam.lock_group(gid);
    my_role := iam.require_group_role(gid, iam.manage_role(), 'invite people');
    -- Nobody invites to a role above their own (so only owners invite owners).
    if iam.role_rank(invite_role) > iam.role_rank(my_role) then
        raise exception using errcode = '42501',
            message = format('only %s of group %s can invite %ss', iam.role_holders(invite_role), gid, invite_role),
            hint = format('Invite with a role up to yours (%s).', my_role);
    end if;
    -- Invitations that can no longer be used go (the audit trail keeps
    -- their history); the open ones count against the quota.
    delete from iam.invitations i
    where i.group_id = gid and not iam.invitation_usable(i, now());
    select count(*) into open_count from iam.invitations i where i.group_id = gid;
    if open_count >= s.max_invitations_per_group then
        raise exception using errcode = 'PT429',
            message = format('group %s has %s open invitations, the most it may have', gid, open_count),
            detail = 'The limit is max invitations per group in the .iam groups block.',
            hint = 'Revoke invitations nobody will use (GET /group_invitations lists them), or wait for them to expire.';
    end if;
    loop
        insert into iam.invitations (id, group_id, role, token_sha256, max_uses, expires_at, created_by)
        values (iam.new_group_id(), gid, invite_role, sha256(convert_to(token, 'UTF8')), max_uses, now() + expires_in, me)
        on conflict (id) do nothing
        returning * into inv;
        exit when inv.id is not null;
    end loop;
    perform iam.audit('invitation.create', gid, null, 'invitation ' || inv.id, null,
        jsonb_build_object('role', inv.role, 'max_uses', inv.max_uses, 'expires_at', inv.expires_at));
    return jsonb_build_object('invitation_id', inv.id, 'token', token, 'group_id', gid, 'role', inv.role,
                              'max_uses', inv.max_uses, 'expires_at', inv.expires_at);
end
$fn$;

comment on function iam.create_invitation(bigint, text, interval, integer) is
    '[runtime-callable] Owners and admins of the group create an invitation (only owners invite owners); returns its id and the token, which is stored only as its SHA-256.';

create or replace function iam.accept_invitation(token text) returns jsonb
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- The invitation is found by the hash of the token, then the group is
-- locked (as every membership change locks it, so this and revoke, or two
-- accepts, run one after the other), then the invitation is read again,
-- locked, and checked: two accepts of a single-use invitation at once make
-- exactly one member, the other is refused like a used-up token.
declare
    me text := iam.require_caller();
    digest bytea;
    gid bigint;
    inv iam.invitations;
    old_role text;
begin
    perform iam.sync_user(false);
    if token is null or token = '' then
        perform iam.refuse_null('token', 'Pass the token of the invitation, as create_invitation returned it.');
    end if;
    digest := sha256(convert_to(token, 'UTF8'));
    select i.group_id into gid from iam.invitations i where i.token_sha256 = digest;
    if gid is null then
        perform iam.refuse_invitation();
    end if;
    perform from iam.groups g where g.id = gid for update;
    select * into inv from iam.invitations i where i.token_sha256 = digest for update;
    if inv.id is null or not iam.invitation_usable(inv, now()) then
        perform iam.refuse_invitation();
    end if;
    select m.role into old_role from iam.group_members m where m.group_id = gid and m.user_id = me;
    if old_role is not null and iam.role_rank(old_role) >= iam.role_rank(inv.role) then
        raise exception using errcode = '23505',
            message = format('you are already a member of group %s, as %s', gid, old_role),
            detail = format('The invitation is for %s; an invitation never lowers a role, and this one would not raise yours.', inv.role),
            hint = 'Nothing was changed, and the invitation is not used up; GET /groups lists your groups.';
    end if;
    if old_role is null then
        perform iam.check_group_quota(gid);
        perform iam.check_user_quota(me, false);
        insert into iam.group_members (group_id, user_id, role, added_by) values (gid, me, inv.role, inv.created_by);
    else
        update iam.group_members m set role = inv.role where m.group_id = gid and m.user_id = me;
    end if;
    update iam.invitations i set uses = i.uses + 1 where i.id = inv.id;
    perform iam.audit('invitation.accept', gid, me, 'invitation ' || inv.id,
        case when old_role is not null then jsonb_build_object('role', old_role) end,
        jsonb_build_object('role', inv.role, 'invited_by', inv.created_by));
    return jsonb_build_object('group_id', gid, 'role', inv.role);
end
$fn$;

comment on function iam.accept_invitation(text) is
    '[runtime-callable] POST /rpc/accept_invitation {"token"}: makes the caller a member of the invitation''s group with its role (or raises their role to it); PT404 for an unknown, expired, revoked or used-up token alike.';

create or replace function iam.revoke_invitation(invitation_id bigint) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
declare
    me text := iam.require_caller();
    gid bigint;
    inv iam.invitations;
begin
    if invitation_id is null then
        perform iam.refuse_null('invitation_id', 'Pass the invitation''s id, as create_invitation returned it or GET /group_invitations lists it.');
    end if;
    select i.group_id into gid from iam.invitations i where i.id = invitation_id;
    -- An invitation of a group the caller is not in answers as one that
    -- does not exist.
    if gid is null or iam.group_role(gid) is null then
        raise exception using errcode = 'PT404',
            message = format('invitation %s is not an invitation of your groups', invitation_id),
            detail = 'No invitation with this id belongs to a group you are in: it does not exist, or it is another group''s (the two are not told apart).',
            hint = 'GET /group_invitations lists the open invitations of the groups you manage.';
    end if;
    perform iam.lock_group(gid);
    perform iam.require_group_role(gid, iam.manage_role(), 'revoke invitations');
    select * into inv from iam.invitations i where i.id = invitation_id for update;
    if inv.id is null or inv.revoked_at is not null then
        return; -- revoked (or cleared) meanwhile: nothing to do
    end if;
    update iam.invitations i set revoked_at = now(), revoked_by = me where i.id = inv.id;
    perform iam.audit('invitation.revoke', gid, null, 'invitation ' || inv.id,
        jsonb_build_object('role', inv.role, 'uses', inv.uses, 'max_uses', inv.max_uses, 'expires_at', inv.expires_at), null);
end
$fn$;

comment on function iam.revoke_invitation(bigint) is
    '[runtime-callable] Owners and admins of the group revoke one of its invitations; PT404 for an id that is not an invitation of the caller''s groups.';

-- Ownership transfer ---------------------------------------------------------

create or replace function iam.transfer_group(gid bigint, to_user_id text, to_username text, to_email text) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- An owner hands the group to another of its members: they become an
-- owner, the caller steps down to the role below owner (admin), so the
-- group keeps an owner and its old owner keeps managing it. created_by
-- (which the quota of groups created per user counts) stays: the group
-- was created by them.
declare
    me text := iam.require_caller();
    recipient text;
    their_role text;
    step_down text;
begin
    if gid is null then
        perform iam.refuse_null('group_id', 'Pass the group''s id, as create_group returned it.');
    end if;
    perform iam.check_one_person(to_user_id, to_username, to_email, 'user_id, username or email');
    if to_user_id is not null then
        recipient := iam.normalize_user_id(to_user_id);
    end if;
    perform iam.lock_group(gid);
    perform iam.require_group_role(gid, 'owner', 'hand the group over');
    if recipient is null then
        recipient := iam.find_user(to_username, to_email);
    end if;
    select m.role into their_role from iam.group_members m where m.group_id = gid and m.user_id = recipient;
    if their_role is null then
        raise exception using errcode = 'PT404',
            message = format('%s is not a member of group %s', left(coalesce(to_username, to_email, recipient), 100), gid),
            hint = 'A group is handed to one of its members: add them first (or invite them).';
    end if;
    if recipient = me then
        raise exception using errcode = '22023',
            message = format('you already own group %s', gid),
            hint = 'Name the member who is to own it.';
    end if;
    select r.name into step_down from iam.group_roles r
    where r.rank < (select o.rank from iam.group_roles o where o.name = 'owner')
    order by r.rank desc limit 1;
    update iam.group_members m set role = 'owner' where m.group_id = gid and m.user_id = recipient;
    update iam.group_members m set role = step_down where m.group_id = gid and m.user_id = me;
    perform iam.audit('group.transfer', gid, recipient, null,
        jsonb_build_object('role', their_role, 'owner_role', 'owner'),
        jsonb_build_object('role', 'owner', 'owner_role', step_down));
end
$fn$;

comment on function iam.transfer_group(bigint, text, text, text) is
    '[runtime-callable] An owner of the group hands it to another member: they become owner, the caller admin.';

comment on table iam.transfer_grants is
    'Grants of the row transfers running now: a <table>_transfer function writes one (iam.grant_transfer) for its own transaction (the table, from whom, to whom), the row guard and the transfer policy read it, and the transfer removes it before it returns. Empty between transactions.';

create or replace function iam.transfer_pending(tbl regclass) returns boolean
    language plpgsql stable parallel safe security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- The transfer policy of a resource asks this once per statement: is a
-- transfer of one of this table's rows under way in the caller's own
-- transaction? Almost always no, without a lookup: a transaction that
-- wrote nothing yet has no transaction id, and a grant is a write.
declare
    tx xid8 := pg_current_xact_id_if_assigned();
begin
    return tx is not null
       and exists (select from iam.transfer_grants g where g.txid = tx and g.table_oid = tbl);
end
$fn$;

comment on function iam.transfer_pending(regclass) is
    '[runtime-callable] Is a transfer of a row of this table under way in the caller''s own transaction (a <table>_transfer function)? Asked by the resource''s transfer policy.';

create or replace function iam.grant_transfer(tbl regclass, row_key text, to_user_id text, to_username text, to_email text)
    returns text
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- Checks the recipient and leaves the grant the row guard and the
-- transfer policy look for; returns the recipient's id. The table must be
-- a resource iamc offers transfers on: its transfer policy exists.
declare
    me text := iam.require_caller();
    recipient text;
begin
    perform iam.sync_user(false);
    if row_key is null then
        perform iam.refuse_null('id', 'Pass the row''s key.');
    end if;
    perform iam.check_one_person(to_user_id, to_username, to_email, 'user_id, username or email');
    if not exists (select from pg_policy p where p.polrelid = tbl and p.polname = 'iam: authenticated can transfer') then
        raise exception using errcode = '42501',
            message = format('rows of %s cannot be handed over', tbl),
            hint = 'The .iam file offers transfers with owner can transfer.';
    end if;
    if to_user_id is not null then
        -- A user id names anyone in the directory: ids are not guessed
        -- (uuids), and knowing one is knowing the person.
        recipient := iam.normalize_user_id(to_user_id);
        if not exists (select from iam.users u where u.user_id = recipient) then
            raise exception using errcode = 'PT404',
                message = format('%s is not in the user directory', left(recipient, 100)),
                detail = 'A row is handed only to someone the directory knows: a user who made a write request or called POST /rpc/sync_profile.',
                hint = 'Ask them to sign in and call POST /rpc/sync_profile once.';
        end if;
    else
        recipient := iam.find_user(to_username, to_email);
    end if;
    if recipient = me then
        raise exception using errcode = '22023',
            message = 'you cannot hand a row to yourself',
            hint = 'Name the user who is to own it.';
    end if;
    insert into iam.transfer_grants (table_oid, from_user, to_user) values (tbl, me, recipient)
    on conflict (txid, table_oid) do update set from_user = excluded.from_user, to_user = excluded.to_user, used = false;
    return recipient;
end
$fn$;

comment on function iam.grant_transfer(regclass, text, text, text, text) is
    '[runtime-callable] Part of every <table>_transfer function: checks who is to get the row (in the user directory, or found by name among the people who share a group with the caller) and records the grant for this transaction only. Alone it changes no row: the caller must then own the row, and the row guard checks the grant.';

create or replace function iam.take_transfer(tbl oid, new_row jsonb, from_user text, to_user text, gid bigint, create_role text)
    returns boolean
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- The row guard asks this when an update changes a row's owner: is it the
-- transfer granted in the caller's own transaction (from the caller, to
-- that user, on this table), not yet used? A grant hands over one row. A
-- row in a group goes only to a member who may put rows into the group (a
-- row in a group is owned by such a member), and only while the caller is
-- still a member (§11: a former member's edits of the row are over; they
-- delete it instead). Records the transfer in the audit trail, with the
-- row's group (whose owners and admins read it).
declare
    me text := iam.caller_id();
    tx xid8 := pg_current_xact_id_if_assigned();
    g iam.transfer_grants;
    their_rank integer;
begin
    -- Only the row guard asks (a trigger): called from anywhere else, an
    -- RPC of the caller's own could use the grant up and record a transfer
    -- that never happened.
    if pg_trigger_depth() = 0 then
        return false;
    end if;
    select * into g from iam.transfer_grants t
    where t.txid = tx and t.table_oid = tbl and not t.used
    for update;
    if me is null or tx is null or g.txid is null or from_user is distinct from me
       or g.from_user <> me or g.to_user is distinct from to_user then
        return false;
    end if;
    if gid is not null then
        if iam.group_role(gid) is null then
            raise exception using errcode = '42501',
                message = format('you can no longer hand over this row: it is in group %s, which you are not in', gid),
                hint = 'Delete the row instead, or ask to be added to the group again.';
        end if;
        select r.rank into their_rank from iam.group_members m join iam.group_roles r on r.name = m.role
        where m.group_id = gid and m.user_id = to_user;
        if their_rank is null or their_rank < coalesce(iam.role_rank(create_role), 1) then
            raise exception using errcode = '42501',
                message = format('%s cannot own a row of group %s', left(to_user, 100), gid),
                detail = format('A row in a group is owned by a member who may put rows into it (%s or higher).', coalesce(create_role, 'any role')),
                hint = 'Add them to the group with that role first, or move the row out of the group.';
        end if;
    end if;
    update iam.transfer_grants t set used = true where t.txid = g.txid and t.table_oid = tbl;
    perform iam.audit('row.transfer', gid, to_user, format('%s %s', tbl::regclass, left(iam.row_key(tbl, new_row), 100)),
        jsonb_build_object('owner', from_user), jsonb_build_object('owner', to_user));
    return true;
end
$fn$;

comment on function iam.take_transfer(oid, jsonb, text, text, bigint, text) is
    '[runtime-callable] Row guard: is this change of owner the transfer granted in the caller''s own transaction, to a recipient who may own the row there? Uses the grant up (one row) and records the transfer in the audit trail.';

create or replace function iam.finish_transfer(tbl regclass) returns void
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $fn$
-- After the update: the grant goes (it was for this transaction only).
begin
    delete from iam.transfer_grants t where t.txid = pg_current_xact_id_if_assigned() and t.table_oid = tbl;
end
$fn$;

comment on function iam.finish_transfer(regclass) is
    '[runtime-callable] Part of every <table>_transfer function, after the update: removes the caller''s grant of this transaction.';

create or replace function iam.row_key(tbl oid, r jsonb) returns text
    language plpgsql stable
    set search_path = pg_catalog, pg_temp
as $fn$
-- The row's single-column primary key as text (for the audit trail), or
-- NULL when the table has none.
begin
    return (select r ->> a.attname::text
            from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
            where i.indrelid = tbl and i.indisprimary and i.indnatts = 1);
end
$fn$;

comment on function iam.row_key(oid, jsonb) is
    'The value of the table''s one-column primary key in a row (as jsonb), as text; NULL without one.';

create or replace function iam.transfer_recipient(tbl regclass) returns text
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $fn$
begin
    return (select g.to_user from iam.transfer_grants g
            where g.txid = pg_current_xact_id_if_assigned() and g.table_oid = tbl and g.from_user = iam.caller_id());
end
$fn$;

comment on function iam.transfer_recipient(regclass) is
    '[runtime-callable] Part of every <table>_transfer function: the user the caller''s own transaction is handing a row of this table to (iam.grant_transfer), or NULL.';

create or replace function iam.refuse_not_owner(tbl text, key_column text, row_key text) returns void
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $fn$
-- Volatile, though it reads nothing: a <table>_transfer function calls it
-- under a WHERE (select ... where not exists (...)), and PostgreSQL folds an
-- immutable call with constant arguments while planning, before the WHERE
-- is known; PostgreSQL 18 plans SQL functions' statements with the
-- parameters' values, so it raised for every transfer.
begin
    raise exception using errcode = 'PT404',
        message = format('you own no row of %s with %s %s', tbl, key_column, left(row_key, 100)),
        detail = 'The row does not exist, or it is not yours (the two are not told apart).',
        hint = 'Only a row''s owner hands it over.';
end
$fn$;

comment on function iam.refuse_not_owner(text, text, text) is
    'Raises PT404 (HTTP 404): a <table>_transfer function found no row of the caller''s with that key, whether it exists or not.';

-- Shares: when a resource offers row shares, granting and revoking one is
-- a change of who may do what, and its function records it like the rest:
-- perform iam.audit('share.grant' | 'share.revoke', <the row''s group>,
-- <the recipient>, '<table> <key>', <old>, <new>).

-- A DBA links a group to a Keycloak group path by hand (update iam.groups
-- set token_name = ...): every token naming the path then counts as a
-- member, so that is a change of who may do what too.
create or replace function iam.audit_token_name() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $fn$
begin
    if new.token_name is distinct from old.token_name then
        perform iam.audit('group.link', new.id, null, null,
            jsonb_build_object('token_name', old.token_name), jsonb_build_object('token_name', new.token_name));
    end if;
    return null;
end
$fn$;

comment on function iam.audit_token_name() is
    'Trigger of iam.groups: records a change of token_name (the Keycloak group path whose tokens count as members) in the audit trail.';

create or replace trigger groups_audit_token_name
    after update of token_name on iam.groups
    for each row execute function iam.audit_token_name();

-- ---------------------------------------------------------------------------
-- Keycloak roles and claims: what rules grant by besides the user id
-- (role 'moderator', role 'editor' of client 'todo-app', keeper = claim
-- 'user_type'), and a resource's tenant (tenant column org_id from claim
-- 'org_id'). Policies call them as (select ...), once per statement.
-- ---------------------------------------------------------------------------

create or replace function iam.has_client_role(client text, role_name text) returns boolean
    language plpgsql stable parallel unsafe
    set search_path = pg_catalog, pg_temp
as $fn$
-- A role of one client, where Keycloak puts it: resource_access.<client>.roles.
-- As for iam.has_realm_role, only a string element of an array counts
-- (jsonb's ? would match an object's key or a bare string too).
declare
    roles jsonb := iam.claims() -> 'resource_access' -> client -> 'roles';
begin
    if jsonb_typeof(roles) = 'array' and roles ? role_name then
        -- A role does not outrank the deny list.
        perform iam.caller_id();
        return true;
    end if;
    return false;
end
$fn$;

comment on function iam.has_client_role(text, text) is
    'Does the Keycloak token list this role of this client in resource_access.<client>.roles? Used by rules for client roles.';

create or replace function iam.claim_text(variadic path text[]) returns text
    language plpgsql stable parallel safe
    set search_path = pg_catalog, pg_temp
as $fn$
-- The claim at path (a Keycloak claim name split at its dots) when it is a
-- non-empty JSON string; NULL when it is missing, empty, or anything else (a
-- number, an array, an object): a column compared with it matches no row.
declare
    value jsonb := iam.claims() #> path;
begin
    if jsonb_typeof(value) is distinct from 'string' then
        return null;
    end if;
    return nullif(value #>> '{}', '');
end
$fn$;

comment on function iam.claim_text(text[]) is
    'A string claim of the token (NULL when missing, empty or not a string): the tenant of a resource with a tenant column.';

create or replace function iam.claim_match(variadic path text[]) returns text
    language plpgsql stable parallel unsafe
    set search_path = pg_catalog, pg_temp
as $fn$
-- iam.claim_text for a rule that grants rows by the claim (keeper = claim
-- 'user_type'): like a role, a claim does not outrank the deny list.
declare
    value text := iam.claim_text(variadic path);
begin
    if value is not null then
        perform iam.caller_id();
    end if;
    return value;
end
$fn$;

comment on function iam.claim_match(text[]) is
    'iam.claim_text for a rule that grants rows whose column equals the claim; refuses a blocked caller.';
