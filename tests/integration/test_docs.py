"""Every curl in the docs runs as pasted and gives the status the doc states.

The conventions a doc follows (docs/api.md, "Examples that run", says the same):

- A **step** is a fenced block labelled `sh`, `bash` or `shell` that holds at
  least one `curl` command. Other blocks (`json`, `text`, unlabelled output,
  `sh` blocks without curl such as `scripts/run` or `incubatord token ...`)
  are not run. Every step of a file runs, in order, against one fresh daemon
  per file whose database holds the demo city (tests/fixtures/city.py
  --small, as `scripts/run --demo` loads it: incubators C-0001 to C-0012).
- **The status** of each curl is stated next to it as `→ NNN` (or `-> NNN`)
  in a comment: on the command's own line(s) (`curl -s $BASE/healthz   # →
  200`), or in the comment lines directly above the command (`# Register an
  incubator → 201`). A command with several curls states as many statuses,
  in order, in its own comment. Every curl must state one; the curls a step
  runs must be exactly those it states, in that order (no loops around a
  curl). The doc's own `-w`/`--write-out` is not available (the test uses it).
- **Variables**: the test provides `$BASE` (the daemon's address), `$TOKEN`
  (an admin token), `$REVIEWER_TOKEN` (a second admin token, for the
  review of a payout run) and `$INCUBATOR_TOKEN` (a token of the demo
  incubator C-0001). A line of a step that assigns one of them (`BASE=http://...`,
  `TOKEN=$(cat var/admin-token)`) is left out, so a doc can show the reader
  where they come from.
- **Ids from earlier answers** are captured into shell variables by the doc
  itself, as a reader pasting it would: `TOKEN_ID=$(curl ... | jq -r .id)
  # → 201`, then `curl -X DELETE $BASE/v1/tokens/$TOKEN_ID ...`. Every
  variable a step sets is kept for the later steps of the same file (each
  step runs in `bash` with `set -a`, and its environment is carried on). A
  file a step needs (`-d @tenants.json`, `--data-binary @tenants.csv`) is
  written by an earlier step (`cat > tenants.csv <<'EOF' ... EOF`); steps run
  in one scratch directory per file.
"""

import glob
import os
import re
import subprocess

import pytest

from conftest import TEMPLATE, start_daemon, stop_and_check
from harness import Api, run_cli, unique_name

import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../fixtures"))
import city as citygen  # noqa: E402

SOURCE = os.environ.get("INCUBATORD_SOURCE_DIR",
                        os.path.join(os.path.dirname(__file__), "../.."))
DEMO_TEMPLATE = "incubatord_docs_demo"
STEP_LANGS = {"sh", "bash", "shell"}
PROVIDED = ("BASE", "TOKEN", "REVIEWER_TOKEN", "INCUBATOR_TOKEN")
STATUS = re.compile(r"(?:→|->)\s*([1-5][0-9][0-9])\b")
CURL = re.compile(r"(?:^|[;&|(`]|\$\()\s*curl\s", re.M)
ASSIGNS_PROVIDED = re.compile(r"^\s*(?:export\s+)?(?:%s)=" % "|".join(PROVIDED))


def doc_files():
    return ["README.md"] + sorted(os.path.relpath(p, SOURCE)
                                  for p in glob.glob(os.path.join(SOURCE, "docs", "*.md")))


def fenced_blocks(text):
    """(first line number, info string, lines) of each fenced block of a markdown text."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+)\s*(.*)$", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        body, j = [], i + 1
        while j < len(lines) and not re.match(r"^\s*" + fence + r"\s*$", lines[j]):
            line = lines[j]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            j += 1
        blocks.append((i + 1, info, body))
        i = j + 1
    return blocks


def commands(lines):
    """Splits shell lines into commands: [(code, comment text, comments above)].

    Quote-aware enough for the docs: a command goes on over a trailing
    backslash and over a quoted string that spans lines (a JSON body); a
    comment is a '#' outside quotes after a blank; a here-document's lines
    belong to its command."""
    out, above = [], []
    code, comment = "", ""
    quote = None
    heredoc = None
    for line in lines:
        if heredoc is not None:
            code += line + "\n"
            if line.strip() == heredoc:
                heredoc = None
                out.append((code, comment, above))
                code, comment, above = "", "", []
            continue
        if quote is None and code == "" and line.strip().startswith("#"):
            above.append(line.strip())
            continue
        if quote is None and code == "" and line.strip() == "":
            above = []
            continue
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if quote:
                if c == "\\" and quote == '"':
                    code += line[i:i + 2]
                    i += 2
                    continue
                if c == quote:
                    quote = None
                code += c
            elif c in "'\"":
                quote = c
                code += c
            elif c == "#" and (i == 0 or line[i - 1] in " \t"):
                comment += " " + line[i:]
                break
            else:
                code += c
            i += 1
        if quote:
            code += "\n"
            continue
        if code.rstrip().endswith("\\"):
            code = code.rstrip()[:-1] + " "
            continue
        m = re.search(r"<<-?\s*'?\"?([A-Za-z_]+)'?\"?", code)
        if m:
            heredoc = m.group(1)
            code += "\n"
            continue
        if code.strip():
            out.append((code, comment, above))
        code, comment, above = "", "", []
    if code.strip():
        out.append((code, comment, above))
    return out


def read(path):
    with open(os.path.join(SOURCE, path), encoding="utf-8") as f:
        return f.read()


def has_steps(path):
    return any((info.split() or [""])[0] in STEP_LANGS and CURL.search("\n".join(body))
               for _, info, body in fenced_blocks(read(path)))


def steps(path, text=None):
    """[(line, script, expected statuses)] of one doc; a curl without a status fails."""
    text = read(path) if text is None else text
    found = []
    for line, info, body in fenced_blocks(text):
        lang = info.split()[0] if info else ""
        if lang not in STEP_LANGS:
            continue
        expected = []
        for code, comment, above in commands(body):
            n = len(CURL.findall(code))
            if n == 0:
                continue
            own = STATUS.findall(comment)
            if len(own) >= n:
                expected += own[:n]
                continue
            up = STATUS.findall(" ".join(above))
            assert n == 1 and not own and up, (
                f"{path}:{line}: a curl without its status (state it as '# → NNN'):\n{code}")
            expected.append(up[0])
        if expected:
            script = "\n".join(x for x in body if not ASSIGNS_PROVIDED.match(x))
            found.append((line, script, [int(s) for s in expected]))
    return found


# The curl of every step: the real one, with its status appended to a file.
PRELUDE = r"""
set -a
curl() {
    local err rc
    err=$(mktemp)
    command curl "$@" --write-out '%{stderr}\n@@doctest-status=%{http_code}\n' 2>"$err"
    rc=$?
    { grep -o '@@doctest-status=[0-9]*' "$err" | tail -n 1 | cut -d= -f2 || true; } >>"$DOCTEST_STATUS"
    grep -v '@@doctest-status=' "$err" >&2
    rm -f "$err"
    return $rc
}
"""
EPILOGUE = '\nenv -0 >"$DOCTEST_ENV"\n'
CARRIED_OUT = ("PWD", "OLDPWD", "SHLVL", "_", "DOCTEST_STATUS", "DOCTEST_ENV")


def run_step(script, env, cwd):
    status_file = os.path.join(cwd, ".doctest-status")
    env_file = os.path.join(cwd, ".doctest-env")
    for f in (status_file, env_file):
        if os.path.exists(f):
            os.unlink(f)
    p = subprocess.run(["bash", "--noprofile", "--norc", "-c", PRELUDE + script + EPILOGUE],
                       cwd=cwd, capture_output=True, text=True, timeout=120,
                       env=dict(env, DOCTEST_STATUS=status_file, DOCTEST_ENV=env_file))
    with open(status_file, "a+") as f:
        f.seek(0)
        got = [int(s) if s.strip().isdigit() else 0 for s in f.read().split()]
    new_env = dict(env)
    if os.path.exists(env_file):
        with open(env_file, "rb") as f:
            for item in f.read().split(b"\0"):
                k, sep, v = item.decode("utf-8", "replace").partition("=")
                if sep and k not in CARRIED_OUT and not k.startswith("BASH_FUNC_"):
                    new_env[k] = v
    return got, p, new_env


@pytest.fixture(scope="module")
def demo_template(pg):
    """A migrated database holding the demo city, for each doc to start from."""
    pg.create_database(DEMO_TEMPLATE, template=TEMPLATE)
    city = citygen.generate(citygen.Params(today=citygen.bureau_today()))
    with pg.connect(DEMO_TEMPLATE) as conn:
        citygen.load(conn, city)
    yield DEMO_TEMPLATE
    pg.drop_database(DEMO_TEMPLATE)


def test_the_docs_have_steps():
    """The extractor finds the examples (so the test below cannot pass by finding none)."""
    counts = {path: sum(len(s[2]) for s in steps(path)) for path in doc_files()}
    assert counts["README.md"] >= 2, counts
    assert counts["docs/api.md"] >= 10, counts
    assert counts["docs/integration-guide.md"] >= 20, counts


def test_the_extractor_reads_the_conventions():
    body = [
        "# Register one → 201",
        "ID=$(curl -s -X POST $BASE/x -d '{",
        '  "a": "# not a comment → 404"}\' | jq -r .id)',
        "curl -s $BASE/healthz   # → 200",
        "curl -s $BASE/a && curl -s $BASE/b   # → 200, then → 404",
        "BASE=http://127.0.0.1:8080",
        "cat > f.csv <<'EOF'",
        "curl,in,a,here-document",
        "EOF",
    ]
    cmds = commands(body)
    assert [len(CURL.findall(c)) for c, _, _ in cmds] == [1, 1, 2, 0, 0]
    assert STATUS.findall(cmds[0][1]) == [] and STATUS.findall(" ".join(cmds[0][2])) == ["201"]
    assert STATUS.findall(cmds[2][1]) == ["200", "404"]
    assert ASSIGNS_PROVIDED.match(body[5]) and not ASSIGNS_PROVIDED.match("BASE_URL=x")
    assert steps("x.md", "```sh\ncurl -s $BASE/a  # → 200\nBASE=x\n```\n") == \
        [(1, "curl -s $BASE/a  # → 200", [200])]
    with pytest.raises(AssertionError):
        # A curl that states no status is refused, not skipped.
        steps("x.md", "```sh\ncurl -s $BASE/healthz\n```\n")


@pytest.mark.parametrize("path", [p for p in doc_files() if has_steps(p)])
def test_doc_curls_give_their_status(path, pg, demo_template, tmp_path):
    db = unique_name("docs")
    pg.create_database(db, template=demo_template)
    workdir = str(tmp_path)
    os.chmod(workdir, 0o755)
    scratch = os.path.join(workdir, "scratch")
    os.mkdir(scratch)
    d = start_daemon(pg, db, workdir)
    try:
        r = Api(d, d.admin_token).post("/v1/incubators/C-0001/tokens", {"name": "docs-test"})
        assert r.status == 201, r
        reviewer = run_cli(d.config_path, "token", "create", "--admin",
                           "docs-reviewer").stdout.strip()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch,
               "LANG": "C.UTF-8", "BASE": f"http://127.0.0.1:{d.port}",
               "TOKEN": d.admin_token, "REVIEWER_TOKEN": reviewer,
               "INCUBATOR_TOKEN": r.json()["token"]}
        for line, script, expected in steps(path):
            got, p, env = run_step(script, env, scratch)
            assert got == expected, (
                f"{path}:{line}: the step's curls answered {got}, the doc says {expected}\n"
                f"--- step ---\n{script}\n--- stdout ---\n{p.stdout[-3000:]}\n"
                f"--- stderr ---\n{p.stderr[-2000:]}")
    finally:
        stop_and_check(d)
        pg.drop_database(db)
