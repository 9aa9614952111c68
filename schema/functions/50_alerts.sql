-- Alerts: the rules, the lifecycle of an alert, the outbox of notifications
-- and the functions the daemon's notifier calls to deliver it.
--
-- Every write that can change a rule's outcome calls api.after_change(ctx,
-- incubators) in its own transaction, as its last step; the periodic sweep
-- (api.job_alert_sweep) evaluates every incubator for what time alone
-- changes (stale data, overdue tenants, certifications and snapshots dated
-- in the future) and sends the repeats. Both compare the rules' observations
-- with the open alerts and write each transition, and its outbox event, in
-- the caller's transaction: a notification exists exactly when its change
-- was committed.

-- ---- the rules ----

-- The rules themselves are the table alert_rules (schema/migrations/006_alert_rules.sql).

CREATE FUNCTION api.alert_severity(rule text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT r.severity FROM alert_rules r WHERE r.rule = alert_severity.rule
$$;

-- The syslog level of a firing or repeat notification: LOG_ALERT for a
-- critical alert, LOG_WARNING for a warning, LOG_NOTICE for information.
CREATE FUNCTION api.alert_syslog_level(severity text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE severity WHEN 'critical' THEN 'alert' WHEN 'warning' THEN 'warning'
                         ELSE 'notice' END
$$;

-- Every rule, the worst first.
CREATE FUNCTION api.alert_rules() RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(r.rule ORDER BY r.rank) FROM alert_rules r
$$;

-- The order in which one change's new alerts are written: the worst first.
CREATE FUNCTION api.alert_rule_rank(rule text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT r.rank FROM alert_rules r WHERE r.rule = alert_rule_rank.rule
$$;

-- A ratio as people read it: 0.4321 -> '43.21%' (rounded half up).
CREATE FUNCTION api.percent(x numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(round(x * 100, 2), 'FM999990.00') || '%'
$$;

-- One rule's outcome for one identity. Incubator-wide rules are observed for
-- every incubator in scope, firing or not (a resolution then says what the
-- figure is now); subject rules only where they fire.
CREATE TYPE api.alert_observation AS (
    rule          text,
    incubator_id  bigint,
    subject       text,
    firing        boolean,
    value         numeric,
    threshold     numeric,
    message       text
);

/*
 * The share rules' observations of one incubator whose share today is
 * `share` (NULL: no data), under policy p, for the rules listed: the breach
 * and the warning, firing or not, each with the figure, its threshold and
 * the message people read. Inlined where it is called.
 */
CREATE FUNCTION api.share_observations(incubator bigint, code text, share numeric, p policies,
                                       today date, rules text[])
RETURNS SETOF api.alert_observation LANGUAGE sql STABLE AS $$
    SELECT 'space_share_breach'::text, incubator, NULL::text,
           coalesce(share < p.veto_threshold, false), share, p.veto_threshold,
           CASE WHEN share IS NULL
                THEN format('%s 在 %s 没有场地数据', code, today)
                WHEN share < p.veto_threshold
                THEN format('%s 科技企业场地占比 %s，低于一票否决线 %s', code,
                            api.percent(share), api.percent(p.veto_threshold))
                ELSE format('%s 科技企业场地占比 %s，不低于一票否决线 %s',
                            code, api.percent(share), api.percent(p.veto_threshold)) END
     WHERE 'space_share_breach' = ANY (rules)
    UNION ALL
    SELECT 'space_share_warning', incubator, NULL,
           coalesce(share >= p.veto_threshold
                    AND share < p.veto_threshold + p.warning_margin, false),
           share, p.veto_threshold + p.warning_margin,
           CASE WHEN share IS NULL
                THEN format('%s 在 %s 没有场地数据', code, today)
                WHEN share < p.veto_threshold
                THEN format('%s 已由一票否决告警（space_share_breach）取代：科技企业场地占比 '
                            '%s，低于一票否决线 %s', code, api.percent(share),
                            api.percent(p.veto_threshold))
                WHEN share < p.veto_threshold + p.warning_margin
                THEN format('%s 科技企业场地占比 %s，低于预警线 %s（一票否决线 %s）', code,
                            api.percent(share), api.percent(p.veto_threshold + p.warning_margin),
                            api.percent(p.veto_threshold))
                ELSE format('%s 科技企业场地占比 %s，不低于预警线 %s', code,
                            api.percent(share), api.percent(p.veto_threshold + p.warning_margin))
                END
     WHERE 'space_share_warning' = ANY (rules)
$$;

/*
 * What the rules listed say on day `today` (at the moment `at`) for the
 * incubators in scope (both explicit lists), under the policy in force that
 * month; with subjects, the subject rules only for those subjects (credit
 * codes, external ids, token names), looked up by key, so that a write about
 * one tenant costs the same however many tenants its incubator has:
 *   space_share_breach    share(today) < veto_threshold
 *   space_share_warning   veto_threshold <= share(today) < veto_threshold + warning_margin
 *   stale_data            today - latest snapshot's as_of (without one, the later
 *                         of opened_on and registered_on) >= stale_after_days
 *   duplicate_enterprise  a credit code incubating here and at another incubator
 *   overdue_tenant        a tenant still incubating after its incubation_limit_on
 *   token_expiring        an incubator's token (subject: its name) that expires
 *                         within 14 days of `at`, or has expired, and was
 *                         neither revoked nor rotated
 * Comparisons use the exact shares; messages show them rounded to 4 decimals.
 * With shares, the share rules take today's share of the incubators they
 * list from those parts (one each, for today; the write that passes them
 * computed them, as an occupancy snapshot does) instead of from the tables,
 * so that they cost the same however many tenants the incubator has.
 */
CREATE FUNCTION api.alert_observations(scope bigint[], today date, rules text[],
                                       at timestamptz, subjects text[] DEFAULT NULL,
                                       shares api.share_parts[] DEFAULT NULL)
RETURNS SETOF api.alert_observation
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p policies := api.policy_on(today);
    part api.share_parts;
    code text;
    known bigint[] := '{}';
BEGIN
    -- A closed incubator raises no alert: with no observation, its open alerts resolve.
    scope := ARRAY(SELECT i.id FROM incubators i
                    WHERE i.id = ANY (scope) AND i.closed_on IS NULL ORDER BY i.id);
    -- PL/pgSQL keeps the plans of these queries across calls (a SQL function's
    -- are made afresh each time, which cost more than running them); the
    -- scope is an explicit list so that the plans can use the keys. One query
    -- per group of rules, so that a write asks only for the rules it can
    -- change and its plans stay small.
    IF rules && ARRAY['space_share_breach', 'space_share_warning'] THEN
        -- The parts given first, each by key: statements with scalar
        -- parameters keep one plan, where the query below, whose plan
        -- depends on the length of its lists, is planned anew on each call.
        FOREACH part IN ARRAY coalesce(shares, '{}') LOOP
            CONTINUE WHEN part.d IS DISTINCT FROM today OR NOT part.incubator_id = ANY (scope)
                          OR part.incubator_id = ANY (known);
            code := (SELECT i.code FROM incubators i WHERE i.id = part.incubator_id);
            -- api.space_share's share, from the parts (plain arguments, so
            -- that the function is inlined).
            RETURN QUERY
            SELECT * FROM api.share_observations(
                part.incubator_id, code,
                (part.tech_area_m2 + part.public_service_area_m2) / part.disposable_area_m2,
                p, today, rules);
            known := known || part.incubator_id;
        END LOOP;
        IF cardinality(known) < cardinality(scope) THEN
            RETURN QUERY
            SELECT o.*
              FROM incubators i CROSS JOIN LATERAL api.space_share(i.id, today) s
              CROSS JOIN LATERAL api.share_observations(i.id, i.code, s.share, p, today, rules) o
             WHERE i.id = ANY (scope) AND i.id <> ALL (known);
        END IF;
    END IF;

    IF 'stale_data' = ANY (rules) THEN
        RETURN QUERY
        SELECT 'stale_data'::text, i.id, NULL::text, l.age >= p.stale_after_days, l.age::numeric,
               p.stale_after_days::numeric,
               CASE WHEN l.as_of IS NULL AND i.registered_on > i.opened_on
                    THEN format('%s 自 %s 登记以来没有场地数据，至 %s 已 %s 天（超过 %s 天即为'
                                '数据未更新）', i.code, i.registered_on, today, l.age,
                                p.stale_after_days)
                    WHEN l.as_of IS NULL
                    THEN format('%s 自 %s 开业以来没有场地数据，至 %s 已 %s 天（超过 %s 天即为'
                                '数据未更新）', i.code, i.opened_on, today, l.age,
                                p.stale_after_days)
                    ELSE format('%s 最近一次场地数据为 %s，至 %s 已 %s 天（超过 %s 天即为数据'
                                '未更新）', i.code, l.as_of, today, l.age, p.stale_after_days)
                    END
          FROM incubators i
          CROSS JOIN LATERAL (SELECT max(s.as_of) AS as_of FROM snapshots s
                               WHERE s.incubator_id = i.id) m
          -- Registering an incubator that opened long ago starts its clock on
          -- the day of registration, not years back.
          CROSS JOIN LATERAL (SELECT m.as_of,
                                     today - coalesce(m.as_of, greatest(i.opened_on,
                                                                        i.registered_on)) AS age) l
         WHERE i.id = ANY (scope);
    END IF;

    IF 'duplicate_enterprise' = ANY (rules) THEN
        RETURN QUERY
        WITH duplicate AS (
            SELECT t.incubator_id, t.credit_code
              FROM tenants t
             WHERE t.status = 'incubating' AND t.incubator_id = ANY (scope)
               AND subjects IS NULL
               AND EXISTS (SELECT 1 FROM tenants o
                            WHERE o.credit_code = t.credit_code AND o.status = 'incubating'
                              AND o.incubator_id <> t.incubator_id)
             GROUP BY t.incubator_id, t.credit_code
            UNION
            -- The same for the given credit codes, through their index.
            SELECT t.incubator_id, t.credit_code
              FROM tenants t
             WHERE t.credit_code = ANY (subjects) AND t.status = 'incubating'
               AND t.incubator_id = ANY (scope)
               AND EXISTS (SELECT 1 FROM tenants o
                            WHERE o.credit_code = t.credit_code AND o.status = 'incubating'
                              AND o.incubator_id <> t.incubator_id)
        )
        SELECT 'duplicate_enterprise'::text, d.incubator_id, d.credit_code, true,
               c.n::numeric, NULL::numeric,
               format('统一社会信用代码 %s 同时在 %s 家孵化器在孵：%s',
                      d.credit_code, c.n, c.codes)
          FROM duplicate d
          CROSS JOIN LATERAL (
              SELECT count(DISTINCT o.incubator_id) AS n,
                     string_agg(DISTINCT i.code, ', ' ORDER BY i.code) AS codes
                FROM tenants o JOIN incubators i ON i.id = o.incubator_id
               WHERE o.credit_code = d.credit_code AND o.status = 'incubating') c;
    END IF;

    IF 'overdue_tenant' = ANY (rules) THEN
        RETURN QUERY
        WITH limits AS MATERIALIZED (
            -- The limit depends on the admission day and field only: computed once
            -- per pair (materialized, so that the comparison is not pushed into
            -- the scan). api.incubation_limit_on, set-based over the policy
            -- versions' spans.
            SELECT d.admitted_on, d.field,
                   (d.admitted_on + make_interval(months =>
                       CASE WHEN d.field = ANY (ps.extended_fields) THEN ps.extended_limit_months
                            ELSE ps.incubation_limit_months END))::date AS limit_on
              FROM (SELECT DISTINCT t.admitted_on, t.field FROM tenants t
                     WHERE t.status = 'incubating' AND t.incubator_id = ANY (scope)
                       AND (subjects IS NULL OR t.external_id = ANY (subjects))) d
              JOIN api.policy_spans ps ON ps.span @> d.admitted_on
        ), incubating AS (
            SELECT t.* FROM tenants t
             WHERE t.status = 'incubating' AND t.incubator_id = ANY (scope) AND subjects IS NULL
            UNION ALL
            -- The given tenants only, through (incubator_id, external_id).
            SELECT t.* FROM tenants t
             WHERE t.incubator_id = ANY (scope) AND t.external_id = ANY (subjects)
               AND t.status = 'incubating'
        )
        SELECT 'overdue_tenant'::text, t.incubator_id, t.external_id, true,
               (today - l.limit_on)::numeric, NULL::numeric,
               format('在孵企业 %s（%s）超过孵化期限 %s 仍在孵：%s 入孵，已超期 %s 天',
                      t.external_id, t.credit_code, l.limit_on, t.admitted_on,
                      today - l.limit_on)
          FROM incubating t
          JOIN limits l ON l.admitted_on = t.admitted_on AND l.field = t.field
         WHERE today > l.limit_on;
    END IF;

    IF 'token_expiring' = ANY (rules) THEN
        -- value: whole days left (0 once expired); one alert per token name.
        RETURN QUERY
        SELECT DISTINCT ON (t.incubator_id, t.name)
               'token_expiring'::text, t.incubator_id, t.name, true,
               greatest(ceil(extract(epoch FROM t.expires_at - at) / 86400), 0)::numeric,
               14::numeric,
               CASE WHEN t.expires_at > at
                    THEN format('%s 的访问令牌 %s“%s”将于 %s 到期，还剩 %s 天：请轮换'
                                '（POST /v1/tokens/%s/rotate）', i.code, t.id, t.name,
                                api.ts(t.expires_at),
                                ceil(extract(epoch FROM t.expires_at - at) / 86400), t.id)
                    ELSE format('%s 的访问令牌 %s“%s”已于 %s 到期：请轮换'
                                '（POST /v1/tokens/%s/rotate）', i.code, t.id, t.name,
                                api.ts(t.expires_at), t.id) END
          FROM tokens t JOIN incubators i ON i.id = t.incubator_id
         WHERE t.incubator_id = ANY (scope) AND t.revoked_at IS NULL AND t.replaced_by IS NULL
           AND t.expires_at <= at + interval '14 days'
           AND (subjects IS NULL OR t.name = ANY (subjects))
         ORDER BY t.incubator_id, t.name, t.expires_at;
    END IF;
END;
$$;

-- Why a subject rule's alert resolved: its condition is not observed any more.
CREATE FUNCTION api.alert_cleared_message(rule text, subject text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE rule
        WHEN 'duplicate_enterprise'
        THEN format('统一社会信用代码 %s 已不再同时在多家孵化器在孵', subject)
        WHEN 'overdue_tenant'
        THEN format('在孵企业 %s 已不再超期在孵', subject)
        WHEN 'token_expiring'
        THEN format('访问令牌“%s”已轮换或已吊销', subject)
        ELSE '告警条件已不再成立' END
$$;

-- ---- alerts as the API shows them ----

CREATE FUNCTION api.alert_is_share(rule text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT r.is_share FROM alert_rules r WHERE r.rule = alert_is_share.rule
$$;

-- The alert object of API.md, plus the acknowledgement's note, author and time.
CREATE FUNCTION api.alert_json(a alerts) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', a.id,
        'rule', a.rule,
        'severity', a.severity,
        'incubator', (SELECT code FROM incubators WHERE id = a.incubator_id),
        'subject', a.subject,
        'state', a.state,
        'acknowledged', a.acknowledged,
        'started_at', api.ts(a.started_at),
        'resolved_at', api.ts(a.resolved_at),
        'value', CASE WHEN api.alert_is_share(a.rule) THEN api.ratio(a.value)
                      ELSE api.num(a.value) END,
        'threshold', api.num(a.threshold),
        'message', a.message,
        'acknowledgement', CASE WHEN a.acknowledged THEN json_build_object(
                                    'note', a.ack_note, 'by', a.acknowledged_by,
                                    'at', api.ts(a.acknowledged_at)) END)
$$;

-- The syslog line of an alert event: key=value pairs, values without spaces.
CREATE FUNCTION api.alert_line(type text, a alerts) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('event=%s rule=%s incubator=%s', type, a.rule,
                  (SELECT code FROM incubators WHERE id = a.incubator_id))
        || coalesce(' subject=' || a.subject, '')
        || CASE WHEN api.alert_is_share(a.rule)
                THEN ' share=' || coalesce(round(a.value, 4)::text, 'none')
                     || ' threshold=' || round(a.threshold, 4)::text
                WHEN a.rule = 'stale_data'
                THEN ' days=' || a.value::text || ' threshold=' || a.threshold::text
                WHEN a.rule = 'duplicate_enterprise'
                THEN ' incubators=' || a.value::text
                WHEN a.rule = 'token_expiring'
                THEN ' days_left=' || a.value::text
                ELSE ' days_overdue=' || coalesce(a.value::text, 'none') END
        || ' alert_id=' || a.id
$$;

-- The event of one alert transition: alert.firing, alert.resolved or alert.repeat.
-- PL/pgSQL, so that the session keeps its plan: a SQL function's is made
-- afresh in every transaction, and the sweep opens alerts in thousands of
-- short ones (a batch of one incubator opening one alert cost twice one
-- opening none).
CREATE FUNCTION api.alert_emit(ctx jsonb, type text, a alerts) RETURNS uuid
LANGUAGE plpgsql AS $$
BEGIN
    RETURN api.emit(ctx, type, api.alert_json(a),
                    CASE WHEN type = 'alert.resolved' THEN 'notice'
                         ELSE api.alert_syslog_level(a.severity) END,
                    api.alert_line(type, a));
END;
$$;

-- ---- evaluation ----

/*
 * Serialises the evaluation of the incubators in scope: a write takes the
 * lock of each incubator it evaluates (in id order, so two writes never wait
 * on each other in a circle) under a shared global lock; the sweep, which
 * evaluates all of them, takes the global lock exclusively. Taken as the
 * last step of a write, it makes every evaluation see the data and the
 * alerts that every earlier evaluation of the same incubator left, so a
 * change is notified exactly once even when writes run concurrently.
 */
CREATE FUNCTION api.alerts_lock(scope bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    incubator bigint;
BEGIN
    IF scope IS NULL THEN
        PERFORM pg_advisory_xact_lock(api.lock_key('alerts'));
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(api.lock_key('alerts'));
    FOREACH incubator IN ARRAY scope LOOP
        PERFORM pg_advisory_xact_lock(api.lock_key('alerts', incubator::text));
    END LOOP;
END;
$$;

/*
 * Brings the alerts of the incubators in scope (NULL: all) in line with the
 * rules listed (NULL: all; alerts of other rules are left as they are) on
 * ctx's "today", at ctx's "now":
 *   - a rule firing without an open alert opens one: alert.firing;
 *   - an open alert whose rule no longer fires resolves: alert.resolved (a
 *     breach resolves the warning this way, as the two exclude each other);
 *   - an open alert whose rule still fires takes the current figures, quietly;
 *   - with repeats, an open, unacknowledged alert last notified repeat_hours
 *     (of the policy in force) or more ago is notified again: alert.repeat.
 * New alerts are notified before resolutions, so a receiver never sees an
 * incubator all clear between its warning and its breach. With subjects
 * (NULL: all), the alerts of subject rules are brought in line for those
 * subjects only: the others' outcome is what it was. With shares, the share
 * rules take today's share of the incubators listed there from those parts
 * (api.alert_observations). With ctx's "max_events" (the sweep's), at most
 * that many transitions are written, the openings first: an evaluation that
 * reaches it leaves the rest (resolutions and repeats included) for the
 * next one of the same incubators, and says "cut": true. Returns the counts.
 */
CREATE FUNCTION api.alerts_evaluate(ctx jsonb, scope bigint[], repeats boolean,
                                    rules text[] DEFAULT NULL, subjects text[] DEFAULT NULL,
                                    shares api.share_parts[] DEFAULT NULL)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    today date := api.today(ctx);
    at timestamptz := api.now(ctx);
    obs api.alert_observation[];
    opening boolean;
    resolving boolean;
    a alerts;
    fired integer := 0;
    resolved integer := 0;
    repeated integer := 0;
    max_events integer := (ctx->>'max_events')::integer;
BEGIN
    IF scope IS NOT NULL THEN
        scope := ARRAY(SELECT DISTINCT x FROM unnest(scope) x WHERE x IS NOT NULL ORDER BY x);
    END IF;
    PERFORM api.alerts_lock(scope);
    -- From here on explicit lists, which the statements' plans look up by key.
    scope := coalesce(scope, ARRAY(SELECT id FROM incubators ORDER BY id));
    rules := coalesce(rules, api.alert_rules());
    obs := ARRAY(SELECT o FROM api.alert_observations(scope, today, rules, at, subjects,
                                                       shares) o);

    -- Whether any alert opens or resolves. Most evaluations change neither,
    -- and the statements that do cost more to plan than to run. (The locks
    -- above keep every other evaluation of these incubators out meanwhile.)
    -- The joins with the observations compare subjects as coalesce(subject,
    -- '') (a subject is never empty) so that they hash on all three keys: an
    -- incubator with many open subject alerts would otherwise compare each
    -- with each. Only the incubators in scope are read, through their key.
    SELECT coalesce(bool_or(x.id IS NULL AND o.firing), false),
           coalesce(bool_or(x.id IS NOT NULL AND NOT coalesce(o.firing, false)), false)
      INTO opening, resolving
      FROM (SELECT f.id, f.rule, f.incubator_id, f.subject FROM alerts f
             WHERE f.state = 'firing' AND f.incubator_id = ANY (scope)
               AND f.rule = ANY (rules)
               AND (subjects IS NULL OR f.subject IS NULL OR f.subject = ANY (subjects))) x
      FULL JOIN unnest(obs) o
        ON o.rule = x.rule AND o.incubator_id = x.incubator_id
       AND coalesce(o.subject, '') = coalesce(x.subject, '');

    IF opening THEN
        FOR a IN
            WITH new AS (
                INSERT INTO alerts (rule, incubator_id, subject, severity, state, value, threshold,
                                    message, started_at, last_notified_at)
                SELECT o.rule, o.incubator_id, o.subject, api.alert_severity(o.rule), 'firing',
                       o.value, o.threshold, o.message, at, at
                  FROM unnest(obs) o
                 WHERE o.firing
                   AND NOT EXISTS (SELECT 1 FROM alerts x
                                    WHERE x.state = 'firing' AND x.rule = o.rule
                                      AND x.incubator_id = o.incubator_id
                                      AND x.subject IS NOT DISTINCT FROM o.subject)
                 ORDER BY o.incubator_id, api.alert_rule_rank(o.rule), o.subject
                 LIMIT max_events
                ON CONFLICT (rule, incubator_id, subject) WHERE state = 'firing' DO NOTHING
                RETURNING *)
            SELECT * FROM new ORDER BY id
        LOOP
            PERFORM api.alert_emit(ctx, 'alert.firing', a);
            fired := fired + 1;
        END LOOP;
        -- Cut: the rest opens first, the next time (new alerts before resolutions).
        IF fired >= max_events THEN
            RETURN json_build_object('fired', fired, 'resolved', 0, 'repeated', 0, 'cut', true);
        END IF;
    END IF;

    IF resolving THEN
        FOR a IN
            WITH cleared AS (
                SELECT x.id, o.value, o.threshold, o.message
                  FROM alerts x
                  LEFT JOIN unnest(obs) o ON o.rule = x.rule AND o.incubator_id = x.incubator_id
                                         AND coalesce(o.subject, '') = coalesce(x.subject, '')
                 WHERE x.state = 'firing' AND x.incubator_id = ANY (scope) AND x.rule = ANY (rules)
                   AND (subjects IS NULL OR x.subject IS NULL OR x.subject = ANY (subjects))
                   AND NOT coalesce(o.firing, false)
                 ORDER BY x.id
                 LIMIT max_events - fired
            ), done AS (
                UPDATE alerts x
                   SET state = 'resolved', resolved_at = at,
                       value = coalesce(c.value, x.value),
                       threshold = coalesce(c.threshold, x.threshold),
                       message = coalesce(c.message, api.alert_cleared_message(x.rule, x.subject))
                  FROM cleared c
                 WHERE x.id = c.id AND x.state = 'firing'
                RETURNING x.*)
            SELECT * FROM done ORDER BY id
        LOOP
            PERFORM api.alert_emit(ctx, 'alert.resolved', a);
            resolved := resolved + 1;
        END LOOP;
    END IF;
    IF fired + resolved >= max_events THEN
        repeats := false;
    END IF;

    -- Open alerts that still fire take the current figures. The rules
    -- evaluated are named (o.rule is one of them anyway) so that the alerts
    -- are found by alerts_open_key: a snapshot, which evaluates three
    -- incubator-wide rules, reads none of its incubator's many tenant alerts.
    UPDATE alerts x SET value = o.value, threshold = o.threshold, message = o.message
      FROM unnest(obs) o
     WHERE o.firing AND x.state = 'firing' AND x.incubator_id = ANY (scope)
       AND x.rule = ANY (rules) AND x.rule = o.rule
       AND x.incubator_id = o.incubator_id AND coalesce(x.subject, '') = coalesce(o.subject, '')
       AND (x.value, x.threshold, x.message) IS DISTINCT FROM (o.value, o.threshold, o.message);

    IF repeats THEN
        FOR a IN
            WITH again AS (
                UPDATE alerts x SET last_notified_at = at
                  FROM (SELECT d.id FROM alerts d, api.policy_on(today) p
                         WHERE d.state = 'firing' AND NOT d.acknowledged
                           AND d.incubator_id = ANY (scope) AND d.rule = ANY (rules)
                           AND d.last_notified_at + make_interval(hours => p.repeat_hours) <= at
                         ORDER BY d.id
                         LIMIT max_events - fired - resolved) due
                 WHERE x.id = due.id
                RETURNING x.*)
            SELECT * FROM again ORDER BY id
        LOOP
            PERFORM api.alert_emit(ctx, 'alert.repeat', a);
            repeated := repeated + 1;
        END LOOP;
    END IF;

    IF fired + resolved + repeated >= max_events THEN
        RETURN json_build_object('fired', fired, 'resolved', resolved, 'repeated', repeated,
                                 'cut', true);
    END IF;
    RETURN json_build_object('fired', fired, 'resolved', resolved, 'repeated', repeated);
END;
$$;

-- Called by every write that can change a rule's outcome, as its last step, in
-- the write's transaction, with the incubators it may have affected (NULL:
-- all of them, e.g. for a policy change), the rules it can change (NULL:
-- all of them; an occupancy snapshot changes only the space share and stale
-- data rules) and the subjects whose subject rules it can change (NULL: all;
-- a tenant's write, its credit codes and external id). With shares, the
-- parts of today's share that the write computed (an occupancy snapshot's
-- sums), which the share rules then take instead of reading the tables.
-- Call it once per transaction.
CREATE FUNCTION api.after_change(ctx jsonb, incubators bigint[], rules text[] DEFAULT NULL,
                                 subjects text[] DEFAULT NULL,
                                 shares api.share_parts[] DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    SELECT api.alerts_evaluate(ctx, incubators, false, rules, subjects, shares)
$$;

/*
 * The periodic sweep (schedule.alert_sweep_seconds): every rule, on the
 * daemon's today, and the repeats on its now, for one batch of incubators:
 * the ctx.batch (default 100) with the smallest ids after ctx.after (default
 * none). Each batch is a transaction of its own that locks only its own
 * incubators, so a write waits at most one batch for the sweep, never the
 * whole sweep; the scheduler calls it again with "after" set to the "next"
 * it returns until it returns none (api.run_job_batches). A batch writes at
 * most ctx.max_events (default 10) transitions, so that it stays short
 * however many alerts its incubators open (a new city's first sweep: a
 * batch grown to 16 incubators over quiet ones opened 35 alerts in 149 ms
 * on a loaded machine, each alert some milliseconds): a batch cut there
 * returns the same "after" as "next", and "cut": 1, and the next batch goes
 * on from where the cut one stopped. Returns the counts and "next".
 */
CREATE FUNCTION api.job_alert_sweep(ctx jsonb) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    size integer := coalesce((ctx->>'batch')::integer, 100);
    after bigint := coalesce((ctx->>'after')::bigint, 0);
    batch bigint[] := ARRAY(SELECT i.id FROM incubators i WHERE i.id > after
                             ORDER BY i.id LIMIT size);
    max_events integer := greatest(coalesce((ctx->>'max_events')::integer, 10), 1);
    counts jsonb;
BEGIN
    IF cardinality(batch) = 0 THEN
        RETURN json_build_object('fired', 0, 'resolved', 0, 'repeated', 0);
    END IF;
    -- The session's plans, kept: with custom plans (PostgreSQL's choice for
    -- these statements) every batch planned its statements afresh, which
    -- cost more than evaluating a batch of a few incubators. This batch's
    -- transaction only: a write's evaluation keeps its own choice.
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    counts := api.alerts_evaluate(ctx || jsonb_build_object('max_events', max_events), batch,
                                  true)::jsonb;
    IF counts ? 'cut' THEN
        RETURN (counts || jsonb_build_object('next', after, 'cut', 1))::json;
    END IF;
    IF cardinality(batch) = size THEN
        counts := counts || jsonb_build_object('next', batch[size]);
    END IF;
    RETURN counts::json;
END;
$$;

-- ---- the API ----

-- GET /v1/alerts[?state=firing|resolved|all][&incubator=][&rule=]: newest
-- first. An incubator's token sees that incubator's alerts only.
CREATE FUNCTION api.alert_list(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    incubator bigint;
    wanted text := coalesce(args->>'state', 'firing');
    before bigint := api.cursor_id(args->>'cursor');
    result json;
BEGIN
    IF NOT coalesce((ctx->>'admin')::boolean, false) THEN
        IF args->>'incubator' IS NOT NULL AND args->>'incubator' <> ctx->>'incubator' THEN
            PERFORM api.fail(403, 'this token may only read its own incubator''s alerts');
        END IF;
        incubator := api.incubator_id(ctx->>'incubator');
    ELSIF args->>'incubator' IS NOT NULL THEN
        incubator := api.incubator_id(args->>'incubator');
    END IF;
    IF ctx->>'format' = 'csv' THEN
        -- For a spreadsheet: every alert that matches (from the cursor on), unpaged,
        -- times in the bureau's zone with its offset.
        SELECT api.csv_reply(
                   api.csv_header(api.csv_lang(ctx, args),
                       ARRAY['id', 'rule', 'severity', 'incubator', 'name', 'subject', 'state',
                             'acknowledged', 'started_at', 'resolved_at', 'value', 'threshold',
                             'message'],
                       ARRAY['编号', '规则', '级别', '孵化器代码', '孵化器名称', '对象', '状态',
                             '已确认', '开始时间', '解除时间', '数值', '阈值', '说明'])
                   || coalesce(string_agg(api.csv_record(ARRAY[
                          a.id::text, api.csv_word(api.csv_lang(ctx, args), a.rule),
                          api.csv_word(api.csv_lang(ctx, args), a.severity), i.code, i.name,
                          a.subject, api.csv_word(api.csv_lang(ctx, args), a.state),
                          api.csv_bool(api.csv_lang(ctx, args), a.acknowledged),
                          api.csv_time(ctx, a.started_at), api.csv_time(ctx, a.resolved_at),
                          CASE WHEN api.alert_is_share(a.rule) THEN api.csv_ratio(a.value)
                               ELSE api.num(a.value)::text END,
                          CASE WHEN api.alert_is_share(a.rule) THEN api.csv_ratio(a.threshold)
                               ELSE api.num(a.threshold)::text END,
                          a.message]), '' ORDER BY a.id DESC), ''),
                   format('alerts-%s-%s.csv', wanted, api.today(ctx)))
          INTO result
          FROM alerts a LEFT JOIN incubators i ON i.id = a.incubator_id
         WHERE (incubator IS NULL OR a.incubator_id = incubator)
           AND (wanted = 'all' OR a.state = wanted)
           AND (args->>'rule' IS NULL OR a.rule = args->>'rule')
           AND (before IS NULL OR a.id < before);
        RETURN api.ok(200, result);
    END IF;
    SELECT api.page(array_agg(api.alert_json(a) ORDER BY a.id DESC),
                    array_agg(a.id::text ORDER BY a.id DESC), (args->>'limit')::int)
      INTO result
      FROM (SELECT * FROM alerts x
             WHERE (incubator IS NULL OR x.incubator_id = incubator)
               AND (wanted = 'all' OR x.state = wanted)
               AND (args->>'rule' IS NULL OR x.rule = args->>'rule')
               AND (before IS NULL OR x.id < before)
             ORDER BY x.id DESC
             LIMIT (args->>'limit')::int + 1) a;
    RETURN api.ok(200, result);
END;
$$;

-- POST /v1/alerts/{id}/ack {"note"}: stops the repeats of a firing alert; its
-- resolution is still notified. Acknowledging it again changes nothing.
CREATE FUNCTION api.alert_ack(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    a alerts;
BEGIN
    SELECT * INTO a FROM alerts WHERE id = (args->>'id')::bigint FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no alert %s', args->>'id'));
    END IF;
    IF a.state = 'resolved' THEN
        PERFORM api.fail(409, format('alert %s resolved at %s: there is nothing to acknowledge',
                                     a.id, api.ts(a.resolved_at)));
    END IF;
    IF a.acknowledged THEN
        RETURN api.ok(200, api.alert_json(a));
    END IF;
    UPDATE alerts SET acknowledged = true, ack_note = args->>'note',
                      acknowledged_by = ctx->>'token_name', acknowledged_at = api.now(ctx)
     WHERE id = a.id
    RETURNING * INTO a;
    PERFORM api.audit(ctx, a.incubator_id,
                      format('acknowledged alert %s (%s%s)', a.id, a.rule,
                             coalesce(' ' || a.subject, '')),
                      jsonb_build_object('alert_id', a.id, 'note', args->>'note'));
    RETURN api.ok(200, api.alert_json(a));
END;
$$;

-- The figures /metrics shows, refreshed by the daemon now and then.
CREATE FUNCTION api.alert_metrics() RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'alerts_open', (
            SELECT json_object_agg(r.rule, coalesce(c.n, 0))
              FROM alert_rules r
              LEFT JOIN (SELECT a.rule, count(*) AS n FROM alerts a
                          WHERE a.state = 'firing' GROUP BY a.rule) c ON c.rule = r.rule),
        'outbox', api.outbox_metrics())
$$;
