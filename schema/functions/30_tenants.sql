-- Tenants: their profile (PUT), reading, graduation and exit.

-- Whether a tenant is a science/technology enterprise on day d: certified as
-- one, or as a national high-tech enterprise (which is one a fortiori).
CREATE FUNCTION api.is_tech(tech_certified_on date, high_tech_certified_on date, d date)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(tech_certified_on <= d, false) OR coalesce(high_tech_certified_on <= d, false)
$$;

-- The incubation limit of a tenant: admission + the limit in months of the
-- policy in force when it was admitted (the extended limit for its fields).
CREATE FUNCTION api.incubation_limit_on(admitted_on date, field text) RETURNS date
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p policies := api.policy_on(admitted_on);
BEGIN
    RETURN (admitted_on + make_interval(months =>
               CASE WHEN field = ANY (p.extended_fields) THEN p.extended_limit_months
                    ELSE p.incubation_limit_months END))::date;
END;
$$;

-- The warnings of API.md for a set of stored tenants, set-based: the
-- policy of each month of admission is read once, not once per tenant, so a
-- bulk sync of 5,000 tenants pays for a handful of policy lookups. Computed
-- when read, so they are always those of today. Tenants without a warning
-- have no row.
CREATE FUNCTION api.tenants_warnings(ids bigint[], today date)
RETURNS TABLE (tenant_id bigint, warnings json)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    WITH t AS (
        SELECT x.*, date_trunc('month', x.admitted_on)::date AS month
          FROM tenants x WHERE x.id = ANY (ids)
    ), pol AS (
        SELECT m.month, p.entry_max_age_months, p.incubation_limit_months,
               p.extended_limit_months, p.extended_fields
          FROM (SELECT DISTINCT t.month FROM t) m CROSS JOIN LATERAL api.policy_on(m.month) p
    ), w AS (
        SELECT t.id, 'entry_age' AS code,
               format('founded %s, more than %s months before admission on %s',
                      t.founded_on, p.entry_max_age_months, t.admitted_on) AS message
          FROM t JOIN pol p ON p.month = t.month
         WHERE t.admitted_on > (t.founded_on + make_interval(months => p.entry_max_age_months))::date
        UNION ALL
        SELECT t.id, 'duplicate_enterprise',
               format('credit code %s is also incubating at %s', t.credit_code,
                      string_agg(i.code, ', ' ORDER BY i.code))
          FROM t JOIN tenants o ON o.credit_code = t.credit_code AND o.status = 'incubating'
                               AND o.incubator_id <> t.incubator_id
          JOIN incubators i ON i.id = o.incubator_id
         WHERE t.status = 'incubating'
         GROUP BY t.id, t.credit_code
        UNION ALL
        SELECT t.id, 'overdue', format('still incubating after its incubation limit %s', l.day)
          FROM t JOIN pol p ON p.month = t.month
         CROSS JOIN LATERAL (
               SELECT (t.admitted_on + make_interval(months =>
                          CASE WHEN t.field = ANY (p.extended_fields) THEN p.extended_limit_months
                               ELSE p.incubation_limit_months END))::date AS day) l
         WHERE t.status = 'incubating' AND today > l.day
    )
    SELECT w.id, json_agg(json_build_object('code', w.code, 'message', w.message)
                          ORDER BY w.code)
      FROM w GROUP BY w.id;
END;
$$;

-- The warnings of one stored tenant (an empty list when it has none).
CREATE FUNCTION api.tenant_warnings(t tenants, today date) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT w.warnings FROM api.tenants_warnings(ARRAY[t.id], today) w), '[]')
$$;

-- The tenant object of API.md.
CREATE FUNCTION api.tenant_json(t tenants, today date) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'external_id', t.external_id,
        'incubator', (SELECT code FROM incubators WHERE id = t.incubator_id),
        'name', t.name,
        'credit_code', t.credit_code,
        'founded_on', t.founded_on,
        'admitted_on', t.admitted_on,
        'field', t.field,
        'tech_certified_on', t.tech_certified_on,
        'high_tech_certified_on', t.high_tech_certified_on,
        'founder_origin', t.founder_origin,
        'annual_revenue_fen', (SELECT json_object_agg(r.year::text, r.revenue_fen ORDER BY r.year)
                                 FROM tenant_revenues r WHERE r.tenant_id = t.id),
        'listed_on', t.listed_on,
        'status', t.status,
        'graduated_on', t.graduated_on,
        'graduation_basis', t.graduation_basis,
        'graduation_evidence', t.graduation_evidence,
        'exited_on', t.exited_on,
        'exit_reason', t.exit_reason,
        'area_m2', coalesce((SELECT api.num(o.area_m2) FROM occupancy o
                              WHERE o.tenant_id = t.id AND o.valid @> today), 0),
        'incubation_limit_on', api.incubation_limit_on(t.admitted_on, t.field),
        'warnings', api.tenant_warnings(t, today),
        'created_at', api.ts(t.created_at),
        'updated_at', api.ts(t.updated_at))
$$;

-- The tenant a path names, locked for a change; 404 if there is none.
CREATE FUNCTION api.tenant_for_update(incubator bigint, external text) RETURNS tenants
LANGUAGE plpgsql AS $$
DECLARE
    t tenants;
BEGIN
    SELECT * INTO t FROM tenants
     WHERE incubator_id = incubator AND external_id = external
       FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no tenant %s in this incubator', external));
    END IF;
    RETURN t;
END;
$$;

-- 409 when a date on or before the end of the latest approved payout period
-- would be written or changed: history that money was paid on is frozen.
CREATE FUNCTION api.check_not_frozen(what text, d date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    frozen date := api.frozen_until();
BEGIN
    IF frozen IS NOT NULL AND d <= frozen THEN
        PERFORM api.fail(409, format(
            '%s %s is on or before %s, the end of an approved payout period: that history '
            'is frozen', what, d, frozen));
    END IF;
END;
$$;

-- The incubators other than one where a credit code is incubating: their
-- duplicate_enterprise state changes with this tenant's.
CREATE FUNCTION api.incubators_with_code(codes text[]) RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(DISTINCT incubator_id), '{}')
      FROM tenants WHERE credit_code = ANY (codes)
$$;

-- PUT /v1/incubators/{code}/tenants/{external_id}: creates (201) or replaces
-- the profile (200). Status changes go through graduation and exit.
CREATE FUNCTION api.tenant_put(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    incubator bigint := api.incubator_writable(args->>'code');
    old tenants;
    t tenants;
    today date := api.today(ctx);
    created boolean;
    date_field text;
BEGIN
    -- Two first PUTs of one tenant take turns: the second finds the first's row.
    PERFORM pg_advisory_xact_lock(api.lock_key('tenant',
                                               incubator || ' ' || (args->>'external_id')));
    SELECT * INTO old FROM tenants
     WHERE incubator_id = incubator AND external_id = args->>'external_id'
       FOR UPDATE;
    created := NOT FOUND;

    IF NOT created THEN
        -- Dates that decide shares and rewards may not move across frozen history.
        FOREACH date_field IN ARRAY ARRAY['founded_on', 'admitted_on', 'tech_certified_on',
                                          'high_tech_certified_on'] LOOP
            IF (to_jsonb(old)->>date_field) IS DISTINCT FROM (args->>date_field) THEN
                PERFORM api.check_not_frozen('old ' || date_field,
                                             (to_jsonb(old)->>date_field)::date);
                PERFORM api.check_not_frozen(date_field, (args->>date_field)::date);
            END IF;
        END LOOP;
        IF (args->>'admitted_on')::date > coalesce(old.graduated_on, old.exited_on) THEN
            PERFORM api.fail_field('admitted_on', format(
                'must not be after the tenant''s %s on %s',
                CASE WHEN old.graduated_on IS NOT NULL THEN 'graduation' ELSE 'exit' END,
                coalesce(old.graduated_on, old.exited_on)));
        END IF;
        -- A graduation on the high-tech basis rests on this date: it must still hold.
        IF old.graduation_basis = 'high_tech'
           AND NOT coalesce((args->>'high_tech_certified_on')::date <= old.graduated_on, false) THEN
            PERFORM api.fail_field('high_tech_certified_on', format(
                'must be on or before %s: the tenant graduated on the high_tech basis that day',
                old.graduated_on));
        END IF;
        -- Sending the same document again changes nothing, not even updated_at.
        IF old.name = args->>'name' AND old.credit_code = args->>'credit_code'
           AND old.founded_on = (args->>'founded_on')::date
           AND old.admitted_on = (args->>'admitted_on')::date
           AND old.field = args->>'field'
           AND old.tech_certified_on IS NOT DISTINCT FROM (args->>'tech_certified_on')::date
           AND old.high_tech_certified_on IS NOT DISTINCT FROM
               (args->>'high_tech_certified_on')::date
           AND old.founder_origin IS NOT DISTINCT FROM args->>'founder_origin'
           AND old.listed_on IS NOT DISTINCT FROM (args->>'listed_on')::date
           AND (SELECT coalesce(jsonb_object_agg(year::text, revenue_fen), 'null')
                  FROM tenant_revenues WHERE tenant_id = old.id)
               = coalesce(nullif(args->'annual_revenue_fen', '{}'), 'null') THEN
            RETURN api.ok(200, api.tenant_json(old, today));
        END IF;
        UPDATE tenants SET
            name = args->>'name',
            credit_code = args->>'credit_code',
            founded_on = (args->>'founded_on')::date,
            admitted_on = (args->>'admitted_on')::date,
            field = args->>'field',
            tech_certified_on = (args->>'tech_certified_on')::date,
            high_tech_certified_on = (args->>'high_tech_certified_on')::date,
            founder_origin = args->>'founder_origin',
            listed_on = (args->>'listed_on')::date,
            updated_at = now()
         WHERE id = old.id
        RETURNING * INTO t;
        DELETE FROM tenant_revenues WHERE tenant_id = t.id;
    ELSE
        INSERT INTO tenants (incubator_id, external_id, name, credit_code, founded_on,
                             admitted_on, field, tech_certified_on, high_tech_certified_on,
                             founder_origin, listed_on)
        VALUES (incubator, args->>'external_id', args->>'name', args->>'credit_code',
                (args->>'founded_on')::date, (args->>'admitted_on')::date, args->>'field',
                (args->>'tech_certified_on')::date, (args->>'high_tech_certified_on')::date,
                args->>'founder_origin', (args->>'listed_on')::date)
        RETURNING * INTO t;
    END IF;

    INSERT INTO tenant_revenues (tenant_id, year, revenue_fen)
    SELECT t.id, r.key::integer, r.value::bigint
      FROM jsonb_each_text(CASE WHEN jsonb_typeof(args->'annual_revenue_fen') = 'object'
                                THEN args->'annual_revenue_fen' ELSE '{}' END) r;

    -- The warnings of the moment are kept with the write that raised them.
    PERFORM api.audit(ctx, incubator,
                      format('%s tenant %s (%s)', CASE WHEN created THEN 'admitted' ELSE 'updated' END,
                             t.external_id, t.credit_code),
                      (args - 'code') || jsonb_build_object(
                          'warnings', api.tenant_warnings(t, today)));
    -- The tenant's own alerts, by key: its old and new credit code, its external id.
    PERFORM api.after_change(ctx, ARRAY[incubator] ||
                             api.incubators_with_code(ARRAY[t.credit_code, old.credit_code]),
                             NULL, array_remove(ARRAY[t.credit_code, old.credit_code,
                                                      t.external_id], NULL));
    RETURN api.ok(CASE WHEN created THEN 201 ELSE 200 END, api.tenant_json(t, today),
                  CASE WHEN created THEN format('/v1/incubators/%s/tenants/%s', args->>'code',
                                                t.external_id) END);
END;
$$;

-- The name of a bulk sync's field in an error: tenants[i].field for JSON, or
-- "row N: field" for CSV (args.source = 'csv'; args.rows holds each tenant's
-- row number, counting the header as row 1).
CREATE FUNCTION api.sync_field(args jsonb, i integer, field text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN args->>'source' = 'csv' THEN format('row %s: %s', args->'rows'->>i, field)
                ELSE format('tenants[%s].%s', i, field) END
$$;

-- PUT /v1/incubators/{code}/tenants: every listed tenant is created or has its
-- profile replaced as its own PUT .../tenants/{external_id} would, all or
-- nothing, set-based (one statement per step, not one per tenant), with one
-- audit row. The daemon has checked each tenant's fields and that no
-- external_id is listed twice; here are the rules that need the stored rows.
-- Tenants of the incubator that the list lacks are only reported.
CREATE FUNCTION api.tenants_sync(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    incubator bigint := api.incubator_writable(args->>'code');
    today date := api.today(ctx);
    frozen date := api.frozen_until();
    errors json;
    counts record;
    not_listed json;
BEGIN
    -- Syncs, exits and snapshots of one incubator take turns.
    PERFORM 1 FROM incubators WHERE id = incubator FOR NO KEY UPDATE;

    CREATE TEMP TABLE sync_in ON COMMIT DROP AS
    SELECT (e.n - 1)::integer AS i, e.t->>'external_id' AS external_id, e.t->>'name' AS name,
           e.t->>'credit_code' AS credit_code, (e.t->>'founded_on')::date AS founded_on,
           (e.t->>'admitted_on')::date AS admitted_on, e.t->>'field' AS field,
           (e.t->>'tech_certified_on')::date AS tech_certified_on,
           (e.t->>'high_tech_certified_on')::date AS high_tech_certified_on,
           e.t->>'founder_origin' AS founder_origin, (e.t->>'listed_on')::date AS listed_on,
           coalesce(nullif(nullif(e.t->'annual_revenue_fen', 'null'), '{}'), 'null') AS revenue,
           NULL::bigint AS id, NULL::text AS kind
      FROM jsonb_array_elements(args->'tenants') WITH ORDINALITY e(t, n);
    -- Its size, for the plans of the joins below (hash joins, not loops).
    ANALYZE sync_in;

    -- The existing tenants, locked like a PUT locks its one.
    UPDATE sync_in s SET id = t.id
      FROM (SELECT id, external_id FROM tenants
             WHERE incubator_id = incubator
               AND external_id IN (SELECT external_id FROM sync_in)
               FOR UPDATE) t
     WHERE t.external_id = s.external_id;

    -- Dates that decide shares and rewards may not move across frozen history.
    IF frozen IS NOT NULL THEN
        SELECT json_agg(json_build_object('field', api.sync_field(args, s.i, d.field),
                        'message', format('%s %s: changing it is refused, %s is on or before '
                                          '%s, the end of an approved payout period',
                                          d.field, s.external_id,
                                          least(d.old, d.new), frozen)) ORDER BY s.i, d.field)
          INTO errors
          FROM sync_in s JOIN tenants o ON o.id = s.id
         CROSS JOIN LATERAL (VALUES ('founded_on', o.founded_on, s.founded_on),
                                    ('admitted_on', o.admitted_on, s.admitted_on),
                                    ('tech_certified_on', o.tech_certified_on, s.tech_certified_on),
                                    ('high_tech_certified_on', o.high_tech_certified_on,
                                     s.high_tech_certified_on)) d(field, old, new)
         WHERE d.old IS DISTINCT FROM d.new AND least(d.old, d.new) <= frozen;
        IF errors IS NOT NULL THEN
            PERFORM api.fail(409, format('%s profile date(s) would change history up to %s, '
                                         'frozen by an approved payout period',
                                         json_array_length(errors), frozen), errors);
        END IF;
    END IF;

    -- What a graduation or exit already recorded must still hold.
    SELECT json_agg(json_build_object('field', e.field, 'message', e.message)
                    ORDER BY e.i, e.field) INTO errors
      FROM (SELECT s.i, api.sync_field(args, s.i, 'admitted_on') AS field,
                   format('must not be after the tenant''s %s on %s',
                          CASE WHEN o.graduated_on IS NOT NULL THEN 'graduation' ELSE 'exit' END,
                          coalesce(o.graduated_on, o.exited_on)) AS message
              FROM sync_in s JOIN tenants o ON o.id = s.id
             WHERE s.admitted_on > coalesce(o.graduated_on, o.exited_on)
            UNION ALL
            SELECT s.i, api.sync_field(args, s.i, 'high_tech_certified_on'),
                   format('must be on or before %s: the tenant graduated on the high_tech basis '
                          'that day', o.graduated_on)
              FROM sync_in s JOIN tenants o ON o.id = s.id
             WHERE o.graduation_basis = 'high_tech'
               AND NOT coalesce(s.high_tech_certified_on <= o.graduated_on, false)) e;
    IF errors IS NOT NULL THEN
        PERFORM api.fail(422, format('%s field(s) are invalid', json_array_length(errors)),
                         errors);
    END IF;

    -- Sending the same document again changes nothing, not even updated_at.
    UPDATE sync_in s SET kind = CASE
        WHEN s.id IS NULL THEN 'created'
        WHEN EXISTS (
            SELECT 1 FROM tenants o
             WHERE o.id = s.id AND o.name = s.name AND o.credit_code = s.credit_code
               AND o.founded_on = s.founded_on AND o.admitted_on = s.admitted_on
               AND o.field = s.field
               AND o.tech_certified_on IS NOT DISTINCT FROM s.tech_certified_on
               AND o.high_tech_certified_on IS NOT DISTINCT FROM s.high_tech_certified_on
               AND o.founder_origin IS NOT DISTINCT FROM s.founder_origin
               AND o.listed_on IS NOT DISTINCT FROM s.listed_on
               AND (SELECT coalesce(jsonb_object_agg(r.year::text, r.revenue_fen), 'null')
                      FROM tenant_revenues r WHERE r.tenant_id = o.id) = s.revenue)
        THEN 'unchanged' ELSE 'updated' END;

    SELECT count(*) FILTER (WHERE kind = 'created') AS created,
           count(*) FILTER (WHERE kind = 'updated') AS updated,
           count(*) FILTER (WHERE kind = 'unchanged') AS unchanged,
           array_agg(credit_code) FILTER (WHERE kind <> 'unchanged') AS codes
      INTO counts FROM sync_in;

    SELECT coalesce(json_agg(t.external_id ORDER BY t.external_id), '[]') INTO not_listed
      FROM tenants t
     WHERE t.incubator_id = incubator AND t.status = 'incubating'
       -- NOT IN over the list: one hashed subplan, whatever the list's size.
       AND t.external_id NOT IN (SELECT s.external_id FROM sync_in s);

    IF counts.created + counts.updated > 0 THEN
        -- The old credit codes too: a changed code changes duplicates elsewhere.
        counts.codes := counts.codes || ARRAY(SELECT o.credit_code FROM sync_in s
                                                JOIN tenants o ON o.id = s.id
                                               WHERE s.kind = 'updated');
        UPDATE tenants t SET
            name = s.name, credit_code = s.credit_code, founded_on = s.founded_on,
            admitted_on = s.admitted_on, field = s.field,
            tech_certified_on = s.tech_certified_on,
            high_tech_certified_on = s.high_tech_certified_on,
            founder_origin = s.founder_origin, listed_on = s.listed_on, updated_at = now()
          FROM sync_in s
         WHERE s.kind = 'updated' AND t.id = s.id;
        DELETE FROM tenant_revenues r USING sync_in s
         WHERE s.kind = 'updated' AND r.tenant_id = s.id;
        WITH added AS (
            INSERT INTO tenants (incubator_id, external_id, name, credit_code, founded_on,
                                 admitted_on, field, tech_certified_on, high_tech_certified_on,
                                 founder_origin, listed_on)
            SELECT incubator, external_id, name, credit_code, founded_on, admitted_on, field,
                   tech_certified_on, high_tech_certified_on, founder_origin, listed_on
              FROM sync_in WHERE kind = 'created' ORDER BY i
            RETURNING id, external_id)
        UPDATE sync_in s SET id = a.id FROM added a WHERE a.external_id = s.external_id;
        INSERT INTO tenant_revenues (tenant_id, year, revenue_fen)
        SELECT s.id, r.key::integer, r.value::bigint
          FROM sync_in s CROSS JOIN LATERAL jsonb_each_text(
                   CASE WHEN jsonb_typeof(s.revenue) = 'object' THEN s.revenue ELSE '{}' END) r
         WHERE s.kind <> 'unchanged';

        -- The warnings of the moment are kept with the write that raised them.
        PERFORM api.audit(ctx, incubator,
            format('synced %s tenants: %s created, %s updated, %s unchanged',
                   counts.created + counts.updated + counts.unchanged, counts.created,
                   counts.updated, counts.unchanged),
            jsonb_build_object(
                'created', (SELECT coalesce(jsonb_agg(external_id ORDER BY i), '[]')
                              FROM sync_in WHERE kind = 'created'),
                'updated', (SELECT coalesce(jsonb_agg(external_id ORDER BY i), '[]')
                              FROM sync_in WHERE kind = 'updated'),
                'unchanged', counts.unchanged,
                'not_listed', not_listed,
                'warnings', (SELECT coalesce(jsonb_object_agg(s.external_id, w.warnings), '{}')
                               FROM api.tenants_warnings(ARRAY(SELECT id FROM sync_in
                                                               WHERE kind <> 'unchanged'),
                                                         today) w
                               JOIN sync_in s ON s.id = w.tenant_id)));
        PERFORM api.after_change(ctx, ARRAY[incubator] || api.incubators_with_code(counts.codes));
    END IF;

    DROP TABLE sync_in;
    RETURN api.ok(200, json_build_object('created', counts.created, 'updated', counts.updated,
                                         'unchanged', counts.unchanged,
                                         'not_listed', not_listed));
END;
$$;

-- GET /v1/incubators/{code}/tenants/{external_id}
CREATE FUNCTION api.tenant_get(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t tenants;
BEGIN
    SELECT * INTO t FROM tenants
     WHERE incubator_id = api.incubator_id(args->>'code') AND external_id = args->>'external_id';
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no tenant %s in this incubator', args->>'external_id'));
    END IF;
    RETURN api.ok(200, api.tenant_json(t, api.today(ctx)));
END;
$$;

-- GET /v1/incubators/{code}/tenants[?status=]: ordered by external_id.
CREATE FUNCTION api.tenant_list(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    incubator bigint := api.incubator_id(args->>'code');
    after text := coalesce(api.cursor_decode(args->>'cursor'), '');
    lang text := api.csv_lang(ctx, args);
    result json;
BEGIN
    IF ctx->>'format' = 'csv' THEN
        -- For a spreadsheet: every tenant that matches (from the cursor on), unpaged.
        SELECT api.csv_reply(
                   api.csv_header(lang,
                       ARRAY['external_id', 'name', 'credit_code', 'status', 'founded_on',
                             'admitted_on', 'field', 'tech_certified_on',
                             'high_tech_certified_on', 'graduated_on', 'graduation_basis',
                             'exited_on', 'exit_reason', 'area_m2', 'incubation_limit_on',
                             'warnings'],
                       ARRAY['企业编号', '企业名称', '统一社会信用代码', '状态', '成立时间',
                             '入驻时间', '技术领域', '科技型中小企业认定日期',
                             '高新技术企业认定日期', '毕业日期', '毕业依据', '退出日期',
                             '退出原因', '在用面积（平方米）', '孵化期限', '提示'])
                   || coalesce(string_agg(api.csv_record(ARRAY[
                          j->>'external_id', j->>'name', j->>'credit_code',
                          api.csv_word(lang, j->>'status'), j->>'founded_on', j->>'admitted_on',
                          j->>'field', j->>'tech_certified_on', j->>'high_tech_certified_on',
                          j->>'graduated_on', j->>'graduation_basis', j->>'exited_on',
                          j->>'exit_reason', j->>'area_m2', j->>'incubation_limit_on',
                          (SELECT string_agg(w->>'code', ';')
                             FROM json_array_elements(j->'warnings') w)]),
                          '' ORDER BY j->>'external_id'), ''),
                   format('tenants-%s-%s.csv', args->>'code', api.today(ctx)))
          INTO result
          FROM (SELECT api.tenant_json(t, api.today(ctx)) AS j FROM tenants t
                 WHERE incubator_id = incubator AND external_id > after
                   AND (args->>'status' IS NULL OR status = args->>'status')) x;
        RETURN api.ok(200, result);
    END IF;
    SELECT api.page(array_agg(api.tenant_json(t, api.today(ctx)) ORDER BY t.external_id),
                    array_agg(t.external_id ORDER BY t.external_id), (args->>'limit')::int)
      INTO result
      FROM (SELECT * FROM tenants
             WHERE incubator_id = incubator AND external_id > after
               AND (args->>'status' IS NULL OR status = args->>'status')
             ORDER BY external_id
             LIMIT (args->>'limit')::int + 1) t;
    RETURN api.ok(200, result);
END;
$$;

-- Whether revenue (year -> fen) has two consecutive years summing to at least min.
-- The sum is numeric: the edge bounds each amount, SQL does not rely on it.
CREATE FUNCTION api.revenue_two_years_reach(revenue jsonb, min bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM jsonb_each_text(revenue) a
          JOIN jsonb_each_text(revenue) b ON b.key::integer = a.key::integer + 1
         WHERE a.value::numeric + b.value::numeric >= min)
$$;

-- POST /v1/incubators/{code}/tenants/{external_id}/graduation
CREATE FUNCTION api.tenant_graduate(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    incubator bigint := api.incubator_writable(args->>'code');
    t tenants := api.tenant_for_update(incubator, args->>'external_id');
    graduated date := (args->>'graduated_on')::date;
    basis text := args->>'basis';
    evidence jsonb := jsonb_strip_nulls(coalesce(nullif(args->'evidence', 'null'), '{}'));
    p policies := api.policy_on(graduated);
BEGIN
    IF t.status <> 'incubating' THEN
        PERFORM api.fail(409, format('tenant %s is %s, not incubating', t.external_id, t.status));
    END IF;
    IF graduated < t.admitted_on THEN
        PERFORM api.fail_field('graduated_on',
                               format('must not be before admitted_on (%s)', t.admitted_on));
    END IF;
    -- A graduation dated in an approved period is accepted: it is a true fact
    -- recorded late, paid as an adjustment by the next run (60_payouts.sql).

    IF basis = 'high_tech' AND NOT coalesce(t.high_tech_certified_on <= graduated, false) THEN
        PERFORM api.fail_field('basis', format(
            'high_tech needs the tenant''s high_tech_certified_on on or before graduated_on '
            '(it is %s)', coalesce(t.high_tech_certified_on::text, 'not set')));
    ELSIF basis = 'investment'
          AND NOT coalesce((evidence->>'investment_total_fen')::bigint
                           >= p.graduation_investment_min_fen, false) THEN
        PERFORM api.fail_field('evidence.investment_total_fen', format(
            'must be at least %s (graduation_investment_min_fen of policy version %s)',
            p.graduation_investment_min_fen, p.version));
    ELSIF basis = 'revenue'
          AND NOT api.revenue_two_years_reach(evidence->'revenue_fen',
                                              p.graduation_revenue_2y_min_fen) THEN
        PERFORM api.fail_field('evidence.revenue_fen', format(
            'needs two consecutive years summing to at least %s '
            '(graduation_revenue_2y_min_fen of policy version %s)',
            p.graduation_revenue_2y_min_fen, p.version));
    ELSIF basis = 'acquired_or_listed' AND coalesce(btrim(evidence->>'event'), '') = '' THEN
        PERFORM api.fail_field('evidence.event',
                               'must describe the acquisition, merger or listing');
    END IF;

    UPDATE tenants SET status = 'graduated', graduated_on = graduated, graduation_basis = basis,
                       graduation_evidence = evidence, updated_at = now()
     WHERE id = t.id
    RETURNING * INTO t;
    PERFORM api.audit(ctx, incubator,
                      format('graduated tenant %s on %s (%s, policy version %s)', t.external_id,
                             graduated, basis, p.version),
                      (args - 'code') || jsonb_build_object('policy_version', p.version));
    PERFORM api.after_change(ctx, ARRAY[incubator] || api.incubators_with_code(ARRAY[t.credit_code]),
                             NULL, ARRAY[t.credit_code, t.external_id]);
    RETURN api.ok(200, api.tenant_json(t, api.today(ctx)));
END;
$$;

/*
 * POST .../graduation/revoke {"reason"} (admin): a graduation found false.
 * The tenant is incubating again, or stays exited if it left since; the
 * revocation keeps the graduation it undid. If an approved run paid for it,
 * the next run computed for a period not yet approved recovers that amount.
 */
CREATE FUNCTION api.tenant_graduation_revoke(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    incubator bigint := api.incubator_writable(args->>'code');
    t tenants := api.tenant_for_update(incubator, args->>'external_id');
BEGIN
    IF t.graduated_on IS NULL THEN
        PERFORM api.fail(409, format('tenant %s has no graduation to revoke (it is %s)',
                                     t.external_id, t.status));
    END IF;
    INSERT INTO graduation_revocations (tenant_id, graduated_on, graduation_basis,
                                        graduation_evidence, reason, revoked_at, revoked_by)
    VALUES (t.id, t.graduated_on, t.graduation_basis, t.graduation_evidence, args->>'reason',
            api.now(ctx), ctx->>'token_name');
    PERFORM api.audit(ctx, incubator,
                      format('revoked the graduation of tenant %s on %s (%s): %s', t.external_id,
                             t.graduated_on, t.graduation_basis, args->>'reason'),
                      jsonb_build_object('graduated_on', t.graduated_on,
                                         'basis', t.graduation_basis,
                                         'reason', args->>'reason'));
    UPDATE tenants SET status = CASE WHEN exited_on IS NULL THEN 'incubating' ELSE 'exited' END,
                       graduated_on = NULL, graduation_basis = NULL, graduation_evidence = NULL,
                       updated_at = now()
     WHERE id = t.id
    RETURNING * INTO t;
    PERFORM api.after_change(ctx, ARRAY[incubator] || api.incubators_with_code(ARRAY[t.credit_code]));
    RETURN api.ok(200, api.tenant_json(t, api.today(ctx)));
END;
$$;

-- The latest snapshot of the tenant's incubator that lists it. A snapshot
-- that lists a tenant leaves it occupying space on its as_of, and one that does
-- not ends that, so these are the snapshots whose as_of lies in one of the
-- tenant's intervals (few per tenant: found by the exclusion index).
CREATE FUNCTION api.latest_listing(t tenants) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT max(s.as_of)
      FROM occupancy o
      JOIN snapshots s ON s.incubator_id = o.incubator_id AND s.as_of >= lower(o.valid)
                      AND (upper_inf(o.valid) OR s.as_of < upper(o.valid))
     WHERE o.tenant_id = t.id
$$;

-- Ends a tenant's occupancy on a day: it occupies nothing from then on.
CREATE FUNCTION api.end_occupancy(tenant bigint, d date) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM occupancy WHERE tenant_id = tenant AND lower(valid) >= d;
    UPDATE occupancy SET valid = daterange(lower(valid), d)
     WHERE tenant_id = tenant AND valid @> d;
$$;

-- POST /v1/incubators/{code}/tenants/{external_id}/exit
CREATE FUNCTION api.tenant_exit(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    incubator bigint := api.incubator_writable(args->>'code');
    t tenants;
    exited date := (args->>'exited_on')::date;
    listed date;
BEGIN
    -- Exits and snapshots of one incubator take turns: both change its occupancy.
    PERFORM 1 FROM incubators WHERE id = incubator FOR NO KEY UPDATE;
    t := api.tenant_for_update(incubator, args->>'external_id');
    IF t.status = 'exited' THEN
        PERFORM api.fail(409, format('tenant %s already exited on %s', t.external_id,
                                     t.exited_on));
    END IF;
    IF exited < coalesce(t.graduated_on, t.admitted_on) THEN
        PERFORM api.fail_field('exited_on', format('must not be before %s (%s)',
            CASE WHEN t.graduated_on IS NOT NULL THEN 'graduated_on' ELSE 'admitted_on' END,
            coalesce(t.graduated_on, t.admitted_on)));
    END IF;
    PERFORM api.check_not_frozen('exited_on', exited);
    listed := api.latest_listing(t);
    IF exited < listed THEN
        PERFORM api.fail(409, format(
            'exited_on %s is before %s, the latest snapshot that lists tenant %s',
            exited, listed, t.external_id));
    END IF;

    UPDATE tenants SET status = 'exited', exited_on = exited, exit_reason = args->>'reason',
                       updated_at = now()
     WHERE id = t.id
    RETURNING * INTO t;
    PERFORM api.end_occupancy(t.id, exited);
    PERFORM api.audit(ctx, incubator,
                      format('tenant %s exited on %s (%s)', t.external_id, exited, t.exit_reason),
                      args - 'code');
    PERFORM api.after_change(ctx, ARRAY[incubator] || api.incubators_with_code(ARRAY[t.credit_code]),
                             NULL, ARRAY[t.credit_code, t.external_id]);
    RETURN api.ok(200, api.tenant_json(t, api.today(ctx)));
END;
$$;
