/*
 * Bearer tokens: generation, hashing, and the authentication of requests.
 *
 * A token is "ikd_" followed by 43 base64url characters (32 random bytes
 * from RAND_bytes). Only its SHA-256 is stored. Lookups go through a cache
 * that is trusted only while the LISTEN connection is up: a revocation
 * evicts the token here at once and, through NOTIFY incubatord_tokens, at
 * every other daemon within a second.
 */
#ifndef INCUBATORD_AUTH_H
#define INCUBATORD_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "incubatord/common.h"
#include "incubatord/db.h"

#define AUTH_TOKEN_PREFIX "ikd_"
#define AUTH_TOKEN_LEN    47 /* prefix + 43 base64url characters */
#define AUTH_HASH_LEN     32

struct auth_token {
    int64_t id;
    char name[129];
    bool admin;         /* the bureau; else bound to one incubator */
    char incubator[33]; /* the incubator's code, "" for admin */
    int64_t expires_at; /* Unix time from which it fails, 0 for never */
};

enum auth_outcome {
    AUTH_OK,         /* the token is known: *out is filled */
    AUTH_REJECTED,   /* unknown, malformed or revoked: 401 */
    AUTH_EXPIRED,    /* known, but expired by the caller's clock: 401; *out is filled */
    AUTH_PENDING,    /* the database is being asked: the callback will tell */
    AUTH_DB_FAILURE, /* (callback only) the database could not be asked */
};

typedef void (*auth_cb)(void *arg, enum auth_outcome outcome, const struct auth_token *token,
                        const struct db_result *failure);

struct auth_cache;

struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *c);
/* Whether the cache may be used (the LISTEN connection is up); false also clears it. */
void auth_cache_set_trusted(struct auth_cache *c, bool trusted);
/* Forgets a token (revoked here or elsewhere). */
void auth_cache_forget(struct auth_cache *c, int64_t token_id);
/* Forgets every token of an incubator (it closed). */
void auth_cache_forget_incubator(struct auth_cache *c, const char *code);

/*
 * Authenticates a bearer token at the caller's clock now_s (Unix time: the
 * daemon passes its own, so expiry is tested with any time). A malformed
 * token or a cache hit is decided at once (AUTH_REJECTED, or AUTH_OK or
 * AUTH_EXPIRED with *out filled); otherwise the database is asked
 * (AUTH_PENDING) and cb is called once, later, from the loop.
 */
enum auth_outcome auth_authenticate(struct auth_cache *c, struct db_pool *pool, const char *token,
                                    int64_t now_s, int timeout_ms, struct auth_token *out,
                                    auth_cb cb, void *arg);

/*
 * The rate limit: a token bucket per token id, holding up to burst requests
 * and refilled with per_minute a minute, on the monotonic clock now_ms.
 * Takes one request from the token's bucket and returns true, or returns
 * false when it is empty, with *retry_after_s the whole seconds (at least 1)
 * until a request is allowed again. per_minute 0 means no limit.
 */
bool auth_rate_take(struct auth_cache *c, int64_t token_id, int per_minute, int burst,
                    int64_t now_ms, int *retry_after_s) WARN_UNUSED;

/* Makes a new token and its hash. */
bool auth_token_generate(char token[AUTH_TOKEN_LEN + 1],
                         unsigned char hash[AUTH_HASH_LEN]) WARN_UNUSED;
/* Whether the text has the shape of a token (prefix, length, alphabet). */
bool auth_token_well_formed(const char *token);
void auth_token_hash(const char *token, unsigned char hash[AUTH_HASH_LEN]);
/* SHA-256 of any bytes (a token, a request body). */
void auth_sha256(const void *data, size_t len, unsigned char out[AUTH_HASH_LEN]);
/* "\\x" + 64 hex digits + NUL: a bytea parameter in text form. */
void auth_hash_to_bytea(const unsigned char hash[AUTH_HASH_LEN],
                        char out[2 + 2 * AUTH_HASH_LEN + 1]);

#endif
