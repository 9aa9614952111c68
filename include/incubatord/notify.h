/*
 * The notifier: delivers the outbox (events that SQL wrote in the same
 * transaction as the change they report) to syslog, PostgreSQL NOTIFY
 * incubatord_events and the webhook, and records each delivery in the outbox.
 *
 * Delivery is at least once and never lost: an event is claimed with a lease
 * (rows locked with SKIP LOCKED, so several daemons on one database share the
 * work and take each event once), delivered, then marked; a daemon that dies
 * in between leaves a lease that runs out, and the event is delivered again,
 * with the same event id. The notifier wakes on NOTIFY incubatord_outbox
 * (sent by every transaction that writes an event, this daemon's or
 * another's), when the LISTEN connection comes back, and on a periodic poll.
 */
#ifndef INCUBATORD_NOTIFY_H
#define INCUBATORD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "incubatord/common.h"

struct server;

/* Starts the notifier's timers; it delivers once the schema is ready. */
void notify_start(struct server *srv);
/* Something may be waiting in the outbox: look now. */
void notify_wake(struct server *srv);
/* Re-reads the reloadable webhook settings (URL, secret, CA file, retries). */
void notify_apply_config(struct server *srv);
/* Deliveries and bookkeeping in flight (a draining server waits for them). */
int notify_busy(const struct server *srv);
/* Frees everything; in-flight deliveries are abandoned (their leases run out). */
void notify_free(struct server *srv);

/*
 * The delay before the next webhook attempt after `attempts` failed ones
 * (1, 2, ...): initial_ms doubled per earlier failure, at most max_ms, then
 * "equal jitter": a random point of its upper half, from rnd.
 */
int64_t notify_backoff_ms(int attempts, int64_t initial_ms, int64_t max_ms, uint32_t rnd);

#endif
