/*
 * The console's files: the embedded table is sorted and found by path,
 * index.html and the modules are there, the paths that are the console's,
 * and If-None-Match against an ETag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/console.h"

static void test_every_file_is_found_by_its_path(void **state)
{
    (void)state;
    assert_true(console_files_count >= 5);
    for (size_t i = 0; i < console_files_count; i++) {
        const struct console_file *f = &console_files[i];
        if (i > 0)
            assert_true(strcmp(console_files[i - 1].path, f->path) < 0);
        assert_ptr_equal(console_find(f->path), f);
        assert_int_equal(strlen(f->data) <= f->len, 1);
        assert_int_equal(f->data[f->len], '\0');
        assert_int_equal(strlen(f->etag), 22);
        assert_int_equal(f->etag[0], '"');
    }
    assert_non_null(console_find("index.html"));
    assert_non_null(console_find("js/app.js"));
    assert_null(console_find(""));
    assert_null(console_find("/index.html"));
    assert_null(console_find("../index.html"));
    assert_null(console_find("INDEX.HTML"));
    assert_null(console_find("index.html/"));
}

static void test_the_console_paths(void **state)
{
    (void)state;
    assert_true(console_owns("/"));
    assert_true(console_owns("/console"));
    assert_true(console_owns("/console/"));
    assert_true(console_owns("/console/js/app.js"));
    assert_false(console_owns("/consolex"));
    assert_false(console_owns("/v1/incubators"));
    assert_false(console_owns("//"));
    assert_false(console_owns("/healthz"));
}

static void test_if_none_match(void **state)
{
    const char *etag = "\"0123456789abcdef0123\"";
    (void)state;
    assert_true(console_etag_matches(etag, etag));
    assert_true(console_etag_matches("*", etag));
    assert_true(console_etag_matches("W/\"0123456789abcdef0123\"", etag));
    assert_true(console_etag_matches("\"x\", \"0123456789abcdef0123\"", etag));
    assert_true(console_etag_matches("\"x\",\"0123456789abcdef0123\" ", etag));
    assert_false(console_etag_matches("", etag));
    assert_false(console_etag_matches("\"x\"", etag));
    assert_false(console_etag_matches("0123456789abcdef0123", etag));
    assert_false(console_etag_matches("\"0123456789abcdef012\"", etag));
    assert_false(console_etag_matches("\"0123456789abcdef0123\"x", etag));
    assert_false(console_etag_matches(",,, ", etag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_file_is_found_by_its_path),
        cmocka_unit_test(test_the_console_paths),
        cmocka_unit_test(test_if_none_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
