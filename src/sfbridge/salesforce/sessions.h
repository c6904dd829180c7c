/*
 * sessions: one Salesforce session per set of credentials, shared by every
 * client of the process that logs in with them.
 *
 * A real integration logs in once and sends many requests on the session it
 * got; a writer with 64 collections in flight, each on a client of its
 * own (a libcurl handle is never shared), would otherwise log in 64
 * times, a round trip each, and hold 64 sessions. So a client that needs
 * a session first takes the one published for its credentials (keyed by the
 * login latch's fingerprint), and a client that logged in publishes what it
 * got. Sessions carry a generation: a client whose session was refused (a 401)
 * takes a newer one if another client already logged in again, and logs in
 * itself only when none is newer than the one refused.
 *
 * The org's daily API usage is shared the same way: every answer carries it
 * (Sforce-Limit-Info), and what one client heard last is what every client
 * of the same credentials knows (the writer chooses between Bulk jobs and
 * collections by it, from whichever answer came last: a poll's, a lane's).
 *
 * Tokens are secrets: copies are wiped when replaced or forgotten.
 */
#ifndef SESSIONS_H
#define SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "loginlatch.h"

#define SESSION_ID_LEN 18 /* an org's or user's 18-character id */

/* A session as a client holds it. */
typedef struct session {
    char *access_token; /* owned; NULL: none */
    char *instance_url; /* owned, no trailing '/' */
    char org_id[SESSION_ID_LEN + 1];
    char user_id[SESSION_ID_LEN + 1];
    uint64_t gen; /* the published generation it is a copy of; 0: never published */
} session;

/* If a session newer than s->gen is published for fp, copy it into s (its
 * old token wiped) and return true. */
bool sessions_take(const char *fp, session *s);
/* Publish s (just got by logging in) for fp; s->gen gets its generation. */
void sessions_put(const char *fp, session *s);
/* The org's API usage (used/max requests) an answer to a client of fp told. */
void sessions_note_usage(const char *fp, long used, long max);
/* The usage last noted for fp: true with *used and *max set, false (both
 * untouched) when no answer has told it yet. */
bool sessions_usage(const char *fp, long *used, long *max);
/* Forget every published session and usage (tests; a settings reload). */
void sessions_clear(void);
/* Wipe and free what s holds. */
void session_forget(session *s);

#endif
