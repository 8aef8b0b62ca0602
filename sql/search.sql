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

create or replace function search_hits(p_kind text, p_words tsquery, p_limit integer)
returns table (id uuid, rank real)
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_org uuid := public.app_org_id();
  v_contractor uuid := public.app_contractor_id();
  v_query tsquery;
begin
  if v_org is null or p_words is null or p_limit is null or p_limit < 1 then
    return;
  end if;
  v_query := p_words && quote_literal('~o' || replace(v_org::text, '-', ''))::tsquery;
  if v_contractor is not null then
    if p_kind = 'contractors' then
      return;  -- a contractor's user finds no contractor (queries/search.py asks only for the admin)
    end if;
    v_query := v_query && quote_literal('~c' || replace(v_contractor::text, '-', ''))::tsquery;
  end if;
  p_limit := least(p_limit, 100);
  if p_kind = 'engagements' then
    return query
      select e.id, ts_rank(v.vector, v_query)
        from public.engagements e,
             lateral (select to_tsvector('simple'::regconfig,
                         translate(e.title || ' ' || coalesce(e.sow_reference, ''), '-@./_', '     '))
                       || array_to_tsvector(array['~o' || replace(e.org_id::text, '-', ''),
                                                  '~c' || replace(e.contractor_id::text, '-', '')]) as vector) v
       where (to_tsvector('simple'::regconfig,
                 translate(e.title || ' ' || coalesce(e.sow_reference, ''), '-@./_', '     '))
               || array_to_tsvector(array['~o' || replace(e.org_id::text, '-', ''),
                                          '~c' || replace(e.contractor_id::text, '-', '')])) @@ v_query
         and e.org_id = v_org
       order by 2 desc, e.created_at desc, e.id
       limit p_limit;
  elsif p_kind = 'milestones' then
    return query
      select m.id, ts_rank(v.vector, v_query)
        from public.milestones m,
             lateral (select to_tsvector('simple'::regconfig, translate(m.title || ' ' || m.deliverable, '-@./_', '     '))
                       || array_to_tsvector(array['~o' || replace(m.org_id::text, '-', ''),
                                                  '~c' || replace(m.contractor_id::text, '-', '')]) as vector) v
       where (to_tsvector('simple'::regconfig, translate(m.title || ' ' || m.deliverable, '-@./_', '     '))
               || array_to_tsvector(array['~o' || replace(m.org_id::text, '-', ''),
                                          '~c' || replace(m.contractor_id::text, '-', '')])) @@ v_query
         and m.org_id = v_org
       order by 2 desc, m.updated_at desc, m.id
       limit p_limit;
  elsif p_kind = 'invoices' then
    return query
      select i.id, ts_rank(v.vector, v_query)
        from public.invoices i,
             lateral (select to_tsvector('simple'::regconfig,
                         translate(i.invoice_number || ' ' || i.description, '-@./_', '     '))
                       || array_to_tsvector(array['~o' || replace(i.org_id::text, '-', ''),
                                                  '~c' || replace(i.contractor_id::text, '-', '')]) as vector) v
       where (to_tsvector('simple'::regconfig, translate(i.invoice_number || ' ' || i.description, '-@./_', '     '))
               || array_to_tsvector(array['~o' || replace(i.org_id::text, '-', ''),
                                          '~c' || replace(i.contractor_id::text, '-', '')])) @@ v_query
         and i.org_id = v_org
       order by 2 desc, i.authorized_at desc, i.id
       limit p_limit;
  elsif p_kind = 'contractors' then
    return query
      select c.id, ts_rank(v.vector, v_query)
        from public.contractors c,
             lateral (select to_tsvector('simple'::regconfig,
                         translate(c.legal_name || ' ' || c.email || ' ' || coalesce(c.ap_vendor_id, ''), '-@./_', '     '))
                       || array_to_tsvector(array['~o' || replace(c.org_id::text, '-', '')]) as vector) v
       where (to_tsvector('simple'::regconfig,
                 translate(c.legal_name || ' ' || c.email || ' ' || coalesce(c.ap_vendor_id, ''), '-@./_', '     '))
               || array_to_tsvector(array['~o' || replace(c.org_id::text, '-', '')])) @@ v_query
         and c.org_id = v_org
       order by 2 desc, c.created_at desc, c.id
       limit p_limit;
  end if;
end
$$;
select pg_temp.grant_execute('search_hits(text, tsquery, integer)');
