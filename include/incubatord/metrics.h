/*
 * Prometheus metrics: request counts by route and status, a latency
 * histogram by route, the pool and queue, and gauges that other modules set
 * (open alerts by rule, undelivered notifications, the last run of each job).
 * Rendering never needs the database: /metrics answers while it is down.
 */
#ifndef INCUBATORD_METRICS_H
#define INCUBATORD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/buffer.h>

#include "incubatord/db.h"

/* The process's state that /metrics shows, read by the caller from its owners. */
struct metrics_process {
    int connections_open;
    int requests_in_flight;
    struct db_pool_stats pool;
    bool has_read_pool;             /* [database] read_conninfo is set */
    struct db_pool_stats read_pool; /* its figures (zero without one) */
    uint64_t reads_routed[2];       /* ROUTE_READ calls sent to the read pool, the primary */
    bool schema_ready;
    time_t started_at;
};

void metrics_init(size_t nroutes);
/* The route label of a route's series ("GET /v1/incubators/{code}"), copied. */
void metrics_route_label(size_t route_index, const char *label);
void metrics_free(void);

/* One answered request; route_index -1 for a path no route matched. */
void metrics_request(int route_index, int status, int64_t duration_us);

/*
 * Series that other modules keep, by declared name and preformatted labels
 * ('rule="space_share_breach"', or NULL): set a gauge, add to a counter,
 * forget every series of a name (before setting a fresh set of labels).
 */
void metrics_set(const char *name, const char *labels, double value);
void metrics_add(const char *name, const char *labels, double delta);
void metrics_reset(const char *name);
/* A label value in the exposition format (backslash, quote and newline escaped). */
void metrics_label_value(char *out, size_t len, const char *value);
/* A scheduled job ran: when, and whether it succeeded. */
void metrics_job_ran(const char *job, time_t when, bool ok);

/* Writes the exposition text. */
void metrics_render(struct evbuffer *out, const struct metrics_process *p);

#endif
