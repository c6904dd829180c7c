/*
 * loginlatch: refused logins are not tried again (see loginlatch.h).
 */
#include "loginlatch.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#define LATCH_MAX 8

static pthread_mutex_t latch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char fp[LATCH_FP_LEN + 1];
    err_t refusal;
} latches[LATCH_MAX];
static size_t nlatches;

void
latch_fingerprint(char out[LATCH_FP_LEN + 1], const char *login_url, const char *client_id,
                  const char *client_secret, const char *username, const char *password,
                  const char *refresh_token)
{
    const char *parts[] = {login_url, client_id, client_secret, username, password, refresh_token};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        /* length-prefixed, so ("ab", "c") and ("a", "bc") differ; NULL differs from "" */
        char head[24];
        int n = snprintf(head, sizeof head,
                         "%zd:", parts[i] ? (ssize_t)strlen(parts[i]) : (ssize_t)-1);
        EVP_DigestUpdate(ctx, head, (size_t)n);
        if (parts[i])
            EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]));
    }
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (unsigned int i = 0; i < len && i * 2 < LATCH_FP_LEN; i++)
        snprintf(out + i * 2, 3, "%02x", md[i]);
    out[LATCH_FP_LEN] = '\0';
}

bool
latch_is_refusal(const char *oauth_error)
{
    static const char *const codes[] = {"invalid_grant",
                                        "invalid_client",
                                        "invalid_client_id",
                                        "invalid_client_credentials",
                                        "unauthorized_client",
                                        "inactive_user",
                                        "inactive_org",
                                        "INVALID_LOGIN",
                                        "LOGIN_MUST_USE_SECURITY_TOKEN"};
    for (size_t i = 0; oauth_error && i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(oauth_error, codes[i]) == 0)
            return true;
    return false;
}

bool
latch_refused(const char *fp, err_t *e)
{
    bool found = false;
    pthread_mutex_lock(&latch_mu);
    for (size_t i = 0; i < nlatches && !found; i++)
        if (strcmp(latches[i].fp, fp) == 0) {
            found = true;
            if (e) {
                *e = latches[i].refusal;
                e->cls = ERR_AUTH;
            }
        }
    pthread_mutex_unlock(&latch_mu);
    return found;
}

void
latch_set(const char *fp, const err_t *refusal)
{
    pthread_mutex_lock(&latch_mu);
    size_t i = 0;
    while (i < nlatches && strcmp(latches[i].fp, fp) != 0)
        i++;
    if (i == nlatches)
        i = nlatches < LATCH_MAX ? nlatches++
                                 : LATCH_MAX - 1; /* full: the newest replaces the last */
    snprintf(latches[i].fp, sizeof latches[i].fp, "%s", fp);
    latches[i].refusal = *refusal;
    static const char note[] =
        " (login refused: not tried again with these credentials until the settings change)";
    size_t room = sizeof latches[i].refusal.msg - sizeof note;
    if (strlen(latches[i].refusal.msg) > room)
        latches[i].refusal.msg[room] = '\0';
    strcat(latches[i].refusal.msg, note);
    pthread_mutex_unlock(&latch_mu);
}

void
latch_clear(void)
{
    pthread_mutex_lock(&latch_mu);
    nlatches = 0;
    pthread_mutex_unlock(&latch_mu);
}
