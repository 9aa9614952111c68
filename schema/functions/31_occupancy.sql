-- Occupancy snapshots and the space share they decide.
--
-- share(d) = (area occupied on d by tenants that are science/technology
--             enterprises on d + public service area on d)
--            / disposable area in force on d
-- An incubator has data on d when a snapshot with as_of <= d exists.

-- The parts of share(d) for one incubator, exact (numeric).
CREATE FUNCTION api.space_share(incubator bigint, d date,
                                OUT has_data boolean, OUT disposable_area_m2 numeric,
                                OUT tech_area_m2 numeric, OUT non_tech_area_m2 numeric,
                                OUT public_service_area_m2 numeric, OUT share numeric)
LANGUAGE sql STABLE AS $$
    SELECT h.has_data, a.disposable, o.tech, o.non_tech, ps.area,
           CASE WHEN h.has_data THEN (o.tech + ps.area) / a.disposable END
      FROM (SELECT EXISTS (SELECT 1 FROM snapshots s
                            WHERE s.incubator_id = incubator AND s.as_of <= d)
                   AND api.disposable_area_on(incubator, d) IS NOT NULL AS has_data) h,
           (SELECT api.disposable_area_on(incubator, d) AS disposable) a,
           (SELECT coalesce(api.public_service_area_on(incubator, d), 0) AS area) ps,
           (SELECT coalesce(sum(oc.area_m2) FILTER (
                       WHERE api.is_tech(t.tech_certified_on, t.high_tech_certified_on, d)), 0)
                       AS tech,
                   coalesce(sum(oc.area_m2) FILTER (
                       WHERE NOT api.is_tech(t.tech_certified_on, t.high_tech_certified_on, d)), 0)
                       AS non_tech
              FROM occupancy oc JOIN tenants t ON t.id = oc.tenant_id
             WHERE oc.incubator_id = incubator AND oc.valid @> d) o
$$;

-- The status of a share against the policy in force that month.
CREATE FUNCTION api.share_status(share numeric, p policies) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN share IS NULL THEN 'no_data'
                WHEN share < p.veto_threshold THEN 'breach'
                WHEN share < p.veto_threshold + p.warning_margin THEN 'warning'
                ELSE 'ok' END
$$;

-- The space-share object of API.md for one incubator and day.
CREATE FUNCTION api.space_share_json(incubator bigint, d date) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'incubator', (SELECT code FROM incubators WHERE id = incubator),
        'on', d,
        'disposable_area_m2', api.num(s.disposable_area_m2),
        'tech_area_m2', api.num(s.tech_area_m2),
        'non_tech_area_m2', api.num(s.non_tech_area_m2),
        'public_service_area_m2', api.num(s.public_service_area_m2),
        'share', api.ratio(s.share),
        'threshold', api.num(p.veto_threshold),
        'warning_threshold', api.num(p.veto_threshold + p.warning_margin),
        'status', api.share_status(s.share, p))
      FROM api.space_share(incubator, d) s, api.policy_on(d) p
$$;

-- GET /v1/incubators/{code}/space-share[?on=DATE]
CREATE FUNCTION api.space_share_get(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE sql STABLE AS $$
    SELECT api.ok(200, api.space_share_json(api.incubator_id(args->>'code'),
                                            coalesce((args->>'on')::date, api.today(ctx))))
$$;

-- GET /v1/incubators/{code}/occupancy[?on=DATE]: the snapshot in force that day.
CREATE FUNCTION api.occupancy_get(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    incubator bigint := api.incubator_id(args->>'code');
    d date := coalesce((args->>'on')::date, api.today(ctx));
    s snapshots;
BEGIN
    SELECT * INTO s FROM snapshots
     WHERE incubator_id = incubator AND as_of <= d
     ORDER BY as_of DESC LIMIT 1;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no occupancy snapshot on or before %s', d));
    END IF;
    RETURN api.ok(200, json_build_object(
        'as_of', s.as_of,
        'public_service_area_m2', api.num(s.public_service_area_m2),
        'tenants', s.tenants,
        'disposable_area_m2', api.num(api.disposable_area_on(incubator, d)),
        'received_at', api.ts(s.received_at)));
END;
$$;

-- One listed tenant of a snapshot, resolved.
CREATE TYPE api.snapshot_entry AS (
    position     integer, -- in the request, from 0
    external_id  text,
    area_m2      numeric,
    tenant_id    bigint,  -- NULL: no such tenant in this incubator
    exited_on    date
);

/*
 * PUT /v1/incubators/{code}/occupancy: a snapshot. From as_of on, exactly the
 * listed tenants occupy exactly these areas and the public service area is as
 * given. Intervals that still hold (same tenant, same area) are kept; the
 * others are closed on as_of and new ones opened. Snapshots of one incubator
 * take turns on its row lock, so concurrent senders never interleave.
 */
CREATE FUNCTION api.occupancy_put(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    inc incubators;
    d date := (args->>'as_of')::date;
    public_service numeric := (args->>'public_service_area_m2')::numeric;
    latest snapshots;
    disposable numeric;
    tenant_area numeric;
    listed_count integer;
    canonical jsonb;
    content_hash text;
    errors json;
    listed api.snapshot_entry[];
BEGIN
    SELECT * INTO inc FROM incubators WHERE code = args->>'code' FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no incubator %s', args->>'code'));
    END IF;
    IF d < inc.opened_on THEN
        PERFORM api.fail_field('as_of', format('must not be before the incubator opened (%s)',
                                               inc.opened_on));
    END IF;
    PERFORM api.check_not_frozen('as_of', d);
    SELECT * INTO latest FROM snapshots WHERE incubator_id = inc.id
     ORDER BY as_of DESC LIMIT 1;
    IF latest.as_of > d THEN
        PERFORM api.fail(409, format(
            'as_of %s is earlier than the latest snapshot already accepted (%s)',
            d, latest.as_of));
    END IF;

    SELECT coalesce(array_agg(ROW(x.position - 1, x.item->>'external_id',
                                  (x.item->>'area_m2')::numeric, t.id, t.exited_on)
                              ::api.snapshot_entry ORDER BY x.position), '{}')
      INTO listed
      FROM jsonb_array_elements(args->'tenants') WITH ORDINALITY AS x(item, position)
      LEFT JOIN tenants t ON t.incubator_id = inc.id AND t.external_id = x.item->>'external_id';

    SELECT json_agg(json_build_object(
               'field', format('tenants[%s].external_id', l.position),
               'message', CASE WHEN l.tenant_id IS NULL
                               THEN format('no tenant %s in this incubator', l.external_id)
                               ELSE format('tenant %s exited on %s', l.external_id, l.exited_on)
                          END) ORDER BY l.position)
      INTO errors
      FROM unnest(listed) l
     WHERE l.tenant_id IS NULL OR l.exited_on <= d;
    IF errors IS NOT NULL THEN
        PERFORM api.fail(422, format('%s listed tenant%s cannot occupy space on %s',
                                     json_array_length(errors),
                                     CASE WHEN json_array_length(errors) = 1 THEN '' ELSE 's' END,
                                     d), errors);
    END IF;

    SELECT coalesce(sum(area_m2), 0), count(*),
           coalesce(jsonb_agg(jsonb_build_object('external_id', external_id,
                                                 'area_m2', api.num(area_m2))
                              ORDER BY external_id), '[]')
      INTO tenant_area, listed_count, canonical
      FROM unnest(listed);
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

    content_hash := encode(sha256(convert_to(api.num(public_service)::text || ' ' ||
                                             canonical::text, 'UTF8')), 'hex');
    IF latest.as_of = d AND latest.content_sha256 = content_hash THEN
        -- The same snapshot again: nothing changes.
        RETURN api.ok(200, api.space_share_json(inc.id, d));
    END IF;

    -- Intervals opened by a snapshot of the same day are replaced outright.
    DELETE FROM occupancy WHERE incubator_id = inc.id AND lower(valid) >= d;
    -- Intervals running through d end there, unless the tenant keeps the same area.
    UPDATE occupancy o SET valid = daterange(lower(o.valid), d)
     WHERE o.incubator_id = inc.id AND o.valid @> d
       AND NOT EXISTS (SELECT 1 FROM unnest(listed) l
                        WHERE l.tenant_id = o.tenant_id AND l.area_m2 = o.area_m2);
    INSERT INTO occupancy (tenant_id, incubator_id, valid, area_m2)
    SELECT l.tenant_id, inc.id, daterange(d, l.exited_on), l.area_m2
      FROM unnest(listed) l
     WHERE NOT EXISTS (SELECT 1 FROM occupancy o
                        WHERE o.tenant_id = l.tenant_id AND o.valid @> d);

    DELETE FROM public_service_areas WHERE incubator_id = inc.id AND lower(valid) >= d;
    IF api.public_service_area_on(inc.id, d) IS DISTINCT FROM public_service THEN
        UPDATE public_service_areas SET valid = daterange(lower(valid), d)
         WHERE incubator_id = inc.id AND valid @> d;
        INSERT INTO public_service_areas (incubator_id, valid, area_m2)
        VALUES (inc.id, daterange(d, NULL), public_service);
    END IF;

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
                             d, CASE WHEN latest.as_of = d THEN ' (replaced)' ELSE '' END,
                             listed_count, api.num(tenant_area), api.num(public_service)),
                      jsonb_build_object('as_of', d, 'content_sha256', content_hash));
    PERFORM api.after_change(ctx, ARRAY[inc.id]);
    RETURN api.ok(200, api.space_share_json(inc.id, d));
END;
$$;
