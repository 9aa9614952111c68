-- Metrics and reports: the time-weighted space share, tenant counts and
-- graduation rates per incubator and month, the monthly report (JSON and
-- CSV), cohorts, and the plan's progress. Everything is computed over whole
-- tables at once; the per-incubator endpoint filters the same functions.
--
-- JIT is off for these functions: compiling their plans costs far more than
-- running them (seconds on a small or unanalysed database). The two that
-- read the big tables are PL/pgSQL so that each call is planned for its own
-- arguments: one incubator's metrics then use its indexes.
--
-- Exactness: areas are numeric with two decimals, so every day's share is a
-- ratio num/den of exact numerics. Comparisons with a threshold are made on
-- num < threshold * den (no division). A ratio that must be a number is
-- api.quotient(num, den): the exact quotient truncated at 30 decimals, which
-- compares with any threshold of up to 30 decimals exactly as the true value
-- would and rounds half-up to 4 decimals (api.ratio) exactly as it would.
-- The monthly average is the exact fraction sum(num_d / den_d) / days, built
-- with api.fraction_sum, and only then turned into such a quotient.

-- The exact quotient p / q truncated toward zero at 30 decimals.
CREATE FUNCTION api.quotient(p numeric, q numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT div(p * 1e30, q) / 1e30
$$;

-- Fractions added exactly: state {numerator, denominator}.
CREATE FUNCTION api.fraction_add(s numeric[], num numeric, den numeric) RETURNS numeric[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN num IS NULL OR den IS NULL THEN s
                WHEN s IS NULL THEN ARRAY[num, den]
                WHEN s[2] = den THEN ARRAY[s[1] + num, den]
                ELSE ARRAY[s[1] * den + num * s[2], s[2] * den] END
$$;

-- sum(num / den) as an exact fraction {numerator, denominator}; NULL over no rows.
CREATE AGGREGATE api.fraction_sum(numeric, numeric) (
    SFUNC = api.fraction_add,
    STYPE = numeric[]
);

-- Each policy version with the days it is in force, [effective_from, next
-- version's effective_from): the set-based form of api.policy_on.
CREATE VIEW api.policy_spans AS
    SELECT p.*, daterange(p.effective_from,
                          lead(p.effective_from) OVER (ORDER BY p.effective_from)) AS span
      FROM (SELECT DISTINCT ON (effective_from) *
              FROM policies
             ORDER BY effective_from, version DESC) p;

-- The day after the last day a period YYYY-MM covers, and its first day:
-- the whole month, or up to today for the current month. A month that has
-- not started yet is a 422 naming the field.
CREATE FUNCTION api.period_bounds(period text, today date, field text DEFAULT 'period',
                                  OUT first_day date, OUT last_day date)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    first_day := (period || '-01')::date;
    IF first_day > today THEN
        PERFORM api.fail_field(field, format('%s has not started yet (today is %s)',
                                             period, today));
    END IF;
    last_day := least((first_day + interval '1 month')::date - 1, today);
END;
$$;

/*
 * The parts of share(d) for every incubator (or only one) and every day of
 * [period_start, period_end] on which it has data: a snapshot on or before d
 * and a disposable area in force on d.
 *
 * No tenant is joined with any day. Each interval that matters (a tenant's
 * occupancy while it is a science/technology enterprise, a public service
 * area, a disposable area) is clipped to the period and becomes two changes:
 * +area on its first day, -area on the day after its last. The changes are
 * summed per incubator and day (at most one row per day), and a running sum
 * of them, ordered by day, is the value in force on each day; the days
 * themselves are rows of the same sort ("grid" rows, changing nothing).
 */
CREATE FUNCTION api.share_days(period_start date, period_end date,
                               only_incubator bigint DEFAULT NULL)
RETURNS TABLE (incubator_id bigint, day date, tech_area_m2 numeric,
               public_service_area_m2 numeric, disposable_area_m2 numeric)
LANGUAGE plpgsql STABLE SET jit = off SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH
    -- The first day with data in the period: the first snapshot, if it is in time.
    first_data AS MATERIALIZED (
        SELECT f.incubator_id, greatest(period_start, f.first_snapshot) AS first_day
          FROM (SELECT i.id AS incubator_id,
                       (SELECT min(s.as_of) FROM snapshots s
                         WHERE s.incubator_id = i.id) AS first_snapshot
                  FROM incubators i
                 WHERE only_incubator IS NULL OR i.id = only_incubator) f
         WHERE f.first_snapshot <= period_end
    ),
    -- Areas occupied by science/technology enterprises, clipped to the
    -- period: from the later of the interval's start and the enterprise's
    -- certification, up to (not including) stop.
    tech_spans AS MATERIALIZED (
        SELECT o.incubator_id, o.area_m2,
               greatest(lower(o.valid), period_start,
                        least(t.tech_certified_on, t.high_tech_certified_on)) AS first,
               least(upper(o.valid), period_end + 1) AS stop
          FROM occupancy o
          JOIN tenants t ON t.id = o.tenant_id
         WHERE o.valid::daterange && daterange(period_start, period_end + 1)
           AND (only_incubator IS NULL OR o.incubator_id = only_incubator)
           AND least(t.tech_certified_on, t.high_tech_certified_on) <= period_end
    ),
    changes AS (
        SELECT x.incubator_id, x.day, sum(x.tech) AS tech, sum(x.public_service) AS public_service,
               sum(x.disposable) AS disposable
          FROM (
            SELECT s.incubator_id, s.first AS day, s.area_m2 AS tech,
                   0 AS public_service, 0 AS disposable
              FROM tech_spans s
             WHERE s.first < s.stop
            UNION ALL
            SELECT s.incubator_id, s.stop, -s.area_m2, 0, 0
              FROM tech_spans s
             WHERE s.first < s.stop AND s.stop <= period_end
            UNION ALL
            SELECT a.incubator_id, c.day, 0, c.delta, 0
              FROM public_service_areas a
             CROSS JOIN LATERAL (VALUES (greatest(lower(a.valid), period_start), a.area_m2),
                                        (least(upper(a.valid), period_end + 1), -a.area_m2))
                   c(day, delta)
             WHERE a.valid::daterange && daterange(period_start, period_end + 1)
               AND (only_incubator IS NULL OR a.incubator_id = only_incubator)
               AND c.day <= period_end
            UNION ALL
            SELECT a.incubator_id, c.day, 0, 0, c.delta
              FROM incubator_areas a
             CROSS JOIN LATERAL (VALUES (greatest(lower(a.valid), period_start),
                                         a.disposable_area_m2),
                                        (least(upper(a.valid), period_end + 1),
                                         -a.disposable_area_m2)) c(day, delta)
             WHERE a.valid::daterange && daterange(period_start, period_end + 1)
               AND (only_incubator IS NULL OR a.incubator_id = only_incubator)
               AND c.day <= period_end) x
         GROUP BY x.incubator_id, x.day
    ),
    running AS (
        -- Sorted by day, a change row comes with or before the grid row of
        -- its day, and the default frame (RANGE ... CURRENT ROW) takes every
        -- row of the same day: a grid row sees the value in force on its day.
        SELECT ch.incubator_id, ch.day, ch.grid,
               sum(ch.tech) OVER w AS tech,
               sum(ch.public_service) OVER w AS public_service,
               sum(ch.disposable) OVER w AS disposable
          FROM (SELECT f.incubator_id, f.first_day + n AS day, true AS grid,
                       0::numeric AS tech, 0::numeric AS public_service,
                       0::numeric AS disposable
                  FROM first_data f, generate_series(0, period_end - f.first_day) n
                UNION ALL
                SELECT c.incubator_id, c.day, false, c.tech, c.public_service, c.disposable
                  FROM changes c) ch
        WINDOW w AS (PARTITION BY ch.incubator_id ORDER BY ch.day)
    )
    SELECT r.incubator_id, r.day, r.tech, r.public_service, r.disposable
      FROM running r
     WHERE r.grid AND r.disposable > 0;
END;
$$;

/*
 * The time-weighted space share of every incubator over [period_start,
 * period_end] (one month, or its first days up to today), one row per
 * incubator: the days of the period, the days with data, the exact average
 * of share(d) over the days with data, min, max, the days below the veto
 * threshold of the policy in force for period_start's month, and whether
 * the average is below it (the monthly veto; exact). average/min/max are
 * api.quotient values (see above): api.ratio() them for display, compare
 * them as they are. Payouts use this function as it is.
 */
CREATE FUNCTION api.share_stats(period_start date, period_end date,
                                only_incubator bigint DEFAULT NULL)
RETURNS TABLE (incubator_id bigint, days integer, days_with_data integer, average numeric,
               min numeric, max numeric, days_below_threshold integer,
               average_below_threshold boolean, threshold numeric, policy_version integer)
LANGUAGE sql STABLE SET jit = off AS $$
    WITH
    policy AS (
        SELECT * FROM api.policy_on(period_start)
    ),
    day_parts AS (
        SELECT d.incubator_id, d.tech_area_m2 + d.public_service_area_m2 AS num,
               d.disposable_area_m2 AS den
          FROM api.share_days(period_start, period_end, only_incubator) d
    ),
    -- Days of one incubator with the same disposable area share a
    -- denominator: their smallest share is the smallest numerator over it.
    by_den AS (
        SELECT dp.incubator_id, dp.den, sum(dp.num) AS num, count(*) AS n,
               api.quotient(min(dp.num), dp.den) AS min_share,
               api.quotient(max(dp.num), dp.den) AS max_share,
               count(*) FILTER (WHERE dp.num < p.veto_threshold * dp.den) AS below
          FROM day_parts dp CROSS JOIN policy p
         GROUP BY dp.incubator_id, dp.den
    ),
    stats AS (
        SELECT b.incubator_id, sum(b.n)::integer AS n, api.fraction_sum(b.num, b.den) AS total,
               min(b.min_share) AS min_share, max(b.max_share) AS max_share,
               sum(b.below)::integer AS below
          FROM by_den b
         GROUP BY b.incubator_id
    )
    SELECT i.id, (period_end - period_start + 1)::integer, coalesce(s.n, 0),
           api.quotient(s.total[1], s.total[2] * s.n),
           s.min_share, s.max_share, coalesce(s.below, 0),
           s.total[1] < p.veto_threshold * s.total[2] * s.n,
           p.veto_threshold, p.version
      FROM incubators i
      CROSS JOIN policy p
      LEFT JOIN stats s ON s.incubator_id = i.id
     WHERE only_incubator IS NULL OR i.id = only_incubator
$$;

-- Each tenant's incubation: admitted_on; graduated_on; exited_on only for an
-- exit from incubation (a graduate who leaves later is not one); ended_on, the
-- day its incubation ended (graduation or that exit), or NULL; and limit_on,
-- its incubation limit (api.incubation_limit_on, set-based: admission + the
-- months of the policy in force then, the extended limit for its field).
CREATE VIEW api.tenant_lives AS
    SELECT t.id, t.incubator_id, t.admitted_on, t.graduated_on,
           CASE WHEN t.graduated_on IS NULL THEN t.exited_on END AS exited_on,
           coalesce(t.graduated_on, t.exited_on) AS ended_on,
           (t.admitted_on + make_interval(months =>
               CASE WHEN t.field = ANY (p.extended_fields) THEN p.extended_limit_months
                    ELSE p.incubation_limit_months END))::date AS limit_on
      FROM tenants t
      JOIN api.policy_spans p ON p.span @> t.admitted_on;

/*
 * Tenant counts of every incubator (or only one) over [period_start,
 * period_end]. A tenant's incubation ends on its graduation day, or on its
 * exit day if it left without graduating; it is incubating on the days
 * before. So:
 *   incubating_at_start: admitted before the period, incubation not ended before it;
 *   admitted, graduated, exited (exits from incubation only): dated in the period;
 *   incubating_at_end: admitted by the period's last day, incubation not ended by it;
 *   overdue: of those, the ones past their incubation limit on that last day;
 * and incubating_at_start + admitted - graduated - exited = incubating_at_end.
 * The trailing counts pool graduations and exits over the 12 months ending
 * with the period.
 */
CREATE FUNCTION api.tenant_counts(period_start date, period_end date,
                                  only_incubator bigint DEFAULT NULL)
RETURNS TABLE (incubator_id bigint, incubating_at_start integer, admitted integer,
               graduated integer, exited integer, incubating_at_end integer, overdue integer,
               graduated_12m integer, exited_12m integer)
LANGUAGE plpgsql STABLE SET jit = off SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH
    window_start AS (
        SELECT (date_trunc('month', period_start) - interval '11 months')::date AS day
    ),
    -- Tenants whose incubation ended before the 12 months count nowhere.
    lives AS (
        SELECT l.* FROM api.tenant_lives l CROSS JOIN window_start w
         WHERE (only_incubator IS NULL OR l.incubator_id = only_incubator)
           AND l.admitted_on <= period_end
           AND (l.ended_on IS NULL OR l.ended_on >= w.day)
    )
    SELECT i.id,
           coalesce(c.at_start, 0), coalesce(c.admitted, 0), coalesce(c.graduated, 0),
           coalesce(c.exited, 0), coalesce(c.at_end, 0), coalesce(c.overdue, 0),
           coalesce(c.graduated_12m, 0), coalesce(c.exited_12m, 0)
      FROM incubators i
      LEFT JOIN (
        SELECT l.incubator_id,
               count(*) FILTER (WHERE l.admitted_on < period_start
                                  AND (l.ended_on IS NULL OR l.ended_on >= period_start))::integer
                   AS at_start,
               count(*) FILTER (WHERE l.admitted_on >= period_start)::integer AS admitted,
               count(*) FILTER (WHERE l.graduated_on BETWEEN period_start AND period_end)::integer
                   AS graduated,
               count(*) FILTER (WHERE l.exited_on BETWEEN period_start AND period_end)::integer
                   AS exited,
               count(*) FILTER (WHERE l.ended_on IS NULL OR l.ended_on > period_end)::integer
                   AS at_end,
               count(*) FILTER (WHERE (l.ended_on IS NULL OR l.ended_on > period_end)
                                  AND period_end > l.limit_on)::integer AS overdue,
               count(*) FILTER (WHERE l.graduated_on BETWEEN w.day AND period_end)::integer
                   AS graduated_12m,
               count(*) FILTER (WHERE l.exited_on BETWEEN w.day AND period_end)::integer
                   AS exited_12m
          FROM lives l CROSS JOIN window_start w
         GROUP BY l.incubator_id) c ON c.incubator_id = i.id
     WHERE only_incubator IS NULL OR i.id = only_incubator;
END;
$$;

-- graduated / (graduated + exited), null when no incubation ended.
CREATE FUNCTION api.graduation_rate(graduated integer, exited integer) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN graduated + exited > 0
                THEN api.ratio(api.quotient(graduated, graduated + exited)) END
$$;

-- Every figure of the metrics object for one incubator.
CREATE TYPE api.metrics_row AS (
    code                          text,
    name                          text,
    days                          integer,
    days_with_data                integer,
    average                       numeric, -- rounded for display, like min and max
    min                           numeric,
    max                           numeric,
    days_below_threshold          integer,
    average_below_threshold       boolean, -- exact
    threshold                     numeric,
    policy_version                integer,
    incubating_at_start           integer,
    admitted                      integer,
    graduated                     integer,
    exited                        integer,
    incubating_at_end             integer,
    overdue                       integer,
    graduation_rate               numeric,
    trailing_12m_graduation_rate  numeric
);

-- The metrics of every incubator opened by the period's last day and not
-- closed before its first (or of only one incubator), ordered by code.
CREATE FUNCTION api.metrics_rows(period_start date, period_end date,
                                 only_incubator bigint DEFAULT NULL)
RETURNS SETOF api.metrics_row
LANGUAGE sql STABLE SET jit = off AS $$
    SELECT i.code, i.name, s.days, s.days_with_data, api.ratio(s.average), api.ratio(s.min),
           api.ratio(s.max), s.days_below_threshold, s.average_below_threshold, s.threshold,
           s.policy_version,
           c.incubating_at_start, c.admitted, c.graduated, c.exited, c.incubating_at_end,
           c.overdue, api.graduation_rate(c.graduated, c.exited),
           api.graduation_rate(c.graduated_12m, c.exited_12m)
      FROM incubators i
      JOIN api.share_stats(period_start, period_end, only_incubator) s ON s.incubator_id = i.id
      JOIN api.tenant_counts(period_start, period_end, only_incubator) c ON c.incubator_id = i.id
     WHERE (only_incubator IS NULL OR i.id = only_incubator)
       AND (only_incubator IS NOT NULL
            OR (i.opened_on <= period_end
                -- closed before the period: not in its reports
                AND (i.closed_on IS NULL OR i.closed_on >= period_start)))
     ORDER BY i.code
$$;

-- The metrics object of API.md.
CREATE FUNCTION api.metrics_json(m api.metrics_row, period text, period_end date) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'incubator', m.code,
        'period', period,
        'through', period_end,
        'policy_version', m.policy_version,
        'days', m.days,
        'days_with_data', m.days_with_data,
        'space_share', json_build_object(
            'average', m.average,
            'min', m.min,
            'max', m.max,
            'days_below_threshold', m.days_below_threshold,
            'threshold', api.num(m.threshold),
            'average_below_threshold', m.average_below_threshold),
        'tenants', json_build_object(
            'incubating_at_start', m.incubating_at_start,
            'admitted', m.admitted,
            'graduated', m.graduated,
            'exited', m.exited,
            'incubating_at_end', m.incubating_at_end,
            'overdue', m.overdue),
        'graduation_rate', m.graduation_rate,
        'trailing_12m_graduation_rate', m.trailing_12m_graduation_rate)
$$;

-- GET /v1/incubators/{code}/metrics?period=YYYY-MM
CREATE FUNCTION api.metrics_get(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    incubator bigint := api.incubator_id(args->>'code');
    b record := api.period_bounds(args->>'period', api.today(ctx));
    m api.metrics_row;
BEGIN
    SELECT * INTO m FROM api.metrics_rows(b.first_day, b.last_day, incubator);
    RETURN api.ok(200, api.metrics_json(m, args->>'period', b.last_day));
END;
$$;

/*
 * GET /v1/reports/monthly?period=YYYY-MM: the metrics of every incubator
 * opened by the period's last day, as {"period", "through", "items"} or, when
 * ctx.format is "csv", as one JSON string holding the CSV text (the daemon
 * sends it as text/csv with a BOM).
 */
CREATE FUNCTION api.reports_monthly(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    b record := api.period_bounds(args->>'period', api.today(ctx));
    period text := args->>'period';
    lang text;
BEGIN
    IF ctx->>'format' = 'csv' THEN
        lang := api.csv_lang(ctx, args);
        RETURN api.ok(200, api.csv_reply(
            api.csv_header(lang,
                ARRAY['incubator', 'name', 'period', 'through', 'days',
                      'days_with_data', 'share_average', 'share_min', 'share_max',
                      'days_below_threshold', 'threshold', 'vetoed', 'incubating_at_start',
                      'admitted', 'graduated', 'exited', 'incubating_at_end',
                      'overdue', 'graduation_rate', 'trailing_12m_graduation_rate'],
                ARRAY['孵化器代码', '孵化器名称', '期间', '截至', '天数',
                      '有数据天数', '科技企业场地占比均值', '占比最低', '占比最高',
                      '低于否决线天数', '否决线', '一票否决', '期初在孵',
                      '新入孵', '毕业', '退出', '期末在孵',
                      '超期在孵', '毕业率', '近12个月毕业率'])
            || coalesce((
                SELECT string_agg(api.csv_record(ARRAY[
                           m.code, m.name, period, b.last_day::text, m.days::text,
                           m.days_with_data::text, api.csv_ratio(m.average),
                           api.csv_ratio(m.min), api.csv_ratio(m.max),
                           m.days_below_threshold::text, api.csv_ratio(m.threshold),
                           api.csv_bool(lang, m.days_with_data = 0 OR m.average_below_threshold),
                           m.incubating_at_start::text, m.admitted::text, m.graduated::text,
                           m.exited::text, m.incubating_at_end::text, m.overdue::text,
                           api.csv_ratio(m.graduation_rate),
                           api.csv_ratio(m.trailing_12m_graduation_rate)]),
                           '' ORDER BY m.code)
                  FROM api.metrics_rows(b.first_day, b.last_day) m), ''),
            format('report-monthly-%s.csv', period)));
    END IF;
    RETURN api.ok(200, json_build_object(
        'period', period,
        'through', b.last_day,
        'items', coalesce((SELECT json_agg(api.metrics_json(m, period, b.last_day) ORDER BY m.code)
                             FROM api.metrics_rows(b.first_day, b.last_day) m), '[]'::json)));
END;
$$;

/*
 * GET /v1/reports/cohorts?admitted_year=YYYY[&incubator=CODE]: the tenants
 * admitted in that year (of one incubator, or city-wide), as they stand
 * today: graduated within their incubation limit, graduated late, exited
 * without graduating, still incubating. Events dated after today have not
 * happened yet. The daemon has checked that an incubator token names its
 * own incubator.
 */
CREATE FUNCTION api.reports_cohorts(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    today date := api.today(ctx);
    year integer := (args->>'admitted_year')::integer;
    incubator bigint;
    c record;
BEGIN
    IF make_date(year, 1, 1) > today THEN
        PERFORM api.fail_field('admitted_year', format('%s has not started yet (today is %s)',
                                                       year, today));
    END IF;
    IF args->>'incubator' IS NOT NULL THEN
        incubator := api.incubator_id(args->>'incubator');
    END IF;
    SELECT count(*)::integer AS admitted,
           count(*) FILTER (WHERE l.graduated_on <= today AND l.graduated_on <= l.limit_on)::integer
               AS graduated,
           count(*) FILTER (WHERE l.graduated_on <= today AND l.graduated_on > l.limit_on)::integer
               AS graduated_late,
           count(*) FILTER (WHERE l.exited_on <= today)::integer AS exited,
           count(*) FILTER (WHERE l.ended_on IS NULL OR l.ended_on > today)::integer
               AS incubating,
           count(*) FILTER (WHERE (l.ended_on IS NULL OR l.ended_on > today)
                              AND today > l.limit_on)::integer AS overdue
      INTO c
      FROM api.tenant_lives l
     WHERE l.admitted_on >= make_date(year, 1, 1)
       AND l.admitted_on < make_date(year + 1, 1, 1)
       AND (incubator IS NULL OR l.incubator_id = incubator);
    RETURN api.ok(200, json_build_object(
        'admitted_year', year,
        'incubator', args->>'incubator',
        'as_of', today,
        'admitted', c.admitted,
        'graduated', c.graduated,
        'graduated_late', c.graduated_late,
        'exited', c.exited,
        'incubating', c.incubating,
        'overdue', c.overdue,
        'graduation_rate', CASE WHEN c.admitted > 0
                                THEN api.ratio(api.quotient(c.graduated, c.admitted)) END));
END;
$$;

CREATE FUNCTION api.plan_json(p plans) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', p.id,
        'from', p.window_from,
        'to', p.window_to,
        'targets', p.targets,
        'created_at', api.ts(p.created_at),
        'created_by', p.created_by,
        'updated_at', api.ts(p.updated_at),
        'updated_by', p.updated_by)
$$;

-- The plan of an id, or 404.
CREATE FUNCTION api.plan_named(plan_id text) RETURNS plans
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p plans;
BEGIN
    SELECT * INTO p FROM plans WHERE id = plan_id;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no plan %s', plan_id));
    END IF;
    RETURN p;
END;
$$;

-- GET /v1/plans/{plan}
CREATE FUNCTION api.plan_get(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE sql STABLE AS $$
    SELECT api.ok(200, api.plan_json(api.plan_named(args->>'plan')))
$$;

-- GET /v1/plans: ordered by id.
CREATE FUNCTION api.plan_list(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE sql STABLE AS $$
    SELECT api.ok(200, api.page(array_agg(api.plan_json(p) ORDER BY p.id),
                                array_agg(p.id ORDER BY p.id), (args->>'limit')::int))
      FROM (SELECT * FROM plans
             WHERE args->>'cursor' IS NULL
                OR id > api.cursor_matching(args->>'cursor', '^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$')
             ORDER BY id LIMIT (args->>'limit')::int + 1) p
$$;

/*
 * PUT /v1/plans/{plan} {"from", "to", "targets"}: 201 created, 200 replaced
 * (or the same again: nothing is written). The reward policy is untouched.
 */
CREATE FUNCTION api.plan_put(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    old plans;
    p plans;
BEGIN
    SELECT * INTO old FROM plans WHERE id = args->>'plan' FOR UPDATE;
    IF FOUND AND old.window_from = (args->>'from')::date AND old.window_to = (args->>'to')::date
       AND old.targets = args->'targets' THEN
        RETURN api.ok(200, api.plan_json(old));
    END IF;
    INSERT INTO plans AS x (id, window_from, window_to, targets, created_at, created_by,
                            updated_at, updated_by)
    VALUES (args->>'plan', (args->>'from')::date, (args->>'to')::date, args->'targets',
            api.now(ctx), ctx->>'token_name', api.now(ctx), ctx->>'token_name')
    ON CONFLICT (id) DO UPDATE
       SET window_from = excluded.window_from, window_to = excluded.window_to,
           targets = excluded.targets, updated_at = excluded.updated_at,
           updated_by = excluded.updated_by
    RETURNING * INTO p;
    PERFORM api.audit(ctx, NULL, format('%s plan %s (%s to %s)',
                                        CASE WHEN old.id IS NULL THEN 'created' ELSE 'replaced' END,
                                        p.id, p.window_from, p.window_to), args);
    RETURN api.ok(CASE WHEN old.id IS NULL THEN 201 ELSE 200 END, api.plan_json(p),
                  '/v1/plans/' || p.id);
END;
$$;

/*
 * GET /v1/reports/plan-progress?as_of=DATE&plan=ID: a plan's targets (科技创业
 * 三年行动计划 工作目标) against the data up to as_of in the plan's window
 * [from, to]. Without plan: the plan whose window holds as_of (the latest
 * starting one if several do), else the latest. Enterprises are counted once
 * each (by credit code), wherever they are incubated.
 */
CREATE FUNCTION api.plan_progress_rows(plan_id text, as_of date)
RETURNS TABLE (plan text, window_from date, window_to date, key text, description text,
               target bigint, actual bigint, met boolean, ord integer)
LANGUAGE plpgsql STABLE SET jit = off AS $$
#variable_conflict use_column
DECLARE
    p plans;
    upto date;
BEGIN
    IF plan_id IS NOT NULL THEN
        p := api.plan_named(plan_id);
    ELSE
        SELECT * INTO p FROM plans x
         ORDER BY as_of BETWEEN x.window_from AND x.window_to DESC, x.window_from DESC,
                  x.window_to DESC, x.id
         LIMIT 1;
        IF NOT FOUND THEN
            PERFORM api.fail(404, 'no plan: create one with PUT /v1/plans/{id}');
        END IF;
    END IF;
    upto := least(p.window_to, as_of);

    RETURN QUERY
    WITH actual AS (
        SELECT 'incubators' AS key,
               (SELECT count(*) FROM incubators WHERE opened_on <= as_of) AS n
        UNION ALL
        SELECT 'new_tech_enterprises', count(DISTINCT credit_code) FROM tenants
         WHERE least(tech_certified_on, high_tech_certified_on) BETWEEN p.window_from AND upto
        UNION ALL
        SELECT 'revenue_over_5m', count(DISTINCT t.credit_code)
          FROM tenants t JOIN tenant_revenues r ON r.tenant_id = t.id
         WHERE r.revenue_fen >= 500000000
           AND r.year BETWEEN extract(year FROM p.window_from) AND extract(year FROM upto)
        UNION ALL
        SELECT 'revenue_over_20m', count(DISTINCT t.credit_code)
          FROM tenants t JOIN tenant_revenues r ON r.tenant_id = t.id
         WHERE r.revenue_fen >= 2000000000
           AND r.year BETWEEN extract(year FROM p.window_from) AND extract(year FROM upto)
        UNION ALL
        SELECT 'listed', count(DISTINCT credit_code) FROM tenants
         WHERE listed_on BETWEEN p.window_from AND upto
        UNION ALL
        SELECT 'new_high_tech', count(DISTINCT credit_code) FROM tenants
         WHERE high_tech_certified_on BETWEEN p.window_from AND upto
    ),
    described(key, position, description) AS (
        VALUES ('incubators', 1, '孵化器数量 / incubators opened'),
               ('new_tech_enterprises', 2,
                '新增科技型企业 / new science and technology enterprises'),
               ('revenue_over_5m', 3,
                '年营业收入超500万元的企业 / '
                'enterprises with annual revenue over 5 million CNY'),
               ('revenue_over_20m', 4,
                '年营业收入超2000万元的企业 / '
                'enterprises with annual revenue over 20 million CNY'),
               ('listed', 5, '上市企业 / listed enterprises'),
               ('new_high_tech', 6, '新增高新技术企业 / new national high-tech enterprises')
    )
    SELECT p.id, p.window_from, p.window_to, d.key, d.description,
           (p.targets->>d.key)::bigint, a.n::bigint, a.n >= (p.targets->>d.key)::bigint,
           d.position
      FROM described d JOIN actual a ON a.key = d.key
     WHERE p.targets ? d.key;
END;
$$;

-- GET /v1/reports/plan-progress (JSON, or CSV with Accept: text/csv)
CREATE FUNCTION api.reports_plan_progress(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    today date := api.today(ctx);
    as_of date := coalesce((args->>'as_of')::date, today);
    lang text := api.csv_lang(ctx, args);
    csv text;
    result json;
BEGIN
    IF as_of > today THEN
        PERFORM api.fail_field('as_of', format('must not be after today (%s)', today));
    END IF;
    IF ctx->>'format' = 'csv' THEN
        SELECT api.csv_header(lang, ARRAY['plan', 'from', 'to', 'as_of', 'key', 'description',
                                          'target', 'actual', 'met'],
                              ARRAY['计划', '起始日期', '截止日期', '统计日期', '指标',
                                    '说明', '目标', '实际', '是否达成'])
               || coalesce(string_agg(api.csv_record(ARRAY[
                      r.plan, r.window_from::text, r.window_to::text, as_of::text, r.key,
                      r.description, r.target::text, r.actual::text, api.csv_bool(lang, r.met)]),
                      '' ORDER BY r.ord), '')
          INTO csv
          FROM api.plan_progress_rows(args->>'plan', as_of) r;
        RETURN api.ok(200, api.csv_reply(csv, format('plan-progress-%s-%s.csv',
            (SELECT min(r.plan) FROM api.plan_progress_rows(args->>'plan', as_of) r), as_of)));
    END IF;
    SELECT json_build_object(
               'plan', min(r.plan),
               'as_of', as_of,
               'from', min(r.window_from),
               'to', min(r.window_to),
               'items', coalesce(json_agg(json_build_object(
                   'key', r.key, 'description', r.description, 'target', r.target,
                   'actual', r.actual, 'met', r.met) ORDER BY r.ord), '[]'))
      INTO result
      FROM api.plan_progress_rows(args->>'plan', as_of) r;
    RETURN api.ok(200, result);
END;
$$;
