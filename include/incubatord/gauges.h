/*
 * The gauges of /metrics that come from the database: open alerts by rule,
 * the outbox's backlog per channel, given-up deliveries, the oldest pending
 * delivery's age. Read every few seconds, and shortly after each delivery,
 * so that /metrics itself never needs the database. A read in flight counts
 * as BUSY_DELIVERY work (busy.h) for the drain.
 */
#ifndef INCUBATORD_GAUGES_H
#define INCUBATORD_GAUGES_H

struct server;

void gauges_start(struct server *srv);
/* The figures changed: read them again shortly (at most one read in flight). */
void gauges_soon(struct server *srv);
void gauges_free(struct server *srv);

#endif
