/*
 * Tokens over the API: creation and rotation make a secret here, in C, and
 * only its hash goes to the database; the answer gets the secret added on
 * its way out. Rotation and revocation forget the old token in this daemon's
 * cache at once (other daemons hear of it by NOTIFY incubatord_tokens).
 */
#include <stdlib.h>
#include <string.h>

#include "incubatord/api.h"
#include "incubatord/auth.h"

const struct field api_token_create_body[] = {
    {"name", FT_TEXT, F_REQUIRED, .max = 100},
    {"expires_in_days", FT_INT, 0, .min = 1, .max = 3650},
    {NULL},
};

const struct field api_token_rotate_body[] = {
    {"grace_hours", FT_INT, F_REQUIRED, .min = 0, .max = 168},
    {NULL},
};

bool api_token_create_prepare(json_t *args, json_t *keep)
{
    char token[AUTH_TOKEN_LEN + 1];
    unsigned char hash[AUTH_HASH_LEN];
    char bytea[2 + 2 * AUTH_HASH_LEN + 1];

    if (!auth_token_generate(token, hash))
        return false;
    auth_hash_to_bytea(hash, bytea);
    json_object_set_new(args, "hash", json_string(bytea));
    json_object_set_new(keep, "secret", json_string(token));
    explicit_bzero(token, sizeof(token));
    return true;
}

void api_token_create_after(const struct route_answer *a, json_t *doc, json_t *effects)
{
    json_t *secret = json_object_get(a->keep, "secret");
    (void)effects;
    /* A replayed creation (Idempotency-Key) does not show the secret again. */
    if (a->status == 201 && doc != NULL && json_is_string(secret) && !a->replayed)
        json_object_set(doc, "token", secret);
}

/* The token of the path is forgotten here (the pipeline skips this for a dry run). */
static void forget_token(const struct route_answer *a, json_t *effects)
{
    const char *id = json_string_value(json_object_get(a->args, "id"));
    if (id != NULL)
        json_object_set_new(effects, ROUTE_EFFECT_FORGET_TOKEN,
                            json_integer(strtoll(id, NULL, 10)));
}

void api_token_rotate_after(const struct route_answer *a, json_t *doc, json_t *effects)
{
    api_token_create_after(a, doc, effects);
    /* The old token's expiry moved: with no grace it fails from the next request on. */
    forget_token(a, effects);
}

void api_token_revoke_after(const struct route_answer *a, json_t *doc, json_t *effects)
{
    (void)doc;
    /* Fails from the next request on, here; other daemons hear it by NOTIFY. */
    forget_token(a, effects);
}
