/*
 * loginlatch: refused logins are not tried again with the same credentials.
 *
 * Salesforce locks a user after about ten failed logins, so a refusal for
 * good (invalid_grant, invalid_client, a locked or frozen user: the token
 * endpoint's 4xx answers) latches, process-wide, for the credentials that got
 * it: every later login with the same credentials, from any thread's client,
 * fails at once with the original refusal, without a request. Credentials
 * are compared by a SHA-256 fingerprint; new settings (another password, a
 * new refresh token) are a new fingerprint and are tried.
 */
#ifndef LOGINLATCH_H
#define LOGINLATCH_H

#include <stdbool.h>

#include "err.h"

#define LATCH_FP_LEN 64 /* hex SHA-256 */

/* The fingerprint of a set of credentials (any may be NULL). */
void latch_fingerprint(char out[LATCH_FP_LEN + 1], const char *login_url, const char *client_id,
                       const char *client_secret, const char *username, const char *password,
                       const char *refresh_token);
/* true when fp was refused for good; e (if given) gets the refusal, marked ERR_AUTH. */
bool latch_refused(const char *fp, err_t *e);
/* Whether an OAuth error code from the token endpoint refuses the
 * credentials themselves (invalid_grant, invalid_client, inactive_user, ...),
 * as opposed to a reply that is not Salesforce's (a proxy's 404 page). */
bool latch_is_refusal(const char *oauth_error);
/* Remember fp's refusal. */
void latch_set(const char *fp, const err_t *refusal);
/* Forget every refusal (tests; a settings reload). */
void latch_clear(void);

#endif
