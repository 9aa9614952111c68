/*
 * The daemon as a whole: the objects every module reaches through a request
 * (configuration, pool, token cache), the start-up sequence, signals,
 * readiness and the orderly shutdown. Other modules read this struct; none
 * calls into server.c (the drain reads busy.h's counter).
 */
#ifndef INCUBATORD_SERVER_H
#define INCUBATORD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "incubatord/config.h"
#include "incubatord/dates.h"

struct db_pool;
struct auth_cache;
struct http_state;
struct http_conn;
struct outbox_state;
struct gauges_state;
struct sched_state;

enum schema_state {
    SCHEMA_UNKNOWN, /* the database has not been reached yet */
    SCHEMA_CURRENT, /* migrated, or checked, to this binary's version */
    SCHEMA_BEHIND,  /* migrations are missing and migrate_on_start is off */
    SCHEMA_TOO_NEW, /* the database is newer than this binary: refuse to serve */
    SCHEMA_FAILED,  /* the migration failed; it is retried */
};

struct server {
    struct event_base *base;
    struct config cfg;
    const char *config_path;
    bool foreground;
    struct db_pool *pool;      /* the primary: every write, and reads that must be current */
    struct db_pool *read_pool; /* [database] read_conninfo, or NULL */
    uint64_t reads_routed[2];  /* ROUTE_READ requests sent to the read pool [0], the primary [1] */
    struct auth_cache *auth;
    struct http_state *http;
    struct http_conn *http_conn; /* http's connections (http_conn.c): /metrics counts them */
    struct outbox_state *outbox;
    struct gauges_state *gauges;
    struct sched_state *sched;
    enum schema_state schema;
    bool migrating;
    struct event *migrate_timer;
    struct event *sig_term;
    struct event *sig_int;
    struct event *sig_hup;
    struct event *drain_timer;
    struct event *drain_poll; /* while draining: is the work done? */
    bool draining;
    int64_t drain_deadline_ms;
    time_t started_at;
};

/* Runs the daemon until SIGTERM; returns the process exit code. */
int server_run(const char *config_path, bool foreground);

/* Today in the bureau's time zone (TZ is set to it at start-up). */
static inline day_t server_today(const struct server *srv)
{
    (void)srv;
    return date_today();
}

/*
 * The daemon's clock (Unix time): a request's "now", which token expiry is
 * judged by. Passed to whatever needs it, so that tests may run the daemon
 * under another clock (libfaketime) and call the functions with any time.
 */
static inline int64_t server_now(const struct server *srv)
{
    (void)srv;
    return (int64_t)time(NULL);
}

/* Whether requests that need the database may be served (schema current). */
static inline bool server_schema_ready(const struct server *srv)
{
    return srv->schema == SCHEMA_CURRENT;
}

#endif
