/*
 * The daemon as a whole: the objects every module reaches through a request
 * (configuration, pool, token cache), the start-up sequence, signals,
 * readiness and the orderly shutdown.
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
    bool draining;
    int64_t drain_deadline_ms;
    time_t started_at;
};

/* Runs the daemon until SIGTERM; returns the process exit code. */
int server_run(const char *config_path, bool foreground);

/* Today in the bureau's time zone. */
day_t server_today(const struct server *srv);

/* Whether requests that need the database may be served (schema current). */
bool server_schema_ready(const struct server *srv);

/*
 * The pool for a read that may lag a little: the read pool while it is up
 * and its replay lag is known and at most read_max_lag_s, else the primary.
 */
struct db_pool *server_read_pool(struct server *srv);

/* A request finished: lets a draining server exit once none is left. */
void server_request_done(struct server *srv);

#endif
