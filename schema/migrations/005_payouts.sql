-- 005: monthly reward payout runs, their lines and the graduates behind them.
-- A run is a draft until approved; an approved run, its lines and its
-- graduates never change again, and the history they were computed from is
-- frozen up to the end of the period (enforced by the API functions).

CREATE TABLE payout_runs (
    period          date PRIMARY KEY CHECK (period = date_trunc('month', period)),
    status          text NOT NULL CHECK (status IN ('draft', 'approved')),
    policy_version  integer NOT NULL REFERENCES policies,
    computed_at     timestamptz NOT NULL,
    computed_by     text NOT NULL,
    approved_at     timestamptz,
    approved_by     text,
    total_fen       bigint NOT NULL CHECK (total_fen >= 0),
    CHECK ((status = 'approved') = (approved_at IS NOT NULL AND approved_by IS NOT NULL))
);

-- One line per incubator and run.
CREATE TABLE payout_lines (
    period              date NOT NULL REFERENCES payout_runs ON DELETE CASCADE,
    incubator_id        bigint NOT NULL REFERENCES incubators,
    days_with_data      integer NOT NULL CHECK (days_with_data >= 0),
    share_average       numeric, -- exact; NULL when no day of the period had data
    vetoed              boolean NOT NULL,
    eligible_graduates  integer NOT NULL CHECK (eligible_graduates >= 0),
    high_tech_graduates integer NOT NULL CHECK (high_tech_graduates >= 0),
    base_fen            bigint NOT NULL CHECK (base_fen >= 0),
    cap_remaining_fen   bigint NOT NULL CHECK (cap_remaining_fen >= 0),
    amount_fen          bigint NOT NULL CHECK (amount_fen >= 0 AND amount_fen <= base_fen),
    reason              text CHECK (reason IN ('no_data', 'veto', 'cap')),
    PRIMARY KEY (period, incubator_id),
    CHECK (NOT vetoed OR amount_fen = 0)
);

-- Every graduate of the period, eligible or not, with the reason.
CREATE TABLE payout_graduates (
    period        date NOT NULL,
    incubator_id  bigint NOT NULL,
    tenant_id     bigint NOT NULL REFERENCES tenants,
    external_id   text NOT NULL,
    credit_code   text NOT NULL,
    graduated_on  date NOT NULL,
    high_tech     boolean NOT NULL,
    eligible      boolean NOT NULL,
    reason        text CHECK (reason IN ('not_tech', 'entry_age', 'already_rewarded')),
    PRIMARY KEY (period, tenant_id),
    FOREIGN KEY (period, incubator_id) REFERENCES payout_lines ON DELETE CASCADE,
    CHECK (eligible = (reason IS NULL))
);
CREATE INDEX payout_graduates_credit_code_idx ON payout_graduates (credit_code) WHERE eligible;

-- An approved run is final: no statement may change it or what it contains.
CREATE FUNCTION payout_is_final() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p date := CASE WHEN TG_OP = 'INSERT' THEN NEW.period ELSE OLD.period END;
BEGIN
    IF TG_TABLE_NAME = 'payout_runs' THEN
        IF TG_OP <> 'INSERT' AND OLD.status = 'approved' THEN
            RAISE EXCEPTION 'payout run % is approved and final', to_char(p, 'YYYY-MM');
        END IF;
    ELSIF EXISTS (SELECT 1 FROM payout_runs r WHERE r.period = p AND r.status = 'approved') THEN
        RAISE EXCEPTION 'payout run % is approved and final', to_char(p, 'YYYY-MM');
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
CREATE TRIGGER payout_runs_final BEFORE UPDATE OR DELETE ON payout_runs
    FOR EACH ROW EXECUTE FUNCTION payout_is_final();
CREATE TRIGGER payout_lines_final BEFORE INSERT OR UPDATE OR DELETE ON payout_lines
    FOR EACH ROW EXECUTE FUNCTION payout_is_final();
CREATE TRIGGER payout_graduates_final BEFORE INSERT OR UPDATE OR DELETE ON payout_graduates
    FOR EACH ROW EXECUTE FUNCTION payout_is_final();
