/*
 * Tokens and authentication. See auth.h.
 *
 * The cache maps a token's SHA-256 to its identity for CACHE_TTL_MS. It saves
 * the database round trip that would otherwise precede every request; the
 * lookup that fills it also records last_used_at, so that field is exact to
 * within the TTL. The cache is only consulted while the LISTEN connection is
 * up: without it, a revocation made by another daemon could go unnoticed.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incubatord/auth.h"
#include "incubatord/log.h"

#define CACHE_BUCKETS     1024
#define CACHE_TTL_MS      60000
#define CACHE_MAX_ENTRIES 100000

static const char LOOKUP_SQL[] = "SELECT id, name, admin, incubator, expires_at "
                                 "FROM api.token_lookup($1, to_timestamp($2::bigint))";

#define RATE_BUCKETS     1024
#define RATE_MAX_ENTRIES 100000

struct cache_entry {
    unsigned char hash[AUTH_HASH_LEN];
    struct auth_token token;
    int64_t expires_ms;
    struct cache_entry *next;
};

/*
 * epoch counts the revocations heard and the clearings. A lookup records it
 * when it starts and caches its answer only if it has not moved: an answer
 * the database gave before a revocation committed can arrive after that
 * revocation's NOTIFY was handled (two connections, either may be read
 * first), and caching it would keep a revoked token working for CACHE_TTL_MS.
 */
/* A token's rate-limit bucket: level requests left at at_ms. */
struct rate_entry {
    int64_t token_id;
    double level;
    int64_t at_ms;
    struct rate_entry *next;
};

struct auth_cache {
    struct cache_entry *buckets[CACHE_BUCKETS];
    int entries;
    bool trusted;
    uint64_t epoch;
    struct rate_entry *rate[RATE_BUCKETS]; /* not emptied with the cache */
    int rate_entries;
};

struct lookup {
    struct auth_cache *cache;
    unsigned char hash[AUTH_HASH_LEN];
    uint64_t epoch; /* the cache's epoch when the lookup started */
    int64_t now_s;  /* the caller's clock */
    auth_cb cb;
    void *arg;
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct auth_cache *auth_cache_new(void)
{
    return xcalloc(1, sizeof(struct auth_cache));
}

static void cache_clear(struct auth_cache *c)
{
    c->epoch++;
    for (int i = 0; i < CACHE_BUCKETS; i++) {
        struct cache_entry *e = c->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
        c->buckets[i] = NULL;
    }
    c->entries = 0;
}

static void rate_clear(struct auth_cache *c)
{
    for (int i = 0; i < RATE_BUCKETS; i++) {
        struct rate_entry *e = c->rate[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
        c->rate[i] = NULL;
    }
    c->rate_entries = 0;
}

void auth_cache_free(struct auth_cache *c)
{
    if (c == NULL)
        return;
    cache_clear(c);
    rate_clear(c);
    free(c);
}

void auth_cache_set_trusted(struct auth_cache *c, bool trusted)
{
    if (!trusted || !c->trusted)
        cache_clear(c);
    c->trusted = trusted;
}

/* Drops the entries whose token matches (by id, or by incubator when code is set). */
static void forget_matching(struct auth_cache *c, int64_t token_id, const char *code)
{
    c->epoch++;
    for (int i = 0; i < CACHE_BUCKETS; i++) {
        struct cache_entry **pe = &c->buckets[i];
        while (*pe != NULL) {
            const struct auth_token *t = &(*pe)->token;
            if (code ? !t->admin && strcmp(t->incubator, code) == 0 : t->id == token_id) {
                struct cache_entry *dead = *pe;
                *pe = dead->next;
                free(dead);
                c->entries--;
            } else {
                pe = &(*pe)->next;
            }
        }
    }
}

void auth_cache_forget(struct auth_cache *c, int64_t token_id)
{
    forget_matching(c, token_id, NULL);
}

void auth_cache_forget_incubator(struct auth_cache *c, const char *code)
{
    forget_matching(c, 0, code);
}

static unsigned bucket_of(const unsigned char hash[AUTH_HASH_LEN])
{
    return ((unsigned)hash[0] << 8 | hash[1]) % CACHE_BUCKETS;
}

static const struct cache_entry *cache_find(struct auth_cache *c,
                                            const unsigned char hash[AUTH_HASH_LEN])
{
    int64_t now = mono_ms();
    struct cache_entry **pe = &c->buckets[bucket_of(hash)];
    while (*pe != NULL) {
        struct cache_entry *e = *pe;
        if (e->expires_ms <= now) {
            *pe = e->next;
            free(e);
            c->entries--;
            continue;
        }
        /* Constant time, so response timing says nothing about near misses. */
        if (CRYPTO_memcmp(e->hash, hash, AUTH_HASH_LEN) == 0)
            return e;
        pe = &e->next;
    }
    return NULL;
}

static void cache_put(struct auth_cache *c, const unsigned char hash[AUTH_HASH_LEN],
                      const struct auth_token *t)
{
    if (!c->trusted)
        return;
    if (c->entries >= CACHE_MAX_ENTRIES)
        cache_clear(c);
    struct cache_entry *e = xcalloc(1, sizeof(*e));
    memcpy(e->hash, hash, AUTH_HASH_LEN);
    e->token = *t;
    e->expires_ms = mono_ms() + CACHE_TTL_MS;
    unsigned b = bucket_of(hash);
    e->next = c->buckets[b];
    c->buckets[b] = e;
    c->entries++;
}

bool auth_token_well_formed(const char *token)
{
    size_t plen = strlen(AUTH_TOKEN_PREFIX);
    if (strlen(token) != AUTH_TOKEN_LEN || strncmp(token, AUTH_TOKEN_PREFIX, plen) != 0)
        return false;
    for (const char *p = token + plen; *p; p++)
        if (strchr(b64url, *p) == NULL)
            return false;
    return true;
}

/*
 * OpenSSL 3 looks the algorithm up in its providers on every EVP_Digest with
 * EVP_sha256(); fetched once, it is reused on every request.
 */
void auth_sha256(const void *data, size_t len, unsigned char out[AUTH_HASH_LEN])
{
    static EVP_MD *md;
    unsigned int outlen = AUTH_HASH_LEN;
    if (md == NULL)
        md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    EVP_Digest(data, len, out, &outlen, md ? md : EVP_sha256(), NULL);
}

void auth_token_hash(const char *token, unsigned char hash[AUTH_HASH_LEN])
{
    auth_sha256(token, strlen(token), hash);
}

void auth_hash_to_bytea(const unsigned char hash[AUTH_HASH_LEN],
                        char out[2 + 2 * AUTH_HASH_LEN + 1])
{
    out[0] = '\\';
    out[1] = 'x';
    hex_encode(hash, AUTH_HASH_LEN, out + 2);
}

bool auth_token_generate(char token[AUTH_TOKEN_LEN + 1], unsigned char hash[AUTH_HASH_LEN])
{
    unsigned char raw[33];
    size_t plen = strlen(AUTH_TOKEN_PREFIX);
    char *p = token + plen;

    /* 33 bytes give 44 characters of base64url; the token keeps 43 (258 bits). */
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return false;
    memcpy(token, AUTH_TOKEN_PREFIX, plen);
    for (size_t i = 0; i < sizeof(raw); i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
        for (int k = 3; k >= 0; k--) {
            if (p - token < AUTH_TOKEN_LEN)
                *p++ = b64url[(v >> (6 * k)) & 63];
        }
    }
    *p = '\0';
    auth_token_hash(token, hash);
    return true;
}

static bool expired(const struct auth_token *t, int64_t now_s)
{
    return t->expires_at != 0 && t->expires_at <= now_s;
}

static void lookup_done(void *arg, const struct db_result *r)
{
    struct lookup *l = arg;
    struct auth_token t;

    if (r->status != DB_OK) {
        l->cb(l->arg, AUTH_DB_FAILURE, NULL, r);
        free(l);
        return;
    }
    if (db_rows(r) != 1) {
        l->cb(l->arg, AUTH_REJECTED, NULL, NULL);
        free(l);
        return;
    }
    memset(&t, 0, sizeof(t));
    t.id = strtoll(db_text(r, 0, 0), NULL, 10);
    snprintf(t.name, sizeof(t.name), "%s", db_text(r, 0, 1));
    t.admin = db_text(r, 0, 2)[0] == 't';
    snprintf(t.incubator, sizeof(t.incubator), "%s", db_text(r, 0, 3)); /* "" for an admin */
    t.expires_at = db_value(r, 0, 4) ? strtoll(db_value(r, 0, 4), NULL, 10) : 0;
    if (l->epoch == l->cache->epoch)
        cache_put(l->cache, l->hash, &t);
    l->cb(l->arg, expired(&t, l->now_s) ? AUTH_EXPIRED : AUTH_OK, &t, NULL);
    free(l);
}

enum auth_outcome auth_authenticate(struct auth_cache *c, struct db_pool *pool, const char *token,
                                    int64_t now_s, int timeout_ms, struct auth_token *out,
                                    auth_cb cb, void *arg)
{
    unsigned char hash[AUTH_HASH_LEN];
    char bytea[2 + 2 * AUTH_HASH_LEN + 1];
    char now[24];

    if (!auth_token_well_formed(token))
        return AUTH_REJECTED;
    auth_token_hash(token, hash);
    if (c->trusted) {
        const struct cache_entry *e = cache_find(c, hash);
        if (e != NULL) {
            *out = e->token;
            return expired(out, now_s) ? AUTH_EXPIRED : AUTH_OK;
        }
    }
    struct lookup *l = xcalloc(1, sizeof(*l));
    l->cache = c;
    memcpy(l->hash, hash, AUTH_HASH_LEN);
    l->epoch = c->epoch;
    l->now_s = now_s;
    l->cb = cb;
    l->arg = arg;
    auth_hash_to_bytea(hash, bytea);
    snprintf(now, sizeof(now), "%lld", (long long)now_s);
    const char *values[] = {bytea, now};
    db_query(pool, LOOKUP_SQL, 2, values, timeout_ms, lookup_done, l);
    return AUTH_PENDING;
}

/* Forgets the buckets that have refilled: they hold no state a new one would not. */
static void rate_prune(struct auth_cache *c, int per_minute, int burst, int64_t now_ms)
{
    for (int i = 0; i < RATE_BUCKETS; i++) {
        struct rate_entry **pe = &c->rate[i];
        while (*pe != NULL) {
            struct rate_entry *e = *pe;
            if (e->level + (double)(now_ms - e->at_ms) * per_minute / 60000.0 >= burst) {
                *pe = e->next;
                free(e);
                c->rate_entries--;
            } else {
                pe = &e->next;
            }
        }
    }
}

bool auth_rate_take(struct auth_cache *c, int64_t token_id, int per_minute, int burst,
                    int64_t now_ms, int *retry_after_s)
{
    unsigned b = (unsigned)((uint64_t)token_id % RATE_BUCKETS);
    struct rate_entry *e = c->rate[b];

    *retry_after_s = 0;
    if (per_minute <= 0)
        return true;
    while (e != NULL && e->token_id != token_id)
        e = e->next;
    if (e == NULL) {
        if (c->rate_entries >= RATE_MAX_ENTRIES)
            rate_prune(c, per_minute, burst, now_ms);
        e = xcalloc(1, sizeof(*e));
        e->token_id = token_id;
        e->level = burst;
        e->at_ms = now_ms;
        e->next = c->rate[b];
        c->rate[b] = e;
        c->rate_entries++;
    }
    /* Refilled since the last request; a smaller burst after a reload caps it. */
    e->level += (double)(now_ms - e->at_ms) * per_minute / 60000.0;
    if (e->level > burst)
        e->level = burst;
    e->at_ms = now_ms;
    if (e->level >= 1.0) {
        e->level -= 1.0;
        return true;
    }
    double wait_ms = (1.0 - e->level) * 60000.0 / per_minute;
    *retry_after_s = (int)((wait_ms + 999.0) / 1000.0);
    if (*retry_after_s < 1)
        *retry_after_s = 1;
    return false;
}
