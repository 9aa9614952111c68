/*
 * The console: the bureau's web page. Its files (console/ at the top of the
 * repository) are embedded in the binary at build time
 * (cmake/embed_console.cmake) and served under /console/ without a token:
 * they hold no data, every datum comes from the API with the token the
 * person signs in with.
 */
#ifndef INCUBATORD_CONSOLE_H
#define INCUBATORD_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>

#include "incubatord/apicall.h"

/* One embedded file. */
struct console_file {
    const char *path; /* relative to console/, e.g. "index.html", "js/app.js" */
    const char *data; /* NUL-terminated (the NUL is not part of the file) */
    size_t len;
    const char *etag; /* a quoted strong validator: a prefix of the file's SHA-256 */
};

/* Generated: every file below console/, ordered by path. */
extern const struct console_file console_files[];
extern const size_t console_files_count;

/* The file at a path relative to console/, or NULL. */
const struct console_file *console_find(const char *path);

/*
 * Whether an If-None-Match header names etag (a quoted tag): a list of
 * entity tags, weak ones compared by their opaque part (RFC 9110 13.1.2),
 * or "*".
 */
bool console_etag_matches(const char *if_none_match, const char *etag);

/* Whether a request path is the console's: "/", "/console" or below "/console/". */
bool console_owns(const char *path);

/*
 * Answers a request for a path console_owns(): the file with its ETag (304
 * when If-None-Match names it), a redirect to /console/, 404 problem+json
 * for a file that does not exist, 405 for a method other than GET and HEAD.
 * Every answer carries the console's security headers (API.md, Console).
 */
void console_serve(enum evhttp_cmd_type method, const char *path, const char *if_none_match,
                   apicall_cb done, void *arg);

#endif
