/*
 * The HTTP server on evhttp: hardening, the request context, dispatch through
 * the route table, authentication and scope, and every way of answering
 * (JSON, CSV, problem+json). Each request is answered exactly once, also when
 * its client left while the database was working.
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
#include "incubatord/db.h"

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
    char idempotency_key[256]; /* "" when none was sent */
    int64_t started_us;
    int64_t deadline_ms;      /* monotonic; the answer is due by then */
    struct db_query *pending; /* the database work in flight, if any */
    bool client_gone;         /* evhttp closed the connection */
    int status;               /* the answer's status, for the access log */
    size_t reply_bytes;
    /*
     * A handler's last word on a successful api.run answer, before it is
     * sent: doc is the parsed JSON body (which it may change), or NULL when
     * there is none (204).
     */
    void (*on_success)(struct req *r, int status, json_t *doc);
    bool replayed; /* the answer is an Idempotency-Key replay */
    /*
     * A ROUTE_READ call sent to the read pool: its api.run arguments, kept
     * to send it once more to the primary when the read pool fails it.
     */
    const char *read_fn;
    char *read_ctx, *read_args;
    char *secret;  /* a secret to show once (a new token); wiped when the request ends */
};

/* Starts listening; false (with a logged reason) when the address is unusable. */
bool http_start(struct server *srv) WARN_UNUSED;
/* Stops accepting connections (in-flight requests still finish). */
void http_stop_accepting(struct server *srv);
void http_free(struct server *srv);
/* Applies reloadable settings (limits, timeouts). */
void http_apply_config(struct server *srv);
/* Requests received and not answered yet. */
int http_inflight(const struct server *srv);
int http_open_connections(const struct server *srv);

/* Path parameter by name ("code"), or NULL. */
const char *req_param(const struct req *r, const char *name);
/* Query parameter by name, or NULL. */
const char *req_query(const struct req *r, const char *name);
/* Milliseconds left before the request's deadline (at least 1). */
int req_remaining_ms(const struct req *r);

/* Answers with a JSON document given as text (e.g. built by PostgreSQL). */
void http_reply_json_text(struct req *r, int status, const char *json, size_t len);
/* Answers with a JSON value (consumed). */
void http_reply_json(struct req *r, int status, json_t *body);
/* Answers with a body of any type, e.g. "text/csv; charset=utf-8". */
void http_reply_raw(struct req *r, int status, const char *content_type, const char *body,
                    size_t len);
/* Answers 204 No Content. */
void http_reply_empty(struct req *r, int status);
/*
 * Answers with RFC 9457 problem details of API.md's table: the type and title
 * follow from the status; errors (consumed, may be NULL) is a list of
 * {"field", "message"}.
 */
void http_reply_problem(struct req *r, int status, const char *detail, json_t *errors);
/* Answers for a failed database call: 503 (+Retry-After), 409, or 500 with a log line. */
void http_reply_db_failure(struct req *r, const struct db_result *res);
/* Adds a response header before answering. */
void http_add_header(struct req *r, const char *name, const char *value);
/* Whether the client asked for CSV (Accept: text/csv). */
bool req_wants_csv(const struct req *r);

/*
 * The common shape of an API call: one SQL function call, api.run(fn, ctx,
 * args), whose row (status, body, location, replayed) becomes the answer.
 * ctx carries the caller, the request and "today"; args is consumed.
 */
void req_call_api(struct req *r, const char *fn, json_t *args);

/*
 * The generic handler's first half: path parameters, the query (by the
 * route's table) and the validated body merged into one args object. Answers
 * 400 or 422 itself and returns NULL when something is wrong.
 */
json_t *req_build_args(struct req *r);

/* The context object every api.run call receives (consumed by the caller). */
json_t *req_context(const struct req *r);

#endif
