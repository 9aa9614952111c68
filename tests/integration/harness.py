"""The integration tests' real parts: a throwaway PostgreSQL cluster, a fresh
database per test cloned from a migrated template, and the real incubatord
binary on a free port, spoken to over real HTTP.

Nothing here mocks anything: PgCluster runs initdb/pg_ctl (as the postgres
user when run as root), Daemon runs the binary built by CMake
(INCUBATORD_BIN) with a configuration file of its own.
"""

import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import psycopg

PG_BIN = os.environ.get("INCUBATORD_PG_BIN", "/usr/lib/postgresql/15/bin")
BIN = os.environ.get("INCUBATORD_BIN", os.path.join(os.path.dirname(__file__),
                                                    "../../build/incubatord"))


def preload(library):
    """An LD_PRELOAD value that loads library into the daemon.

    A sanitizer build insists that its runtime comes first in the list of
    loaded libraries, so that runtime, when the binary links one, is put first.
    """
    out = subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
    runtimes = [m.group(1) for m in re.finditer(r"^\s*lib[at]san\.so\S*\s+=>\s+(\S+)",
                                                out, re.M)]
    return ":".join(runtimes + [library])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres():
    """initdb and postgres refuse to run as root: drop to the postgres user."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("postgres")

    def demote():
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return {"preexec_fn": demote}


class PgCluster:
    """A PostgreSQL cluster in a temporary directory, on a Unix socket only."""

    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="incubatord-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = port or free_port()
        self.host = self.dir  # the socket directory
        self.user = "postgres"
        self.initdb()

    def initdb(self, settings=""):
        """Makes the data directory: fast and unsafe (no fsync), on a Unix socket only."""
        subprocess.run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust",
                        "-U", self.user, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, **_as_postgres())
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "listen_addresses = ''\nmax_connections = 300\n"
                    f"unix_socket_directories = '{self.dir}'\nport = {self.port}\n" + settings)

    def conninfo(self, dbname="postgres"):
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def pg_ctl(self, *args):
        subprocess.run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w",
                        "-l", os.path.join(self.dir, "log"), *args],
                       check=True, stdout=subprocess.DEVNULL, **_as_postgres())

    def start(self):
        self.pg_ctl("start")

    def stop(self, mode="fast"):
        self.pg_ctl("stop", "-m", mode)

    def destroy(self):
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self, dbname="postgres", autocommit=True, **kw):
        return psycopg.connect(self.conninfo(dbname), autocommit=autocommit, **kw)

    def create_database(self, name, template=None):
        with self.connect() as c:
            if template:
                c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            else:
                c.execute(f'CREATE DATABASE "{name}"')

    def create_migrated_database(self, name):
        """Creates a database and migrates it with `incubatord migrate`."""
        self.create_database(name)
        cfg = os.path.join(self.dir, f"migrate-{name}.conf")
        with open(cfg, "w") as f:
            f.write(f"[database]\nconninfo = {self.conninfo(name)}\n[log]\nsyslog = false\n")
        run_cli(cfg, "migrate")

    def drop_database(self, name):
        with self.connect() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer print
# when they find something (an INCUBATORD_SANITIZE=ON build).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_report(text):
    """The first sanitizer report in a log or stderr text, or None."""
    for marker in SANITIZER_MARKERS:
        i = text.find(marker)
        if i >= 0:
            return text[max(0, text.rfind("\n", 0, i) + 1):][:4000]
    return None


def run_cli(config_path, *args, check=True, env=None, timeout=60):
    """Runs an incubatord subcommand; returns the CompletedProcess.

    A sanitizer report on its stderr fails the test whatever the exit code."""
    p = subprocess.run([BIN, "-c", config_path, *args], capture_output=True, text=True,
                       env=env, timeout=timeout)
    report = sanitizer_report(p.stderr)
    if report:
        raise AssertionError(f"incubatord {' '.join(args)}: sanitizer report:\n{report}")
    if check and p.returncode != 0:
        raise AssertionError(f"incubatord {' '.join(args)} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body  # bytes
        self.text = body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<Response {self.status} {self.text[:300]}>"


class Daemon:
    """The real incubatord on a free port, logging to a file the test can read."""

    def __init__(self, workdir, conninfo, extra_config="", port=None, env=None,
                 command_prefix=()):
        self.workdir = workdir
        self.port = port or free_port()
        self.config_path = os.path.join(workdir, f"incubatord-{self.port}.conf")
        self.log_path = os.path.join(workdir, f"incubatord-{self.port}.log")
        self.conninfo = conninfo
        self.env = env
        self.command_prefix = list(command_prefix)
        self.proc = None
        self.write_config(extra_config)

    def write_config(self, extra_config=""):
        sections = {
            # No rate limit by default: tests send hundreds of requests with one
            # token; test_rate_limits.py sets its own.
            "server": {"listen": f"127.0.0.1:{self.port}", "request_timeout_ms": "5000",
                       "rate_limit_per_minute": "0"},
            "database": {"conninfo": self.conninfo, "pool_size": "4"},
            "log": {"syslog": "false", "level": "debug"},
            "schedule": {"alert_sweep_seconds": "3600", "payout_enabled": "false"},
        }
        # extra_config: "[section]\nkey = value" lines overriding the above.
        current = None
        for line in extra_config.strip().splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("["):
                current = line.strip("[]")
                sections.setdefault(current, {})
            else:
                k, v = (x.strip() for x in line.split("=", 1))
                sections[current][k] = v
        with open(self.config_path, "w") as f:
            for name, keys in sections.items():
                f.write(f"[{name}]\n")
                for k, v in keys.items():
                    f.write(f"{k} = {v}\n")

    def start(self, wait_ready=True, timeout=15):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*self.command_prefix, BIN, "-c", self.config_path, "-f"],
            stdout=self.log_file, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"incubatord exited with {self.proc.returncode}:\n"
                                     + self.log())
            try:
                r = self.request("GET", "/readyz" if wait_ready else "/healthz", timeout=1)
                if r.status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("incubatord did not become ready:\n" + self.log())

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the daemon; returns its exit code.

        Fails the test when the daemon's log holds a sanitizer report (an
        ASan/UBSan build writes them to stderr, which is the log)."""
        if self.proc is None:
            return None
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    raise AssertionError("incubatord did not stop in time:\n" + self.log())
        finally:
            if not self.log_file.closed:
                self.log_file.close()
        self.assert_no_sanitizer_report()
        return self.proc.returncode

    def assert_no_sanitizer_report(self):
        report = sanitizer_report(self.log())
        if report:
            raise AssertionError(f"incubatord (port {self.port}) sanitizer report:\n{report}")

    def wait_log(self, text, timeout=5):
        """Waits until the log contains text; returns the log."""
        deadline = time.time() + timeout
        while True:
            log = self.log()
            if text in log:
                return log
            if time.time() > deadline:
                raise AssertionError(f"the log never said {text!r}:\n{log[-3000:]}")
            time.sleep(0.02)

    def metrics(self):
        """/metrics as {'name{labels}': value}."""
        r = self.request("GET", "/metrics")
        assert r.status == 200, r
        out = {}
        for line in r.text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out

    def wait_startup_jobs(self, timeout=10, jobs=("alert_sweep", "idempotency_cleanup")):
        """Waits until the jobs that run soon after start-up have run once: until
        then they use pool connections (and read incubators)."""
        deadline = time.time() + timeout
        keys = ['incubatord_job_last_run_timestamp_seconds{job="%s"}' % j for j in jobs]
        while time.time() < deadline:
            m = self.metrics()
            if all(k in m for k in keys) and m["incubatord_db_queue_length"] == 0 \
                    and m['incubatord_db_pool_connections{state="busy"}'] == 0:
                return
            time.sleep(0.05)
        raise AssertionError("the start-up jobs did not finish:\n" + self.log()[-2000:])

    def wait_listening(self, timeout=5):
        """Waits until the LISTEN connection (token revocations) is up."""
        wait_for(lambda: self.metrics().get("incubatord_db_listen_up") == 1, timeout,
                 "the LISTEN connection to come up")

    def connection(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, token=None, json_body=None, body=None, headers=None,
                timeout=10, content_type="application/json"):
        """One request on a new connection; json_body is encoded, body is sent as is."""
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False).encode()
        if body is not None:
            if isinstance(body, str):
                body = body.encode()
            if content_type is not None:
                h.setdefault("Content-Type", content_type)
        c = self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()


class Api:
    """An HTTP client bound to one token: api.get('/v1/...'), api.post(...)."""

    def __init__(self, daemon, token):
        self.daemon = daemon
        self.token = token

    def call(self, method, path, body=None, **kw):
        return self.daemon.request(method, path, token=self.token, json_body=body, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


# [server] max_body_bytes by default, as API.md gives it.
MAX_BODY_BYTES = 1024 * 1024
# [server] max_sync_body_bytes by default: a 5,000-tenant sync at its longest fits.
MAX_SYNC_BODY_BYTES = 8 * 1024 * 1024
# Beyond this the HTTP layer refuses a body before reading it.
HARD_BODY_BYTES = max(4 * MAX_BODY_BYTES, MAX_SYNC_BODY_BYTES) + 65536


def unique_name(prefix="t"):
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def assert_problem(r, status, field=None):
    """r is a problem+json answer of this status (naming field, if given)."""
    assert r.status == status, r
    assert r.header("Content-Type") == "application/problem+json", r.headers
    p = r.json()
    assert p["status"] == status
    assert p["type"].startswith("urn:incubatord:problem:")
    assert p["title"] and p["detail"]
    if field is not None:
        fields = [e["field"] for e in p.get("errors", [])]
        assert field in fields, f"{field} not in {fields}: {p}"
    return p


def wait_for(predicate, timeout=5, what="a condition", interval=0.02):
    """Polls predicate until it returns something true; returns that, or fails."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# A valid POST /v1/incubators body; tests vary one field at a time.
INCUBATOR = {
    "code": "HRB-001", "name": "哈尔滨创新创业广场孵化器", "level": "municipal",
    "kind": "comprehensive", "district": "南岗区", "opened_on": "2024-01-01",
    "disposable_area_m2": 12000, "public_service_area_m2": 1500,
}


def incubator_body(code="HRB-001", **changes):
    body = dict(INCUBATOR, code=code)
    body.update(changes)
    return body


def create_incubator(admin, code="HRB-001", **changes):
    """Registers an incubator; returns the incubator object."""
    r = admin.post("/v1/incubators", incubator_body(code, **changes))
    assert r.status == 201, r
    return r.json()


def create_token(admin, code, name="erp-sync"):
    """Makes an incubator token over the API; returns the 201 body (with the secret)."""
    r = admin.post(f"/v1/incubators/{code}/tokens", {"name": name})
    assert r.status == 201, r
    return r.json()


# Tables whose row counts must not move when a request is refused.
COUNTED_TABLES = ("incubators", "incubator_areas", "public_service_areas", "tokens",
                  "audit_log", "idempotency_keys")


def table_counts(sql):
    return {t: sql.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED_TABLES}
