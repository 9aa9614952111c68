/*
 * The route table: every endpoint is one line saying its method, path
 * pattern, who may call it, what it takes and what serves it. Every endpoint
 * but the public ones is one API call, api.<fn>(ctx, args), after the body
 * and query are validated against their tables; hooks (authorize, prepare,
 * after) add what a route needs beyond that.
 */
#ifndef INCUBATORD_ROUTES_H
#define INCUBATORD_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>
#include <jansson.h>

#include "incubatord/apicall.h"
#include "incubatord/validate.h"

struct req;

/* Who may call a route. */
enum route_access {
    ACCESS_PUBLIC,    /* anyone, no token: health and metrics */
    ACCESS_ANY,       /* any valid token */
    ACCESS_ADMIN,     /* an admin token */
    ACCESS_INCUBATOR, /* an admin token, or the token of the incubator named by {code} */
};

enum route_flags {
    ROUTE_BODY = 1 << 0,          /* takes a JSON object body */
    ROUTE_BODY_OPTIONAL = 1 << 1, /* the body may also be empty */
    ROUTE_CSV = 1 << 2,           /* answers text/csv when asked (Accept: text/csv) */
    ROUTE_PATCH = 1 << 3,         /* the body is a patch: absent fields stay absent */
    ROUTE_NOLOG = 1 << 4,         /* no access-log line at info (health probes) */
    ROUTE_READ = 1 << 5,          /* a read that may lag a little: served by the read pool */
    ROUTE_BULK = 1 << 6,          /* a bulk body: limited by max_sync_body_bytes instead */
};

struct server;

/*
 * A handler of the daemon's own, for a route that is not one API call: the
 * public routes (health, readiness, metrics), and work the daemon does
 * itself (a channel's test message). It answers through done(arg, reply),
 * at once or later from the loop. A handler of a route with a token runs
 * after every check of the pipeline, with the validated args.
 */
struct route_env {
    struct server *srv;
    const char *request_id;
    int timeout_ms;     /* what is left of the request's deadline */
    const char *peer;   /* the client's address, or NULL */
    const json_t *args; /* the validated arguments; NULL for a public route */
    bool dry_run;       /* ?dry_run=true: check, change nothing, send nothing */
};
typedef void (*route_handler)(const struct route_env *env, apicall_cb done, void *arg);

/* Checks what a field table cannot (relations between fields); adds errors to v. */
typedef void (*route_check)(struct req *r, struct vctx *v, json_t *args);

/*
 * The hooks of a route, pure functions over JSON, called in this order
 * around its API call:
 *
 * authorize: who may make this request beyond what the access column says.
 *   ctx is the caller (api.run's context: admin, incubator, ...), request the
 *   path parameters and the raw query parameters as strings, before they are
 *   validated (scope is decided first). Returns NULL to go on, or the 403's
 *   detail.
 * prepare: completes the validated args before the call. What the answer
 *   needs later (a secret to show once) goes into keep. false: the call
 *   cannot be made (500).
 * after: a successful answer's last step before it is sent. doc is its
 *   parsed body (NULL for none), which it may change; effects receives what
 *   the daemon must do about it (see ROUTE_EFFECT_*).
 */
typedef const char *(*route_authorize)(const json_t *ctx, const json_t *request);
typedef bool (*route_prepare)(json_t *args, json_t *keep);
struct route_answer {
    int status;
    bool replayed;      /* an Idempotency-Key replay */
    const json_t *args; /* the call's arguments */
    const json_t *keep; /* what prepare kept */
};
typedef void (*route_after)(const struct route_answer *a, json_t *doc, json_t *effects);

/* The effects an after hook may ask for. */
#define ROUTE_EFFECT_FORGET_TOKEN "forget_token" /* integer: the token cache forgets this id */
/* string: the token cache forgets every token of this incubator (it closed) */
#define ROUTE_EFFECT_FORGET_INCUBATOR "forget_incubator"

struct csv_spec;

struct route {
    enum evhttp_cmd_type method;
    const char *pattern;
    enum route_access access;
    unsigned flags;
    const char *fn;                  /* the API function: api.<fn>(ctx, args) */
    const struct field *body;        /* the body's fields ({NULL}-terminated), or NULL */
    const struct query_param *query; /* allowed query parameters ({NULL}-terminated), or NULL */
    route_check check;               /* optional cross-field check */
    route_handler handler;           /* the daemon's own answer instead of an API call */
    route_authorize authorize;       /* optional hooks, see above */
    route_prepare prepare;
    route_after after;
    /*
     * The body may also be text/csv: turned by csv.c into the JSON of body,
     * validated alike, its errors named "row N: field", and the call's args
     * get "source": "csv" and "rows" (each record's row number).
     */
    const struct csv_spec *csv;
};

extern const struct route routes[];
extern const size_t routes_count;

struct route_param {
    const char *name;
    const char *value; /* points into the path copy given to route_match */
    size_t len;
};

enum route_match_result {
    ROUTE_FOUND,
    ROUTE_NOT_FOUND,  /* no pattern matches the path, or a parameter is malformed */
    ROUTE_BAD_METHOD, /* the path matches, the method does not: see allow */
};

/*
 * Finds the route of a method and path. Parameters are checked by name:
 * {code} and {external_id} by API.md's patterns, {id} a positive integer,
 * {period} YYYY-MM. allow (at least 64 bytes) lists the methods of the path
 * for a 405's Allow header.
 */
enum route_match_result route_match(enum evhttp_cmd_type method, const char *path,
                                    const struct route **out, struct route_param *params,
                                    int max_params, int *nparams, char *allow, size_t allowlen);

/* "GET" for EVHTTP_REQ_GET, ... */
const char *route_method_name(enum evhttp_cmd_type method);

/* Whether a path parameter's value is well-formed for its name. */
bool route_param_valid(const char *name, const char *value, size_t len);

#endif
