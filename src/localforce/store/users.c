/*
 * users: users and connected apps: loaded from the User table and _lf_apps into
 * memory, looked up by username, id and client id (store_user_by_*, store_app).
 */
#include "users.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sfid.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Users and apps                                                           */

static void
user_free(lf_user *u)
{
    if (u == NULL)
        return;
    free(u->username);
    free(u->password);
    free(u->first_name);
    free(u->last_name);
    free(u->email);
    free(u);
}

static void
app_free(lf_app *a)
{
    if (a == NULL)
        return;
    free(a->name);
    free(a->client_id);
    free(a->client_secret);
    free(a->run_as);
    free(a->jwt_cert);
    for (size_t i = 0; i < a->npreauth; i++)
        free(a->preauth[i]);
    free(a->preauth);
    free(a);
}

void
users_clear(store *st)
{
    for (size_t i = 0; i < st->nusers; i++)
        user_free(st->users[i]);
    free(st->users);
    st->users = NULL;
    st->nusers = 0;
}

void
users_apps_clear(store *st)
{
    for (size_t i = 0; i < st->napps; i++)
        app_free(st->apps[i]);
    free(st->apps);
    st->apps = NULL;
    st->napps = 0;
}

static char *
col_strdup(sqlite3_stmt *q, int col)
{
    const char *s = (const char *)sqlite3_column_text(q, col);
    return s ? xstrdup(s) : NULL;
}

/* The in-memory user list from the User table (passwords unset). */
int
users_load(store *st, err_t *e)
{
    sqlite3_stmt *q =
        stdb_prep(st,
                  "SELECT \"Id\", \"Username\", \"FirstName\", \"LastName\", \"Email\", "
                  "\"IsActive\" FROM \"User\" WHERE \"IsDeleted\" = 0 ORDER BY \"_rowid\"",
                  false, e);
    if (q == NULL)
        return -1;
    users_clear(st);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        lf_user *u = xcalloc(1, sizeof *u);
        snprintf(u->id, sizeof u->id, "%s", (const char *)sqlite3_column_text(q, 0));
        u->username = col_strdup(q, 1);
        u->first_name = col_strdup(q, 2);
        u->last_name = col_strdup(q, 3);
        u->email = col_strdup(q, 4);
        u->active = sqlite3_column_int(q, 5) != 0;
        if (u->username == NULL) {
            user_free(u);
            continue;
        }
        if (st->nusers == cap) {
            cap = cap ? cap * 2 : 8;
            st->users = xrealloc(st->users, cap * sizeof *st->users);
        }
        st->users[st->nusers++] = u;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return stdb_fail(st, e, "load users");
    return 0;
}

lf_user *
users_find(store *st, const char *username)
{
    for (size_t i = 0; i < st->nusers; i++)
        if (strcasecmp(st->users[i]->username, username) == 0)
            return st->users[i];
    return NULL;
}

const lf_user *
store_user_by_name(store *st, const char *username)
{
    if (username == NULL)
        return NULL;
    store_lock(st);
    const lf_user *u = users_find(st, username);
    store_unlock(st);
    return u && u->password ? u : NULL;
}

const lf_user *
store_user_by_id(store *st, const char *id)
{
    char id18[19];
    const lf_user *u = NULL;
    if (id == NULL || sfid_normalize(id, id18))
        return NULL;
    store_lock(st);
    for (size_t i = 0; i < st->nusers && u == NULL; i++)
        if (strcmp(st->users[i]->id, id18) == 0)
            u = st->users[i];
    store_unlock(st);
    return u;
}

const lf_app *
store_app(store *st, const char *client_id)
{
    const lf_app *a = NULL;
    if (client_id == NULL)
        return NULL;
    store_lock(st);
    for (size_t i = 0; i < st->napps && a == NULL; i++)
        if (strcmp(st->apps[i]->client_id, client_id) == 0)
            a = st->apps[i];
    store_unlock(st);
    return a;
}
