-- 001: incubators and the history of their areas, tokens, the audit log and
-- idempotency keys. Business functions live in schema/functions (schema api);
-- nothing here may depend on them, because that schema is recreated whenever
-- the functions change.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- A date interval as the schema stores them: [from, to), to possibly infinite.
CREATE DOMAIN date_interval AS daterange
    CHECK (NOT isempty(VALUE) AND lower_inc(VALUE) AND NOT lower_inf(VALUE)
           AND NOT upper_inc(VALUE));

CREATE TABLE incubators (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    level       text NOT NULL CHECK (level IN ('national', 'provincial', 'municipal',
                                               'district', 'unrated')),
    kind        text NOT NULL CHECK (kind IN ('comprehensive', 'professional',
                                              'university_park', 'maker_space')),
    district    text CHECK (length(district) BETWEEN 1 AND 100),
    opened_on   date NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX incubators_code_key ON incubators (code);
-- HRB-001 and hrb-001 would be the same incubator to a person: one of them only.
CREATE UNIQUE INDEX incubators_code_lower_key ON incubators (lower(code));

-- The disposable area (可自主支配场地) over time: what the space share divides by.
CREATE TABLE incubator_areas (
    incubator_id        bigint NOT NULL REFERENCES incubators,
    valid               date_interval NOT NULL,
    disposable_area_m2  numeric(10, 2) NOT NULL
                        CHECK (disposable_area_m2 > 0 AND disposable_area_m2 <= 10000000),
    EXCLUDE USING gist (incubator_id WITH =, (valid::daterange) WITH &&)
);

-- The public service area (公共服务场地) over time: counted with the science
-- enterprises' space. Set when the incubator is registered, then by snapshots.
CREATE TABLE public_service_areas (
    incubator_id  bigint NOT NULL REFERENCES incubators,
    valid         date_interval NOT NULL,
    area_m2       numeric(10, 2) NOT NULL CHECK (area_m2 >= 0 AND area_m2 <= 10000000),
    EXCLUDE USING gist (incubator_id WITH =, (valid::daterange) WITH &&)
);

-- Bearer tokens: only the SHA-256 of the secret is kept.
CREATE TABLE tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    incubator_id  bigint REFERENCES incubators, -- NULL: an admin (bureau) token
    hash          bytea NOT NULL CHECK (length(hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    revoked_by    text
);
CREATE UNIQUE INDEX tokens_hash_key ON tokens (hash);
CREATE INDEX tokens_incubator_idx ON tokens (incubator_id);

-- Every accepted write: who, with which token, when, what. Append-only.
CREATE TABLE audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    token_id      bigint REFERENCES tokens,
    token_name    text NOT NULL,
    request_id    text NOT NULL,
    method        text NOT NULL,
    path          text NOT NULL,
    incubator_id  bigint REFERENCES incubators,
    summary       text NOT NULL,
    details       jsonb
);
CREATE INDEX audit_log_incubator_idx ON audit_log (incubator_id, id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- POST answers kept for 24 h per token and key, to replay a retried request.
CREATE TABLE idempotency_keys (
    token_id     bigint NOT NULL REFERENCES tokens,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    method       text NOT NULL,
    path         text NOT NULL,
    body_sha256  text NOT NULL,
    status       integer NOT NULL,
    body         text,
    location     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
