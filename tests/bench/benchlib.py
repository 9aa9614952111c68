"""What the benchmarks share: running wrk and pgbench and reading their
output, and what /proc says about a process and the machine."""

import os
import platform
import re
import resource
import shutil
import subprocess
import time

from harness import PG_BIN

TICKS = os.sysconf("SC_CLK_TCK")


def parse_duration_ms(text):
    """wrk's latency figures: '812.00us', '1.25ms', '2.01s'."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url, seconds, threads, connections, options=(), script_args=(), context=None):
    """One wrk run with --latency; returns (requests/s, p99 ms). Any non-2xx
    answer or socket error fails the benchmark, with wrk's output and
    context() (e.g. the end of the daemon's log) in the message."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            *options, url]
    if script_args:
        argv += ["--", *script_args]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or re.search(r"Socket errors:", out):
        raise AssertionError("wrk saw failed requests:\n" + out
                             + ("\n" + context() if context else ""))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = parse_duration_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    return rps, p99


def run_pgbench(pg, db, script, seconds, clients, threads, variables, mode="extended"):
    """One pgbench run of script (by default the extended protocol, as the
    daemon's libpq; "prepared" as its per-route statements); returns
    (transactions/s, transactions processed). A failed transaction fails the
    benchmark."""
    cmd = [os.path.join(PG_BIN, "pgbench"), "-n", "-M", mode, "-f", script,
           "-c", str(clients), "-j", str(threads), "-T", str(seconds),
           "-h", pg.host, "-p", str(pg.port), "-U", pg.user]
    for name, value in variables.items():
        cmd += ["-D", f"{name}={value}"]
    p = subprocess.run(cmd + [db], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("pgbench failed:\n" + p.stdout + p.stderr)
    failed = re.search(r"number of failed transactions: (\d+)", p.stdout)
    if failed and int(failed.group(1)) > 0:
        raise AssertionError("pgbench saw failed transactions:\n" + p.stdout)
    done = int(re.search(r"number of transactions actually processed: (\d+)", p.stdout).group(1))
    return float(re.search(r"^tps = ([\d.]+)", p.stdout, re.M).group(1)), done


STRICT = os.environ.get("BENCH_STRICT") == "1"


def tools_missing():
    """False when wrk and pgbench are installed; else says which is not, and True."""
    for tool in ("wrk", os.path.join(PG_BIN, "pgbench")):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (scripts/test installs wrk and PostgreSQL)")
            return True
    return False


def verdict(ok):
    """The word every benchmark prints after a target: met, or MISSED."""
    return "met" if ok else "MISSED"


def exit_status(missed):
    """The one rule of every benchmark: the targets missed (names) are printed
    as MISSED; under BENCH_STRICT=1 any of them makes the exit status 1."""
    if missed:
        print("MISSED: " + ", ".join(missed))
    return 1 if STRICT and missed else 0


def bare_batches_s(sql, batches, rows, inserts=0):
    """PostgreSQL's own limit for a batched pass over the incubators: as many
    bare transactions as the pass had batches, in one round trip (as
    api.run_job_batches runs them), which update `rows` rows in all, each
    batch the next ones by key in a table of the incubators' ids, and insert
    `inserts` rows in all (an opened alert writes its row and its outbox
    event's). Returns the seconds they took."""
    sql.execute("DROP TABLE IF EXISTS bench_bare, bench_bare_rows")
    sql.execute("DROP PROCEDURE IF EXISTS bench_bare_run")
    sql.execute("CREATE TABLE bench_bare AS SELECT id, 0 AS n FROM incubators")
    sql.execute("ALTER TABLE bench_bare ADD PRIMARY KEY (id)")
    sql.execute("CREATE TABLE bench_bare_rows (id bigserial PRIMARY KEY, batch integer, "
                "message text)")
    sql.execute("VACUUM ANALYZE bench_bare")
    sql.execute("""
        CREATE PROCEDURE bench_bare_run(batches integer, rows bigint, inserts bigint)
        LANGUAGE plpgsql AS $$
        DECLARE
            after bigint := 0;
            last bigint;
        BEGIN
            FOR b IN 1..batches LOOP
                WITH batch AS (SELECT id FROM bench_bare WHERE id > after ORDER BY id
                               LIMIT b * rows / batches - (b - 1) * rows / batches),
                     done AS (UPDATE bench_bare x SET n = x.n + 1 FROM batch
                               WHERE x.id = batch.id RETURNING x.id)
                SELECT max(id) INTO last FROM done;
                after := coalesce(last, after);
                INSERT INTO bench_bare_rows (batch, message)
                SELECT b, repeat('告警', 40)
                  FROM generate_series(1, b * inserts / batches - (b - 1) * inserts / batches);
                COMMIT;
            END LOOP;
        END $$""")
    t = time.perf_counter()
    sql.execute("CALL bench_bare_run(%s, %s, %s)", (int(batches), int(rows), int(inserts)))
    took = time.perf_counter() - t
    sql.execute("DROP PROCEDURE bench_bare_run")
    sql.execute("DROP TABLE bench_bare, bench_bare_rows")
    return took


def peak_rss_kib(pid):
    """VmHWM: the process's peak resident set."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/%d/status" % pid)


def stat_fields(pid):
    """/proc/PID/stat after the command name: [state, ppid, ...]."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid, children=False):
    """User + system CPU time the process (and its reaped children) used so far."""
    fields = stat_fields(pid)
    return sum(int(x) for x in fields[11:15 if children else 13]) / TICKS


def cluster_cpu_seconds(pg):
    """CPU time a PostgreSQL cluster used so far: the postmaster, its live
    children (backends, background processes) and those it has reaped (a
    pgbench connection's backend, once it exited)."""
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        postmaster = int(f.readline())
    total = cpu_seconds(postmaster, children=True)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = stat_fields(int(entry))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == postmaster:
            total += sum(int(x) for x in fields[11:13]) / TICKS
    return total


def children_cpu_seconds():
    """CPU time of this process's reaped children so far (wrk, pgbench)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


def province(small, prefix):
    """The report benchmarks' city (1,000 incubators, 100,000 tenants,
    1,000,000 occupancy intervals; a tenth with small) in a throwaway cluster
    with a migrated database "bench" and a daemon configured on it (not
    started). Returns (pg, daemon, city, generate_s, load_s); the caller
    stops the daemon and destroys pg."""
    import tempfile
    import time

    import city as citygen
    from harness import Daemon, PgCluster, run_cli

    scale = 10 if small else 1
    params = citygen.Params(incubators=1000 // scale, tenants=100000 // scale,
                            intervals=1000000 // scale, years=6, snapshot_days=30,
                            seed=20151, today=citygen.bureau_today())
    pg = PgCluster()
    try:
        pg.start()
        pg.create_database("bench")
        work = tempfile.mkdtemp(prefix=prefix)
        daemon = Daemon(work, pg.conninfo("bench"), extra_config=(
            "[server]\nrequest_timeout_ms = 60000\n"
            "[database]\nstatement_timeout_ms = 60000\n[log]\nlevel = info"))
        run_cli(daemon.config_path, "migrate")
        t0 = time.perf_counter()
        city = citygen.generate(params)
        t1 = time.perf_counter()
        with pg.connect("bench") as conn:
            citygen.load(conn, city)
            conn.execute("VACUUM ANALYZE")
    except BaseException:
        pg.destroy()
        raise
    return pg, daemon, city, t1 - t0, time.perf_counter() - t1
