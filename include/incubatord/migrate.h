/*
 * The schema, embedded at build time (cmake/embed_schema.cmake), and its
 * application: schema/migrations/NNN_name.sql once each, in order;
 * schema/functions (the api schema: functions, views, types) whenever
 * they changed. All of it in one transaction under an advisory lock, so
 * several daemons starting together migrate once.
 */
#ifndef INCUBATORD_MIGRATE_H
#define INCUBATORD_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

struct schema_file {
    const char *name; /* "001_foundation.sql" */
    const char *sql;
    size_t len;
};

extern const struct schema_file schema_migrations[];
extern const size_t schema_migrations_count;
extern const struct schema_file schema_functions[];
extern const size_t schema_functions_count;

struct db_pool;

enum migrate_mode {
    MIGRATE_APPLY,       /* apply what is missing; re-apply functions if they changed */
    MIGRATE_APPLY_FORCE, /* the same, and re-apply functions in any case */
    MIGRATE_CHECK,       /* change nothing; report whether the schema is current */
};

enum migrate_outcome {
    MIGRATE_CURRENT, /* the schema is the one this binary knows */
    MIGRATE_BEHIND,  /* (MIGRATE_CHECK) migrations are missing */
    MIGRATE_TOO_NEW, /* the database has migrations this binary does not know */
    MIGRATE_FAILED,  /* the database refused or is unreachable; message says why */
};

typedef void (*migrate_cb)(void *arg, enum migrate_outcome outcome, const char *message);

/* The highest migration number embedded in this binary. */
int migrate_latest_version(void);

/* Checks that the embedded migrations are numbered 1..N without gaps. */
bool migrate_embedded_ok(char *err, size_t errlen);

/* Runs asynchronously on a session of the pool; cb is called once. */
void migrate_run(struct db_pool *pool, enum migrate_mode mode, int timeout_ms, migrate_cb cb,
                 void *arg);

#endif
