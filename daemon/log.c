/*
 * Logging to syslog and, optionally, to stderr.
 *
 * Lines are single-line by construction: a message that contains a newline
 * (from libpq, say) has it replaced by a space, so one event is one line in
 * the journal and in log files.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "incubatord/log.h"

static struct {
    bool to_syslog;
    bool to_stderr;
    bool opened;
    int level;
    int pid; /* the process never forks: read once, not on every line */
    char ident[64];
} logger = {.to_stderr = true, .level = LOG_INFO, .ident = "incubatord"};

static const struct {
    const char *name;
    int level;
} level_names[] = {
    {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"notice", LOG_NOTICE}, {"warning", LOG_WARNING},
    {"err", LOG_ERR},     {"crit", LOG_CRIT}, {"alert", LOG_ALERT},   {"emerg", LOG_EMERG},
};

static const struct {
    const char *name;
    int facility;
} facility_names[] = {
    {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},
    {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

int log_level_from_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(level_names); i++)
        if (strcmp(level_names[i].name, name) == 0)
            return level_names[i].level;
    return -1;
}

const char *log_level_name(int level)
{
    for (size_t i = 0; i < ARRAY_LEN(level_names); i++)
        if (level_names[i].level == level)
            return level_names[i].name;
    return "unknown";
}

int log_facility_from_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(facility_names); i++)
        if (strcmp(facility_names[i].name, name) == 0)
            return facility_names[i].facility;
    return -1;
}

/*
 * libevent's own messages (evhttp's complaints about a connection, a failed
 * accept) go to this log, not to libevent's default of stderr: at their
 * level, marked as libevent's.
 */
static void libevent_message(int severity, const char *msg)
{
    int level = severity == EVENT_LOG_DEBUG  ? LOG_DEBUG
                : severity == EVENT_LOG_MSG  ? LOG_INFO
                : severity == EVENT_LOG_WARN ? LOG_WARNING
                                             : LOG_ERR;
    log_msg(level, "libevent: %s", msg);
}

void log_open(const char *ident, int facility, int level, bool to_syslog, bool to_stderr)
{
    event_set_log_callback(libevent_message);
    if (logger.opened)
        closelog();
    snprintf(logger.ident, sizeof(logger.ident), "%s", ident);
    logger.level = level;
    logger.to_syslog = to_syslog;
    logger.to_stderr = to_stderr;
    if (to_syslog) {
        openlog(logger.ident, LOG_PID | LOG_NDELAY, facility);
        logger.opened = true;
    }
}

void log_set_level(int level)
{
    logger.level = level;
}

void log_close(void)
{
    if (logger.opened)
        closelog();
    logger.opened = false;
}

bool log_enabled(int level)
{
    return level <= logger.level;
}

static void emit(int level, const char *request_id, const char *fmt, va_list ap) PRINTF_LIKE(3, 0);

static void emit(int level, const char *request_id, const char *fmt, va_list ap)
{
    char line[4096];
    int n = 0;

    if (request_id != NULL)
        n = snprintf(line, sizeof(line), "req=%s ", request_id);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';

    if (logger.to_syslog)
        syslog(level, "%s", line);
    if (logger.to_stderr) {
        struct timespec ts;
        struct tm tm;
        char stamp[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        if (logger.pid == 0)
            logger.pid = (int)getpid();
        fprintf(stderr, "%s.%03ldZ %s[%d] %s: %s\n", stamp, ts.tv_nsec / 1000000L, logger.ident,
                logger.pid, log_level_name(level), line);
    }
}

void log_msg(int level, const char *fmt, ...)
{
    va_list ap;
    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    emit(level, NULL, fmt, ap);
    va_end(ap);
}

void log_req(int level, const char *request_id, const char *fmt, ...)
{
    va_list ap;
    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    emit(level, request_id, fmt, ap);
    va_end(ap);
}
