-- Notification channels: the API's functions (POST/GET/PATCH/DELETE
-- /v1/channels, the deliveries of one), the filter that says which events a
-- channel takes, and the configuration's webhook kept in line with the
-- daemons' [webhook]. Delivery itself is the outbox's (42_outbox.sql).

-- ---- the filter ----

CREATE FUNCTION api.severity_rank(severity text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'info' THEN 1 END
$$;

/*
 * Whether a channel takes an event. Each filter that is set admits only the
 * events that have a matching value: an event without an incubator (a payout
 * run) passes no incubators or districts filter, one without a rule no rules
 * filter. min_severity admits every event without a severity (payout runs).
 */
CREATE FUNCTION api.channel_admits(c channels, type text, severity text, rule text,
                                   incubator text, district text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT c.enabled
       AND (c.events IS NULL OR coalesce(type = ANY (c.events), false))
       AND (severity IS NULL OR api.severity_rank(severity) >= api.severity_rank(c.min_severity))
       AND (c.rules IS NULL OR coalesce(rule = ANY (c.rules), false))
       AND (c.incubators IS NULL OR coalesce(incubator = ANY (c.incubators), false))
       AND (c.districts IS NULL OR coalesce(district = ANY (c.districts), false))
$$;

-- ---- as the API shows them ----

/*
 * A URL with its key or token masked: every query value (access_token=,
 * key=, ...) and Feishu's hook token in the path.
 */
CREATE FUNCTION api.channel_masked_url(url text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(regexp_replace(url, '([?&][^=&#]+=)[^&#]*', '\1****', 'g'),
                          '(/hook/)[^/?#]+', '\1****')
$$;

CREATE FUNCTION api.channel_json(c channels) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', c.id,
        'name', c.name,
        'kind', c.kind,
        'url', api.channel_masked_url(c.url),
        'secret_set', c.secret IS NOT NULL,
        'to', c.recipients,
        'min_severity', c.min_severity,
        'rules', c.rules,
        'incubators', c.incubators,
        'districts', c.districts,
        'events', c.events,
        'max_per_minute', c.max_per_minute,
        'enabled', c.enabled,
        'source', CASE WHEN c.from_config THEN 'config' ELSE 'api' END,
        'created_at', api.ts(c.created_at),
        'updated_at', api.ts(c.updated_at))
$$;

-- The default rate of a kind: the robots' own limit (20 a minute), else 60.
CREATE FUNCTION api.channel_default_rate(kind text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN kind IN ('wecom', 'dingtalk', 'feishu') THEN 20 ELSE 60 END
$$;

/*
 * What the kind of a channel needs, checked on the whole row (a PATCH may
 * change the kind or one field): fails with 422 naming the fields.
 */
CREATE FUNCTION api.channel_check(c channels) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    errors json[] := '{}';
    wanted text;
    i integer := 0;
BEGIN
    IF c.kind = 'email' THEN
        IF c.recipients IS NULL THEN
            errors := errors || json_build_object('field', 'to', 'message',
                                                  'required for kind email: 1-50 addresses');
        END IF;
        IF c.url IS NOT NULL THEN
            errors := errors || json_build_object('field', 'url', 'message',
                'not taken by kind email: mail goes through the [smtp] server');
        END IF;
    ELSE
        IF c.url IS NULL THEN
            errors := errors || json_build_object('field', 'url', 'message',
                                                  format('required for kind %s', c.kind));
        END IF;
        IF c.recipients IS NOT NULL THEN
            errors := errors || json_build_object('field', 'to', 'message',
                                                  'taken by kind email only');
        END IF;
    END IF;
    IF c.kind = 'webhook' AND c.secret IS NULL THEN
        errors := errors || json_build_object('field', 'secret', 'message',
                                              'required for kind webhook (the signature key)');
    END IF;
    IF c.kind IN ('wecom', 'email') AND c.secret IS NOT NULL THEN
        errors := errors || json_build_object('field', 'secret', 'message',
                                              format('not taken by kind %s', c.kind));
    END IF;
    FOREACH wanted IN ARRAY coalesce(c.rules, '{}') LOOP
        IF NOT EXISTS (SELECT 1 FROM alert_rules r WHERE r.rule = wanted) THEN
            errors := errors || json_build_object('field', format('rules[%s]', i),
                'message', format('must be one of: %s',
                                  (SELECT string_agg(r.rule, ', ' ORDER BY r.rank)
                                     FROM alert_rules r)));
        END IF;
        i := i + 1;
    END LOOP;
    i := 0;
    FOREACH wanted IN ARRAY coalesce(c.incubators, '{}') LOOP
        IF NOT EXISTS (SELECT 1 FROM incubators x WHERE x.code = wanted) THEN
            errors := errors || json_build_object('field', format('incubators[%s]', i),
                                                  'message', format('no incubator %s', wanted));
        END IF;
        i := i + 1;
    END LOOP;
    IF cardinality(errors) > 0 THEN
        PERFORM api.fail(422, format('%s fields are invalid', cardinality(errors)),
                         array_to_json(errors));
    END IF;
END;
$$;

CREATE FUNCTION api.channel_text_array(j jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN j IS NULL OR jsonb_typeof(j) = 'null' THEN NULL
                ELSE ARRAY(SELECT jsonb_array_elements_text(j)) END
$$;

-- The channel of {id}, locked, to change it: 404 without one, 409 for the
-- configuration's webhook, which only the configuration changes.
CREATE FUNCTION api.channel_editable(args jsonb) RETURNS channels
LANGUAGE plpgsql AS $$
DECLARE
    c channels;
BEGIN
    SELECT * INTO c FROM channels WHERE id = (args->>'id')::bigint FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no channel %s', args->>'id'));
    END IF;
    IF c.from_config THEN
        PERFORM api.fail(409, 'this channel is the [webhook] of the configuration: change it '
                              'there (and reload)');
    END IF;
    RETURN c;
END;
$$;

CREATE FUNCTION api.channel_name_taken(name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM api.fail(409, format('a channel named %s exists already', name));
END;
$$;

-- ---- the API ----

-- POST /v1/channels
CREATE FUNCTION api.channel_create(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    c channels;
BEGIN
    c.name := args->>'name';
    c.kind := args->>'kind';
    c.url := args->>'url';
    c.secret := args->>'secret';
    c.recipients := api.channel_text_array(args->'to');
    c.min_severity := coalesce(args->>'min_severity', 'warning');
    c.rules := api.channel_text_array(args->'rules');
    c.incubators := api.channel_text_array(args->'incubators');
    c.districts := api.channel_text_array(args->'districts');
    c.events := api.channel_text_array(args->'events');
    c.max_per_minute := coalesce((args->>'max_per_minute')::integer,
                                 api.channel_default_rate(c.kind));
    c.enabled := coalesce((args->>'enabled')::boolean, true);
    PERFORM api.channel_check(c);
    IF EXISTS (SELECT 1 FROM channels x WHERE x.name = c.name) THEN
        PERFORM api.channel_name_taken(c.name);
    END IF;
    INSERT INTO channels (name, kind, url, secret, recipients, min_severity, rules, incubators,
                          districts, events, max_per_minute, enabled)
    VALUES (c.name, c.kind, c.url, c.secret, c.recipients, c.min_severity, c.rules,
            c.incubators, c.districts, c.events, c.max_per_minute, c.enabled)
    RETURNING * INTO c;
    PERFORM api.audit(ctx, NULL, format('created channel %s (%s)', c.name, c.kind),
                      jsonb_build_object('channel_id', c.id));
    RETURN api.ok(201, api.channel_json(c), '/v1/channels/' || c.id);
END;
$$;

-- GET /v1/channels
CREATE FUNCTION api.channel_list(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    after bigint := coalesce(api.cursor_id(args->>'cursor'), 0);
    result json;
BEGIN
    SELECT api.page(array_agg(api.channel_json(c) ORDER BY c.id),
                    array_agg(c.id::text ORDER BY c.id), (args->>'limit')::int)
      INTO result
      FROM (SELECT * FROM channels WHERE id > after
             ORDER BY id LIMIT (args->>'limit')::int + 1) c;
    RETURN api.ok(200, result);
END;
$$;

-- GET /v1/channels/{id}
CREATE FUNCTION api.channel_get(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c channels;
BEGIN
    SELECT * INTO c FROM channels WHERE id = (args->>'id')::bigint;
    IF NOT FOUND THEN
        PERFORM api.fail(404, format('no channel %s', args->>'id'));
    END IF;
    RETURN api.ok(200, api.channel_json(c));
END;
$$;

-- PATCH /v1/channels/{id}: any field; absent fields stay, null clears.
CREATE FUNCTION api.channel_patch(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    c channels := api.channel_editable(args);
BEGIN
    IF args ? 'name' THEN c.name := args->>'name'; END IF;
    IF args ? 'kind' THEN c.kind := args->>'kind'; END IF;
    IF args ? 'url' THEN c.url := args->>'url'; END IF;
    IF args ? 'secret' THEN c.secret := args->>'secret'; END IF;
    IF args ? 'to' THEN c.recipients := api.channel_text_array(args->'to'); END IF;
    IF args ? 'min_severity' THEN
        c.min_severity := coalesce(args->>'min_severity', 'warning');
    END IF;
    IF args ? 'rules' THEN c.rules := api.channel_text_array(args->'rules'); END IF;
    IF args ? 'incubators' THEN c.incubators := api.channel_text_array(args->'incubators'); END IF;
    IF args ? 'districts' THEN c.districts := api.channel_text_array(args->'districts'); END IF;
    IF args ? 'events' THEN c.events := api.channel_text_array(args->'events'); END IF;
    IF args ? 'max_per_minute' THEN
        c.max_per_minute := coalesce((args->>'max_per_minute')::integer,
                                     api.channel_default_rate(c.kind));
    END IF;
    IF args ? 'enabled' THEN c.enabled := coalesce((args->>'enabled')::boolean, true); END IF;
    PERFORM api.channel_check(c);
    IF EXISTS (SELECT 1 FROM channels x WHERE x.name = c.name AND x.id <> c.id) THEN
        PERFORM api.channel_name_taken(c.name);
    END IF;
    UPDATE channels SET name = c.name, kind = c.kind, url = c.url, secret = c.secret,
                        recipients = c.recipients, min_severity = c.min_severity,
                        rules = c.rules, incubators = c.incubators, districts = c.districts,
                        events = c.events, max_per_minute = c.max_per_minute,
                        enabled = c.enabled, updated_at = now()
     WHERE id = c.id
    RETURNING * INTO c;
    PERFORM api.audit(ctx, NULL, format('changed channel %s (%s)', c.name,
                                        (SELECT string_agg(k, ', ' ORDER BY k)
                                           FROM jsonb_object_keys(args - 'id') k)),
                      jsonb_build_object('channel_id', c.id));
    RETURN api.ok(200, api.channel_json(c));
END;
$$;

-- DELETE /v1/channels/{id}: its pending deliveries go with it.
CREATE FUNCTION api.channel_delete(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql AS $$
DECLARE
    c channels := api.channel_editable(args);
BEGIN
    DELETE FROM channels WHERE id = c.id;
    PERFORM api.audit(ctx, NULL, format('deleted channel %s (%s)', c.name, c.kind),
                      jsonb_build_object('channel_id', c.id));
    RETURN api.ok(204, NULL);
END;
$$;

-- GET /v1/channels/{id}/deliveries: newest first.
CREATE FUNCTION api.channel_deliveries(ctx jsonb, args jsonb) RETURNS api.reply
LANGUAGE plpgsql STABLE AS $$
DECLARE
    before bigint := api.cursor_id(args->>'cursor');
    result json;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM channels WHERE id = (args->>'id')::bigint) THEN
        PERFORM api.fail(404, format('no channel %s', args->>'id'));
    END IF;
    SELECT api.page(array_agg(json_build_object(
                        'event_id', o.event_id,
                        'type', o.type,
                        'state', d.state,
                        'attempts', d.attempts,
                        'last_attempt_at', api.ts(d.last_attempt_at),
                        'last_error', d.last_error,
                        'digest', d.digest) ORDER BY d.id DESC),
                    array_agg(d.id::text ORDER BY d.id DESC), (args->>'limit')::int)
      INTO result
      FROM (SELECT * FROM deliveries x
             WHERE x.channel_id = (args->>'id')::bigint AND (before IS NULL OR x.id < before)
             ORDER BY x.id DESC LIMIT (args->>'limit')::int + 1) d
      JOIN outbox o ON o.id = d.outbox_id;
    RETURN api.ok(200, result);
END;
$$;

-- ---- called by the daemon ----

/*
 * POST /v1/channels/{id}/test, first half: what the daemon needs to send the
 * test message itself (secrets included: this never leaves the daemon). NULL
 * when there is no such channel.
 */
CREATE FUNCTION api.channel_target(id bigint) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', c.id, 'name', c.name, 'kind', c.kind, 'url', c.url,
                             'secret', c.secret, 'to', c.recipients,
                             'from_config', c.from_config, 'enabled', c.enabled)
      FROM channels c WHERE c.id = channel_target.id
$$;

/*
 * The daemon's [webhook]: its URL (empty: none) becomes the configuration
 * channel's, which is enabled exactly when there is one. Events written
 * while it is disabled get no webhook delivery.
 */
CREATE FUNCTION api.channel_config_sync(url text) RETURNS void
LANGUAGE sql AS $$
    UPDATE channels SET url = nullif(channel_config_sync.url, ''),
                        enabled = coalesce(channel_config_sync.url, '') <> '',
                        updated_at = now()
     WHERE from_config
       AND (channels.url IS DISTINCT FROM nullif(channel_config_sync.url, '')
            OR channels.enabled <> (coalesce(channel_config_sync.url, '') <> ''))
$$;
