-- Incubators: registration, reading, changes, and their area history.

-- The disposable area in force on a day, or NULL before the incubator opened.
-- (PL/pgSQL, not SQL: a SQL function with a FROM clause is not inlined and is
-- parsed and planned again on every call; PL/pgSQL keeps its plan per session.)
CREATE FUNCTION api.disposable_area_on(incubator bigint, d date) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT a.disposable_area_m2 FROM incubator_areas a
             WHERE a.incubator_id = incubator AND a.valid @> d);
END;
$$;

-- The public service area in force on a day, or NULL before the incubator opened.
CREATE FUNCTION api.public_service_area_on(incubator bigint, d date) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT p.area_m2 FROM public_service_areas p
             WHERE p.incubator_id = incubator AND p.valid @> d);
END;
$$;

-- The incubator object of API.md, with the areas given. (Inlined where it is
-- called: a SQL function of one expression.)
CREATE FUNCTION api.incubator_object(i incubators, disposable numeric, public_service numeric)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'code', i.code,
        'name', i.name,
        'level', i.level,
        'kind', i.kind,
        'district', i.district,
        'opened_on', i.opened_on,
        'closed_on', i.closed_on,
        'disposable_area_m2', api.num(disposable),
        'public_service_area_m2', api.num(public_service),
        'created_at', api.ts(i.created_at),
        'updated_at', api.ts(i.updated_at))
$$;

-- The day whose areas an incubator object shows: today, or the opening for
-- an incubator that opens later, or the closing day for one that closed.
CREATE FUNCTION api.incubator_areas_day(i incubators, today date) RETURNS date
LANGUAGE sql IMMUTABLE AS $$
    SELECT least(greatest(today, i.opened_on), i.closed_on)
$$;

-- The incubator object with the areas of that day.
CREATE FUNCTION api.incubator_json(i incubators, today date) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT api.incubator_object(
        i, api.disposable_area_on(i.id, api.incubator_areas_day(i, today)),
        api.public_service_area_on(i.id, api.incubator_areas_day(i, today)))
$$;

-- Ends the intervals of one incubator's history at day d and drops those that
-- start on or after it, so that a new interval can start on d. Works for any
-- table of (incubator_id, valid).
CREATE FUNCTION api.cut_history(tbl regclass, incubator bigint, d date) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DELETE FROM %s WHERE incubator_id = $1 AND lower(valid) >= $2', tbl)
        USING incubator, d;
    EXECUTE format('UPDATE %s SET valid = daterange(lower(valid), $2)
                     WHERE incubator_id = $1 AND valid @> $2', tbl)
        USING incubator, d;
END;
$$;

-- POST /v1/incubators
CREATE FUNCTION api.incubator_create(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    inc incubators;
    opened date := coalesce((args->>'opened_on')::date, api.today(ctx));
    disposable numeric := (args->>'disposable_area_m2')::numeric;
    public_service numeric := coalesce((args->>'public_service_area_m2')::numeric, 0);
BEGIN
    IF EXISTS (SELECT 1 FROM incubators WHERE lower(code) = lower(args->>'code')) THEN
        PERFORM api.fail(409, format('an incubator with code %s exists', args->>'code'));
    END IF;
    IF public_service > disposable THEN
        PERFORM api.fail_field('public_service_area_m2',
                               'must not exceed disposable_area_m2');
    END IF;
    INSERT INTO incubators (code, name, level, kind, district, opened_on, registered_on)
    VALUES (args->>'code', args->>'name', args->>'level', args->>'kind', args->>'district',
            opened, api.today(ctx))
    RETURNING * INTO inc;
    INSERT INTO incubator_areas (incubator_id, valid, disposable_area_m2)
    VALUES (inc.id, daterange(opened, NULL), disposable);
    INSERT INTO public_service_areas (incubator_id, valid, area_m2)
    VALUES (inc.id, daterange(opened, NULL), public_service);
    PERFORM api.audit(ctx, inc.id, format('registered incubator %s', inc.code), args);
    PERFORM api.after_change(ctx, ARRAY[inc.id]);
    RETURN api.ok(201, api.incubator_json(inc, api.today(ctx)), '/v1/incubators/' || inc.code);
END;
$$;

-- GET /v1/incubators/{code}. One query the planner sees whole: a SQL function
-- returning a set, inlined into the caller's statement (the daemon's prepared
-- call), so the incubator's row and its two current areas are one plan, kept
-- per connection. No such incubator is a 404 row, not an exception.
CREATE FUNCTION api.incubator_get(ctx jsonb, args jsonb) RETURNS SETOF api.reply
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN i.id IS NULL THEN 404 ELSE 200 END,
           CASE WHEN i.id IS NULL
                THEN json_build_object('detail', format('no incubator %s', args->>'code'))
                ELSE api.incubator_object(i, a.disposable_area_m2, p.area_m2) END,
           NULL::text, false
      FROM (VALUES (args->>'code')) AS wanted(code)
      LEFT JOIN incubators i ON i.code = wanted.code
      LEFT JOIN incubator_areas a
             ON a.incubator_id = i.id AND a.valid @> api.incubator_areas_day(i, api.today(ctx))
      LEFT JOIN public_service_areas p
             ON p.incubator_id = i.id AND p.valid @> api.incubator_areas_day(i, api.today(ctx))
$$;

-- GET /v1/incubators: ordered by code.
CREATE FUNCTION api.incubator_list(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE sql STABLE AS $$
    SELECT api.ok(200, api.page(array_agg(item ORDER BY code), array_agg(code ORDER BY code),
                                (args->>'limit')::int))
      FROM (SELECT i.code, api.incubator_json(i, api.today(ctx)) AS item
              FROM incubators i
             WHERE i.code > coalesce(api.cursor_decode(args->>'cursor'), '')
             ORDER BY i.code
             LIMIT (args->>'limit')::int + 1) page
$$;

-- PATCH /v1/incubators/{code}
CREATE FUNCTION api.incubator_patch(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    inc incubators;
    effective date := (args->>'effective_on')::date;
    frozen date := api.frozen_until();
    changed text[] := '{}';
BEGIN
    SELECT * INTO inc FROM incubators WHERE id = api.incubator_writable(args->>'code')
       FOR UPDATE;

    IF args ? 'disposable_area_m2' THEN
        IF effective < inc.opened_on THEN
            PERFORM api.fail_field('effective_on', format(
                'must not be before the incubator opened (%s)', inc.opened_on));
        END IF;
        IF frozen IS NOT NULL AND effective <= frozen THEN
            PERFORM api.fail(409, format(
                'history up to %s is frozen by an approved payout; an area change must take '
                'effect after it', frozen));
        END IF;
        PERFORM api.cut_history('incubator_areas', inc.id, effective);
        INSERT INTO incubator_areas (incubator_id, valid, disposable_area_m2)
        VALUES (inc.id, daterange(effective, NULL), (args->>'disposable_area_m2')::numeric);
        changed := changed || format('disposable_area_m2 = %s from %s',
                                     args->>'disposable_area_m2', effective);
    END IF;

    UPDATE incubators SET
        name = coalesce(args->>'name', name),
        level = coalesce(args->>'level', level),
        kind = coalesce(args->>'kind', kind),
        district = CASE WHEN args ? 'district' THEN args->>'district' ELSE district END,
        updated_at = now()
     WHERE id = inc.id
    RETURNING * INTO inc;
    changed := changed || ARRAY(SELECT k FROM jsonb_object_keys(args) k
                                 WHERE k IN ('name', 'level', 'kind', 'district') ORDER BY k);

    PERFORM api.audit(ctx, inc.id, format('changed incubator %s: %s', inc.code,
                                          array_to_string(changed, ', ')), args);
    -- A new disposable area changes the share, whatever the day it takes effect.
    IF args ? 'disposable_area_m2' THEN
        PERFORM api.after_change(ctx, ARRAY[inc.id]);
    END IF;
    RETURN api.ok(200, api.incubator_json(inc, api.today(ctx)));
END;
$$;
