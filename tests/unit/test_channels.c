/* The channels' formats and signatures, the retry backoff, and the Chinese
 * messages as snapshots. Expected webhook digests were computed with
 * `openssl dgst -sha256 -hmac`; DingTalk's and Feishu's signs with the
 * Python samples of their documentation. Snapshots live in
 * tests/unit/snapshots/; UPDATE_SNAPSHOTS=1 rewrites them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "incubatord/channels.h"
#include "incubatord/messages.h"
#include "incubatord/outbox.h"

static void test_signature_matches_openssl(void **state)
{
    (void)state;
    const char body[] = "{\"id\":\"x\"}";
    char out[128];
    assert_true(
        channel_webhook_signature("test-secret", 1700000000, body, strlen(body), out, sizeof(out)));
    assert_string_equal(out, "t=1700000000,v1=bcadb3a3ee7633fd9db6910d1ec0801c"
                             "2ad9c7d064479c5e574c5fffccd4b39f");
}

static void test_signature_of_an_empty_body(void **state)
{
    (void)state;
    char out[128];
    assert_true(channel_webhook_signature("k", 0, "", 0, out, sizeof(out)));
    assert_string_equal(out,
                        "t=0,v1=6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7");
}

static void test_signature_refuses_a_short_buffer(void **state)
{
    (void)state;
    char out[40];
    assert_false(channel_webhook_signature("k", 1700000000, "{}", 2, out, sizeof(out)));
}

static void test_backoff_doubles_up_to_the_cap(void **state)
{
    (void)state;
    /* rnd = UINT32_MAX % (half + 1) is not predictable; the bounds are. */
    int64_t expected_full[] = {100, 200, 400, 800, 1000, 1000};
    for (int attempts = 1; attempts <= 6; attempts++) {
        int64_t full = expected_full[attempts - 1];
        for (uint32_t rnd = 0; rnd < 2000; rnd += 7) {
            int64_t d = outbox_backoff_ms(attempts, 100, 1000, rnd);
            assert_true(d >= full - full / 2);
            assert_true(d <= full);
        }
        assert_int_equal(outbox_backoff_ms(attempts, 100, 1000, 0), full - full / 2);
        assert_int_equal(outbox_backoff_ms(attempts, 100, 1000, (uint32_t)(full / 2)), full);
    }
}

static void test_backoff_survives_many_attempts(void **state)
{
    (void)state;
    /* Hundreds of failures over a day must not overflow the doubling. */
    int64_t d = outbox_backoff_ms(10000, 10000, 3600000, 12345);
    assert_true(d >= 1800000 && d <= 3600000);
}

/* ---- the robots' signatures ---- */

static void test_dingtalk_sign_as_documented(void **state)
{
    (void)state;
    char out[128];
    assert_true(channel_dingtalk_sign("SEC0123456789abcdef", 1700000000123LL, out, sizeof(out)));
    /* quote_plus(base64(hmac)): encoded once, '+' '/' '=' as %2B %2F %3D. */
    assert_string_equal(out, "V9VP5gL2WDsEZvZQHnbd9k4n%2Bp56ibcLMh%2BWKMZRQas%3D");
}

static void test_feishu_sign_as_documented(void **state)
{
    (void)state;
    char out[64];
    assert_true(channel_feishu_sign("SEC0123456789abcdef", 1700000000, out, sizeof(out)));
    assert_string_equal(out, "PiO7POLlSx/DM2qf8Dy/XCWeJK3exVnevp5G99LEN2M=");
}

/* ---- text ---- */

static void test_utf8_prefix_never_splits_a_character(void **state)
{
    (void)state;
    const char *s = "ab科技"; /* 2 + 3 + 3 bytes */
    assert_int_equal(channel_utf8_prefix(s, 100), 8);
    assert_int_equal(channel_utf8_prefix(s, 8), 8);
    assert_int_equal(channel_utf8_prefix(s, 7), 5);
    assert_int_equal(channel_utf8_prefix(s, 5), 5);
    assert_int_equal(channel_utf8_prefix(s, 4), 2);
    assert_int_equal(channel_utf8_prefix(s, 2), 2);
    assert_int_equal(channel_utf8_prefix(s, 0), 0);
}

static void test_header_encoding_is_rfc2047(void **state)
{
    (void)state;
    char *plain = channel_header_encode("plain ASCII");
    assert_string_equal(plain, "plain ASCII");
    free(plain);
    char *word = channel_header_encode("告警");
    assert_string_equal(word, "=?UTF-8?B?5ZGK6K2m?=");
    free(word);
    /* A long subject is folded into words of at most 75 characters, cut at characters. */
    char *lng = channel_header_encode("【严重】科技企业场地占比低于一票否决线：孵化器 HRB-001");
    for (char *line = strtok(lng, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        char *w = line[0] == ' ' ? line + 1 : line;
        assert_true(strlen(w) <= 75);
        assert_memory_equal(w, "=?UTF-8?B?", 10);
    }
    free(lng);
}

/* ---- answers ---- */

static bool answer(enum channel_kind kind, int status, const char *body, char *err, size_t len)
{
    struct curl_response r = {
        .transferred = true, .status = status, .body = body, .body_len = strlen(body), .error = ""};
    return channel_answer_ok(kind, &r, err, len);
}

static void test_robot_refusals_in_a_200_body_fail(void **state)
{
    (void)state;
    char err[256];
    assert_true(
        answer(CHANNEL_DINGTALK, 200, "{\"errcode\":0,\"errmsg\":\"ok\"}", err, sizeof(err)));
    assert_false(answer(CHANNEL_DINGTALK, 200,
                        "{\"errcode\":310000,\"errmsg\":\"keywords not in content\"}", err,
                        sizeof(err)));
    assert_string_equal(err, "errcode 310000: keywords not in content");
    assert_false(answer(CHANNEL_WECOM, 200,
                        "{\"errcode\":93000,\"errmsg\":\"invalid webhook url\"}", err,
                        sizeof(err)));
    assert_string_equal(err, "errcode 93000: invalid webhook url");
    assert_true(answer(CHANNEL_FEISHU, 200, "{\"code\":0,\"msg\":\"success\",\"data\":{}}", err,
                       sizeof(err)));
    assert_false(answer(CHANNEL_FEISHU, 200, "{\"code\":19021,\"msg\":\"sign match fail\"}", err,
                        sizeof(err)));
    assert_string_equal(err, "code 19021: sign match fail");
    assert_false(answer(CHANNEL_DINGTALK, 200, "<html>proxy</html>", err, sizeof(err)));
    assert_false(answer(CHANNEL_WEBHOOK, 503, "busy", err, sizeof(err)));
    assert_string_equal(err, "HTTP 503: busy");
    assert_true(answer(CHANNEL_WEBHOOK, 204, "", err, sizeof(err)));
}

/* ---- messages: snapshots ---- */

static const char *const EVENTS[][2] = {
    {"breach_firing",
     "{\"id\":\"0b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69\",\"type\":\"alert.firing\","
     "\"occurred_at\":\"2026-11-26T08:00:00Z\",\"data\":{\"id\":7,\"rule\":\"space_share_breach\","
     "\"severity\":\"critical\",\"incubator\":\"HRB-001\",\"subject\":null,\"state\":\"firing\","
     "\"acknowledged\":false,\"started_at\":\"2026-11-26T08:00:00Z\",\"resolved_at\":null,"
     "\"value\":0.4321,\"threshold\":0.5,\"message\":\"HRB-001 科技企业场地占比 "
     "43.21%，低于一票否决线 "
     "50.00%\"}}"},
    {"warning_firing",
     "{\"id\":\"1b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69\",\"type\":\"alert.firing\","
     "\"occurred_at\":\"2026-11-26T16:30:00Z\",\"data\":{\"id\":8,\"rule\":\"space_share_warning\","
     "\"severity\":\"warning\",\"incubator\":\"HRB-002\",\"subject\":null,\"state\":\"firing\","
     "\"acknowledged\":false,\"started_at\":\"2026-11-26T16:30:00Z\",\"resolved_at\":null,"
     "\"value\":0.52,\"threshold\":0.55,\"message\":\"\"}}"},
    {"breach_resolved",
     "{\"id\":\"2b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69\",\"type\":\"alert.resolved\","
     "\"occurred_at\":\"2026-11-27T01:00:00Z\",\"data\":{\"id\":7,\"rule\":\"space_share_breach\","
     "\"severity\":\"critical\",\"incubator\":\"HRB-001\",\"subject\":null,\"state\":\"resolved\","
     "\"acknowledged\":false,\"started_at\":\"2026-11-26T08:00:00Z\",\"resolved_at\":"
     "\"2026-11-27T01:00:00Z\",\"value\":0.61,\"threshold\":0.5,\"message\":\"\"}}"},
    {"breach_repeat",
     "{\"id\":\"3b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69\",\"type\":\"alert.repeat\","
     "\"occurred_at\":\"2026-11-27T08:00:00Z\",\"data\":{\"id\":7,\"rule\":\"space_share_breach\","
     "\"severity\":\"critical\",\"incubator\":\"HRB-001\",\"subject\":null,\"state\":\"firing\","
     "\"acknowledged\":false,\"started_at\":\"2026-11-26T08:00:00Z\",\"resolved_at\":null,"
     "\"value\":0.4321,\"threshold\":0.5,\"message\":\"\"}}"},
    {"stale_firing",
     "{\"id\":\"4b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69\",\"type\":\"alert.firing\","
     "\"occurred_at\":\"2026-11-26T08:00:00Z\",\"data\":{\"id\":9,\"rule\":\"stale_data\","
     "\"severity\":\"warning\",\"incubator\":\"HRB-003\",\"subject\":null,\"state\":\"firing\","
     "\"acknowledged\":false,\"started_at\":\"2026-11-26T08:00:00Z\",\"resolved_at\":null,"
     "\"value\":40,\"threshold\":35,\"message\":\"\"}}"},
    {"overdue_firing",
     "{\"id\":\"5b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69\",\"type\":\"alert.firing\","
     "\"occurred_at\":\"2026-11-26T08:00:00Z\",\"data\":{\"id\":10,\"rule\":\"overdue_tenant\","
     "\"severity\":\"info\",\"incubator\":\"HRB-003\",\"subject\":\"T-17\",\"state\":\"firing\","
     "\"acknowledged\":false,\"started_at\":\"2026-11-26T08:00:00Z\",\"resolved_at\":null,"
     "\"value\":12,\"threshold\":null,\"message\":\"\"}}"},
    {"duplicate_firing",
     "{\"id\":\"6b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69\",\"type\":\"alert.firing\","
     "\"occurred_at\":\"2026-11-26T08:00:00Z\",\"data\":{\"id\":11,\"rule\":\"duplicate_"
     "enterprise\","
     "\"severity\":\"warning\",\"incubator\":\"HRB-004\",\"subject\":\"91230103MA0000001X\","
     "\"state\":\"firing\",\"acknowledged\":false,\"started_at\":\"2026-11-26T08:00:00Z\","
     "\"resolved_at\":null,\"value\":2,\"threshold\":null,\"message\":\"\"}}"},
    {"payout_computed",
     "{\"id\":\"7b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69\",\"type\":\"payout_run.computed\","
     "\"occurred_at\":\"2026-12-01T18:00:00Z\",\"data\":{\"period\":\"2026-11\",\"status\":"
     "\"draft\","
     "\"total_fen\":123456789,\"vetoed\":[\"HRB-001\",\"HRB-009\"]}}"},
    {"payout_approved",
     "{\"id\":\"8b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69\",\"type\":\"payout_run.approved\","
     "\"occurred_at\":\"2026-12-03T02:00:00Z\",\"data\":{\"period\":\"2026-11\",\"status\":"
     "\"approved\",\"total_fen\":5000000,\"vetoed\":[]}}"},
    {"channel_test",
     "{\"id\":\"9b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69\",\"type\":\"channel.test\","
     "\"occurred_at\":\"2026-11-26T08:00:00Z\",\"data\":{\"channel\":\"bureau-duty\"}}"},
};
static const char *const NAMES[] = {"南岗区科技企业孵化器", "道里区众创空间", NULL};

static char *snapshot_path(const char *name)
{
    char *p = malloc(strlen(INCUBATORD_SOURCE_DIR) + strlen(name) + 40);
    sprintf(p, "%s/tests/unit/snapshots/%s.txt", INCUBATORD_SOURCE_DIR, name);
    return p;
}

/* Compares text with the snapshot file, or writes it under UPDATE_SNAPSHOTS=1. */
static void check_snapshot(const char *name, const char *text)
{
    char *path = snapshot_path(name);
    if (getenv("UPDATE_SNAPSHOTS") != NULL) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        free(path);
        return;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("no snapshot %s (run with UPDATE_SNAPSHOTS=1)", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (strcmp(buf, text) != 0)
        fail_msg("%s differs from its snapshot:\n%s", path, text);
    free(path);
}

static void render_all(const char *name, const struct message_event *e, size_t n)
{
    static const char *const family_names[] = {"markdown", "text", "html"};
    struct message_context ctx = {"https://kj.example.gov.cn/"};
    char *all = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&all, &len);
    for (int f = MSG_MARKDOWN; f <= MSG_HTML; f++) {
        char *title, *text;
        message_render((enum message_family)f, e, n, &ctx, &title, &text);
        fprintf(out, "==== %s\ntitle: %s\n%s", family_names[f], title, text);
        free(title);
        free(text);
    }
    fclose(out);
    check_snapshot(name, all);
    free(all);
}

static void test_messages_match_their_snapshots(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(EVENTS); i++) {
        json_t *payload = json_loads(EVENTS[i][1], 0, NULL);
        assert_non_null(payload);
        struct message_event e = {payload, i % 3 == 2 ? NULL : NAMES[i % 2]};
        render_all(EVENTS[i][0], &e, 1);
        json_decref(payload);
    }
}

static void test_a_digest_names_every_event(void **state)
{
    (void)state;
    struct message_event e[ARRAY_LEN(EVENTS)];
    for (size_t i = 0; i < ARRAY_LEN(EVENTS); i++) {
        e[i].payload = json_loads(EVENTS[i][1], 0, NULL);
        e[i].incubator_name = NAMES[i % 2];
    }
    render_all("digest", e, ARRAY_LEN(EVENTS));
    for (size_t i = 0; i < ARRAY_LEN(EVENTS); i++)
        json_decref(e[i].payload);
}

/* ---- requests per kind ---- */

static void test_requests_of_each_kind(void **state)
{
    (void)state;
    json_t *payload = json_loads(EVENTS[0][1], 0, NULL);
    struct message_event e = {payload, NAMES[0]};
    const char *payloads[] = {EVENTS[0][1]};
    struct message_context ctx = {""};
    struct channel_message m;
    char err[256];
    const char *to[] = {"duty@example.gov.cn", NULL};
    struct channel_smtp smtp = {"127.0.0.1", 2525, false, "", "", "incubatord@example.gov.cn",
                                NULL};

    struct channel_target ding = {CHANNEL_DINGTALK, "d",
                                  "https://oapi.dingtalk.com/robot/send?access_token=abc",
                                  "SEC0123456789abcdef", NULL};
    assert_true(
        channel_build(&ding, &e, payloads, 1, &ctx, NULL, 1700000000123LL, &m, err, sizeof(err)));
    assert_string_equal(m.url, "https://oapi.dingtalk.com/robot/send?access_token=abc"
                               "&timestamp=1700000000123"
                               "&sign=V9VP5gL2WDsEZvZQHnbd9k4n%2Bp56ibcLMh%2BWKMZRQas%3D");
    assert_non_null(strstr(m.body, "\"msgtype\":\"markdown\""));
    channel_message_free(&m);

    struct channel_target feishu = {CHANNEL_FEISHU, "f",
                                    "https://open.feishu.cn/open-apis/bot/v2/hook/x",
                                    "SEC0123456789abcdef", NULL};
    assert_true(
        channel_build(&feishu, &e, payloads, 1, &ctx, NULL, 1700000000999LL, &m, err, sizeof(err)));
    assert_non_null(strstr(m.body, "\"timestamp\":\"1700000000\""));
    assert_non_null(strstr(m.body, "\"sign\":\"PiO7POLlSx/DM2qf8Dy/XCWeJK3exVnevp5G99LEN2M=\""));
    channel_message_free(&m);

    struct channel_target hook = {CHANNEL_WEBHOOK, "w", "http://127.0.0.1:9/h", "test-secret",
                                  NULL};
    assert_true(
        channel_build(&hook, NULL, payloads, 1, NULL, NULL, 1700000000000LL, &m, err, sizeof(err)));
    assert_string_equal(m.body, EVENTS[0][1]); /* unchanged */
    assert_string_equal(m.headers[1],
                        "X-Incubatord-Event-Id: 0b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69");
    channel_message_free(&m);

    struct channel_target mail = {CHANNEL_EMAIL, "m", NULL, NULL, to};
    assert_true(
        channel_build(&mail, &e, payloads, 1, &ctx, &smtp, 1700000000000LL, &m, err, sizeof(err)));
    assert_string_equal(m.url, "smtp://127.0.0.1:2525");
    assert_string_equal(m.rcpt[0], "duty@example.gov.cn");
    /* 2023-11-14 22:13:20 UTC is 2023-11-15 06:13:20 in Asia/Shanghai. */
    assert_non_null(strstr(m.body, "\r\nDate: Wed, 15 Nov 2023 06:13:20 +0800\r\n"));
    assert_non_null(strstr(m.body, "\r\nMessage-ID: <0b6f8a52-3c1e-4b8e-9a57-1f2d3c4b5a69."));
    assert_non_null(strstr(m.body, "\r\nSubject: =?UTF-8?B?"));
    assert_non_null(strstr(m.body, "Content-Type: text/html; charset=UTF-8"));
    channel_message_free(&m);
    json_decref(payload);
}

static void test_wecom_content_fits_4096_bytes(void **state)
{
    (void)state;
    enum { N = 200 };
    struct message_event e[N];
    const char *payloads[N];
    json_t *payload = json_loads(EVENTS[0][1], 0, NULL);
    for (int i = 0; i < N; i++) {
        e[i].payload = payload;
        e[i].incubator_name = NAMES[0];
        payloads[i] = EVENTS[0][1];
    }
    struct message_context ctx = {""};
    struct channel_target wecom = {
        CHANNEL_WECOM, "w", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", "", NULL};
    struct channel_message m;
    char err[256];
    assert_true(channel_build(&wecom, e, payloads, N, &ctx, NULL, 0, &m, err, sizeof(err)));
    json_t *doc = json_loads(m.body, 0, NULL);
    const char *content =
        json_string_value(json_object_get(json_object_get(doc, "markdown"), "content"));
    assert_true(strlen(content) <= CHANNEL_WECOM_MAX_BYTES);
    assert_true(m.events > 1 && m.events < N); /* a digest of those that fit */
    json_decref(doc);
    channel_message_free(&m);
    json_decref(payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_matches_openssl),
        cmocka_unit_test(test_signature_of_an_empty_body),
        cmocka_unit_test(test_signature_refuses_a_short_buffer),
        cmocka_unit_test(test_backoff_doubles_up_to_the_cap),
        cmocka_unit_test(test_backoff_survives_many_attempts),
        cmocka_unit_test(test_dingtalk_sign_as_documented),
        cmocka_unit_test(test_feishu_sign_as_documented),
        cmocka_unit_test(test_utf8_prefix_never_splits_a_character),
        cmocka_unit_test(test_header_encoding_is_rfc2047),
        cmocka_unit_test(test_robot_refusals_in_a_200_body_fail),
        cmocka_unit_test(test_messages_match_their_snapshots),
        cmocka_unit_test(test_a_digest_names_every_event),
        cmocka_unit_test(test_requests_of_each_kind),
        cmocka_unit_test(test_wecom_content_fits_4096_bytes),
    };
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
