"""The console's files as HTTP serves them (API.md, Console): the redirect
from /, every file of console/ byte for byte with its ETag, 304 on
If-None-Match, no-cache, the security headers on every answer (errors and
redirects too), 404 problem+json for a missing file, HEAD, and no token
needed (or looked at)."""

import hashlib
import os
import re

import pytest

from harness import assert_problem

SOURCE = os.environ.get("INCUBATORD_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CONSOLE = os.path.join(SOURCE, "console")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}


def console_files():
    for root, _, names in os.walk(CONSOLE):
        for n in names:
            path = os.path.join(root, n)
            yield os.path.relpath(path, CONSOLE).replace(os.sep, "/"), path


def assert_security_headers(r):
    assert r.header("Content-Security-Policy") == CSP, r.headers
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Referrer-Policy") == "no-referrer"
    assert r.header("X-Frame-Options") == "DENY"
    assert [k for k, _ in r.headers if k.lower() == "content-security-policy"] == \
        ["Content-Security-Policy"]


def test_root_redirects_to_the_console(daemon):
    for path in ("/", "/console"):
        r = daemon.request("GET", path)
        assert r.status == 302, r
        assert r.header("Location") == "/console/"
        assert_security_headers(r)


def test_every_file_is_served_as_it_is_in_the_repository(daemon):
    files = dict(console_files())
    assert "index.html" in files and "js/app.js" in files and "style.css" in files
    for rel, path in files.items():
        with open(path, "rb") as f:
            data = f.read()
        r = daemon.request("GET", f"/console/{rel}")
        assert r.status == 200, (rel, r)
        assert r.body == data, rel
        assert r.header("Content-Type") == TYPES[os.path.splitext(rel)[1]], rel
        assert r.header("Content-Length") == str(len(data))
        assert r.header("Cache-Control") == "no-cache"
        assert r.header("ETag") == '"%s"' % hashlib.sha256(data).hexdigest()[:20]
        assert_security_headers(r)
    index = daemon.request("GET", "/console/")
    assert index.body == open(files["index.html"], "rb").read()


def test_if_none_match_revalidates(daemon):
    r = daemon.request("GET", "/console/js/app.js")
    etag = r.header("ETag")
    for inm in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = daemon.request("GET", "/console/js/app.js", headers={"If-None-Match": inm})
        assert again.status == 304, inm
        assert again.body == b"" and again.header("ETag") == etag
        assert again.header("Cache-Control") == "no-cache"
        assert_security_headers(again)
    for inm in ('"other"', etag[:-2] + '"', ""):
        assert daemon.request("GET", "/console/js/app.js",
                              headers={"If-None-Match": inm}).status == 200, inm
    # Another file's ETag does not match.
    css = daemon.request("GET", "/console/style.css").header("ETag")
    assert css != etag
    assert daemon.request("GET", "/console/js/app.js",
                          headers={"If-None-Match": css}).status == 200


def test_head_has_the_headers_of_get_and_no_body(daemon):
    get = daemon.request("GET", "/console/style.css")
    head = daemon.request("HEAD", "/console/style.css")
    assert head.status == 200 and head.body == b""
    for h in ("Content-Type", "Content-Length", "ETag", "Cache-Control",
              "Content-Security-Policy"):
        assert head.header(h) == get.header(h), h


@pytest.mark.parametrize("path", [
    "/console/nope.js", "/console/js/", "/console/../schema/functions/00_base.sql",
    "/console/%2e%2e/CMakeLists.txt", "/console/index.html/", "/console//index.html",
    "/console/JS/APP.JS", "/consolex", "/console.html",
])
def test_missing_files_are_404_problem_json(daemon, path):
    r = daemon.request("GET", path)
    assert_problem(r, 404)
    if path.startswith("/console/"):
        assert_security_headers(r)


def test_only_get_and_head(daemon):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = daemon.request(method, "/console/index.html", body=b"{}")
        assert_problem(r, 405)
        assert r.header("Allow") == "GET, HEAD"
        assert_security_headers(r)


def test_no_token_is_needed_or_read(daemon):
    for token in (None, "x" * 43, daemon.admin_token):
        r = daemon.request("GET", "/console/", token=token)
        assert r.status == 200 and r.header("WWW-Authenticate") is None


def test_the_page_has_no_inline_script_or_style():
    for rel, path in console_files():
        if not rel.endswith((".html", ".js", ".svg")):
            continue
        text = open(path, encoding="utf-8").read()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), rel
        assert "<style" not in text and not re.search(r"\sstyle=", text), rel
        assert not re.search(r"\bon[a-z]+=\"", text), rel           # inline handlers
        assert not re.search(r"\.(inner|outer)HTML\b|insertAdjacentHTML|\beval\(", text), rel
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), rel  # nothing outside
        assert "localStorage.setItem(TOKEN" not in text and "document.cookie" not in text, rel


def test_every_label_is_in_both_dictionaries():
    """t("key") anywhere in the page names a key of zh.js and en.js, and
    both dictionaries have the same keys."""
    def keys(name):
        text = open(os.path.join(CONSOLE, "js", "lang", name), encoding="utf-8").read()
        return set(re.findall(r'^\s*"([^"]+)":', text, re.M))
    zh, en = keys("zh.js"), keys("en.js")
    assert zh == en, (zh ^ en)
    used = set()
    for rel, path in console_files():
        if rel.endswith(".js") and "/lang/" not in f"/{rel}":
            used |= set(re.findall(r'\bt\("([a-z0-9_.]+)"', open(path, encoding="utf-8").read()))
    assert used and used - zh == set(), sorted(used - zh)
