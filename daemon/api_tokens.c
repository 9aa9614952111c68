/*
 * Incubator tokens over the API. The secret is made here, in C, and only its
 * hash goes to the database; the answer gets the secret added on its way out.
 */
#include <stdlib.h>
#include <string.h>

#include "incubatord/api.h"
#include "incubatord/auth.h"
#include "incubatord/http.h"
#include "incubatord/log.h"
#include "incubatord/server.h"

const struct field api_token_create_body[] = {
    {"name", FT_TEXT, F_REQUIRED, .max = 100},
    {NULL},
};

static void add_secret(struct req *r, int status, json_t *doc)
{
    /* A replayed creation (Idempotency-Key) does not show the secret again. */
    if (status == 201 && doc != NULL && r->secret != NULL && !r->replayed)
        json_object_set_new(doc, "token", json_string(r->secret));
}

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
    req_call_api(r, "token_create", args);
}

static void forget_revoked(struct req *r, int status, json_t *doc)
{
    (void)status;
    (void)doc;
    /* Fails from the next request on, here; other daemons hear it by NOTIFY. */
    auth_cache_forget(r->srv->auth, strtoll(req_param(r, "id"), NULL, 10));
}

void api_token_revoke(struct req *r)
{
    json_t *args = req_build_args(r);
    if (args == NULL)
        return;
    r->on_success = forget_revoked;
    req_call_api(r, "token_revoke", args);
}
