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

-- The marketplace (stores.iam): a store has an owner and may have a staff
-- group; its products take their access from the store (store_id).
create table if not exists app.stores (
    id bigint generated always as identity primary key,
    name text not null,
    owner_id uuid not null,
    -- the store's staff (an iam group)
    group_id bigint null,
    created_at timestamptz not null default now()
);

create table if not exists app.products (
    id bigint generated always as identity primary key,
    store_id bigint not null references app.stores (id) on delete cascade,
    name text not null,
    price numeric not null default 0,
    stock integer not null default 0,
    created_at timestamptz not null default now()
);

-- Notes of organisations (notes.iam): org_id is the tenant, filled from the
-- token's org_id claim.
create table if not exists app.notes (
    id bigint generated always as identity primary key,
    org_id text not null,
    owner_id uuid not null,
    group_id bigint,
    body text not null,
    created_at timestamptz default now()
);

reset role;
