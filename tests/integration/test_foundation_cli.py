"""The command line: usage errors exit 2 with the usage on stderr, failures
exit 1 with a reason, check-config names the line and key, version, and the
token commands against a real database."""

import os
import re
import subprocess

import pytest

from harness import BIN, create_incubator, run_cli, sanitizer_report


def incubatord(*args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)
    assert sanitizer_report(p.stderr) is None, p.stderr
    return p


BAD_USAGE = [
    ["bogus"], ["run", "extra"], ["migrate", "extra"], ["version", "x"], ["token"],
    ["token", "frob"], ["token", "create"], ["token", "create", "--admin"],
    ["token", "create", "--incubator", "HRB-001"], ["token", "create", "--admin", "a", "b"],
    ["token", "create", "--nope", "x"], ["token", "revoke"], ["token", "revoke", "1", "2"],
    ["-x"], ["--nope"], ["-c"], ["migrate", "--print"], ["--reference"],
]


@pytest.mark.parametrize("args", BAD_USAGE, ids=lambda a: " ".join(a) or "none")
def test_bad_arguments_exit_2_with_usage(args):
    p = incubatord(*args)
    assert p.returncode == 2, p
    assert p.stdout == ""
    assert "usage: incubatord" in p.stderr


def test_bad_values_exit_2():
    for args in (["token", "revoke", "abc"], ["token", "revoke", "0"], ["token", "revoke", "-1"],
                 ["token", "create", "--admin", ""], ["token", "create", "--admin", "x" * 101]):
        p = incubatord("-c", "/dev/null", *args)
        assert p.returncode == 2, (args, p)
        assert p.stdout == "" and p.stderr.startswith("incubatord: "), p.stderr


def test_help_and_version():
    p = incubatord("--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: incubatord") and p.stderr == ""
    for command in ("token create --admin NAME", "token revoke ID", "check-config", "migrate"):
        assert command in p.stdout
    p = incubatord("version")
    assert p.returncode == 0
    assert re.fullmatch(r"incubatord \d+\.\d+\.\d+ \(schema \d+\)\n", p.stdout), p.stdout


def test_check_config(workdir):
    good = os.path.join(workdir, "good.conf")
    with open(good, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:9999\n[webhook]\nurl = https://example.org/h\n"
                "secret = s3cret\n")
    p = incubatord("check-config", "-c", good)
    assert p.returncode == 0 and "configuration is valid" in p.stdout, p
    p = incubatord("-c", good, "check-config", "--print")
    assert p.returncode == 0 and "listen = 127.0.0.1:9999" in p.stdout
    assert "s3cret" not in p.stdout and "secret = ***" in p.stdout
    p = incubatord("check-config", "--reference")
    assert p.returncode == 0 and "| `[server] max_body_bytes` |" in p.stdout

    broken = os.path.join(workdir, "broken.conf")
    with open(broken, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:9999\n\n[database]\npool_size = many\n")
    p = incubatord("check-config", "-c", broken)
    assert p.returncode == 1 and p.stdout == ""
    assert f"{broken}:5:" in p.stderr and "[database] pool_size" in p.stderr, p.stderr
    with open(broken, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:9999\nlisen = 127.0.0.1:1\n")
    p = incubatord("check-config", "-c", broken)
    assert p.returncode == 1
    assert f"{broken}:3:" in p.stderr and "[server] lisen: unknown key" in p.stderr, p.stderr
    p = incubatord("check-config", "-c", os.path.join(workdir, "missing.conf"))
    assert p.returncode == 1 and "cannot open" in p.stderr
    # The daemon itself refuses to start on a broken file, saying the same.
    p = incubatord("-c", broken)
    assert p.returncode == 1 and "[server] lisen: unknown key" in p.stderr


def test_token_commands(daemon, admin, sql):
    p = run_cli(daemon.config_path, "token", "create", "--incubator", "NOPE", "x", check=False)
    assert p.returncode == 1 and p.stdout == ""
    assert "no incubator NOPE" in p.stderr, p.stderr

    create_incubator(admin)
    p = run_cli(daemon.config_path, "token", "create", "--incubator", "HRB-001", "erp")
    token = p.stdout.strip()
    # The secret alone on stdout, once; what it is on stderr.
    assert re.fullmatch(r"ikd_[A-Za-z0-9_-]{43}\n", p.stdout)
    assert "for incubator HRB-001" in p.stderr and "shown only this once" in p.stderr
    assert daemon.request("GET", "/v1/incubators/HRB-001", token=token).status == 200
    token_id = sql.execute("SELECT id FROM tokens WHERE name = 'erp'").fetchone()[0]
    assert sql.execute("SELECT created_by FROM tokens WHERE id = %s",
                       (token_id,)).fetchone()[0].startswith("cli:")

    p = run_cli(daemon.config_path, "token", "revoke", str(token_id))
    assert p.returncode == 0 and "revoked" in p.stderr
    p = run_cli(daemon.config_path, "token", "revoke", "999999", check=False)
    assert p.returncode == 1 and "no token 999999" in p.stderr
    summaries = [r[0] for r in sql.execute("SELECT summary FROM audit_log ORDER BY id")]
    assert any(f"revoked token {token_id}" in s for s in summaries)


def test_migrate_twice(daemon):
    for _ in range(2):
        p = run_cli(daemon.config_path, "migrate")
        assert p.returncode == 0 and "schema at version" in p.stdout, p
    assert daemon.request("GET", "/readyz").status == 200
