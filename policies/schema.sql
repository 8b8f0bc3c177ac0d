-- The example application: todos and chats in schema app, owned by api_owner.
-- PostgREST serves it with db-schemas = "app". iamc adds the protection:
-- see todos.iam and chats.iam, and run `iamc build policies/`.
create schema if not exists app authorization api_owner;

set role api_owner;

create table if not exists app.todos (
    id bigint generated always as identity primary key,
    title text not null,
    done boolean not null default false,
    owner_id uuid not null,
    -- the group a todo is shared with (iam groups use bigint keys)
    group_id bigint null,
    created_at timestamptz not null default now()
);

create table if not exists app.chats (
    id bigint generated always as identity primary key,
    body text not null,
    owner_id uuid not null,
    -- the chat room (an iam group) a message is posted in
    group_id bigint null,
    created_at timestamptz not null default now()
);

reset role;
