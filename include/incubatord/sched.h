/*
 * The scheduler: periodic and monthly jobs, each one SQL call run under an
 * advisory lock (api.run_job), so several daemons on one database run each
 * job once. The arithmetic of the monthly schedule is pure and takes "now"
 * as an argument, so it is tested with any date.
 */
#ifndef INCUBATORD_SCHED_H
#define INCUBATORD_SCHED_H

#include <stdbool.h>
#include <time.h>

#include "incubatord/common.h"

struct server;

/*
 * The first moment strictly after now at which a monthly job is due: day
 * `day` of a month (its last day when the month is shorter) at hour:00 in
 * time zone tz.
 */
time_t sched_next_monthly(time_t now, const char *tz, int day, int hour);

/* The latest moment at or before now at which the monthly job was due. */
time_t sched_last_monthly(time_t now, const char *tz, int day, int hour);

/* The month before the one containing t in tz, as "YYYY-MM" (out[8]). */
void sched_previous_period(time_t t, const char *tz, char out[8]);

/* Starts the job timers; jobs wait until the schema is ready. */
void sched_start(struct server *srv);
/* Re-reads the reloadable schedule settings. */
void sched_apply_config(struct server *srv);
void sched_free(struct server *srv);

#endif
