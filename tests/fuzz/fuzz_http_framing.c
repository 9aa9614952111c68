/*
 * Request framing (http_framing.c), which sees a connection's bytes before
 * evhttp does: any bytes, fed whole and then in pieces whose sizes the input
 * chooses (as a slow client or the network would split them). Properties:
 * the bytes skipped and passed on never exceed the input and are taken in
 * order; the same events come out however the input is split; a refusal has
 * a status among those the contract names and a detail; a head passed on
 * ends with an empty line, starts with an upper-case known method and says
 * HTTP/1.0 or HTTP/1.1.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "incubatord/http_framing.h"

#define MAX_EVENTS 256

struct trace {
    int n;
    int events[MAX_EVENTS]; /* event, or 1000 + status for a refusal */
    size_t taken;           /* bytes skipped or passed */
};

static void check_head(const char *head, size_t len)
{
    FUZZ_ASSERT(len >= 16);
    FUZZ_ASSERT(head[len - 1] == '\n');
    FUZZ_ASSERT(head[len - 2] == '\n' || (head[len - 2] == '\r' && head[len - 3] == '\n'));
    const char *sp = memchr(head, ' ', len);
    FUZZ_ASSERT(sp != NULL && sp > head);
    for (const char *c = head; c < sp; c++)
        FUZZ_ASSERT(*c >= 'A' && *c <= 'Z');
    const char *eol = memchr(head, '\n', len);
    size_t n = (size_t)(eol - head) - (eol[-1] == '\r');
    FUZZ_ASSERT(n >= 8 && (memcmp(head + n - 8, "HTTP/1.1", 8) == 0 ||
                           memcmp(head + n - 8, "HTTP/1.0", 8) == 0));
}

/* Feeds data in pieces of the sizes cuts gives (cyclically; 0 means all at once). */
static void run(const uint8_t *data, size_t size, const uint8_t *cuts, size_t ncuts,
                struct trace *t)
{
    struct http_framing f;
    size_t have = 0; /* bytes the "network" has delivered */
    size_t pos = 0;  /* bytes taken (skipped or passed) */
    size_t c = 0;
    http_framing_init(&f, 100000);
    memset(t, 0, sizeof(*t));
    while (pos < size || have < size) {
        size_t piece = ncuts ? (size_t)cuts[c++ % ncuts] + 1 : size;
        have = have + piece < size ? have + piece : size;
        for (;;) {
            struct http_scan s;
            bool head = f.state == HF_HEAD;
            http_framing_scan(&f, (const char *)data + pos, have - pos, &s);
            FUZZ_ASSERT(s.skip + s.pass <= have - pos);
            if (s.event == HS_REFUSED) {
                FUZZ_ASSERT(s.pass == 0);
                FUZZ_ASSERT(s.status == 400 || s.status == 413 || s.status == 417 ||
                            s.status == 431 || s.status == 501 || s.status == 505);
                FUZZ_ASSERT(s.detail != NULL && s.detail[0] != '\0');
                if (t->n < MAX_EVENTS)
                    t->events[t->n++] = 1000 + s.status;
                t->taken = pos + s.skip;
                return;
            }
            if (head && (s.event == HS_HEAD_DONE || s.event == HS_REQUEST_DONE))
                check_head((const char *)data + pos + s.skip, s.pass);
            pos += s.skip + s.pass;
            if (s.event != HS_NEED_MORE && t->n < MAX_EVENTS)
                t->events[t->n++] = s.event;
            if (s.event == HS_NEED_MORE && s.skip == 0 && s.pass == 0)
                break;
        }
        if (have == size)
            break;
    }
    t->taken = pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trace whole, pieces;
    /* The first 8 bytes choose the piece sizes; the rest is the stream. */
    size_t ncuts = size < 8 ? size : 8;
    run(data + ncuts, size - ncuts, NULL, 0, &whole);
    run(data + ncuts, size - ncuts, data, ncuts, &pieces);
    FUZZ_ASSERT(whole.n == pieces.n);
    FUZZ_ASSERT(memcmp(whole.events, pieces.events, sizeof(int) * (size_t)whole.n) == 0);
    FUZZ_ASSERT(whole.taken == pieces.taken);
    return 0;
}
