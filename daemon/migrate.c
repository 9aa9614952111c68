/*
 * Applying the embedded schema, as a chain of statements on one session:
 *
 *   BEGIN; advisory lock; bookkeeping tables     (step_lock)
 *   read the applied version and functions hash  (step_read)
 *   each missing migration, then its record      (step_migration)
 *   DROP/CREATE SCHEMA api; each functions file  (step_functions)
 *   record the functions hash; COMMIT            (step_commit)
 *
 * Any error rolls the whole transaction back (the session does so on close).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incubatord/db.h"
#include "incubatord/log.h"
#include "incubatord/migrate.h"

/*
 * The advisory lock of schema changes: the key api.lock_key('migrate') gives
 * (the list of every lock is in schema/functions/00_base.sql), written out
 * because this lock is taken before the api schema exists.
 */
#define MIGRATE_LOCK_KEY "hashtextextended('incubatord migrate', 0)"

static const char LOCK_SQL[] =
    "BEGIN;"
    "SET LOCAL client_min_messages = warning;" /* no "exists, skipping" */
    "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ");"
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "  version integer PRIMARY KEY,"
    "  name text NOT NULL,"
    "  applied_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS schema_functions ("
    "  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),"
    "  sha256 text NOT NULL,"
    "  applied_at timestamptz NOT NULL DEFAULT now());";

static const char CHECK_SQL[] = "SELECT (SELECT coalesce(max(version), 0) FROM schema_migrations),"
                                "       (SELECT sha256 FROM schema_functions)";

static const char EXISTS_SQL[] = "SELECT to_regclass('schema_migrations') IS NOT NULL";
static const char VERSION_SQL[] = "SELECT coalesce(max(version), 0) FROM schema_migrations";

static const char RECORD_SQL[] = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";

/*
 * check_function_bodies stays on: a SQL function that calls one not yet
 * defined (in a later file, or not at all) fails the migration.
 */
static const char API_RESET_SQL[] = "DROP SCHEMA IF EXISTS api CASCADE;"
                                    "CREATE SCHEMA api;";

static const char FUNCTIONS_HASH_SQL[] =
    "INSERT INTO schema_functions (sha256) VALUES ($1) "
    "ON CONFLICT (only_row) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()";

/* A statement without parameters, sent with the extended protocol. */
static const char *const NO_PARAMS[] = {NULL};

struct migration {
    struct db_pool *pool;
    struct db_session *session;
    enum migrate_mode mode;
    migrate_cb cb;
    void *arg;
    int applied_version;
    int next;          /* index into schema_migrations or schema_functions */
    int newly_applied; /* migrations applied in this run */
    bool functions_changed;
    char hash[65];
    char number[16];
};

static int version_of(const char *name)
{
    return atoi(name);
}

int migrate_latest_version(void)
{
    if (schema_migrations_count == 0)
        return 0;
    return version_of(schema_migrations[schema_migrations_count - 1].name);
}

bool migrate_embedded_ok(char *err, size_t errlen)
{
    for (size_t i = 0; i < schema_migrations_count; i++) {
        const char *name = schema_migrations[i].name;
        if (version_of(name) != (int)i + 1 || strlen(name) < 5 || name[3] != '_') {
            snprintf(err, errlen, "migration %s: expected number %03zu_", name, i + 1);
            return false;
        }
    }
    return true;
}

/* The SHA-256 of every functions file, names included, in order. */
static void functions_hash(char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < schema_functions_count; i++) {
        EVP_DigestUpdate(ctx, schema_functions[i].name, strlen(schema_functions[i].name) + 1);
        EVP_DigestUpdate(ctx, schema_functions[i].sql, schema_functions[i].len);
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    hex_encode(md, mdlen < 32 ? mdlen : 32, out);
}

static void finish(struct migration *m, enum migrate_outcome outcome, const char *message)
{
    if (m->session)
        db_session_close(m->session);
    m->cb(m->arg, outcome, message);
    free(m);
}

static bool failed(struct migration *m, const struct db_result *r, const char *what)
{
    char msg[1024];
    if (r->status == DB_OK)
        return false;
    snprintf(msg, sizeof(msg), "%s: %s%s%s", what, r->message ? r->message : "failed",
             r->detail ? ": " : "", r->detail ? r->detail : "");
    finish(m, MIGRATE_FAILED, msg);
    return true;
}

static void step_functions(void *arg, const struct db_result *r);
static void step_migration(void *arg, const struct db_result *r);

static void step_done(void *arg, const struct db_result *r)
{
    struct migration *m = arg;
    char msg[256];
    if (failed(m, r, "COMMIT"))
        return;
    snprintf(msg, sizeof(msg), "schema at version %d (%d migration%s applied; functions %s)",
             migrate_latest_version(), m->newly_applied, m->newly_applied == 1 ? "" : "s",
             m->functions_changed ? "applied" : "unchanged");
    finish(m, MIGRATE_CURRENT, msg);
}

static void step_hash_recorded(void *arg, const struct db_result *r)
{
    struct migration *m = arg;
    if (failed(m, r, "recording the functions hash"))
        return;
    db_session_query(m->session, "COMMIT", 0, NULL, step_done, m);
}

static void step_functions(void *arg, const struct db_result *r)
{
    struct migration *m = arg;
    char what[160];
    const char *name = m->next == 0 ? "resetting schema api" : schema_functions[m->next - 1].name;
    snprintf(what, sizeof(what), "functions/%s", name);
    if (failed(m, r, what))
        return;
    if ((size_t)m->next < schema_functions_count) {
        const struct schema_file *f = &schema_functions[m->next++];
        db_session_query(m->session, f->sql, 0, NULL, step_functions, m);
        return;
    }
    const char *values[] = {m->hash};
    db_session_query(m->session, FUNCTIONS_HASH_SQL, 1, values, step_hash_recorded, m);
}

static void start_functions(struct migration *m)
{
    if (!m->functions_changed) {
        db_session_query(m->session, "COMMIT", 0, NULL, step_done, m);
        return;
    }
    m->next = 0;
    db_session_query(m->session, API_RESET_SQL, 0, NULL, step_functions, m);
}

/* Sends migration m->next, or goes on to the functions when none is left. */
static void apply_next_migration(struct migration *m)
{
    while ((size_t)m->next < schema_migrations_count &&
           version_of(schema_migrations[m->next].name) <= m->applied_version)
        m->next++;
    if ((size_t)m->next >= schema_migrations_count) {
        start_functions(m);
        return;
    }
    const struct schema_file *f = &schema_migrations[m->next];
    log_msg(LOG_NOTICE, "migrate: applying %s", f->name);
    db_session_query(m->session, f->sql, 0, NULL, step_migration, m);
}

static void step_recorded(void *arg, const struct db_result *r)
{
    struct migration *m = arg;
    if (failed(m, r, "recording a migration"))
        return;
    m->newly_applied++;
    m->next++;
    apply_next_migration(m);
}

static void step_migration(void *arg, const struct db_result *r)
{
    struct migration *m = arg;
    const struct schema_file *f = &schema_migrations[m->next];
    char what[160];
    snprintf(what, sizeof(what), "migrations/%s", f->name);
    if (failed(m, r, what))
        return;
    snprintf(m->number, sizeof(m->number), "%d", version_of(f->name));
    const char *values[] = {m->number, f->name};
    db_session_query(m->session, RECORD_SQL, 2, values, step_recorded, m);
}

static void step_read(void *arg, const struct db_result *r)
{
    struct migration *m = arg;
    char msg[256];
    if (failed(m, r, "reading schema_migrations"))
        return;
    m->applied_version = atoi(db_text(r, 0, 0));
    if (m->applied_version > migrate_latest_version()) {
        snprintf(msg, sizeof(msg),
                 "the database schema is at version %d, newer than this binary's %d",
                 m->applied_version, migrate_latest_version());
        finish(m, MIGRATE_TOO_NEW, msg);
        return;
    }
    m->functions_changed = m->mode == MIGRATE_APPLY_FORCE || db_value(r, 0, 1) == NULL ||
                           strcmp(db_value(r, 0, 1), m->hash) != 0 ||
                           m->applied_version < migrate_latest_version();
    m->next = 0;
    apply_next_migration(m);
}

static void step_lock(void *arg, const struct db_result *r)
{
    struct migration *m = arg;
    if (failed(m, r, "locking the schema"))
        return;
    db_session_query(m->session, CHECK_SQL, 0, NO_PARAMS, step_read, m);
}

static void step_check(void *arg, const struct db_result *r)
{
    struct migration *m = arg;
    char msg[256];
    if (failed(m, r, "reading schema_migrations"))
        return;
    int v = atoi(db_text(r, 0, 0));
    int latest = migrate_latest_version();
    snprintf(msg, sizeof(msg), "the database schema is at version %d; this binary's is %d", v,
             latest);
    finish(m, v == latest ? MIGRATE_CURRENT : (v < latest ? MIGRATE_BEHIND : MIGRATE_TOO_NEW), msg);
}

static void step_check_exists(void *arg, const struct db_result *r)
{
    struct migration *m = arg;
    if (failed(m, r, "looking for schema_migrations"))
        return;
    if (strcmp(db_text(r, 0, 0), "t") != 0) {
        finish(m, MIGRATE_BEHIND, "the database has no schema yet: run incubatord migrate");
        return;
    }
    db_session_query(m->session, VERSION_SQL, 0, NO_PARAMS, step_check, m);
}

static void session_ready(void *arg, struct db_session *s, const char *error)
{
    struct migration *m = arg;
    if (s == NULL) {
        finish(m, MIGRATE_FAILED, error);
        return;
    }
    m->session = s;
    if (m->mode == MIGRATE_CHECK)
        db_session_query(s, EXISTS_SQL, 0, NO_PARAMS, step_check_exists, m);
    else
        db_session_query(s, LOCK_SQL, 0, NULL, step_lock, m);
}

void migrate_run(struct db_pool *pool, enum migrate_mode mode, int timeout_ms, migrate_cb cb,
                 void *arg)
{
    struct migration *m = xcalloc(1, sizeof(*m));
    m->pool = pool;
    m->mode = mode;
    m->cb = cb;
    m->arg = arg;
    functions_hash(m->hash);
    db_session_open(pool, timeout_ms, session_ready, m);
}
