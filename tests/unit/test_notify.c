/* The webhook's signature header and the retry backoff. Expected digests were
 * computed with `openssl dgst -sha256 -hmac`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/notify.h"

static void test_signature_matches_openssl(void **state)
{
    (void)state;
    const char body[] = "{\"id\":\"x\"}";
    char out[128];
    assert_true(notify_signature("test-secret", 1700000000, body, strlen(body), out, sizeof(out)));
    assert_string_equal(out, "t=1700000000,v1=bcadb3a3ee7633fd9db6910d1ec0801c"
                             "2ad9c7d064479c5e574c5fffccd4b39f");
}

static void test_signature_of_an_empty_body(void **state)
{
    (void)state;
    char out[128];
    assert_true(notify_signature("k", 0, "", 0, out, sizeof(out)));
    assert_string_equal(out,
                        "t=0,v1=6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7");
}

static void test_signature_refuses_a_short_buffer(void **state)
{
    (void)state;
    char out[40];
    assert_false(notify_signature("k", 1700000000, "{}", 2, out, sizeof(out)));
}

static void test_backoff_doubles_up_to_the_cap(void **state)
{
    (void)state;
    /* rnd = UINT32_MAX % (half + 1) is not predictable; the bounds are. */
    int64_t expected_full[] = {100, 200, 400, 800, 1000, 1000};
    for (int attempts = 1; attempts <= 6; attempts++) {
        int64_t full = expected_full[attempts - 1];
        for (uint32_t rnd = 0; rnd < 2000; rnd += 7) {
            int64_t d = notify_backoff_ms(attempts, 100, 1000, rnd);
            assert_true(d >= full - full / 2);
            assert_true(d <= full);
        }
        assert_int_equal(notify_backoff_ms(attempts, 100, 1000, 0), full - full / 2);
        assert_int_equal(notify_backoff_ms(attempts, 100, 1000, (uint32_t)(full / 2)), full);
    }
}

static void test_backoff_survives_many_attempts(void **state)
{
    (void)state;
    /* Hundreds of failures over a day must not overflow the doubling. */
    int64_t d = notify_backoff_ms(10000, 10000, 3600000, 12345);
    assert_true(d >= 1800000 && d <= 3600000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_matches_openssl),
        cmocka_unit_test(test_signature_of_an_empty_body),
        cmocka_unit_test(test_signature_refuses_a_short_buffer),
        cmocka_unit_test(test_backoff_doubles_up_to_the_cap),
        cmocka_unit_test(test_backoff_survives_many_attempts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
