-- Monthly reward payouts (后补助奖励) and the frozen history they create
-- (api.frozen_until, schema/functions/00_base.sql).
--
-- For each incubator and period P, with the policy version in force for P:
--   share_average = the mean of share(d) over the days of P with data;
--                   vetoed when it is below veto_threshold, or when no day has data;
--   eligible graduates = graduated in P, science/technology enterprise that
--                   day, entry age within entry_max_age_months, credit code
--                   never rewarded in an approved run (and, within the run,
--                   only its earliest graduation, ties to the lowest incubator code);
--   base_fen      = eligible × reward_per_graduate_fen
--                   + eligible high-tech × high_tech_bonus_fen;
--   amount_fen    = 0 if vetoed, else min(base_fen, what is left of
--                   annual_cap_fen after the approved runs of the same year).
-- Money is integer fen throughout; the share average and the veto come from
-- api.share_stats (schema/functions/40_metrics.sql), which compares exact
-- fractions, never rounded decimals.

/*
 * (Re)computes the lines of period's run, which must exist as a draft. The
 * caller has locked the run row.
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
                              cap_remaining_fen, amount_fen, reason)
    WITH shares AS (
        SELECT * FROM api.share_stats(run_period, last_day)
    ), graduates AS (
        SELECT * FROM api.payout_graduates_of(run_period, p)
    ), counts AS (
        SELECT g.incubator_id, count(*) FILTER (WHERE g.eligible) AS eligible,
               count(*) FILTER (WHERE g.eligible AND g.high_tech) AS high_tech
          FROM graduates g GROUP BY g.incubator_id
    ), paid AS (
        -- What the approved runs of the same calendar year already paid.
        SELECT l.incubator_id, sum(l.amount_fen) AS fen
          FROM payout_lines l JOIN payout_runs r ON r.period = l.period
         WHERE r.status = 'approved' AND r.period <> run_period
           AND date_trunc('year', r.period) = date_trunc('year', run_period)
         GROUP BY l.incubator_id
    ), lines AS (
        SELECT i.id AS incubator_id,
               coalesce(s.days_with_data, 0) AS days,
               s.average, s.average_below_threshold,
               coalesce(c.eligible, 0) AS eligible,
               coalesce(c.high_tech, 0) AS high_tech,
               coalesce(c.eligible, 0) * p.reward_per_graduate_fen
                 + coalesce(c.high_tech, 0) * p.high_tech_bonus_fen AS base,
               greatest(0, p.annual_cap_fen - coalesce(paid.fen, 0))::bigint AS cap_remaining
          FROM incubators i
          LEFT JOIN shares s ON s.incubator_id = i.id
          LEFT JOIN counts c ON c.incubator_id = i.id
          LEFT JOIN paid ON paid.incubator_id = i.id
         WHERE i.opened_on <= last_day
           -- An incubator closed before the period has no line in it.
           AND (i.closed_on IS NULL OR i.closed_on >= run_period)
    ), decided AS (
        SELECT l.*,
               l.days = 0 OR l.average_below_threshold AS vetoed
          FROM lines l
    )
    SELECT run_period, d.incubator_id, d.days,
           d.average,
           d.vetoed, d.eligible, d.high_tech, d.base, d.cap_remaining,
           CASE WHEN d.vetoed THEN 0 ELSE least(d.base, d.cap_remaining) END,
           CASE WHEN d.days = 0 THEN 'no_data'
                WHEN d.vetoed THEN 'veto'
                WHEN d.base > d.cap_remaining THEN 'cap' END
      FROM decided d;

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

/*
 * The graduates of a period and whether each earns a reward, with the first
 * reason that applies of not_tech, entry_age, already_rewarded. An enterprise
 * (credit code) is rewarded once, ever: a code already counted on a paid line
 * of an approved run is not again, and within one period only its earliest
 * graduation counts (ties: the lowest incubator code).
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
               EXISTS (SELECT 1
                         FROM payout_graduates pg
                         JOIN payout_runs r ON r.period = pg.period
                         JOIN payout_lines l ON l.period = pg.period
                                            AND l.incubator_id = pg.incubator_id
                        WHERE pg.credit_code = t.credit_code AND pg.eligible
                          AND r.status = 'approved' AND r.period <> run_period
                          AND l.amount_fen > 0) AS rewarded_before,
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

-- The finance office's export: one row per incubator, amounts in CNY.
CREATE FUNCTION api.payout_run_csv(r payout_runs) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT api.csv_record(ARRAY['period', 'incubator', 'name', 'share_average', 'days_with_data',
                                'vetoed', 'eligible_graduates', 'base_cny', 'amount_cny',
                                'reason'])
           || coalesce(string_agg(api.csv_record(ARRAY[
                  api.period_text(r.period), i.code, i.name, api.ratio(l.share_average)::text,
                  l.days_with_data::text, CASE WHEN l.vetoed THEN 'yes' ELSE 'no' END,
                  l.eligible_graduates::text, api.fen_as_cny(l.base_fen),
                  api.fen_as_cny(l.amount_fen), l.reason]), '' ORDER BY i.code), '')
      FROM payout_lines l JOIN incubators i ON i.id = l.incubator_id
     WHERE l.period = r.period
$$;

-- The payout_run.computed event and its log lines.
CREATE FUNCTION api.payout_run_computed(ctx jsonb, r payout_runs) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
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
    PERFORM api.emit(ctx, 'payout_run.computed',
                     json_build_object('period', summary->'period', 'status', summary->'status',
                                       'total_fen', summary->'total_fen',
                                       'vetoed', summary->'vetoed'),
                     'notice',
                     format('event=payout_run.computed period=%s status=%s total_fen=%s '
                            'vetoed=%s policy_version=%s', api.period_text(r.period), r.status,
                            r.total_fen,
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

-- Computes (or recomputes) the draft of a period; returns the run.
CREATE FUNCTION api.payout_draft(ctx jsonb, run_period date) RETURNS payout_runs
LANGUAGE plpgsql AS $$
DECLARE
    r payout_runs;
BEGIN
    INSERT INTO payout_runs (period, status, policy_version, computed_at, computed_by, total_fen)
    VALUES (run_period, 'draft', (api.policy_on(run_period)).version,
            api.now(ctx), ctx->>'token_name', 0)
    ON CONFLICT (period) DO UPDATE
       SET computed_at = excluded.computed_at, computed_by = excluded.computed_by
     WHERE payout_runs.status = 'draft';
    PERFORM api.payout_compute(run_period);
    SELECT * INTO r FROM payout_runs WHERE period = run_period;
    RETURN r;
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
    r := api.payout_draft(ctx, run_period);
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
    IF ctx->>'format' = 'csv' THEN
        RETURN api.ok(200, to_json(api.payout_run_csv(r)));
    END IF;
    RETURN api.ok(200, api.payout_run_json(r));
END;
$$;

-- POST /v1/payout-runs/{period}/approve: recomputes once more, then freezes.
CREATE FUNCTION api.payout_run_approve(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    run_period date := (args->>'period' || '-01')::date;
    r payout_runs;
    pending text;
BEGIN
    -- Approvals take turns: the order of approved periods is what the cap and
    -- already_rewarded rest on.
    PERFORM pg_advisory_xact_lock(api.lock_key('payout approval'));
    SELECT * INTO r FROM payout_runs WHERE period = run_period FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no payout run for %s', args->>'period'));
    END IF;
    IF r.status = 'approved' THEN
        PERFORM api.fail(409, format('payout run %s is already approved (%s by %s)',
                                     args->>'period', api.ts(r.approved_at), r.approved_by));
    END IF;
    SELECT string_agg(api.period_text(period), ', ' ORDER BY period) INTO pending
      FROM payout_runs WHERE period < run_period AND status = 'draft';
    IF pending IS NOT NULL THEN
        PERFORM api.fail(409, format('earlier payout runs must be approved first: %s', pending));
    END IF;
    PERFORM api.check_period_ended(ctx, run_period);

    r := api.payout_draft(ctx, run_period);
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
    IF EXISTS (SELECT 1 FROM payout_runs WHERE period = run_period) THEN
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
    r := api.payout_draft(ctx, run_period);
    PERFORM api.audit(ctx, NULL, format('computed payout run %s on schedule: total %s CNY',
                                        ctx->>'period', api.fen_as_cny(r.total_fen)),
                      jsonb_build_object('period', ctx->>'period', 'total_fen', r.total_fen));
    RETURN json_build_object('period', ctx->>'period', 'computed', true,
                             'total_fen', r.total_fen,
                             'log', api.payout_run_computed(ctx, r));
END;
$$;
