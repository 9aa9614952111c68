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
#include "incubatord/http.h"
#include "incubatord/log.h"
#include "incubatord/routes.h"
#include "incubatord/server.h"

const struct field api_token_create_body[] = {
    {"name", FT_TEXT, F_REQUIRED, .max = 100},
    {"expires_in_days", FT_INT, 0, .min = 1, .max = 3650},
    {NULL},
};

const struct field api_token_rotate_body[] = {
    {"grace_hours", FT_INT, F_REQUIRED, .min = 0, .max = 168},
    {NULL},
};

static void forget_token(struct req *r)
{
    const char *id = req_param(r, "id");
    /* A dry run changed nothing: the token stays as it is cached. */
    if (id != NULL && !r->dry_run)
        auth_cache_forget(r->srv->auth, strtoll(id, NULL, 10));
}

static void add_secret(struct req *r, int status, json_t *doc)
{
    /* A replayed creation (Idempotency-Key) does not show the secret again. */
    if (status == 201 && doc != NULL && r->secret != NULL && !r->replayed)
        json_object_set_new(doc, "token", json_string(r->secret));
    /* A rotation: the old token's expiry moved. */
    forget_token(r);
}

/* POST /v1/incubators/{code}/tokens and POST /v1/tokens/{id}/rotate: a new secret. */
void api_token_create(struct req *r)
{
    char token[AUTH_TOKEN_LEN + 1];
    unsigned char hash[AUTH_HASH_LEN];
    char bytea[2 + 2 * AUTH_HASH_LEN + 1];
    json_t *args = req_build_args(r);

    if (args == NULL)
        return;
    if (!auth_token_generate(token, hash)) {
        json_decref(args);
        log_req(LOG_ERR, r->id, "RAND_bytes failed: no token made");
        http_reply_problem(r, 500, "could not make a random token", NULL);
        return;
    }
    auth_hash_to_bytea(hash, bytea);
    json_object_set_new(args, "hash", json_string(bytea));
    r->secret = xstrdup(token);
    explicit_bzero(token, sizeof(token));
    r->on_success = add_secret;
    req_call_api(r, r->route->fn, args);
}

static void forget_revoked(struct req *r, int status, json_t *doc)
{
    (void)status;
    (void)doc;
    /* Fails from the next request on, here; other daemons hear it by NOTIFY. */
    forget_token(r);
}

void api_token_revoke(struct req *r)
{
    json_t *args = req_build_args(r);
    if (args == NULL)
        return;
    r->on_success = forget_revoked;
    req_call_api(r, "token_revoke", args);
}
