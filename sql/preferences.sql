-- Each person's preferences (issue 22, item 10; migration 0034): their time zone and whether they want each email
-- as it happens or one digest a day. Here rather than in sql/rls_policies.sql (which stays under 600 lines), with its
-- tools (pg_temp.policy() and the grant helpers); before sql/new_ids.sql, which reads the grants.
--
--   user_preferences   keyed by the person, not by a membership: one clock and one mailbox across organizations.
--                      The web role reads, inserts and updates its own person's row only (users itself is not
--                      updatable by the web role); the worker reads the rows of its organization's members, to
--                      write their emails in their time zone and to hold or send them (services/digests.py).

-- The web role: its own row, and only its own. Permissive policies per command and role: the worker gets no write
-- policy at all, and a person's row is never any other person's to read.
select pg_temp.policy('user_preferences', 'own_row', format($p$to %I
  using (user_id = (select app_user_id())) with check (user_id = (select app_user_id()))$p$,
  current_setting('backoffice.app_role')));
-- The worker: the members of the organization its job acts in (app_org_id()), a notice's recipients.
select pg_temp.policy('user_preferences', 'worker_reads_members', format($p$for select to %I using (exists (
  select 1 from public.memberships m where m.user_id = user_preferences.user_id and m.org_id = (select app_org_id())))$p$,
  current_setting('backoffice.worker_role')));
select pg_temp.grant_to_app('user_preferences', 'select, insert (user_id, time_zone, notify), update (time_zone, notify, updated_at)');
select pg_temp.grant_to_worker('user_preferences', 'select');

-- email_messages.link and digest_id (revision 0034): the worker writes a held message's link and marks each held
-- message with the digest that carried it (services/digests.py); the web role neither. Here, and only once the
-- columns exist: every revision applies these files, an earlier one before the columns are there.
do $$
begin
  if exists (select 1 from pg_attribute where attrelid = to_regclass('public.email_messages')
                                          and attname = 'digest_id' and not attisdropped) then
    execute format('grant insert (link), update (digest_id) on public.email_messages to %I',
                   current_setting('backoffice.worker_role'));
  end if;
end
$$;
