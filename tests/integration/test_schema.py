"""The schema's own rules: the functions files call only what is defined above
them, and the alert rules are one list (the table alert_rules) that the
daemon's query check follows."""

import glob
import os
import re

from test_openapi import SOURCE, c_enum

# PL/pgSQL resolves a call when it runs, so PostgreSQL cannot check these at
# migrate time as it checks SQL bodies: the writes' last step, which
# evaluates the alert rules over what they changed, is the one call that
# goes to a later file.
LATE_BOUND = {"after_change"}

DEFINITION = re.compile(r"^CREATE (?:OR REPLACE )?(?:FUNCTION|PROCEDURE|AGGREGATE) api\.(\w+)\s*\(", re.M)
CALL = re.compile(r"\bapi\.(\w+)\s*\(")


def functions_files():
    return sorted(glob.glob(os.path.join(SOURCE, "schema", "functions", "*.sql")))


def test_functions_call_only_what_earlier_files_define():
    defined_in = {}
    files = functions_files()
    assert files
    for i, path in enumerate(files):
        with open(path, encoding="utf-8") as f:
            for m in DEFINITION.finditer(f.read()):
                defined_in.setdefault(m.group(1), i)
    wrong = []
    for i, path in enumerate(files):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for m in CALL.finditer(text):
            name = m.group(1)
            if name in LATE_BOUND:
                continue
            if name not in defined_in:
                wrong.append(f"{os.path.basename(path)}: api.{name} is defined nowhere")
            elif defined_in[name] > i:
                wrong.append(f"{os.path.basename(path)}: api.{name} is defined in "
                             f"{os.path.basename(files[defined_in[name]])}, a later file")
    assert wrong == []


def test_the_alert_rules_are_one_list(sql):
    rules = [r[0] for r in sql.execute("SELECT rule FROM alert_rules ORDER BY rank")]
    assert rules == c_enum("daemon/api_alerts.c", "rules")
    assert sql.execute("SELECT api.alert_rules()").fetchone()[0] == rules


def get_route_functions():
    """The API function of every GET route that calls one."""
    text = open(os.path.join(SOURCE, "daemon", "routes.c"), encoding="utf-8").read()
    table = text[text.index("const struct route routes[] = {"):]
    table = table[:table.index("\n};")]
    found = re.findall(r'\{GET,\s+"[^"]+",\s+ACCESS_\w+,\s+[^,]+,\s+"(\w+)"', table)
    assert len(found) > 20, "GET routes not parsed from daemon/routes.c"
    return sorted(set(found))


def test_every_get_route_calls_a_function_that_cannot_write(sql):
    # db.c pipelines a GET's statement with other reads on one connection
    # (db_query_read): that is safe only for statements that write nothing,
    # which PostgreSQL enforces for a STABLE or IMMUTABLE function.
    volatility = dict(sql.execute(
        "SELECT p.proname, p.provolatile FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'api'").fetchall())
    wrong = {fn: volatility.get(fn) for fn in get_route_functions()
             if volatility.get(fn) not in ("s", "i")}
    assert wrong == {}
