/*
 * An API call, the same whoever makes it (an HTTP request, a scheduled job,
 * the command line): the context api.run receives, built here with the same
 * keys for every caller; the one SQL statement; and its row decoded into a
 * plain struct api_reply. A database failure becomes a reply too (503, 409
 * or 500), so a caller handles one shape and never sees a PGresult.
 */
#ifndef INCUBATORD_APICALL_H
#define INCUBATORD_APICALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "incubatord/db.h"

/*
 * Makes room for the prepared statements of nfunctions API functions (the
 * route table's); a function beyond them goes through api.run.
 */
void apicall_init(size_t nfunctions);
void apicall_free(void);

/* Who calls, and on what occasion. */
struct api_caller {
    const char *request_id;
    const char *method;     /* "GET", ..., or "JOB", "CLI" */
    const char *path;       /* the request's path, the job's name, the command */
    int64_t token_id;       /* 0: no token (a job, the command line) */
    const char *token_name; /* the token's name, "scheduler", "cli:<user>" */
    bool admin;
    const char *incubator; /* the token's incubator code; NULL or "" for none */
};

/*
 * The context of api.run: request_id, method, path, today (the bureau's
 * date), now (UTC, to the second), token_id, token_name, admin, incubator;
 * every key present (null where it does not apply). Callers add their own
 * keys to it (idempotency_key, format, period).
 */
json_t *apicall_context(const struct api_caller *c);

/*
 * The own-incubator rule, over such a context: an admin may act on any
 * incubator, an incubator's token on its own only. code may be NULL.
 */
bool apicall_own_incubator(const json_t *ctx, const char *code);

/* Adds an Idempotency-Key and the SHA-256 of the body it stands for. */
void apicall_context_idempotency(json_t *ctx, const char *key, const char *body, size_t len);

/*
 * An answer: of an api.run row, of a failed database call, or of a handler
 * of the daemon's own (health, metrics). Valid during the callback only.
 */
struct api_reply {
    int status;                 /* the HTTP status */
    const char *body;           /* status < 400: the body's text, or NULL for none */
    size_t body_len;            /* its length */
    const char *content_type;   /* NULL: application/json */
    const char *location;       /* a Location, or NULL */
    bool replayed;              /* an Idempotency-Key replay */
    const char *detail;         /* status >= 400: the problem's detail (NULL: the title) */
    const json_t *errors;       /* status >= 400: [{"field", "message"}], or NULL */
    int retry_after_s;          /* > 0: the answer carries Retry-After */
    const char *const *headers; /* more headers: name, value, ..., NULL; or NULL */
    char reason[256];           /* a failure's cause for the log, when it differs from detail */
};

typedef void (*apicall_cb)(void *arg, const struct api_reply *reply);

/*
 * Calls api.run(fn, ctx, args) on the pool (ctx and args consumed); cb gets
 * the reply, from the loop, within timeout_ms.
 */
void apicall_run(struct db_pool *pool, const char *fn, json_t *ctx, json_t *args, int timeout_ms,
                 apicall_cb cb, void *arg);

/*
 * The same for a read that may lag a little, sent to a read pool: when that
 * pool fails it (its connection lost, the standby cancelled the statement)
 * it runs once more on primary, counted in *fallbacks, before the caller
 * sees a 503.
 */
void apicall_run_read(struct db_pool *read, struct db_pool *primary, uint64_t *fallbacks,
                      const char *fn, json_t *ctx, json_t *args, int timeout_ms, apicall_cb cb,
                      void *arg);

/*
 * A GET's call on the primary, which the pool may pipeline with other reads
 * (db_query_read): its function is STABLE, and short (the routes that may
 * take seconds, reports and listings, are ROUTE_READ: apicall_run_read).
 */
void apicall_run_get(struct db_pool *pool, const char *fn, json_t *ctx, json_t *args,
                     int timeout_ms, apicall_cb cb, void *arg);

/*
 * A failed database call as a reply: 503 with Retry-After for a database
 * that is down, busy or slow (or a transient SQLSTATE), 409 for a conflict a
 * concurrent request caused, 500 for anything else. A 500 is logged under
 * request_id at once (with the server's DETAIL); the others' cause is in
 * out->reason for the caller's one log line about the request.
 */
void apicall_failure(const struct db_result *res, const char *request_id, struct api_reply *out);

/*
 * Runs a job on a session outside any transaction block, CALL
 * api.run_job_batches(name, ctx, budget_ms, target_ms): its batches, each a
 * transaction of its own, for up to budget_ms, each sized to hold its locks
 * about target_ms. cb gets the failure (NULL when it ran) and the result as
 * JSON text (NULL when another daemon holds the job's lock).
 */
typedef void (*apicall_job_cb)(void *arg, const struct db_result *failure, const char *result);
void apicall_run_job(struct db_session *s, const char *name, const char *ctx, int budget_ms,
                     int target_ms, apicall_job_cb cb, void *arg);

#endif
