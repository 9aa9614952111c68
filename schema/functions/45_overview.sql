-- The two reads the console is built on (and anyone else may use): the whole
-- city on one day, and one incubator's share day by day. Each is one
-- set-based statement over the same functions the monthly figures use
-- (api.share_days, api.tenant_counts), so a day's share here is the share
-- the metrics average and the alerts compare.

-- The status of a day's share num/den against a policy, compared exactly
-- (no division): breach, warning, ok, or no_data when there is no share.
CREATE FUNCTION api.share_status_exact(num numeric, den numeric, veto numeric, margin numeric)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN num IS NULL OR den IS NULL THEN 'no_data'
                WHEN num < veto * den THEN 'breach'
                WHEN num < (veto + margin) * den THEN 'warning'
                ELSE 'ok' END
$$;

/*
 * GET /v1/reports/overview[?on=DATE]: every incubator opened by that day,
 * ordered by code, with its share and status that day (as space-share?on=
 * answers them), the latest snapshot on or before it, the tenants
 * incubating that day, the alerts open now by severity (alerts are a state
 * of the present, not of the day asked about), and the trailing-12-month
 * graduation rate of the month of that day up to it (as metrics?period=
 * of that month answers it).
 *
 * work_mem: the tenant counts sort the whole city's tenants by incubator,
 * some 10 MB at 100,000 tenants; the default 4 MB spills that sort to disk.
 */
CREATE FUNCTION api.reports_overview(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE sql STABLE SET jit = off SET work_mem = '64MB' AS $$
    WITH
    asked AS (
        SELECT coalesce((args->>'on')::date, api.today(ctx)) AS day
    ),
    open_alerts AS (
        SELECT a.incubator_id,
               count(*) FILTER (WHERE a.severity = 'critical') AS critical,
               count(*) FILTER (WHERE a.severity = 'warning') AS warning,
               count(*) FILTER (WHERE a.severity = 'info') AS info
          FROM alerts a
         WHERE a.state = 'firing'
         GROUP BY a.incubator_id
    ),
    shares AS (
        SELECT d.* FROM asked, api.share_days(asked.day, asked.day) d
    ),
    counts AS (
        SELECT c.* FROM asked,
               api.tenant_counts(date_trunc('month', asked.day)::date, asked.day) c
    ),
    latest AS (
        SELECT s.incubator_id, max(s.as_of) AS as_of
          FROM snapshots s, asked
         WHERE s.as_of <= asked.day
         GROUP BY s.incubator_id
    )
    SELECT api.ok(200, json_build_object(
        'on', asked.day,
        'items', coalesce(json_agg(json_build_object(
            'incubator', i.code,
            'name', i.name,
            'district', i.district,
            'level', i.level,
            'kind', i.kind,
            'share', api.ratio(api.quotient(d.tech_area_m2 + d.public_service_area_m2,
                                            d.disposable_area_m2)),
            'status', api.share_status_exact(d.tech_area_m2 + d.public_service_area_m2,
                                             d.disposable_area_m2, p.veto_threshold,
                                             p.warning_margin),
            'threshold', api.num(p.veto_threshold),
            'warning_threshold', api.num(p.veto_threshold + p.warning_margin),
            'last_snapshot_on', l.as_of,
            'incubating', coalesce(c.incubating_at_end, 0),
            'open_alerts', json_build_object('critical', coalesce(a.critical, 0),
                                             'warning', coalesce(a.warning, 0),
                                             'info', coalesce(a.info, 0)),
            'trailing_12m_graduation_rate', api.graduation_rate(c.graduated_12m, c.exited_12m))
            ORDER BY i.code) FILTER (WHERE i.id IS NOT NULL), '[]'::json)))
      FROM asked
     CROSS JOIN LATERAL api.policy_on(asked.day) p
      LEFT JOIN incubators i ON i.opened_on <= asked.day
                             -- closed before the day: no longer in the overview
                             AND (i.closed_on IS NULL OR i.closed_on >= asked.day)
      LEFT JOIN shares d ON d.incubator_id = i.id
      LEFT JOIN counts c ON c.incubator_id = i.id
      LEFT JOIN latest l ON l.incubator_id = i.id
      LEFT JOIN open_alerts a ON a.incubator_id = i.id
     GROUP BY asked.day
$$;

/*
 * GET /v1/incubators/{code}/space-share/daily?from=&to=: one item per day
 * of [from, to] (the daemon has checked the range and filled in its
 * defaults), each equal to space-share?on= of that day: the share rounded
 * for display, the threshold of the policy in force that month and the
 * status compared exactly; share null and status no_data on a day without
 * data.
 */
CREATE FUNCTION api.space_share_daily(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE sql STABLE SET jit = off AS $$
    WITH
    asked AS (
        SELECT api.incubator_id(args->>'code') AS id, (args->>'from')::date AS first,
               (args->>'to')::date AS last
    ),
    parts AS (
        SELECT d.day, d.tech_area_m2 + d.public_service_area_m2 AS num,
               d.disposable_area_m2 AS den
          FROM asked, api.share_days(asked.first, asked.last, asked.id) d
    )
    SELECT api.ok(200, json_build_object(
        'incubator', args->>'code',
        'from', asked.first,
        'to', asked.last,
        'items', json_agg(json_build_object(
            'on', g.day::date,
            'share', api.ratio(api.quotient(s.num, s.den)),
            'threshold', api.num(p.veto_threshold),
            'warning_threshold', api.num(p.veto_threshold + p.warning_margin),
            'status', api.share_status_exact(s.num, s.den, p.veto_threshold, p.warning_margin))
            ORDER BY g.day)))
      FROM asked
     CROSS JOIN generate_series(asked.first, asked.last, interval '1 day') g(day)
      JOIN api.policy_spans p ON p.span @> g.day::date
      LEFT JOIN parts s ON s.day = g.day::date
     GROUP BY asked.first, asked.last
$$;
