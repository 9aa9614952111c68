/*
 * The scheduler. Every job is a row of the table below and one SQL function,
 * api.job_<name>(ctx), run by api.run_job under pg_try_advisory_xact_lock:
 * when several daemons share a database, the one that gets the lock runs it
 * and the others skip. A job runs in a transaction of its own on a session
 * of the pool, with a statement timeout of its own.
 *
 * The job's result is JSON; its "log" member, if any, is a list of
 * {"level", "message"} lines this file writes to the log (a payout run's
 * summary, say), so what a job did is visible where operators look.
 *
 * A job that works in batches (the alert sweep) returns "next" while there
 * is more to do. It runs through api.run_job_batches, one CALL outside any
 * transaction block, which commits each batch as a transaction of its own
 * and goes on batch after batch for up to CALL_BUDGET_MS: one round trip
 * for many batches, and no round trip between a batch's locks and its
 * commit. The procedure sizes the batches to hold their locks about
 * BATCH_TARGET_MS whatever the machine's load; when the budget runs out
 * first, it returns "next" and the size reached, and the scheduler calls it
 * again (unless the daemon is stopping: the next run sweeps anyway). The
 * integer results are summed over the batches and logged once, at the end,
 * with the time the whole run took; each batch is logged at debug level.
 *
 * The job's own statement timeout is set on the session for the run (a
 * CALL cannot set it for itself) and the pool's put back before the
 * session is given back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "incubatord/apicall.h"
#include "incubatord/busy.h"
#include "incubatord/dates.h"
#include "incubatord/db.h"
#include "incubatord/log.h"
#include "incubatord/metrics.h"
#include "incubatord/sched.h"
#include "incubatord/server.h"

#define NOT_READY_RETRY_S 2
#define ERROR_RETRY_S     60
#define SESSION_WAIT_MS   30000
/* How long one batch of a batched job should hold its locks, and its first size. */
#define BATCH_TARGET_MS 25
#define BATCH_FIRST     10
/* How long one CALL of a job goes on batch after batch before it comes back. */
#define CALL_BUDGET_MS 500

enum job_kind {
    JOB_PERIODIC, /* every period_s seconds */
    JOB_MONTHLY,  /* on schedule.payout_day at schedule.payout_hour */
};

struct job_def {
    const char *name; /* api.job_<name> */
    enum job_kind kind;
    int (*period_s)(const struct config *cfg); /* JOB_PERIODIC */
    int timeout_ms;                            /* the job's statement timeout */
    bool (*enabled)(const struct config *cfg); /* NULL: always */
};

static int hourly(const struct config *cfg)
{
    (void)cfg;
    return 3600;
}

static int alert_sweep_period(const struct config *cfg)
{
    return cfg->alert_sweep_seconds;
}

static bool payouts_on_schedule(const struct config *cfg)
{
    return cfg->payout_enabled;
}

/* clang-format off */
static const struct job_def jobs[] = {
    {"idempotency_cleanup", JOB_PERIODIC, hourly, 60000},
    {"alert_sweep", JOB_PERIODIC, alert_sweep_period, 120000},
    {"payout", JOB_MONTHLY, NULL, 600000, payouts_on_schedule},
};
/* clang-format on */

struct job {
    const struct job_def *def;
    struct server *srv;
    struct event *timer;
    struct db_session *session;
    bool running;
    char ctx[512];
    char timeout[16];   /* the job's statement timeout, ms */
    bool timeout_set;   /* on the session: the pool's is to be put back */
    bool ok;            /* how the run ended, once it did */
    int retry_s;        /* when it failed: run again this much later */
    char after[32];     /* the batch to continue after ("next"), or "" */
    json_t *total;      /* the batches' results, integers summed */
    int64_t started_ms; /* when this run started */
    int batch;          /* the size asked of the next batch */
};

struct sched_state {
    struct job jobs[ARRAY_LEN(jobs)];
};

/* ---- the monthly arithmetic ---- */

/* Runs f with the process's time zone set to tz, and puts the old one back. */
struct tz_guard {
    char *saved;
    bool changed;
};

static struct tz_guard tz_enter(const char *tz)
{
    struct tz_guard g = {NULL, false};
    const char *cur = getenv("TZ");
    if (cur == NULL || strcmp(cur, tz) != 0) {
        g.saved = cur ? xstrdup(cur) : NULL;
        g.changed = true;
        setenv("TZ", tz, 1);
        tzset();
    }
    return g;
}

static void tz_leave(struct tz_guard g)
{
    if (!g.changed)
        return;
    if (g.saved)
        setenv("TZ", g.saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(g.saved);
}

/* The due moment in a month (year, month0 0-11) in the current time zone. */
static time_t due_in_month(int year, int month0, int day, int hour)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = month0;
    int last = date_days_in_month(year, month0 + 1);
    tm.tm_mday = day < last ? day : last;
    tm.tm_hour = hour;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

time_t sched_next_monthly(time_t now, const char *tz, int day, int hour)
{
    struct tz_guard g = tz_enter(tz);
    struct tm tm;
    localtime_r(&now, &tm);
    int year = tm.tm_year + 1900, month0 = tm.tm_mon;
    time_t due = due_in_month(year, month0, day, hour);
    if (due <= now) {
        month0++;
        if (month0 == 12) {
            month0 = 0;
            year++;
        }
        due = due_in_month(year, month0, day, hour);
    }
    tz_leave(g);
    return due;
}

time_t sched_last_monthly(time_t now, const char *tz, int day, int hour)
{
    struct tz_guard g = tz_enter(tz);
    struct tm tm;
    localtime_r(&now, &tm);
    int year = tm.tm_year + 1900, month0 = tm.tm_mon;
    time_t due = due_in_month(year, month0, day, hour);
    if (due > now) {
        month0--;
        if (month0 < 0) {
            month0 = 11;
            year--;
        }
        due = due_in_month(year, month0, day, hour);
    }
    tz_leave(g);
    return due;
}

void sched_previous_period(time_t t, const char *tz, char out[8])
{
    struct tz_guard g = tz_enter(tz);
    struct tm tm;
    localtime_r(&t, &tm);
    tz_leave(g);
    int year = tm.tm_year + 1900, month = tm.tm_mon; /* month 0 = December of last year */
    if (month == 0) {
        month = 12;
        year--;
    }
    char buf[32];
    snprintf(buf, sizeof(buf), "%04d-%02d", year, month);
    memcpy(out, buf, 7);
    out[7] = '\0';
}

/* ---- running jobs ---- */

static void arm(struct job *j, int delay_s)
{
    struct timeval tv = {delay_s > 0 ? delay_s : 0, 0};
    evtimer_add(j->timer, &tv);
}

/* Seconds until the job is next due. */
static int next_delay(const struct job *j)
{
    const struct config *cfg = &j->srv->cfg;
    if (j->def->kind == JOB_PERIODIC)
        return j->def->period_s(cfg);
    time_t now = time(NULL);
    return (int)(sched_next_monthly(now, cfg->timezone, cfg->payout_day, cfg->payout_hour) - now);
}

static void job_released(struct job *j)
{
    if (j->session) {
        db_session_close(j->session);
        j->session = NULL;
    }
    j->running = false;
    j->timeout_set = false;
    j->after[0] = '\0';
    j->batch = BATCH_FIRST;
    json_decref(j->total);
    j->total = NULL;
    busy_leave(BUSY_JOB);
    metrics_job_ran(j->def->name, time(NULL), j->ok);
    arm(j, j->ok ? next_delay(j) : j->retry_s);
}

static void timeout_restored(void *arg, const struct db_result *r)
{
    struct job *j = arg;
    if (r->status != DB_OK)
        log_msg(LOG_WARNING, "job %s: putting the pool's statement_timeout back failed: %s",
                j->def->name, r->message ? r->message : "?");
    job_released(j);
}

/* The run is over: the pool's statement timeout back on the session, then the session back. */
static void job_finished(struct job *j, bool ok, int retry_s)
{
    j->ok = ok;
    j->retry_s = retry_s;
    if (j->session && j->timeout_set) {
        char pool_timeout[16];
        snprintf(pool_timeout, sizeof(pool_timeout), "%d", j->srv->cfg.statement_timeout_ms);
        const char *values[] = {pool_timeout};
        db_session_query(j->session, "SELECT set_config('statement_timeout', $1, false)", 1, values,
                         timeout_restored, j);
        return;
    }
    job_released(j);
}

static bool job_failed(struct job *j, const struct db_result *r, const char *step)
{
    if (r->status == DB_OK)
        return false;
    log_msg(LOG_ERR, "job %s: %s failed: %s%s%s (retrying in %d s)", j->def->name, step,
            r->message ? r->message : "?", r->detail ? ": " : "", r->detail ? r->detail : "",
            ERROR_RETRY_S);
    job_finished(j, false, ERROR_RETRY_S);
    return true;
}

/* Writes the job's "log" lines, and adds its results to the run's. */
static void add_result(struct job *j, json_t *result)
{
    json_t *lines = json_object_get(result, "log");
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line)
    {
        const char *level = json_string_value(json_object_get(line, "level"));
        const char *message = json_string_value(json_object_get(line, "message"));
        int l = level ? log_level_from_name(level) : LOG_INFO;
        if (message)
            log_msg(l < 0 ? LOG_INFO : l, "%s", message);
    }
    json_object_del(result, "log");
    json_object_del(result, "next");
    json_object_del(result, "batch");
    if (j->total == NULL)
        j->total = json_object();
    const char *key;
    json_t *value;
    json_object_foreach(result, key, value)
    {
        json_t *sum = json_object_get(j->total, key);
        if (json_is_integer(value) && json_is_integer(sum))
            json_integer_set(sum, json_integer_value(sum) + json_integer_value(value));
        else
            json_object_set(j->total, key, value);
    }
}

/* The run is over: one line with what it did and how long it took. */
static void log_total(struct job *j)
{
    if (j->total == NULL)
        return;
    json_t *batches = json_object_get(j->total, "batches");
    if (json_is_integer(batches) && json_integer_value(batches) <= 1)
        json_object_del(j->total, "batches");
    char *text = json_dumps(j->total, JSON_COMPACT);
    log_msg(LOG_INFO, "job %s: done in %lld ms %s", j->def->name,
            (long long)(mono_ms() - j->started_ms), text ? text : "(unprintable result)");
    free(text);
}

static void make_context(struct job *j);
static void call_job(struct job *j);

static void ran(void *arg, const struct db_result *failure, const char *result)
{
    struct job *j = arg;
    if (failure != NULL && job_failed(j, failure, "api.run_job_batches"))
        return;
    j->after[0] = '\0';
    if (result == NULL) {
        log_msg(LOG_DEBUG, "job %s: another daemon holds it; skipped", j->def->name);
    } else {
        json_t *doc = json_loads(result, JSON_DECODE_ANY, NULL);
        json_t *next = json_object_get(doc, "next");
        json_t *batch = json_object_get(doc, "batch");
        if (json_is_integer(next))
            snprintf(j->after, sizeof(j->after), "%lld", (long long)json_integer_value(next));
        if (json_is_integer(batch) && json_integer_value(batch) > 0)
            j->batch = (int)json_integer_value(batch);
        if (doc)
            add_result(j, doc);
        json_decref(doc);
    }
    /* More batches, unless the daemon is stopping (the next run sweeps anyway). */
    if (j->after[0] != '\0' && !j->srv->draining) {
        make_context(j);
        call_job(j);
        return;
    }
    log_total(j);
    job_finished(j, true, 0);
}

static void call_job(struct job *j)
{
    apicall_run_job(j->session, j->def->name, j->ctx, CALL_BUDGET_MS, BATCH_TARGET_MS, ran, j);
}

static void timeout_set(void *arg, const struct db_result *r)
{
    struct job *j = arg;
    /* Set or not, put the pool's back: the statement may have reached the server. */
    j->timeout_set = true;
    if (job_failed(j, r, "set statement_timeout"))
        return;
    call_job(j);
}

static void session_opened(void *arg, struct db_session *s, const char *error)
{
    struct job *j = arg;
    if (s == NULL) {
        log_msg(LOG_WARNING, "job %s: no database connection: %s (retrying in %d s)", j->def->name,
                error, ERROR_RETRY_S);
        job_finished(j, false, ERROR_RETRY_S);
        return;
    }
    j->session = s;
    const char *values[] = {j->timeout};
    db_session_query(s, "SELECT set_config('statement_timeout', $1, false)", 1, values, timeout_set,
                     j);
}

/* The context a job's SQL gets: a request's, with, for a monthly job, its period. */
static void make_context(struct job *j)
{
    const struct config *cfg = &j->srv->cfg;
    struct api_caller caller = {
        .request_id = "job",
        .method = "JOB",
        .path = j->def->name,
        .token_name = "scheduler",
        .admin = true,
    };
    json_t *ctx = apicall_context(&caller);
    char period[8];
    if (j->after[0] != '\0')
        json_object_set_new(ctx, "after", json_integer(strtoll(j->after, NULL, 10)));
    json_object_set_new(ctx, "batch", json_integer(j->batch));
    if (j->def->kind == JOB_MONTHLY) {
        time_t due =
            sched_last_monthly(time(NULL), cfg->timezone, cfg->payout_day, cfg->payout_hour);
        sched_previous_period(due, cfg->timezone, period);
        json_object_set_new(ctx, "period", json_string(period));
    }
    char *text = json_dumps(ctx, JSON_COMPACT);
    snprintf(j->ctx, sizeof(j->ctx), "%s", text ? text : "{}");
    free(text);
    json_decref(ctx);
}

static void start_job(struct job *j)
{
    struct server *srv = j->srv;
    if (j->running)
        return;
    if (srv->draining)
        return;
    if (!server_schema_ready(srv)) {
        arm(j, NOT_READY_RETRY_S);
        return;
    }
    if (j->def->enabled && !j->def->enabled(&srv->cfg)) {
        arm(j, next_delay(j)); /* looked at again when next due, or on SIGHUP */
        return;
    }
    j->running = true;
    busy_enter(BUSY_JOB);
    j->started_ms = mono_ms();
    make_context(j);
    snprintf(j->timeout, sizeof(j->timeout), "%d", j->def->timeout_ms);
    db_session_open(srv->pool, SESSION_WAIT_MS, session_opened, j);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_job(arg);
}

void sched_start(struct server *srv)
{
    struct sched_state *st = xcalloc(1, sizeof(*st));
    srv->sched = st;
    for (size_t i = 0; i < ARRAY_LEN(jobs); i++) {
        struct job *j = &st->jobs[i];
        j->def = &jobs[i];
        j->srv = srv;
        j->timer = evtimer_new(srv->base, timer_cb, j);
        j->batch = BATCH_FIRST;
        /* First run soon after start: catches up what is due (a missed payout run). */
        arm(j, 1);
    }
}

void sched_apply_config(struct server *srv)
{
    struct sched_state *st = srv->sched;
    for (size_t i = 0; st && i < ARRAY_LEN(jobs); i++) {
        struct job *j = &st->jobs[i];
        /* A monthly job looks at once whether a run is missing (it may have
         * just been switched on); a periodic one follows its new period. */
        if (!j->running)
            arm(j, j->def->kind == JOB_MONTHLY ? 1 : next_delay(j));
    }
}

void sched_free(struct server *srv)
{
    struct sched_state *st = srv->sched;
    if (st == NULL)
        return;
    for (size_t i = 0; i < ARRAY_LEN(jobs); i++) {
        if (st->jobs[i].timer)
            event_free(st->jobs[i].timer);
        json_decref(st->jobs[i].total);
    }
    free(st);
    srv->sched = NULL;
}
