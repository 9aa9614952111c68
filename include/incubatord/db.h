/*
 * The asynchronous PostgreSQL pool.
 *
 * A fixed set of libpq connections driven by the event loop, never blocking:
 * PQconnectStartParams/PQconnectPoll on socket events, PQsendQueryParams,
 * PQflush until done, PQconsumeInput/PQisBusy/PQgetResult until NULL. Work
 * waits in a bounded FIFO queue with a deadline; a full queue, an expired
 * deadline or a database that is down answers at once with a status the HTTP
 * layer turns into 503 + Retry-After. Broken connections are dropped with a
 * logged reason and reconnected with backoff; a connection left in a
 * transaction is rolled back before reuse. This is the only file that calls
 * libpq's sending and receiving functions.
 *
 * Callbacks are always called from the event loop, never from inside the
 * function that submitted the work, and exactly once unless the work was
 * cancelled first.
 */
#ifndef INCUBATORD_DB_H
#define INCUBATORD_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
/* libpq's result, opaque outside db.c: read it through db_rows and db_value. */
struct pg_result;

#include "incubatord/common.h"

enum db_status {
    DB_OK,          /* the statement ran; res is its result (the last, for a script) */
    DB_SQL_ERROR,   /* the server refused it: sqlstate, message (and detail) are set */
    DB_UNAVAILABLE, /* no connection could run it: database down, queue full, shutting down */
    DB_TIMEOUT,     /* its deadline passed before it finished */
};

struct db_result {
    enum db_status status;
    struct pg_result *res; /* DB_OK or DB_SQL_ERROR; owned by the pool, valid in the callback */
    const char *sqlstate;  /* DB_SQL_ERROR: the five-character SQLSTATE */
    const char *message;   /* every status but DB_OK: one line saying why */
    const char *detail;    /* DB_SQL_ERROR: the server's DETAIL, or NULL */
    int retry_after_s;     /* DB_UNAVAILABLE, DB_TIMEOUT: a sensible Retry-After */
};

typedef void (*db_cb)(void *arg, const struct db_result *r);
/* A LISTEN notification; payload may be empty. */
typedef void (*db_notify_cb)(void *arg, const char *channel, const char *payload);
/* The listening connection was (re)established: notifications may have been missed. */
typedef void (*db_listen_reset_cb)(void *arg, bool connected);

struct db_pool_config {
    const char *conninfo;     /* libpq conninfo or URI; "" for the PG* environment */
    int pool_size;            /* connections kept open */
    int max_queue;            /* waiting work items at most */
    int statement_timeout_ms; /* set on every connection */
    int connect_timeout_ms;   /* one connection attempt's limit */
    /*
     * A read pool on a streaming standby: > 0 samples the server's replay
     * lag this often (db_pool_lag_ms). 0 for a primary pool.
     */
    int lag_sample_ms;
};

struct db_pool_stats {
    int size;            /* configured connections */
    int connected;       /* connections ready or busy */
    int busy;            /* connections running work */
    int queued;          /* work items waiting */
    uint64_t submitted;  /* work items ever submitted */
    uint64_t failed;     /* finished with DB_SQL_ERROR */
    uint64_t rejected;   /* refused at once: queue full, database down */
    uint64_t timeouts;   /* deadline passed */
    uint64_t reconnects; /* connections (re)established */
    bool listening;      /* the LISTEN connection is up */
    int64_t lag_ms;      /* db_pool_lag_ms() */
};

struct db_pool;
struct db_query;
struct db_session;

/* Creates the pool and starts connecting; never fails on a database that is down. */
struct db_pool *db_pool_new(struct event_base *base, const struct db_pool_config *cfg);
/* Fails all waiting work (DB_UNAVAILABLE, callbacks called) and closes every connection. */
void db_pool_free(struct db_pool *pool);
void db_pool_get_stats(const struct db_pool *pool, struct db_pool_stats *out);
/* Whether at least one connection is established. */
bool db_pool_is_up(const struct db_pool *pool);
/*
 * A read pool's replay lag as last sampled, in milliseconds: 0 on a primary
 * or a standby that has replayed all it received; -1 when unknown (no
 * sample yet, the last one failed or is older than three sampling periods).
 */
int64_t db_pool_lag_ms(const struct db_pool *pool);
/* Updates what SIGHUP may change: the queue bound. */
void db_pool_set_max_queue(struct db_pool *pool, int max_queue);

/*
 * Runs one parameterised statement on any free connection. Parameters are
 * text, copied; NULL pointers are SQL NULLs. The callback gets the result
 * within timeout_ms (DB_TIMEOUT otherwise). Returns a handle for
 * db_query_cancel, valid until the callback runs.
 */
struct db_query *db_query(struct db_pool *pool, const char *sql, int nparams,
                          const char *const *values, int timeout_ms, db_cb cb, void *arg);

/*
 * A statement the pool prepares once per connection (PQsendPrepare) and then
 * only executes (PQsendQueryPrepared): the server parses and plans it once.
 * The struct must outlive the pool (a static or a table built at start-up);
 * name is unique among them.
 */
struct db_statement {
    const char *name;
    const char *sql;
    int nparams;
};

/* Runs a prepared statement, like db_query. */
struct db_query *db_query_prepared(struct db_pool *pool, const struct db_statement *st,
                                   const char *const *values, int timeout_ms, db_cb cb, void *arg);

/*
 * The same for the daemon's own work (deliveries, bookkeeping): it waits in
 * the same queue but is never refused for a full one, so background work
 * cannot crowd requests out of database.max_queue, nor the other way round.
 */
struct db_query *db_query_background(struct db_pool *pool, const char *sql, int nparams,
                                     const char *const *values, int timeout_ms, db_cb cb,
                                     void *arg);

/*
 * The submitter no longer wants the answer: its callback will not be called.
 * Work still waiting is dropped; work already running finishes and is discarded.
 */
void db_query_cancel(struct db_query *q);

/*
 * A session holds one connection for several statements, e.g. a migration's
 * transaction. Sessions are background work (see db_query_background). The callback gets the
 * session, or NULL and the reason when no connection came within timeout_ms.
 */
typedef void (*db_session_cb)(void *arg, struct db_session *s, const char *error);
void db_session_open(struct db_pool *pool, int timeout_ms, db_session_cb cb, void *arg);

/*
 * Runs a statement on the session's connection. With nparams == 0 and values
 * == NULL it is sent as a simple query and may hold several statements (a
 * schema script); the result is the last statement's, or the first error.
 */
void db_session_query(struct db_session *s, const char *sql, int nparams, const char *const *values,
                      db_cb cb, void *arg);
/* Gives the connection back (rolled back first if a transaction is open). */
void db_session_close(struct db_session *s);

/*
 * Keeps one extra connection that LISTENs to the given channels (names are
 * compile-time constants). on_reset is called each time it is (re)connected
 * or lost, since notifications sent meanwhile are missed.
 */
void db_pool_listen(struct db_pool *pool, const char *const *channels, int nchannels,
                    db_notify_cb on_notify, db_listen_reset_cb on_reset, void *arg);

/*
 * Reading a DB_OK result, valid in the callback only: the number of rows,
 * and a value as text (NULL for SQL NULL, or a row or column that does not
 * exist). No other file reads a PGresult.
 */
int db_rows(const struct db_result *r);
const char *db_value(const struct db_result *r, int row, int col);
/* The same, "" for NULL. */
const char *db_text(const struct db_result *r, int row, int col);

/* Whether the SQLSTATE means "try again later" (serialization, shutdown, timeout). */
bool db_sqlstate_is_transient(const char *sqlstate);

#endif
