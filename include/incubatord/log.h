/*
 * Logging: to syslog (ident, facility and level from the configuration) and,
 * when run with -f or on a terminal, to stderr as well. A line that concerns a
 * request carries its request id as "req=<id>".
 */
#ifndef INCUBATORD_LOG_H
#define INCUBATORD_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include "incubatord/common.h"

void log_open(const char *ident, int facility, int level, bool to_syslog, bool to_stderr);
void log_set_level(int level);
void log_close(void);

/* Logs one line at a syslog level (LOG_ERR, LOG_NOTICE, ...). */
void log_msg(int level, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Logs one line about a request; request_id may be NULL. */
void log_req(int level, const char *request_id, const char *fmt, ...) PRINTF_LIKE(3, 4);
bool log_enabled(int level);

/* syslog's names: "debug info notice warning err crit alert"; -1 when unknown. */
int log_level_from_name(const char *name);
const char *log_level_name(int level);
/* "daemon", "user", "local0".."local7"; -1 when unknown. */
int log_facility_from_name(const char *name);

#endif
