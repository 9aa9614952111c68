/*
 * The field-table validator: every field type, the flags, error paths that
 * name the field (tenants[3].area_m2), normal forms handed to SQL, and
 * centi_format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/routes.h"
#include "incubatord/validate.h"

static const char *const colours[] = {"red", "green", "blue", NULL};

static const struct field tenant_fields[] = {
    {"external_id", FT_CODE, F_REQUIRED},
    {"area_m2", FT_AREA, F_REQUIRED},
    {NULL},
};
static const struct field tenant_item = {"", FT_OBJECT, 0, .fields = tenant_fields};
static const struct field fen_item = {"", FT_FEN, 0};

static const struct field body[] = {
    {"name", FT_TEXT, F_REQUIRED, .max = 10},
    {"colour", FT_ENUM, 0, .values = colours},
    {"as_of", FT_DATE, F_REQUIRED | F_NOT_FUTURE},
    {"opened_on", FT_DATE, F_NULLABLE},
    {"period", FT_PERIOD, 0},
    {"area_m2", FT_AREA, 0},
    {"public_area_m2", FT_AREA0, F_NULLABLE},
    {"amount_fen", FT_FEN, 0},
    {"capped_fen", FT_FEN, 0, .max = 1000},
    {"months", FT_INT, 0, .min = 1, .max = 12},
    {"share", FT_RATIO, 0, .min = 0, .max = 10000},
    {"credit_code", FT_USCC, 0},
    {"code", FT_CODE, 0},
    {"tenants", FT_ARRAY, 0, .min = 0, .max = 5, .item = &tenant_item},
    {"revenue_fen", FT_OBJECT, F_ANY_KEYS, .item = &fen_item},
    {NULL},
};

/* 2026-11-26: tomorrow is 2026-11-27. */
static day_t today(void)
{
    return date_from_ymd(2026, 11, 26);
}

struct outcome {
    json_t *out;
    json_t *errors;
};

/* Validates text (a JSON document) against body; the caller frees both. */
static struct outcome run(const char *text, bool patch)
{
    json_error_t err;
    json_t *in = json_loads(text, JSON_DECODE_ANY, &err);
    struct vctx v;
    struct outcome o;
    if (in == NULL)
        fail_msg("test JSON does not parse: %s: %s", text, err.text);
    vctx_init(&v, today());
    o.out = validate_object(&v, "", in, body, patch);
    o.errors = json_incref(v.errors);
    vctx_free(&v);
    json_decref(in);
    return o;
}

static void outcome_free(struct outcome *o)
{
    json_decref(o->out);
    json_decref(o->errors);
}

/* The message of the error about field, or NULL. */
static const char *error_about(const struct outcome *o, const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(o->errors, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "field")), field) == 0)
            return json_string_value(json_object_get(e, "message"));
    }
    return NULL;
}

static char *dump(json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* A minimal valid body with one more member (text like "\"area_m2\": 1"). */
static struct outcome with(const char *member)
{
    char text[1024];
    /* The member may replace the required name itself. */
    bool names = strncmp(member, "\"name\"", 6) == 0;
    snprintf(text, sizeof(text), "{%s\"as_of\": \"2026-11-01\"%s%s}",
             names ? "" : "\"name\": \"x\", ", member[0] ? ", " : "", member);
    return run(text, false);
}

/* The member is accepted and normalised to expected (JSON text). */
static void accepts(const char *member, const char *field, const char *expected)
{
    struct outcome o = with(member);
    if (json_array_size(o.errors) != 0) {
        char *e = dump(o.errors);
        fail_msg("%s: unexpected errors %s", member, e);
    }
    char *got = dump(json_object_get(o.out, field));
    if (got == NULL || strcmp(got, expected) != 0)
        fail_msg("%s: normalised to %s, expected %s", member, got ? got : "(absent)", expected);
    free(got);
    outcome_free(&o);
}

/* The member is rejected with exactly one error, about field, whose message contains what. */
static void rejects(const char *member, const char *field, const char *what)
{
    struct outcome o = with(member);
    const char *msg = error_about(&o, field);
    if (msg == NULL || json_array_size(o.errors) != 1) {
        char *e = dump(o.errors);
        fail_msg("%s: expected one error about %s, got %s", member, field, e);
    }
    if (what != NULL && strstr(msg, what) == NULL)
        fail_msg("%s: message \"%s\" does not say \"%s\"", member, msg, what);
    /* A rejected field never reaches the normalised object. */
    assert_null(json_object_get(o.out, field));
    outcome_free(&o);
}

/* ---- areas ---- */

static void test_area_normal_forms(void **state)
{
    (void)state;
    accepts("\"area_m2\": 420.5", "area_m2", "\"420.50\"");
    accepts("\"area_m2\": 420.55", "area_m2", "\"420.55\"");
    accepts("\"area_m2\": 12000", "area_m2", "\"12000.00\"");
    accepts("\"area_m2\": 12000.0", "area_m2", "\"12000.00\"");
    accepts("\"area_m2\": 1.2e3", "area_m2", "\"1200.00\"");
    accepts("\"area_m2\": 0.01", "area_m2", "\"0.01\"");
    accepts("\"area_m2\": 0.07", "area_m2", "\"0.07\"");
    accepts("\"area_m2\": 10000000", "area_m2", "\"10000000.00\"");
    accepts("\"area_m2\": 10000000.00", "area_m2", "\"10000000.00\"");
    accepts("\"area_m2\": 9999999.99", "area_m2", "\"9999999.99\"");
    accepts("\"public_area_m2\": 0", "public_area_m2", "\"0.00\"");
    accepts("\"public_area_m2\": 0.0", "public_area_m2", "\"0.00\"");
    accepts("\"public_area_m2\": null", "public_area_m2", "null");
}

static void test_area_rejections(void **state)
{
    (void)state;
    rejects("\"area_m2\": 420.555", "area_m2", "2 decimals");
    rejects("\"area_m2\": 0.001", "area_m2", "2 decimals");
    rejects("\"area_m2\": 2.675", "area_m2", "2 decimals");
    rejects("\"area_m2\": 12000.001", "area_m2", "2 decimals");
    rejects("\"area_m2\": 9999999.999", "area_m2", NULL);
    /* Far more decimals than two, however small the excess. */
    rejects("\"area_m2\": 1500.000000001", "area_m2", "2 decimals");
    rejects("\"area_m2\": 0.010000001", "area_m2", "2 decimals");
    rejects("\"public_area_m2\": 0.000000001", "public_area_m2", "2 decimals");
    rejects("\"area_m2\": 0", "area_m2", "greater than 0");
    rejects("\"area_m2\": 0.0", "area_m2", "greater than 0");
    rejects("\"area_m2\": -1", "area_m2", "greater than 0");
    rejects("\"area_m2\": -0.5", "area_m2", "greater than 0");
    rejects("\"public_area_m2\": -0.01", "public_area_m2", "negative");
    rejects("\"area_m2\": 10000000.01", "area_m2", "at most 10000000");
    rejects("\"area_m2\": 10000001", "area_m2", "at most 10000000");
    rejects("\"area_m2\": 99999999999", "area_m2", NULL);
    rejects("\"area_m2\": 9223372036854775807", "area_m2", NULL);
    rejects("\"area_m2\": -9223372036854775807", "area_m2", NULL);
    rejects("\"area_m2\": 1e300", "area_m2", NULL);
    rejects("\"area_m2\": \"120\"", "area_m2", "must be a number");
    rejects("\"area_m2\": true", "area_m2", "must be a number");
    rejects("\"area_m2\": [1]", "area_m2", "must be a number");
    rejects("\"area_m2\": null", "area_m2", "must not be null");
}

/*
 * Every value with two decimals, as a client would print it, is accepted
 * exactly, across the small range and the top of the range (where doubles
 * are least precise); every value with a third non-zero decimal is not.
 */
static void test_area_every_cent(void **state)
{
    (void)state;
    static const int64_t starts[] = {1, 999999000, 12345600};
    for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
        for (int64_t centi = starts[s]; centi < starts[s] + 100000 && centi <= 1000000000;
             centi++) {
            char text[64], expected[32];
            int64_t got = -1;
            snprintf(text, sizeof(text), "%lld.%02lld", (long long)(centi / 100),
                     (long long)(centi % 100));
            json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
            assert_true(area_to_centi(j, &got));
            if (got != centi)
                fail_msg("%s read as %lld hundredths", text, (long long)got);
            centi_format(got, expected, sizeof(expected));
            assert_string_equal(expected, text);
            json_decref(j);
            if (centi % 97 == 0) {
                snprintf(text, sizeof(text), "%lld.%02lld%d", (long long)(centi / 100),
                         (long long)(centi % 100), 1 + (int)(centi % 9));
                j = json_loads(text, JSON_DECODE_ANY, NULL);
                if (area_to_centi(j, &got))
                    fail_msg("%s accepted as %lld hundredths", text, (long long)got);
                json_decref(j);
            }
        }
    }
}

static void test_centi_format(void **state)
{
    (void)state;
    char out[32];
    static const struct {
        int64_t centi;
        const char *text;
    } cases[] = {
        {0, "0.00"},         {5, "0.05"},   {50, "0.50"},        {100, "1.00"},
        {123456, "1234.56"}, {-5, "-0.05"}, {-12345, "-123.45"}, {1000000000, "10000000.00"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        centi_format(cases[i].centi, out, sizeof(out));
        assert_string_equal(out, cases[i].text);
    }
    /* A short buffer is cut, never overrun. */
    char small[5];
    centi_format(123456, small, sizeof(small));
    assert_string_equal(small, "1234");
}

/* ---- dates and periods ---- */

static void test_dates(void **state)
{
    (void)state;
    accepts("\"opened_on\": \"2024-02-29\"", "opened_on", "\"2024-02-29\"");
    accepts("\"opened_on\": null", "opened_on", "null");
    /* No F_NOT_FUTURE on opened_on: a later day is fine. */
    accepts("\"opened_on\": \"2030-01-01\"", "opened_on", "\"2030-01-01\"");
    rejects("\"opened_on\": \"2026-02-30\"", "opened_on", "calendar date");
    rejects("\"opened_on\": \"2026-13-01\"", "opened_on", "calendar date");
    rejects("\"opened_on\": \"2025-02-29\"", "opened_on", "calendar date");
    rejects("\"opened_on\": \"2026-1-1\"", "opened_on", "calendar date");
    rejects("\"opened_on\": \"2026-01-01T00:00:00Z\"", "opened_on", "calendar date");
    rejects("\"opened_on\": \"\"", "opened_on", "calendar date");
    rejects("\"opened_on\": 20260101", "opened_on", "must be a string");

    accepts("\"period\": \"2026-10\"", "period", "\"2026-10\"");
    rejects("\"period\": \"2026-13\"", "period", "YYYY-MM");
    rejects("\"period\": \"2026-10-01\"", "period", "YYYY-MM");
}

static void test_not_future(void **state)
{
    (void)state;
    struct outcome o = run("{\"name\": \"x\", \"as_of\": \"2026-11-27\"}", false);
    assert_int_equal(json_array_size(o.errors), 0); /* tomorrow is allowed */
    outcome_free(&o);
    o = run("{\"name\": \"x\", \"as_of\": \"2026-11-28\"}", false);
    assert_non_null(error_about(&o, "as_of"));
    assert_non_null(strstr(error_about(&o, "as_of"), "2026-11-27"));
    outcome_free(&o);
    o = run("{\"name\": \"x\", \"as_of\": \"1900-01-01\"}", false);
    assert_int_equal(json_array_size(o.errors), 0);
    outcome_free(&o);
}

/* ---- presence: required, nullable, unknown, patch ---- */

static void test_required_and_unknown(void **state)
{
    (void)state;
    struct outcome o = run("{}", false);
    assert_string_equal(error_about(&o, "name"), "is required");
    assert_string_equal(error_about(&o, "as_of"), "is required");
    assert_int_equal(json_array_size(o.errors), 2);
    outcome_free(&o);

    o = run("{\"name\": null, \"as_of\": null}", false);
    assert_string_equal(error_about(&o, "name"), "is required");
    assert_string_equal(error_about(&o, "as_of"), "is required");
    outcome_free(&o);

    o = run("{\"name\": \"x\", \"as_of\": \"2026-11-01\", \"nmae\": 1, \"Name\": \"y\"}", false);
    assert_string_equal(error_about(&o, "nmae"), "unknown field");
    assert_string_equal(error_about(&o, "Name"), "unknown field");
    assert_int_equal(json_array_size(o.errors), 2);
    outcome_free(&o);
}

static void test_absent_optional_fields_become_null(void **state)
{
    (void)state;
    struct outcome o = run("{\"name\": \"x\", \"as_of\": \"2026-11-01\"}", false);
    assert_int_equal(json_array_size(o.errors), 0);
    for (const struct field *f = body; f->name; f++)
        assert_non_null(json_object_get(o.out, f->name));
    assert_true(json_is_null(json_object_get(o.out, "colour")));
    assert_true(json_is_null(json_object_get(o.out, "tenants")));
    outcome_free(&o);
}

static void test_nullable(void **state)
{
    (void)state;
    rejects("\"colour\": null", "colour", "must not be null");
    rejects("\"tenants\": null", "tenants", "must not be null");
    accepts("\"public_area_m2\": null", "public_area_m2", "null");
}

static void test_patch_mode(void **state)
{
    (void)state;
    /* Nothing required, and what is absent stays absent. */
    struct outcome o = run("{\"colour\": \"red\"}", true);
    assert_int_equal(json_array_size(o.errors), 0);
    assert_int_equal(json_object_size(o.out), 1);
    assert_string_equal(json_string_value(json_object_get(o.out, "colour")), "red");
    outcome_free(&o);

    o = run("{}", true);
    assert_int_equal(json_array_size(o.errors), 0);
    assert_int_equal(json_object_size(o.out), 0);
    outcome_free(&o);

    /* Values are still checked, unknown fields still refused, null still null-checked. */
    o = run("{\"colour\": \"purple\", \"x\": 1, \"name\": null, \"opened_on\": null}", true);
    assert_non_null(error_about(&o, "colour"));
    assert_string_equal(error_about(&o, "x"), "unknown field");
    assert_non_null(error_about(&o, "name"));
    assert_null(error_about(&o, "opened_on"));
    assert_int_equal(json_array_size(o.errors), 3);
    assert_true(json_is_null(json_object_get(o.out, "opened_on")));
    outcome_free(&o);
}

static void test_body_must_be_object(void **state)
{
    (void)state;
    static const char *const not_objects[] = {"[]", "1", "\"x\"", "null", "true"};
    for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++) {
        struct outcome o = run(not_objects[i], false);
        assert_non_null(error_about(&o, "(body)"));
        assert_non_null(strstr(error_about(&o, "(body)"), "must be an object"));
        outcome_free(&o);
    }
}

/* ---- types ---- */

static void test_wrong_json_types(void **state)
{
    (void)state;
    rejects("\"name\": 5", "name", "must be a string, not a number");
    rejects("\"name\": [\"x\"]", "name", "must be a string, not an array");
    rejects("\"name\": {}", "name", "must be a string, not an object");
    rejects("\"name\": false", "name", "must be a string, not a boolean");
    rejects("\"colour\": 1", "colour", "must be a string");
    rejects("\"months\": 1.5", "months", "must be an integer");
    rejects("\"months\": 2.0", "months", "must be an integer");
    rejects("\"months\": \"3\"", "months", "must be an integer");
    rejects("\"amount_fen\": 1.5", "amount_fen", "must be an integer");
    rejects("\"amount_fen\": \"100\"", "amount_fen", "must be an integer");
    rejects("\"tenants\": {}", "tenants", "must be an array, not an object");
    rejects("\"revenue_fen\": [1]", "revenue_fen", "must be an object, not an array");
    rejects("\"credit_code\": 91110108551385082", "credit_code", "must be a string");
    rejects("\"share\": \"0.5\"", "share", "must be a number");
}

static void test_text(void **state)
{
    (void)state;
    accepts("\"name\": \"0123456789\"", "name", "\"0123456789\"");
    /* The limit counts characters, not bytes. */
    accepts("\"name\": \"哈尔滨创新创业广场孵\"", "name", "\"哈尔滨创新创业广场孵\"");
    rejects("\"name\": \"哈尔滨创新创业广场孵化\"", "name", "at most 10 characters");
    rejects("\"name\": \"01234567890\"", "name", "at most 10 characters");
    rejects("\"name\": \"\"", "name", "must not be empty");
    rejects("\"name\": \"   \"", "name", "must not be empty");
    rejects("\"name\": \"\\t\"", "name", "must not be empty");
    rejects("\"name\": \"a\\nb\"", "name", "control characters");
    rejects("\"name\": \"a\\u0001b\"", "name", "control characters");
    rejects("\"name\": \"a\\u007fb\"", "name", "control characters");
}

static void test_enum(void **state)
{
    (void)state;
    accepts("\"colour\": \"green\"", "colour", "\"green\"");
    rejects("\"colour\": \"Green\"", "colour", "must be one of: red, green, blue");
    rejects("\"colour\": \"\"", "colour", "must be one of");
}

static void test_integers_and_money(void **state)
{
    (void)state;
    accepts("\"months\": 1", "months", "1");
    accepts("\"months\": 12", "months", "12");
    rejects("\"months\": 0", "months", "from 1 to 12");
    rejects("\"months\": 13", "months", "from 1 to 12");
    rejects("\"months\": -9223372036854775807", "months", "from 1 to 12");
    accepts("\"amount_fen\": 0", "amount_fen", "0");
    accepts("\"amount_fen\": 1000000000000000", "amount_fen", "1000000000000000");
    rejects("\"amount_fen\": 1000000000000001", "amount_fen", "from 0 to 1000000000000000");
    rejects("\"amount_fen\": 9223372036854775807", "amount_fen", "from 0 to 1000000000000000");
    rejects("\"amount_fen\": -1", "amount_fen", "from 0");
    accepts("\"capped_fen\": 1000", "capped_fen", "1000");
    rejects("\"capped_fen\": 1001", "capped_fen", "from 0 to 1000");
}

static void test_ratio(void **state)
{
    (void)state;
    accepts("\"share\": 0.5", "share", "\"0.5000\"");
    accepts("\"share\": 0.1234", "share", "\"0.1234\"");
    accepts("\"share\": 0", "share", "\"0.0000\"");
    accepts("\"share\": 1", "share", "\"1.0000\"");
    rejects("\"share\": 0.12345", "share", "4 decimals");
    rejects("\"share\": 0.50000000001", "share", "4 decimals");
    rejects("\"share\": 1.0001", "share", "between 0 and 1");
    rejects("\"share\": -0.1", "share", "between 0 and 1");
    rejects("\"share\": 1e300", "share", NULL);
}

static void test_codes(void **state)
{
    (void)state;
    accepts("\"credit_code\": \"91110108551385082Q\"", "credit_code", "\"91110108551385082Q\"");
    rejects("\"credit_code\": \"91110108551385082q\"", "credit_code", "Unified Social Credit");
    rejects("\"credit_code\": \"91110108551385083Q\"", "credit_code", "check character");
    rejects("\"credit_code\": \"\"", "credit_code", NULL);

    accepts("\"code\": \"HRB-001\"", "code", "\"HRB-001\"");
    accepts("\"code\": \"a\"", "code", "\"a\"");
    accepts("\"code\": \"A.b_c-9\"", "code", "\"A.b_c-9\"");
    accepts("\"code\": \"0123456789012345678901234567890X\"", "code",
            "\"0123456789012345678901234567890X\"");
    rejects("\"code\": \"0123456789012345678901234567890XY\"", "code", "1-32");
    rejects("\"code\": \"-HRB\"", "code", "starting with a letter or digit");
    rejects("\"code\": \".HRB\"", "code", NULL);
    rejects("\"code\": \"HRB 001\"", "code", NULL);
    rejects("\"code\": \"HRB/001\"", "code", NULL);
    rejects("\"code\": \"哈尔滨\"", "code", NULL);
    rejects("\"code\": \"\"", "code", NULL);
}

/* ---- nesting ---- */

static void test_array_of_objects_paths(void **state)
{
    (void)state;
    struct outcome o = with("\"tenants\": ["
                            "{\"external_id\": \"T-1\", \"area_m2\": 1},"
                            "{\"external_id\": \"T-2\", \"area_m2\": 2.5},"
                            "{\"external_id\": \"T-3\", \"area_m2\": 3},"
                            "{\"external_id\": \"T-4\", \"area_m2\": 0},"
                            "{\"external_id\": \"-x\", \"area_m2\": 1.001, \"extra\": 1}]");
    assert_string_equal(error_about(&o, "tenants[3].area_m2"), "must be greater than 0");
    assert_non_null(error_about(&o, "tenants[4].external_id"));
    assert_non_null(error_about(&o, "tenants[4].area_m2"));
    assert_string_equal(error_about(&o, "tenants[4].extra"), "unknown field");
    assert_int_equal(json_array_size(o.errors), 4);
    outcome_free(&o);

    /* A valid array comes out normalised, item by item. */
    accepts("\"tenants\": [{\"external_id\": \"T-1\", \"area_m2\": 420.5}]", "tenants",
            "[{\"external_id\":\"T-1\",\"area_m2\":\"420.50\"}]");
    accepts("\"tenants\": []", "tenants", "[]");

    o = with("\"tenants\": [{\"area_m2\": 1}, 5, null]");
    assert_string_equal(error_about(&o, "tenants[0].external_id"), "is required");
    assert_non_null(strstr(error_about(&o, "tenants[1]"), "must be an object"));
    assert_string_equal(error_about(&o, "tenants[2]"), "must not be null");
    outcome_free(&o);

    rejects("\"tenants\": [{\"external_id\": \"a\", \"area_m2\": 1},"
            "{\"external_id\": \"b\", \"area_m2\": 1},{\"external_id\": \"c\", \"area_m2\": 1},"
            "{\"external_id\": \"d\", \"area_m2\": 1},{\"external_id\": \"e\", \"area_m2\": 1},"
            "{\"external_id\": \"f\", \"area_m2\": 1}]",
            "tenants", "at most 5 items");
}

static void test_map_of_values(void **state)
{
    (void)state;
    accepts("\"revenue_fen\": {\"2025\": 320000000, \"2024\": 0}", "revenue_fen",
            "{\"2025\":320000000,\"2024\":0}");
    accepts("\"revenue_fen\": {}", "revenue_fen", "{}");
    struct outcome o = with("\"revenue_fen\": {\"2025\": -1, \"2024\": 1.5}");
    assert_non_null(error_about(&o, "revenue_fen.2025"));
    assert_non_null(error_about(&o, "revenue_fen.2024"));
    assert_int_equal(json_array_size(o.errors), 2);
    outcome_free(&o);
}

/*
 * Every field of every route's body whose name ends in _fen, however deep
 * (graduation evidence, a tenant's annual revenue), refuses 10^15 + 1 and
 * takes 10^15: SQL adds such amounts without overflowing bigint.
 */
static int fen_fields_checked;

static void check_fen_bound(const char *path, const struct field *f)
{
    static const struct field year_item = {"", FT_FEN, 0};
    const struct field *spec = f->type == FT_YEAR_MAP ? &year_item : f;
    struct vctx v;
    json_t *out;
    for (int over = 0; over <= 1; over++) {
        json_t *amount = json_integer(FEN_MAX + over);
        vctx_init(&v, today());
        out = validate_value(&v, path, amount, spec);
        if (over ? out != NULL || vctx_ok(&v) : out == NULL || !vctx_ok(&v))
            fail_msg("%s: %lld %s", path, (long long)(FEN_MAX + over),
                     over ? "accepted" : "refused");
        json_decref(out);
        vctx_free(&v);
        json_decref(amount);
    }
    fen_fields_checked++;
}

static void walk_fen_fields(const char *path, const struct field *fields)
{
    char sub[256];
    for (const struct field *f = fields; f && f->name; f++) {
        size_t n = strlen(f->name);
        snprintf(sub, sizeof(sub), "%s.%s", path, f->name);
        if (n > 4 && strcmp(f->name + n - 4, "_fen") == 0) {
            if (f->type != FT_FEN && f->type != FT_YEAR_MAP)
                fail_msg("%s ends in _fen but is neither FT_FEN nor FT_YEAR_MAP", sub);
            check_fen_bound(sub, f);
        }
        if (f->type == FT_OBJECT)
            walk_fen_fields(sub, f->fields);
        if ((f->type == FT_ARRAY || f->type == FT_OBJECT) && f->item && f->item->type == FT_OBJECT)
            walk_fen_fields(sub, f->item->fields);
    }
}

static void test_every_route_bounds_money(void **state)
{
    (void)state;
    fen_fields_checked = 0;
    for (size_t i = 0; i < routes_count; i++)
        walk_fen_fields(routes[i].pattern, routes[i].body);
    /* The policy's amounts, the graduation evidence and a tenant's revenue at least. */
    assert_true(fen_fields_checked >= 8);
}

static void test_every_error_at_once(void **state)
{
    (void)state;
    struct outcome o = run("{\"name\": \"\", \"as_of\": \"2026-02-30\", \"area_m2\": 0,"
                           " \"months\": 99, \"colour\": \"x\", \"zz\": 1}",
                           false);
    assert_int_equal(json_array_size(o.errors), 6);
    for (const char *const *f =
             (const char *const[]){"name", "as_of", "area_m2", "months", "colour", "zz", NULL};
         *f; f++)
        assert_non_null(error_about(&o, *f));
    outcome_free(&o);
}

static void test_v_error_and_vctx(void **state)
{
    (void)state;
    struct vctx v;
    vctx_init(&v, today());
    assert_true(vctx_ok(&v));
    v_error(&v, "", "bad %s", "thing");
    v_error(&v, "a.b", "n=%d", 3);
    assert_false(vctx_ok(&v));
    json_t *e0 = json_array_get(v.errors, 0), *e1 = json_array_get(v.errors, 1);
    assert_string_equal(json_string_value(json_object_get(e0, "field")), "(body)");
    assert_string_equal(json_string_value(json_object_get(e0, "message")), "bad thing");
    assert_string_equal(json_string_value(json_object_get(e1, "field")), "a.b");
    assert_string_equal(json_string_value(json_object_get(e1, "message")), "n=3");
    vctx_free(&v);
    assert_null(v.errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_area_normal_forms),
        cmocka_unit_test(test_area_rejections),
        cmocka_unit_test(test_area_every_cent),
        cmocka_unit_test(test_centi_format),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_not_future),
        cmocka_unit_test(test_required_and_unknown),
        cmocka_unit_test(test_absent_optional_fields_become_null),
        cmocka_unit_test(test_nullable),
        cmocka_unit_test(test_patch_mode),
        cmocka_unit_test(test_body_must_be_object),
        cmocka_unit_test(test_wrong_json_types),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_integers_and_money),
        cmocka_unit_test(test_ratio),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_array_of_objects_paths),
        cmocka_unit_test(test_map_of_values),
        cmocka_unit_test(test_every_error_at_once),
        cmocka_unit_test(test_every_route_bounds_money),
        cmocka_unit_test(test_v_error_and_vctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
