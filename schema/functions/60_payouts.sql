-- Monthly reward payouts (后补助奖励) and the frozen history they create
-- (api.frozen_until, schema/functions/00_base.sql).
--
-- For each incubator and period P, with the policy version in force for P:
--   share_average = the mean of share(d) over the days of P with data;
--                   vetoed when it is below veto_threshold, or when no day has data;
--   eligible graduates = graduated in P, science/technology enterprise that
--                   day, entry age within entry_max_age_months, credit code
--                   never rewarded (api.payout_rewarded_codes; within the run,
--                   only its earliest graduation, ties to the lowest incubator code);
--   base_fen      = eligible × reward_per_graduate_fen
--                   + eligible high-tech × high_tech_bonus_fen;
--   own amount    = 0 if vetoed, else min(base_fen, what is left of
--                   annual_cap_fen after what the year already paid);
--   amount_fen    = own amount + the line's adjustments: late graduations of
--                   approved periods, paid under their own period's rules, and
--                   clawbacks of revoked graduations that were paid.
-- Money is integer fen throughout; the share average and the veto come from
-- api.share_stats (schema/functions/40_metrics.sql), which compares exact
-- fractions, never rounded decimals.

-- Whether an approved run has recovered what was paid for a graduation.
CREATE FUNCTION api.payout_clawed_back(tenant bigint, graduated date) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1
                     FROM payout_adjustments a JOIN payout_runs r ON r.period = a.period
                    WHERE r.status = 'approved' AND a.kind = 'clawback'
                      AND a.tenant_id = tenant AND a.graduated_on = graduated)
$$;

/*
 * The credit codes that have earned their one graduation reward, as of now:
 * counted as eligible on a line of an approved run that paid something, or
 * paid as a late graduation by an approved run, unless recovered since; and
 * the enterprises of prior payouts (rewarded before the history started).
 */
CREATE FUNCTION api.payout_rewarded_codes() RETURNS TABLE (credit_code text)
LANGUAGE sql STABLE AS $$
    SELECT pg.credit_code
      FROM payout_graduates pg
      JOIN payout_runs r ON r.period = pg.period AND r.status = 'approved'
      JOIN payout_lines l ON l.period = pg.period AND l.incubator_id = pg.incubator_id
     WHERE pg.eligible AND l.amount_fen - l.adjustments_fen > 0
       AND NOT api.payout_clawed_back(pg.tenant_id, pg.graduated_on)
    UNION
    SELECT a.credit_code
      FROM payout_adjustments a JOIN payout_runs r ON r.period = a.period
     WHERE r.status = 'approved' AND a.kind = 'late_graduation' AND a.amount_fen > 0
       AND NOT api.payout_clawed_back(a.tenant_id, a.graduated_on)
    UNION
    SELECT unnest(p.graduates) FROM prior_payouts p
$$;

/*
 * What each incubator was paid for the calendar year that starts on
 * year_start, counted against that year's cap: the own amounts of the
 * approved runs of the year, the adjustments (carried by any approved run)
 * for periods of the year, and the prior payouts of the year.
 */
CREATE FUNCTION api.payout_paid_in_year(year_start date)
RETURNS TABLE (incubator_id bigint, fen bigint)
LANGUAGE sql STABLE AS $$
    SELECT x.incubator_id, sum(x.fen)::bigint
      FROM (SELECT l.incubator_id, l.amount_fen - l.adjustments_fen AS fen
              FROM payout_lines l JOIN payout_runs r ON r.period = l.period
             WHERE r.status = 'approved' AND date_trunc('year', l.period) = year_start
            UNION ALL
            SELECT a.incubator_id, a.amount_fen
              FROM payout_adjustments a JOIN payout_runs r ON r.period = a.period
             WHERE r.status = 'approved' AND date_trunc('year', a.for_period) = year_start
            UNION ALL
            SELECT p.incubator_id, p.amount_fen
              FROM prior_payouts p WHERE p.year = extract(year FROM year_start)) x
     GROUP BY x.incubator_id
$$;

/*
 * The late graduations a run for run_period carries: graduations dated in an
 * approved period that its run did not count (recorded after the approval)
 * and that no approved run has carried yet. Each is judged under its own
 * period's policy and line: not_tech, entry_age, already_rewarded (as of now,
 * and within the run only the earliest graduation of a code), then that
 * line's veto (no_data, veto), then that year's cap, filled in the order of
 * graduation.
 */
CREATE FUNCTION api.payout_late_graduations(run_period date)
RETURNS TABLE (incubator_id bigint, tenant_id bigint, graduated_on date, for_period date,
               external_id text, credit_code text, high_tech boolean, eligible boolean,
               amount_fen bigint, reason text)
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT t.incubator_id, t.id AS tenant_id, t.graduated_on, r.period AS q,
               t.external_id, t.credit_code, i.code AS incubator_code,
               coalesce(t.high_tech_certified_on <= t.graduated_on, false) AS high_tech,
               api.is_tech(t.tech_certified_on, t.high_tech_certified_on, t.graduated_on) AS tech,
               t.admitted_on > (t.founded_on
                                + make_interval(months => p.entry_max_age_months))::date AS too_old,
               t.credit_code IN (SELECT rc.credit_code FROM api.payout_rewarded_codes() rc)
                   AS rewarded_before,
               p.reward_per_graduate_fen, p.high_tech_bonus_fen, p.annual_cap_fen,
               ql.vetoed, coalesce(ql.days_with_data, 0) AS days
          FROM tenants t
          JOIN incubators i ON i.id = t.incubator_id
          JOIN payout_runs r ON r.period = date_trunc('month', t.graduated_on)
                            AND r.status = 'approved'
          CROSS JOIN LATERAL api.policy_on(r.period) p
          LEFT JOIN payout_lines ql ON ql.period = r.period AND ql.incubator_id = t.incubator_id
         WHERE t.graduated_on < run_period
           AND NOT EXISTS (SELECT 1 FROM payout_graduates pg
                            WHERE pg.period = r.period AND pg.tenant_id = t.id
                              AND pg.graduated_on = t.graduated_on)
           AND NOT EXISTS (SELECT 1 FROM payout_adjustments a
                             JOIN payout_runs ar ON ar.period = a.period
                            WHERE ar.status = 'approved' AND a.kind = 'late_graduation'
                              AND a.tenant_id = t.id AND a.graduated_on = t.graduated_on)
    ), judged AS (
        SELECT c.*,
               CASE WHEN NOT c.tech THEN 'not_tech'
                    WHEN c.too_old THEN 'entry_age'
                    WHEN c.rewarded_before
                         OR row_number() OVER (PARTITION BY c.credit_code, c.tech AND NOT c.too_old
                                               ORDER BY c.graduated_on, c.incubator_code,
                                                        c.external_id) > 1
                    THEN 'already_rewarded' END AS graduate_reason
          FROM c
    ), payable AS (
        SELECT j.*,
               CASE WHEN j.graduate_reason IS NULL AND j.days > 0 AND NOT j.vetoed
                    THEN j.reward_per_graduate_fen
                         + CASE WHEN j.high_tech THEN j.high_tech_bonus_fen ELSE 0 END
                    ELSE 0 END AS base,
               greatest(0, j.annual_cap_fen - coalesce(
                   (SELECT y.fen FROM api.payout_paid_in_year(date_trunc('year', j.q)::date) y
                     WHERE y.incubator_id = j.incubator_id), 0)) AS cap
          FROM judged j
    ), filled AS (
        -- Filling the cap in order: what is paid up to each graduation is
        -- min(the bases up to it, the cap).
        SELECT pa.*,
               sum(pa.base) OVER (PARTITION BY pa.incubator_id, date_trunc('year', pa.q)
                                  ORDER BY pa.graduated_on, pa.external_id
                                  ROWS UNBOUNDED PRECEDING) AS upto
          FROM payable pa
    )
    SELECT f.incubator_id, f.tenant_id, f.graduated_on, f.q, f.external_id, f.credit_code,
           f.high_tech, f.graduate_reason IS NULL,
           (least(f.upto, f.cap) - least(f.upto - f.base, f.cap))::bigint,
           coalesce(f.graduate_reason,
                    CASE WHEN f.days = 0 THEN 'no_data'
                         WHEN f.vetoed THEN 'veto'
                         WHEN least(f.upto, f.cap) - least(f.upto - f.base, f.cap) < f.base
                         THEN 'cap' END)
      FROM filled f
$$;

/*
 * The clawbacks a run for run_period carries: for each revoked graduation
 * that an approved run paid and no approved run has recovered yet, minus what
 * was paid for it. A late graduation's payment is its adjustment. On a line,
 * what a graduate was paid for is what the line would have paid less without
 * it: revoked graduates are taken off the line one after another (those
 * already recovered first, then in the order of revocation), and each is
 * charged what its removal takes off min(base, cap).
 */
CREATE FUNCTION api.payout_clawbacks(run_period date)
RETURNS TABLE (incubator_id bigint, tenant_id bigint, graduated_on date, for_period date,
               external_id text, credit_code text, high_tech boolean, amount_fen bigint,
               reason text)
LANGUAGE sql STABLE AS $$
    WITH rv AS (
        SELECT DISTINCT ON (v.tenant_id, v.graduated_on) v.*
          FROM graduation_revocations v
         ORDER BY v.tenant_id, v.graduated_on, v.id DESC
    ), on_lines AS (
        SELECT pg.incubator_id, pg.tenant_id, pg.graduated_on, pg.period AS for_period,
               pg.external_id, pg.credit_code, pg.high_tech, rv.reason, rv.id AS rv_id,
               api.payout_clawed_back(pg.tenant_id, pg.graduated_on) AS done,
               l.amount_fen - l.adjustments_fen AS own, l.base_fen, l.cap_remaining_fen,
               pol.reward_per_graduate_fen
                 + CASE WHEN pg.high_tech THEN pol.high_tech_bonus_fen ELSE 0 END AS g_base
          FROM rv
          JOIN payout_graduates pg ON pg.tenant_id = rv.tenant_id
                                  AND pg.graduated_on = rv.graduated_on AND pg.eligible
          JOIN payout_runs r ON r.period = pg.period AND r.status = 'approved'
          JOIN payout_lines l ON l.period = pg.period AND l.incubator_id = pg.incubator_id
          JOIN policies pol ON pol.version = r.policy_version
         WHERE l.amount_fen - l.adjustments_fen > 0
    ), recovered AS (
        SELECT o.*,
               o.own - least(o.base_fen - sum(o.g_base) OVER w, o.cap_remaining_fen) AS upto
          FROM on_lines o
        WINDOW w AS (PARTITION BY o.for_period, o.incubator_id ORDER BY o.done DESC, o.rv_id
                     ROWS UNBOUNDED PRECEDING)
    ), charged AS (
        SELECT x.*,
               x.upto - coalesce(lag(x.upto) OVER (PARTITION BY x.for_period, x.incubator_id
                                                   ORDER BY x.done DESC, x.rv_id), 0) AS claw
          FROM recovered x
    )
    SELECT c.incubator_id, c.tenant_id, c.graduated_on, c.for_period, c.external_id,
           c.credit_code, c.high_tech, -c.claw, c.reason
      FROM charged c
     WHERE NOT c.done AND c.claw > 0
    UNION ALL
    SELECT a.incubator_id, a.tenant_id, a.graduated_on, a.for_period, a.external_id,
           a.credit_code, a.high_tech, -a.amount_fen, rv.reason
      FROM rv
      JOIN payout_adjustments a ON a.tenant_id = rv.tenant_id AND a.graduated_on = rv.graduated_on
                               AND a.kind = 'late_graduation' AND a.amount_fen > 0
      JOIN payout_runs r ON r.period = a.period AND r.status = 'approved'
     WHERE NOT api.payout_clawed_back(a.tenant_id, a.graduated_on)
$$;

-- Every adjustment of a run for run_period, for the incubators it has lines for.
CREATE FUNCTION api.payout_adjustments_of(run_period date)
RETURNS TABLE (incubator_id bigint, kind text, tenant_id bigint, graduated_on date,
               for_period date, external_id text, credit_code text, high_tech boolean,
               eligible boolean, amount_fen bigint, reason text)
LANGUAGE sql STABLE AS $$
    SELECT l.incubator_id, 'late_graduation', l.tenant_id, l.graduated_on, l.for_period,
           l.external_id, l.credit_code, l.high_tech, l.eligible, l.amount_fen, l.reason
      FROM api.payout_late_graduations(run_period) l
    UNION ALL
    SELECT c.incubator_id, 'clawback', c.tenant_id, c.graduated_on, c.for_period,
           c.external_id, c.credit_code, c.high_tech, false, c.amount_fen, c.reason
      FROM api.payout_clawbacks(run_period) c
$$;

/*
 * The graduates of a period and whether each earns a reward, with the first
 * reason that applies of not_tech, entry_age, already_rewarded. An enterprise
 * (credit code) is rewarded once, ever (api.payout_rewarded_codes): within one
 * run only its earliest graduation counts, a late graduation the run carries
 * included (ties: the lowest incubator code).
 */
CREATE FUNCTION api.payout_graduates_of(run_period date, p policies)
RETURNS TABLE (incubator_id bigint, tenant_id bigint, external_id text, credit_code text,
               graduated_on date, high_tech boolean, eligible boolean, reason text)
LANGUAGE sql STABLE AS $$
    WITH g AS (
        SELECT t.incubator_id, t.id AS tenant_id, t.external_id, t.credit_code, t.graduated_on,
               coalesce(t.high_tech_certified_on <= t.graduated_on, false) AS high_tech,
               api.is_tech(t.tech_certified_on, t.high_tech_certified_on, t.graduated_on) AS tech,
               t.admitted_on > (t.founded_on
                                + make_interval(months => p.entry_max_age_months))::date AS too_old,
               t.credit_code IN (SELECT rc.credit_code FROM api.payout_rewarded_codes() rc)
               OR t.credit_code IN (SELECT l.credit_code
                                      FROM api.payout_late_graduations(run_period) l
                                     WHERE l.eligible) AS rewarded_before,
               i.code AS incubator_code
          FROM tenants t JOIN incubators i ON i.id = t.incubator_id
         WHERE t.graduated_on BETWEEN run_period AND api.period_end(run_period)
    ), ranked AS (
        SELECT g.*,
               CASE WHEN g.tech AND NOT g.too_old
                    THEN row_number() OVER (PARTITION BY g.credit_code, g.tech AND NOT g.too_old
                                            ORDER BY g.graduated_on, g.incubator_code,
                                                     g.external_id) END AS nth
          FROM g
    )
    SELECT incubator_id, tenant_id, external_id, credit_code, graduated_on, high_tech,
           reason IS NULL, reason
      FROM (SELECT r.*,
                   CASE WHEN NOT r.tech THEN 'not_tech'
                        WHEN r.too_old THEN 'entry_age'
                        WHEN r.rewarded_before OR r.nth > 1 THEN 'already_rewarded' END AS reason
              FROM ranked r) x
$$;

/*
 * (Re)computes the lines of period's run, which must exist as a draft. The
 * caller has locked the run row. Late graduations take the cap of their
 * year before the line's own amount does.
 */
CREATE FUNCTION api.payout_compute(run_period date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p policies := api.policy_on(run_period);
    last_day date := api.period_end(run_period);
BEGIN
    DELETE FROM payout_lines WHERE period = run_period;

    INSERT INTO payout_lines (period, incubator_id, days_with_data, share_average, vetoed,
                              eligible_graduates, high_tech_graduates, base_fen,
                              cap_remaining_fen, adjustments_fen, amount_fen, reason)
    WITH shares AS (
        SELECT * FROM api.share_stats(run_period, last_day)
    ), graduates AS (
        SELECT * FROM api.payout_graduates_of(run_period, p)
    ), counts AS (
        SELECT g.incubator_id, count(*) FILTER (WHERE g.eligible) AS eligible,
               count(*) FILTER (WHERE g.eligible AND g.high_tech) AS high_tech
          FROM graduates g GROUP BY g.incubator_id
    ), adjustments AS (
        SELECT a.incubator_id, sum(a.amount_fen) AS fen,
               sum(a.amount_fen) FILTER (WHERE a.kind = 'late_graduation'
                                           AND date_trunc('year', a.for_period)
                                               = date_trunc('year', run_period)) AS late_this_year
          FROM api.payout_adjustments_of(run_period) a GROUP BY a.incubator_id
    ), lines AS (
        SELECT i.id AS incubator_id,
               coalesce(s.days_with_data, 0) AS days,
               s.average, s.average_below_threshold,
               coalesce(c.eligible, 0) AS eligible,
               coalesce(c.high_tech, 0) AS high_tech,
               coalesce(c.eligible, 0) * p.reward_per_graduate_fen
                 + coalesce(c.high_tech, 0) * p.high_tech_bonus_fen AS base,
               greatest(0, p.annual_cap_fen - coalesce(paid.fen, 0)
                           - coalesce(a.late_this_year, 0))::bigint AS cap_remaining,
               coalesce(a.fen, 0)::bigint AS adjustments
          FROM incubators i
          LEFT JOIN shares s ON s.incubator_id = i.id
          LEFT JOIN counts c ON c.incubator_id = i.id
          LEFT JOIN api.payout_paid_in_year(date_trunc('year', run_period)::date) paid
                 ON paid.incubator_id = i.id
          LEFT JOIN adjustments a ON a.incubator_id = i.id
         WHERE i.opened_on <= last_day
           -- An incubator closed before the period has no line in it, unless
           -- the line carries an adjustment for a month it was open in (money
           -- owed for a late graduation, or to recover).
           AND (i.closed_on IS NULL OR i.closed_on >= run_period OR a.incubator_id IS NOT NULL)
    ), decided AS (
        SELECT l.*,
               l.days = 0 OR l.average_below_threshold AS vetoed
          FROM lines l
    )
    SELECT run_period, d.incubator_id, d.days,
           d.average,
           d.vetoed, d.eligible, d.high_tech, d.base, d.cap_remaining, d.adjustments,
           CASE WHEN d.vetoed THEN 0 ELSE least(d.base, d.cap_remaining) END + d.adjustments,
           CASE WHEN d.days = 0 THEN 'no_data'
                WHEN d.vetoed THEN 'veto'
                WHEN d.base > d.cap_remaining THEN 'cap' END
      FROM decided d;

    INSERT INTO payout_adjustments (period, incubator_id, kind, tenant_id, graduated_on,
                                    for_period, external_id, credit_code, high_tech, amount_fen,
                                    reason)
    SELECT run_period, a.incubator_id, a.kind, a.tenant_id, a.graduated_on, a.for_period,
           a.external_id, a.credit_code, a.high_tech, a.amount_fen, a.reason
      FROM api.payout_adjustments_of(run_period) a
      JOIN payout_lines l ON l.period = run_period AND l.incubator_id = a.incubator_id;

    INSERT INTO payout_graduates (period, incubator_id, tenant_id, external_id, credit_code,
                                  graduated_on, high_tech, eligible, reason)
    SELECT run_period, g.incubator_id, g.tenant_id, g.external_id, g.credit_code,
           g.graduated_on, g.high_tech, g.eligible, g.reason
      FROM api.payout_graduates_of(run_period, p) g
      JOIN payout_lines l ON l.period = run_period AND l.incubator_id = g.incubator_id;

    UPDATE payout_runs SET total_fen = (SELECT coalesce(sum(amount_fen), 0) FROM payout_lines
                                         WHERE period = run_period),
                           policy_version = p.version
     WHERE period = run_period;
END;
$$;

-- Fen as yuan with two decimals: 14000000 -> 140000.00.
CREATE FUNCTION api.fen_as_cny(fen bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (fen::numeric / 100)::numeric(20, 2)::text
$$;

CREATE FUNCTION api.payout_line_json(l payout_lines) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'incubator', (SELECT code FROM incubators WHERE id = l.incubator_id),
        'share_average', api.ratio(l.share_average),
        'days_with_data', l.days_with_data,
        'vetoed', l.vetoed,
        'graduates', coalesce((SELECT json_agg(json_build_object(
                                   'external_id', g.external_id,
                                   'credit_code', g.credit_code,
                                   'graduated_on', g.graduated_on,
                                   'high_tech', g.high_tech,
                                   'eligible', g.eligible,
                                   'reason', g.reason) ORDER BY g.graduated_on, g.external_id)
                                 FROM payout_graduates g
                                WHERE g.period = l.period AND g.incubator_id = l.incubator_id),
                              '[]'),
        'eligible_graduates', l.eligible_graduates,
        'base_fen', l.base_fen,
        'cap_remaining_fen', l.cap_remaining_fen,
        'adjustments', coalesce((SELECT json_agg(json_build_object(
                                    'kind', a.kind,
                                    'for_period', api.period_text(a.for_period),
                                    'external_id', a.external_id,
                                    'credit_code', a.credit_code,
                                    'graduated_on', a.graduated_on,
                                    'high_tech', a.high_tech,
                                    'amount_fen', a.amount_fen,
                                    'reason', a.reason)
                                    ORDER BY a.kind DESC, a.graduated_on, a.external_id)
                                   FROM payout_adjustments a
                                  WHERE a.period = l.period AND a.incubator_id = l.incubator_id),
                                '[]'),
        'adjustments_fen', l.adjustments_fen,
        'amount_fen', l.amount_fen,
        'reason', l.reason)
$$;

CREATE FUNCTION api.payout_run_summary(r payout_runs) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'period', api.period_text(r.period),
        'status', r.status,
        'policy_version', r.policy_version,
        'computed_at', api.ts(r.computed_at),
        'computed_by', r.computed_by,
        'reviewed_at', api.ts(r.reviewed_at),
        'reviewed_by', r.reviewed_by,
        'review_note', r.review_note,
        'approved_at', api.ts(r.approved_at),
        'approved_by', r.approved_by,
        'total_fen', r.total_fen,
        'vetoed', (SELECT coalesce(json_agg(i.code ORDER BY i.code), '[]')
                     FROM payout_lines l JOIN incubators i ON i.id = l.incubator_id
                    WHERE l.period = r.period AND l.vetoed))
$$;

CREATE FUNCTION api.payout_run_json(r payout_runs) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT (api.payout_run_summary(r)::jsonb || jsonb_build_object('lines',
              (SELECT coalesce(jsonb_agg(api.payout_line_json(l)::jsonb ORDER BY i.code), '[]')
                 FROM payout_lines l JOIN incubators i ON i.id = l.incubator_id
                WHERE l.period = r.period)))::json
$$;

/*
 * The finance office's export: one row per incubator, amounts in CNY, then a
 * total row (incubator "total" / 合计). The adjustments also appear in exact
 * fen (adjustments_fen, the column API.md names) beside their yuan. lang "zh": the same columns headed
 * in Chinese, yes/no and codes in words.
 */
CREATE FUNCTION api.payout_run_csv(r payout_runs, lang text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT api.csv_header(lang,
               ARRAY['period', 'incubator', 'name', 'share_average', 'days_with_data', 'vetoed',
                     'eligible_graduates', 'base_cny', 'adjustments_cny', 'adjustments_fen',
                     'amount_cny', 'reason'],
               ARRAY['期间', '孵化器代码', '孵化器名称', '科技企业场地占比均值', '有数据天数',
                     '一票否决', '符合条件毕业企业数', '基础奖励（元）', '调整金额（元）',
                     '调整金额（分）', '奖励金额（元）', '原因'])
           || coalesce(string_agg(api.csv_record(ARRAY[
                  api.period_text(r.period), i.code, i.name, api.csv_ratio(l.share_average),
                  l.days_with_data::text, api.csv_bool(lang, l.vetoed),
                  l.eligible_graduates::text, api.fen_as_cny(l.base_fen),
                  api.fen_as_cny(l.adjustments_fen), l.adjustments_fen::text,
                  api.fen_as_cny(l.amount_fen),
                  api.csv_word(lang, l.reason)]), '' ORDER BY i.code), '')
           || api.csv_record(ARRAY[
                  api.period_text(r.period), api.csv_word(lang, 'total'), NULL, NULL, NULL,
                  (count(*) FILTER (WHERE l.vetoed))::text,
                  coalesce(sum(l.eligible_graduates), 0)::text,
                  api.fen_as_cny(coalesce(sum(l.base_fen), 0)::bigint),
                  api.fen_as_cny(coalesce(sum(l.adjustments_fen), 0)::bigint),
                  coalesce(sum(l.adjustments_fen), 0)::text,
                  api.fen_as_cny(coalesce(sum(l.amount_fen), 0)::bigint), NULL])
      FROM payout_lines l JOIN incubators i ON i.id = l.incubator_id
     WHERE l.period = r.period
$$;

/*
 * What a run pays for each graduate and adjustment: a line's own amount is
 * spread over its eligible graduates in the order of graduation (each gets
 * its base until the cap remaining runs out; nothing on a vetoed line), so
 * the rows of a line add up to its amount_fen.
 */
CREATE FUNCTION api.payout_run_items(run_period date)
RETURNS TABLE (incubator_id bigint, kind text, for_period date, tenant_id bigint,
               external_id text, credit_code text, graduated_on date, high_tech boolean,
               eligible boolean, reason text, amount_fen bigint)
LANGUAGE sql STABLE AS $$
    WITH g AS (
        SELECT pg.*, l.vetoed, l.cap_remaining_fen,
               CASE WHEN pg.eligible AND NOT l.vetoed
                    THEN p.reward_per_graduate_fen
                         + CASE WHEN pg.high_tech THEN p.high_tech_bonus_fen ELSE 0 END
                    ELSE 0 END AS base
          FROM payout_graduates pg
          JOIN payout_lines l ON l.period = pg.period AND l.incubator_id = pg.incubator_id
          JOIN payout_runs r ON r.period = pg.period
          JOIN policies p ON p.version = r.policy_version
         WHERE pg.period = run_period
    ), filled AS (
        SELECT g.*, sum(g.base) OVER (PARTITION BY g.incubator_id
                                      ORDER BY g.graduated_on, g.external_id
                                      ROWS UNBOUNDED PRECEDING) AS upto
          FROM g
    )
    SELECT f.incubator_id, 'graduate', f.period, f.tenant_id, f.external_id, f.credit_code,
           f.graduated_on, f.high_tech, f.eligible, f.reason,
           (least(f.upto, f.cap_remaining_fen) - least(f.upto - f.base, f.cap_remaining_fen))::bigint
      FROM filled f
    UNION ALL
    SELECT a.incubator_id, a.kind, a.for_period, a.tenant_id, a.external_id, a.credit_code,
           a.graduated_on, a.high_tech,
           a.kind = 'late_graduation'
             AND coalesce(a.reason, '') NOT IN ('not_tech', 'entry_age', 'already_rewarded'),
           a.reason, a.amount_fen
      FROM payout_adjustments a
     WHERE a.period = run_period
$$;

-- ?detail=graduates: one row per graduate and adjustment, then the total row.
CREATE FUNCTION api.payout_run_detail_csv(r payout_runs, lang text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT api.csv_header(lang,
               ARRAY['period', 'incubator', 'incubator_name', 'kind', 'for_period',
                     'external_id', 'name', 'credit_code', 'graduated_on', 'high_tech',
                     'eligible', 'reason', 'amount_cny'],
               ARRAY['期间', '孵化器代码', '孵化器名称', '类别', '所属期间', '企业编号',
                     '企业名称', '统一社会信用代码', '毕业日期', '高新技术企业', '符合条件',
                     '原因', '奖励金额（元）'])
           || coalesce(string_agg(api.csv_record(ARRAY[
                  api.period_text(r.period), i.code, i.name, api.csv_word(lang, x.kind),
                  api.period_text(x.for_period), x.external_id, t.name, x.credit_code,
                  x.graduated_on::text, api.csv_bool(lang, x.high_tech),
                  api.csv_bool(lang, x.eligible), api.csv_word(lang, x.reason),
                  api.fen_as_cny(x.amount_fen)]),
                  '' ORDER BY i.code, array_position(ARRAY['graduate', 'late_graduation',
                                                            'clawback'], x.kind),
                              x.graduated_on, x.external_id), '')
           || api.csv_record(ARRAY[
                  api.period_text(r.period), api.csv_word(lang, 'total'), NULL, NULL, NULL,
                  NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                  api.fen_as_cny(coalesce(sum(x.amount_fen), 0)::bigint)])
      FROM api.payout_run_items(r.period) x
      JOIN incubators i ON i.id = x.incubator_id
      JOIN tenants t ON t.id = x.tenant_id
$$;

-- The payout_run.computed event and its log lines.
CREATE FUNCTION api.payout_run_computed(ctx jsonb, r payout_runs) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    event_type text := CASE WHEN r.status = 'approved' THEN 'payout_run.approved'
                            ELSE 'payout_run.computed' END;
    summary json := api.payout_run_summary(r);
    lines json;
BEGIN
    SELECT coalesce(json_agg(json_build_object('level', 'warning', 'message', format(
               'payout run %s: incubator %s vetoed: %s', api.period_text(r.period), i.code,
               CASE WHEN l.reason = 'no_data' THEN 'no occupancy data in the period'
                    ELSE format('share average %s < veto threshold %s',
                                round(l.share_average, 4), p.veto_threshold) END))
                            ORDER BY i.code), '[]')
      INTO lines
      FROM payout_lines l JOIN incubators i ON i.id = l.incubator_id
      JOIN policies p ON p.version = r.policy_version
     WHERE l.period = r.period AND l.vetoed;
    -- An approval is its own event type (API.md 1.1): payout_run.approved.
    PERFORM api.emit(ctx, event_type,
                     json_build_object('period', summary->'period', 'status', summary->'status',
                                       'total_fen', summary->'total_fen',
                                       'vetoed', summary->'vetoed'),
                     'notice',
                     format('event=%s period=%s status=%s total_fen=%s '
                            'vetoed=%s policy_version=%s', event_type, api.period_text(r.period),
                            r.status, r.total_fen,
                            coalesce(nullif((SELECT string_agg(v, ',') FROM
                                              json_array_elements_text(summary->'vetoed') v),
                                            ''), 'none'),
                            r.policy_version));
    RETURN (json_build_array(json_build_object('level', 'notice', 'message', format(
               'payout run %s %s: %s incubators, total %s CNY, %s vetoed, policy version %s',
               api.period_text(r.period), r.status,
               (SELECT count(*) FROM payout_lines WHERE period = r.period),
               api.fen_as_cny(r.total_fen), json_array_length(summary->'vetoed'),
               r.policy_version)))::jsonb || lines::jsonb)::json;
END;
$$;

/*
 * Computes (or recomputes) the draft of a period; returns the run. who is the
 * token name of the action (or "schedule"); a recomputation clears the
 * review, which was of other figures.
 */
CREATE FUNCTION api.payout_draft(ctx jsonb, run_period date, who text) RETURNS payout_runs
LANGUAGE plpgsql AS $$
DECLARE
    r payout_runs;
BEGIN
    INSERT INTO payout_runs (period, status, policy_version, computed_at, computed_by, total_fen)
    VALUES (run_period, 'draft', (api.policy_on(run_period)).version, api.now(ctx), who, 0)
    ON CONFLICT (period) DO UPDATE
       SET computed_at = excluded.computed_at, computed_by = excluded.computed_by,
           reviewed_at = NULL, reviewed_by = NULL, review_note = NULL
     WHERE payout_runs.status = 'draft';
    PERFORM api.payout_compute(run_period);
    SELECT * INTO r FROM payout_runs WHERE period = run_period;
    RETURN r;
END;
$$;

-- No gaps, backwards: a month before an approved run is never computed nor
-- approved, or the cap and already_rewarded of later runs would be bypassed.
CREATE FUNCTION api.check_no_later_approval(run_period date) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    later date;
BEGIN
    SELECT max(period) INTO later FROM payout_runs WHERE status = 'approved' AND period > run_period;
    IF later IS NOT NULL THEN
        PERFORM api.fail(409, format(
            'payout run %s is approved: no run may be computed or approved for an earlier '
            'month (%s); money paid outside the history is entered as prior payouts',
            api.period_text(later), api.period_text(run_period)));
    END IF;
END;
$$;

-- No gaps, forwards: every month from the earliest run up to the one before
-- run_period has an approved run.
CREATE FUNCTION api.check_earlier_approved(run_period date) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(api.period_text(m::date), ', ' ORDER BY m) INTO missing
      FROM generate_series((SELECT min(period) FROM payout_runs), run_period - interval '1 month',
                           interval '1 month') m
     WHERE NOT EXISTS (SELECT 1 FROM payout_runs r WHERE r.period = m AND r.status = 'approved');
    IF missing IS NOT NULL THEN
        PERFORM api.fail(409, format('earlier months must be approved first, without gaps: %s',
                                     missing));
    END IF;
END;
$$;

-- 422 unless the period has ended (today is after its last day).
CREATE FUNCTION api.check_period_ended(ctx jsonb, run_period date) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF api.period_end(run_period) >= api.today(ctx) THEN
        PERFORM api.fail_field('period', format(
            'must be a month that has ended (%s ends on %s)', api.period_text(run_period),
            api.period_end(run_period)));
    END IF;
END;
$$;

-- POST /v1/payout-runs {"period"}: computes the draft now; 201, or 200 when it replaced one.
CREATE FUNCTION api.payout_run_create(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    run_period date := (args->>'period' || '-01')::date;
    old payout_runs;
    r payout_runs;
BEGIN
    PERFORM api.check_period_ended(ctx, run_period);
    SELECT * INTO old FROM payout_runs WHERE period = run_period FOR UPDATE;
    IF old.status = 'approved' THEN
        PERFORM api.fail(409, format('payout run %s is approved and final',
                                     api.period_text(run_period)));
    END IF;
    PERFORM api.check_no_later_approval(run_period);
    r := api.payout_draft(ctx, run_period, ctx->>'token_name');
    PERFORM api.payout_run_computed(ctx, r);
    PERFORM api.audit(ctx, NULL, format('%s payout run %s: total %s CNY',
                                        CASE WHEN old.period IS NULL THEN 'computed'
                                             ELSE 'recomputed' END,
                                        api.period_text(run_period), api.fen_as_cny(r.total_fen)),
                      jsonb_build_object('period', api.period_text(run_period),
                                         'total_fen', r.total_fen));
    RETURN api.ok(CASE WHEN old.period IS NULL THEN 201 ELSE 200 END, api.payout_run_json(r),
                  '/v1/payout-runs/' || api.period_text(run_period));
END;
$$;

-- GET /v1/payout-runs: newest period first, without lines.
CREATE FUNCTION api.payout_run_list(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    before date := api.cursor_period(args->>'cursor');
    result json;
BEGIN
    SELECT api.page(array_agg(api.payout_run_summary(r) ORDER BY r.period DESC),
                    array_agg(api.period_text(r.period) ORDER BY r.period DESC),
                    (args->>'limit')::int)
      INTO result
      FROM (SELECT * FROM payout_runs
             WHERE before IS NULL OR period < before
             ORDER BY period DESC LIMIT (args->>'limit')::int + 1) r;
    RETURN api.ok(200, result);
END;
$$;

-- GET /v1/payout-runs/{period} (JSON, or CSV with Accept: text/csv)
CREATE FUNCTION api.payout_run_get(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r payout_runs;
BEGIN
    SELECT * INTO r FROM payout_runs WHERE period = (args->>'period' || '-01')::date;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no payout run for %s', args->>'period'));
    END IF;
    -- payout-2026-10-approved.csv, payout-2026-10-draft-graduates.csv
    IF ctx->>'format' = 'csv' AND args->>'detail' = 'graduates' THEN
        RETURN api.ok(200, api.csv_reply(api.payout_run_detail_csv(r, api.csv_lang(ctx, args)),
                      format('payout-%s-%s-graduates.csv', api.period_text(r.period), r.status)));
    ELSIF ctx->>'format' = 'csv' THEN
        RETURN api.ok(200, api.csv_reply(api.payout_run_csv(r, api.csv_lang(ctx, args)),
                      format('payout-%s-%s.csv', api.period_text(r.period), r.status)));
    END IF;
    RETURN api.ok(200, api.payout_run_json(r));
END;
$$;

-- The run of a path's period, locked, or 404.
CREATE FUNCTION api.payout_run_for_update(period_text text) RETURNS payout_runs
LANGUAGE plpgsql AS $$
DECLARE
    r payout_runs;
BEGIN
    SELECT * INTO r FROM payout_runs WHERE period = (period_text || '-01')::date FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no payout run for %s', period_text));
    END IF;
    IF r.status = 'approved' THEN
        PERFORM api.fail(409, format('payout run %s is already approved (%s by %s)',
                                     period_text, api.ts(r.approved_at), r.approved_by));
    END IF;
    RETURN r;
END;
$$;

-- POST /v1/payout-runs/{period}/review {"note"}: the first of the four eyes.
CREATE FUNCTION api.payout_run_review(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    r payout_runs := api.payout_run_for_update(args->>'period');
BEGIN
    IF r.reviewed_by IS NOT NULL THEN
        PERFORM api.fail(409, format('payout run %s was already reviewed (%s by %s); a '
                                     'recomputation clears the review', args->>'period',
                                     api.ts(r.reviewed_at), r.reviewed_by));
    END IF;
    UPDATE payout_runs SET reviewed_at = api.now(ctx), reviewed_by = ctx->>'token_name',
                           review_note = args->>'note'
     WHERE period = r.period
    RETURNING * INTO r;
    PERFORM api.audit(ctx, NULL, format('reviewed payout run %s: total %s CNY',
                                        args->>'period', api.fen_as_cny(r.total_fen)),
                      jsonb_build_object('period', args->>'period', 'total_fen', r.total_fen,
                                         'note', args->>'note'));
    RETURN api.ok(200, api.payout_run_json(r));
END;
$$;

-- Each line's amount (and the policy version) of a period: what an approval compares.
CREATE FUNCTION api.payout_figures(run_period date) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'policy_version', (SELECT policy_version FROM payout_runs WHERE period = run_period),
        'lines', (SELECT coalesce(jsonb_object_agg(i.code, l.amount_fen), '{}')
                    FROM payout_lines l JOIN incubators i ON i.id = l.incubator_id
                   WHERE l.period = run_period))
$$;

-- What differs between two api.payout_figures, as problem errors.
CREATE FUNCTION api.payout_changes(was jsonb, now_ jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_agg(c ORDER BY c->>'field'), '[]')
      FROM (SELECT jsonb_build_object('field', 'policy_version', 'message',
                                      format('was %s, now %s', was->'policy_version',
                                             now_->'policy_version')) AS c
             WHERE was->'policy_version' IS DISTINCT FROM now_->'policy_version'
            UNION ALL
            SELECT jsonb_build_object('field', format('lines[%s].amount_fen',
                                                      coalesce(a.key, b.key)),
                                      'message', format('was %s, now %s',
                                          coalesce(api.fen_as_cny(a.value::text::bigint) || ' CNY',
                                                   'no line'),
                                          coalesce(api.fen_as_cny(b.value::text::bigint) || ' CNY',
                                                   'no line')))
              FROM jsonb_each(was->'lines') a FULL JOIN jsonb_each(now_->'lines') b
                ON a.key = b.key
             WHERE a.value IS DISTINCT FROM b.value) x
$$;

/*
 * POST /v1/payout-runs/{period}/approve: recomputes once more and freezes the
 * run if nothing changed. With four eyes (args.four_eyes, from [payouts]
 * four_eyes) it needs a review by another token name. When the recomputation
 * changes an amount, the approval is refused: the run keeps the new figures
 * as a draft computed by this action, without a review, and the answer lists
 * what changed. (That 409 is returned, not raised, so the new draft stays.)
 */
CREATE FUNCTION api.payout_run_approve(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    run_period date := (args->>'period' || '-01')::date;
    four_eyes boolean := coalesce((args->>'four_eyes')::boolean, true);
    r payout_runs;
    was jsonb;
    changes jsonb;
BEGIN
    -- Approvals take turns: the order of approved periods is what the cap and
    -- already_rewarded rest on.
    PERFORM pg_advisory_xact_lock(api.lock_key('payout approval'));
    r := api.payout_run_for_update(args->>'period');
    PERFORM api.check_no_later_approval(run_period);
    PERFORM api.check_earlier_approved(run_period);
    PERFORM api.check_period_ended(ctx, run_period);
    IF four_eyes AND r.reviewed_by IS NULL THEN
        PERFORM api.fail(409, format('payout run %s has not been reviewed: four eyes need a '
                                     'review (POST /v1/payout-runs/%s/review) by another admin '
                                     'token first', args->>'period', args->>'period'));
    END IF;
    IF four_eyes AND r.reviewed_by = ctx->>'token_name' THEN
        PERFORM api.fail(409, format('payout run %s was reviewed by %s: another admin token '
                                     'must approve it', args->>'period', r.reviewed_by));
    END IF;

    was := api.payout_figures(run_period);
    PERFORM api.payout_compute(run_period);
    changes := api.payout_changes(was, api.payout_figures(run_period));
    IF jsonb_array_length(changes) > 0 THEN
        UPDATE payout_runs SET computed_at = api.now(ctx), computed_by = ctx->>'token_name',
                               reviewed_at = NULL, reviewed_by = NULL, review_note = NULL
         WHERE period = run_period
        RETURNING * INTO r;
        PERFORM api.payout_run_computed(ctx, r);
        PERFORM api.audit(ctx, NULL, format('approval of payout run %s refused: %s figures '
                                            'changed on recomputation; it is a draft again, '
                                            'total %s CNY', args->>'period',
                                            jsonb_array_length(changes),
                                            api.fen_as_cny(r.total_fen)),
                          jsonb_build_object('period', args->>'period', 'changes', changes));
        RETURN ROW(409, json_build_object(
                   'detail', format('approval refused: recomputing payout run %s changed %s '
                                    'figures (total now %s CNY); it is a draft again and needs a '
                                    'new review', args->>'period', jsonb_array_length(changes),
                                    api.fen_as_cny(r.total_fen)),
                   'errors', changes), NULL::text, false)::api.reply;
    END IF;

    UPDATE payout_runs SET status = 'approved',
                           approved_at = api.now(ctx),
                           approved_by = ctx->>'token_name'
     WHERE period = run_period
    RETURNING * INTO r;
    PERFORM api.payout_run_computed(ctx, r);
    PERFORM api.audit(ctx, NULL, format('approved payout run %s: total %s CNY; history up to %s '
                                        'is frozen', api.period_text(run_period),
                                        api.fen_as_cny(r.total_fen), api.period_end(run_period)),
                      jsonb_build_object('period', api.period_text(run_period),
                                         'total_fen', r.total_fen));
    RETURN api.ok(200, api.payout_run_json(r));
END;
$$;

-- GET /v1/incubators/{code}/payouts: the incubator's lines of approved runs, newest first.
CREATE FUNCTION api.incubator_payouts(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    incubator bigint := api.incubator_id(args->>'code');
    before date := api.cursor_period(args->>'cursor');
    result json;
BEGIN
    SELECT api.page(array_agg(item ORDER BY period DESC),
                    array_agg(api.period_text(period) ORDER BY period DESC),
                    (args->>'limit')::int)
      INTO result
      FROM (SELECT l.period,
                   (jsonb_build_object('period', api.period_text(l.period),
                                       'policy_version', r.policy_version,
                                       'approved_at', api.ts(r.approved_at))
                    || api.payout_line_json(l)::jsonb)::json AS item
              FROM payout_lines l JOIN payout_runs r ON r.period = l.period
             WHERE l.incubator_id = incubator AND r.status = 'approved'
               AND (before IS NULL OR l.period < before)
             ORDER BY l.period DESC LIMIT (args->>'limit')::int + 1) x;
    RETURN api.ok(200, result);
END;
$$;

-- The scheduled monthly run: computes the draft of ctx.period unless a run
-- for it exists (a draft is never replaced by the schedule).
CREATE FUNCTION api.job_payout(ctx jsonb) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    run_period date := (ctx->>'period' || '-01')::date;
    r payout_runs;
BEGIN
    -- (A month before an approved run is never computed: no gaps.)
    IF EXISTS (SELECT 1 FROM payout_runs WHERE period >= run_period AND
                      (period = run_period OR status = 'approved')) THEN
        RETURN json_build_object('period', ctx->>'period', 'computed', false);
    END IF;
    -- A fresh installation has nothing to pay for months before its incubators.
    IF NOT EXISTS (SELECT 1 FROM incubators WHERE opened_on <= api.period_end(run_period)) THEN
        RETURN json_build_object('period', ctx->>'period', 'computed', false,
                                 'log', json_build_array(json_build_object('level', 'info',
                                     'message', format('payout run %s: no incubator was open '
                                                       'then; nothing to compute',
                                                       ctx->>'period'))));
    END IF;
    r := api.payout_draft(ctx, run_period, 'schedule');
    PERFORM api.audit(ctx, NULL, format('computed payout run %s on schedule: total %s CNY',
                                        ctx->>'period', api.fen_as_cny(r.total_fen)),
                      jsonb_build_object('period', ctx->>'period', 'total_fen', r.total_fen));
    RETURN json_build_object('period', ctx->>'period', 'computed', true,
                             'total_fen', r.total_fen,
                             'log', api.payout_run_computed(ctx, r));
END;
$$;

CREATE FUNCTION api.prior_payout_json(p prior_payouts) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', p.id,
        'incubator', (SELECT code FROM incubators WHERE id = p.incubator_id),
        'year', p.year,
        'amount_fen', p.amount_fen,
        'graduates', to_json(p.graduates),
        'note', p.note,
        'created_at', api.ts(p.created_at),
        'created_by', p.created_by)
$$;

/*
 * POST /v1/incubators/{code}/prior-payouts: rewards paid outside this system
 * (opening balances). They count against that year's cap and mark their
 * enterprises as rewarded, so they are frozen once a run of that year (or a
 * later one, which rests on them too) is approved.
 */
CREATE FUNCTION api.prior_payout_create(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    incubator bigint := api.incubator_writable(args->>'code');
    year integer := (args->>'year')::integer;
    approved date;
    p prior_payouts;
BEGIN
    -- Against an approval computing at the same time.
    PERFORM pg_advisory_xact_lock(api.lock_key('payout approval'));
    SELECT max(period) INTO approved FROM payout_runs
     WHERE status = 'approved' AND period >= make_date(year, 1, 1);
    IF approved IS NOT NULL THEN
        PERFORM api.fail(409, format('prior payouts of %s are frozen: payout run %s is approved',
                                     year, api.period_text(approved)));
    END IF;
    INSERT INTO prior_payouts (incubator_id, year, amount_fen, graduates, note, created_at,
                               created_by)
    VALUES (incubator, year, (args->>'amount_fen')::bigint,
            ARRAY(SELECT jsonb_array_elements_text(args->'graduates')), args->>'note',
            api.now(ctx), ctx->>'token_name')
    RETURNING * INTO p;
    PERFORM api.audit(ctx, incubator,
                      format('prior payout %s for %s: %s CNY, %s graduates', p.id, year,
                             api.fen_as_cny(p.amount_fen), cardinality(p.graduates)),
                      args - 'code');
    RETURN api.ok(201, api.prior_payout_json(p),
                  '/v1/incubators/' || (args->>'code') || '/prior-payouts');
END;
$$;

-- GET /v1/incubators/{code}/prior-payouts: in the order they were entered.
CREATE FUNCTION api.prior_payout_list(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    incubator bigint := api.incubator_id(args->>'code');
    after bigint := coalesce(api.cursor_id(args->>'cursor'), 0);
    result json;
BEGIN
    SELECT api.page(array_agg(api.prior_payout_json(p) ORDER BY p.id),
                    array_agg(p.id::text ORDER BY p.id), (args->>'limit')::int)
      INTO result
      FROM (SELECT * FROM prior_payouts
             WHERE incubator_id = incubator AND id > after
             ORDER BY id LIMIT (args->>'limit')::int + 1) p;
    RETURN api.ok(200, result);
END;
$$;
