-- Tokens and the audit log.

CREATE FUNCTION api.token_json(t tokens) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', t.id,
        'name', t.name,
        'incubator', (SELECT code FROM incubators WHERE id = t.incubator_id),
        'created_at', api.ts(t.created_at),
        'created_by', t.created_by,
        'last_used_at', api.ts(t.last_used_at),
        'expires_at', api.ts(t.expires_at),
        'expires_in_days', t.expires_in_days,
        'replaced_by', t.replaced_by,
        'revoked_at', api.ts(t.revoked_at))
$$;

-- The identity behind a token's hash, if it is not revoked, and when it
-- expires; records its use unless it has expired by `at`, the daemon's clock
-- (SQL never reads the clock for a rule, so expiry is tested at any time).
-- Called by the daemon's authentication (not through api.run) on a cache miss.
--
-- revoked_at is tested on the row being updated, not in a subquery: when the
-- UPDATE has to wait for a revocation holding the row, PostgreSQL re-checks
-- the conditions on the committed row (EvalPlanQual) but keeps a subquery's
-- old answer, so a token revoked meanwhile came back as valid (and was
-- cached by the daemon after the revocation's NOTIFY had passed).
CREATE FUNCTION api.token_lookup(token_hash bytea, at timestamptz)
RETURNS TABLE (id bigint, name text, admin boolean, incubator text, expires_at bigint)
LANGUAGE sql AS $$
    UPDATE tokens t
       SET last_used_at = CASE WHEN t.expires_at <= at THEN t.last_used_at ELSE at END
     WHERE t.hash = token_hash AND t.revoked_at IS NULL
       -- A closed incubator's tokens fail (api.incubator_close tells the caches).
       AND NOT EXISTS (SELECT 1 FROM incubators c
                        WHERE c.id = t.incubator_id AND c.closed_on IS NOT NULL)
    RETURNING t.id, t.name, t.incubator_id IS NULL,
              (SELECT i.code FROM incubators i WHERE i.id = t.incubator_id),
              floor(extract(epoch FROM t.expires_at))::bigint
$$;

-- A new token's expiry: expires_in_days (1-3650) days from `at`, or never.
CREATE FUNCTION api.token_expiry(at timestamptz, expires_in_days integer) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT at + make_interval(days => expires_in_days)
$$;

-- After a change of an incubator's tokens: its token_expiring alert follows.
-- (PL/pgSQL: api.after_change is defined in a later file.)
CREATE FUNCTION api.tokens_changed(ctx jsonb, incubator bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF incubator IS NOT NULL THEN
        PERFORM api.after_change(ctx, ARRAY[incubator], ARRAY['token_expiring']);
    END IF;
END;
$$;

-- POST /v1/incubators/{code}/tokens, and `incubatord token create` (code null: admin).
-- The daemon made the secret; only its hash arrives here.
CREATE FUNCTION api.token_create(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    t tokens;
    incubator bigint;
    days integer := (args->>'expires_in_days')::integer;
BEGIN
    IF args->>'code' IS NOT NULL THEN
        incubator := api.incubator_writable(args->>'code');
    END IF;
    -- A token name says who approved a payout or made a write: it is unique
    -- among unrevoked tokens (admin tokens among themselves, an incubator's
    -- within it), a rotated one's name being its successor's. Creations take
    -- turns, so two at once cannot both pass.
    PERFORM pg_advisory_xact_lock(api.lock_key('token names'));
    SELECT * INTO t FROM tokens
     WHERE name = args->>'name' AND incubator_id IS NOT DISTINCT FROM incubator
       AND revoked_at IS NULL AND replaced_by IS NULL;
    IF FOUND THEN
        PERFORM api.fail(409, format('%s token %s already has the name "%s"; revoke it or choose '
                                     'another name',
                                     CASE WHEN incubator IS NULL THEN 'admin'
                                          ELSE 'this incubator''s' END, t.id, t.name));
    END IF;
    INSERT INTO tokens (name, incubator_id, hash, created_by, expires_in_days, expires_at)
    VALUES (args->>'name', incubator, decode(substr(args->>'hash', 3), 'hex'),
            ctx->>'token_name', days, api.token_expiry(api.now(ctx), days))
    RETURNING * INTO t;
    PERFORM api.audit(ctx, incubator,
                      format('created %s token %s "%s"%s',
                             CASE WHEN incubator IS NULL THEN 'admin' ELSE 'incubator' END,
                             t.id, t.name,
                             coalesce(format(' expiring at %s', api.ts(t.expires_at)), '')),
                      jsonb_build_object('token_id', t.id, 'name', t.name,
                                         'expires_at', api.ts(t.expires_at)));
    PERFORM api.tokens_changed(ctx, incubator);
    RETURN api.ok(201, api.token_json(t));
END;
$$;

-- POST /v1/tokens/{id}/rotate {"grace_hours"}: a new token of the same name,
-- incubator and expiry rule; the old one keeps working for grace_hours (at
-- most until it would have expired anyway), then expires. Other daemons hear
-- of the old token's new expiry by NOTIFY incubatord_tokens. A revoked token
-- or one rotated before cannot be rotated (409); an expired one can.
CREATE FUNCTION api.token_rotate(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    old tokens;
    t tokens;
    at timestamptz := api.now(ctx);
BEGIN
    SELECT * INTO old FROM tokens WHERE id = (args->>'id')::bigint FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no token %s', args->>'id'));
    END IF;
    IF old.revoked_at IS NOT NULL THEN
        PERFORM api.fail(409, format('token %s was revoked at %s: make a new one instead',
                                     old.id, api.ts(old.revoked_at)));
    END IF;
    IF old.replaced_by IS NOT NULL THEN
        PERFORM api.fail(409, format('token %s was already rotated at %s: its successor is '
                                     'token %s', old.id, api.ts(old.rotated_at),
                                     old.replaced_by));
    END IF;
    IF old.incubator_id IS NOT NULL THEN
        -- A closed incubator gets no new token (409).
        PERFORM api.incubator_writable((SELECT i.code FROM incubators i
                                         WHERE i.id = old.incubator_id));
    END IF;
    INSERT INTO tokens (name, incubator_id, hash, created_by, expires_in_days, expires_at)
    VALUES (old.name, old.incubator_id, decode(substr(args->>'hash', 3), 'hex'),
            ctx->>'token_name', old.expires_in_days,
            api.token_expiry(at, old.expires_in_days))
    RETURNING * INTO t;
    UPDATE tokens
       SET replaced_by = t.id, rotated_at = at,
           expires_at = least(expires_at,
                              at + make_interval(hours => (args->>'grace_hours')::integer))
     WHERE id = old.id
    RETURNING * INTO old;
    PERFORM pg_notify('incubatord_tokens', old.id::text);
    PERFORM api.audit(ctx, old.incubator_id,
                      format('rotated token %s "%s" into token %s; the old one expires at %s',
                             old.id, old.name, t.id, api.ts(old.expires_at)),
                      jsonb_build_object('token_id', old.id, 'new_token_id', t.id,
                                         'grace_hours', (args->>'grace_hours')::integer));
    PERFORM api.tokens_changed(ctx, old.incubator_id);
    RETURN api.ok(201, api.token_json(t));
END;
$$;

-- GET /v1/incubators/{code}/tokens: without secrets, revoked ones included.
CREATE FUNCTION api.token_list(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    incubator bigint := api.incubator_id(args->>'code');
    after bigint := coalesce(api.cursor_id(args->>'cursor'), 0);
    result json;
BEGIN
    SELECT api.page(array_agg(api.token_json(t) ORDER BY t.id),
                    array_agg(t.id::text ORDER BY t.id), (args->>'limit')::int)
      INTO result
      FROM (SELECT * FROM tokens
             WHERE incubator_id = incubator AND id > after
             ORDER BY id LIMIT (args->>'limit')::int + 1) t;
    RETURN api.ok(200, result);
END;
$$;

-- DELETE /v1/tokens/{id}: fails from the next request on; other daemons hear
-- of it by NOTIFY incubatord_tokens. Revoking a revoked token changes nothing.
CREATE FUNCTION api.token_revoke(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    t tokens;
BEGIN
    SELECT * INTO t FROM tokens WHERE id = (args->>'id')::bigint FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no token %s', args->>'id'));
    END IF;
    IF t.revoked_at IS NULL THEN
        UPDATE tokens SET revoked_at = now(), revoked_by = ctx->>'token_name' WHERE id = t.id;
        PERFORM pg_notify('incubatord_tokens', t.id::text);
        PERFORM api.audit(ctx, t.incubator_id, format('revoked token %s "%s"', t.id, t.name),
                          jsonb_build_object('token_id', t.id));
        PERFORM api.tokens_changed(ctx, t.incubator_id);
    END IF;
    RETURN api.ok(204, NULL);
END;
$$;

-- GET /v1/audit: newest first.
CREATE FUNCTION api.audit_list(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    incubator bigint;
    before bigint := api.cursor_id(args->>'cursor');
    result json;
BEGIN
    IF args->>'incubator' IS NOT NULL THEN
        incubator := api.incubator_id(args->>'incubator');
    END IF;
    SELECT api.page(array_agg(item ORDER BY id DESC), array_agg(id::text ORDER BY id DESC),
                    (args->>'limit')::int)
      INTO result
      FROM (SELECT a.id, json_build_object(
                       'id', a.id,
                       'at', api.ts(a.at),
                       'token_name', a.token_name,
                       'method', a.method,
                       'path', a.path,
                       'incubator', (SELECT code FROM incubators WHERE id = a.incubator_id),
                       'summary', a.summary) AS item
              FROM audit_log a
             WHERE (incubator IS NULL OR a.incubator_id = incubator)
               AND (before IS NULL OR a.id < before)
             ORDER BY a.id DESC
             LIMIT (args->>'limit')::int + 1) page;
    RETURN api.ok(200, result);
END;
$$;
