/*
 * The console's files. See console.h.
 *
 * The files are static and built into the binary, so their ETags are
 * computed at build time and a client revalidates with If-None-Match
 * (Cache-Control: no-cache): a new binary is seen at once, an unchanged
 * file costs a 304. The headers are those of API.md's Console section on
 * every answer, errors and redirects included: the page runs no inline
 * script or style and talks to nothing but this daemon.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "incubatord/console.h"
#include "incubatord/http.h"

#define CONSOLE_PREFIX "/console/"

static const char CSP[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                          "base-uri 'none'; form-action 'self'";

static const struct {
    const char *suffix;
    const char *type;
} media_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

const struct console_file *console_find(const char *path)
{
    size_t lo = 0, hi = console_files_count;
    /* The generated table is sorted by path (CMake's list(SORT), bytewise). */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(path, console_files[mid].path);
        if (c == 0)
            return &console_files[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

bool console_owns(const char *path)
{
    return strcmp(path, "/") == 0 || strcmp(path, "/console") == 0 ||
           strncmp(path, CONSOLE_PREFIX, sizeof(CONSOLE_PREFIX) - 1) == 0;
}

static const char *media_type(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < ARRAY_LEN(media_types); i++) {
        size_t m = strlen(media_types[i].suffix);
        if (n >= m && strcasecmp(path + n - m, media_types[i].suffix) == 0)
            return media_types[i].type;
    }
    return "application/octet-stream";
}

/*
 * Whether an If-None-Match header names etag: a list of entity tags
 * (weak ones compare by their opaque part, RFC 9110 13.1.2) or "*".
 */
static bool etag_matches(const char *header, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == elen && strncmp(p, etag, elen) == 0)
            return true;
        if (end == NULL)
            break;
        p = end;
    }
    return false;
}

static void security_headers(struct req *r)
{
    http_add_header(r, "Content-Security-Policy", CSP);
    http_add_header(r, "X-Content-Type-Options", "nosniff");
    http_add_header(r, "Referrer-Policy", "no-referrer");
    http_add_header(r, "X-Frame-Options", "DENY");
    http_add_header(r, "Cache-Control", "no-cache");
}

void console_serve(struct req *r)
{
    enum evhttp_cmd_type method = evhttp_request_get_command(r->ev);
    const struct console_file *f;
    char length[24];

    security_headers(r);
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        http_add_header(r, "Allow", "GET, HEAD");
        http_reply_problem(r, 405, "the console's files are read with GET or HEAD", NULL);
        return;
    }
    if (strcmp(r->path, "/") == 0 || strcmp(r->path, "/console") == 0) {
        static const char moved[] = "/console/\n";
        http_add_header(r, "Location", CONSOLE_PREFIX);
        snprintf(length, sizeof(length), "%zu", sizeof(moved) - 1);
        http_add_header(r, "Content-Length", length);
        http_reply_raw(r, 302, "text/plain; charset=utf-8", moved, sizeof(moved) - 1);
        return;
    }
    const char *name = r->path + sizeof(CONSOLE_PREFIX) - 1;
    f = console_find(name[0] == '\0' ? "index.html" : name);
    if (f == NULL) {
        http_reply_problem(r, 404, "the console has no such file", NULL);
        return;
    }
    http_add_header(r, "ETag", f->etag);
    const char *inm =
        evhttp_find_header(evhttp_request_get_input_headers(r->ev), "If-None-Match");
    if (inm != NULL && etag_matches(inm, f->etag)) {
        http_reply_raw(r, 304, NULL, NULL, 0);
        return;
    }
    /* Set here, so that a HEAD answer carries the length of the GET's body. */
    snprintf(length, sizeof(length), "%zu", f->len);
    http_add_header(r, "Content-Length", length);
    http_reply_raw(r, 200, media_type(f->path), f->data, f->len);
}
