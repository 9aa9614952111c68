/*
 * The request pipeline: one request from its arrival to its answer, in one
 * direction. http_conn.c hands a request over; it is routed (routes.c),
 * authenticated (auth.c), checked against its route (access, the route's
 * authorize hook, media type, JSON, the field and query tables, the route's
 * check), completed by the route's prepare hook, and made one API call
 * (apicall.c); the reply comes back through the route's after hook and is
 * sent, logged and counted (metrics.c) in one place. Each request is
 * answered exactly once, also when its client left while the database was
 * working.
 */
#ifndef INCUBATORD_HTTP_H
#define INCUBATORD_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "incubatord/auth.h"
#include "incubatord/common.h"

struct server;
struct route;

#define HTTP_MAX_PARAMS     4
#define HTTP_REQUEST_ID_LEN 32

/* One request, from its arrival to its answer. Owned by http.c. */
struct req {
    struct evhttp_request *ev; /* NULL once answered */
    struct server *srv;
    const struct route *route; /* NULL when no route matched */
    char id[HTTP_REQUEST_ID_LEN + 1];
    const char *method; /* "GET", ... */
    char *path;         /* the path, without the query */
    struct {
        const char *name; /* the pattern's "{name}", without braces */
        char *value;
    } params[HTTP_MAX_PARAMS];
    int nparams;
    struct evkeyvalq query; /* the query string, decoded */
    json_t *body;           /* the parsed body, when the route takes one */
    const char *raw_body;   /* the body's bytes (NUL-terminated copy), for hashing */
    size_t raw_body_len;
    struct auth_token token; /* the caller, once authenticated */
    bool authenticated;
    bool token_presented;      /* an Authorization: Bearer header was sent */
    bool token_expired;        /* it was a known token past its expires_at */
    bool dry_run;              /* ?dry_run=true on a write: rolled back, Dry-Run: true */
    char idempotency_key[256]; /* "" when none was sent */
    int64_t started_us;
    int64_t deadline_ms; /* monotonic; the answer is due by then */
    bool client_gone;    /* evhttp closed the connection */
    int status;          /* the answer's status, for the access log */
    char problem[256];   /* a refusal's reason, for the access log */
    size_t reply_bytes;
    json_t *args;     /* the API call's arguments, kept for the after hook */
    json_t *keep;     /* what the prepare hook left for the after hook */
    json_t *csv_rows; /* a text/csv body's row numbers, one per record; else NULL */
};

/* Starts listening; false (with a logged reason) when the address is unusable. */
bool http_start(struct server *srv) WARN_UNUSED;
/* Stops accepting connections (in-flight requests still finish). */
void http_stop_accepting(struct server *srv);
void http_free(struct server *srv);
/* Applies reloadable settings (limits, timeouts). */
void http_apply_config(struct server *srv);

#endif
