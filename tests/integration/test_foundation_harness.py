"""The harness's own guard: a sanitizer report in a daemon's log or a
command's stderr fails the test (the ASan+UBSan run relies on it)."""

import pytest

from harness import Daemon, sanitizer_report

REPORTS = [
    "==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x6030000291b8\n",
    "==4242==ERROR: LeakSanitizer: detected memory leaks\n",
    "daemon/http.c:164:14: runtime error: member access within null pointer\n",
]


def test_sanitizer_reports_are_recognised():
    for report in REPORTS:
        found = sanitizer_report("2026-11-26T08:00:00Z incubatord[1] info: fine\n" + report)
        assert found is not None and found.startswith(report.strip())
    assert sanitizer_report("incubatord[1] info: GET /healthz 200\nruntime: 5 ms\n") is None


def test_a_report_in_the_log_fails_stop(workdir):
    d = Daemon(workdir, "dbname=unused")
    with open(d.log_path, "w") as f:
        f.write("incubatord started\n" + REPORTS[0])
    with pytest.raises(AssertionError, match="sanitizer report"):
        d.assert_no_sanitizer_report()
