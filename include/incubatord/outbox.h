/*
 * The outbox: delivers the events that SQL wrote in the same transaction as
 * the change they report to syslog, PostgreSQL NOTIFY incubatord_events and
 * every channel whose filter took them (one delivery row per event and
 * channel: the [webhook] of the configuration, robots, e-mail), and records
 * each delivery.
 *
 * Delivery is at least once and never lost: work is claimed with a lease
 * (rows locked with SKIP LOCKED, so several daemons on one database share the
 * work and take each delivery once), delivered, then marked; a daemon that
 * dies in between leaves a lease that runs out, and the delivery is made
 * again, with the same event id. The outbox wakes on NOTIFY incubatord_outbox
 * (sent by every transaction that writes an event, this daemon's or
 * another's), when the LISTEN connection comes back, and on a periodic poll.
 * Every step in flight (a claim, a message, a record) counts as BUSY_DELIVERY
 * work (busy.h): a draining server waits for them.
 */
#ifndef INCUBATORD_OUTBOX_H
#define INCUBATORD_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "incubatord/common.h"
#include "incubatord/curl.h"
#include "incubatord/db.h"

struct server;

/* Starts the outbox's timers; it delivers once the schema is ready. */
void outbox_start(struct server *srv);
/*
 * The schema is current: records the configuration's [webhook] as its
 * channel before the daemon serves (so that no event written by a request
 * misses it), then calls done.
 */
void outbox_schema_ready(struct server *srv, db_cb done, void *arg);
/* Something may be waiting in the outbox: look now. */
void outbox_wake(struct server *srv);
/* Re-reads the reloadable settings (webhook, CA file, proxy, SMTP, retries). */
void outbox_apply_config(struct server *srv);
/* Frees everything; in-flight deliveries are abandoned (their leases run out). */
void outbox_free(struct server *srv);

/* The answer to a test message (the response is valid during the call only). */
typedef void (*outbox_test_cb)(void *arg, const struct curl_response *res);
/*
 * Sends a test message now to the channel described by target (the JSON of
 * api.channel_target), outside the outbox. False with a reason when it could
 * not even start; cb is then never called.
 */
bool outbox_send_test(struct server *srv, json_t *target, outbox_test_cb cb, void *arg,
                      int timeout_ms, char *err, size_t errlen) WARN_UNUSED;

/*
 * The delay before the next attempt after `attempts` failed ones (1, 2,
 * ...): initial_ms doubled per earlier failure, at most max_ms, then "equal
 * jitter": a random point of its upper half, from rnd.
 */
int64_t outbox_backoff_ms(int attempts, int64_t initial_ms, int64_t max_ms, uint32_t rnd);

#endif
