-- The versioned policy: which version is in force for a month, and reading it.

-- The policy in force for the month that contains day d: the latest
-- effective_from on or before that month, the newest version among equals.
-- (PL/pgSQL: its plan is kept per session, where a SQL function returning a
-- row is planned again on every call.)
CREATE FUNCTION api.policy_on(d date) RETURNS policies
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p policies;
BEGIN
    SELECT * INTO p FROM policies
     WHERE effective_from <= date_trunc('month', d)::date
     ORDER BY effective_from DESC, version DESC
     LIMIT 1;
    RETURN p;
END;
$$;

CREATE FUNCTION api.policy_json(p policies) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'version', p.version,
        'effective_from', to_char(p.effective_from, 'YYYY-MM'),
        'veto_threshold', api.num(p.veto_threshold),
        'warning_margin', api.num(p.warning_margin),
        'reward_per_graduate_fen', p.reward_per_graduate_fen,
        'high_tech_bonus_fen', p.high_tech_bonus_fen,
        'annual_cap_fen', p.annual_cap_fen,
        'incubation_limit_months', p.incubation_limit_months,
        'extended_limit_months', p.extended_limit_months,
        'extended_fields', to_json(p.extended_fields),
        'entry_max_age_months', p.entry_max_age_months,
        'graduation_investment_min_fen', p.graduation_investment_min_fen,
        'graduation_revenue_2y_min_fen', p.graduation_revenue_2y_min_fen,
        'stale_after_days', p.stale_after_days,
        'repeat_hours', p.repeat_hours,
        'plan', p.plan,
        'created_at', api.ts(p.created_at),
        'created_by', p.created_by)
$$;

-- GET /v1/policy[?period=YYYY-MM]: the version in force for that month (default: this one).
CREATE FUNCTION api.policy_get(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE sql STABLE AS $$
    SELECT api.ok(200, api.policy_json(api.policy_on(
        coalesce((args->>'period' || '-01')::date, api.today(ctx)))))
$$;

-- POST /v1/policy: a new version, effective from a month after every approved one.
CREATE FUNCTION api.policy_create(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    effective date := (args->>'effective_from' || '-01')::date;
    frozen date := api.frozen_until();
    p policies;
BEGIN
    -- Versions take turns, so version numbers are dense.
    LOCK TABLE policies IN SHARE ROW EXCLUSIVE MODE;
    IF frozen IS NOT NULL AND effective <= frozen THEN
        PERFORM api.fail(409, format(
            'effective_from %s is on or before %s, an approved payout period: a policy may '
            'only change months that have not been paid', args->>'effective_from',
            api.period_text(date_trunc('month', frozen)::date)));
    END IF;
    INSERT INTO policies (version, effective_from, veto_threshold, warning_margin,
                          reward_per_graduate_fen, high_tech_bonus_fen, annual_cap_fen,
                          incubation_limit_months, extended_limit_months, extended_fields,
                          entry_max_age_months, graduation_investment_min_fen,
                          graduation_revenue_2y_min_fen, stale_after_days, repeat_hours, plan,
                          created_by)
    SELECT (SELECT max(version) + 1 FROM policies), effective,
           (args->>'veto_threshold')::numeric, (args->>'warning_margin')::numeric,
           (args->>'reward_per_graduate_fen')::bigint, (args->>'high_tech_bonus_fen')::bigint,
           (args->>'annual_cap_fen')::bigint, (args->>'incubation_limit_months')::integer,
           (args->>'extended_limit_months')::integer,
           ARRAY(SELECT jsonb_array_elements_text(args->'extended_fields')),
           (args->>'entry_max_age_months')::integer,
           (args->>'graduation_investment_min_fen')::bigint,
           (args->>'graduation_revenue_2y_min_fen')::bigint,
           (args->>'stale_after_days')::integer, (args->>'repeat_hours')::integer,
           args->'plan', ctx->>'token_name'
    RETURNING * INTO p;
    PERFORM api.audit(ctx, NULL, format('policy version %s, effective from %s', p.version,
                                        args->>'effective_from'), args);
    -- Thresholds in force today may have changed: every incubator's alerts.
    IF effective <= api.today(ctx) THEN
        PERFORM api.after_change(ctx, NULL); -- NULL: every incubator
    END IF;
    RETURN api.ok(201, api.policy_json(p), '/v1/policy?period=' || (args->>'effective_from'));
END;
$$;
