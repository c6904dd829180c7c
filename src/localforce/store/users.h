/*
 * users: users and connected apps: loaded from the User table and _lf_apps into
 * memory, looked up by username, id and client id (store_user_by_*, store_app).
 */
#ifndef USERS_H
#define USERS_H

#include "objcache.h"

void users_clear(store *st);
void users_apps_clear(store *st);
int users_load(store *st, err_t *e);
lf_user *users_find(store *st, const char *username);

#endif
