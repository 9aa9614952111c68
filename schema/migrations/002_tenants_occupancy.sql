-- 002: the versioned policy, tenants and their revenues, occupancy snapshots
-- and the occupancy history they produce.

-- Business policy is data, not configuration: every figure for a month uses the
-- version in force for that month, and a payout records the version it used.
CREATE TABLE policies (
    version                         integer PRIMARY KEY,
    effective_from                  date NOT NULL
                                    CHECK (effective_from = date_trunc('month', effective_from)),
    veto_threshold                  numeric(5, 4) NOT NULL
                                    CHECK (veto_threshold > 0 AND veto_threshold <= 1),
    warning_margin                  numeric(5, 4) NOT NULL
                                    CHECK (warning_margin >= 0 AND warning_margin < 1),
    reward_per_graduate_fen         bigint NOT NULL CHECK (reward_per_graduate_fen >= 0),
    high_tech_bonus_fen             bigint NOT NULL CHECK (high_tech_bonus_fen >= 0),
    annual_cap_fen                  bigint NOT NULL CHECK (annual_cap_fen >= 0),
    incubation_limit_months         integer NOT NULL
                                    CHECK (incubation_limit_months BETWEEN 1 AND 240),
    extended_limit_months           integer NOT NULL
                                    CHECK (extended_limit_months BETWEEN 1 AND 240),
    extended_fields                 text[] NOT NULL,
    entry_max_age_months            integer NOT NULL
                                    CHECK (entry_max_age_months BETWEEN 0 AND 1200),
    graduation_investment_min_fen   bigint NOT NULL CHECK (graduation_investment_min_fen >= 0),
    graduation_revenue_2y_min_fen   bigint NOT NULL CHECK (graduation_revenue_2y_min_fen >= 0),
    stale_after_days                integer NOT NULL CHECK (stale_after_days BETWEEN 1 AND 3650),
    repeat_hours                    integer NOT NULL CHECK (repeat_hours BETWEEN 1 AND 8760),
    plan                            jsonb NOT NULL,
    created_at                      timestamptz NOT NULL DEFAULT now(),
    created_by                      text NOT NULL
);
CREATE INDEX policies_effective_idx ON policies (effective_from, version);

-- Version 1: the defaults of API.md, in force from the beginning of time.
INSERT INTO policies VALUES (
    1, '1900-01-01', 0.50, 0.05, 5000000, 2000000, 100000000, 48, 60,
    ARRAY['biomedicine', 'modern_agriculture', 'integrated_circuit'], 24,
    500000000, 1000000000, 35, 24,
    '{"from": "2015-01-01", "to": "2017-12-31",
      "targets": {"incubators": 60, "new_tech_enterprises": 1000, "revenue_over_5m": 600,
                  "revenue_over_20m": 100, "listed": 30, "new_high_tech": 120}}',
    now(), 'schema');

CREATE TABLE tenants (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incubator_id            bigint NOT NULL REFERENCES incubators,
    external_id             text NOT NULL
                            CHECK (external_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    credit_code             text NOT NULL CHECK (credit_code ~ '^[0-9A-HJ-NPQRTUWXY]{18}$'),
    founded_on              date NOT NULL,
    admitted_on             date NOT NULL,
    field                   text NOT NULL CHECK (field IN (
                                'electronic_information', 'biomedicine', 'aerospace',
                                'new_materials', 'high_tech_services', 'new_energy',
                                'resources_environment', 'advanced_manufacturing',
                                'modern_agriculture', 'integrated_circuit', 'other')),
    tech_certified_on       date,
    high_tech_certified_on  date,
    founder_origin          text CHECK (founder_origin IN (
                                'university', 'research_institute', 'returnee', 'student',
                                'soe', 'other')),
    listed_on               date,
    status                  text NOT NULL DEFAULT 'incubating'
                            CHECK (status IN ('incubating', 'graduated', 'exited')),
    graduated_on            date,
    graduation_basis        text CHECK (graduation_basis IN (
                                'high_tech', 'investment', 'revenue', 'acquired_or_listed')),
    graduation_evidence     jsonb,
    exited_on               date,
    exit_reason             text CHECK (exit_reason IN ('relocated', 'closed', 'expelled', 'other')),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (incubator_id, external_id),
    CHECK (admitted_on >= founded_on),
    CHECK ((graduated_on IS NULL) = (graduation_basis IS NULL)),
    CHECK ((exited_on IS NULL) = (exit_reason IS NULL)),
    -- A graduate who later leaves keeps its graduation: status says where it is now.
    CHECK (status <> 'incubating' OR (graduated_on IS NULL AND exited_on IS NULL)),
    CHECK (status <> 'graduated' OR (graduated_on IS NOT NULL AND exited_on IS NULL)),
    CHECK (status <> 'exited' OR exited_on IS NOT NULL),
    CHECK (graduated_on >= admitted_on),
    CHECK (exited_on >= coalesce(graduated_on, admitted_on))
);
CREATE INDEX tenants_credit_code_idx ON tenants (credit_code);
CREATE INDEX tenants_graduated_on_idx ON tenants (graduated_on) WHERE graduated_on IS NOT NULL;

-- Annual revenue by calendar year, as the incubator reports it.
CREATE TABLE tenant_revenues (
    tenant_id    bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    year         integer NOT NULL CHECK (year BETWEEN 1900 AND 2999),
    revenue_fen  bigint NOT NULL CHECK (revenue_fen >= 0),
    PRIMARY KEY (tenant_id, year)
);

-- Every accepted occupancy snapshot: from as_of on, exactly these tenants
-- occupied exactly these areas. The list is kept as sent (normalised), so a
-- figure can always be traced to what the incubator reported.
CREATE TABLE snapshots (
    incubator_id            bigint NOT NULL REFERENCES incubators,
    as_of                   date NOT NULL,
    public_service_area_m2  numeric(10, 2) NOT NULL CHECK (public_service_area_m2 >= 0),
    tenant_count            integer NOT NULL CHECK (tenant_count >= 0),
    tenant_area_m2          numeric(14, 2) NOT NULL CHECK (tenant_area_m2 >= 0),
    tenants                 jsonb NOT NULL, -- [{"external_id", "area_m2"}], sorted
    content_sha256          text NOT NULL,
    received_at             timestamptz NOT NULL DEFAULT now(),
    token_id                bigint REFERENCES tokens,
    PRIMARY KEY (incubator_id, as_of)
);

-- Who occupied how much, when: one interval per tenant and constant area,
-- never two overlapping for one tenant. A snapshot closes the intervals it
-- replaces; an exit closes the tenant's on exited_on.
CREATE TABLE occupancy (
    tenant_id     bigint NOT NULL REFERENCES tenants,
    incubator_id  bigint NOT NULL REFERENCES incubators,
    valid         date_interval NOT NULL,
    area_m2       numeric(10, 2) NOT NULL CHECK (area_m2 > 0 AND area_m2 <= 10000000),
    EXCLUDE USING gist (tenant_id WITH =, (valid::daterange) WITH &&)
);
CREATE INDEX occupancy_incubator_valid_idx ON occupancy USING gist (incubator_id, (valid::daterange));
