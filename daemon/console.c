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

bool console_etag_matches(const char *header, const char *etag)
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

/* The security headers of every answer, then the answer's own: name, value, ..., NULL. */
#define SECURITY_HEADERS                                                                           \
    "Content-Security-Policy", CSP, "X-Content-Type-Options", "nosniff", "Referrer-Policy",        \
        "no-referrer", "X-Frame-Options", "DENY", "Cache-Control", "no-cache"

void console_serve(enum evhttp_cmd_type method, const char *path, const char *if_none_match,
                   apicall_cb done, void *arg)
{
    const struct console_file *f;
    char length[24];
    struct api_reply reply;

    memset(&reply, 0, sizeof(reply));
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        const char *const headers[] = {SECURITY_HEADERS, "Allow", "GET, HEAD", NULL};
        reply.status = 405;
        reply.detail = "the console's files are read with GET or HEAD";
        reply.headers = headers;
        done(arg, &reply);
        return;
    }
    if (strcmp(path, "/") == 0 || strcmp(path, "/console") == 0) {
        static const char moved[] = "/console/\n";
        snprintf(length, sizeof(length), "%zu", sizeof(moved) - 1);
        const char *const headers[] = {SECURITY_HEADERS, "Content-Length", length, NULL};
        reply.status = 302;
        reply.location = CONSOLE_PREFIX;
        reply.content_type = "text/plain; charset=utf-8";
        reply.body = moved;
        reply.body_len = sizeof(moved) - 1;
        reply.headers = headers;
        done(arg, &reply);
        return;
    }
    const char *name = path + sizeof(CONSOLE_PREFIX) - 1;
    f = console_find(name[0] == '\0' ? "index.html" : name);
    if (f == NULL) {
        const char *const headers[] = {SECURITY_HEADERS, NULL};
        reply.status = 404;
        reply.detail = "the console has no such file";
        reply.headers = headers;
        done(arg, &reply);
        return;
    }
    if (if_none_match != NULL && console_etag_matches(if_none_match, f->etag)) {
        const char *const headers[] = {SECURITY_HEADERS, "ETag", f->etag, NULL};
        reply.status = 304;
        reply.headers = headers;
        done(arg, &reply);
        return;
    }
    /* Set here, so that a HEAD answer carries the length of the GET's body. */
    snprintf(length, sizeof(length), "%zu", f->len);
    const char *const headers[] = {SECURITY_HEADERS, "ETag", f->etag,
                                   "Content-Length", length, NULL};
    reply.status = 200;
    reply.content_type = media_type(f->path);
    reply.body = f->data;
    reply.body_len = f->len;
    reply.headers = headers;
    done(arg, &reply);
}
