/*
 * Subcommands that talk to the database run a one-connection pool on an
 * event loop of their own and stop it when their work is done. They record
 * their writes in the audit log like the API does, as "cli:<user>".
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "incubatord/apicall.h"
#include "incubatord/auth.h"
#include "incubatord/cli.h"
#include "incubatord/config.h"
#include "incubatord/dates.h"
#include "incubatord/db.h"
#include "incubatord/log.h"
#include "incubatord/migrate.h"

#define CLI_TIMEOUT_MS         30000
#define CLI_MIGRATE_TIMEOUT_MS 600000

struct cli {
    struct event_base *base;
    struct db_pool *pool;
    struct config cfg;
    int code;
    char secret[AUTH_TOKEN_LEN + 1];
};

static bool cli_open(struct cli *c, const char *config_path)
{
    char err[1024];
    memset(c, 0, sizeof(*c));
    c->code = 1;
    log_open("incubatord", LOG_USER, LOG_NOTICE, false, true);
    if (config_path == NULL) {
        config_defaults(&c->cfg);
    } else if (!config_load(config_path, &c->cfg, err, sizeof(err))) {
        fprintf(stderr, "incubatord: %s\n", err);
        config_free(&c->cfg);
        return false;
    }
    setenv("TZ", c->cfg.timezone, 1);
    tzset();
    c->base = event_base_new();
    struct db_pool_config pc = {
        .conninfo = c->cfg.conninfo,
        .pool_size = 1,
        .max_queue = 4,
        .statement_timeout_ms = c->cfg.statement_timeout_ms > 600000
                                    ? c->cfg.statement_timeout_ms
                                    : 600000, /* a migration may take long */
        .connect_timeout_ms = 10000,
    };
    c->pool = db_pool_new(c->base, &pc);
    return true;
}

static int cli_close(struct cli *c)
{
    db_pool_free(c->pool);
    event_base_free(c->base);
    config_free(&c->cfg);
    explicit_bzero(c->secret, sizeof(c->secret));
    return c->code;
}

static void migrated(void *arg, enum migrate_outcome outcome, const char *message)
{
    struct cli *c = arg;
    if (outcome == MIGRATE_CURRENT) {
        printf("%s\n", message);
        c->code = 0;
    } else {
        fprintf(stderr, "incubatord: migrate: %s\n", message);
    }
    event_base_loopexit(c->base, NULL);
}

int cli_migrate(const char *config_path)
{
    struct cli c;
    char err[256];
    if (!migrate_embedded_ok(err, sizeof(err))) {
        fprintf(stderr, "incubatord: %s\n", err);
        return 1;
    }
    if (!cli_open(&c, config_path))
        return 1;
    migrate_run(c.pool, MIGRATE_APPLY_FORCE, CLI_MIGRATE_TIMEOUT_MS, migrated, &c);
    event_base_dispatch(c.base);
    return cli_close(&c);
}

int cli_check_config(const char *config_path, bool print_effective, bool print_reference)
{
    struct config cfg;
    char err[1024];
    if (print_reference) {
        config_write_reference(stdout);
        return 0;
    }
    const char *path = config_path ? config_path : CONFIG_DEFAULT_PATH;
    if (!config_load(path, &cfg, err, sizeof(err))) {
        fprintf(stderr, "incubatord: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    if (print_effective)
        config_write_effective(stdout, &cfg);
    else
        printf("%s: configuration is valid\n", path);
    config_free(&cfg);
    return 0;
}

/* Calls api.<fn>(ctx, args) as the API would (args consumed) and runs the loop until cb is done. */
static void run_api(struct cli *c, const char *fn, const char *what, json_t *args, apicall_cb cb)
{
    struct passwd *pw = getpwuid(getuid());
    char who[160], id[32];
    snprintf(who, sizeof(who), "cli:%s", pw ? pw->pw_name : "unknown");
    snprintf(id, sizeof(id), "cli-%d", (int)getpid());
    struct api_caller caller = {
        .request_id = id,
        .method = "CLI",
        .path = what,
        .token_name = who,
        .admin = true,
    };
    apicall_run(c->pool, fn, apicall_context(&caller), args, CLI_TIMEOUT_MS, cb, c);
    event_base_dispatch(c->base);
}

/* Prints a reply's problem, if it is one; returns its status. */
static int run_status(const struct api_reply *a)
{
    if (a->status >= 400)
        fprintf(stderr, "incubatord: %s\n", a->detail ? a->detail : "refused");
    return a->status;
}

static void token_created(void *arg, const struct api_reply *a)
{
    struct cli *c = arg;
    if (run_status(a) == 201) {
        json_t *doc = json_loadb(a->body ? a->body : "", a->body_len, 0, NULL);
        printf("%s\n", c->secret);
        fflush(stdout);
        const char *expires = json_string_value(json_object_get(doc, "expires_at"));
        fprintf(stderr, "created token %lld \"%s\"%s%s%s%s; it is shown only this once\n",
                (long long)json_integer_value(json_object_get(doc, "id")),
                json_string_value(json_object_get(doc, "name")),
                json_is_string(json_object_get(doc, "incubator")) ? " for incubator " : " (admin)",
                json_is_string(json_object_get(doc, "incubator"))
                    ? json_string_value(json_object_get(doc, "incubator"))
                    : "",
                expires ? ", expiring at " : "", expires ? expires : "");
        json_decref(doc);
        c->code = 0;
    }
    event_base_loopexit(c->base, NULL);
}

int cli_token_create(const char *config_path, const char *incubator_code, const char *name,
                     int expires_in_days)
{
    struct cli c;
    unsigned char hash[AUTH_HASH_LEN];
    char bytea[2 + 2 * AUTH_HASH_LEN + 1];

    if (name[0] == '\0' || strlen(name) > 100) {
        fprintf(stderr, "incubatord: a token name has 1 to 100 characters\n");
        return 2;
    }
    if (!cli_open(&c, config_path))
        return 1;
    if (!auth_token_generate(c.secret, hash)) {
        fprintf(stderr, "incubatord: no random bytes for a token\n");
        return cli_close(&c);
    }
    auth_hash_to_bytea(hash, bytea);
    run_api(&c, "token_create", "token create",
            json_pack("{s:s, s:s, s:s?, s:o?}", "name", name, "hash", bytea, "code", incubator_code,
                      "expires_in_days",
                      expires_in_days > 0 ? json_integer(expires_in_days) : NULL),
            token_created);
    return cli_close(&c);
}

static void token_revoked(void *arg, const struct api_reply *a)
{
    struct cli *c = arg;
    if (run_status(a) == 204) {
        fprintf(stderr, "token revoked\n");
        c->code = 0;
    }
    event_base_loopexit(c->base, NULL);
}

int cli_token_revoke(const char *config_path, const char *id)
{
    struct cli c;
    char *end;
    long long n = strtoll(id, &end, 10);
    if (*id == '\0' || *end != '\0' || n <= 0) {
        fprintf(stderr, "incubatord: a token id is a positive integer\n");
        return 2;
    }
    if (!cli_open(&c, config_path))
        return 1;
    run_api(&c, "token_revoke", "token revoke", json_pack("{s:s}", "id", id), token_revoked);
    return cli_close(&c);
}
