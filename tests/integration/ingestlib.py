"""What the tenant and occupancy tests share: a registered incubator with a
token of its own, tenant bodies with valid credit codes, the bureau's "today",
and a read-back of every table a write may touch, to show that a refused
request left the database as it was.

Expected figures are computed here, in Python, never by the SQL under test.
"""

import datetime
import json
import zoneinfo

import pytest

from harness import Api, assert_problem  # noqa: F401  (re-exported for the tests)

BUREAU_TZ = zoneinfo.ZoneInfo("Asia/Shanghai")

# GB 32100-2015: the code's alphabet (no I, O, S, V, Z) and the weights 3^i mod 31.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]

# Real codes, as published by their holders.
PUBLISHED_CODES = ["91350100M000100Y43", "91110108551385082Q"]


def uscc_check_char(first17):
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS))
    return USCC_CHARSET[(31 - total % 31) % 31]


def uscc(n):
    """The n-th made-up but valid credit code: 91230103 + 9 characters + check."""
    body = "91230103"
    digits = ""
    for _ in range(9):
        digits = USCC_CHARSET[n % 31] + digits
        n //= 31
    first17 = body + digits
    return first17 + uscc_check_char(first17)


def today():
    """Today in the bureau's time zone, as the daemon computes it."""
    return datetime.datetime.now(BUREAU_TZ).date()


def iso(d):
    return d.isoformat()


def day(s):
    return datetime.date.fromisoformat(s)


def tenant_body(n=1, **over):
    body = {"name": f"哈尔滨某某光电科技有限公司{n}", "credit_code": uscc(n),
            "founded_on": "2024-03-01", "admitted_on": "2025-06-01",
            "field": "electronic_information",
            "tech_certified_on": "2025-09-01", "high_tech_certified_on": None,
            "founder_origin": "university",
            "annual_revenue_fen": {"2025": 320000000}, "listed_on": None}
    body.update(over)
    return body


INCUBATOR = {"code": "HRB-001", "name": "哈尔滨创新创业广场孵化器", "level": "municipal",
             "kind": "comprehensive", "district": "南岗区", "opened_on": "2024-01-01",
             "disposable_area_m2": 12000, "public_service_area_m2": 1500}


def register(admin, code="HRB-001", **over):
    """Registers an incubator and makes a token for it; returns an Api bound to that token."""
    body = dict(INCUBATOR, code=code, **over)
    r = admin.post("/v1/incubators", body)
    assert r.status == 201, r
    r = admin.post(f"/v1/incubators/{code}/tokens", {"name": "erp-sync"})
    assert r.status == 201, r
    api = Api(admin.daemon, r.json()["token"])
    api.code = code
    api.token_id = r.json()["id"]
    return api


@pytest.fixture
def hrb(admin):
    """HRB-001, registered, with its own token."""
    return register(admin)


@pytest.fixture
def other(admin):
    """A second incubator, HRB-002, with its own token."""
    return register(admin, code="HRB-002", name="第二孵化器")


def put_tenant(api, external_id, n=1, code=None, **over):
    code = code or api.code
    return api.put(f"/v1/incubators/{code}/tenants/{external_id}", tenant_body(n, **over))


# Every table a tenant or occupancy write may change, read back in a stable order.
STATE_QUERIES = {
    "incubators": "SELECT * FROM incubators ORDER BY id",
    "incubator_areas": "SELECT * FROM incubator_areas ORDER BY incubator_id, valid",
    "public_service_areas": "SELECT * FROM public_service_areas ORDER BY incubator_id, valid",
    "tenants": "SELECT * FROM tenants ORDER BY id",
    "tenant_revenues": "SELECT * FROM tenant_revenues ORDER BY tenant_id, year",
    "snapshots": "SELECT * FROM snapshots ORDER BY incubator_id, as_of",
    "occupancy": "SELECT * FROM occupancy ORDER BY tenant_id, valid",
    "audit_log": "SELECT * FROM audit_log ORDER BY id",
    "idempotency_keys": "SELECT * FROM idempotency_keys ORDER BY token_id, key",
}


def db_state(sql):
    return {name: sql.execute(q).fetchall() for name, q in STATE_QUERIES.items()}


class Unchanged:
    """with Unchanged(sql): ...  asserts that the block left every table as it was."""

    def __init__(self, sql):
        self.sql = sql

    def __enter__(self):
        self.before = db_state(self.sql)
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            after = db_state(self.sql)
            for name in STATE_QUERIES:
                assert after[name] == self.before[name], f"{name} changed"
        return False


def freeze_until(sql, d):
    """Stands in for an approved payout run whose period ends on d."""
    sql.execute("CREATE OR REPLACE FUNCTION api.frozen_until() RETURNS date "
                f"LANGUAGE sql STABLE AS $$ SELECT date '{d}' $$")


def insert_policy(sql, version, effective_from, investment_min, revenue_min):
    """A policy version like version 1 but for the graduation thresholds."""
    sql.execute("""
        INSERT INTO policies (version, effective_from, veto_threshold, warning_margin,
            reward_per_graduate_fen, high_tech_bonus_fen, annual_cap_fen,
            incubation_limit_months, extended_limit_months, extended_fields,
            entry_max_age_months, graduation_investment_min_fen, graduation_revenue_2y_min_fen,
            stale_after_days, repeat_hours, plan, created_by)
        SELECT %s, %s, veto_threshold, warning_margin, reward_per_graduate_fen,
               high_tech_bonus_fen, annual_cap_fen, incubation_limit_months,
               extended_limit_months, extended_fields, entry_max_age_months, %s, %s,
               stale_after_days, repeat_hours, plan, 'test'
          FROM policies WHERE version = 1""", (version, effective_from, investment_min,
                                                revenue_min))


def occupancy_intervals(sql, code="HRB-001"):
    """{external_id: [(from, to, area)]} of one incubator, to as None when open."""
    rows = sql.execute(
        "SELECT t.external_id, lower(o.valid), upper(o.valid), o.area_m2 "
        "  FROM occupancy o JOIN tenants t ON t.id = o.tenant_id "
        "  JOIN incubators i ON i.id = o.incubator_id "
        " WHERE i.code = %s ORDER BY t.external_id, lower(o.valid)", (code,)).fetchall()
    out = {}
    for ext, lo, hi, area in rows:
        out.setdefault(ext, []).append((lo, hi, area))
    return out


def audit_count(sql):
    return sql.execute("SELECT count(*) FROM audit_log").fetchone()[0]


def raw_put(api, path, raw, **kw):
    """A PUT with a body sent byte for byte as given."""
    return api.daemon.request("PUT", path, token=api.token, body=raw, **kw)


def raw_post(api, path, raw, **kw):
    return api.daemon.request("POST", path, token=api.token, body=raw, **kw)


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False)


def refuse_all(api, sql, method, path, cases):
    """Sends each bad request (case id, body: dict sent as JSON or bytes sent as is,
    status, field) and checks its answer and that nothing changed; reports every
    case that failed at once."""
    failures = []
    for case, body, status, field in cases:
        raw = body if isinstance(body, bytes) else dumps(body).encode()
        try:
            with Unchanged(sql):
                r = api.daemon.request(method, path, token=api.token, body=raw)
                assert_problem(r, status, field)
        except AssertionError as e:
            failures.append(f"{case}: {e}")
    assert not failures, "\n".join(failures)
