/*
 * login: what the login flows share: users and connected apps copied out of the
 * store under its lock, the org's ids, constant-time secret comparison,
 * base64 and URL encoding, form and query parameters, token logging.
 */
#ifndef LOGIN_H
#define LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include "auth.h"
#include "sb.h"
#include "sessions.h"

/* A user, copied out of the store under its lock. */
typedef struct user_info {
    char id[19];
    char username[128];
    char first[128], last[128], email[256];
    bool active;
} user_info;

/* A connected app, copied out of the store under its lock. */
typedef struct app_info {
    char client_id[128];
    char name[128];
    char secret[SECRET_MAX];
    char run_as[128];
} app_info;

void login_copy(char *dst, size_t sz, const char *src);
bool login_secret_eq(const char *a, const char *b);
void login_org_ids(store *st, char org18[19], char org15[16]);
void login_base64(const unsigned char *in, size_t n, char *out, size_t outsz, bool url);
void login_url_encode(sb *s, const char *str);
bool login_valid_version(const char *v);
void login_log_token(const char *what, const char *token);
int login_user(store *st, const char *username, const char *password, user_info *out);
int login_user_by_id(store *st, const char *id, user_info *out);
int login_user_by_name(store *st, const char *name, user_info *out);
int login_app(store *st, const char *client_id, app_info *out);
/* The app's JWT bearer certificate (PEM) into out; -1 when it has none (or
 * it does not fit). */
int login_app_cert(store *st, const char *client_id, char *out, size_t sz);
/* Whether username (any case) is pre-authorized for the app. */
bool login_app_preauthorized(store *st, const char *client_id, const char *username);
void login_full_name(const user_info *u, char *out, size_t sz);
const char *login_param(http_req *req, const char *name, char *buf, size_t bufsz);
const char *login_nonempty(const char *s);

#endif
