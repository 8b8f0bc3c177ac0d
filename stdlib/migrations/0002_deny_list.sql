-- Runtime 2: the deny list (iam.block_subject writes it; the id helpers
-- and iam.check_request read it).
create table if not exists iam.blocked_subjects (
    subject text primary key check (length(subject) between 1 and 1000),
    reason text not null check (length(btrim(reason)) > 0),
    tokens_issued_before timestamptz,
    blocked_at timestamptz not null default now(),
    blocked_by text not null default current_user
);
