/*
 * Tokens: their shape (ikd_ + 43 base64url characters, 258 random bits),
 * the shape check that turns junk away before any database work, and the
 * stored hash, which must be the SHA-256 of the token's text (the CLI, the
 * API and any operator's script compute it alike).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "incubatord/auth.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void sha256(const char *text, unsigned char out[32])
{
    unsigned int len = 32;
    assert_int_equal(EVP_Digest(text, strlen(text), out, &len, EVP_sha256(), NULL), 1);
    assert_int_equal(len, 32);
}

static void test_generated_token_shape(void **state)
{
    (void)state;
    char token[AUTH_TOKEN_LEN + 1];
    unsigned char hash[AUTH_HASH_LEN];
    memset(token, 'Z', sizeof(token));
    assert_true(auth_token_generate(token, hash));
    assert_int_equal(strlen(token), 47);
    assert_memory_equal(token, "ikd_", 4);
    for (size_t i = 4; i < 47; i++)
        assert_non_null(strchr(b64url, token[i]));
    assert_true(auth_token_well_formed(token));
}

static void test_hash_is_sha256_of_the_text(void **state)
{
    (void)state;
    char token[AUTH_TOKEN_LEN + 1];
    unsigned char hash[AUTH_HASH_LEN], again[AUTH_HASH_LEN], independent[32];
    assert_true(auth_token_generate(token, hash));
    auth_token_hash(token, again);
    sha256(token, independent);
    assert_memory_equal(hash, again, AUTH_HASH_LEN);
    assert_memory_equal(hash, independent, AUTH_HASH_LEN);

    /* A known vector (FIPS 180-2): SHA-256("abc"). */
    static const unsigned char abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                          0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                          0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                          0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    auth_token_hash("abc", again);
    assert_memory_equal(again, abc, 32);

    char bytea[2 + 2 * AUTH_HASH_LEN + 1];
    auth_hash_to_bytea(abc, bytea);
    assert_string_equal(bytea,
                        "\\xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static int compare_tokens(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_tokens_differ_and_use_the_whole_alphabet(void **state)
{
    (void)state;
    enum { N = 2000 };
    char(*tokens)[AUTH_TOKEN_LEN + 1] = calloc(N, sizeof(*tokens));
    unsigned char hash[AUTH_HASH_LEN];
    int seen[AUTH_TOKEN_LEN][64];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < N; i++) {
        assert_true(auth_token_generate(tokens[i], hash));
        for (int p = 4; p < AUTH_TOKEN_LEN; p++)
            seen[p][strchr(b64url, tokens[i][p]) - b64url]++;
    }
    qsort(tokens, N, sizeof(*tokens), compare_tokens);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(tokens[i - 1], tokens[i]);
    /*
     * Every position is random: each of the 64 characters turns up there
     * (the chance that one does not in 2000 draws is about 64 * e^-31), the
     * last one included, which a 32-byte encoding would leave at 4 values.
     */
    for (int p = 4; p < AUTH_TOKEN_LEN; p++)
        for (int c = 0; c < 64; c++)
            if (seen[p][c] == 0)
                fail_msg("position %d never had '%c'", p, b64url[c]);
    free(tokens);
}

static void test_well_formed(void **state)
{
    (void)state;
    const char *good = "ikd_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk-_0123";
    assert_int_equal(strlen(good), 47);
    assert_true(auth_token_well_formed(good));
    static const char *const bad[] = {
        "",
        "ikd_",
        "ikd_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk-_012",   /* 46 */
        "ikd_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk-_01234", /* 48 */
        "IKD_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk-_0123",
        "ikd-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk-_0123",
        "xkd_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk-_0123",
        "ikd_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk+/0123", /* base64, not base64url */
        "ikd_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk-_012=",
        "ikd_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk-_012 ",
        "ikd_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij\xc3\xa9-_01",
        " ikd_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk-_012",
        "Bearer ikd_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk-_0123",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (auth_token_well_formed(bad[i]))
            fail_msg("\"%s\" passed as a token", bad[i]);
}

static void test_malformed_token_needs_no_database(void **state)
{
    (void)state;
    struct auth_cache *c = auth_cache_new();
    struct auth_token t;
    /* No pool at all: a malformed token must be refused before any database work. */
    assert_int_equal(auth_authenticate(c, NULL, "not-a-token", 0, 1000, &t, NULL, NULL),
                     AUTH_REJECTED);
    assert_int_equal(auth_authenticate(c, NULL, "", 0, 1000, &t, NULL, NULL), AUTH_REJECTED);
    auth_cache_set_trusted(c, true);
    auth_cache_forget(c, 7);
    auth_cache_set_trusted(c, false);
    auth_cache_free(c);
    auth_cache_free(NULL);
}

/* A bucket of burst requests refilled at per_minute a minute, per token. */
static void test_rate_bucket_burst_and_refill(void **state)
{
    (void)state;
    struct auth_cache *c = auth_cache_new();
    int retry;
    int64_t t0 = 1000000;

    /* 60 a minute, bursts of 5: five at once, the sixth waits one second. */
    for (int i = 0; i < 5; i++)
        assert_true(auth_rate_take(c, 1, 60, 5, t0, &retry));
    assert_false(auth_rate_take(c, 1, 60, 5, t0, &retry));
    assert_int_equal(retry, 1);
    /* Another token has a bucket of its own. */
    assert_true(auth_rate_take(c, 2, 60, 5, t0, &retry));
    /* Half a second gives half a request: still refused, still 1 s. */
    assert_false(auth_rate_take(c, 1, 60, 5, t0 + 500, &retry));
    assert_int_equal(retry, 1);
    /* A second gives one request, and one only. */
    assert_true(auth_rate_take(c, 1, 60, 5, t0 + 1000, &retry));
    assert_false(auth_rate_take(c, 1, 60, 5, t0 + 1000, &retry));
    /* An hour refills the bucket to its burst, not beyond. */
    for (int i = 0; i < 5; i++)
        assert_true(auth_rate_take(c, 1, 60, 5, t0 + 3600000, &retry));
    assert_false(auth_rate_take(c, 1, 60, 5, t0 + 3600000, &retry));
    /* At 6 a minute an empty bucket waits 10 s. */
    assert_false(auth_rate_take(c, 1, 6, 5, t0 + 3600000, &retry));
    assert_int_equal(retry, 10);
    /* No limit at all with 0 a minute. */
    for (int i = 0; i < 1000; i++)
        assert_true(auth_rate_take(c, 3, 0, 1, t0, &retry));
    auth_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_token_shape),
        cmocka_unit_test(test_hash_is_sha256_of_the_text),
        cmocka_unit_test(test_tokens_differ_and_use_the_whole_alphabet),
        cmocka_unit_test(test_well_formed),
        cmocka_unit_test(test_malformed_token_needs_no_database),
        cmocka_unit_test(test_rate_bucket_burst_and_refill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
