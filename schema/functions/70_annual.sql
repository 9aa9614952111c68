-- The yearly report: per incubator, rolled up per district and for the
-- city. Counts come from the tenants' dates, the share from api.share_days
-- (exact fractions, pooled over incubator-days for the roll-ups), vetoes
-- from the monthly averages as the payouts decide them, rewards from the
-- approved runs of the year.

/*
 * The figures of one year up to through (the year's last day, or today in
 * the current year), one row per incubator opened by then (grouping
 * 'incubator'), per district ('district'; incubators without one under
 * district null) and for the city ('city').
 */
CREATE TYPE api.annual_row AS (
    grouping              text,    -- incubator, district or city
    incubator             text,
    name                  text,
    district              text,
    incubators            integer,
    tech_graduates        integer,
    graduates             integer,
    exits                 integer,
    graduation_rate       numeric, -- exact
    share_average         numeric, -- exact (api.quotient)
    days_with_data        integer,
    months                integer, -- months of the year that have ended, open in them
    months_vetoed         integer,
    rewards_approved_fen  bigint
);

CREATE FUNCTION api.annual_rows(year_start date, through date, today date)
RETURNS SETOF api.annual_row
LANGUAGE sql STABLE SET jit = off AS $$
    WITH inc AS (
        SELECT i.id, i.code, i.name, i.district FROM incubators i WHERE i.opened_on <= through
    ), tenant_counts AS (
        SELECT t.incubator_id,
               count(*) FILTER (WHERE t.graduated_on BETWEEN year_start AND through
                                  AND api.is_tech(t.tech_certified_on, t.high_tech_certified_on,
                                                  t.graduated_on)) AS tech_graduates,
               count(*) FILTER (WHERE t.graduated_on BETWEEN year_start AND through) AS graduates,
               -- An exit from incubation: a graduate who later leaves is not one.
               count(*) FILTER (WHERE t.graduated_on IS NULL
                                  AND t.exited_on BETWEEN year_start AND through) AS exits
          FROM tenants t GROUP BY t.incubator_id
    ), by_den AS (
        -- Days with the same disposable area share a denominator (as in api.share_stats).
        SELECT d.incubator_id, d.disposable_area_m2 AS den,
               sum(d.tech_area_m2 + d.public_service_area_m2) AS num, count(*) AS n
          FROM api.share_days(year_start, through) d
         GROUP BY d.incubator_id, d.disposable_area_m2
    ), month_vetoes AS (
        -- Every month of the year that has ended, for the incubators open in it.
        SELECT s.incubator_id, count(*) AS months,
               count(*) FILTER (WHERE s.days_with_data = 0 OR s.average_below_threshold) AS vetoed
          FROM generate_series(year_start, year_start + interval '11 months',
                               interval '1 month') m
          CROSS JOIN LATERAL api.share_stats(m::date, api.period_end(m::date)) s
          JOIN incubators i ON i.id = s.incubator_id
         WHERE api.period_end(m::date) < today AND i.opened_on <= api.period_end(m::date)
         GROUP BY s.incubator_id
    ), rewards AS (
        SELECT l.incubator_id, sum(l.amount_fen) AS fen
          FROM payout_lines l JOIN payout_runs r ON r.period = l.period
         WHERE r.status = 'approved' AND date_trunc('year', l.period) = year_start
         GROUP BY l.incubator_id
    ), per_incubator AS (
        SELECT inc.*, coalesce(tc.tech_graduates, 0) AS tech_graduates,
               coalesce(tc.graduates, 0) AS graduates, coalesce(tc.exits, 0) AS exits,
               coalesce(mv.months, 0) AS months, coalesce(mv.vetoed, 0) AS months_vetoed,
               coalesce(rw.fen, 0) AS rewards
          FROM inc
          LEFT JOIN tenant_counts tc ON tc.incubator_id = inc.id
          LEFT JOIN month_vetoes mv ON mv.incubator_id = inc.id
          LEFT JOIN rewards rw ON rw.incubator_id = inc.id
    ), shares AS (
        SELECT p.code, p.district, b.den, b.num, b.n
          FROM per_incubator p JOIN by_den b ON b.incubator_id = p.id
    ), share_groups AS (
        SELECT CASE WHEN GROUPING(s.code) = 0 THEN 'incubator'
                    WHEN GROUPING(s.district) = 0 THEN 'district' ELSE 'city' END AS grouping,
               s.code, s.district, api.fraction_sum(s.num, s.den) AS total, sum(s.n) AS n
          FROM shares s
         GROUP BY GROUPING SETS ((s.district, s.code), (s.district), ())
    ), groups AS (
        SELECT CASE WHEN GROUPING(p.code) = 0 THEN 'incubator'
                    WHEN GROUPING(p.district) = 0 THEN 'district' ELSE 'city' END AS grouping,
               p.code, min(p.name) AS name, p.district, count(*) AS incubators,
               sum(p.tech_graduates) AS tech_graduates, sum(p.graduates) AS graduates,
               sum(p.exits) AS exits, sum(p.months) AS months,
               sum(p.months_vetoed) AS months_vetoed, sum(p.rewards) AS rewards
          FROM per_incubator p
         GROUP BY GROUPING SETS ((p.district, p.code), (p.district), ())
    )
    SELECT (g.grouping, g.code, CASE WHEN g.grouping = 'incubator' THEN g.name END, g.district,
           g.incubators::integer, g.tech_graduates::integer, g.graduates::integer,
           g.exits::integer,
           CASE WHEN g.graduates + g.exits > 0
                THEN api.quotient(g.graduates, g.graduates + g.exits) END,
           api.quotient(s.total[1], s.total[2] * s.n), coalesce(s.n, 0)::integer,
           g.months::integer, g.months_vetoed::integer, g.rewards::bigint)::api.annual_row
      FROM groups g
      LEFT JOIN share_groups s ON s.grouping = g.grouping
                              AND s.code IS NOT DISTINCT FROM g.code
                              AND s.district IS NOT DISTINCT FROM g.district
$$;

CREATE FUNCTION api.annual_item_json(a api.annual_row) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'tech_graduates', a.tech_graduates,
        'graduates', a.graduates,
        'exits', a.exits,
        'graduation_rate', api.ratio(a.graduation_rate),
        'share_average', api.ratio(a.share_average),
        'days_with_data', a.days_with_data,
        'months', a.months,
        'months_vetoed', a.months_vetoed,
        'rewards_approved_fen', a.rewards_approved_fen)
$$;

/*
 * GET /v1/reports/annual?year=YYYY (admin): {"year", "through", "items",
 * "districts", "city"} or, with Accept: text/csv, one row per incubator,
 * then per district, then the city (column "level").
 */
CREATE FUNCTION api.reports_annual(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    today date := api.today(ctx);
    year_start date := make_date((args->>'year')::integer, 1, 1);
    through date := least(make_date((args->>'year')::integer, 12, 31), today);
    lang text := api.csv_lang(ctx, args);
BEGIN
    IF year_start > today THEN
        PERFORM api.fail_field('year', format('%s has not started yet (today is %s)',
                                              args->>'year', today));
    END IF;
    IF ctx->>'format' = 'csv' THEN
        RETURN api.ok(200, api.csv_reply(
            api.csv_header(lang,
                ARRAY['year', 'through', 'level', 'incubator', 'name', 'district', 'incubators',
                      'tech_graduates', 'graduates', 'exits', 'graduation_rate',
                      'share_average', 'days_with_data', 'months', 'months_vetoed',
                      'rewards_approved_cny'],
                ARRAY['年度', '截至', '层级', '孵化器代码', '孵化器名称', '区县', '孵化器数',
                      '科技型毕业企业数', '毕业企业数', '退出企业数', '毕业率',
                      '科技企业场地占比均值', '有数据天数', '月数', '一票否决月数',
                      '已审批奖励（元）'])
            || coalesce((
                SELECT string_agg(api.csv_record(ARRAY[
                           args->>'year', through::text, api.csv_word(lang, a.grouping),
                           a.incubator, a.name, a.district, a.incubators::text,
                           a.tech_graduates::text, a.graduates::text, a.exits::text,
                           api.csv_ratio(a.graduation_rate), api.csv_ratio(a.share_average),
                           a.days_with_data::text, a.months::text, a.months_vetoed::text,
                           api.fen_as_cny(a.rewards_approved_fen)]),
                           '' ORDER BY array_position(ARRAY['incubator', 'district', 'city'],
                                                      a.grouping),
                                       a.incubator, a.district NULLS LAST)
                  FROM api.annual_rows(year_start, through, today) a), ''),
            format('report-annual-%s.csv', args->>'year')));
    END IF;
    RETURN api.ok(200, (
        SELECT json_build_object(
            'year', (args->>'year')::integer,
            'through', through,
            'items', coalesce(jsonb_agg(jsonb_build_object('incubator', a.incubator,
                                                           'name', a.name,
                                                           'district', a.district)
                                        || api.annual_item_json(a) ORDER BY a.incubator)
                                  FILTER (WHERE a.grouping = 'incubator'), '[]'),
            'districts', coalesce(jsonb_agg(jsonb_build_object('district', a.district,
                                                               'incubators', a.incubators)
                                            || api.annual_item_json(a)
                                            ORDER BY a.district NULLS LAST)
                                      FILTER (WHERE a.grouping = 'district'), '[]'),
            'city', (jsonb_agg(jsonb_build_object('incubators', a.incubators)
                               || api.annual_item_json(a))
                         FILTER (WHERE a.grouping = 'city'))->0)
          FROM api.annual_rows(year_start, through, today) a));
END;
$$;
