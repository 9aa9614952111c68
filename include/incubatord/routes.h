/*
 * The route table: every endpoint is one line saying its method, path
 * pattern, who may call it, what it takes and what serves it. Most endpoints
 * are served by the generic handler: validate the body and query against
 * their tables, then one call of api.run(fn, ctx, args).
 */
#ifndef INCUBATORD_ROUTES_H
#define INCUBATORD_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>
#include <jansson.h>

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
};

typedef void (*route_handler)(struct req *r);
/* Checks what a field table cannot (relations between fields); adds errors to v. */
typedef void (*route_check)(struct req *r, struct vctx *v, json_t *args);

struct route {
    enum evhttp_cmd_type method;
    const char *pattern;
    enum route_access access;
    unsigned flags;
    const char *fn;                  /* the api.run function of the generic handler */
    const struct field *body;        /* the body's fields ({NULL}-terminated), or NULL */
    const struct query_param *query; /* allowed query parameters ({NULL}-terminated), or NULL */
    route_check check;               /* optional cross-field check */
    route_handler handler;           /* a handler of its own, instead of the generic one */
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
