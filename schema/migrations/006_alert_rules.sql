-- 006: the alert rules in one list. The alerts' constraints, the API's
-- functions (schema/functions/50_alerts.sql) and the /metrics gauges read
-- this table; the daemon's query check of GET /v1/alerts?rule= and the
-- OpenAPI enum are compared with it by tests/integration/test_schema.py.
-- A new rule is one row here (and its observation in api.alert_observations).

CREATE TABLE alert_rules (
    rule         text PRIMARY KEY,
    rank         integer NOT NULL UNIQUE, -- the worst first: the order of one change's new alerts
    severity     text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    -- About a subject within the incubator (a credit code, a tenant's
    -- external_id) rather than the incubator as a whole.
    per_subject  boolean NOT NULL,
    -- Its value is a space share (shown rounded to 4 decimals).
    is_share     boolean NOT NULL,
    UNIQUE (rule, severity, per_subject)
);

INSERT INTO alert_rules (rule, rank, severity, per_subject, is_share) VALUES
    ('space_share_breach',   1, 'critical', false, true),
    ('space_share_warning',  2, 'warning',  false, true),
    ('stale_data',           3, 'warning',  false, false),
    ('duplicate_enterprise', 4, 'warning',  true,  false),
    ('overdue_tenant',       5, 'info',     true,  false);

-- An alert's rule, severity and subject agree with the list: one foreign key
-- instead of the two lists of rule names in 003's checks.
ALTER TABLE alerts
    ADD COLUMN per_subject boolean GENERATED ALWAYS AS (subject IS NOT NULL) STORED,
    DROP CONSTRAINT alerts_rule_check,
    DROP CONSTRAINT alerts_check,
    ADD CONSTRAINT alerts_rule_fkey FOREIGN KEY (rule, severity, per_subject)
        REFERENCES alert_rules (rule, severity, per_subject);
