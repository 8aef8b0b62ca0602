-- Sign-in, invitations and password resets (DESIGN.md sections 5 and 6): SECURITY DEFINER functions, the
-- only way the app role reaches password hashes, the login throttle, invitation tokens and reset links.
-- Each pins its search_path; their EXECUTE grants are at the end of this file.

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- Signed in: the organizations the current user may switch to.
-- ---------------------------------------------------------------------------------------------

-- The organizations the current user belongs to: the organization switcher reads this.
create or replace function my_memberships()
returns table (org_id uuid, org_name text, role text, contractor_id uuid)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select o.id, o.name, m.role, m.contractor_id
    from public.memberships m
    join public.organizations o on o.id = m.org_id
    join public.users u on u.id = m.user_id and u.is_active
   where m.user_id = public.app_user_id()
     and m.accepted_at is not null
   order by o.name, o.id
$$;

-- ---------------------------------------------------------------------------------------------
-- Sign-in. The app role cannot read password hashes (column grants in sql/rls_policies.sql), and the
-- database, not the caller, decides who is signed in: the server hashes the password it was given with
-- the account's method and salt (auth_password_salt), and auth_sign_in compares that with the stored
-- hash and, when they match, opens a sign-in session whose token only it makes. The helpers of
-- sql/rls_policies.sql believe no other identity from the web role, so SQL run as the web role cannot
-- become anyone without their password (or an invitation or reset link from their mailbox).
-- ---------------------------------------------------------------------------------------------

drop function if exists auth_lookup(text);

-- How to hash a password for this address: the method and salt of the account's hash ("method$salt",
-- as werkzeug writes them), and the end of a running sign-in lock. An address without a usable account
-- gets the caller's method with a salt made up from it and the server's salt key: the same on every
-- call, and looking like a real one, so the answer does not tell whether the account exists.
create or replace function auth_password_salt(p_email text, p_method text)
returns table (method_and_salt text, locked_until timestamptz)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select coalesce(
           (select substr(u.password_hash, 1, length(u.password_hash) - strpos(reverse(u.password_hash), '$'))
              from public.users u
             where lower(u.email) = lower(p_email) and u.is_active and u.password_hash is not null),
           p_method || '$' || substr(translate(encode(sha256(convert_to(s.salt_key || ':' || lower(p_email), 'UTF8')), 'base64'),
                                               '+/=', 'kQz'), 1, 16)),
         (select t.locked_until from public.login_throttle t
           where t.email_key = encode(sha256(convert_to(lower(p_email), 'UTF8')), 'hex') and t.locked_until > now())
    from public.login_settings s
$$;

-- A new sign-in session for an account: a token of 244 random bits (gen_random_uuid() draws from the
-- server's strong random source), kept as its sha256 and valid login_settings.session_hours. Only
-- the functions of this file call it (no grant).
create or replace function auth_open_session(p_user_id uuid) returns text
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_token text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
begin
  insert into public.user_sessions (user_id, token_hash, expires_at)
  select p_user_id, encode(sha256(convert_to(v_token, 'UTF8')), 'hex'), now() + make_interval(hours => s.session_hours)
    from public.login_settings s;
  return v_token;
end
$$;

-- Sign in: p_candidate is the password hashed by the server with auth_password_salt's method and salt
-- ("method$salt$hash"). Outcome 'signed_in' with the account and its new session's token (the caller
-- keeps it in the person's cookie and presents it in app.session), 'locked' with the lock's end (the
-- password is not even compared during a lock), or 'refused' (counted by the throttle; with the lock's
-- end when this failure started one). An unknown address and a wrong password are refused alike.
create or replace function auth_sign_in(p_email text, p_candidate text)
returns table (outcome text, user_id uuid, session_token text, locked_until timestamptz)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_locked timestamptz;
  v_user uuid;
begin
  select t.locked_until into v_locked from public.login_throttle t
   where t.email_key = encode(sha256(convert_to(lower(p_email), 'UTF8')), 'hex') and t.locked_until > now();
  if v_locked is not null then
    return query select 'locked', null::uuid, null::text, v_locked;
    return;
  end if;
  select u.id into v_user from public.users u
   where lower(u.email) = lower(p_email) and u.is_active and u.password_hash is not null
     and u.password_hash = p_candidate;
  if v_user is null then
    return query select 'refused', null::uuid, null::text, public.auth_record_failure(p_email);
    return;
  end if;
  perform public.auth_record_success(v_user);
  return query select 'signed_in', v_user, public.auth_open_session(v_user), null::timestamptz;
end
$$;

-- Sign out: end every sign-in session of the signed-in person, here and on other devices.
create or replace function auth_sign_out() returns void
language sql volatile security definer set search_path = pg_catalog, pg_temp as $$
  update public.user_sessions set ended_at = now()
   where user_id = public.app_user_id() and ended_at is null;
$$;

-- The throttle's limits are the server's (table login_settings, one row, written by the owner role at
-- upgrade from BACKOFFICE_LOGIN_MAX_FAILURES and BACKOFFICE_LOGIN_LOCK_MINUTES: backoffice.schema), never
-- the caller's: a caller who named them could lock any address for years. No policy and no grant, so
-- only these functions read it.
do $$
begin
  if to_regclass('public.login_settings') is not null then
    alter table public.login_settings enable row level security, force row level security;
  end if;
end
$$;

-- Count a failure; after login_settings.max_failures failures within lock_minutes the address is
-- locked for lock_minutes. Returns the lock's end when locked, NULL otherwise. A failure during a
-- running lock is not counted and does not extend it (sign-in never gets this far while locked).
drop function if exists auth_record_failure(text, int, int);
create or replace function auth_record_failure(p_email text) returns timestamptz
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_key text := encode(sha256(convert_to(lower(p_email), 'UTF8')), 'hex');
  v_max int;
  v_minutes int;
  v_row public.login_throttle;
begin
  select s.max_failures, s.lock_minutes into strict v_max, v_minutes from public.login_settings s;
  select * into v_row from public.login_throttle t where t.email_key = v_key and t.locked_until > now();
  if found then
    return v_row.locked_until;
  end if;
  insert into public.login_throttle as t (email_key, failures, window_started_at)
  values (v_key, 1, now())
  on conflict (email_key) do update
     set failures = case when t.window_started_at < now() - make_interval(mins => v_minutes)
                         then 1 else t.failures + 1 end,
         window_started_at = case when t.window_started_at < now() - make_interval(mins => v_minutes)
                                  then now() else t.window_started_at end
  returning * into v_row;
  if v_row.failures >= v_max then
    update public.login_throttle
       set locked_until = now() + make_interval(mins => v_minutes), failures = 0, window_started_at = now()
     where email_key = v_row.email_key
     returning locked_until into v_row.locked_until;
    return v_row.locked_until;
  end if;
  return null;
end
$$;

-- A correct password (or a joined invitation): forget the counted failures, but never a lock that is
-- still running (a password is not even checked during one; only a finished reset, which proves the
-- mailbox, lifts it: password_reset_finish).
create or replace function auth_record_success(p_user_id uuid) returns void
language sql volatile security definer set search_path = pg_catalog, pg_temp as $$
  delete from public.login_throttle t using public.users u
   where u.id = p_user_id and t.email_key = encode(sha256(convert_to(lower(u.email), 'UTF8')), 'hex')
     and (t.locked_until is null or t.locked_until <= now());
  update public.users set last_login_at = now() where id = p_user_id;
$$;

-- ---------------------------------------------------------------------------------------------
-- Invitations: a pending membership that counts for nothing until its one-time link is used.
-- ---------------------------------------------------------------------------------------------

-- An admin of the current org invites someone by email: returns the existing account's id, or a new
-- account's (without a password). Nothing about an existing account is revealed, and nothing is granted:
-- the membership the caller then writes stays pending until the person accepts it with the link.
drop function if exists invite_user_account(text, text);
create function invite_user_account(p_email text, p_name text) returns uuid
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_id uuid;
begin
  if public.app_role() is distinct from 'admin' then
    raise exception 'only an admin of the current organization can invite users' using errcode = '42501';
  end if;
  select u.id into v_id from public.users u where lower(u.email) = lower(p_email);
  if v_id is null then
    insert into public.users (email, name) values (p_email, p_name) returning id into v_id;
  end if;
  return v_id;
end
$$;

-- A usable invitation: unused, unexpired, its membership still pending. Whether the account already
-- has a password decides what accepting asks for (a new password, or the existing one).
create or replace function invite_details(p_token_hash text)
returns table (email text, org_name text, has_password boolean)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select u.email, o.name, u.password_hash is not null
    from public.invites i
    join public.users u on u.id = i.user_id
    join public.organizations o on o.id = i.org_id
    join public.memberships m on m.org_id = i.org_id and m.user_id = i.user_id and m.accepted_at is null
   where i.token_hash = p_token_hash and i.used_at is null and i.expires_at > now()
$$;

-- Accept an invitation: the unguessable token proves the person holds the address it was sent to.
-- An account without a password gets p_password_hash and is signed in (a new session's token comes
-- back); an account with one joins only when the connection is already signed in as it (auth_sign_in,
-- with its password), and keeps that session (no token). Returns the user and org, or no row.
drop function if exists accept_invite(text, text);
create function accept_invite(p_token_hash text, p_password_hash text)
returns table (user_id uuid, org_id uuid, session_token text)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_inv public.invites;
  v_membership uuid;
  v_hash text;
begin
  select * into v_inv from public.invites i
   where i.token_hash = p_token_hash and i.used_at is null and i.expires_at > now()
   for update;
  if not found then
    return;
  end if;
  select m.id into v_membership from public.memberships m
   where m.org_id = v_inv.org_id and m.user_id = v_inv.user_id and m.accepted_at is null
   for update;
  if not found then
    return;
  end if;
  select u.password_hash into v_hash from public.users u where u.id = v_inv.user_id and u.is_active for update;
  if not found then
    return;
  end if;
  if v_hash is null then
    -- A first password only for an account nobody uses yet: never one that already belongs somewhere.
    if p_password_hash is null
       or exists (select 1 from public.memberships m2 where m2.user_id = v_inv.user_id and m2.accepted_at is not null) then
      return;
    end if;
    update public.users set password_hash = p_password_hash where id = v_inv.user_id;
  elsif public.app_user_id() is distinct from v_inv.user_id then
    return;
  end if;
  update public.memberships m set accepted_at = now() where m.org_id = v_inv.org_id and m.id = v_membership;
  update public.invites i set used_at = now() where i.org_id = v_inv.org_id and i.id = v_inv.id;
  perform public.auth_record_success(v_inv.user_id);  -- they are signed in from here
  return query select v_inv.user_id, v_inv.org_id,
                      case when v_hash is null then public.auth_open_session(v_inv.user_id) end;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Password resets: one-time links, stored hashed (table password_resets, no policy: only these reach it).
-- ---------------------------------------------------------------------------------------------

-- Start a password reset for an active account that has a password: the database makes the token
-- (the caller neither chooses nor sees it), keeps its sha256 for checking the link and the token itself
-- only until the worker mails it (password_reset_token), and queues that job, job send_password_reset,
-- straight into procrastinate as this function's owner: enqueue_job() does not take that kind, so the
-- web role cannot queue it. Nothing comes back, whatever the address: unknown, no password yet (they
-- join by invitation), or more than three links asked for in the last hour. Earlier unused links stop
-- working (and are not mailed any more).
drop function if exists password_reset_start(text, text);
create or replace function password_reset_start(p_email text) returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_user public.users;
  v_token text;
  v_reset uuid;
begin
  select * into v_user from public.users u
   where lower(u.email) = lower(p_email) and u.is_active and u.password_hash is not null;
  if not found then
    return;
  end if;
  if (select count(*) from public.password_resets r where r.user_id = v_user.id and r.created_at > now() - interval '1 hour') >= 3 then
    return;
  end if;
  update public.password_resets set used_at = now(), token = null
   where password_resets.user_id = v_user.id and used_at is null;
  -- 244 random bits: gen_random_uuid() draws from the server's strong random source (pg_strong_random).
  v_token := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  insert into public.password_resets (user_id, token_hash, token)
  values (v_user.id, encode(sha256(convert_to(v_token, 'UTF8')), 'hex'), v_token)
  returning id into v_reset;
  perform procrastinate.procrastinate_defer_jobs_v1(array[
    row('default', 'send_password_reset', 0, null, null,
        jsonb_build_object('reset_id', v_reset, 'user_id', v_user.id), null)::procrastinate.procrastinate_job_to_defer_v1]);
end
$$;

-- The worker's alone (job send_password_reset): the token of a reset that is still usable, with the
-- account to mail it to, once. The token is cleared as it is handed out, so it exists only in the
-- email (a rollback of the worker's transaction keeps it for the retry). No row: used, replaced,
-- expired, or mailed already.
create or replace function password_reset_token(p_reset_id uuid)
returns table (user_id uuid, email text, name text, token text)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_reset public.password_resets;
begin
  select * into v_reset from public.password_resets r
   where r.id = p_reset_id and r.token is not null and r.used_at is null and r.expires_at > now()
   for update;
  if not found then
    return;
  end if;
  update public.password_resets set token = null where id = v_reset.id;
  return query select u.id, u.email, u.name, v_reset.token from public.users u where u.id = v_reset.user_id and u.is_active;
end
$$;

-- Whose unused, unexpired reset link this is (the form shows the address), or no row.
create or replace function password_reset_email(p_token_hash text) returns text
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select u.email from public.password_resets r join public.users u on u.id = r.user_id and u.is_active
   where r.token_hash = p_token_hash and r.used_at is null and r.expires_at > now()
$$;

-- Use a reset link once: set the new password, end every session signed in before, lift a sign-in
-- lock. Returns the account, or null for a link that is unknown, used or expired.
create or replace function password_reset_finish(p_token_hash text, p_password_hash text) returns uuid
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_reset public.password_resets;
begin
  select * into v_reset from public.password_resets r
   where r.token_hash = p_token_hash and r.used_at is null and r.expires_at > now()
   for update;
  if not found or p_password_hash is null or length(p_password_hash) < 20 then
    return null;
  end if;
  update public.users set password_hash = p_password_hash where id = v_reset.user_id and is_active;
  if not found then
    return null;
  end if;
  update public.user_sessions set ended_at = now() where user_sessions.user_id = v_reset.user_id and ended_at is null;
  update public.password_resets set used_at = now(), token = null
   where password_resets.user_id = v_reset.user_id and used_at is null;
  -- The link proves the mailbox: unlike a correct password, it lifts a running lock too.
  delete from public.login_throttle t using public.users u
   where u.id = v_reset.user_id and t.email_key = encode(sha256(convert_to(lower(u.email), 'UTF8')), 'hex');
  perform public.auth_record_success(v_reset.user_id);
  return v_reset.user_id;
end
$$;

-- The app role calls these; PUBLIC does not (pg_temp.grant_execute: sql/rls_policies.sql, applied before).
select pg_temp.grant_execute(f) from unnest(array[
  'my_memberships()', 'invite_user_account(text, text)', 'invite_details(text)', 'accept_invite(text, text)']) f;

-- Signing in and out, from the revision that adds sign-in sessions. The throttle's bookkeeping and
-- opening a session are these functions' own: nobody else executes them (a caller who could would
-- forget any address's failures, or open a session for any account).
do $$
declare
  v_fn text;
begin
  foreach v_fn in array array['auth_record_failure(text)', 'auth_record_success(uuid)', 'auth_open_session(uuid)',
                              'auth_password_salt(text, text)', 'auth_sign_in(text, text)', 'auth_sign_out()'] loop
    execute format('revoke all on function public.%s from public, %I, %I', v_fn,
                   current_setting('backoffice.app_role'), current_setting('backoffice.worker_role'));
  end loop;
  if to_regclass('public.user_sessions') is not null then
    perform pg_temp.grant_execute(f)
       from unnest(array['auth_password_salt(text, text)', 'auth_sign_in(text, text)', 'auth_sign_out()']) f;
  end if;
end
$$;

-- The reset functions from the revision that adds their table.
select pg_temp.grant_execute(f) from unnest(array[
  'password_reset_start(text)', 'password_reset_email(text)', 'password_reset_finish(text, text)']) f
 where to_regclass('public.password_resets') is not null;

-- password_reset_token(): the worker role only.
do $$
begin
  if to_regclass('public.password_resets') is not null then
    execute format('revoke all on function public.password_reset_token(uuid) from public, %I',
                   current_setting('backoffice.app_role'));
    execute format('grant execute on function public.password_reset_token(uuid) to %I',
                   current_setting('backoffice.worker_role'));
  end if;
end
$$;
