"""PostgreSQL's own replication under a running daemon: a synchronous
streaming standby made with pg_basebackup -R takes over writes when its
primary dies and is promoted (a multi-host conninfo, no restart, no answered
write lost), and the read pool on a standby hands its reads to the primary
while the standby lags or is down.

Each test builds its own primary and standby (real clusters, Unix sockets)."""

import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from harness import (PG_BIN, Daemon, PgCluster, _as_postgres, free_port, incubator_body, run_cli,
                     wait_for)

DBNAME = "incubatord"


def make_primary(synchronous):
    """A primary with one migrated database; synchronous: its commits will wait
    for a standby (once make_standby has made one: see wait_streaming)."""
    p = PgCluster()
    with open(os.path.join(p.data, "postgresql.conf"), "a") as f:
        # The harness turns synchronous_commit off for speed; this test is about it.
        f.write("wal_level = replica\nmax_wal_senders = 4\nwal_keep_size = '64MB'\n"
                + ("synchronous_commit = on\n" if synchronous else ""))
    p.start()
    p.dbname = DBNAME
    p.create_migrated_database(DBNAME)
    return p


def make_standby(primary):
    """A streaming standby of primary: pg_basebackup -R, its own port and socket directory."""
    s = PgCluster.__new__(PgCluster)  # not initdb: the base backup is its data directory
    s.dir = tempfile.mkdtemp(prefix="incubatord-standby-")
    if os.geteuid() == 0:
        shutil.chown(s.dir, "postgres", "postgres")
    s.data = os.path.join(s.dir, "data")
    s.port = free_port()
    s.host = s.dir
    s.user = "postgres"
    s.dbname = DBNAME
    subprocess.run([os.path.join(PG_BIN, "pg_basebackup"), "-h", primary.host,
                    "-p", str(primary.port), "-U", "postgres", "-D", s.data, "-R",
                    "-X", "stream", "--no-sync", "-c", "fast"],
                   check=True, stdout=subprocess.DEVNULL, **_as_postgres())
    with open(os.path.join(s.data, "postgresql.conf"), "a") as f:
        f.write(f"\nunix_socket_directories = '{s.dir}'\nport = {s.port}\n"
                "hot_standby = on\nwal_receiver_status_interval = 1\n")
    s.start()
    return s


def wait_streaming(primary, sync):
    """Waits until the standby streams; sync: makes it synchronous first (set
    only now, since until a standby exists every commit would wait for one)."""
    if sync:
        with primary.connect() as c:
            c.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            c.execute("SELECT pg_reload_conf()")

    def ok():
        with primary.connect() as c:
            rows = c.execute("SELECT state, sync_state FROM pg_stat_replication").fetchall()
        return any(st == "streaming" and (ss == "sync" or not sync) for st, ss in rows)
    wait_for(ok, 20, "the standby to stream" + (" synchronously" if sync else ""), 0.1)


def short_socket_dir(cluster):
    """A short name for a cluster's socket directory (a symbolic link in /tmp).

    Two of the long temporary directories in one multi-host conninfo make a
    line longer than the 198 characters the configuration file allows
    (docs/operations.md: a longer conninfo goes in a pg_service.conf entry).
    """
    link = tempfile.mktemp(prefix="ik-", dir="/tmp")
    os.symlink(cluster.host, link)
    return link


@pytest.fixture
def clusters():
    made = []
    yield made
    for c in made:
        c.destroy()


def test_promoted_standby_takes_over_writes_and_keeps_every_answered_one(clusters, workdir):
    primary = make_primary(synchronous=True)
    clusters.append(primary)
    standby = make_standby(primary)
    clusters.append(standby)
    wait_streaming(primary, sync=True)

    hosts = f"{short_socket_dir(primary)},{short_socket_dir(standby)}"
    conninfo = (f"host={hosts} port={primary.port},{standby.port} "
                f"user=postgres dbname={DBNAME} target_session_attrs=read-write "
                "connect_timeout=2")
    d = Daemon(workdir, conninfo, extra_config="[server]\nrequest_timeout_ms = 3000\n")
    token = run_cli(d.config_path, "token", "create", "--admin", "a").stdout.strip()
    d.start()
    pid = d.proc.pid

    answered = []  # codes whose POST was answered 201
    refused = []   # statuses other than 201 (503 while no primary exists)
    stop = threading.Event()

    def writer(n):
        i = 0
        while not stop.is_set():
            code = f"W{n}-{i:05d}"
            i += 1
            try:
                r = d.request("POST", "/v1/incubators", token=token,
                              json_body=incubator_body(code), timeout=10)
            except OSError as e:
                refused.append(str(e))
                continue
            if r.status == 201:
                answered.append((code, time.monotonic()))
            else:
                assert r.status == 503, r
                refused.append(r.status)
                time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(answered) >= 40, 30, "writes before the failover", 0.05)
        before = len(answered)
        primary.stop("immediate")  # the primary dies: no shutdown checkpoint, nothing flushed late
        killed_at = time.monotonic()
        time.sleep(1)
        standby.pg_ctl("promote")
        wait_for(lambda: any(t > killed_at + 1 for _, t in answered[before:]), 30,
                 "a write answered by the promoted standby", 0.05)
        resumed = len(answered)
        wait_for(lambda: len(answered) >= resumed + 40, 30, "writes after the failover", 0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()

    # The same daemon all along, and every write it answered 201 is on the new primary.
    assert d.proc.poll() is None and d.proc.pid == pid
    with standby.connect(DBNAME) as c:
        assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
        have = {r[0] for r in c.execute("SELECT code FROM incubators")}
    lost = [code for code, _ in answered if code not in have]
    assert lost == [], f"{len(lost)} answered writes lost: {lost[:10]}"
    assert len(answered) >= before + 40
    assert "db: connection lost" in d.log()
    assert d.stop() == 0


def report_reads(d):
    m = d.metrics()
    return m['incubatord_db_reads_total{pool="read"}'], m['incubatord_db_reads_total{pool="primary"}']


def test_read_pool_serves_reports_and_falls_back_while_its_standby_lags_or_is_down(clusters,
                                                                                   workdir):
    primary = make_primary(synchronous=False)
    clusters.append(primary)
    standby = make_standby(primary)
    clusters.append(standby)
    wait_streaming(primary, sync=False)

    d = Daemon(workdir, primary.conninfo(DBNAME),
               extra_config=f"[database]\nread_conninfo = {standby.conninfo(DBNAME)} "
                            "target_session_attrs=prefer-standby\nread_max_lag_s = 2\n")
    token = run_cli(d.config_path, "token", "create", "--admin", "a").stdout.strip()
    d.start()
    try:
        def listing():
            r = d.request("GET", "/v1/payout-runs", token=token)
            assert r.status == 200, r
            return r

        def monthly_codes():
            r = d.request("GET", "/v1/reports/monthly?period=2024-03", token=token)
            assert r.status == 200, r
            return {row["incubator"] for row in r.json()["items"]}

        assert d.request("POST", "/v1/incubators", token=token,
                         json_body=incubator_body("HRB-001", opened_on="2018-01-01")).status == 201
        # The standby replays it, its lag is sampled, and the report is read there.
        wait_for(lambda: d.metrics().get("incubatord_db_read_lag_seconds", -1) >= 0, 10,
                 "a lag sample")
        wait_for(lambda: "HRB-001" in monthly_codes(), 10, "the standby to replay HRB-001")
        m = d.metrics()
        assert m['incubatord_db_read_pool_connections{state="connected"}'] >= 1
        assert 0 <= m["incubatord_db_read_lag_seconds"] < 2
        read, prim = report_reads(d)
        listing()
        for path in ("/v1/reports/overview", "/v1/incubators/HRB-001/space-share/daily",
                     "/v1/incubators/HRB-001/payouts", "/v1/incubators/HRB-001/metrics?period=2024-03",
                     "/v1/reports/cohorts?admitted_year=2024", "/v1/reports/plan-progress"):
            r = d.request("GET", path, token=token)
            assert r.status == 200, (path, r)
        assert report_reads(d) == (read + 7, prim)
        # Writes and reads that must be current still go to the primary.
        r = d.request("GET", "/v1/incubators/HRB-001", token=token)
        assert r.status == 200 and report_reads(d) == (read + 7, prim)

        # The standby stops replaying: what it serves is stale until the lag
        # passes read_max_lag_s, then the primary serves it.
        with standby.connect(DBNAME) as c:
            c.execute("SELECT pg_wal_replay_pause()")
        assert d.request("POST", "/v1/incubators", token=token,
                         json_body=incubator_body("HRB-002", opened_on="2018-01-01")).status == 201
        assert "HRB-002" not in monthly_codes()  # read on the paused standby
        wait_for(lambda: d.metrics()["incubatord_db_read_lag_seconds"] > 2, 10,
                 "the lag to pass read_max_lag_s")
        read, prim = report_reads(d)
        assert "HRB-002" in monthly_codes()
        assert report_reads(d) == (read, prim + 1)

        with standby.connect(DBNAME) as c:
            c.execute("SELECT pg_wal_replay_resume()")
        wait_for(lambda: 0 <= d.metrics()["incubatord_db_read_lag_seconds"] < 2, 10,
                 "the standby to catch up")
        read, prim = report_reads(d)
        assert "HRB-002" in monthly_codes()
        assert report_reads(d) == (read + 1, prim)

        # The standby goes away: reads are answered by the primary, not 503.
        standby.stop("immediate")
        for _ in range(5):
            assert "HRB-002" in monthly_codes()
            listing()
        wait_for(lambda: d.metrics()["incubatord_db_read_lag_seconds"] == -1, 10,
                 "the lag to read as unknown")
        read, prim = report_reads(d)
        listing()
        assert report_reads(d) == (read, prim + 1)
        assert d.request("GET", "/readyz").status == 200

        # It comes back: the read pool reconnects and serves again.
        standby.start()
        wait_for(lambda: 0 <= d.metrics()["incubatord_db_read_lag_seconds"] < 2, 15,
                 "the standby to come back")
        read, prim = report_reads(d)
        listing()
        assert report_reads(d) == (read + 1, prim)
    finally:
        assert d.stop() == 0
