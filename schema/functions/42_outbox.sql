-- The outbox: events written in the same transaction as the change they
-- report, one delivery row per channel that takes them, and the functions
-- the daemon's outbox module (daemon/outbox.c) calls to deliver both:
-- syslog and NOTIFY incubatord_events per event, and each channel's
-- deliveries, claimed with a lease per channel, in outbox order, at most
-- max_per_minute messages a minute, the excess in one digest.

-- ---- writing events ----

/*
 * Writes an event into the outbox, in the caller's transaction, with one
 * delivery for each channel whose filter takes it, and wakes the daemons'
 * outboxes (NOTIFY incubatord_outbox, sent at commit). Returns the event id.
 * Any module may emit events this way, e.g. a payout run:
 *   api.emit(ctx, 'payout_run.computed', json_build_object('period', ...),
 *            'notice', format('event=payout_run.computed period=%s ...', ...))
 * data is the webhook's "data" (an alert object's severity, rule and
 * incubator are what the channels' filters look at); message is the syslog
 * line (key=value pairs, one line), to which " event_id=<id>" is appended;
 * syslog_level is a syslog level name (alert, warning, notice, ...).
 */
CREATE FUNCTION api.emit(ctx jsonb, type text, data json, syslog_level text, message text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    event uuid := gen_random_uuid();
    at timestamptz := api.now(ctx);
    row_id bigint;
    district text;
BEGIN
    INSERT INTO outbox (event_id, type, payload, syslog_level, message, occurred_at)
    VALUES (event, type,
            json_build_object('id', event, 'type', type, 'occurred_at', api.ts(at), 'data', data),
            syslog_level, message || ' event_id=' || event, at)
    RETURNING id INTO row_id;
    IF data->>'incubator' IS NOT NULL THEN
        SELECT i.district INTO district FROM incubators i WHERE i.code = data->>'incubator';
    END IF;
    INSERT INTO deliveries (outbox_id, channel_id)
    SELECT row_id, c.id FROM channels c
     WHERE api.channel_admits(c, type, data->>'severity', data->>'rule', data->>'incubator',
                              district);
    PERFORM pg_notify('incubatord_outbox', '');
    RETURN event;
END;
$$;

-- ---- syslog and NOTIFY: called by the daemon's outbox, not through api.run ----

/*
 * Claims up to max_events events whose syslog line or NOTIFY is pending and
 * that no live lease holds, for lease_ms; SKIP LOCKED lets several daemons
 * claim at once without waiting on each other or taking the same event.
 */
CREATE FUNCTION api.outbox_claim_local(claimer text, lease_ms integer, max_events integer)
RETURNS TABLE (id bigint, event_id uuid, syslog_level text, message text,
               syslog_pending boolean, notify_pending boolean)
LANGUAGE sql AS $$
    WITH claimed AS (
        UPDATE outbox o
           SET local_claimed_by = claimer,
               local_claimed_until = now() + make_interval(secs => lease_ms / 1000.0)
          -- FOR UPDATE waits rather than SKIP LOCKED: skipping a row another
          -- daemon holds for a moment would log that event after later ones. A
          -- row another daemon claimed meanwhile is re-checked after the wait
          -- and left out by its lease.
          FROM (SELECT c.id FROM outbox c
                 WHERE (c.syslog_state = 'pending' OR c.notify_state = 'pending')
                   AND (c.local_claimed_until IS NULL OR c.local_claimed_until <= now())
                 ORDER BY c.id
                 LIMIT max_events
                   FOR UPDATE) c
         WHERE o.id = c.id
        RETURNING o.id, o.event_id, o.syslog_level, o.message, o.syslog_state = 'pending',
                  o.notify_state = 'pending')
    SELECT * FROM claimed ORDER BY id
$$;

-- The claimed events were written to syslog: records it and sends their NOTIFY
-- incubatord_events (at commit, so a NOTIFY means a recorded delivery).
CREATE FUNCTION api.outbox_local_done(claimer text, ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    e record;
    n integer := 0;
BEGIN
    FOR e IN SELECT o.id, o.event_id, o.notify_state FROM outbox o
              WHERE o.id = ANY (ids) ORDER BY o.id FOR UPDATE LOOP
        IF e.notify_state = 'pending' THEN
            PERFORM pg_notify('incubatord_events', e.event_id::text);
        END IF;
        n := n + 1;
    END LOOP;
    UPDATE outbox o
       SET syslog_state = CASE WHEN o.syslog_state = 'pending' THEN 'delivered'
                               ELSE o.syslog_state END,
           notify_state = CASE WHEN o.notify_state = 'pending' THEN 'delivered'
                               ELSE o.notify_state END,
           local_delivered_at = coalesce(o.local_delivered_at, now()),
           local_claimed_by = NULL, local_claimed_until = NULL
     WHERE o.id = ANY (ids);
    RETURN n;
END;
$$;

-- ---- the channels: called by the daemon's outbox ----

/*
 * Claims the next message of up to max_channels channels that no live lease
 * holds, each for lease_ms (the configuration's webhook: webhook_lease_ms),
 * leaving out the channels the caller still has a message of in flight (its
 * lease may have run out under load: the channel must not get two at once). A channel's deliveries go in outbox order: its
 * oldest pending one (the head) must be due (retried after a failure only
 * when its backoff has passed), and the channel must have sent fewer than
 * max_per_minute messages in the last minute. With one message left in the
 * minute and more events waiting, the message is a digest of up to
 * digest_max of them (webhooks always send one event). One row per claimed
 * channel (items: [{"id": delivery, "payload": text, "incubator_name"}]), then one row with channel_id NULL whose wait_ms says when the
 * earliest channel that could not be claimed becomes due (NULL: none).
 */
CREATE FUNCTION api.outbox_claim_channels(claimer text, lease_ms integer, max_channels integer,
                                          digest_max integer, webhook_lease_ms integer,
                                          in_flight bigint[] DEFAULT '{}')
RETURNS TABLE (channel_id bigint, kind text, name text, url text, secret text,
               recipients json, from_config boolean, items json, attempts integer,
               wait_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
    candidate bigint;
    c channels;
    head deliveries;
    recent timestamptz[];
    due timestamptz;
    earliest timestamptz;
    take integer;
    claimed integer := 0;
BEGIN
    -- Candidates are read without locks and locked one by one: a FOR UPDATE
    -- loop would lock the rows it prefetches (ten at a time), and another
    -- daemon would skip channels this one never claims.
    FOR candidate IN SELECT ch.id FROM channels ch
                      WHERE ch.enabled AND (ch.claimed_until IS NULL OR ch.claimed_until <= now())
                        AND ch.id <> ALL (in_flight)
                        AND EXISTS (SELECT 1 FROM deliveries d
                                     WHERE d.channel_id = ch.id AND d.state = 'pending')
                      ORDER BY ch.id LOOP
        SELECT * INTO c FROM channels ch
         WHERE ch.id = candidate AND ch.enabled
           AND (ch.claimed_until IS NULL OR ch.claimed_until <= now())
           FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        SELECT * INTO head FROM deliveries d
         WHERE d.channel_id = c.id AND d.state = 'pending' ORDER BY d.outbox_id LIMIT 1;
        recent := ARRAY(SELECT t FROM unnest(c.sent_at) t WHERE t > now() - interval '1 minute'
                         ORDER BY t);
        due := head.next_attempt_at;
        IF c.max_per_minute IS NOT NULL AND cardinality(recent) >= c.max_per_minute THEN
            due := greatest(due, recent[cardinality(recent) - c.max_per_minute + 1]
                                 + interval '1 minute');
        END IF;
        IF due > now() THEN
            earliest := least(earliest, due);
            CONTINUE;
        END IF;
        take := CASE WHEN c.kind <> 'webhook' AND c.max_per_minute IS NOT NULL
                          AND cardinality(recent) >= c.max_per_minute - 1
                     THEN digest_max ELSE 1 END;
        UPDATE channels SET claimed_by = claimer,
                            claimed_until = now() + make_interval(secs =>
                                CASE WHEN c.from_config THEN webhook_lease_ms ELSE lease_ms END
                                / 1000.0)
         WHERE id = c.id;
        RETURN QUERY
        SELECT c.id, c.kind, c.name, c.url, c.secret, array_to_json(c.recipients),
               c.from_config,
               -- The payload as text: the webhook signs and sends it unchanged.
               json_agg(json_build_object('id', p.id, 'payload', o.payload::text,
                                          'incubator_name', i.name) ORDER BY p.outbox_id),
               head.attempts, NULL::bigint
          FROM (SELECT d.id, d.outbox_id FROM deliveries d
                 WHERE d.channel_id = c.id AND d.state = 'pending'
                 ORDER BY d.outbox_id LIMIT take) p
          JOIN outbox o ON o.id = p.outbox_id
          LEFT JOIN incubators i ON i.code = o.payload->'data'->>'incubator';
        claimed := claimed + 1;
        EXIT WHEN claimed >= max_channels;
    END LOOP;
    RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
                        NULL::json, NULL::boolean, NULL::json, NULL::integer,
                        ceil(extract(epoch FROM earliest - now()) * 1000)::bigint;
END;
$$;

/*
 * Records one message's attempt for the deliveries it carried (ids) and
 * gives the channel's lease back. sent: the message went out (it counts
 * against the rate, whatever the answer). ok: the channel took it. A failed
 * attempt is retried retry_ms later (the daemon's backoff), but never later
 * than retry_for_s after the event was written; an attempt that fails at or
 * after that moment gives the delivery up ('failed'). Returns how many
 * deliveries were delivered and how many were given up now.
 */
CREATE FUNCTION api.outbox_channel_done(claimer text, channel bigint, ids bigint[], sent boolean,
                                        ok boolean, error text, retry_ms integer,
                                        retry_for_s integer)
RETURNS TABLE (delivered integer, given_up integer, attempts integer)
LANGUAGE plpgsql AS $$
DECLARE
    n_delivered integer := 0;
    n_failed integer := 0;
    n_attempts integer;
BEGIN
    IF sent THEN
        -- Only the sends that can still count: those of the last minute, and of
        -- them at most the newest max_per_minute.
        UPDATE channels c
           SET sent_at = ARRAY(SELECT t FROM (SELECT t FROM unnest(c.sent_at) t
                                               WHERE t > now() - interval '1 minute'
                                               ORDER BY t DESC
                                               LIMIT coalesce(c.max_per_minute, 0)) k
                                ORDER BY t)
                         || CASE WHEN c.max_per_minute IS NULL THEN '{}'::timestamptz[]
                                 ELSE ARRAY[now()] END
         WHERE c.id = channel;
    END IF;
    UPDATE channels c SET claimed_by = NULL, claimed_until = NULL
     WHERE c.id = channel AND c.claimed_by = claimer;
    IF ok THEN
        UPDATE deliveries d
           SET state = 'delivered', attempts = d.attempts + 1, last_attempt_at = now(),
               delivered_at = now(), last_error = NULL, digest = cardinality(ids) > 1
         WHERE d.id = ANY (ids) AND d.state = 'pending';
        GET DIAGNOSTICS n_delivered = ROW_COUNT;
    ELSE
        WITH failed AS (
            UPDATE deliveries d
               SET attempts = d.attempts + 1, last_attempt_at = now(),
                   last_error = left(error, 1000),
                   state = CASE WHEN now() >= o.created_at + make_interval(secs => retry_for_s)
                                THEN 'failed' ELSE 'pending' END,
                   next_attempt_at = least(now() + make_interval(secs => retry_ms / 1000.0),
                                           o.created_at + make_interval(secs => retry_for_s))
              FROM outbox o
             WHERE d.id = ANY (ids) AND d.state = 'pending' AND o.id = d.outbox_id
            RETURNING d.state)
        SELECT count(*) FILTER (WHERE state = 'failed') INTO n_failed FROM failed;
    END IF;
    SELECT max(d.attempts) INTO n_attempts FROM deliveries d WHERE d.id = ANY (ids);
    RETURN QUERY SELECT n_delivered, n_failed, coalesce(n_attempts, 0);
END;
$$;

-- The outbox's figures for /metrics: what waits, per channel.
CREATE FUNCTION api.outbox_metrics() RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'undelivered', json_build_object(
            'syslog', (SELECT count(*) FROM outbox WHERE syslog_state = 'pending'),
            'notify', (SELECT count(*) FROM outbox WHERE notify_state = 'pending'),
            'webhook', (SELECT count(*) FROM deliveries d JOIN channels c ON c.id = d.channel_id
                         WHERE c.from_config AND d.state = 'pending')),
        'webhook_failed', (SELECT count(*) FROM deliveries d JOIN channels c ON c.id = d.channel_id
                            WHERE c.from_config AND d.state = 'failed'),
        'channels', (SELECT coalesce(json_agg(json_build_object(
                                'channel', c.name,
                                'pending', (SELECT count(*) FROM deliveries d
                                             WHERE d.channel_id = c.id AND d.state = 'pending'),
                                'failed', (SELECT count(*) FROM deliveries d
                                            WHERE d.channel_id = c.id AND d.state = 'failed'))
                                ORDER BY c.id), '[]')
                       FROM channels c WHERE c.enabled OR NOT c.from_config),
        'oldest_undelivered_s', coalesce(extract(epoch FROM now() - least(
            (SELECT min(created_at) FROM outbox
              WHERE syslog_state = 'pending' OR notify_state = 'pending'),
            (SELECT min(o.created_at) FROM deliveries d JOIN outbox o ON o.id = d.outbox_id
              WHERE d.state = 'pending')))::bigint, 0))
$$;
