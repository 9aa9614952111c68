"""docs/openapi.yaml describes exactly the routes of daemon/routes.c: the same
paths with the same methods, no more, no less; public routes without a token,
the others with one; every path parameter declared; every $ref resolving;
every error answer a problem+json; the enums those of the C field tables."""

import os
import re

import pytest
import yaml

SOURCE = os.environ.get("INCUBATORD_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
METHODS = ("get", "put", "post", "patch", "delete")


def read(path):
    with open(os.path.join(SOURCE, path), encoding="utf-8") as f:
        return f.read()


def c_routes():
    """(METHOD, pattern, access) of every line of the route table."""
    text = read("daemon/routes.c")
    table = text[text.index("const struct route routes[] = {"):]
    table = table[:table.index("\n};")]
    found = re.findall(r'\{(GET|POST|PUT|PATCH|DELETE),\s+"([^"]+)",\s+(ACCESS_\w+)', table)
    assert found, "no routes parsed from daemon/routes.c"
    return found


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load(read("docs/openapi.yaml"))


def operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item, item[method]


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target = spec
        for part in ref[2:].split("/"):
            assert part in target, f"unresolved $ref {ref}"
            target = target[part]
        node = target
    return node


def test_every_route_is_documented_with_its_method_and_nothing_else(spec):
    assert str(spec["openapi"]).startswith("3.1")
    in_c = {(m, p) for m, p, _ in c_routes()}
    in_spec = {(m.upper(), p) for p, m, _, _ in operations(spec)}
    assert in_c - in_spec == set(), f"routes missing from docs/openapi.yaml: {sorted(in_c - in_spec)}"
    assert in_spec - in_c == set(), f"documented but not served: {sorted(in_spec - in_c)}"


def test_security_follows_the_routes_access(spec):
    access = {(m, p): a for m, p, a in c_routes()}
    assert spec["security"] == [{"bearer": []}]
    for path, method, _, op in operations(spec):
        public = op.get("security") == []
        assert public == (access[(method.upper(), path)] == "ACCESS_PUBLIC"), (method, path)
        if not public:
            assert "401" in op["responses"], (method, path)


def test_parameters_refs_and_problem_answers(spec):
    ids = set()
    for path, method, item, op in operations(spec):
        assert op["operationId"] not in ids
        ids.add(op["operationId"])
        params = [resolve(spec, p) for p in item.get("parameters", []) + op.get("parameters", [])]
        declared = {p["name"] for p in params if p["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\}", path)), (method, path)
        assert any(s.startswith("2") for s in op["responses"]), (method, path)
        for status, answer in op["responses"].items():
            answer = resolve(spec, answer)
            if int(status) >= 400:
                schema = answer["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
        if "requestBody" in op:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert resolve(spec, body).get("additionalProperties") is False or "allOf" in body

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(spec, node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(spec)


def c_enum(path, name):
    text = read(path)
    m = re.search(r"^(?:static )?const char \*const " + name + r"\[\] = \{(.*?)\};", text,
                  re.S | re.M)
    assert m, f"{name} not found in {path}"
    return [v for v in re.findall(r'"([^"]*)"', m.group(1))]


@pytest.mark.parametrize("schema,path,name", [
    ("Field", "daemon/api_tenants.c", "api_tenant_fields"),
    ("FounderOrigin", "daemon/api_tenants.c", "origins"),
    ("TenantStatus", "daemon/api_tenants.c", "statuses"),
    ("Level", "daemon/api_incubators.c", "levels"),
    ("Kind", "daemon/api_incubators.c", "kinds"),
])
def test_enums_are_those_of_the_field_tables(spec, schema, path, name):
    assert spec["components"]["schemas"][schema]["enum"] == c_enum(path, name)


def test_alert_enums(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["AlertRule"]["enum"] == c_enum("daemon/api_alerts.c", "rules")
    state = [p for p in spec["paths"]["/v1/alerts"]["get"]["parameters"] if p.get("name") == "state"]
    assert state[0]["schema"]["enum"] == c_enum("daemon/api_alerts.c", "states")


def test_graduation_and_exit_enums(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["Graduation"]["properties"]["basis"]["enum"] == \
        c_enum("daemon/api_tenants.c", "bases")
    assert schemas["Exit"]["properties"]["reason"]["enum"] == \
        c_enum("daemon/api_tenants.c", "reasons")
