"""Fixtures of the integration tests.

- pg:      one throwaway PostgreSQL cluster for the session, with a template
           database migrated by `incubatord migrate`.
- db:      a fresh database per test, cloned from the template (fast).
- daemon:  the real incubatord against that database, ready, with an admin
           token (daemon.admin_token); stopped after the test.
- admin:   an Api client with the admin token.
- sql:     a psycopg connection (autocommit) to the test's database.

- private_pg: a PgCluster of the test's own with one migrated database
           (private_pg.dbname), for tests that stop and start PostgreSQL.
- unchanged: a context manager asserting that the counted tables' rows did
           not move: `with unchanged(): <bad requests>`.
"""

import contextlib
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import Api, Daemon, PgCluster, run_cli, table_counts, unique_name  # noqa: E402

TEMPLATE = "incubatord_template"


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster()
    cluster.start()
    cluster.create_migrated_database(TEMPLATE)
    yield cluster
    cluster.destroy()


@pytest.fixture
def db(pg):
    name = unique_name("test")
    pg.create_database(name, template=TEMPLATE)
    yield name
    pg.drop_database(name)


@pytest.fixture
def sql(pg, db):
    with pg.connect(db) as conn:
        yield conn


@pytest.fixture
def workdir(tmp_path):
    os.chmod(tmp_path, 0o755)
    return str(tmp_path)


_admins_made = {}


def start_daemon(pg, db, workdir, extra_config="", **kw):
    """A ready daemon on the test database, with an admin token: test-admin
    for the first daemon on a database, test-admin-2, ... for the next ones
    (token names are unique)."""
    d = Daemon(workdir, pg.conninfo(db), extra_config=extra_config, **kw)
    n = _admins_made[d.conninfo] = _admins_made.get(d.conninfo, 0) + 1
    name = "test-admin" if n == 1 else f"test-admin-{n}"
    d.admin_token = run_cli(d.config_path, "token", "create", "--admin", name).stdout.strip()
    d.start()
    return d


@pytest.fixture
def daemons():
    """Starts daemons with start_daemon(...) and stops (and checks) them all after the test."""
    started = []

    def start(*args, **kw):
        d = start_daemon(*args, **kw)
        started.append(d)
        return d
    yield start
    for d in started:
        stop_and_check(d)


def stop_and_check(d):
    """Stops a daemon at the end of a test: one still running must exit 0 on
    SIGTERM (a crash on the way out fails the test), and its log must hold no
    sanitizer report (Daemon.stop checks that)."""
    running = d.proc is not None and d.proc.poll() is None
    code = d.stop()
    if running:
        assert code == 0, f"incubatord exited with {code} on SIGTERM:\n{d.log()[-3000:]}"


@pytest.fixture
def daemon(pg, db, workdir):
    d = start_daemon(pg, db, workdir)
    yield d
    stop_and_check(d)


@pytest.fixture
def admin(daemon):
    return Api(daemon, daemon.admin_token)


@pytest.fixture
def unchanged(sql):
    """with unchanged(): ... fails if a counted table gained or lost rows inside."""
    @contextlib.contextmanager
    def check():
        before = table_counts(sql)
        yield
        assert table_counts(sql) == before
    return check


@pytest.fixture
def private_pg():
    """A PostgreSQL cluster of this test alone, with a database migrated by the CLI."""
    cluster = PgCluster()
    try:
        cluster.start()
        cluster.dbname = "incubatord"
        cluster.create_migrated_database(cluster.dbname)
        yield cluster
    finally:
        cluster.destroy()
