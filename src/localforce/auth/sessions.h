/*
 * sessions: the session table behind auth.h: access tokens, refresh tokens and
 * authorization codes in one hash table keyed by the token, guarded by one
 * mutex (requests come from several HTTP threads); issuing, PKCE redemption,
 * lookup, revocation, expiry, and auth_check() on a request's Authorization
 * header. Expired entries are dropped when a lookup meets them and by a sweep
 * every few hundred insertions. Everything is in memory: a restart logs
 * everyone out, and clients recover by logging in again.
 *
 * Lock order: the store's lock is never requested while the table's mutex is
 * held (user and app data are copied out of the store first).
 */
#ifndef SESSIONS_H
#define SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include "auth.h"

#define AUTH_TOKEN_MAX 192 /* buffer for any token issued or accepted */
#define ACCESS_RANDOM  96  /* "<org15>!" + 96 alphanumerics */
#define REFRESH_RANDOM 83  /* "5Aep" + 83, the shape of Salesforce's */
#define CODE_RANDOM    60  /* "aPrx" + 60 */
#define CODE_TTL_MS    (10 * 60 * 1000)
#define DEFAULT_TTL_S  7200
#define MAX_TOKENS     200000 /* beyond this the soonest-expiring goes */
#define SWEEP_EVERY    256    /* insertions between sweeps */
#define FIELD_MAX      1024   /* form fields and query parameters */
#define SECRET_MAX     512
#define SOAP_MAX_BYTES (64 * 1024)
#define SCOPE_DEFAULT  "full api"
#define SCOPE_REFRESH  "full api refresh_token"
#define CT_TEXT        "text/plain;charset=UTF-8"
#define CT_FORM        "application/x-www-form-urlencoded;charset=UTF-8"

/* Sizes of the buffers auth_soap_parse() fills (test hook, see below). */
#define AUTH_SOAP_OP_MAX   64
#define AUTH_SOAP_USER_MAX 256
#define AUTH_SOAP_PASS_MAX 1024
#define AUTH_SOAP_SID_MAX  AUTH_TOKEN_MAX
#define AUTH_SIG_MAX       64

/* ----- test hooks -------------------------------------------------------- */
/*
 * Internal functions with external linkage so tests/unit/test_auth.c can reach
 * them without an HTTP server. They are not part of auth.h's interface; the
 * test includes this header.
 */
int auth_issue_access(auth *a, const char *user_id, const char *username, const char *client_id,
                      const char *parent, lf_session *out, char token[AUTH_TOKEN_MAX]);
int auth_issue_refresh(auth *a, const char *user_id, const char *username, const char *client_id,
                       char token[AUTH_TOKEN_MAX]);
int auth_issue_code(auth *a, const char *user_id, const char *username, const char *client_id,
                    const char *redirect_uri, const char *challenge, bool challenge_plain,
                    char code[AUTH_TOKEN_MAX]);
/* 0 and the code's user in *out; -1 with an OAuth error description in *why. */
int auth_redeem_code(auth *a, const char *code, const char *client_id, const char *redirect_uri,
                     const char *verifier, lf_session *out, const char **why);
/* An access token's session (not a refresh token's or a code's). 0 or -1. */
int auth_lookup(auth *a, const char *token, lf_session *out);
/* The refresh token's session. 0 or -1 (unknown or revoked). */
int auth_lookup_refresh(auth *a, const char *token, lf_session *out);
/* Revoke any kind of token; a refresh token takes its access tokens with it. 0 or -1. */
int auth_revoke(auth *a, const char *token);
/* base64(HMAC-SHA256(key = secret, id_url + issued_at)) into out (44 chars + NUL). */
void auth_sign(const char *secret, const char *id_url, const char *issued_at,
               char out[AUTH_SIG_MAX]);
/* Parse a SOAP request: op gets the local name of the Body's first element,
 * username/password the text of that element's children of those names (login),
 * session_id the text of Header/SessionHeader/sessionId. Absent fields are "".
 * Returns -1 for anything that is not a well-formed SOAP envelope within the
 * limits (size, no DTD, field lengths). */
int auth_soap_parse(const char *xml, size_t len, char op[AUTH_SOAP_OP_MAX],
                    char username[AUTH_SOAP_USER_MAX], char password[AUTH_SOAP_PASS_MAX],
                    char session_id[AUTH_SOAP_SID_MAX]);
/* Bearer/OAuth token from an Authorization header value. 0 or -1. */
int auth_parse_authorization(const char *value, char token[AUTH_TOKEN_MAX]);
/* HTTP Basic credentials "Basic base64(id:secret)". 0 or -1. */
int auth_parse_basic(const char *value, char *id, size_t idsz, char *secret, size_t secretsz);

/* ----- the token table ---------------------------------------------------- */

int auth_request_token(http_req *req, bool allow_query, char token[AUTH_TOKEN_MAX]);
/* When the session table was created (the identity URL's last-modified time). */
int64_t auth_started_ms(auth *a);

#endif
