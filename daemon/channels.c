/*
 * Formats and signatures per channel kind. See channels.h.
 *
 * The vendors' rules, as their documentation states them:
 *   DingTalk  加签: sign = urlEncode(base64(HmacSHA256(key = secret,
 *             message = timestamp_ms + "\n" + secret))), appended to the
 *             robot's URL as &timestamp=...&sign=...; encoded once (base64's
 *             '+', '/' and '=' become %2B, %2F, %3D).
 *   Feishu    签名校验: sign = base64(HmacSHA256(key = timestamp_s + "\n" +
 *             secret, message = "")), with "timestamp" (a string of seconds)
 *             and "sign" in the JSON body.
 *   WeCom     no signature: the key is in the URL; markdown content at most
 *             4096 bytes.
 * A robot answers 200 with {"errcode": 0} (DingTalk, WeCom) or {"code": 0}
 * (Feishu) when it took the message; anything else is a refusal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "incubatord/channels.h"

static const char *const kind_names[] = {
    [CHANNEL_WEBHOOK] = "webhook", [CHANNEL_WECOM] = "wecom", [CHANNEL_DINGTALK] = "dingtalk",
    [CHANNEL_FEISHU] = "feishu",   [CHANNEL_EMAIL] = "email",
};

bool channel_kind_parse(const char *name, enum channel_kind *out)
{
    for (size_t i = 0; name && i < ARRAY_LEN(kind_names); i++) {
        if (strcmp(kind_names[i], name) == 0) {
            *out = (enum channel_kind)i;
            return true;
        }
    }
    return false;
}

const char *channel_kind_name(enum channel_kind kind)
{
    return (size_t)kind < ARRAY_LEN(kind_names) ? kind_names[kind] : "?";
}

/* ---- signatures ---- */

static bool hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                        unsigned char md[32])
{
    unsigned int mdlen = 0;
    return HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, md, &mdlen) != NULL && mdlen == 32;
}

static void base64(const unsigned char *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

bool channel_webhook_signature(const char *secret, time_t t, const char *body, size_t body_len,
                               char *out, size_t outlen)
{
    char stamp[32];
    unsigned char md[32];
    int n = snprintf(stamp, sizeof(stamp), "%lld.", (long long)t);
    if (outlen < (size_t)n + 4 + CHANNEL_SIGNATURE_HEX_LEN + 1)
        return false;
    unsigned char *msg = xmalloc((size_t)n + body_len + 1);
    memcpy(msg, stamp, (size_t)n);
    if (body_len)
        memcpy(msg + n, body, body_len);
    bool ok = hmac_sha256(secret, strlen(secret), msg, (size_t)n + body_len, md);
    free(msg);
    if (!ok)
        return false;
    int w = snprintf(out, outlen, "t=%lld,v1=", (long long)t);
    for (int i = 0; i < 32; i++)
        snprintf(out + w + 2 * i, 3, "%02x", md[i]);
    return true;
}

bool channel_dingtalk_sign(const char *secret, int64_t ts_ms, char *out, size_t outlen)
{
    char msg[512];
    unsigned char md[32];
    char b64[48];
    int n = snprintf(msg, sizeof(msg), "%lld\n%s", (long long)ts_ms, secret);
    if (n < 0 || (size_t)n >= sizeof(msg) ||
        !hmac_sha256(secret, strlen(secret), msg, (size_t)n, md))
        return false;
    base64(md, sizeof(md), b64);
    size_t w = 0;
    for (const char *p = b64; *p; p++) {
        const char *esc = *p == '+' ? "%2B" : *p == '/' ? "%2F" : *p == '=' ? "%3D" : NULL;
        size_t need = esc ? 3 : 1;
        if (w + need >= outlen)
            return false;
        if (esc) {
            memcpy(out + w, esc, 3);
        } else {
            out[w] = *p;
        }
        w += need;
    }
    out[w] = '\0';
    return true;
}

bool channel_feishu_sign(const char *secret, int64_t ts_s, char *out, size_t outlen)
{
    char key[512];
    unsigned char md[32];
    int n = snprintf(key, sizeof(key), "%lld\n%s", (long long)ts_s, secret);
    if (n < 0 || (size_t)n >= sizeof(key) || outlen < 45 || !hmac_sha256(key, (size_t)n, "", 0, md))
        return false;
    base64(md, sizeof(md), out);
    return true;
}

/* ---- text ---- */

size_t channel_utf8_prefix(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return len;
    size_t cut = max;
    /* Back over continuation bytes (10xxxxxx) to the start of the character cut in two. */
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

char *channel_header_encode(const char *text)
{
    bool ascii = true;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p >= 0x80 || *p < 0x20)
            ascii = false;
    if (ascii)
        return xstrdup(text);
    /*
     * Encoded words of at most 75 characters: "=?UTF-8?B?" + base64 + "?=" leaves
     * 63 base64 characters, 45 bytes of text, cut at character boundaries.
     */
    size_t len = strlen(text);
    char *out = xmalloc(len * 2 + 64 * (len / 30 + 1));
    size_t w = 0, at = 0;
    while (at < len) {
        size_t chunk = channel_utf8_prefix(text + at, 45);
        if (chunk == 0)
            chunk = 1;
        char b64[64];
        base64((const unsigned char *)text + at, chunk, b64);
        w += (size_t)sprintf(out + w, "%s=?UTF-8?B?%s?=", at ? "\r\n " : "", b64);
        at += chunk;
    }
    return out;
}

static char *json_text(json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

/* ---- requests per kind ---- */

static void set_json_headers(struct channel_message *out)
{
    out->headers[0] = xstrdup("Content-Type: application/json");
}

static bool build_webhook(const struct channel_target *ch, const char *payload, int64_t now_ms,
                          struct channel_message *out, char *err, size_t errlen)
{
    char signature[128];
    json_t *doc = json_loads(payload, 0, NULL);
    const char *event_id = json_string_value(json_object_get(doc, "id"));
    if (!channel_webhook_signature(ch->secret, (time_t)(now_ms / 1000), payload, strlen(payload),
                                   signature, sizeof(signature))) {
        json_decref(doc);
        snprintf(err, errlen, "cannot compute the signature");
        return false;
    }
    out->url = xstrdup(ch->url);
    out->body = xstrdup(payload);
    out->body_len = strlen(payload);
    set_json_headers(out);
    size_t n = strlen(event_id ? event_id : "") + 32;
    out->headers[1] = xmalloc(n);
    snprintf(out->headers[1], n, "X-Incubatord-Event-Id: %s", event_id ? event_id : "");
    n = strlen(signature) + 32;
    out->headers[2] = xmalloc(n);
    snprintf(out->headers[2], n, "X-Incubatord-Signature: %s", signature);
    json_decref(doc);
    out->events = 1;
    return true;
}

/* Renders events[0..n), fewer when the text would exceed max bytes (a single one is cut). */
static size_t render_fitting(enum message_family family, const struct message_event *events,
                             size_t n, const struct message_context *mctx, size_t max, char **title,
                             char **text)
{
    for (;;) {
        message_render(family, events, n, mctx, title, text);
        size_t len = strlen(*text);
        if (len <= max)
            return n;
        if (n == 1) {
            (*text)[channel_utf8_prefix(*text, max)] = '\0';
            return 1;
        }
        free(*title);
        free(*text);
        *title = *text = NULL;
        /* Shrink in proportion to the excess, at least by one. */
        size_t next = n * max / (len + 1);
        n = next < n && next > 0 ? next : n - 1;
    }
}

static bool build_robot(const struct channel_target *ch, const struct message_event *events,
                        size_t n, const struct message_context *mctx, int64_t now_ms,
                        struct channel_message *out, char *err, size_t errlen)
{
    char *title = NULL, *text = NULL, sign[128];
    json_t *doc;
    size_t max = ch->kind == CHANNEL_WECOM ? CHANNEL_WECOM_MAX_BYTES : CHANNEL_ROBOT_MAX_BYTES;
    enum message_family family = ch->kind == CHANNEL_FEISHU ? MSG_TEXT : MSG_MARKDOWN;

    out->events = render_fitting(family, events, n, mctx, max, &title, &text);
    bool signed_ = ch->secret != NULL && ch->secret[0] != '\0';
    switch (ch->kind) {
    case CHANNEL_WECOM:
        doc = json_pack("{s:s, s:{s:s}}", "msgtype", "markdown", "markdown", "content", text);
        out->url = xstrdup(ch->url);
        break;
    case CHANNEL_DINGTALK:
        doc = json_pack("{s:s, s:{s:s, s:s}}", "msgtype", "markdown", "markdown", "title", title,
                        "text", text);
        if (signed_) {
            if (!channel_dingtalk_sign(ch->secret, now_ms, sign, sizeof(sign))) {
                snprintf(err, errlen, "cannot compute the DingTalk signature");
                goto fail;
            }
            size_t len = strlen(ch->url) + strlen(sign) + 64;
            out->url = xmalloc(len);
            snprintf(out->url, len, "%s%ctimestamp=%lld&sign=%s", ch->url,
                     strchr(ch->url, '?') ? '&' : '?', (long long)now_ms, sign);
        } else {
            out->url = xstrdup(ch->url);
        }
        break;
    default: /* CHANNEL_FEISHU */
        doc = json_pack("{s:s, s:{s:s}}", "msg_type", "text", "content", "text", text);
        if (signed_) {
            char ts[24];
            snprintf(ts, sizeof(ts), "%lld", (long long)(now_ms / 1000));
            if (!channel_feishu_sign(ch->secret, now_ms / 1000, sign, sizeof(sign))) {
                snprintf(err, errlen, "cannot compute the Feishu signature");
                goto fail;
            }
            json_object_set_new(doc, "timestamp", json_string(ts));
            json_object_set_new(doc, "sign", json_string(sign));
        }
        out->url = xstrdup(ch->url);
        break;
    }
    if (doc == NULL) {
        snprintf(err, errlen, "the message is not valid UTF-8");
        goto fail;
    }
    out->body = json_text(doc);
    if (out->body == NULL) {
        snprintf(err, errlen, "cannot encode the message");
        goto fail;
    }
    out->body_len = strlen(out->body);
    set_json_headers(out);
    free(title);
    free(text);
    return true;
fail:
    free(title);
    free(text);
    return false;
}

static const char *const weekdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* RFC 5322's date-time in the bureau's zone: "Wed, 02 Dec 2026 10:41:00 +0800". */
static void mail_date(int64_t now_ms, char *out, size_t len)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    char zone[8];
    localtime_r(&t, &tm);
    strftime(zone, sizeof(zone), "%z", &tm);
    snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d %s", weekdays[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zone);
}

static void add_base64_part(struct evbuffer *b, const char *boundary, const char *type,
                            const char *text)
{
    size_t len = strlen(text);
    char *enc = xmalloc(4 * (len / 3 + 1) + 1);
    base64((const unsigned char *)text, len, enc);
    evbuffer_add_printf(b,
                        "--%s\r\nContent-Type: %s; charset=UTF-8\r\n"
                        "Content-Transfer-Encoding: base64\r\n\r\n",
                        boundary, type);
    size_t enclen = strlen(enc);
    for (size_t at = 0; at < enclen; at += 76) {
        evbuffer_add(b, enc + at, enclen - at < 76 ? enclen - at : 76);
        evbuffer_add(b, "\r\n", 2);
    }
    free(enc);
}

static bool build_email(const struct channel_target *ch, const struct message_event *events,
                        size_t n, const struct message_context *mctx,
                        const struct channel_smtp *smtp, int64_t now_ms,
                        struct channel_message *out, char *err, size_t errlen)
{
    char *title, *plain, *html, *html_title;
    char date[64], boundary[96], id[160];
    const char *domain;
    size_t nto = 0;

    if (smtp == NULL || smtp->host == NULL || smtp->host[0] == '\0' || smtp->from == NULL ||
        smtp->from[0] == '\0') {
        snprintf(err, errlen, "no [smtp] host and from in the configuration");
        return false;
    }
    message_render(MSG_TEXT, events, n, mctx, &title, &plain);
    message_render(MSG_HTML, events, n, mctx, &html_title, &html);
    free(html_title);
    out->events = n;

    domain = strchr(smtp->from, '@');
    domain = smtp->helo_domain ? smtp->helo_domain : domain ? domain + 1 : "incubatord";
    const char *event_id = json_string_value(json_object_get(events[0].payload, "id"));
    snprintf(id, sizeof(id), "<%s.%lld%s@%s>", event_id ? event_id : "event", (long long)now_ms,
             n > 1 ? ".digest" : "", domain);
    snprintf(boundary, sizeof(boundary), "=_incubatord_%lld_%zu", (long long)now_ms, n);
    mail_date(now_ms, date, sizeof(date));
    char *subject = channel_header_encode(title);

    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "From: <%s>\r\nTo: ", smtp->from);
    for (const char *const *to = ch->to; to && *to; to++, nto++)
        evbuffer_add_printf(b, "%s<%s>", nto ? ",\r\n " : "", *to);
    evbuffer_add_printf(b,
                        "\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n"
                        "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n"
                        "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n",
                        subject, date, id, boundary);
    add_base64_part(b, boundary, "text/plain", plain);
    add_base64_part(b, boundary, "text/html", html);
    evbuffer_add_printf(b, "--%s--\r\n", boundary);
    free(subject);
    free(title);
    free(plain);
    free(html);

    out->body_len = evbuffer_get_length(b);
    out->body = xmalloc(out->body_len + 1);
    evbuffer_remove(b, out->body, out->body_len);
    out->body[out->body_len] = '\0';
    evbuffer_free(b);

    size_t ulen = strlen(smtp->host) + 32;
    out->url = xmalloc(ulen);
    snprintf(out->url, ulen, "%s://%s:%d", smtp->port == 465 ? "smtps" : "smtp", smtp->host,
             smtp->port);
    out->mail_from = xstrdup(smtp->from);
    out->rcpt = xcalloc(nto + 1, sizeof(char *));
    for (size_t i = 0; i < nto; i++)
        out->rcpt[i] = xstrdup(ch->to[i]);
    if (nto == 0) {
        snprintf(err, errlen, "no recipients");
        return false;
    }
    return true;
}

bool channel_build(const struct channel_target *ch, const struct message_event *events,
                   const char *const *payloads, size_t n, const struct message_context *mctx,
                   const struct channel_smtp *smtp, int64_t now_ms, struct channel_message *out,
                   char *err, size_t errlen)
{
    bool ok;
    memset(out, 0, sizeof(*out));
    if (n == 0) {
        snprintf(err, errlen, "no event to send");
        return false;
    }
    switch (ch->kind) {
    case CHANNEL_WEBHOOK:
        ok = build_webhook(ch, payloads[0], now_ms, out, err, errlen);
        break;
    case CHANNEL_EMAIL:
        ok = build_email(ch, events, n, mctx, smtp, now_ms, out, err, errlen);
        break;
    default:
        ok = build_robot(ch, events, n, mctx, now_ms, out, err, errlen);
        break;
    }
    if (!ok)
        channel_message_free(out);
    return ok;
}

void channel_message_free(struct channel_message *m)
{
    free(m->url);
    free(m->body);
    for (size_t i = 0; i < ARRAY_LEN(m->headers); i++)
        free(m->headers[i]);
    for (char **r = m->rcpt; r && *r; r++)
        free(*r);
    free(m->rcpt);
    free(m->mail_from);
    memset(m, 0, sizeof(*m));
}

/* ---- answers ---- */

/* Up to 200 bytes of an answer, control characters as spaces, cut at a character. */
static void snippet(const char *body, size_t len, char *out, size_t outlen)
{
    size_t take = len < outlen - 1 ? len : outlen - 1;
    if (take > 200)
        take = 200;
    memcpy(out, body, take);
    out[take] = '\0';
    out[channel_utf8_prefix(out, take)] = '\0';
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

bool channel_answer_ok(enum channel_kind kind, const struct curl_response *res, char *err,
                       size_t errlen)
{
    char text[256];
    if (!res->transferred) {
        snprintf(err, errlen, "%s", res->error);
        return false;
    }
    if (kind == CHANNEL_EMAIL)
        return true; /* libcurl checked every SMTP reply */
    snippet(res->body, res->body_len, text, sizeof(text));
    if (res->status < 200 || res->status > 299) {
        snprintf(err, errlen, "HTTP %d%s%s", res->status, text[0] ? ": " : "", text);
        return false;
    }
    if (kind == CHANNEL_WEBHOOK)
        return true;
    json_t *doc = json_loadb(res->body, res->body_len, 0, NULL);
    const char *key = kind == CHANNEL_FEISHU ? "code" : "errcode";
    json_t *code = json_object_get(doc, key);
    if (code == NULL && kind == CHANNEL_FEISHU)
        code = json_object_get(doc, "StatusCode"); /* the bot's older answer */
    bool ok = json_is_integer(code) && json_integer_value(code) == 0;
    if (!ok) {
        const char *msg =
            json_string_value(json_object_get(doc, kind == CHANNEL_FEISHU ? "msg" : "errmsg"));
        if (json_is_integer(code))
            snprintf(err, errlen, "%s %lld: %s", key, (long long)json_integer_value(code),
                     msg ? msg : text);
        else
            snprintf(err, errlen, "HTTP %d without %s: %s", res->status, key, text);
    }
    json_decref(doc);
    return ok;
}
