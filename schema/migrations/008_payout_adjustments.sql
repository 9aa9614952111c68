-- 008: late graduations, revoked graduations and their clawbacks, and
-- rewards paid before the history started (opening balances).
--
-- A line's amount_fen is its own amount (min(base, cap), 0 when vetoed) plus
-- the sum of its adjustments, so it may be negative: money to recover.

ALTER TABLE payout_lines
    DROP CONSTRAINT payout_lines_check,  -- amount_fen BETWEEN 0 AND base_fen
    DROP CONSTRAINT payout_lines_check1, -- NOT vetoed OR amount_fen = 0
    ADD COLUMN adjustments_fen bigint NOT NULL DEFAULT 0,
    ADD CHECK (amount_fen - adjustments_fen BETWEEN 0 AND base_fen),
    ADD CHECK (NOT vetoed OR amount_fen = adjustments_fen);
ALTER TABLE payout_runs DROP CONSTRAINT payout_runs_total_fen_check;

-- A graduation found false: the tenant's graduation fields are cleared, and
-- the revocation keeps what they were, who revoked it and why.
CREATE TABLE graduation_revocations (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           bigint NOT NULL REFERENCES tenants,
    graduated_on        date NOT NULL,
    graduation_basis    text NOT NULL,
    graduation_evidence jsonb,
    reason              text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    revoked_at          timestamptz NOT NULL,
    revoked_by          text NOT NULL
);
CREATE INDEX graduation_revocations_tenant_idx ON graduation_revocations (tenant_id);

-- The adjustments a run carries on its lines: a graduation of an approved
-- period recorded after that approval (late_graduation), or the recovery of
-- what was paid for a revoked graduation (clawback). Only an approved run's
-- adjustments are final; a draft's are recomputed with it.
CREATE TABLE payout_adjustments (
    period        date NOT NULL,
    incubator_id  bigint NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('late_graduation', 'clawback')),
    tenant_id     bigint NOT NULL REFERENCES tenants,
    graduated_on  date NOT NULL, -- the graduation it is about
    for_period    date NOT NULL CHECK (for_period = date_trunc('month', graduated_on)),
    external_id   text NOT NULL,
    credit_code   text NOT NULL,
    high_tech     boolean NOT NULL,
    amount_fen    bigint NOT NULL CHECK (CASE kind WHEN 'clawback' THEN amount_fen < 0
                                                         ELSE amount_fen >= 0 END),
    reason        text,
    PRIMARY KEY (period, kind, tenant_id, graduated_on),
    FOREIGN KEY (period, incubator_id) REFERENCES payout_lines ON DELETE CASCADE,
    CHECK (for_period < period)
);
CREATE INDEX payout_adjustments_tenant_idx ON payout_adjustments (tenant_id, graduated_on);
CREATE TRIGGER payout_adjustments_final BEFORE INSERT OR UPDATE OR DELETE ON payout_adjustments
    FOR EACH ROW EXECUTE FUNCTION payout_is_final();

-- Rewards paid outside this system before its history starts: they count
-- against that year's cap, and the enterprises listed count as rewarded.
CREATE TABLE prior_payouts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incubator_id  bigint NOT NULL REFERENCES incubators,
    year          integer NOT NULL CHECK (year BETWEEN 1900 AND 9999),
    amount_fen    bigint NOT NULL CHECK (amount_fen >= 0),
    graduates     text[] NOT NULL,
    note          text,
    created_at    timestamptz NOT NULL,
    created_by    text NOT NULL
);
CREATE INDEX prior_payouts_incubator_year_idx ON prior_payouts (incubator_id, year);
CREATE INDEX prior_payouts_graduates_idx ON prior_payouts USING gin (graduates);
