/*
 * The asynchronous PostgreSQL pool. See db.h for the contract.
 *
 * Each connection is a small state machine (enum conn_state) driven by one
 * socket event: one-shot and re-armed on a fresh PQsocket() while connecting,
 * because libpq may change sockets then (multi-host conninfo); persistent once
 * connected (see conn_arm). Work
 * items (struct db_query) wait in one FIFO queue (the daemon's own work ahead of
 * requests, see submit()); a deferred "kick" event
 * hands them to idle connections, so no callback ever runs inside the call
 * that submitted the work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <libpq-fe.h>

#include "incubatord/db.h"
#include "incubatord/log.h"

#define BACKOFF_MIN_MS       100
#define BACKOFF_MAX_MS       2000
#define DOWN_LOG_INTERVAL_MS 30000

enum conn_state {
    CONN_DOWN,       /* no connection; the timer will reconnect */
    CONN_CONNECTING, /* PQconnectPoll in progress; the timer bounds it */
    CONN_SETUP,      /* running the set-up statement (timeouts, or LISTEN) */
    CONN_IDLE,       /* ready for work; watched for EOF and notifications */
    CONN_BUSY,       /* running a statement */
    CONN_HELD,       /* lent to a session, between its statements */
    CONN_ROLLBACK,   /* rolling back a transaction left open, before reuse */
};

enum query_kind {
    Q_STATEMENT,    /* one statement on any connection */
    Q_SESSION_OPEN, /* a request for a connection of one's own */
    Q_SESSION_STMT, /* a statement on a session's connection */
};

struct db_query;
TAILQ_HEAD(query_queue, db_query);

struct db_conn {
    struct db_pool *pool;
    PGconn *pg;
    enum conn_state state;
    bool listener;              /* the LISTEN connection, outside the pool */
    bool flushing;              /* PQflush said more is to be written */
    bool counted;               /* counted in pool->connected */
    struct event *io;           /* the socket event (see conn_arm) */
    short io_flags;             /* what it was armed with */
    struct event *timer;        /* reconnect backoff or connect deadline */
    int backoff_ms;             /* the next reconnect delay */
    struct db_query *work;      /* the statement running (CONN_BUSY) */
    struct db_session *session; /* CONN_HELD, or CONN_BUSY for a session */
    PGresult *last;             /* the last result of the running statement */
    PGresult *error;            /* its first error result */
    /* The named statements prepared on this connection (db_query_prepared). */
    const struct db_statement **prepared;
    int nprepared, capprepared;
    bool preparing; /* the running work's statement is being prepared first */
    /*
     * Pipeline mode (CONN_BUSY, work NULL): read-only prepared statements
     * sent one after the other, each with its own sync point, answered in
     * order. inflight holds them, the one being answered first.
     */
    bool pipeline;
    bool sync_next; /* the head's results ended: its sync point comes next */
    struct query_queue inflight;
    int ninflight;
};

struct db_query {
    struct db_pool *pool;
    enum query_kind kind;
    const char *sql;                 /* static text: not copied */
    const struct db_statement *stmt; /* a named statement, prepared once per connection */
    int nparams;
    char **values; /* copied; one allocation with the strings */
    bool simple;   /* send with PQsendQuery: a script of several statements */
    db_cb cb;
    db_session_cb session_cb;
    void *arg;
    struct event *timer; /* deadline, or the deferred delivery of a failure */
    TAILQ_ENTRY(db_query) link;
    bool queued;
    bool running;
    bool cancelled;
    bool deferred;   /* the timer delivers fail_status rather than a timeout */
    bool background; /* the daemon's own work: not bounded by max_queue */
    bool read_only;  /* db_query_read: may be pipelined behind other reads */
    enum db_status fail_status;
    const char *fail_message;
    struct db_session *session;
};

struct db_session {
    struct db_pool *pool;
    struct db_conn *conn; /* NULL once the connection was lost */
    struct db_query *running;
    bool closing;
};

struct db_pool {
    struct event_base *base;
    char *conninfo;
    char statement_timeout[16];
    int connect_timeout_ms;
    int max_queue;
    int pipeline_depth; /* [database] pipeline_depth: 0 or 1, no pipelines */
    int nconns;
    struct db_conn *conns;
    struct query_queue queue;
    int queued;          /* work items waiting */
    int queued_requests; /* of which not background: what max_queue bounds */
    struct event *kick;
    bool down; /* the last attempt failed and no connection is up */
    int64_t down_logged_ms;
    int connected;
    struct db_pool_stats stats;
    /* The LISTEN connection and its subscribers. */
    struct db_conn *listener;
    char *listen_sql;
    db_notify_cb on_notify;
    db_listen_reset_cb on_reset;
    void *listen_arg;
    /* A read pool's replay lag (lag_sample_ms > 0). */
    int lag_sample_ms;
    struct event *lag_timer;
    struct db_query *lag_query; /* the sample in flight */
    int64_t lag_ms;             /* the last sample; -1: failed or none yet */
    int64_t lag_sampled_at_ms;  /* monotonic time of the last sample */
};

/*
 * client_connection_check_interval (PostgreSQL 14+): a statement whose
 * request deadline passed is abandoned by dropping its connection (PQcancel
 * would block the loop), and the client was answered 503. Without the check,
 * a backend waiting for a lock does not notice the drop and, once the lock is
 * free, commits the write after all, up to statement_timeout later; with it,
 * it gives up within half a second.
 */
static const char SETUP_SQL[] = "SELECT set_config('statement_timeout', $1, false), "
                                "set_config('TimeZone', 'UTC', false), "
                                "set_config('client_connection_check_interval', '500', false)";

/*
 * How far a standby's data is behind its primary. A standby that has
 * replayed all it received while its WAL receiver runs is current (its last
 * replayed transaction may be old only because the primary was quiet);
 * otherwise the age of the last replayed transaction is the lag, which keeps
 * growing while the standby is cut off from its primary. NULL (nothing
 * replayed since start-up and not streaming) is unknown, -1. The receiver's
 * row is visible without pg_read_all_stats (its columns are not).
 */
static const char LAG_SQL[] =
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 "
    "WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() "
    "AND EXISTS (SELECT FROM pg_stat_wal_receiver) THEN 0 "
    "ELSE coalesce((extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) "
    "* 1000)::bigint, -1) END";

static void conn_arm(struct db_conn *c, short what);
static void conn_connect(struct db_conn *c);
static void conn_broken(struct db_conn *c, const char *why);
static void pool_dispatch(struct db_pool *pool);
static void query_free(struct db_query *q);
static void session_release(struct db_session *s);

/* ---- small helpers ---- */

static const char *first_line(const char *msg, char *buf, size_t len)
{
    size_t n = strcspn(msg, "\n");
    if (n >= len)
        n = len - 1;
    memcpy(buf, msg, n);
    buf[n] = '\0';
    return buf;
}

static int jitter(int ms)
{
    /* +-20%: reconnecting daemons do not hammer a recovering server in step. */
    return ms - ms / 5 + (int)(random() % (ms / 5 * 2 + 1));
}

int db_rows(const struct db_result *r)
{
    return r->res != NULL && r->status == DB_OK ? PQntuples(r->res) : 0;
}

const char *db_value(const struct db_result *r, int row, int col)
{
    if (row < 0 || row >= db_rows(r) || col < 0 || col >= PQnfields(r->res) ||
        PQgetisnull(r->res, row, col))
        return NULL;
    return PQgetvalue(r->res, row, col);
}

const char *db_text(const struct db_result *r, int row, int col)
{
    const char *v = db_value(r, row, col);
    return v ? v : "";
}

bool db_sqlstate_is_transient(const char *sqlstate)
{
    static const char *const transient[] = {
        "40001", /* serialization_failure */
        "40P01", /* deadlock_detected */
        "55P03", /* lock_not_available */
        "57014", /* query_canceled: statement_timeout */
        "57P01", /* admin_shutdown */
        "57P02", /* crash_shutdown */
        "57P03", /* cannot_connect_now */
        "53300", /* too_many_connections */
        "25006", /* read_only_sql_transaction: a standby during failover */
    };
    if (sqlstate == NULL)
        return false;
    if (strncmp(sqlstate, "08", 2) == 0) /* connection exceptions */
        return true;
    for (size_t i = 0; i < ARRAY_LEN(transient); i++)
        if (strcmp(sqlstate, transient[i]) == 0)
            return true;
    return false;
}

/* ---- delivering results ---- */

static void deliver_result(struct db_query *q, PGresult *res)
{
    struct db_result r = {.status = DB_OK, .res = res};
    char line[512];

    if (res == NULL || PQresultStatus(res) == PGRES_FATAL_ERROR ||
        PQresultStatus(res) == PGRES_NONFATAL_ERROR || PQresultStatus(res) == PGRES_BAD_RESPONSE) {
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        r.status = DB_SQL_ERROR;
        r.sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        r.message =
            msg ? msg
                : (res ? first_line(PQresultErrorMessage(res), line, sizeof(line)) : "no result");
        r.detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
        if (r.sqlstate == NULL)
            r.sqlstate = "XX000";
        /* SQLSTATE class IK is the API refusing a request (api.fail): an answer. */
        if (strncmp(r.sqlstate, "IK", 2) != 0)
            q->pool->stats.failed++;
    }
    if (!q->cancelled) {
        if (q->cb)
            q->cb(q->arg, &r);
    }
    PQclear(res);
}

static void deliver_failure(struct db_query *q, enum db_status status, const char *message)
{
    if (status == DB_TIMEOUT)
        q->pool->stats.timeouts++;
    if (q->cancelled)
        return;
    if (q->kind == Q_SESSION_OPEN) {
        q->session_cb(q->arg, NULL, message);
        return;
    }
    struct db_result r = {.status = status,
                          .message = message,
                          .retry_after_s = status == DB_TIMEOUT ? 1 : (q->pool->down ? 2 : 1)};
    if (q->cb)
        q->cb(q->arg, &r);
}

/*
 * Fails a query from the loop rather than from the caller's stack: the
 * caller of db_query() must be able to finish its own bookkeeping first.
 */
static void fail_later(struct db_query *q, enum db_status status, const char *message)
{
    q->deferred = true;
    q->fail_status = status;
    q->fail_message = message;
    evtimer_del(q->timer);
    event_active(q->timer, EV_TIMEOUT, 0);
}

/* Bookkeeping of an item leaving the queue. */
static void unqueued(struct db_query *q)
{
    q->pool->queued--;
    if (!q->background)
        q->pool->queued_requests--;
}

static void query_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_query *q = arg;
    (void)fd;
    (void)what;

    if (q->deferred) {
        deliver_failure(q, q->fail_status, q->fail_message);
        if (q->kind == Q_SESSION_STMT && q->session && q->session->running == q)
            q->session->running = NULL;
        query_free(q);
        return;
    }
    if (q->queued) {
        TAILQ_REMOVE(&q->pool->queue, q, link);
        q->queued = false;
        unqueued(q);
        deliver_failure(q, DB_TIMEOUT, "timed out waiting for a database connection");
        query_free(q);
        return;
    }
    if (q->running) {
        /*
         * PQcancel would block the loop (non-blocking cancel is PostgreSQL
         * 17), so the connection is dropped instead; statement_timeout makes
         * the server give up on the statement.
         */
        struct db_conn *c = NULL;
        for (int i = 0; i < q->pool->nconns && c == NULL; i++) {
            struct db_conn *k = &q->pool->conns[i];
            struct db_query *p;
            if (k->work == q)
                c = k;
            TAILQ_FOREACH(p, &k->inflight, link)
            {
                if (p == q)
                    c = k;
            }
        }
        deliver_failure(q, DB_TIMEOUT, "the database did not answer in time");
        q->cancelled = true;
        if (c != NULL)
            conn_broken(c, "a statement exceeded its deadline");
    }
}

static struct db_query *query_new(struct db_pool *pool, enum query_kind kind, const char *sql,
                                  int nparams, const char *const *values)
{
    struct db_query *q = xcalloc(1, sizeof(*q));
    q->pool = pool;
    q->kind = kind;
    q->sql = sql;
    q->nparams = nparams;
    q->simple = (nparams == 0 && values == NULL);
    if (nparams > 0) {
        size_t total = sizeof(char *) * (size_t)nparams;
        for (int i = 0; i < nparams; i++)
            if (values[i])
                total += strlen(values[i]) + 1;
        q->values = xmalloc(total);
        char *p = (char *)(q->values + nparams);
        for (int i = 0; i < nparams; i++) {
            if (values[i] == NULL) {
                q->values[i] = NULL;
                continue;
            }
            size_t n = strlen(values[i]) + 1;
            memcpy(p, values[i], n);
            q->values[i] = p;
            p += n;
        }
    }
    q->timer = evtimer_new(pool->base, query_timer_cb, q);
    return q;
}

static void query_free(struct db_query *q)
{
    if (q->timer)
        event_free(q->timer);
    free(q->values);
    free(q);
}

/* ---- connection state machine ---- */

static void conn_count(struct db_conn *c, bool up)
{
    struct db_pool *pool = c->pool;
    if (c->listener || c->counted == up)
        return;
    c->counted = up;
    pool->connected += up ? 1 : -1;
}

static void conn_close(struct db_conn *c)
{
    if (c->io) {
        event_free(c->io);
        c->io = NULL;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    PQclear(c->last);
    PQclear(c->error);
    c->last = c->error = NULL;
    c->flushing = false;
    c->nprepared = 0; /* a new connection has none */
    c->preparing = false;
    c->pipeline = false; /* its inflight list is the caller's to empty */
    c->sync_next = false;
    conn_count(c, false);
}

static void schedule_reconnect(struct db_conn *c, int delay_ms)
{
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    c->state = CONN_DOWN;
    evtimer_add(c->timer, &tv);
}

/* Fails every waiting item at once: with no connection, waiting only delays the 503. */
static void fail_queue(struct db_pool *pool, const char *why)
{
    struct db_query *q;
    while ((q = TAILQ_FIRST(&pool->queue)) != NULL) {
        TAILQ_REMOVE(&pool->queue, q, link);
        q->queued = false;
        unqueued(q);
        pool->stats.rejected++;
        fail_later(q, DB_UNAVAILABLE, why);
    }
}

/*
 * A connection failed or broke: whatever ran on it fails, the session that
 * held it loses it, and a reconnect is scheduled with backoff.
 */
static void conn_broken(struct db_conn *c, const char *why)
{
    struct db_pool *pool = c->pool;
    struct db_query *q = c->work;
    struct db_session *s = c->session;
    bool was_up = c->counted || (c->listener && c->state >= CONN_IDLE);
    int64_t now = mono_ms();
    char line[512];

    struct query_queue inflight;
    first_line(why ? why : "unknown error", line, sizeof(line));
    conn_close(c);
    c->work = NULL;
    c->session = NULL;
    /* The pipelined statements fail with the connection, after the bookkeeping. */
    TAILQ_INIT(&inflight);
    TAILQ_CONCAT(&inflight, &c->inflight, link);
    c->ninflight = 0;

    if (was_up) {
        log_msg(LOG_WARNING, "db: %sconnection lost: %s", c->listener ? "LISTEN " : "", line);
        c->backoff_ms = 0;
    } else if (pool->connected == 0 &&
               (!pool->down || now - pool->down_logged_ms >= DOWN_LOG_INTERVAL_MS)) {
        log_msg(LOG_ERR, "db: cannot connect: %s", line);
        pool->down_logged_ms = now;
    }
    if (!was_up && !c->listener && pool->connected == 0) {
        pool->down = true;
        fail_queue(pool, "the database is unavailable");
    }

    if (c->listener && was_up && pool->on_reset)
        pool->on_reset(pool->listen_arg, false);

    /* A session whose owner already closed it has nobody left to free it. */
    bool free_session = s != NULL && s->closing;
    if (s != NULL) {
        s->conn = NULL;
        if (s->running == q)
            s->running = NULL;
    }
    if (q != NULL) {
        q->running = false;
        evtimer_del(q->timer);
        deliver_failure(q, DB_UNAVAILABLE, "the database connection was lost");
        query_free(q);
    }
    if (free_session)
        free(s);
    while ((q = TAILQ_FIRST(&inflight)) != NULL) {
        TAILQ_REMOVE(&inflight, q, link);
        q->running = false;
        evtimer_del(q->timer);
        deliver_failure(q, DB_UNAVAILABLE, "the database connection was lost");
        query_free(q);
    }

    schedule_reconnect(c, jitter(c->backoff_ms ? c->backoff_ms : BACKOFF_MIN_MS / 2));
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
}

static bool conn_send(struct db_conn *c, const char *sql, int nparams, const char *const *values,
                      bool simple)
{
    int ok = simple ? PQsendQuery(c->pg, sql)
                    : PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0);
    if (!ok) {
        conn_broken(c, PQerrorMessage(c->pg));
        return false;
    }
    c->flushing = true;
    return true;
}

/* Writes what libpq buffered; waits for the socket as needed. */
static void conn_flush(struct db_conn *c)
{
    int r = PQflush(c->pg);
    if (r < 0) {
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    c->flushing = (r == 1);
    conn_arm(c, c->flushing ? EV_READ | EV_WRITE : EV_READ);
}

static bool is_prepared(const struct db_conn *c, const struct db_statement *st)
{
    for (int i = 0; i < c->nprepared; i++)
        if (c->prepared[i] == st)
            return true;
    return false;
}

static void add_prepared(struct db_conn *c, const struct db_statement *st)
{
    if (c->nprepared == c->capprepared) {
        int cap = c->capprepared ? 2 * c->capprepared : 16;
        const struct db_statement **p = xcalloc((size_t)cap, sizeof(*p));
        if (c->nprepared)
            memcpy(p, c->prepared, sizeof(*p) * (size_t)c->nprepared);
        free(c->prepared);
        c->prepared = p;
        c->capprepared = cap;
    }
    c->prepared[c->nprepared++] = st;
}

/*
 * Sends a named statement: PQsendQueryPrepared once the connection has it,
 * else PQsendPrepare first (statement_done sends the query when that is
 * done). Parsing and planning are then the server's once per connection.
 */
static bool send_prepared(struct db_conn *c, struct db_query *q)
{
    const struct db_statement *st = q->stmt;
    int ok;
    c->preparing = !is_prepared(c, st);
    if (c->preparing)
        ok = PQsendPrepare(c->pg, st->name, st->sql, st->nparams, NULL);
    else
        ok = PQsendQueryPrepared(c->pg, st->name, q->nparams, (const char *const *)q->values, NULL,
                                 NULL, 0);
    if (!ok) {
        conn_broken(c, PQerrorMessage(c->pg));
        return false;
    }
    c->flushing = true;
    return true;
}

/*
 * Whether a statement may go into a connection's pipeline: a read-only
 * statement already prepared there. Writes, sessions and statements still
 * to be prepared keep a connection to themselves, so a write's answer never
 * waits behind another statement and a dropped connection (a deadline
 * passed) fails reads only, which the client may simply ask again.
 */
static bool pipelineable(const struct db_conn *c, const struct db_query *q)
{
    return c->pool->pipeline_depth > 1 && q->kind == Q_STATEMENT && q->read_only &&
           q->stmt != NULL && !c->listener && is_prepared(c, q->stmt);
}

/* Sends a statement and its sync point into the connection's pipeline. */
static void pipeline_send(struct db_conn *c, struct db_query *q)
{
    TAILQ_INSERT_TAIL(&c->inflight, q, link);
    c->ninflight++;
    q->running = true;
    if (!PQsendQueryPrepared(c->pg, q->stmt->name, q->nparams, (const char *const *)q->values, NULL,
                             NULL, 0) ||
        !PQpipelineSync(c->pg)) {
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    c->flushing = true;
    conn_flush(c);
}

/* A connection with room in its pipeline for q, the emptiest, or NULL. */
static struct db_conn *pipelined_conn(struct db_pool *pool, const struct db_query *q)
{
    struct db_conn *best = NULL;
    for (int i = 0; i < pool->nconns; i++) {
        struct db_conn *c = &pool->conns[i];
        if (c->state == CONN_BUSY && c->pipeline && c->ninflight < pool->pipeline_depth &&
            pipelineable(c, q) && (best == NULL || c->ninflight < best->ninflight))
            best = c;
    }
    return best;
}

static void run_statement(struct db_conn *c, struct db_query *q)
{
    if (pipelineable(c, q)) {
        if (!PQenterPipelineMode(c->pg)) {
            TAILQ_INSERT_TAIL(&c->inflight, q, link);
            c->ninflight++;
            q->running = true;
            conn_broken(c, PQerrorMessage(c->pg));
            return;
        }
        c->state = CONN_BUSY;
        c->pipeline = true;
        c->sync_next = false;
        pipeline_send(c, q);
        return;
    }
    c->state = CONN_BUSY;
    c->work = q;
    q->running = true;
    if (q->stmt != NULL
            ? !send_prepared(c, q)
            : !conn_send(c, q->sql, q->nparams, (const char *const *)q->values, q->simple))
        return;
    conn_flush(c);
}

static void start_rollback(struct db_conn *c)
{
    c->state = CONN_ROLLBACK;
    if (conn_send(c, "ROLLBACK", 0, NULL, true))
        conn_flush(c);
}

static void make_idle(struct db_conn *c)
{
    c->state = CONN_IDLE;
    conn_arm(c, EV_READ);
}

static void dispatch_notifications(struct db_conn *c)
{
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL) {
        if (c->pool->on_notify)
            c->pool->on_notify(c->pool->listen_arg, n->relname, n->extra ? n->extra : "");
        PQfreemem(n);
    }
}

/*
 * Keeps one result of the running statement: its first error, else its
 * last result (a script's). False when the connection broke meanwhile.
 */
static bool keep_result(struct db_conn *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if ((st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_PIPELINE_ABORTED) &&
        c->error == NULL) {
        c->error = r;
    } else if (c->error == NULL) {
        PQclear(c->last);
        c->last = r;
    } else {
        PQclear(r);
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_broken(c, PQerrorMessage(c->pg));
        return false;
    }
    return true;
}

/* The statement's result as kept (the caller clears it), and the connection cleared of it. */
static PGresult *take_result(struct db_conn *c)
{
    PGresult *res = c->error ? c->error : c->last;
    if (c->error)
        PQclear(c->last);
    c->last = c->error = NULL;
    return res;
}

/* The running statement has returned its last result. */
static void statement_done(struct db_conn *c)
{
    struct db_pool *pool = c->pool;
    PGresult *res = take_result(c);
    struct db_query *q = c->work;

    c->work = NULL;

    switch (c->state) {
    case CONN_SETUP:
        if (res == NULL || PQresultStatus(res) == PGRES_FATAL_ERROR) {
            char msg[512];
            snprintf(msg, sizeof(msg), "set-up failed: %s",
                     res ? PQresultErrorMessage(res) : "no result");
            PQclear(res);
            conn_broken(c, msg);
            return;
        }
        PQclear(res);
        c->backoff_ms = 0;
        pool->stats.reconnects++;
        make_idle(c);
        if (c->listener) {
            log_msg(LOG_INFO, "db: LISTEN connection established");
            if (pool->on_reset)
                pool->on_reset(pool->listen_arg, true);
            return;
        }
        if (pool->down || pool->connected == 0)
            log_msg(LOG_NOTICE, "db: connected to PostgreSQL %d", PQserverVersion(c->pg));
        conn_count(c, true);
        pool->down = false;
        pool_dispatch(pool);
        return;
    case CONN_ROLLBACK:
        PQclear(res);
        if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
            conn_broken(c, "rollback left the connection in a transaction");
            return;
        }
        if (c->session) {
            c->state = CONN_HELD;
            session_release(c->session);
            return;
        }
        make_idle(c);
        pool_dispatch(pool);
        return;
    case CONN_BUSY:
        if (c->preparing && res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK) {
            /* Prepared: now the statement itself, on the same connection. */
            PQclear(res);
            add_prepared(c, q->stmt);
            c->work = q;
            if (send_prepared(c, q))
                conn_flush(c);
            return;
        }
        c->preparing = false;
        break;
    default:
        PQclear(res);
        return;
    }

    /* A work item finished. The connection is settled before the callback runs. */
    q->running = false;
    evtimer_del(q->timer);
    if (q->kind == Q_SESSION_STMT) {
        struct db_session *s = c->session;
        c->state = CONN_HELD;
        conn_arm(c, EV_READ);
        if (s)
            s->running = NULL;
        /*
         * A session closed while this statement ran is ours to release. One
         * that is still open may be closed, and freed, by the callback: it
         * must not be touched after it.
         */
        bool release = s != NULL && s->closing;
        deliver_result(q, res);
        query_free(q);
        if (release)
            session_release(s);
        return;
    }
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        start_rollback(c);
    else
        make_idle(c);
    deliver_result(q, res);
    query_free(q);
    if (c->state == CONN_IDLE)
        pool_dispatch(pool);
}

/*
 * Collects a pipeline's results. Each statement's results end with a NULL,
 * then its sync point's PGRES_PIPELINE_SYNC; the statement is answered at
 * its NULL, and after the last sync point the connection leaves pipeline
 * mode and is idle again. A callback may add to the pipeline (or break the
 * connection), so the loop looks again after each answer.
 */
static void pipeline_read(struct db_conn *c)
{
    bool was_null = false;
    while (!PQisBusy(c->pg)) {
        struct db_query *q = TAILQ_FIRST(&c->inflight);
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            /*
             * A NULL that ends no statement's results: libpq also returns
             * one as it moves on to the next statement (after a sync
             * point). Once, ask again, for the next results may be read
             * already; twice in a row, nothing more has arrived.
             */
            if (q == NULL || c->sync_next || (c->last == NULL && c->error == NULL)) {
                if (was_null)
                    break;
                was_null = true;
                continue;
            }
            PGresult *res = take_result(c);
            TAILQ_REMOVE(&c->inflight, q, link);
            c->ninflight--;
            c->sync_next = true;
            q->running = false;
            evtimer_del(q->timer);
            deliver_result(q, res);
            query_free(q);
            if (c->state != CONN_BUSY || !c->pipeline)
                return; /* the callback broke the connection */
            was_null = false;
            continue;
        }
        was_null = false;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            c->sync_next = false;
            if (c->ninflight > 0)
                continue;
            if (!PQexitPipelineMode(c->pg)) {
                conn_broken(c, PQerrorMessage(c->pg));
                return;
            }
            c->pipeline = false;
            if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
                conn_broken(c, "a pipeline left the connection in a transaction");
                return;
            }
            make_idle(c);
            pool_dispatch(c->pool);
            return;
        }
        if (!keep_result(c, r))
            return;
    }
    conn_arm(c, c->flushing ? EV_READ | EV_WRITE : EV_READ);
}

/* Reads what arrived and collects results until libpq would block. */
static void conn_read(struct db_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    dispatch_notifications(c);
    if (c->state == CONN_IDLE || c->state == CONN_HELD) {
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            conn_broken(c, PQerrorMessage(c->pg));
            return;
        }
        conn_arm(c, EV_READ);
        return;
    }
    if (c->pipeline) {
        pipeline_read(c);
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            statement_done(c);
            return;
        }
        if (!keep_result(c, r))
            return;
    }
    conn_arm(c, c->flushing ? EV_READ | EV_WRITE : EV_READ);
}

static void send_setup(struct db_conn *c)
{
    struct db_pool *pool = c->pool;
    c->state = CONN_SETUP;
    if (PQsetnonblocking(c->pg, 1) != 0) {
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    if (c->listener) {
        if (!conn_send(c, pool->listen_sql, 0, NULL, true))
            return;
    } else {
        const char *values[] = {pool->statement_timeout};
        if (!conn_send(c, SETUP_SQL, 1, values, false))
            return;
    }
    conn_flush(c);
}

/* Server notices (RAISE NOTICE, warnings) go to our log, not to stderr. */
static void notice_processor(void *arg, const char *message)
{
    char line[512];
    (void)arg;
    log_msg(LOG_INFO, "db: %s", first_line(message, line, sizeof(line)));
}

static void conn_poll_connect(struct db_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        conn_arm(c, EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        conn_arm(c, EV_WRITE);
        return;
    case PGRES_POLLING_OK:
        evtimer_del(c->timer);
        PQsetNoticeProcessor(c->pg, notice_processor, c);
        send_setup(c);
        return;
    default:
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
}

static void conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_conn *c = arg;
    (void)fd;

    switch (c->state) {
    case CONN_CONNECTING:
        conn_poll_connect(c);
        return;
    case CONN_SETUP:
    case CONN_BUSY:
    case CONN_ROLLBACK:
        if (c->flushing && (what & EV_WRITE)) {
            int r = PQflush(c->pg);
            if (r < 0) {
                conn_broken(c, PQerrorMessage(c->pg));
                return;
            }
            c->flushing = (r == 1);
        }
        if (what & EV_READ) {
            conn_read(c);
            return;
        }
        conn_arm(c, c->flushing ? EV_READ | EV_WRITE : EV_READ);
        return;
    case CONN_IDLE:
    case CONN_HELD:
        conn_read(c);
        return;
    case CONN_DOWN:
        return;
    }
}

/*
 * Arms the socket event on the connection's current socket. While
 * connecting it is one-shot (PQconnectPoll says what it waits for, and the
 * socket may change); once connected it is persistent and only changed when
 * writing starts or stops, so a statement costs no epoll_ctl in the common
 * case of a query that libpq flushes at once.
 */
static void conn_arm(struct db_conn *c, short what)
{
    int fd = PQsocket(c->pg);
    short flags = c->state == CONN_CONNECTING ? what : (short)(what | EV_PERSIST);
    if (fd < 0) {
        conn_broken(c, "no socket");
        return;
    }
    if (c->io != NULL && event_get_fd(c->io) == fd && c->io_flags == flags &&
        (flags & EV_PERSIST) && event_pending(c->io, EV_READ | EV_WRITE, NULL))
        return;
    if (c->io == NULL || event_get_fd(c->io) != fd) {
        if (c->io)
            event_free(c->io);
        c->io = event_new(c->pool->base, fd, flags, conn_io_cb, c);
    } else {
        event_del(c->io);
        event_assign(c->io, c->pool->base, fd, flags, conn_io_cb, c);
    }
    c->io_flags = flags;
    event_add(c->io, NULL);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == CONN_CONNECTING) {
        conn_broken(c, "connection attempt timed out");
        return;
    }
    if (c->state == CONN_DOWN)
        conn_connect(c);
}

static void conn_connect(struct db_conn *c)
{
    struct db_pool *pool = c->pool;
    /*
     * Our defaults come before dbname, so that a setting in the operator's
     * conninfo (expanded from dbname) overrides them.
     */
    const char *keys[] = {"fallback_application_name",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "dbname",
                          NULL};
    const char *values[] = {"incubatord", "1", "30", "10", "3", pool->conninfo, NULL};
    struct timeval tv = {pool->connect_timeout_ms / 1000, (pool->connect_timeout_ms % 1000) * 1000};

    c->pg = PQconnectStartParams(keys, values, 1);
    if (c->pg == NULL) {
        conn_broken(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    c->state = CONN_CONNECTING;
    evtimer_add(c->timer, &tv);
    conn_arm(c, EV_WRITE);
}

static void conn_init(struct db_pool *pool, struct db_conn *c, bool listener)
{
    memset(c, 0, sizeof(*c));
    c->pool = pool;
    c->listener = listener;
    TAILQ_INIT(&c->inflight);
    c->state = CONN_DOWN;
    c->timer = evtimer_new(pool->base, conn_timer_cb, c);
    /* The first attempt goes from the loop, so the pool never blocks its creator. */
    schedule_reconnect(c, 0);
}

/* ---- the pool ---- */

static struct db_conn *idle_conn(struct db_pool *pool)
{
    for (int i = 0; i < pool->nconns; i++)
        if (pool->conns[i].state == CONN_IDLE)
            return &pool->conns[i];
    return NULL;
}

static void open_session_on(struct db_conn *c, struct db_query *q)
{
    struct db_session *s = xcalloc(1, sizeof(*s));
    s->pool = c->pool;
    s->conn = c;
    c->session = s;
    c->state = CONN_HELD;
    conn_arm(c, EV_READ);
    evtimer_del(q->timer);
    if (q->cancelled) {
        query_free(q);
        db_session_close(s);
        return;
    }
    q->session_cb(q->arg, s, NULL);
    query_free(q);
}

static void pool_dispatch(struct db_pool *pool)
{
    struct db_conn *c;
    struct db_query *q;

    while ((q = TAILQ_FIRST(&pool->queue)) != NULL) {
        /* An idle connection first; else a read joins a pipeline of reads. */
        c = idle_conn(pool);
        if (c == NULL && (c = pipelined_conn(pool, q)) == NULL)
            break;
        TAILQ_REMOVE(&pool->queue, q, link);
        q->queued = false;
        unqueued(q);
        if (q->kind == Q_SESSION_OPEN)
            open_session_on(c, q);
        else if (c->pipeline) {
            pool->stats.pipelined++;
            pipeline_send(c, q);
        } else
            run_statement(c, q);
    }
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_dispatch(arg);
}

/* ---- a read pool's replay lag ---- */

static void lag_schedule(struct db_pool *pool)
{
    struct timeval tv = {pool->lag_sample_ms / 1000, (pool->lag_sample_ms % 1000) * 1000};
    evtimer_add(pool->lag_timer, &tv);
}

static void lag_sampled(void *arg, const struct db_result *r)
{
    struct db_pool *pool = arg;
    pool->lag_query = NULL;
    if (r->status == DB_OK && PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 0)) {
        pool->lag_ms = strtoll(PQgetvalue(r->res, 0, 0), NULL, 10);
        if (pool->lag_ms < -1)
            pool->lag_ms = 0; /* a standby's clock a little ahead of its primary's */
    } else {
        pool->lag_ms = -1;
    }
    pool->lag_sampled_at_ms = mono_ms();
    lag_schedule(pool);
}

static void lag_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_pool *pool = arg;
    (void)fd;
    (void)what;
    /* A sample never outlives its period: a hung standby reads as unknown. */
    pool->lag_query =
        db_query_background(pool, LAG_SQL, 0, NULL, pool->lag_sample_ms, lag_sampled, pool);
}

int64_t db_pool_lag_ms(const struct db_pool *pool)
{
    if (pool->lag_sample_ms <= 0)
        return 0;
    if (pool->connected == 0 || pool->lag_sampled_at_ms == 0 ||
        mono_ms() - pool->lag_sampled_at_ms > 3 * (int64_t)pool->lag_sample_ms)
        return -1;
    return pool->lag_ms;
}

struct db_pool *db_pool_new(struct event_base *base, const struct db_pool_config *cfg)
{
    struct db_pool *pool = xcalloc(1, sizeof(*pool));
    pool->base = base;
    pool->conninfo = xstrdup(cfg->conninfo ? cfg->conninfo : "");
    snprintf(pool->statement_timeout, sizeof(pool->statement_timeout), "%d",
             cfg->statement_timeout_ms);
    pool->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    pool->max_queue = cfg->max_queue;
    pool->pipeline_depth = cfg->pipeline_depth;
    pool->nconns = cfg->pool_size;
    TAILQ_INIT(&pool->queue);
    pool->kick = event_new(base, -1, 0, kick_cb, pool);
    pool->conns = xcalloc((size_t)pool->nconns, sizeof(struct db_conn));
    pool->stats.size = pool->nconns;
    for (int i = 0; i < pool->nconns; i++)
        conn_init(pool, &pool->conns[i], false);
    pool->lag_ms = -1;
    pool->lag_sample_ms = cfg->lag_sample_ms;
    if (pool->lag_sample_ms > 0) {
        pool->lag_timer = evtimer_new(base, lag_timer_cb, pool);
        lag_schedule(pool);
    }
    return pool;
}

static void conn_destroy(struct db_conn *c)
{
    conn_close(c);
    free(c->prepared);
    c->prepared = NULL;
    c->capprepared = 0;
    if (c->timer)
        event_free(c->timer);
    c->timer = NULL;
}

void db_pool_free(struct db_pool *pool)
{
    struct db_query *q;
    if (pool == NULL)
        return;
    if (pool->lag_timer) {
        db_query_cancel(pool->lag_query);
        event_free(pool->lag_timer);
    }
    while ((q = TAILQ_FIRST(&pool->queue)) != NULL) {
        TAILQ_REMOVE(&pool->queue, q, link);
        q->queued = false;
        deliver_failure(q, DB_UNAVAILABLE, "shutting down");
        query_free(q);
    }
    for (int i = 0; i < pool->nconns; i++) {
        struct db_conn *c = &pool->conns[i];
        if (c->work) {
            c->work->running = false;
            deliver_failure(c->work, DB_UNAVAILABLE, "shutting down");
            query_free(c->work);
            c->work = NULL;
        }
        while ((q = TAILQ_FIRST(&c->inflight)) != NULL) {
            TAILQ_REMOVE(&c->inflight, q, link);
            c->ninflight--;
            q->running = false;
            deliver_failure(q, DB_UNAVAILABLE, "shutting down");
            query_free(q);
        }
        if (c->session) {
            c->session->conn = NULL;
            c->session = NULL;
        }
        conn_destroy(c);
    }
    if (pool->listener) {
        conn_destroy(pool->listener);
        free(pool->listener);
    }
    event_free(pool->kick);
    free(pool->conns);
    free(pool->conninfo);
    free(pool->listen_sql);
    free(pool);
}

void db_pool_get_stats(const struct db_pool *pool, struct db_pool_stats *out)
{
    *out = pool->stats;
    out->connected = pool->connected;
    out->queued = pool->queued;
    out->busy = 0;
    for (int i = 0; i < pool->nconns; i++)
        if (pool->conns[i].state == CONN_BUSY || pool->conns[i].state == CONN_HELD ||
            pool->conns[i].state == CONN_ROLLBACK)
            out->busy++;
    out->listening = pool->listener && pool->listener->state == CONN_IDLE;
    out->lag_ms = db_pool_lag_ms(pool);
}

bool db_pool_is_up(const struct db_pool *pool)
{
    return pool->connected > 0;
}

void db_pool_set_max_queue(struct db_pool *pool, int max_queue)
{
    pool->max_queue = max_queue;
}

/*
 * Admits a work item: refused at once when the database is known to be down
 * or the queue is full, so a client learns of it now rather than at its
 * deadline.
 */
static void submit(struct db_pool *pool, struct db_query *q, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

    pool->stats.submitted++;
    if (pool->down && pool->connected == 0) {
        pool->stats.rejected++;
        fail_later(q, DB_UNAVAILABLE, "the database is unavailable");
        return;
    }
    /* A full queue refuses work that nothing could take now: no idle connection, no pipeline. */
    if (!q->background && pool->queued_requests >= pool->max_queue && idle_conn(pool) == NULL &&
        (!q->read_only || pipelined_conn(pool, q) == NULL)) {
        pool->stats.rejected++;
        fail_later(q, DB_UNAVAILABLE, "too many requests are waiting for the database");
        return;
    }
    /*
     * The daemon's own work (deliveries, their bookkeeping, gauges, jobs) goes
     * before the requests waiting, in its own FIFO order: it is a handful of
     * items at any time, and a delivery queued behind a full queue of
     * requests would be an alert arriving seconds late under load.
     */
    struct db_query *first_request = NULL;
    if (q->background) {
        TAILQ_FOREACH(first_request, &pool->queue, link)
        {
            if (!first_request->background)
                break;
        }
    }
    if (first_request != NULL)
        TAILQ_INSERT_BEFORE(first_request, q, link);
    else
        TAILQ_INSERT_TAIL(&pool->queue, q, link);
    q->queued = true;
    pool->queued++;
    if (!q->background)
        pool->queued_requests++;
    evtimer_add(q->timer, &tv);
    event_active(pool->kick, EV_TIMEOUT, 0);
}

static struct db_query *statement(struct db_pool *pool, const char *sql, int nparams,
                                  const char *const *values, int timeout_ms, bool background,
                                  db_cb cb, void *arg)
{
    struct db_query *q = query_new(pool, Q_STATEMENT, sql, nparams, values);
    q->simple = false;
    q->background = background;
    q->cb = cb;
    q->arg = arg;
    submit(pool, q, timeout_ms);
    return q;
}

struct db_query *db_query(struct db_pool *pool, const char *sql, int nparams,
                          const char *const *values, int timeout_ms, db_cb cb, void *arg)
{
    return statement(pool, sql, nparams, values, timeout_ms, false, cb, arg);
}

static struct db_query *prepared(struct db_pool *pool, const struct db_statement *st,
                                 const char *const *values, int timeout_ms, bool read_only,
                                 db_cb cb, void *arg)
{
    struct db_query *q = query_new(pool, Q_STATEMENT, st->sql, st->nparams, values);
    q->simple = false;
    q->stmt = st;
    q->read_only = read_only;
    q->cb = cb;
    q->arg = arg;
    submit(pool, q, timeout_ms);
    return q;
}

struct db_query *db_query_prepared(struct db_pool *pool, const struct db_statement *st,
                                   const char *const *values, int timeout_ms, db_cb cb, void *arg)
{
    return prepared(pool, st, values, timeout_ms, false, cb, arg);
}

struct db_query *db_query_read(struct db_pool *pool, const struct db_statement *st,
                               const char *const *values, int timeout_ms, db_cb cb, void *arg)
{
    return prepared(pool, st, values, timeout_ms, true, cb, arg);
}

struct db_query *db_query_background(struct db_pool *pool, const char *sql, int nparams,
                                     const char *const *values, int timeout_ms, db_cb cb, void *arg)
{
    return statement(pool, sql, nparams, values, timeout_ms, true, cb, arg);
}

void db_query_cancel(struct db_query *q)
{
    if (q == NULL)
        return;
    if (q->queued) {
        TAILQ_REMOVE(&q->pool->queue, q, link);
        unqueued(q);
        query_free(q);
        return;
    }
    /* Running, or a failure waiting to be delivered: the callback is skipped. */
    q->cancelled = true;
}

void db_session_open(struct db_pool *pool, int timeout_ms, db_session_cb cb, void *arg)
{
    struct db_query *q = query_new(pool, Q_SESSION_OPEN, NULL, 0, NULL);
    q->background = true;
    q->session_cb = cb;
    q->arg = arg;
    submit(pool, q, timeout_ms);
}

void db_session_query(struct db_session *s, const char *sql, int nparams, const char *const *values,
                      db_cb cb, void *arg)
{
    struct db_query *q = query_new(s->pool, Q_SESSION_STMT, sql, nparams, values);
    q->cb = cb;
    q->arg = arg;
    q->session = s;
    if (s->conn == NULL || s->running != NULL || s->closing) {
        fail_later(q, DB_UNAVAILABLE,
                   s->conn == NULL ? "the database connection was lost" : "the session is busy");
        return;
    }
    s->running = q;
    run_statement(s->conn, q);
}

/* Returns a session's connection to the pool and frees the session. */
static void session_release(struct db_session *s)
{
    struct db_conn *c = s->conn;
    if (c != NULL) {
        if (c->state == CONN_HELD && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
            s->closing = true;
            start_rollback(c); /* comes back here once rolled back */
            return;
        }
        c->session = NULL;
        make_idle(c);
        event_active(s->pool->kick, EV_TIMEOUT, 0);
    }
    free(s);
}

void db_session_close(struct db_session *s)
{
    if (s->running != NULL) {
        s->closing = true;
        return;
    }
    session_release(s);
}

void db_pool_listen(struct db_pool *pool, const char *const *channels, int nchannels,
                    db_notify_cb on_notify, db_listen_reset_cb on_reset, void *arg)
{
    size_t len = 1;
    for (int i = 0; i < nchannels; i++)
        len += strlen("LISTEN ; ") + strlen(channels[i]);
    pool->listen_sql = xmalloc(len);
    pool->listen_sql[0] = '\0';
    for (int i = 0; i < nchannels; i++) {
        strcat(pool->listen_sql, "LISTEN ");
        strcat(pool->listen_sql, channels[i]);
        strcat(pool->listen_sql, "; ");
    }
    pool->on_notify = on_notify;
    pool->on_reset = on_reset;
    pool->listen_arg = arg;
    pool->listener = xcalloc(1, sizeof(struct db_conn));
    conn_init(pool, pool->listener, true);
}
