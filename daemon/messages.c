/*
 * The texts people read, in Chinese. See messages.h.
 *
 * Every event type has one template below (fill_*): a title and a list of
 * labelled lines. The families only differ in markup: render_doc writes the
 * same document as markdown, plain text or HTML. A digest lists one line per
 * event (digest_line), the worst first as they came.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "incubatord/common.h"
#include "incubatord/messages.h"

#define MAX_LINES 12

struct doc {
    char title[512];
    struct {
        const char *label;
        char value[512];
    } lines[MAX_LINES];
    int nlines;
    char link[512]; /* the console page, or "" */
    char footer[128];
};

/* ---- words ---- */

const char *message_rule_words(const char *rule)
{
    static const struct {
        const char *rule, *words;
    } words[] = {
        {"space_share_breach", "科技企业场地占比低于一票否决线"},
        {"space_share_warning", "科技企业场地占比接近一票否决线"},
        {"stale_data", "数据长期未更新"}, /* with the days: alert_words() */
        {"duplicate_enterprise", "同一企业在两家孵化器在孵"},
        {"overdue_tenant", "在孵企业超期"},
        {"token_expiring", "访问令牌即将过期"},
    };
    for (size_t i = 0; rule && i < ARRAY_LEN(words); i++)
        if (strcmp(words[i].rule, rule) == 0)
            return words[i].words;
    return rule ? rule : "告警";
}

static const char *severity_words(const char *severity)
{
    if (severity == NULL)
        return "提示";
    if (strcmp(severity, "critical") == 0)
        return "严重";
    if (strcmp(severity, "warning") == 0)
        return "警告";
    return "提示";
}

int message_local_time(const char *rfc3339, char *out, size_t len)
{
    struct tm tm = {0};
    if (rfc3339 == NULL || strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm) == NULL) {
        snprintf(out, len, "-");
        return 0;
    }
    time_t t = timegm(&tm);
    struct tm local;
    localtime_r(&t, &local);
    strftime(out, len, "%Y-%m-%d %H:%M", &local);
    return 1;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* A ratio (0..1) as a percentage with two decimals: "49.50%". */
static void percent(json_t *v, char *out, size_t len)
{
    if (!json_is_number(v)) {
        snprintf(out, len, "无数据");
        return;
    }
    snprintf(out, len, "%.2f%%", json_number_value(v) * 100.0);
}

static long long integer(json_t *v)
{
    return json_is_number(v) ? (long long)json_number_value(v) : 0;
}

/* Fen as yuan with thousands separators, exactly: 123456789 -> "1,234,567.89". */
static void yuan(json_int_t fen, char *out, size_t len)
{
    char digits[32];
    bool negative = fen < 0;
    unsigned long long f = negative ? (unsigned long long)(-fen) : (unsigned long long)fen;
    int n = snprintf(digits, sizeof(digits), "%llu", f / 100);
    size_t w = 0;
    if (negative && w + 1 < len)
        out[w++] = '-';
    for (int i = 0; i < n && w + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[w++] = ',';
        out[w++] = digits[i];
    }
    snprintf(out + w, len - w, ".%02llu", f % 100);
}

static void add_line(struct doc *d, const char *label, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void add_line(struct doc *d, const char *label, const char *fmt, ...)
{
    if (d->nlines >= MAX_LINES)
        return;
    va_list ap;
    va_start(ap, fmt);
    d->lines[d->nlines].label = label;
    vsnprintf(d->lines[d->nlines].value, sizeof(d->lines[0].value), fmt, ap);
    va_end(ap);
    d->nlines++;
}

static void incubator_line(struct doc *d, const struct message_event *e, json_t *data)
{
    const char *code = str(data, "incubator");
    if (e->incubator_name && e->incubator_name[0])
        add_line(d, "孵化器", "%s（%s）", e->incubator_name, code);
    else
        add_line(d, "孵化器", "%s", code);
}

static void console_link(struct doc *d, const struct message_context *ctx, const char *code)
{
    if (ctx->public_url == NULL || ctx->public_url[0] == '\0' || code[0] == '\0')
        return;
    size_t n = strlen(ctx->public_url);
    const char *slash = n > 0 && ctx->public_url[n - 1] == '/' ? "" : "/";
    snprintf(d->link, sizeof(d->link), "%s%sconsole/#/incubators/%s", ctx->public_url, slash, code);
}

/* ---- the templates, one per event type ---- */

/* The rule in words; stale data says after how many days ("数据超过35天未更新"). */
static const char *alert_words(json_t *data, char *buf, size_t len)
{
    const char *rule = str(data, "rule");
    if (strcmp(rule, "stale_data") == 0 && json_is_number(json_object_get(data, "threshold"))) {
        snprintf(buf, len, "数据超过%lld天未更新", integer(json_object_get(data, "threshold")));
        return buf;
    }
    return message_rule_words(rule);
}

/* What the alert is about, in words, with its figures. */
static void alert_figures(struct doc *d, json_t *data)
{
    const char *rule = str(data, "rule");
    char v[32], t[32];
    if (strcmp(rule, "space_share_breach") == 0 || strcmp(rule, "space_share_warning") == 0) {
        percent(json_object_get(data, "value"), v, sizeof(v));
        percent(json_object_get(data, "threshold"), t, sizeof(t));
        add_line(d, "科技企业场地占比", "%s（%s %s）", v,
                 strcmp(rule, "space_share_breach") == 0 ? "一票否决线" : "预警线", t);
    } else if (strcmp(rule, "stale_data") == 0) {
        add_line(d, "数据更新", "已 %lld 天未更新（超过 %lld 天即为过期）",
                 integer(json_object_get(data, "value")),
                 integer(json_object_get(data, "threshold")));
    } else if (strcmp(rule, "overdue_tenant") == 0) {
        add_line(d, "在孵企业", "%s，已超期 %lld 天", str(data, "subject"),
                 integer(json_object_get(data, "value")));
    } else if (strcmp(rule, "token_expiring") == 0) {
        long long days = integer(json_object_get(data, "value"));
        if (days > 0)
            add_line(d, "访问令牌", "%s，%lld 天后过期，请及时轮换", str(data, "subject"), days);
        else
            add_line(d, "访问令牌", "%s，已过期，请轮换", str(data, "subject"));
    } else if (strcmp(rule, "duplicate_enterprise") == 0) {
        add_line(d, "统一社会信用代码", "%s，同时在 %lld 家孵化器在孵", str(data, "subject"),
                 integer(json_object_get(data, "value")));
    } else if (str(data, "subject")[0] != '\0') {
        add_line(d, "对象", "%s", str(data, "subject"));
    }
}

static void fill_alert(struct doc *d, const char *type, const struct message_event *e,
                       const struct message_context *ctx)
{
    json_t *data = json_object_get(e->payload, "data");
    char wbuf[64];
    const char *words = alert_words(data, wbuf, sizeof(wbuf));
    const char *name =
        e->incubator_name && e->incubator_name[0] ? e->incubator_name : str(data, "incubator");
    char when[32];
    if (strcmp(type, "alert.resolved") == 0) {
        snprintf(d->title, sizeof(d->title), "【已恢复】%s：%s", words, name);
    } else if (strcmp(type, "alert.repeat") == 0) {
        snprintf(d->title, sizeof(d->title), "【%s·仍未解除】%s：%s",
                 severity_words(str(data, "severity")), words, name);
    } else {
        snprintf(d->title, sizeof(d->title), "【%s】%s：%s", severity_words(str(data, "severity")),
                 words, name);
    }
    incubator_line(d, e, data);
    add_line(d, "情况", "%s%s", words, strcmp(type, "alert.resolved") == 0 ? "，已恢复" : "");
    alert_figures(d, data);
    message_local_time(str(data, "started_at"), when, sizeof(when));
    add_line(d, "开始时间", "%s", when);
    if (strcmp(type, "alert.resolved") == 0) {
        message_local_time(str(data, "resolved_at"), when, sizeof(when));
        add_line(d, "恢复时间", "%s", when);
    }
    if (str(data, "message")[0] != '\0')
        add_line(d, "说明", "%s", str(data, "message"));
    console_link(d, ctx, str(data, "incubator"));
}

static void fill_payout(struct doc *d, const char *type, const struct message_event *e)
{
    json_t *data = json_object_get(e->payload, "data");
    json_t *vetoed = json_object_get(data, "vetoed");
    char total[48], list[400] = "";
    size_t w = 0, i;
    json_t *code;
    bool approved = strcmp(type, "payout_run.approved") == 0;
    snprintf(d->title, sizeof(d->title), "%s：%s", approved ? "奖励已批准" : "奖励核算完成",
             str(data, "period"));
    add_line(d, "期间", "%s", str(data, "period"));
    yuan(json_integer_value(json_object_get(data, "total_fen")), total, sizeof(total));
    add_line(d, "奖励合计", "%s 元", total);
    json_array_foreach(vetoed, i, code)
    {
        w += (size_t)snprintf(list + w, sizeof(list) - w, "%s%s", i ? "、" : "",
                              json_string_value(code) ? json_string_value(code) : "?");
        if (w >= sizeof(list))
            break;
    }
    add_line(d, "一票否决", "%s", json_array_size(vetoed) ? list : "无");
    add_line(d, "状态", "%s",
             strcmp(str(data, "status"), "approved") == 0 ? "已批准"
             : approved                                   ? "已批准"
                                                          : "待审核");
}

static void fill_test(struct doc *d, const struct message_event *e)
{
    json_t *data = json_object_get(e->payload, "data");
    char when[32];
    snprintf(d->title, sizeof(d->title), "测试消息：通知渠道 %s", str(data, "channel"));
    add_line(d, "说明", "这是一条测试消息：孵化器告警将发送到这里。");
    message_local_time(str(e->payload, "occurred_at"), when, sizeof(when));
    add_line(d, "时间", "%s", when);
}

static void fill_other(struct doc *d, const char *type, const struct message_event *e)
{
    char when[32];
    snprintf(d->title, sizeof(d->title), "事件：%s", type);
    message_local_time(str(e->payload, "occurred_at"), when, sizeof(when));
    add_line(d, "时间", "%s", when);
}

static void fill_one(struct doc *d, const struct message_event *e,
                     const struct message_context *ctx)
{
    const char *type = str(e->payload, "type");
    if (strncmp(type, "alert.", 6) == 0)
        fill_alert(d, type, e, ctx);
    else if (strncmp(type, "payout_run.", 11) == 0)
        fill_payout(d, type, e);
    else if (strcmp(type, "channel.test") == 0)
        fill_test(d, e);
    else
        fill_other(d, type, e);
    snprintf(d->footer, sizeof(d->footer), "事件编号：%s", str(e->payload, "id"));
}

/* One line of a digest: "【严重】名称（代码）：科技企业场地占比低于一票否决线 40.00%，12-02 10:41".
 */
static void digest_line(char *out, size_t len, const struct message_event *e)
{
    json_t *data = json_object_get(e->payload, "data");
    const char *type = str(e->payload, "type");
    char when[32], figure[48] = "";
    message_local_time(str(e->payload, "occurred_at"), when, sizeof(when));
    if (strncmp(type, "alert.", 6) != 0) {
        struct doc d = {0};
        fill_one(&d, e, &(struct message_context){""});
        snprintf(out, len, "%s，%s", d.title, when);
        return;
    }
    const char *rule = str(data, "rule");
    char wbuf[64];
    const char *words = alert_words(data, wbuf, sizeof(wbuf));
    if (strcmp(rule, "space_share_breach") == 0 || strcmp(rule, "space_share_warning") == 0) {
        figure[0] = ' ';
        percent(json_object_get(data, "value"), figure + 1, sizeof(figure) - 1);
    } else if (str(data, "subject")[0] != '\0') {
        snprintf(figure, sizeof(figure), " %s", str(data, "subject"));
    }
    const char *tag = strcmp(type, "alert.resolved") == 0 ? "已恢复"
                      : strcmp(type, "alert.repeat") == 0 ? "仍未解除"
                                                          : severity_words(str(data, "severity"));
    if (e->incubator_name && e->incubator_name[0])
        snprintf(out, len, "【%s】%s（%s）：%s%s，%s", tag, e->incubator_name,
                 str(data, "incubator"), words, figure, when);
    else
        snprintf(out, len, "【%s】%s：%s%s，%s", tag, str(data, "incubator"), words, figure, when);
}

/* ---- markup ---- */

static void html_escaped(struct evbuffer *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            evbuffer_add(b, "&lt;", 4);
            break;
        case '>':
            evbuffer_add(b, "&gt;", 4);
            break;
        case '&':
            evbuffer_add(b, "&amp;", 5);
            break;
        case '"':
            evbuffer_add(b, "&quot;", 6);
            break;
        default:
            evbuffer_add(b, s, 1);
        }
    }
}

static char *take(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = xmalloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static char *render_doc(enum message_family family, const struct doc *d)
{
    struct evbuffer *b = evbuffer_new();
    switch (family) {
    case MSG_MARKDOWN:
        evbuffer_add_printf(b, "#### %s\n\n", d->title);
        for (int i = 0; i < d->nlines; i++)
            evbuffer_add_printf(b, "- **%s**：%s\n", d->lines[i].label, d->lines[i].value);
        if (d->link[0])
            evbuffer_add_printf(b, "\n[在控制台查看](%s)\n", d->link);
        evbuffer_add_printf(b, "\n%s\n", d->footer);
        break;
    case MSG_TEXT:
        evbuffer_add_printf(b, "%s\n", d->title);
        for (int i = 0; i < d->nlines; i++)
            evbuffer_add_printf(b, "%s：%s\n", d->lines[i].label, d->lines[i].value);
        if (d->link[0])
            evbuffer_add_printf(b, "控制台：%s\n", d->link);
        evbuffer_add_printf(b, "%s\n", d->footer);
        break;
    case MSG_HTML:
        evbuffer_add_printf(b, "<h3>");
        html_escaped(b, d->title);
        evbuffer_add_printf(b, "</h3>\n<table>\n");
        for (int i = 0; i < d->nlines; i++) {
            evbuffer_add_printf(b, "<tr><th align=\"left\">");
            html_escaped(b, d->lines[i].label);
            evbuffer_add_printf(b, "</th><td>");
            html_escaped(b, d->lines[i].value);
            evbuffer_add_printf(b, "</td></tr>\n");
        }
        evbuffer_add_printf(b, "</table>\n");
        if (d->link[0]) {
            evbuffer_add_printf(b, "<p><a href=\"");
            html_escaped(b, d->link);
            evbuffer_add_printf(b, "\">在控制台查看</a></p>\n");
        }
        evbuffer_add_printf(b, "<p><small>");
        html_escaped(b, d->footer);
        evbuffer_add_printf(b, "</small></p>\n");
        break;
    }
    return take(b);
}

static char *render_digest(enum message_family family, const struct message_event *events, size_t n,
                           const struct message_context *ctx, const char *title)
{
    struct evbuffer *b = evbuffer_new();
    char line[768];
    if (family == MSG_MARKDOWN)
        evbuffer_add_printf(b, "#### %s\n\n", title);
    else if (family == MSG_TEXT)
        evbuffer_add_printf(b, "%s\n", title);
    else
        evbuffer_add_printf(b, "<h3>%s</h3>\n<ul>\n", title);
    for (size_t i = 0; i < n; i++) {
        digest_line(line, sizeof(line), &events[i]);
        if (family == MSG_MARKDOWN) {
            evbuffer_add_printf(b, "- %s\n", line);
        } else if (family == MSG_TEXT) {
            evbuffer_add_printf(b, "%zu. %s\n", i + 1, line);
        } else {
            evbuffer_add_printf(b, "<li>");
            html_escaped(b, line);
            evbuffer_add_printf(b, "</li>\n");
        }
    }
    if (family == MSG_HTML)
        evbuffer_add_printf(b, "</ul>\n");
    if (ctx->public_url && ctx->public_url[0]) {
        size_t len = strlen(ctx->public_url);
        const char *slash = len > 0 && ctx->public_url[len - 1] == '/' ? "" : "/";
        if (family == MSG_MARKDOWN)
            evbuffer_add_printf(b, "\n[在控制台查看](%s%sconsole/#/alerts)\n", ctx->public_url,
                                slash);
        else if (family == MSG_TEXT)
            evbuffer_add_printf(b, "控制台：%s%sconsole/#/alerts\n", ctx->public_url, slash);
        else {
            evbuffer_add_printf(b, "<p><a href=\"");
            html_escaped(b, ctx->public_url);
            evbuffer_add_printf(b, "%sconsole/#/alerts\">在控制台查看</a></p>\n", slash);
        }
    }
    return take(b);
}

void message_render(enum message_family family, const struct message_event *events, size_t n,
                    const struct message_context *ctx, char **title, char **text)
{
    if (n == 1) {
        struct doc *d = xcalloc(1, sizeof(*d));
        fill_one(d, &events[0], ctx);
        *title = xstrdup(d->title);
        *text = render_doc(family, d);
        free(d);
        return;
    }
    char t[128];
    snprintf(t, sizeof(t), "通知汇总：%zu 条事件", n);
    *title = xstrdup(t);
    *text = render_digest(family, events, n, ctx, t);
}
