-- The API's common machinery: the reply type, errors, formatting helpers,
-- the audit writer, cursors, and api.run, the single entry point the daemon
-- calls for every API request.
--
-- Conventions of every API function api.<name>(ctx jsonb, args jsonb):
--   ctx:  {request_id, method, path, today, token_id, token_name, admin,
--          incubator, now, idempotency_key?, body_sha256?, format?}, built by the
--          daemon; "today" is the bureau's date: SQL never reads the clock
--          for a business rule.
--   args: path parameters, query parameters and the validated body, in the
--         normal forms of validate.h (dates and areas as text).
--   It returns api.reply, or raises api.fail(status, detail, errors) to
--   abort: every change it made is then rolled back.
--
-- A SQL helper is declared exactly as volatile as its body: STABLE when it
-- casts text to a date, formats with to_char or converts encodings. One
-- declared IMMUTABLE over a STABLE body is never inlined, and in a kept plan
-- each of its calls is a SQL function parsed and planned again.

CREATE TYPE api.reply AS (
    status    integer,
    body      json,
    location  text,
    replayed  boolean
);

-- A successful reply.
CREATE FUNCTION api.ok(status integer, body json, location text DEFAULT NULL)
RETURNS api.reply LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(status, body, location, false)::api.reply
$$;

-- Aborts the call with an HTTP status: SQLSTATE 'IK' || status, caught by api.run.
-- errors: a JSON array of {"field", "message"}, or NULL.
CREATE FUNCTION api.fail(status integer, detail text, errors json DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'IK' || status::text, MESSAGE = detail,
                          DETAIL = coalesce(errors::text, '');
END;
$$;

-- A 422 about one field.
CREATE FUNCTION api.fail_field(field text, message text, detail text DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    SELECT api.fail(422, coalesce(detail, field || ' ' || message),
                    json_build_array(json_build_object('field', field, 'message', message)))
$$;

-- RFC 3339 UTC, e.g. 2026-11-26T08:00:00Z. (STABLE as to_char is: an IMMUTABLE
-- function whose body is not would not be inlined.)
CREATE FUNCTION api.ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- An area or other decimal without trailing zeros: 12000.00 -> 12000, 420.50 -> 420.5.
CREATE FUNCTION api.num(x numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT trim_scale(x)
$$;

-- A ratio for display: rounded half-up to 4 decimals (numeric rounds half away from zero).
CREATE FUNCTION api.ratio(x numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT trim_scale(round(x, 4))
$$;

-- The daemon's "today", from the context. (STABLE, as the text-to-date cast
-- is: declared IMMUTABLE it was not inlined, and in a kept plan every call was
-- a SQL function parsed and planned anew.)
CREATE FUNCTION api.today(ctx jsonb) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT (ctx->>'today')::date
$$;

-- The daemon's "now" (a request's or a job's), for the alerts' timestamps and
-- the repeat schedule; the transaction's start when a caller gave none.
CREATE FUNCTION api.now(ctx jsonb) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT coalesce((ctx->>'now')::timestamptz, now())
$$;

-- The last day of the latest approved period: history up to it is frozen.
CREATE FUNCTION api.frozen_until() RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT (max(period) + interval '1 month' - interval '1 day')::date
      FROM payout_runs WHERE status = 'approved'
$$;

-- A month (its first day) as YYYY-MM, and its last day.
CREATE FUNCTION api.period_text(period date) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(period, 'YYYY-MM')
$$;

CREATE FUNCTION api.period_end(period date) RETURNS date
LANGUAGE sql IMMUTABLE AS $$
    SELECT (period + interval '1 month' - interval '1 day')::date
$$;

-- Opaque page cursors: base64url of the last key of a page.
CREATE FUNCTION api.cursor_encode(k text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT translate(encode(convert_to(k, 'UTF8'), 'base64'), E'+/=\n', '-_')
$$;

CREATE FUNCTION api.cursor_decode(c text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    b64 text;
BEGIN
    IF c IS NULL THEN
        RETURN NULL;
    END IF;
    b64 := translate(c, '-_', '+/');
    b64 := b64 || repeat('=', (4 - length(b64) % 4) % 4);
    RETURN convert_from(decode(b64, 'base64'), 'UTF8');
EXCEPTION WHEN OTHERS THEN
    PERFORM api.fail(400, 'cursor is not one this API returned',
                     json_build_array(json_build_object('field', 'cursor',
                                                        'message', 'is not valid')));
    RETURN NULL;
END;
$$;

-- A cursor's key, which must match a pattern (400 otherwise).
CREATE FUNCTION api.cursor_matching(c text, pattern text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text := api.cursor_decode(c);
BEGIN
    IF k IS NOT NULL AND k !~ pattern THEN
        PERFORM api.fail(400, 'cursor is not one this API returned',
                         json_build_array(json_build_object('field', 'cursor',
                                                            'message', 'is not valid')));
    END IF;
    RETURN k;
END;
$$;

-- A cursor over integer keys (ids).
CREATE FUNCTION api.cursor_id(c text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT api.cursor_matching(c, '^[0-9]{1,18}$')::bigint
$$;

-- A cursor over periods: the first day of the month it names.
CREATE FUNCTION api.cursor_period(c text) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT (api.cursor_matching(c, '^[0-9]{4}-(0[1-9]|1[0-2])$') || '-01')::date
$$;

-- {"items": [...], "next_cursor": ...} from an ordered set of (key, item) rows,
-- limit + 1 of them: the extra row only says that another page exists.
CREATE FUNCTION api.page(items json[], keys text[], lim integer) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object(
        'items', coalesce(array_to_json(items[1:lim]), '[]'::json),
        'next_cursor', CASE WHEN coalesce(array_length(items, 1), 0) > lim
                            THEN api.cursor_encode(keys[lim]) END)
$$;

-- Records an accepted write. (PL/pgSQL keeps the INSERT's plan per session;
-- a SQL function would parse and plan it again on every write.)
CREATE FUNCTION api.audit(ctx jsonb, incubator_id bigint, summary text, details jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (token_id, token_name, request_id, method, path, incubator_id,
                           summary, details)
    VALUES ((ctx->>'token_id')::bigint, ctx->>'token_name', ctx->>'request_id',
            ctx->>'method', ctx->>'path', audit.incubator_id, audit.summary, audit.details);
END;
$$;

-- The incubator a path names, or 404.
-- The incubator a write names: 404 when there is none, 409 once it is closed
-- (a closed incubator's data, tenants and occupancy take no more writes).
CREATE FUNCTION api.incubator_writable(code text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    found_id bigint;
    closed date;
BEGIN
    SELECT i.id, i.closed_on INTO found_id, closed FROM incubators i
     WHERE i.code = incubator_writable.code;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no incubator %s', code));
    END IF;
    IF closed IS NOT NULL THEN
        PERFORM api.fail(409, format('incubator %s closed on %s: it takes no more writes',
                                     code, closed));
    END IF;
    RETURN found_id;
END;
$$;

CREATE FUNCTION api.incubator_id(code text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    found_id bigint;
BEGIN
    SELECT i.id INTO found_id FROM incubators i WHERE i.code = incubator_id.code;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no incubator %s', code));
    END IF;
    RETURN found_id;
END;
$$;

-- Every advisory lock incubatord takes, in one list. The key of a lock is
-- hashtextextended('incubatord <kind>[ <subject>]', 0); the kinds:
--   migrate          schema changes: taken by daemon/migrate.c, with this same
--                    formula written out, before this schema exists
--   job              a scheduled job (subject: its name), api.run_job
--   idempotency      a request's Idempotency-Key ('<token id>:<key>'), api.run
--   tenant           a tenant's first PUT ('<incubator id> <external_id>')
--   alerts           the alert evaluation: shared by one incubator's, exclusive
--                    for the sweep over all; with an incubator's id as subject,
--                    that incubator's evaluations take turns (api.alerts_lock)
--   payout approval  approvals of payout runs take turns
--   token names      token creations take turns (a name is unique among unrevoked tokens)
CREATE TYPE api.lock_kind AS ENUM ('migrate', 'job', 'idempotency', 'tenant', 'alerts',
                                   'payout approval', 'token names');

CREATE FUNCTION api.lock_key(kind api.lock_kind, subject text DEFAULT NULL) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtextextended(concat_ws(' ', 'incubatord', kind::text, subject), 0)
$$;

/*
 * Runs api.<fn>(ctx, args) and turns an api.fail into a reply row. (The
 * block's subtransaction undoes whatever the function did before it failed.)
 */
CREATE FUNCTION api.call(fn text, ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    r api.reply;
BEGIN
    EXECUTE format('SELECT * FROM api.%I($1, $2)', fn) INTO r USING ctx, args;
    r.replayed := false;
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    IF SQLSTATE NOT LIKE 'IK%' THEN
        RAISE;
    END IF;
    DECLARE
        errors text;
    BEGIN
        GET STACKED DIAGNOSTICS errors = PG_EXCEPTION_DETAIL;
        RETURN ROW(substr(SQLSTATE, 3)::integer,
                   json_build_object('detail', SQLERRM, 'errors', nullif(errors, '')::json),
                   NULL::text, false);
    END;
END;
$$;

/*
 * The entry point. Runs api.<fn>(ctx, args) and turns an api.fail into a
 * reply row, so the daemon handles one shape.
 *
 * With an Idempotency-Key, a 2xx reply is stored in the same transaction as
 * the write it answers, and a retry within 24 h gets it back with replayed =
 * true. Other replies are not stored: a request that failed wrote nothing,
 * so its retry runs again.
 *
 * A dry run (ctx.dry_run) runs the function inside a block that is rolled
 * back once its answer is taken: no row, audit, alert, outbox event, NOTIFY
 * or idempotency record is kept (NOTIFYs of an aborted subtransaction are
 * discarded). A stored answer for its key is replayed to it as it would be
 * to the real request.
 */
CREATE FUNCTION api.run(fn text, ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    r api.reply;
    idem_key text := ctx->>'idempotency_key';
    token bigint := (ctx->>'token_id')::bigint;
    dry_run boolean := coalesce((ctx->>'dry_run')::boolean, false);
    stored idempotency_keys%ROWTYPE;
BEGIN
    IF fn !~ '^[a-z][a-z_]*$' OR to_regprocedure('api.' || fn || '(jsonb,jsonb)') IS NULL THEN
        RAISE EXCEPTION 'api.run: no API function %', fn;
    END IF;

    IF idem_key IS NOT NULL THEN
        -- The first request with this key holds the lock until it commits.
        IF NOT pg_try_advisory_xact_lock(api.lock_key('idempotency',
                                                       token::text || ':' || idem_key)) THEN
            -- (A bare NULL is of type unknown: RETURN ROW(...) would fail with
            -- "returned record type does not match expected record type".)
            RETURN ROW(409, json_build_object('detail',
                'a request with this Idempotency-Key is still being processed'), NULL::text,
                false);
        END IF;
        SELECT * INTO stored FROM idempotency_keys k
         WHERE k.token_id = token AND k.key = idem_key
           AND k.created_at > now() - interval '24 hours';
        IF FOUND THEN
            IF stored.method <> ctx->>'method' OR stored.path <> ctx->>'path'
               OR stored.body_sha256 <> ctx->>'body_sha256' THEN
                RETURN ROW(409, json_build_object('detail',
                    'this Idempotency-Key was already used with a different request'),
                    NULL::text, false);
            END IF;
            RETURN ROW(stored.status, stored.body::json, stored.location, true);
        END IF;
    END IF;

    IF dry_run THEN
        BEGIN
            r := api.call(fn, ctx, args);
            RAISE EXCEPTION USING ERRCODE = 'IKDRY', MESSAGE = 'dry run: rolled back';
        EXCEPTION WHEN SQLSTATE 'IKDRY' THEN
            RETURN r;
        END;
    END IF;
    r := api.call(fn, ctx, args);

    IF idem_key IS NOT NULL AND r.status BETWEEN 200 AND 299 THEN
        INSERT INTO idempotency_keys (token_id, key, method, path, body_sha256, status, body,
                                      location)
        VALUES (token, idem_key, ctx->>'method', ctx->>'path', ctx->>'body_sha256', r.status,
                r.body::text, r.location)
        ON CONFLICT (token_id, key) DO UPDATE
           SET method = excluded.method, path = excluded.path,
               body_sha256 = excluded.body_sha256, status = excluded.status,
               body = excluded.body, location = excluded.location, created_at = now();
    END IF;
    RETURN r;
END;
$$;
