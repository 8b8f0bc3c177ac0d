-- The roles of the example deployment, exactly as the PostgREST set-up defines them.
-- Owner for schemas/objects (no login)
create role api_owner noinherit;
-- Runtime roles (what requests run as)
create role web_anon nologin;
create role web_user nologin;
-- PostgREST connection user
create role authenticator login noinherit password 'mypass';
-- Allow PostgREST to SET ROLE to runtime roles
grant web_anon to authenticator;
grant web_user to authenticator;
