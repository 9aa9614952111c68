/*
 * The kinds of notification channel and what each one sends: the signed
 * webhook, the WeCom (企业微信), DingTalk (钉钉) and Feishu (飞书) group robots,
 * and e-mail. channels.c turns events into the request of a kind (URL,
 * headers, body, signatures; the text comes from messages.c) and judges the
 * answer (a robot's refusal in a 200 body is a failure). Pure functions:
 * sending is curl.c's, bookkeeping outbox.c's.
 */
#ifndef INCUBATORD_CHANNELS_H
#define INCUBATORD_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "incubatord/common.h"
#include "incubatord/curl.h"
#include "incubatord/messages.h"

/* The hex digest of an X-Incubatord-Signature is this long. */
#define CHANNEL_SIGNATURE_HEX_LEN 64
/* WeCom's markdown content limit, in bytes. */
#define CHANNEL_WECOM_MAX_BYTES 4096
/* The largest text sent to DingTalk and Feishu (their limits are 20 KB per request). */
#define CHANNEL_ROBOT_MAX_BYTES 18000

enum channel_kind {
    CHANNEL_WEBHOOK,  /* the signed JSON event */
    CHANNEL_WECOM,    /* 企业微信 group robot, markdown */
    CHANNEL_DINGTALK, /* 钉钉 custom robot, markdown, optionally signed (加签) */
    CHANNEL_FEISHU,   /* 飞书 custom bot, text, optionally signed */
    CHANNEL_EMAIL,    /* a mail through [smtp] */
};

bool channel_kind_parse(const char *name, enum channel_kind *out) WARN_UNUSED;
const char *channel_kind_name(enum channel_kind kind);

/* A channel as the outbox hands it over (strings borrowed). */
struct channel_target {
    enum channel_kind kind;
    const char *name;
    const char *url;       /* webhook and robots */
    const char *secret;    /* "" when none */
    const char *const *to; /* email: recipients, NULL-terminated */
};

/* The [smtp] settings of the configuration. */
struct channel_smtp {
    const char *host;
    int port;
    bool starttls;
    const char *user;
    const char *password;
    const char *from;
    const char *helo_domain; /* for Message-ID: the part of from after '@' when NULL */
};

/* A request ready for curl_client_start. Owned by the caller: channel_message_free. */
struct channel_message {
    char *url;
    char *body;
    size_t body_len;
    char *headers[6]; /* NULL-terminated */
    char **rcpt;      /* email: NULL-terminated */
    char *mail_from;
    size_t events; /* how many of the events given it carries (a digest may carry fewer) */
};

/*
 * Builds the message of events[0..n): one event, or a digest of several
 * (webhooks take one). payloads[i] is the event's payload text exactly as
 * stored (the webhook signs and sends it unchanged). A digest that would not
 * fit the kind's size limit carries the first events that fit
 * (out->events). now_ms is the wall clock, for signatures and the mail's Date.
 */
bool channel_build(const struct channel_target *ch, const struct message_event *events,
                   const char *const *payloads, size_t n, const struct message_context *mctx,
                   const struct channel_smtp *smtp, int64_t now_ms, struct channel_message *out,
                   char *err, size_t errlen) WARN_UNUSED;
void channel_message_free(struct channel_message *m);

/*
 * Whether the remote took the message: a 2xx answer, and for robots a body
 * with errcode (DingTalk, WeCom) or code (Feishu) 0. Otherwise false with
 * what the remote said in err.
 */
bool channel_answer_ok(enum channel_kind kind, const struct curl_response *res, char *err,
                       size_t errlen) WARN_UNUSED;

/* ---- the pieces, exposed for the unit tests ---- */

/*
 * The X-Incubatord-Signature header's value for a body sent at time t:
 * "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>".
 */
bool channel_webhook_signature(const char *secret, time_t t, const char *body, size_t body_len,
                               char *out, size_t outlen) WARN_UNUSED;
/* DingTalk's sign: URL-encoded (once) base64 of HMAC-SHA256(secret, ts_ms + "\n" + secret). */
bool channel_dingtalk_sign(const char *secret, int64_t ts_ms, char *out, size_t outlen) WARN_UNUSED;
/* Feishu's sign: base64 of HMAC-SHA256(key = ts_s + "\n" + secret, message = ""). */
bool channel_feishu_sign(const char *secret, int64_t ts_s, char *out, size_t outlen) WARN_UNUSED;
/* The longest prefix of s of at most max bytes that ends at a UTF-8 character boundary. */
size_t channel_utf8_prefix(const char *s, size_t max);
/* A header value as RFC 2047 encoded words (=?UTF-8?B?...?=), folded; ASCII text unchanged. */
char *channel_header_encode(const char *text);

#endif
