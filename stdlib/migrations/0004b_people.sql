-- Runtime 4, second step: people. The user directory filled from the
-- token (iam.users), invitations to groups (iam.invitations), the grants
-- a row transfer leaves for the row guard (iam.transfer_grants), the
-- append-only audit trail (iam.audit_log), and the settings they read.
-- Each change only where it is missing, as every step.

alter table iam.settings
    add column if not exists username_claim text,
    add column if not exists email_claim text,
    add column if not exists name_claim text,
    add column if not exists members_see_email boolean not null default false,
    add column if not exists max_invitations_per_group integer not null default 100;

-- The directory: one row per user who made a write request (or called
-- sync_profile), with what their last token said. Only the iam functions
-- read it. Usernames and emails are looked up case-insensitively, emails
-- only when the identity provider verified them.
create table if not exists iam.users (
    user_id text primary key check (length(user_id) between 1 and 1000),
    username text check (length(username) between 1 and 255),
    email text check (length(email) between 1 and 320),
    email_verified boolean not null default false,
    name text check (length(name) between 1 and 255),
    first_seen timestamptz not null default now(),
    last_seen timestamptz not null default now()
);

create index if not exists users_username_idx on iam.users (lower(username)) where username is not null;
create index if not exists users_email_idx on iam.users (lower(email)) where email is not null and email_verified;

-- Invitations: a random token, stored only as its SHA-256, makes whoever
-- presents it a member of the group with the role, up to max_uses times,
-- until it expires or is revoked. Ids are random (iam.new_group_id), as
-- group ids are: a sequence would count the invitations of every group.
-- An invitation to a role the .iam files no longer declare goes with it
-- (a role move, role X becomes Y, moves invitations as memberships).
create table if not exists iam.invitations (
    id bigint primary key,
    group_id bigint not null references iam.groups (id) on delete cascade,
    role text not null references iam.group_roles (name) on delete cascade,
    token_sha256 bytea not null unique check (length(token_sha256) = 32),
    max_uses integer not null check (max_uses >= 1),
    uses integer not null default 0 check (uses between 0 and max_uses),
    expires_at timestamptz not null,
    created_by text not null,
    created_at timestamptz not null default now(),
    revoked_at timestamptz,
    revoked_by text
);

create index if not exists invitations_group_id_idx on iam.invitations (group_id);

-- A row transfer (<table>_transfer) leaves one row here for its own
-- transaction: the table, the owner it takes the row from and the one it
-- hands it to. The row guard lets the owner column change only against it,
-- once (used), and the transfer removes it before it returns.
create table if not exists iam.transfer_grants (
    txid xid8 not null default pg_catalog.pg_current_xact_id(),
    table_oid oid not null,
    from_user text not null,
    to_user text not null,
    used boolean not null default false,
    primary key (txid, table_oid)
);

-- The audit trail: one row per change of who may do what, written in the
-- transaction of the change. A trigger (runtime.sql) refuses UPDATE,
-- DELETE and TRUNCATE; iam.purge_audit_log is the one way entries go.
create table if not exists iam.audit_log (
    id bigint generated always as identity primary key,
    at timestamptz not null default now(),
    txid xid8 not null default pg_catalog.pg_current_xact_id(),
    actor text,
    db_role text not null default session_user,
    action text not null,
    group_id bigint,
    subject text,
    object text,
    old_value jsonb,
    new_value jsonb
);

create index if not exists audit_log_group_id_idx on iam.audit_log (group_id, at) where group_id is not null;
create index if not exists audit_log_at_idx on iam.audit_log (at);
