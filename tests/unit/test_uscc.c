/*
 * The Unified Social Credit Code check (GB 32100-2015).
 *
 * Real published codes pass; every single-character corruption of a valid
 * code fails. The latter is a property of the standard, not luck: the check
 * is a weighted sum mod 31 whose weights (3^i mod 31) are all non-zero and
 * 31 is prime, so changing any one of the first 17 characters changes the
 * sum mod 31, and changing the 18th breaks the equality directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/uscc.h"

static const char charset[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/*
 * Codes printed on public business licences. The last three were checked
 * by hand with the weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
 * and the values 0-9 -> 0-9, A -> 10, ... Y -> 30 of the charset above:
 *   914403001922038216 (Huawei Technologies): sum 831, 831 mod 31 = 25,
 *       31 - 25 = 6 -> '6'.
 *   91440300708461136T (Shenzhen Tencent Computer Systems): sum 966,
 *       966 mod 31 = 5, 31 - 5 = 26 -> 'T'.
 *   91330100799655058B (Alibaba (China)): sum 1384, 1384 mod 31 = 20,
 *       31 - 20 = 11 -> 'B'.
 */
static const char *const real_codes[] = {
    "91350100M000100Y43", /* from the issue: a Fuzhou enterprise */
    "91110108551385082Q", /* from the issue: Beijing Xiaomi Technology */
    "914403001922038216", "91440300708461136T", "91330100799655058B",
};

static void test_real_codes_are_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(real_codes) / sizeof(real_codes[0]); i++) {
        assert_true(uscc_valid(real_codes[i]));
        assert_int_equal(uscc_check_char(real_codes[i]), real_codes[i][17]);
    }
}

static void test_every_single_corruption_is_rejected(void **state)
{
    (void)state;
    size_t tried = 0;
    for (size_t i = 0; i < sizeof(real_codes) / sizeof(real_codes[0]); i++) {
        for (int pos = 0; pos < USCC_LEN; pos++) {
            for (const char *c = charset; *c; c++) {
                char code[USCC_LEN + 1];
                if (*c == real_codes[i][pos])
                    continue;
                memcpy(code, real_codes[i], sizeof(code));
                code[pos] = *c;
                if (uscc_valid(code))
                    fail_msg("%s (position %d of %s changed) was accepted", code, pos,
                             real_codes[i]);
                tried++;
            }
        }
    }
    /* 5 codes x 18 positions x 30 other characters. */
    assert_int_equal(tried, 5 * 18 * 30);
}

static void test_adjacent_transpositions_of_distinct_characters(void **state)
{
    (void)state;
    /*
     * Swapping characters a != b at positions i, i+1 < 17 moves the sum by
     * (b - a) * 3^i * (1 - 3), never 0 mod 31: every such swap is caught.
     */
    const char *code = "91110108551385082Q";
    size_t rejected = 0, tried = 0;
    for (int pos = 0; pos + 1 < 17; pos++) {
        char t[USCC_LEN + 1];
        if (code[pos] == code[pos + 1])
            continue;
        memcpy(t, code, sizeof(t));
        t[pos] = code[pos + 1];
        t[pos + 1] = code[pos];
        tried++;
        rejected += !uscc_valid(t);
    }
    assert_true(tried > 10);
    assert_int_equal(rejected, tried);
}

static void test_lower_case_and_excluded_letters_rejected(void **state)
{
    (void)state;
    /* A valid code with a letter in the body, then that letter lower-cased. */
    assert_true(uscc_valid("91350100M000100Y43"));
    assert_false(uscc_valid("91350100m000100Y43"));
    assert_false(uscc_valid("91350100M000100y43"));
    assert_false(uscc_valid("91110108551385082q"));
    assert_false(uscc_valid("91440300708461136t"));

    /* I, O, S, V, Z are not in the charset: neither in the body nor as the check. */
    const char *excluded = "IOSVZ";
    for (const char *x = excluded; *x; x++) {
        char code[USCC_LEN + 1];
        for (int pos = 0; pos < USCC_LEN; pos++) {
            memcpy(code, "91110108551385082Q", sizeof(code));
            code[pos] = *x;
            assert_false(uscc_valid(code));
        }
        char first17[18];
        memcpy(first17, "91110108551385082", 17);
        first17[3] = *x;
        first17[17] = '\0';
        assert_int_equal(uscc_check_char(first17), '\0');
    }
    /* Other characters outside the charset. */
    assert_false(uscc_valid("91110108551385082-"));
    assert_false(uscc_valid("9111010855138508 Q"));
    assert_false(uscc_valid("91110108551385082\xc3"));
}

static void test_wrong_lengths_rejected(void **state)
{
    (void)state;
    const char *code = "91110108551385082Q";
    char buf[64];
    for (size_t n = 0; n < USCC_LEN; n++) {
        memcpy(buf, code, n);
        buf[n] = '\0';
        assert_false(uscc_valid(buf));
    }
    /* One more character, whatever it is. */
    for (const char *c = charset; *c; c++) {
        snprintf(buf, sizeof(buf), "%s%c", code, *c);
        assert_false(uscc_valid(buf));
    }
    snprintf(buf, sizeof(buf), " %s", code);
    assert_false(uscc_valid(buf));
    snprintf(buf, sizeof(buf), "%s\n", code);
    assert_false(uscc_valid(buf));
    assert_false(uscc_valid(""));
}

static void test_check_char_over_every_value(void **state)
{
    (void)state;
    /*
     * Walking one position through the whole charset walks the check
     * character through the whole charset too (the weight is invertible
     * mod 31): 31 bodies, 31 different check characters, each valid.
     */
    char seen[32] = {0};
    for (const char *c = charset; *c; c++) {
        char code[USCC_LEN + 1];
        memcpy(code, "91110108551385082Q", sizeof(code));
        code[10] = *c;
        char check = uscc_check_char(code);
        assert_non_null(strchr(charset, check));
        assert_int_equal(seen[strchr(charset, check) - charset], 0);
        seen[strchr(charset, check) - charset] = 1;
        code[17] = check;
        assert_true(uscc_valid(code));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_codes_are_valid),
        cmocka_unit_test(test_every_single_corruption_is_rejected),
        cmocka_unit_test(test_adjacent_transpositions_of_distinct_characters),
        cmocka_unit_test(test_lower_case_and_excluded_letters_rejected),
        cmocka_unit_test(test_wrong_lengths_rejected),
        cmocka_unit_test(test_check_char_over_every_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
