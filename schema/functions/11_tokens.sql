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
        'revoked_at', api.ts(t.revoked_at))
$$;

-- The identity behind a token's hash, if it is valid; records its use. Called
-- by the daemon's authentication (not through api.run) on a cache miss.
--
-- revoked_at is tested on the row being updated, not in a subquery: when the
-- UPDATE has to wait for a revocation holding the row, PostgreSQL re-checks
-- the conditions on the committed row (EvalPlanQual) but keeps a subquery's
-- old answer, so a token revoked meanwhile came back as valid (and was
-- cached by the daemon after the revocation's NOTIFY had passed).
CREATE FUNCTION api.token_lookup(token_hash bytea)
RETURNS TABLE (id bigint, name text, admin boolean, incubator text)
LANGUAGE sql AS $$
    UPDATE tokens t SET last_used_at = now()
     WHERE t.hash = token_hash AND t.revoked_at IS NULL
       -- A closed incubator's tokens fail (api.incubator_close tells the caches).
       AND NOT EXISTS (SELECT 1 FROM incubators c
                        WHERE c.id = t.incubator_id AND c.closed_on IS NOT NULL)
    RETURNING t.id, t.name, t.incubator_id IS NULL,
              (SELECT i.code FROM incubators i WHERE i.id = t.incubator_id)
$$;

-- POST /v1/incubators/{code}/tokens, and `incubatord token create` (code null: admin).
-- The daemon made the secret; only its hash arrives here.
CREATE FUNCTION api.token_create(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    t tokens;
    incubator bigint;
BEGIN
    IF args->>'code' IS NOT NULL THEN
        incubator := api.incubator_writable(args->>'code');
    END IF;
    INSERT INTO tokens (name, incubator_id, hash, created_by)
    VALUES (args->>'name', incubator, decode(substr(args->>'hash', 3), 'hex'),
            ctx->>'token_name')
    RETURNING * INTO t;
    PERFORM api.audit(ctx, incubator,
                      format('created %s token %s "%s"',
                             CASE WHEN incubator IS NULL THEN 'admin' ELSE 'incubator' END,
                             t.id, t.name),
                      jsonb_build_object('token_id', t.id, 'name', t.name));
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
