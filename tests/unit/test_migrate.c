/*
 * The schema embedded in the binary: migrations numbered 1..N without gaps
 * (what migrate_embedded_ok checks at start-up), functions files present,
 * and each file's bytes intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/db.h"
#include "incubatord/migrate.h"

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

static void test_embedded_migrations_ok(void **state)
{
    (void)state;
    char err[256] = "";
    assert_true(migrate_embedded_ok(err, sizeof(err)));
    assert_string_equal(err, "");
    assert_true(schema_migrations_count >= 1);
    assert_int_equal(migrate_latest_version(), (int)schema_migrations_count);
    assert_string_equal(schema_migrations[0].name, "001_foundation.sql");
    for (size_t i = 0; i < schema_migrations_count; i++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "%03zu_", i + 1);
        assert_memory_equal(schema_migrations[i].name, prefix, 4);
        assert_true(ends_with(schema_migrations[i].name, ".sql"));
        assert_true(schema_migrations[i].len > 0);
        /* The embedded text is the whole file, NUL-terminated, with no NUL inside. */
        assert_int_equal(strlen(schema_migrations[i].sql), schema_migrations[i].len);
    }
}

static void test_embedded_functions(void **state)
{
    (void)state;
    assert_true(schema_functions_count >= 1);
    assert_string_equal(schema_functions[0].name, "00_base.sql");
    for (size_t i = 0; i < schema_functions_count; i++) {
        assert_true(ends_with(schema_functions[i].name, ".sql"));
        assert_int_equal(strlen(schema_functions[i].sql), schema_functions[i].len);
        /* In file-name order: 00_base first, so later files may use what it defines. */
        if (i > 0)
            assert_true(strcmp(schema_functions[i - 1].name, schema_functions[i].name) < 0);
    }
    /* api.run, the daemon's single entry point, is defined by the base file. */
    assert_non_null(strstr(schema_functions[0].sql, "CREATE FUNCTION api.run("));
}

static void test_transient_sqlstates(void **state)
{
    (void)state;
    static const char *const transient[] = {"40001", "40P01", "55P03", "57014", "57P01", "57P02",
                                            "57P03", "53300", "25006", "08000", "08006", "08001"};
    static const char *const permanent[] = {"23505", "23P01", "42883", "22P02",
                                            "XX000", "IK422", "P0001", "42501"};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        assert_true(db_sqlstate_is_transient(transient[i]));
    for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++)
        assert_false(db_sqlstate_is_transient(permanent[i]));
    assert_false(db_sqlstate_is_transient(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_migrations_ok),
        cmocka_unit_test(test_embedded_functions),
        cmocka_unit_test(test_transient_sqlstates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
