"""The stack end to end: a daemon answers, an admin registers an incubator."""

from harness import assert_problem


def test_register_and_read_incubator(admin):
    r = admin.post("/v1/incubators", {
        "code": "HRB-001", "name": "哈尔滨创新创业广场孵化器", "level": "municipal",
        "kind": "comprehensive", "district": "南岗区", "opened_on": "2024-01-01",
        "disposable_area_m2": 12000, "public_service_area_m2": 1500})
    assert r.status == 201, r
    assert r.header("Location") == "/v1/incubators/HRB-001"
    got = admin.get("/v1/incubators/HRB-001").json()
    assert got["name"] == "哈尔滨创新创业广场孵化器"
    assert got["disposable_area_m2"] == 12000
    assert_problem(admin.get("/v1/incubators/NOPE"), 404)
