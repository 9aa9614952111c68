/*
 * Work in progress that a draining daemon waits for: requests being
 * answered, scheduled jobs running, deliveries under way. Each module counts
 * its own work in and out; server.c reads the counts while it drains.
 * Nothing here calls anyone back: the drain reads the counter, so no module
 * has to call up into the one that started it.
 */
#ifndef INCUBATORD_BUSY_H
#define INCUBATORD_BUSY_H

enum busy_kind {
    BUSY_REQUEST,  /* an HTTP request received and not answered yet */
    BUSY_JOB,      /* a scheduled job running */
    BUSY_DELIVERY, /* a step of delivering the outbox */
    BUSY_KINDS,
};

void busy_enter(enum busy_kind kind);
void busy_leave(enum busy_kind kind);
int busy_count(enum busy_kind kind);
/* All of them. */
int busy_total(void);

#endif
