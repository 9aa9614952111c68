-- 010: notification channels, and one delivery per (event, channel).
--
-- A channel is where events go besides syslog and NOTIFY: the signed
-- webhook, a WeCom, DingTalk or Feishu group robot, or a list of e-mail
-- addresses, with a filter saying which events it wants. When an event is
-- written into the outbox, a delivery row is written for every channel whose
-- filter matches, in the same transaction, so each channel is delivered at
-- least once on its own and one failing robot never holds back another.
--
-- The [webhook] of the configuration is the one channel with from_config:
-- the daemons keep its URL and enabled flag in line with their
-- configuration, the API shows it and cannot change it.

CREATE TABLE channels (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    kind            text NOT NULL CHECK (kind IN ('webhook', 'wecom', 'dingtalk', 'feishu',
                                                  'email')),
    url             text CHECK (url ~ '^https?://'),
    -- The signing key (webhook, DingTalk 加签, Feishu 签名校验). Never shown by
    -- the API (secret_set says whether there is one) nor logged.
    secret          text CHECK (length(secret) BETWEEN 1 AND 200),
    recipients      text[] CHECK (cardinality(recipients) BETWEEN 1 AND 50),
    -- The filter: each NULL admits every event.
    min_severity    text NOT NULL DEFAULT 'warning'
                    CHECK (min_severity IN ('info', 'warning', 'critical')),
    rules           text[],
    incubators      text[],
    districts       text[],
    events          text[],
    -- NULL: no limit (the configuration's webhook).
    max_per_minute  integer CHECK (max_per_minute BETWEEN 1 AND 10000),
    enabled         boolean NOT NULL DEFAULT true,
    from_config     boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Delivery: one daemon sends a channel's messages at a time (a lease),
    -- in outbox order; sent_at holds the sends of the last minute (the rate).
    claimed_by      text,
    claimed_until   timestamptz,
    sent_at         timestamptz[] NOT NULL DEFAULT '{}',
    CHECK (from_config OR ((kind = 'email') = (url IS NULL))),
    CHECK ((kind = 'email') = (recipients IS NOT NULL)),
    CHECK (from_config OR kind <> 'webhook' OR secret IS NOT NULL),
    CHECK (kind NOT IN ('wecom', 'email') OR secret IS NULL),
    CHECK (from_config OR max_per_minute IS NOT NULL)
);
CREATE UNIQUE INDEX channels_from_config_key ON channels (from_config) WHERE from_config;

-- The configuration's webhook: disabled until a daemon with a [webhook] url
-- says otherwise.
INSERT INTO channels (name, kind, min_severity, enabled, from_config)
VALUES ('webhook', 'webhook', 'info', false, true);

/*
 * One event for one channel:
 *   pending    to be delivered (again, after a failed attempt: next_attempt_at)
 *   delivered  the channel took it (alone, or in a digest)
 *   failed     given up after the retry window (LOG_ERR)
 */
CREATE TABLE deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id        bigint NOT NULL REFERENCES outbox ON DELETE CASCADE,
    channel_id       bigint NOT NULL REFERENCES channels ON DELETE CASCADE,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_error       text,
    delivered_at     timestamptz,
    digest           boolean NOT NULL DEFAULT false, -- delivered within a digest message
    UNIQUE (channel_id, outbox_id)
);
CREATE INDEX deliveries_pending_idx ON deliveries (channel_id, outbox_id) WHERE state = 'pending';
CREATE INDEX deliveries_channel_idx ON deliveries (channel_id, id);
CREATE INDEX deliveries_outbox_idx ON deliveries (outbox_id);

-- The webhook's state moves from the outbox's columns to deliveries of the
-- configuration's channel.
INSERT INTO deliveries (outbox_id, channel_id, state, attempts, next_attempt_at, last_error,
                        delivered_at, last_attempt_at)
SELECT o.id, c.id, o.webhook_state, o.webhook_attempts, o.webhook_next_attempt_at,
       o.webhook_last_error, o.webhook_delivered_at,
       CASE WHEN o.webhook_attempts > 0 THEN coalesce(o.webhook_delivered_at, now()) END
  FROM outbox o CROSS JOIN channels c
 WHERE c.from_config AND o.webhook_state IN ('pending', 'delivered', 'failed');

DROP INDEX outbox_webhook_pending_idx;
DROP INDEX outbox_webhook_failed_idx;
ALTER TABLE outbox
    DROP COLUMN webhook_state,
    DROP COLUMN webhook_attempts,
    DROP COLUMN webhook_next_attempt_at,
    DROP COLUMN webhook_last_error,
    DROP COLUMN webhook_delivered_at,
    DROP COLUMN webhook_claimed_by,
    DROP COLUMN webhook_claimed_until;
CREATE INDEX deliveries_failed_idx ON deliveries (channel_id) WHERE state = 'failed';
