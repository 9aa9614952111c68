"""The synthetic city writes exactly what the API would have written.

A small generated city is loaded twice: once by tests/fixtures/city.py with
COPY, once by replaying its history through the real API (registration, area
changes, tenant profiles, then graduations, exits and snapshots in date
order). Both databases must hold the same rows in every table the reports
read.
"""

import os
import sys

from harness import unique_name

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
import city as citygen  # noqa: E402

from conftest import TEMPLATE  # noqa: E402


def ok(r, status=200):
    assert r.status == status, r
    return r


def area(centi):
    return centi / 100


def replay(api, city):
    events = []
    for inc in city.incubators:
        (_, _, disposable), ps0 = inc.areas[0], inc.public_service[0][2]
        ok(api.post("/v1/incubators", {
            "code": inc.code, "name": inc.name, "level": inc.level, "kind": inc.kind,
            "district": inc.district, "opened_on": str(inc.opened_on),
            "disposable_area_m2": area(disposable), "public_service_area_m2": area(ps0)}), 201)
        for start, _, a in inc.areas[1:]:
            ok(api.patch(f"/v1/incubators/{inc.code}", {"disposable_area_m2": area(a),
                                                        "effective_on": str(start)}))
        for t in inc.tenants:
            body = {"name": t.name, "credit_code": t.credit_code, "founded_on": str(t.founded_on),
                    "admitted_on": str(t.admitted_on), "field": t.field,
                    "tech_certified_on": t.tech_certified_on and str(t.tech_certified_on),
                    "high_tech_certified_on": t.high_tech_certified_on
                    and str(t.high_tech_certified_on),
                    "founder_origin": t.founder_origin,
                    "listed_on": t.listed_on and str(t.listed_on)}
            if t.revenues:
                body["annual_revenue_fen"] = {str(y): v for y, v in t.revenues.items()}
            ok(api.put(f"/v1/incubators/{inc.code}/tenants/{t.external_id}", body), 201)
            if t.graduated_on:
                g = {"graduated_on": str(t.graduated_on), "basis": t.graduation_basis}
                if t.graduation_evidence:
                    g["evidence"] = t.graduation_evidence
                events.append((t.graduated_on, 0, f"/v1/incubators/{inc.code}/tenants/"
                               f"{t.external_id}/graduation", g))
            if t.exited_on:
                events.append((t.exited_on, 1, f"/v1/incubators/{inc.code}/tenants/"
                               f"{t.external_id}/exit",
                               {"exited_on": str(t.exited_on), "reason": t.exit_reason}))
        for as_of, ps, listed in inc.snapshots:
            events.append((as_of, 2, f"/v1/incubators/{inc.code}/occupancy",
                           {"as_of": str(as_of), "public_service_area_m2": area(ps),
                            "tenants": [{"external_id": e, "area_m2": area(a)}
                                        for e, a in listed]}))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    for _, kind, path, body in events:
        ok(api.put(path, body) if kind == 2 else api.post(path, body))
    return len(events)


TABLES = {
    "incubators": "SELECT code, name, level, kind, district, opened_on FROM incubators",
    "incubator_areas": """SELECT i.code, a.valid::text, a.disposable_area_m2
                            FROM incubator_areas a JOIN incubators i ON i.id = a.incubator_id""",
    "public_service_areas": """SELECT i.code, a.valid::text, a.area_m2
                                 FROM public_service_areas a
                                 JOIN incubators i ON i.id = a.incubator_id""",
    "tenants": """SELECT i.code, t.external_id, t.name, t.credit_code, t.founded_on,
                         t.admitted_on, t.field, t.tech_certified_on, t.high_tech_certified_on,
                         t.founder_origin, t.listed_on, t.status, t.graduated_on,
                         t.graduation_basis, t.graduation_evidence::text, t.exited_on,
                         t.exit_reason
                    FROM tenants t JOIN incubators i ON i.id = t.incubator_id""",
    "tenant_revenues": """SELECT t.external_id, r.year, r.revenue_fen
                            FROM tenant_revenues r JOIN tenants t ON t.id = r.tenant_id""",
    "snapshots": """SELECT i.code, s.as_of, s.public_service_area_m2, s.tenant_count,
                           s.tenant_area_m2, s.tenants::text, s.content_sha256
                      FROM snapshots s JOIN incubators i ON i.id = s.incubator_id""",
    "occupancy": """SELECT i.code, t.external_id, o.valid::text, o.area_m2
                      FROM occupancy o JOIN tenants t ON t.id = o.tenant_id
                      JOIN incubators i ON i.id = o.incubator_id""",
}


def rows(conn, query):
    return sorted(conn.execute(query).fetchall(), key=repr)


def test_fixture_rows_equal_the_rows_the_api_writes(pg, sql, admin):
    city = citygen.generate(citygen.Params(incubators=3, tenants=36, years=2.0,
                                           snapshot_days=5, intervals=150, seed=77,
                                           today=citygen.bureau_today()))
    stats = city.stats()
    assert stats["intervals"] > 60 and stats["snapshots"] > 100
    n = replay(admin, city)
    assert n > 150

    copied = unique_name("city")
    pg.create_database(copied, template=TEMPLATE)
    try:
        with pg.connect(copied) as conn:
            citygen.load(conn, city)
            for table, query in TABLES.items():
                assert rows(conn, query) == rows(sql, query), table
    finally:
        pg.drop_database(copied)
