/*
 * The route table's hooks, pure functions over JSON: who may ask for
 * cohorts, a new token's secret (its hash to the database, the secret shown
 * once), a revoked token forgotten; and the table's own shape (public routes
 * have a handler and no API function, the others one of the two).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/api.h"
#include "incubatord/auth.h"
#include "incubatord/routes.h"

static json_t *admin_ctx(void)
{
    return json_pack("{s:s, s:b, s:n}", "token_name", "bureau", "admin", 1, "incubator");
}

static json_t *incubator_ctx(const char *code)
{
    return json_pack("{s:s, s:b, s:s}", "token_name", "hrb", "admin", 0, "incubator", code);
}

static void test_own_incubator(void **state)
{
    (void)state;
    json_t *admin = admin_ctx(), *hrb = incubator_ctx("HRB-001");
    assert_true(apicall_own_incubator(admin, "HRB-002"));
    assert_true(apicall_own_incubator(admin, NULL));
    assert_true(apicall_own_incubator(hrb, "HRB-001"));
    assert_false(apicall_own_incubator(hrb, "HRB-002"));
    assert_false(apicall_own_incubator(hrb, "hrb-001"));
    assert_false(apicall_own_incubator(hrb, NULL));
    json_decref(admin);
    json_decref(hrb);
}

static void test_cohorts_authorize(void **state)
{
    (void)state;
    json_t *admin = admin_ctx(), *hrb = incubator_ctx("HRB-001");
    json_t *none = json_pack("{s:s}", "admitted_year", "2025");
    json_t *own = json_pack("{s:s, s:s}", "admitted_year", "x", "incubator", "HRB-001");
    json_t *other = json_pack("{s:s}", "incubator", "HRB-002");
    /* The bureau reads the whole city or any incubator. */
    assert_null(api_reports_cohorts_authorize(admin, none));
    assert_null(api_reports_cohorts_authorize(admin, other));
    /* An incubator names itself, whatever else the query holds (validated later). */
    assert_null(api_reports_cohorts_authorize(hrb, own));
    assert_non_null(api_reports_cohorts_authorize(hrb, none));
    assert_non_null(api_reports_cohorts_authorize(hrb, other));
    json_decref(admin);
    json_decref(hrb);
    json_decref(none);
    json_decref(own);
    json_decref(other);
}

static void test_token_create_hooks(void **state)
{
    (void)state;
    json_t *args = json_pack("{s:s, s:s}", "code", "HRB-001", "name", "ERP");
    json_t *keep = json_object();
    unsigned char hash[AUTH_HASH_LEN];
    char bytea[2 + 2 * AUTH_HASH_LEN + 1];

    assert_true(api_token_create_prepare(args, keep));
    const char *secret = json_string_value(json_object_get(keep, "secret"));
    assert_non_null(secret);
    assert_true(auth_token_well_formed(secret));
    /* Only the hash goes to the database. */
    auth_token_hash(secret, hash);
    auth_hash_to_bytea(hash, bytea);
    assert_string_equal(json_string_value(json_object_get(args, "hash")), bytea);
    char *sent = json_dumps(args, 0);
    assert_null(strstr(sent, secret));
    free(sent);

    /* The 201 shows the secret once; a replay does not; nor does a refusal's status. */
    json_t *effects = json_object();
    struct route_answer created = {201, false, args, keep};
    json_t *doc = json_pack("{s:i}", "id", 7);
    api_token_create_after(&created, doc, effects);
    assert_string_equal(json_string_value(json_object_get(doc, "token")), secret);
    json_decref(doc);

    struct route_answer replayed = {201, true, args, keep};
    doc = json_pack("{s:i}", "id", 7);
    api_token_create_after(&replayed, doc, effects);
    assert_null(json_object_get(doc, "token"));
    json_decref(doc);

    api_token_create_after(&created, NULL, effects); /* no body: nothing to add to */
    assert_int_equal(json_object_size(effects), 0);
    json_decref(effects);
    json_decref(args);
    json_decref(keep);
}

static void test_token_revoke_after(void **state)
{
    (void)state;
    json_t *args = json_pack("{s:s}", "id", "42");
    json_t *effects = json_object();
    struct route_answer revoked = {204, false, args, NULL};
    api_token_revoke_after(&revoked, NULL, effects);
    assert_int_equal(json_integer_value(json_object_get(effects, ROUTE_EFFECT_FORGET_TOKEN)), 42);
    json_decref(args);
    json_decref(effects);
}

static void test_table_shape(void **state)
{
    (void)state;
    for (size_t i = 0; i < routes_count; i++) {
        const struct route *rt = &routes[i];
        if (rt->access == ACCESS_PUBLIC) {
            assert_non_null(rt->handler);
            assert_null(rt->fn);
            assert_null(rt->authorize);
            assert_null(rt->prepare);
            assert_null(rt->after);
        } else {
            /* One API call, or the daemon's own work instead. */
            assert_true((rt->fn != NULL) != (rt->handler != NULL));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_incubator),      cmocka_unit_test(test_cohorts_authorize),
        cmocka_unit_test(test_token_create_hooks), cmocka_unit_test(test_token_revoke_after),
        cmocka_unit_test(test_table_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
