-- Runtime 1: the settings row and the group tables, as runtime 1 made them
-- (later steps change them). IF NOT EXISTS: this first step may meet
-- tables made before any runtime recorded its version (a hand-made
-- install); it keeps them, and the later steps bring them up.
create table if not exists iam.settings (
    singleton boolean primary key default true check (singleton),
    identity_claim text not null,
    identity_type text not null check (identity_type in ('uuid', 'text')),
    token_groups_claim text,
    token_group_role text check (token_group_role in ('member', 'admin', 'owner')),
    admin_role text
);

create table if not exists iam.groups (
    id bigint generated always as identity primary key,
    name text not null check (length(btrim(name)) between 1 and 200),
    token_name text unique,
    created_by text not null,
    created_at timestamptz not null default now()
);

create table if not exists iam.group_members (
    group_id bigint not null references iam.groups (id) on delete cascade,
    user_id text not null,
    role text not null default 'member' check (role in ('member', 'admin', 'owner')),
    added_by text,
    added_at timestamptz not null default now(),
    primary key (group_id, user_id)
);

-- The membership helper looks members up by user: this index serves it.
create index if not exists group_members_user_id_idx on iam.group_members (user_id, group_id, role);
