-- 003: alerts and the transactional outbox of notifications.
--
-- An alert is the life of one rule's condition for one identity (rule,
-- incubator, subject): firing until the condition clears, then resolved. At
-- most one alert per identity is open at a time. Every transition writes an
-- event into the outbox in the same transaction; the daemons deliver the
-- outbox to syslog, PostgreSQL NOTIFY and the webhook, each event at least
-- once, and record per channel what they did.

CREATE TABLE alerts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule              text NOT NULL CHECK (rule IN (
                          'space_share_breach', 'space_share_warning', 'stale_data',
                          'duplicate_enterprise', 'overdue_tenant')),
    incubator_id      bigint NOT NULL REFERENCES incubators,
    -- What the alert is about within the incubator: a credit code
    -- (duplicate_enterprise), a tenant's external_id (overdue_tenant), or
    -- NULL for the incubator as a whole.
    subject           text,
    severity          text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    state             text NOT NULL CHECK (state IN ('firing', 'resolved')),
    value             numeric,   -- the measured figure (share, days, ...), exact
    threshold         numeric,   -- what it was compared with, if anything
    message           text NOT NULL,
    started_at        timestamptz NOT NULL,
    resolved_at       timestamptz,
    last_notified_at  timestamptz NOT NULL, -- the last firing or repeat notification
    acknowledged      boolean NOT NULL DEFAULT false,
    ack_note          text CHECK (length(ack_note) BETWEEN 1 AND 1000),
    acknowledged_by   text,
    acknowledged_at   timestamptz,
    CHECK ((subject IS NULL) = (rule IN ('space_share_breach', 'space_share_warning',
                                         'stale_data'))),
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL)),
    CHECK (acknowledged = (acknowledged_at IS NOT NULL)),
    CHECK (acknowledged = (acknowledged_by IS NOT NULL)),
    CHECK (acknowledged = (ack_note IS NOT NULL))
);
-- The identity of an alert: one open alert per (rule, incubator, subject), a
-- NULL subject being one identity too.
CREATE UNIQUE INDEX alerts_open_key ON alerts (rule, incubator_id, subject) NULLS NOT DISTINCT
    WHERE state = 'firing';
CREATE INDEX alerts_incubator_idx ON alerts (incubator_id, id);
CREATE INDEX alerts_firing_idx ON alerts (id) WHERE state = 'firing';

-- Events to deliver. The payload is the webhook body exactly as signed; the
-- message is the syslog line. Each channel has its own state:
--   pending    to be delivered
--   delivered  done (webhook: a 2xx answer)
--   failed     given up (webhook: no 2xx answer within the retry window)
--   none       not applicable (webhook: none was configured when delivered)
-- Delivery claims rows with a lease (claimed_by, claimed_until), under row
-- locks with SKIP LOCKED, so several daemons deliver each event once; a
-- claim whose daemon died expires and the event is delivered again.
CREATE TABLE outbox (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- delivery order
    event_id                uuid NOT NULL UNIQUE,
    type                    text NOT NULL CHECK (type ~ '^[a-z][a-z_]*\.[a-z][a-z_]*$'),
    payload                 json NOT NULL,
    syslog_level            text NOT NULL CHECK (syslog_level IN (
                                'debug', 'info', 'notice', 'warning', 'err', 'crit', 'alert')),
    message                 text NOT NULL CHECK (message !~ '[\r\n]'),
    occurred_at             timestamptz NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    -- syslog and NOTIFY: delivered together, by the daemon that claims them.
    syslog_state            text NOT NULL DEFAULT 'pending'
                            CHECK (syslog_state IN ('pending', 'delivered', 'failed', 'none')),
    notify_state            text NOT NULL DEFAULT 'pending'
                            CHECK (notify_state IN ('pending', 'delivered', 'failed', 'none')),
    local_delivered_at      timestamptz,
    local_claimed_by        text,
    local_claimed_until     timestamptz,
    -- The webhook: in outbox order, retried with backoff.
    webhook_state           text NOT NULL DEFAULT 'pending'
                            CHECK (webhook_state IN ('pending', 'delivered', 'failed', 'none')),
    webhook_attempts        integer NOT NULL DEFAULT 0 CHECK (webhook_attempts >= 0),
    webhook_next_attempt_at timestamptz NOT NULL DEFAULT now(),
    webhook_last_error      text,
    webhook_delivered_at    timestamptz,
    webhook_claimed_by      text,
    webhook_claimed_until   timestamptz
);
CREATE INDEX outbox_local_pending_idx ON outbox (id)
    WHERE syslog_state = 'pending' OR notify_state = 'pending';
CREATE INDEX outbox_webhook_pending_idx ON outbox (id) WHERE webhook_state = 'pending';
CREATE INDEX outbox_webhook_failed_idx ON outbox (id) WHERE webhook_state = 'failed';
