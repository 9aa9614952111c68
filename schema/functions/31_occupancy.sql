-- Occupancy snapshots and the space share they decide.
--
-- share(d) = (area occupied on d by tenants that are science/technology
--             enterprises on d + public service area on d)
--            / disposable area in force on d
-- An incubator has data on d when a snapshot with as_of <= d exists.
--
-- The occupancy intervals of an incubator that run through day d are written
-- "lower(valid) <= d AND coalesce(upper(valid), 'infinity') > d" rather than
-- "valid @> d": the same set, found by the btree occupancy_incubator_upper_idx
-- among the few intervals that end after a recent day, not by a GiST scan.

-- The parts of share(d) for one incubator, exact (numeric). PL/pgSQL rather
-- than SQL so that its plans are kept per session: the snapshot PUT and the
-- share GET call it once per request, where a SQL function would be parsed and
-- planned each time.
CREATE FUNCTION api.space_share(incubator bigint, d date,
                                OUT has_data boolean, OUT disposable_area_m2 numeric,
                                OUT tech_area_m2 numeric, OUT non_tech_area_m2 numeric,
                                OUT public_service_area_m2 numeric, OUT share numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    disposable_area_m2 := api.disposable_area_on(incubator, d);
    public_service_area_m2 := coalesce(api.public_service_area_on(incubator, d), 0);
    has_data := disposable_area_m2 IS NOT NULL
                AND EXISTS (SELECT 1 FROM snapshots s
                             WHERE s.incubator_id = incubator AND s.as_of <= d);
    SELECT coalesce(sum(oc.area_m2) FILTER (
                        WHERE api.is_tech(t.tech_certified_on, t.high_tech_certified_on, d)), 0),
           coalesce(sum(oc.area_m2) FILTER (
                        WHERE NOT api.is_tech(t.tech_certified_on, t.high_tech_certified_on, d)), 0)
      INTO tech_area_m2, non_tech_area_m2
      FROM occupancy oc
      -- Each tenant by its key (OFFSET 0 keeps this a nested loop): a kept generic
      -- plan would otherwise hash the whole tenants table for the incubator's few.
      CROSS JOIN LATERAL (SELECT x.tech_certified_on, x.high_tech_certified_on
                            FROM tenants x WHERE x.id = oc.tenant_id OFFSET 0) t
     WHERE oc.incubator_id = incubator
       AND coalesce(upper(oc.valid), 'infinity') > d AND lower(oc.valid) <= d;
    IF has_data THEN
        share := (tech_area_m2 + public_service_area_m2) / disposable_area_m2;
    END IF;
END;
$$;

/*
 * The parts of share(d) of one incubator that a write already holds, so that
 * the alert rules need not sum the incubator's occupancy again: an occupancy
 * snapshot has just summed its listed tenants' areas by kind. The share is
 * (tech_area_m2 + public_service_area_m2) / disposable_area_m2, as in
 * api.space_share; a NULL disposable area means no data. Only for a day on
 * which the incubator has a snapshot on or before it.
 */
CREATE TYPE api.share_parts AS (
    incubator_id            bigint,
    d                       date,
    disposable_area_m2      numeric,
    tech_area_m2            numeric,
    public_service_area_m2  numeric
);

-- The status of a share against the policy in force that month.
CREATE FUNCTION api.share_status(share numeric, p policies) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN share IS NULL THEN 'no_data'
                WHEN share < p.veto_threshold THEN 'breach'
                WHEN share < p.veto_threshold + p.warning_margin THEN 'warning'
                ELSE 'ok' END
$$;

-- The space-share object of API.md from its exact parts; share NULL: no data.
CREATE FUNCTION api.share_json(code text, d date, disposable numeric, tech numeric,
                               non_tech numeric, public_service numeric, share numeric)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    p policies := api.policy_on(d);
BEGIN
    RETURN json_build_object(
        'incubator', code,
        'on', d,
        'disposable_area_m2', api.num(disposable),
        'tech_area_m2', api.num(tech),
        'non_tech_area_m2', api.num(non_tech),
        'public_service_area_m2', api.num(public_service),
        'share', api.ratio(share),
        'threshold', api.num(p.veto_threshold),
        'warning_threshold', api.num(p.veto_threshold + p.warning_margin),
        'status', api.share_status(share, p));
END;
$$;

-- The space-share object of API.md for one incubator and day.
CREATE FUNCTION api.space_share_json(incubator bigint, d date) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s record := api.space_share(incubator, d);
BEGIN
    RETURN api.share_json((SELECT i.code FROM incubators i WHERE i.id = incubator), d,
                          s.disposable_area_m2, s.tech_area_m2, s.non_tech_area_m2,
                          s.public_service_area_m2, s.share);
END;
$$;

-- GET /v1/incubators/{code}/space-share[?on=DATE]
CREATE FUNCTION api.space_share_get(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN api.ok(200, api.space_share_json(api.incubator_id(args->>'code'),
                                            coalesce((args->>'on')::date, api.today(ctx))));
END;
$$;

/*
 * GET /v1/incubators/{code}/occupancy[?on=DATE]: the occupancy in force that
 * day, in the shape of the PUT body: the as_of of the latest snapshot on or
 * before it, and the tenants that occupy space that day with their areas, by
 * external_id. That is the snapshot as sent, less any tenant that has exited
 * since (an exit ends occupancy on its day), so it always adds up to the
 * space share of the same day. 404 when no snapshot is on or before the day.
 */
CREATE FUNCTION api.occupancy_get(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    incubator bigint := api.incubator_id(args->>'code');
    d date := coalesce((args->>'on')::date, api.today(ctx));
    s record;
BEGIN
    SELECT sn.as_of, sn.received_at INTO s FROM snapshots sn
     WHERE sn.incubator_id = incubator AND sn.as_of <= d
     ORDER BY sn.as_of DESC LIMIT 1;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no occupancy snapshot on or before %s', d));
    END IF;
    RETURN api.ok(200, json_build_object(
        'as_of', s.as_of,
        'on', d,
        'public_service_area_m2', api.num(api.public_service_area_on(incubator, d)),
        'tenants', (SELECT coalesce(json_agg(json_build_object('external_id', t.external_id,
                                                               'area_m2', api.num(o.area_m2))
                                             ORDER BY t.external_id), '[]')
                      FROM occupancy o
                      CROSS JOIN LATERAL (SELECT x.external_id FROM tenants x
                                           WHERE x.id = o.tenant_id OFFSET 0) t
                     WHERE o.incubator_id = incubator
                       AND coalesce(upper(o.valid), 'infinity') > d AND lower(o.valid) <= d),
        'disposable_area_m2', api.num(api.disposable_area_on(incubator, d)),
        'received_at', api.ts(s.received_at)));
END;
$$;

/*
 * The history writes of a snapshot of incubator on day d listing the tenants
 * ids with areas (exits: their exit days, if set): from d on, exactly these
 * occupy, and the public service area is public_service.
 *
 * History is changed as little as the snapshot needs: an interval whose
 * tenant keeps the same area runs on untouched; the others are closed on d
 * and new ones opened. A snapshot that replaces the one of the same day
 * (replacing) first undoes that one's intervals (those that start on d) and
 * re-extends an interval it had closed when the tenant is back at the same
 * area, so a day's corrections leave no seams.
 *
 * Plans are generic and kept for the session: with d a parameter the planner
 * guesses that a third of an incubator's intervals end after it, and would
 * otherwise plan each statement anew on every call for a custom plan that is
 * no better (the btree finds the few that do either way).
 */
CREATE FUNCTION api.snapshot_apply(incubator bigint, d date, replacing boolean, ids bigint[],
                                   areas numeric[], exits date[], public_service numeric)
RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    ps_now numeric;
BEGIN
    IF replacing THEN
        -- Undo the replaced snapshot: the intervals it opened start on d.
        DELETE FROM occupancy o
         WHERE o.incubator_id = incubator
           AND coalesce(upper(o.valid), 'infinity') > d AND lower(o.valid) >= d;
    END IF;
    -- Close what no longer holds: a tenant not listed, or listed with another area.
    UPDATE occupancy o SET valid = daterange(lower(o.valid), d)
     WHERE o.incubator_id = incubator
       AND coalesce(upper(o.valid), 'infinity') > d AND lower(o.valid) < d
       AND (o.tenant_id, o.area_m2) NOT IN (SELECT * FROM unnest(ids, areas));
    IF replacing THEN
        -- A tenant back at the area the replaced snapshot had closed on d: one
        -- interval again, as if that snapshot had never been.
        UPDATE occupancy o SET valid = daterange(lower(o.valid), l.exited_on)
          FROM unnest(ids, areas, exits) AS l(tenant_id, area_m2, exited_on)
         WHERE o.tenant_id = l.tenant_id AND o.area_m2 = l.area_m2
           AND o.incubator_id = incubator AND coalesce(upper(o.valid), 'infinity') = d;
    END IF;
    -- Open what is new: a listed tenant with no interval running through d now.
    INSERT INTO occupancy (tenant_id, incubator_id, valid, area_m2)
    SELECT l.tenant_id, incubator, daterange(d, l.exited_on), l.area_m2
      FROM unnest(ids, areas, exits) AS l(tenant_id, area_m2, exited_on)
     WHERE l.tenant_id NOT IN (SELECT o.tenant_id FROM occupancy o
                                WHERE o.incubator_id = incubator
                                  AND coalesce(upper(o.valid), 'infinity') > d
                                  AND lower(o.valid) <= d);

    -- The public service area, the same way.
    SELECT p.area_m2 INTO ps_now FROM public_service_areas p
     WHERE p.incubator_id = incubator AND p.valid @> d;
    IF ps_now IS DISTINCT FROM public_service THEN
        -- One that starts on d is the replaced snapshot's (or the registration's).
        DELETE FROM public_service_areas p WHERE p.incubator_id = incubator AND lower(p.valid) >= d;
        UPDATE public_service_areas p SET valid = daterange(lower(p.valid), NULL)
         WHERE p.incubator_id = incubator AND upper(p.valid) = d
           AND p.area_m2 = public_service AND replacing;
        IF NOT FOUND THEN
            UPDATE public_service_areas p SET valid = daterange(lower(p.valid), d)
             WHERE p.incubator_id = incubator AND p.valid @> d;
            INSERT INTO public_service_areas (incubator_id, valid, area_m2)
            VALUES (incubator, daterange(d, NULL), public_service);
        END IF;
    END IF;
END;
$$;

/*
 * PUT /v1/incubators/{code}/occupancy: a snapshot. From as_of on, exactly the
 * listed tenants occupy exactly these areas and the public service area is as
 * given (api.snapshot_apply writes that into history). Sending the same
 * snapshot again changes nothing at all.
 *
 * Snapshots and exits of one incubator take turns on its row lock, so
 * concurrent senders never interleave. The list is resolved, checked and
 * summed in one set-based pass (hash joins), so a snapshot of 10,000 tenants
 * costs a few times one of 50, not its square; and since after it exactly
 * the listed tenants occupy space on as_of, the answer (the share of that
 * day) is computed from that pass rather than read back.
 */
CREATE FUNCTION api.occupancy_put(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    inc incubators;
    d date := (args->>'as_of')::date;
    public_service numeric := (args->>'public_service_area_m2')::numeric;
    latest_as_of date;
    latest_hash text;
    replacing boolean;
    disposable numeric;
    -- The listed tenants, resolved, as parallel arrays (unnest() of scalars is cheap).
    ids bigint[];
    areas numeric[];
    exits date[];
    errors json;
    tenant_area numeric;
    tech_area numeric;
    today date := api.today(ctx);
    tech_today numeric;
    shares api.share_parts[];
    listed_count integer;
    canonical jsonb;
    content_hash text;
    answer json;
BEGIN
    SELECT * INTO inc FROM incubators WHERE id = api.incubator_writable(args->>'code')
       FOR NO KEY UPDATE;
    IF d < inc.opened_on THEN
        PERFORM api.fail_field('as_of', format('must not be before the incubator opened (%s)',
                                               inc.opened_on));
    END IF;
    PERFORM api.check_not_frozen('as_of', d);
    SELECT s.as_of, s.content_sha256 INTO latest_as_of, latest_hash
      FROM snapshots s WHERE s.incubator_id = inc.id
     ORDER BY s.as_of DESC LIMIT 1;
    IF latest_as_of > d THEN
        PERFORM api.fail(409, format(
            'as_of %s is earlier than the latest snapshot already accepted (%s)',
            d, latest_as_of));
    END IF;
    replacing := latest_as_of = d;

    -- Resolve, check and sum the list in one pass.
    SELECT array_agg(t.id), array_agg(x.area), array_agg(t.exited_on),
           json_agg(json_build_object(
               'field', format('tenants[%s].external_id', x.position - 1),
               'message', CASE WHEN t.id IS NULL
                               THEN format('no tenant %s in this incubator', x.external_id)
                               ELSE format('tenant %s exited on %s', x.external_id, t.exited_on)
                          END) ORDER BY x.position)
               FILTER (WHERE t.id IS NULL OR t.exited_on <= d),
           coalesce(sum(x.area), 0),
           coalesce(sum(x.area) FILTER (
               WHERE api.is_tech(t.tech_certified_on, t.high_tech_certified_on, d)), 0),
           -- The same for today (the day the share rules judge), which may come
           -- after as_of: tenants certified by then, not exited by then.
           coalesce(sum(x.area) FILTER (
               WHERE api.is_tech(t.tech_certified_on, t.high_tech_certified_on, today)
                 AND coalesce(t.exited_on > today, true)), 0),
           count(*),
           coalesce(jsonb_agg(jsonb_build_object('external_id', x.external_id,
                                                 'area_m2', trim_scale(x.area))
                              ORDER BY x.external_id), '[]')
      INTO ids, areas, exits, errors, tenant_area, tech_area, tech_today, listed_count,
           canonical
      FROM ROWS FROM (jsonb_to_recordset(args->'tenants') AS (external_id text, area_m2 numeric))
           WITH ORDINALITY AS x(external_id, area, position)
      LEFT JOIN tenants t ON t.incubator_id = inc.id AND t.external_id = x.external_id;
    IF errors IS NOT NULL THEN
        PERFORM api.fail(422, format('%s listed tenant%s cannot occupy space on %s',
                                     json_array_length(errors),
                                     CASE WHEN json_array_length(errors) = 1 THEN '' ELSE 's' END,
                                     d), errors);
    END IF;

    disposable := api.disposable_area_on(inc.id, d);
    IF tenant_area + public_service > disposable THEN
        PERFORM api.fail(422, format(
            'area_overcommit: tenants %s m² + public service %s m² exceed the disposable area '
            '%s m² in force on %s', api.num(tenant_area), api.num(public_service),
            api.num(disposable), d),
            json_build_array(json_build_object(
                'field', 'tenants', 'code', 'area_overcommit',
                'message', format('tenant areas plus public service area (%s m²) exceed the '
                                  'disposable area (%s m²)',
                                  api.num(tenant_area + public_service), api.num(disposable)))));
    END IF;
    answer := api.share_json(inc.code, d, disposable, tech_area, tenant_area - tech_area,
                             public_service, (tech_area + public_service) / disposable);

    content_hash := encode(sha256(convert_to(api.num(public_service)::text || ' ' ||
                                             canonical::text, 'UTF8')), 'hex');
    IF replacing AND latest_hash = content_hash THEN
        -- The same snapshot again: nothing changes, nothing is recorded.
        RETURN api.ok(200, answer);
    END IF;

    PERFORM api.snapshot_apply(inc.id, d, replacing, ids, areas, exits, public_service);
    INSERT INTO snapshots (incubator_id, as_of, public_service_area_m2, tenant_count,
                           tenant_area_m2, tenants, content_sha256, token_id)
    VALUES (inc.id, d, public_service, listed_count, tenant_area, canonical, content_hash,
            (ctx->>'token_id')::bigint)
    ON CONFLICT (incubator_id, as_of) DO UPDATE
       SET public_service_area_m2 = excluded.public_service_area_m2,
           tenant_count = excluded.tenant_count, tenant_area_m2 = excluded.tenant_area_m2,
           tenants = excluded.tenants, content_sha256 = excluded.content_sha256,
           received_at = now(), token_id = excluded.token_id;

    PERFORM api.audit(ctx, inc.id,
                      format('occupancy snapshot %s%s: %s tenants, %s m² + public service %s m²',
                             d, CASE WHEN replacing THEN ' (replaced)' ELSE '' END,
                             listed_count, api.num(tenant_area), api.num(public_service)),
                      jsonb_build_object('as_of', d, 'content_sha256', content_hash,
                                         'tenant_count', listed_count));
    -- A snapshot changes occupancy and nothing about the tenants themselves:
    -- the share and stale data rules are the ones it can change. From as_of
    -- on exactly the listed tenants occupy space (until they exit), so the
    -- share rules take today's share from the pass above and, for a snapshot
    -- of an earlier day, the two areas in force today, read by key, rather
    -- than from the incubator's occupancy. One dated tomorrow leaves today's
    -- share as it was: the rules read it from the tables.
    IF d <= today THEN
        shares := ARRAY[ROW(inc.id, today,
                            CASE WHEN d = today THEN disposable
                                 ELSE api.disposable_area_on(inc.id, today) END,
                            tech_today,
                            CASE WHEN d = today THEN public_service
                                 ELSE coalesce(api.public_service_area_on(inc.id, today), 0) END
                           )::api.share_parts];
    END IF;
    PERFORM api.after_change(ctx, ARRAY[inc.id],
                             ARRAY['space_share_breach', 'space_share_warning', 'stale_data'],
                             NULL, shares);
    RETURN api.ok(200, answer);
END;
$$;
