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
};

enum auth_outcome {
    AUTH_OK,         /* the token is known: *out is filled */
    AUTH_REJECTED,   /* unknown, malformed or revoked: 401 */
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
 * Authenticates a bearer token. A malformed token or a cache hit is decided
 * at once (AUTH_REJECTED, or AUTH_OK with *out filled); otherwise the
 * database is asked (AUTH_PENDING) and cb is called once, later, from the
 * loop.
 */
enum auth_outcome auth_authenticate(struct auth_cache *c, struct db_pool *pool, const char *token,
                                    int timeout_ms, struct auth_token *out, auth_cb cb, void *arg);

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
