-- 009: tokens expire and are rotated; an expiring token raises an alert.
--
-- expires_in_days is the token's expiry rule (NULL: it never expires), which
-- a rotation hands on to the token that replaces it; expires_at is when this
-- token stops working (NULL: never). A rotation sets replaced_by and
-- rotated_at on the old token and brings its expires_at forward to the end
-- of the grace period.

ALTER TABLE tokens
    ADD COLUMN expires_in_days integer CHECK (expires_in_days BETWEEN 1 AND 3650),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN replaced_by bigint REFERENCES tokens,
    ADD COLUMN rotated_at timestamptz,
    ADD CHECK ((replaced_by IS NULL) = (rotated_at IS NULL)),
    ADD CHECK (expires_in_days IS NULL OR expires_at IS NOT NULL);

-- The alert sweep looks for tokens that expire soon.
CREATE INDEX tokens_expires_idx ON tokens (expires_at)
    WHERE expires_at IS NOT NULL AND revoked_at IS NULL AND replaced_by IS NULL;

-- An incubator's token that expires within 14 days, or has expired, and was
-- neither revoked nor rotated; its subject is the token's name.
INSERT INTO alert_rules (rule, rank, severity, per_subject, is_share) VALUES
    ('token_expiring', 6, 'info', true, false);
