-- The example with its two large tables partitioned, as a DBA running
-- PostgREST at scale would (README: Partitioning a resource), run after
-- schema.sql. The .iam files do not change: iamc finds the partitions.
--
--   app.chats  range-partitioned by created_at, a partition a month: the
--              previous, this and the next month, and a default partition;
--              its primary key (id, created_at) holds the partition key, and
--              id, the page key, is an identity column generated always.
--   app.todos  range-partitioned by id (the page key), a partition per
--              million ids: pages read only the newest partitions.
set role api_owner;

drop table if exists app.chats;
create table app.chats (
    id bigint generated always as identity,
    body text not null,
    owner_id uuid not null,
    -- the chat room (an iam group) a message is posted in
    group_id bigint null,
    created_at timestamptz not null default now(),
    primary key (id, created_at)
) partition by range (created_at);

do $do$
declare
    m date;
begin
    for m in select generate_series(date_trunc('month', now() - interval '1 month'), date_trunc('month', now() + interval '1 month'), interval '1 month')::date loop
        execute format('create table app.%I partition of app.chats for values from (%L) to (%L)',
                       'chats_p' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
    end loop;
end
$do$;
create table app.chats_default partition of app.chats default;

drop table if exists app.todos;
create table app.todos (
    id bigint generated always as identity primary key,
    title text not null,
    done boolean not null default false,
    owner_id uuid not null,
    -- the group a todo is shared with (iam groups use bigint keys)
    group_id bigint null,
    created_at timestamptz not null default now()
) partition by range (id);
create table app.todos_p0 partition of app.todos for values from (minvalue) to (1000000);
create table app.todos_p1 partition of app.todos for values from (1000000) to (2000000);

reset role;
