/*
 * The configuration: one table declares every key; parsing, defaults,
 * validation, reload and the documentation reference are all driven by it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/http.h>

#include "incubatord/config.h"
#include "incubatord/log.h"

enum config_type {
    CT_STRING,   /* any text */
    CT_INT,      /* a decimal integer within [min, max] */
    CT_BOOL,     /* true/false, yes/no, on/off, 1/0 */
    CT_LEVEL,    /* a syslog level name */
    CT_FACILITY, /* a syslog facility name */
    CT_TIMEZONE, /* an IANA zone present in the tz database */
    CT_LISTEN,   /* "ip:port" */
    CT_URL,      /* "" or an http(s) URL */
    CT_ADDRLIST, /* "" or IP addresses and prefixes (10.0.0.0/8), comma-separated */
};

struct config_key {
    const char *section;
    const char *name;
    enum config_type type;
    size_t offset;
    size_t size; /* of the field, for CT_INT (int or int64_t) */
    const char *default_value;
    int64_t min, max;
    bool reloadable;
    bool secret;
    const char *help;
};

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct config_key keys[] = {
    {"server", "listen", CT_LISTEN, FIELD(listen), "127.0.0.1:8080", 0, 0, false, false,
     "Address and port to listen on: an IP address (no name lookup), [::1]:8080 for IPv6."},
    {"server", "max_body_bytes", CT_INT, FIELD(max_body_bytes), "1048576", 1024, 64 << 20, true,
     false, "Largest request body accepted; a larger one gets 413 (a bulk sync has its own)."},
    {"server", "max_sync_body_bytes", CT_INT, FIELD(max_sync_body_bytes), "8388608", 1024,
     64 << 20, true, false,
     "Largest body of a bulk tenant sync (PUT /v1/incubators/{code}/tenants); a larger one "
     "gets 413. The default holds 5,000 tenants as JSON or CSV even at every field's longest "
     "(docs/operations.md)."},
    {"server", "request_timeout_ms", CT_INT, FIELD(request_timeout_ms), "10000", 100, 600000, true,
     false, "Every request is answered within this time (503 when the database is late)."},
    {"server", "max_connections", CT_INT, FIELD(max_connections), "1024", 1, 100000, true, false,
     "Open client connections at most; a quarter is kept for clients that completed a "
     "request. Beyond it a newcomer closes the longest idle one, else the oldest still "
     "sending its first head; when every one is inside a request, newcomers wait in the "
     "listen backlog."},
    {"server", "idle_timeout_s", CT_INT, FIELD(idle_timeout_s), "60", 1, 3600, true, false,
     "An idle or slow client connection is closed after this many seconds."},
    {"server", "header_timeout_s", CT_INT, FIELD(header_timeout_s), "10", 1, 3600, true, false,
     "A request's head must arrive within this many seconds of the connection's start (or "
     "of its first byte), however slowly it trickles; else 408 and the connection closes."},
    {"server", "body_timeout_s", CT_INT, FIELD(body_timeout_s), "30", 1, 3600, true, false,
     "A request's body must arrive within this many seconds of its head, and a client must "
     "take an answer within as long; else the connection closes (408 for a body)."},
    {"server", "max_connections_per_ip", CT_INT, FIELD(max_connections_per_ip), "256", 1, 100000,
     true, false,
     "Open connections from one client address at most; further ones get 503 and are "
     "closed. Behind nginx every client is nginx: keep it above nginx's keepalive pool."},
    {"server", "metrics_allow", CT_ADDRLIST, FIELD(metrics_allow), "", 0, 0, true, false,
     "Addresses and prefixes that may read /metrics (e.g. 127.0.0.1, 10.0.0.0/8), "
     "comma-separated; others get 403. Empty: every client may."},
    {"server", "shutdown_timeout_ms", CT_INT, FIELD(shutdown_timeout_ms), "10000", 0, 600000, true,
     false, "On SIGTERM, how long in-flight requests may take to finish."},
    {"server", "rate_limit_per_minute", CT_INT, FIELD(rate_limit_per_minute), "600", 0, 1000000,
     true, false,
     "Requests each token may make a minute at this daemon (a token bucket); beyond it, 429 "
     "with Retry-After. 0: no limit."},
    {"server", "rate_limit_burst", CT_INT, FIELD(rate_limit_burst), "100", 1, 1000000, true, false,
     "Requests a token may make at once, before rate_limit_per_minute paces it."},
    {"database", "conninfo", CT_STRING, FIELD(conninfo), "", 0, 0, false, true,
     "libpq connection string or URI; empty uses the PG* environment. Use hostaddr, an IP "
     "address or a socket directory: a host name is resolved with a blocking lookup."},
    {"database", "pool_size", CT_INT, FIELD(pool_size), "4", 1, 256, false, false,
     "PostgreSQL connections in the pool (and in the read pool, when there is one)."},
    {"database", "read_conninfo", CT_STRING, FIELD(read_conninfo), "", 0, 0, false, true,
     "A second pool, for the reads that may lag a little (reports, metrics, payout run "
     "listings), e.g. a streaming standby with target_session_attrs=prefer-standby; empty: "
     "every read goes to conninfo."},
    {"database", "read_max_lag_s", CT_INT, FIELD(read_max_lag_s), "30", 0, 86400, true, false,
     "Above this replay lag, or while the read pool is down, its reads go to the primary "
     "pool."},
    {"database", "max_queue", CT_INT, FIELD(max_queue), "256", 0, 100000, true, false,
     "Requests that may wait for a free connection; beyond it, 503 with Retry-After."},
    {"database", "statement_timeout_ms", CT_INT, FIELD(statement_timeout_ms), "5000", 100, 3600000,
     false, false, "PostgreSQL statement_timeout set on every pool connection."},
    {"database", "migrate_on_start", CT_BOOL, FIELD(migrate_on_start), "true", 0, 0, false, false,
     "Apply the embedded schema as soon as the database is reachable."},
    {"log", "syslog", CT_BOOL, FIELD(log_syslog), "true", 0, 0, false, false,
     "Log to syslog (and to stderr too when run with -f or on a terminal)."},
    {"log", "ident", CT_STRING, FIELD(log_ident), "incubatord", 0, 0, false, false,
     "syslog identifier."},
    {"log", "facility", CT_FACILITY, FIELD(log_facility), "daemon", 0, 0, false, false,
     "syslog facility: daemon, user, local0 ... local7."},
    {"log", "level", CT_LEVEL, FIELD(log_level), "info", 0, 0, true, false,
     "Least important level logged: debug info notice warning err crit alert."},
    {"schedule", "timezone", CT_TIMEZONE, FIELD(timezone), "Asia/Shanghai", 0, 0, false, false,
     "The bureau's time zone: what \"today\" is, and when the monthly payout runs."},
    {"schedule", "payout_day", CT_INT, FIELD(payout_day), "1", 1, 31, true, false,
     "Day of the month on which last month's payout draft is computed (past the month's "
     "end: its last day)."},
    {"schedule", "payout_hour", CT_INT, FIELD(payout_hour), "2", 0, 23, true, false,
     "Hour of that day, in schedule.timezone."},
    {"schedule", "payout_enabled", CT_BOOL, FIELD(payout_enabled), "true", 0, 0, true, false,
     "Compute last month's payout draft on schedule (and at start-up when it was missed). "
     "Runs can always be computed through the API."},
    {"schedule", "alert_sweep_seconds", CT_INT, FIELD(alert_sweep_seconds), "300", 1, 86400, true,
     false, "How often the alert rules that time alone changes are evaluated."},
    {"payouts", "four_eyes", CT_BOOL, FIELD(four_eyes), "true", 0, 0, true, false,
     "A payout run is approved in two steps by two admin token names: a review, then the "
     "approval. false: one step."},
    {"webhook", "url", CT_URL, FIELD(webhook_url), "", 0, 0, true, false,
     "Where events are POSTed (http:// or https://); empty disables the webhook."},
    {"webhook", "secret", CT_STRING, FIELD(webhook_secret), "", 0, 0, true, true,
     "Key of the X-Incubatord-Signature HMAC-SHA256; required when url is set."},
    {"webhook", "timeout_ms", CT_INT, FIELD(webhook_timeout_ms), "10000", 100, 600000, true, false,
     "One delivery attempt's time limit."},
    {"webhook", "retry_initial_ms", CT_INT, FIELD(webhook_retry_initial_ms), "10000", 10, 3600000,
     true, false,
     "Delay before the first retry of a failed delivery; doubled after each failure (at most "
     "retry_max_ms), each delay drawn from its upper half (jitter)."},
    {"webhook", "retry_max_ms", CT_INT, FIELD(webhook_retry_max_ms), "3600000", 10, 86400000, true,
     false, "Longest delay between two delivery attempts of one event."},
    {"webhook", "retry_for_s", CT_INT, FIELD(webhook_retry_for_s), "86400", 1, 604800, true, false,
     "How long an event is retried; an attempt failing after that gives up (LOG_ERR) "
     "and the event is kept as failed."},
    {"webhook", "ca_file", CT_STRING, FIELD(webhook_ca_file), "", 0, 0, true, false,
     "PEM file of CA certificates trusted for an https receiver, besides the system's "
     "(notify.ca_file, when set, takes its place)."},
    {"notify", "ca_file", CT_STRING, FIELD(notify_ca_file), "", 0, 0, true, false,
     "PEM file of CA certificates trusted for every https channel and SMTP server, besides "
     "the system's (/etc/ssl/certs): for a private CA."},
    {"notify", "proxy", CT_STRING, FIELD(notify_proxy), "", 0, 0, true, false,
     "Proxy for every outgoing delivery (http://host:port, socks5://...); empty: none. The "
     "environment's http_proxy and https_proxy are never used."},
    {"notify", "timeout_ms", CT_INT, FIELD(notify_timeout_ms), "10000", 100, 600000, true, false,
     "One delivery attempt's time limit, for the channels of the API (robots, e-mail, "
     "webhooks)."},
    {"notify", "retry_initial_ms", CT_INT, FIELD(notify_retry_initial_ms), "10000", 10, 3600000,
     true, false,
     "Delay before a channel's first retry of a failed delivery; doubled after each failure (at "
     "most retry_max_ms), each delay drawn from its upper half (jitter)."},
    {"notify", "retry_max_ms", CT_INT, FIELD(notify_retry_max_ms), "3600000", 10, 86400000, true,
     false, "Longest delay between two delivery attempts of one event on one channel."},
    {"notify", "retry_for_s", CT_INT, FIELD(notify_retry_for_s), "86400", 1, 604800, true, false,
     "How long a channel's delivery is retried; an attempt failing after that gives it up "
     "(LOG_ERR) and it is kept as failed."},
    {"smtp", "host", CT_STRING, FIELD(smtp_host), "", 0, 0, true, false,
     "The mail server of e-mail channels (an IP address or a host name)."},
    {"smtp", "port", CT_INT, FIELD(smtp_port), "25", 1, 65535, true, false,
     "Its port: 25 or 587 (with STARTTLS), 465 (TLS from the start)."},
    {"smtp", "starttls", CT_BOOL, FIELD(smtp_starttls), "true", 0, 0, true, false,
     "Require STARTTLS (certificate and host name verified) before sending."},
    {"smtp", "user", CT_STRING, FIELD(smtp_user), "", 0, 0, true, false,
     "User name for SMTP AUTH; empty: no AUTH."},
    {"smtp", "password", CT_STRING, FIELD(smtp_password), "", 0, 0, true, true,
     "Password for SMTP AUTH (or password_file)."},
    {"smtp", "password_file", CT_STRING, FIELD(smtp_password_file), "", 0, 0, true, false,
     "A file holding the SMTP password (its first line), read at start and on SIGHUP."},
    {"smtp", "from", CT_STRING, FIELD(smtp_from), "", 0, 0, true, false,
     "The sender address of alert mail, e.g. incubatord@kj.example.gov.cn."},
    {"console", "public_url", CT_URL, FIELD(console_public_url), "", 0, 0, true, false,
     "The console's address as people reach it (https://kj.example.gov.cn/); messages link "
     "to its incubator pages. Empty: no links."},
};

static void *field_ptr(struct config *cfg, const struct config_key *k)
{
    return (char *)cfg + k->offset;
}

static const void *field_cptr(const struct config *cfg, const struct config_key *k)
{
    return (const char *)cfg + k->offset;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"};
    static const char *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

bool config_split_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *colon;
    const char *h = listen;
    size_t hl;
    char *end;
    long p;

    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            return false;
        h = listen + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        /*
         * One colon only: an IPv6 address goes in brackets, since "::1:8080"
         * or "fe80::1:80" could as well be an address without its port.
         */
        colon = strchr(listen, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL)
            return false;
        hl = (size_t)(colon - listen);
    }
    if (hl == 0 || hl >= hostlen)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || p < 1 || p > 65535)
        return false;
    *port = (int)p;
    return true;
}

/* One "address" or "address/prefix" of an address list, into bytes and a prefix length. */
static bool parse_prefix(const char *s, size_t n, int *family, unsigned char addr[16], int *bits)
{
    char text[64], *slash, *end;
    if (n == 0 || n >= sizeof(text))
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    slash = strchr(text, '/');
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, text, addr) == 1)
        *family = AF_INET;
    else if (inet_pton(AF_INET6, text, addr) == 1)
        *family = AF_INET6;
    else
        return false;
    *bits = *family == AF_INET ? 32 : 128;
    if (slash) {
        errno = 0;
        long b = strtol(slash + 1, &end, 10);
        if (errno || end == slash + 1 || *end != '\0' || b < 0 || b > *bits)
            return false;
        *bits = (int)b;
    }
    return true;
}

static bool prefix_matches(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return false;
    return rest == 0 || ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

bool config_address_listed(const char *list, const char *ip)
{
    unsigned char peer[16], addr[16];
    int peer_family = 0, family, bits;
    bool listed = false;
    if (ip != NULL) {
        if (inet_pton(AF_INET, ip, peer) == 1)
            peer_family = AF_INET;
        else if (inet_pton(AF_INET6, ip, peer) == 1)
            peer_family = AF_INET6;
        /* An IPv4 client on an IPv6 socket: ::ffff:a.b.c.d is a.b.c.d. */
        if (peer_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)peer)) {
            memmove(peer, peer + 12, 4);
            peer_family = AF_INET;
        }
    }
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, " \t,");
        if (n == 0)
            break;
        if (!parse_prefix(p, n, &family, addr, &bits))
            return false;
        if (family == peer_family && prefix_matches(peer, addr, bits))
            listed = true;
        p += n;
    }
    return ip == NULL || listed;
}

/*
 * A time zone must exist in the tz database: glibc silently treats an unknown
 * TZ as UTC, which would move "today" and the payout schedule by hours. So
 * must a name that is there but no zone: a directory ("Asia") or one of the
 * database's tables ("zone.tab"). A zone's file starts with "TZif".
 */
static bool timezone_exists(const char *tz)
{
    const char *dir = getenv("TZDIR");
    char path[512], magic[4];
    FILE *f;
    bool zone;

    if (tz[0] == '\0' || tz[0] == '/' || strstr(tz, "..") != NULL)
        return false;
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "/usr/share/zoneinfo", tz);
    f = fopen(path, "rb");
    if (f == NULL)
        return false;
    zone = fread(magic, 1, sizeof(magic), f) == sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
    fclose(f);
    return zone;
}

/* Parses one value into its field; on failure writes why into err. */
static bool set_value(struct config *cfg, const struct config_key *k, const char *v, char *err,
                      size_t errlen)
{
    void *p = field_ptr(cfg, k);

    switch (k->type) {
    case CT_STRING:
    case CT_URL:
    case CT_ADDRLIST:
    case CT_LISTEN:
    case CT_TIMEZONE: {
        if (k->type == CT_LISTEN) {
            char host[64];
            int port;
            unsigned char buf[sizeof(struct in6_addr)];
            if (!config_split_listen(v, host, sizeof(host), &port) ||
                (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)) {
                snprintf(err, errlen, "must be IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
                return false;
            }
        }
        if (k->type == CT_TIMEZONE && !timezone_exists(v)) {
            snprintf(err, errlen, "unknown time zone \"%s\" (is the tzdata package installed?)", v);
            return false;
        }
        if (k->type == CT_ADDRLIST && !config_address_listed(v, NULL)) {
            snprintf(err, errlen,
                     "must be IP addresses or prefixes, comma-separated, e.g. "
                     "127.0.0.1, 10.0.0.0/8, ::1");
            return false;
        }
        if (k->type == CT_URL && v[0] != '\0') {
            struct evhttp_uri *uri = evhttp_uri_parse(v);
            const char *scheme = uri ? evhttp_uri_get_scheme(uri) : NULL;
            bool ok = uri != NULL && scheme != NULL &&
                      (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
                      evhttp_uri_get_host(uri) != NULL && evhttp_uri_get_host(uri)[0] != '\0';
            if (uri)
                evhttp_uri_free(uri);
            if (!ok) {
                snprintf(err, errlen, "must be an http:// or https:// URL with a host");
                return false;
            }
        }
        char **s = p;
        free(*s);
        *s = xstrdup(v);
        return true;
    }
    case CT_INT: {
        char *end;
        long long n;
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || n < k->min || n > k->max) {
            snprintf(err, errlen, "must be an integer from %lld to %lld", (long long)k->min,
                     (long long)k->max);
            return false;
        }
        if (k->size == sizeof(int64_t))
            *(int64_t *)p = n;
        else
            *(int *)p = (int)n;
        return true;
    }
    case CT_BOOL:
        if (!parse_bool(v, p)) {
            snprintf(err, errlen, "must be true or false");
            return false;
        }
        return true;
    case CT_LEVEL: {
        int level = log_level_from_name(v);
        if (level < 0) {
            snprintf(err, errlen, "must be one of debug info notice warning err crit alert");
            return false;
        }
        *(int *)p = level;
        return true;
    }
    case CT_FACILITY: {
        int facility = log_facility_from_name(v);
        if (facility < 0) {
            snprintf(err, errlen, "must be daemon, user or local0 ... local7");
            return false;
        }
        *(int *)p = facility;
        return true;
    }
    }
    return false;
}

static const struct config_key *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

void config_defaults(struct config *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        if (keys[i].type == CT_TIMEZONE) {
            /* Checked when a file is loaded: a default must not fail here. */
            char **s = field_ptr(cfg, &keys[i]);
            *s = xstrdup(keys[i].default_value);
            continue;
        }
        if (!set_value(cfg, &keys[i], keys[i].default_value, err, sizeof(err))) {
            log_msg(LOG_CRIT, "config: bad default for %s.%s: %s", keys[i].section, keys[i].name,
                    err);
            abort();
        }
    }
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        switch (keys[i].type) {
        case CT_STRING:
        case CT_URL:
        case CT_ADDRLIST:
        case CT_LISTEN:
        case CT_TIMEZONE: {
            char **s = field_ptr(cfg, &keys[i]);
            free(*s);
            *s = NULL;
            break;
        }
        default:
            break;
        }
    }
}

struct parse_state {
    struct config *cfg;
    char err[512]; /* the first error only: inih reports that one's line */
    bool seen[ARRAY_LEN(keys)];
};

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    const struct config_key *k = find_key(section, name);
    char why[256];

    if (st->err[0] != '\0')
        return 0;
    if (k == NULL) {
        snprintf(st->err, sizeof(st->err), "[%s] %s: unknown key", section, name);
        return 0;
    }
    if (st->seen[k - keys]) {
        snprintf(st->err, sizeof(st->err), "[%s] %s: set twice", section, name);
        return 0;
    }
    st->seen[k - keys] = true;
    if (!set_value(st->cfg, k, value, why, sizeof(why))) {
        snprintf(st->err, sizeof(st->err), "[%s] %s = \"%s\": %s", section, name,
                 k->secret ? "***" : value, why);
        return 0;
    }
    return 1;
}

/*
 * inih reads a line with fgets(line, INI_MAX_LINE): at most INI_MAX_LINE - 1
 * bytes, the newline included. A longer line is split and its tail parsed as
 * a line of its own: a conninfo cut short, an error blamed on the wrong
 * line, and every later line number off by one. So any line whose text
 * (without its newline) is longer than INI_MAX_LINE - 2 bytes fails here,
 * loudly, with its own line number. (An earlier version read in chunks of
 * INI_MAX_LINE + 1 bytes and let lines of INI_MAX_LINE - 1 and INI_MAX_LINE
 * bytes through.)
 */
static bool check_line_lengths(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    int line = 1, c;
    size_t len = 0;

    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    while ((c = getc(f)) != EOF) {
        if (c == '\n') {
            line++;
            len = 0;
        } else if (++len > INI_MAX_LINE - 2) {
            snprintf(err, errlen, "%s:%d: line longer than %d characters", path, line,
                     INI_MAX_LINE - 2);
            fclose(f);
            return false;
        }
    }
    fclose(f);
    return true;
}

bool config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
    struct parse_state st = {.cfg = cfg};
    int line;

    config_defaults(cfg);
    if (!check_line_lengths(path, err, errlen))
        return false;
    line = ini_parse(path, ini_cb, &st);
    if (line < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    if (line > 0) {
        snprintf(err, errlen, "%s:%d: %s", path, line,
                 st.err[0] ? st.err : "syntax error (expected [section] or key = value)");
        return false;
    }
    /* Defaults of keys the file does not set are checked too (the time zone). */
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        if (!st.seen[i] && keys[i].type == CT_TIMEZONE && !timezone_exists(cfg->timezone)) {
            snprintf(err, errlen,
                     "%s: [schedule] timezone \"%s\" (default): unknown time zone "
                     "(is the tzdata package installed?)",
                     path, cfg->timezone);
            return false;
        }
    }
    if (cfg->webhook_url[0] != '\0' && cfg->webhook_secret[0] == '\0') {
        snprintf(err, errlen, "%s: [webhook] secret: required when [webhook] url is set", path);
        return false;
    }
    if (cfg->smtp_password[0] != '\0' && cfg->smtp_password_file[0] != '\0') {
        snprintf(err, errlen, "%s: [smtp] password and password_file: set one of them", path);
        return false;
    }
    return true;
}

static bool field_equal(const struct config *a, const struct config *b, const struct config_key *k)
{
    const void *pa = field_cptr(a, k), *pb = field_cptr(b, k);
    switch (k->type) {
    case CT_STRING:
    case CT_URL:
    case CT_ADDRLIST:
    case CT_LISTEN:
    case CT_TIMEZONE:
        return strcmp(*(char *const *)pa, *(char *const *)pb) == 0;
    case CT_BOOL:
        return *(const bool *)pa == *(const bool *)pb;
    case CT_INT:
        return memcmp(pa, pb, k->size) == 0;
    default:
        return *(const int *)pa == *(const int *)pb;
    }
}

static void copy_field(struct config *dst, const struct config *src, const struct config_key *k)
{
    void *pd = field_ptr(dst, k);
    const void *ps = field_cptr(src, k);
    switch (k->type) {
    case CT_STRING:
    case CT_URL:
    case CT_ADDRLIST:
    case CT_LISTEN:
    case CT_TIMEZONE:
        free(*(char **)pd);
        *(char **)pd = xstrdup(*(char *const *)ps);
        break;
    case CT_BOOL:
        *(bool *)pd = *(const bool *)ps;
        break;
    case CT_INT:
        memcpy(pd, ps, k->size);
        break;
    default:
        *(int *)pd = *(const int *)ps;
        break;
    }
}

void config_apply_reload(struct config *cur, const struct config *next)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const struct config_key *k = &keys[i];
        if (field_equal(cur, next, k))
            continue;
        if (!k->reloadable) {
            log_msg(LOG_WARNING, "config: [%s] %s changed but takes effect only after a restart",
                    k->section, k->name);
            continue;
        }
        copy_field(cur, next, k);
        log_msg(LOG_NOTICE, "config: [%s] %s reloaded", k->section, k->name);
    }
}

static const char *type_name(enum config_type t)
{
    switch (t) {
    case CT_STRING:
        return "string";
    case CT_INT:
        return "integer";
    case CT_BOOL:
        return "boolean";
    case CT_LEVEL:
        return "level";
    case CT_FACILITY:
        return "facility";
    case CT_TIMEZONE:
        return "time zone";
    case CT_LISTEN:
        return "address";
    case CT_URL:
        return "URL";
    case CT_ADDRLIST:
        return "address list";
    }
    return "?";
}

void config_write_reference(FILE *out)
{
    fprintf(out, "| key | type | default | reload | meaning |\n");
    fprintf(out, "|---|---|---|---|---|\n");
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const struct config_key *k = &keys[i];
        char range[64] = "";
        if (k->type == CT_INT)
            snprintf(range, sizeof(range), " (%lld–%lld)", (long long)k->min, (long long)k->max);
        fprintf(out, "| `[%s] %s` | %s%s | `%s` | %s | %s |\n", k->section, k->name,
                type_name(k->type), range, k->default_value[0] ? k->default_value : "\"\"",
                k->reloadable ? "SIGHUP" : "restart", k->help);
    }
}

void config_write_effective(FILE *out, const struct config *cfg)
{
    const char *section = "";
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const struct config_key *k = &keys[i];
        const void *p = field_cptr(cfg, k);
        if (strcmp(section, k->section) != 0) {
            fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
            section = k->section;
        }
        fprintf(out, "%s = ", k->name);
        switch (k->type) {
        case CT_STRING:
        case CT_URL:
        case CT_ADDRLIST:
        case CT_LISTEN:
        case CT_TIMEZONE: {
            const char *s = *(char *const *)p;
            fprintf(out, "%s\n", (k->secret && s[0]) ? "***" : s);
            break;
        }
        case CT_INT:
            if (k->size == sizeof(int64_t))
                fprintf(out, "%lld\n", (long long)*(const int64_t *)p);
            else
                fprintf(out, "%d\n", *(const int *)p);
            break;
        case CT_BOOL:
            fprintf(out, "%s\n", *(const bool *)p ? "true" : "false");
            break;
        case CT_LEVEL:
            fprintf(out, "%s\n", log_level_name(*(const int *)p));
            break;
        case CT_FACILITY:
            for (const char *const *f =
                     (const char *const[]){"daemon", "user", "local0", "local1", "local2", "local3",
                                           "local4", "local5", "local6", "local7", NULL};
                 *f; f++)
                if (log_facility_from_name(*f) == *(const int *)p) {
                    fprintf(out, "%s\n", *f);
                    break;
                }
            break;
        }
    }
}
