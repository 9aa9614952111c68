/*
 * What people read: the Chinese texts of events, one template per event type
 * and channel family, all in messages.c. Times are shown in the bureau's
 * time zone (the process's TZ, set from schedule.timezone), shares and
 * thresholds as percentages, and, when [console] public_url is set, a link to
 * the incubator's page of the console.
 *
 * Families: MSG_MARKDOWN (DingTalk, WeCom), MSG_TEXT (Feishu, the plain part
 * of a mail), MSG_HTML (the HTML part of a mail). One event makes one
 * message; several make a digest that names every one of them.
 */
#ifndef INCUBATORD_MESSAGES_H
#define INCUBATORD_MESSAGES_H

#include <stddef.h>

#include <jansson.h>

enum message_family {
    MSG_MARKDOWN, /* robots' markdown */
    MSG_TEXT,     /* plain text */
    MSG_HTML,     /* an HTML fragment (a mail's body) */
};

/* One event to show: its webhook payload and what the payload does not say. */
struct message_event {
    json_t *payload;            /* {"id", "type", "occurred_at", "data"} (borrowed) */
    const char *incubator_name; /* the name of data.incubator, or NULL */
};

struct message_context {
    const char *public_url; /* [console] public_url, "" for no link */
};

/*
 * The message for n events (n >= 1; n > 1 is a digest): its title (one line,
 * for a mail's subject or a robot's title) and its text in the family's
 * markup. Both malloc'd, owned by the caller.
 */
void message_render(enum message_family family, const struct message_event *events, size_t n,
                    const struct message_context *ctx, char **title, char **text);

/* The words for an alert rule: "科技企业场地占比低于一票否决线", ... (unknown rules: the rule). */
const char *message_rule_words(const char *rule);

/* "2026-11-26T08:00:00Z" in the bureau's zone as "2026-11-26 16:00"; false if unparsable. */
int message_local_time(const char *rfc3339, char *out, size_t len);

#endif
