-- The header's search (issue 22): the one door that lets a full-text match use its GIN index under RLS.
--
-- Why a door: PostgreSQL uses a qual of the caller's as an index condition under RLS only if it is leakproof, and
-- the full-text match (@@, ts_match_vq) is not. Without it, queries/search.py read a large customer's 145,000
-- milestones through their org index and computed every vector: 3.4 s for "site" (bench/search.py), against
-- 0.3 s through milestones_search. search_hits() runs as the owner and returns only ids and ranks, of the caller's
-- organization (and, for a contractor's user, of its own contractor) as the indexes' tenant lexemes say
-- (migrations/versions/0033_search.py); the caller then reads those rows through its own policies, which still
-- decide what anyone sees (an id RLS hides is simply not shown).
--
-- search_hits(kind, words, n): the n best matches of one kind ('engagements', 'milestones', 'invoices',
-- 'contractors') for the typed words (a tsquery of prefixes, made by queries/search.py), ranked, then newest.
-- Each vector expression is the index's, character for character in meaning.
--
-- Bounded: at most 1,000 matches (in no order: what the GIN bitmap yields first) are ranked, so a word in every
-- row ("site") costs the same as a rarer one; past that the page asks for another word. A query with no word
-- (numnode 0: what '½' or '①' becomes, the parser keeping nothing of it) finds nothing, never every tagged row.
-- A contractor's user finds only what its policies let it open: engagements whose work request is sent and
-- their milestones (sql/rls_policies.sql, contractor_sent), so that drafts RLS would drop do not take the slots.

create or replace function search_hits(p_kind text, p_words tsquery, p_limit integer)
returns table (id uuid, rank real)
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_org uuid := public.app_org_id();
  v_contractor uuid := public.app_contractor_id();
  v_query tsquery;
  v_sent uuid[];  -- a contractor's user: its engagements whose work request is sent
  c_ranked constant integer := 1000;  -- the most matches ranked
begin
  if v_org is null or p_words is null or numnode(p_words) = 0 or p_limit is null or p_limit < 1 then
    return;
  end if;
  v_query := p_words && quote_literal('~o' || replace(v_org::text, '-', ''))::tsquery;
  if v_contractor is not null then
    if p_kind = 'contractors' then
      return;  -- a contractor's user finds no contractor (queries/search.py asks only for the admin)
    end if;
    v_query := v_query && quote_literal('~c' || replace(v_contractor::text, '-', ''))::tsquery;
    v_sent := public.app_sent_engagement_ids();
  end if;
  p_limit := least(p_limit, 100);
  -- The matches, at most c_ranked of them (the subquery's limit), then ranked.
  if p_kind = 'engagements' then
    return query
      select h.id, ts_rank(h.vector, v_query)
        from (select e.id, e.created_at,
                     to_tsvector('simple'::regconfig,
                       translate(e.title || ' ' || coalesce(e.sow_reference, ''), '-@./_', '     '))
                     || array_to_tsvector(array['~o' || replace(e.org_id::text, '-', ''),
                                                '~c' || replace(e.contractor_id::text, '-', '')]) as vector
                from public.engagements e
               where (to_tsvector('simple'::regconfig,
                        translate(e.title || ' ' || coalesce(e.sow_reference, ''), '-@./_', '     '))
                      || array_to_tsvector(array['~o' || replace(e.org_id::text, '-', ''),
                                                 '~c' || replace(e.contractor_id::text, '-', '')])) @@ v_query
                 and e.org_id = v_org
                 and (v_contractor is null or e.sent_at is not null)
               limit c_ranked) h
       order by 2 desc, h.created_at desc, h.id
       limit p_limit;
  elsif p_kind = 'milestones' then
    return query
      select h.id, ts_rank(h.vector, v_query)
        from (select m.id, m.updated_at,
                     to_tsvector('simple'::regconfig, translate(m.title || ' ' || m.deliverable, '-@./_', '     '))
                     || array_to_tsvector(array['~o' || replace(m.org_id::text, '-', ''),
                                                '~c' || replace(m.contractor_id::text, '-', '')]) as vector
                from public.milestones m
               where (to_tsvector('simple'::regconfig, translate(m.title || ' ' || m.deliverable, '-@./_', '     '))
                      || array_to_tsvector(array['~o' || replace(m.org_id::text, '-', ''),
                                                 '~c' || replace(m.contractor_id::text, '-', '')])) @@ v_query
                 and m.org_id = v_org
                 and (v_contractor is null or m.engagement_id = any (v_sent))
               limit c_ranked) h
       order by 2 desc, h.updated_at desc, h.id
       limit p_limit;
  elsif p_kind = 'invoices' then
    return query
      select h.id, ts_rank(h.vector, v_query)
        from (select i.id, i.authorized_at,
                     to_tsvector('simple'::regconfig,
                       translate(i.invoice_number || ' ' || i.description, '-@./_', '     '))
                     || array_to_tsvector(array['~o' || replace(i.org_id::text, '-', ''),
                                                '~c' || replace(i.contractor_id::text, '-', '')]) as vector
                from public.invoices i
               where (to_tsvector('simple'::regconfig,
                        translate(i.invoice_number || ' ' || i.description, '-@./_', '     '))
                      || array_to_tsvector(array['~o' || replace(i.org_id::text, '-', ''),
                                                 '~c' || replace(i.contractor_id::text, '-', '')])) @@ v_query
                 and i.org_id = v_org
               limit c_ranked) h
       order by 2 desc, h.authorized_at desc, h.id
       limit p_limit;
  elsif p_kind = 'contractors' then
    return query
      select h.id, ts_rank(h.vector, v_query)
        from (select c.id, c.created_at,
                     to_tsvector('simple'::regconfig,
                       translate(c.legal_name || ' ' || c.email || ' ' || coalesce(c.ap_vendor_id, ''), '-@./_', '     '))
                     || array_to_tsvector(array['~o' || replace(c.org_id::text, '-', '')]) as vector
                from public.contractors c
               where (to_tsvector('simple'::regconfig,
                        translate(c.legal_name || ' ' || c.email || ' ' || coalesce(c.ap_vendor_id, ''), '-@./_', '     '))
                      || array_to_tsvector(array['~o' || replace(c.org_id::text, '-', '')])) @@ v_query
                 and c.org_id = v_org
               limit c_ranked) h
       order by 2 desc, h.created_at desc, h.id
       limit p_limit;
  end if;
end
$$;
select pg_temp.grant_execute('search_hits(text, tsquery, integer)');
