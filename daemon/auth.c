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

static const char LOOKUP_SQL[] = "SELECT id, name, admin, incubator FROM api.token_lookup($1)";

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
struct auth_cache {
    struct cache_entry *buckets[CACHE_BUCKETS];
    int entries;
    bool trusted;
    uint64_t epoch;
};

struct lookup {
    struct auth_cache *cache;
    unsigned char hash[AUTH_HASH_LEN];
    uint64_t epoch; /* the cache's epoch when the lookup started */
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

void auth_cache_free(struct auth_cache *c)
{
    if (c == NULL)
        return;
    cache_clear(c);
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
    if (l->epoch == l->cache->epoch)
        cache_put(l->cache, l->hash, &t);
    l->cb(l->arg, AUTH_OK, &t, NULL);
    free(l);
}

enum auth_outcome auth_authenticate(struct auth_cache *c, struct db_pool *pool, const char *token,
                                    int timeout_ms, struct auth_token *out, auth_cb cb, void *arg)
{
    unsigned char hash[AUTH_HASH_LEN];
    char bytea[2 + 2 * AUTH_HASH_LEN + 1];

    if (!auth_token_well_formed(token))
        return AUTH_REJECTED;
    auth_token_hash(token, hash);
    if (c->trusted) {
        const struct cache_entry *e = cache_find(c, hash);
        if (e != NULL) {
            *out = e->token;
            return AUTH_OK;
        }
    }
    struct lookup *l = xcalloc(1, sizeof(*l));
    l->cache = c;
    memcpy(l->hash, hash, AUTH_HASH_LEN);
    l->epoch = c->epoch;
    l->cb = cb;
    l->arg = arg;
    auth_hash_to_bytea(hash, bytea);
    const char *values[] = {bytea};
    db_query(pool, LOOKUP_SQL, 1, values, timeout_ms, lookup_done, l);
    return AUTH_PENDING;
}
