/*
 * The configuration: files parsed with inih into the table's keys, errors
 * that name the file, line and key, inih's line limit, defaults, the
 * reference and effective outputs, and what SIGHUP may change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "incubatord/config.h"
#include "incubatord/log.h"

static char dir[] = "/tmp/incubatord-test-config-XXXXXX";

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    /* Log lines (reload's) go to stderr, where a test can catch them. */
    log_open("test", LOG_USER, LOG_DEBUG, false, true);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to a file of the temporary directory; returns its path (static). */
static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads text; returns whether it loaded, with cfg filled and err set. */
static bool load(const char *text, struct config *cfg, char *err, size_t errlen)
{
    const char *path = write_file("incubatord.conf", text);
    err[0] = '\0';
    return config_load(path, cfg, err, errlen);
}

/* text must fail to load with an error containing each of the given parts. */
static void load_fails(const char *text, const char *part1, const char *part2, const char *part3)
{
    struct config cfg;
    char err[1024];
    if (load(text, &cfg, err, sizeof(err)))
        fail_msg("loaded, but should not have:\n%s", text);
    const char *parts[] = {part1, part2, part3};
    for (size_t i = 0; i < 3; i++)
        if (parts[i] != NULL && strstr(err, parts[i]) == NULL)
            fail_msg("error \"%s\" does not say \"%s\"", err, parts[i]);
    config_free(&cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_int_equal(cfg.max_body_bytes, 1048576);      /* API.md's 1 MiB */
    assert_int_equal(cfg.max_sync_body_bytes, 8388608); /* 5,000 tenants at their longest */
    assert_int_equal(cfg.request_timeout_ms, 10000);
    assert_int_equal(cfg.max_connections, 1024);
    assert_int_equal(cfg.idle_timeout_s, 60);
    assert_int_equal(cfg.shutdown_timeout_ms, 10000);
    assert_string_equal(cfg.conninfo, "");
    assert_int_equal(cfg.pool_size, 4);
    assert_int_equal(cfg.max_queue, 256);
    assert_int_equal(cfg.statement_timeout_ms, 5000);
    assert_true(cfg.migrate_on_start);
    assert_true(cfg.log_syslog);
    assert_string_equal(cfg.log_ident, "incubatord");
    assert_int_equal(cfg.log_facility, LOG_DAEMON);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_string_equal(cfg.timezone, "Asia/Shanghai");
    assert_int_equal(cfg.payout_day, 1);
    assert_int_equal(cfg.payout_hour, 2);
    assert_int_equal(cfg.alert_sweep_seconds, 300);
    assert_string_equal(cfg.webhook_url, "");
    assert_string_equal(cfg.webhook_secret, "");
    assert_int_equal(cfg.webhook_timeout_ms, 10000);
    config_free(&cfg);
    assert_null(cfg.listen);
}

static void test_empty_file_is_the_defaults(void **state)
{
    (void)state;
    struct config cfg;
    char err[1024];
    assert_true(load("", &cfg, err, sizeof(err)));
    assert_int_equal(cfg.max_body_bytes, 1048576);      /* API.md's 1 MiB */
    assert_int_equal(cfg.max_sync_body_bytes, 8388608); /* 5,000 tenants at their longest */
    config_free(&cfg);
    assert_true(load("; only a comment\n\n# and another\n[server]\n", &cfg, err, sizeof(err)));
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    config_free(&cfg);
}

static void test_every_key_parsed(void **state)
{
    (void)state;
    struct config cfg;
    char err[1024];
    bool ok = load("[server]\n"
                   "listen = [::1]:9090\n"
                   "max_body_bytes = 2048\n"
                   "max_sync_body_bytes = 4096\n"
                   "request_timeout_ms = 250\n"
                   "max_connections = 3\n"
                   "idle_timeout_s = 5\n"
                   "shutdown_timeout_ms = 0\n"
                   "[database]\n"
                   "conninfo = host=/tmp port=5433 dbname=x ; an inline comment\n"
                   "pool_size = 2\n"
                   "max_queue = 0\n"
                   "statement_timeout_ms = 100\n"
                   "migrate_on_start = off\n"
                   "[log]\n"
                   "syslog = no\n"
                   "ident = ikd\n"
                   "facility = local3\n"
                   "level = warning\n"
                   "[schedule]\n"
                   "timezone = Europe/Berlin\n"
                   "payout_day = 31\n"
                   "payout_hour = 23\n"
                   "alert_sweep_seconds = 1\n"
                   "[webhook]\n"
                   "url = https://hooks.example.org/incubatord\n"
                   "secret = s3cret\n"
                   "timeout_ms = 100\n",
                   &cfg, err, sizeof(err));
    if (!ok)
        fail_msg("%s", err);
    assert_string_equal(cfg.listen, "[::1]:9090");
    assert_int_equal(cfg.max_body_bytes, 2048);
    assert_int_equal(cfg.max_sync_body_bytes, 4096);
    assert_int_equal(cfg.request_timeout_ms, 250);
    assert_int_equal(cfg.max_connections, 3);
    assert_int_equal(cfg.idle_timeout_s, 5);
    assert_int_equal(cfg.shutdown_timeout_ms, 0);
    assert_string_equal(cfg.conninfo, "host=/tmp port=5433 dbname=x");
    assert_int_equal(cfg.pool_size, 2);
    assert_int_equal(cfg.max_queue, 0);
    assert_int_equal(cfg.statement_timeout_ms, 100);
    assert_false(cfg.migrate_on_start);
    assert_false(cfg.log_syslog);
    assert_string_equal(cfg.log_ident, "ikd");
    assert_int_equal(cfg.log_facility, LOG_LOCAL3);
    assert_int_equal(cfg.log_level, LOG_WARNING);
    assert_string_equal(cfg.timezone, "Europe/Berlin");
    assert_int_equal(cfg.payout_day, 31);
    assert_int_equal(cfg.payout_hour, 23);
    assert_int_equal(cfg.alert_sweep_seconds, 1);
    assert_string_equal(cfg.webhook_url, "https://hooks.example.org/incubatord");
    assert_string_equal(cfg.webhook_secret, "s3cret");
    assert_int_equal(cfg.webhook_timeout_ms, 100);
    config_free(&cfg);
}

static void test_booleans(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool value;
    } cases[] = {{"true", true},   {"yes", true}, {"on", true},   {"1", true},  {"TRUE", true},
                 {"false", false}, {"no", false}, {"off", false}, {"0", false}, {"Off", false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config cfg;
        char text[128], err[1024];
        snprintf(text, sizeof(text), "[database]\nmigrate_on_start = %s\n", cases[i].text);
        assert_true(load(text, &cfg, err, sizeof(err)));
        assert_int_equal(cfg.migrate_on_start, cases[i].value);
        config_free(&cfg);
    }
    load_fails("[database]\nmigrate_on_start = maybe\n", ":2:", "[database] migrate_on_start",
               "true or false");
}

static void test_errors_name_line_and_key(void **state)
{
    (void)state;
    load_fails("[server]\nlisten = 127.0.0.1:1\nbogus = 1\n",
               "incubatord.conf:3:", "[server] bogus", "unknown key");
    load_fails("\n\n[nope]\nx = 1\n", ":4:", "[nope] x", "unknown key");
    load_fails("listen = 127.0.0.1:1\n", ":1:", "[] listen", "unknown key");
    load_fails("[server]\n\n\nmax_body_bytes = 12abc\n", ":4:", "[server] max_body_bytes",
               "must be an integer from 1024 to 67108864");
    load_fails("[server]\nmax_body_bytes = 1023\n", ":2:", "max_body_bytes", "from 1024");
    load_fails("[server]\nmax_body_bytes = 67108865\n", ":2:", "max_body_bytes", NULL);
    load_fails("[server]\nmax_body_bytes = \n", ":2:", "max_body_bytes", NULL);
    load_fails("[server]\nmax_body_bytes = 99999999999999999999999\n", ":2:", "max_body_bytes",
               NULL);
    load_fails("[database]\npool_size = 0\n", ":2:", "[database] pool_size", "from 1 to 256");
    load_fails("[log]\nlevel = verbose\n", ":2:", "[log] level", "debug info notice");
    load_fails("[log]\nfacility = kern\n", ":2:", "[log] facility", "local0");
    load_fails("[schedule]\ntimezone = Mars/Olympus_Mons\n", ":2:", "[schedule] timezone",
               "unknown time zone");
    load_fails("[schedule]\ntimezone = ../../etc/passwd\n", ":2:", "timezone", NULL);
    /* Names in the tz database that are no zone: glibc would take them as UTC. */
    load_fails("[schedule]\ntimezone = Asia\n", ":2:", "unknown time zone", NULL);
    load_fails("[schedule]\ntimezone = zone.tab\n", ":2:", "unknown time zone", NULL);
    load_fails("[schedule]\npayout_hour = 24\n", ":2:", "[schedule] payout_hour", "0 to 23");
    load_fails("[server]\nlisten = localhost:8080\n", ":2:", "[server] listen", "IP:PORT");
    load_fails("[server]\nlisten = 127.0.0.1\n", ":2:", "[server] listen", NULL);
    load_fails("[server]\nlisten = 127.0.0.1:0\n", ":2:", "listen", NULL);
    load_fails("[server]\nlisten = 127.0.0.1:65536\n", ":2:", "listen", NULL);
    load_fails("[server]\nlisten = ::1:8080\n", ":2:", "listen", NULL);
    load_fails("[webhook]\nurl = ftp://example.org/\nsecret = x\n", ":2:", "[webhook] url",
               "http:// or https://");
    load_fails("[webhook]\nurl = https://\nsecret = x\n", ":2:", "[webhook] url", NULL);
    load_fails("[server]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n", ":3:", "[server] listen",
               "set twice");
    load_fails("[server]\nthis is not a setting\n", ":2:", "syntax error", NULL);
    load_fails("[server\nlisten = 127.0.0.1:1\n", ":1:", NULL, NULL);
    /* The first error is the one reported, with its own line. */
    load_fails("[server]\nmax_connections = x\nbogus = 1\n", ":2:", "max_connections", NULL);
}

static void test_cross_key_rules(void **state)
{
    (void)state;
    load_fails("[webhook]\nurl = https://example.org/hook\n", "[webhook] secret",
               "required when [webhook] url is set", NULL);
}

static void test_secrets_masked_in_errors(void **state)
{
    (void)state;
    /* A secret set twice: the error names the key but never shows the value. */
    struct config cfg;
    char err[1024];
    assert_false(load("[webhook]\nsecret = hunter2\nsecret = hunter3\n", &cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "[webhook] secret"));
    assert_null(strstr(err, "hunter"));
    config_free(&cfg);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct config cfg;
    char err[1024], path[300];
    snprintf(path, sizeof(path), "%s/does-not-exist.conf", dir);
    assert_false(config_load(path, &cfg, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "cannot open"));
    config_free(&cfg);
}

/* A [database] conninfo line of exactly len characters (newline not counted). */
static void conninfo_line(char *out, size_t outlen, size_t len)
{
    const char *head = "conninfo = host=/tmp dbname=";
    assert_true(len > strlen(head) && len + 32 < outlen);
    snprintf(out, outlen, "[database]\n%s", head);
    size_t n = strlen(out);
    memset(out + n, 'd', len - strlen(head));
    out[n + len - strlen(head)] = '\0';
    strcat(out, "\n[log]\nsyslog = false\n");
}

static void test_line_length_limit(void **state)
{
    (void)state;
    char text[8192];
    struct config cfg;
    char err[1024];
    /* inih reads 199 bytes with the newline: 198 characters are the most a line may have. */
    conninfo_line(text, sizeof(text), 198);
    if (!load(text, &cfg, err, sizeof(err)))
        fail_msg("a line of 198 characters was refused: %s", err);
    assert_int_equal(strlen(cfg.conninfo), 198 - strlen("conninfo = "));
    config_free(&cfg);
    for (size_t len = 199; len <= 203; len++) {
        conninfo_line(text, sizeof(text), len);
        load_fails(text, "incubatord.conf:2:", "line longer than 198 characters", NULL);
    }
    conninfo_line(text, sizeof(text), 5000);
    load_fails(text, ":2:", "line longer", NULL);
    /* The last line, without a newline. */
    conninfo_line(text, sizeof(text), 200);
    *strstr(text, "\n[log]") = '\0';
    load_fails(text, ":2:", "line longer", NULL);
    /* A long comment is just as long to inih. */
    memset(text, ';', 250);
    strcpy(text + 250, "\n[server]\n");
    load_fails(text, ":1:", "line longer", NULL);
}

/* Everything config_write_effective prints for cfg. */
static char *effective(const struct config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_write_effective(f, cfg);
    fclose(f);
    return buf;
}

static void test_effective_round_trip_and_masking(void **state)
{
    (void)state;
    struct config a, b;
    char err[1024];
    assert_true(load("[database]\nconninfo = host=/tmp password=hunter2\n"
                     "[log]\nfacility = local7\nlevel = err\n"
                     "[webhook]\nurl = http://127.0.0.1:9/x\nsecret = s3cret\n",
                     &a, err, sizeof(err)));
    char *text = effective(&a);
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "s3cret"));
    assert_non_null(strstr(text, "conninfo = ***"));
    assert_non_null(strstr(text, "secret = ***"));
    assert_non_null(strstr(text, "facility = local7"));
    assert_non_null(strstr(text, "level = err"));
    free(text);

    /* Without secrets, the effective output loads back to the same configuration. */
    config_free(&a);
    config_defaults(&a);
    text = effective(&a);
    const char *path = write_file("effective.conf", text);
    if (!config_load(path, &b, err, sizeof(err)))
        fail_msg("the effective configuration does not load: %s\n%s", err, text);
    char *again = effective(&b);
    assert_string_equal(text, again);
    free(text);
    free(again);
    config_free(&a);
    config_free(&b);
}

static void test_reference_has_every_key(void **state)
{
    (void)state;
    struct config cfg;
    char *ref = NULL, *eff;
    size_t len = 0;
    FILE *f = open_memstream(&ref, &len);
    config_write_reference(f);
    fclose(f);

    /* Every key the effective output has (the whole table), the reference has too. */
    config_defaults(&cfg);
    eff = effective(&cfg);
    config_free(&cfg);
    char section[64] = "";
    int keys = 0;
    for (char *line = strtok(eff, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64], want[160];
        if (sscanf(line, "[%63[^]]]", section) == 1)
            continue;
        assert_int_equal(sscanf(line, "%63s =", name), 1);
        snprintf(want, sizeof(want), "| `[%s] %s` |", section, name);
        if (strstr(ref, want) == NULL)
            fail_msg("the reference lacks %s", want);
        keys++;
    }
    /* ... and nothing else: one row per key. */
    int rows = 0;
    for (const char *p = strstr(ref, "\n| `["); p; p = strstr(p + 1, "\n| `["))
        rows++;
    assert_int_equal(keys, rows);
    assert_true(keys >= 33);
    /* The keys DESIGN.md names, spelled out. */
    static const char *const named[] = {
        "`[server] listen`",
        "`[server] max_body_bytes`",
        "`[server] request_timeout_ms`",
        "`[database] conninfo`",
        "`[database] pool_size`",
        "`[database] max_queue`",
        "`[database] statement_timeout_ms`",
        "`[log] syslog`",
        "`[log] ident`",
        "`[log] facility`",
        "`[log] level`",
        "`[schedule] timezone`",
        "`[schedule] payout_day`",
        "`[schedule] payout_hour`",
        "`[schedule] alert_sweep_seconds`",
        "`[webhook] url`",
        "`[webhook] secret`",
    };
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
        assert_non_null(strstr(ref, named[i]));
    /* Each row says whether SIGHUP applies it. */
    assert_non_null(strstr(ref, "| `[server] max_body_bytes` | integer (1024–67108864) | "
                                "`1048576` | SIGHUP |"));
    assert_non_null(strstr(ref, "| `[server] max_sync_body_bytes` | integer (1024–67108864) | "
                                "`8388608` | SIGHUP |"));
    assert_non_null(strstr(ref, "| `[server] listen` | address | `127.0.0.1:8080` | restart |"));
    free(eff);
    free(ref);
}

/* Runs config_apply_reload with stderr caught; returns what was logged. */
static char *reload_logged(struct config *cur, const struct config *next)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/stderr", dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = fopen(path, "w+");
    dup2(fileno(f), STDERR_FILENO);
    config_apply_reload(cur, next);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *text = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

static void test_reload_keeps_non_reloadable_keys(void **state)
{
    (void)state;
    struct config cur, next;
    char err[1024];
    assert_true(load("[server]\nlisten = 127.0.0.1:1000\nmax_body_bytes = 2048\n"
                     "[database]\nconninfo = dbname=a\npool_size = 2\n"
                     "[log]\nlevel = info\n",
                     &cur, err, sizeof(err)));
    assert_true(load("[server]\nlisten = 127.0.0.1:2000\nmax_body_bytes = 4096\n"
                     "request_timeout_ms = 300\n"
                     "[database]\nconninfo = dbname=b\npool_size = 8\nmax_queue = 7\n"
                     "[log]\nlevel = debug\n[schedule]\ntimezone = Europe/Paris\n"
                     "[webhook]\nurl = http://127.0.0.1:9/\nsecret = k\n",
                     &next, err, sizeof(err)));
    char *logged = reload_logged(&cur, &next);

    /* Applied: */
    assert_int_equal(cur.max_body_bytes, 4096);
    assert_int_equal(cur.request_timeout_ms, 300);
    assert_int_equal(cur.max_queue, 7);
    assert_int_equal(cur.log_level, LOG_DEBUG);
    assert_string_equal(cur.webhook_url, "http://127.0.0.1:9/");
    assert_string_equal(cur.webhook_secret, "k");
    /* Kept until a restart: */
    assert_string_equal(cur.listen, "127.0.0.1:1000");
    assert_string_equal(cur.conninfo, "dbname=a");
    assert_int_equal(cur.pool_size, 2);
    assert_string_equal(cur.timezone, "Asia/Shanghai");
    /* next is not modified, and the strings are copies. */
    assert_string_equal(next.listen, "127.0.0.1:2000");
    assert_int_equal(next.pool_size, 8);
    assert_ptr_not_equal(cur.webhook_url, next.webhook_url);

    /* Each change is logged by name; those that need a restart say so. */
    assert_non_null(strstr(logged, "[server] max_body_bytes reloaded"));
    assert_non_null(strstr(logged, "[log] level reloaded"));
    assert_non_null(
        strstr(logged, "[server] listen changed but takes effect only after a restart"));
    assert_non_null(
        strstr(logged, "[database] pool_size changed but takes effect only after a restart"));
    assert_non_null(strstr(logged, "[database] conninfo changed but takes effect only after"));
    assert_non_null(strstr(logged, "[schedule] timezone changed but takes effect only after"));
    /* Unchanged keys are not mentioned; secrets are named, never shown. */
    assert_null(strstr(logged, "idle_timeout_s"));
    assert_null(strstr(logged, "dbname=b"));
    free(logged);

    /* Reloading the same configuration again changes and logs nothing. */
    logged = reload_logged(&cur, &cur);
    assert_string_equal(logged, "");
    free(logged);
    config_free(&cur);
    config_free(&next);
}

static void test_address_lists(void **state)
{
    (void)state;
    assert_true(config_address_listed("127.0.0.1", NULL));
    assert_true(config_address_listed("127.0.0.1, 10.0.0.0/8,::1 ,fd00::/8", NULL));
    assert_true(config_address_listed("", NULL));
    assert_false(config_address_listed("localhost", NULL));
    assert_false(config_address_listed("10.0.0.0/33", NULL));
    assert_false(config_address_listed("::1/129", NULL));
    assert_false(config_address_listed("10.0.0.0/", NULL));
    assert_false(config_address_listed("10.0.0.1/8x", NULL));

    const char *list = "127.0.0.1, 10.20.0.0/16, 192.168.1.128/25, fd00::/8";
    assert_true(config_address_listed(list, "127.0.0.1"));
    assert_false(config_address_listed(list, "127.0.0.2"));
    assert_true(config_address_listed(list, "10.20.255.1"));
    assert_false(config_address_listed(list, "10.21.0.1"));
    assert_true(config_address_listed(list, "192.168.1.200"));
    assert_false(config_address_listed(list, "192.168.1.127"));
    assert_true(config_address_listed(list, "fd12::1"));
    assert_false(config_address_listed(list, "fe80::1"));
    assert_true(config_address_listed(list, "::ffff:10.20.0.9"));
    assert_true(config_address_listed("0.0.0.0/0", "8.8.8.8"));
    assert_false(config_address_listed("", "127.0.0.1"));
    assert_false(config_address_listed(list, "not an address"));
    load_fails("[server]\nmetrics_allow = 10.0.0.0/8, example.org\n", ":2:", "metrics_allow",
               "IP addresses or prefixes");
}

static void test_split_listen(void **state)
{
    (void)state;
    char host[64];
    int port = 0;
    assert_true(config_split_listen("127.0.0.1:8080", host, sizeof(host), &port));
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_true(config_split_listen("[::1]:1", host, sizeof(host), &port));
    assert_string_equal(host, "::1");
    assert_int_equal(port, 1);
    assert_true(config_split_listen("0.0.0.0:65535", host, sizeof(host), &port));
    assert_int_equal(port, 65535);
    static const char *const bad[] = {"127.0.0.1",     "127.0.0.1:", ":8080",     "[::1]8080",
                                      "[::1:8080",     "1.2.3.4:0",  "1.2.3.4:x", "1.2.3.4:80x",
                                      "1.2.3.4:65536", "[]:80",      "",          "1.2.3.4:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_split_listen(bad[i], host, sizeof(host), &port))
            fail_msg("\"%s\" was split", bad[i]);
    /* A host that does not fit the buffer is refused, never cut. */
    char small[4];
    assert_false(config_split_listen("127.0.0.1:80", small, sizeof(small), &port));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_file_is_the_defaults),
        cmocka_unit_test(test_every_key_parsed),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_errors_name_line_and_key),
        cmocka_unit_test(test_cross_key_rules),
        cmocka_unit_test(test_secrets_masked_in_errors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_line_length_limit),
        cmocka_unit_test(test_effective_round_trip_and_masking),
        cmocka_unit_test(test_reference_has_every_key),
        cmocka_unit_test(test_reload_keeps_non_reloadable_keys),
        cmocka_unit_test(test_split_listen),
        cmocka_unit_test(test_address_lists),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
