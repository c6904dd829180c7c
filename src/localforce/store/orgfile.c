/*
 * orgfile: the org definition file (docs/org-file.md): parsed and checked in full,
 * then applied in one transaction (objects, users, apps, seed records), with
 * the in-memory schema restored if anything fails.
 */
#include "orgfile.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jwt.h"
#include "records.h"
#include "sfid.h"
#include "tables.h"
#include "users.h"
#include "util.h"
#include "write.h"
/* ------------------------------------------------------------------------ */
/* Org definition file                                                      */

static int org_error(err_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
org_error(err_t *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_setv(e, 400, "INVALID_FIELD", fmt, ap);
    va_end(ap);
    return -1;
}

/* Every key of obj must be in keys[]; path names obj in the error. */
static int
check_keys(json_t *obj, const char *path, const char *const *keys, size_t nkeys, err_t *e)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        size_t i;
        for (i = 0; i < nkeys; i++)
            if (strcmp(keys[i], k) == 0)
                break;
        if (i == nkeys)
            return org_error(e, "%s: unknown key '%s'", path, k);
    }
    return 0;
}

/* Optional string member; NULL if absent. -1 if present but not a non-empty string. */
static int
opt_string(json_t *obj, const char *key, const char *path, const char **out, err_t *e)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return org_error(e, "%s.%s: must be a non-empty string", path, key);
    *out = json_string_value(v);
    return 0;
}

static int
opt_positive(json_t *obj, const char *key, const char *path, int64_t *out, err_t *e)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return org_error(e, "%s.%s: must be a positive integer", path, key);
    *out = json_integer_value(v);
    return 0;
}

typedef struct org_plan {
    const char *org_name;
    char org_id[19];
    int64_t ttl, limit;
    json_t *users, *apps, *objects, *records;
} org_plan;

/* name is one of the users: in the database, or in the file being loaded. */
static bool
org_has_user(store *st, const org_plan *p, const char *name)
{
    bool found = users_find(st, name) != NULL;
    for (size_t j = 0; j < json_array_size(p->users) && !found; j++)
        found = strcasecmp(json_string_value(
                               json_object_get(json_array_get(p->users, j), "username")),
                           name) == 0;
    return found;
}

/* A connected app's JWT bearer settings: the certificate and the users
 * pre-authorized for the app. */
static int
org_parse_jwt(store *st, const org_plan *p, json_t *a, const char *path, err_t *e)
{
    const char *cert, *why = NULL;
    if (opt_string(a, "jwt_cert", path, &cert, e))
        return -1;
    if (cert && !jwt_cert_ok(cert, &why))
        return org_error(e, "%s.jwt_cert: %s", path, why);
    json_t *pre = json_object_get(a, "preauthorized_users");
    if (pre && !json_is_array(pre))
        return org_error(e, "%s.preauthorized_users: must be an array of usernames", path);
    for (size_t j = 0; j < json_array_size(pre); j++) {
        const char *u = json_string_value(json_array_get(pre, j));
        if (u == NULL)
            return org_error(e, "%s.preauthorized_users[%zu]: must be a username", path, j);
        if (!org_has_user(st, p, u))
            return org_error(e, "%s.preauthorized_users[%zu]: '%s' is not one of the users", path,
                             j, u);
    }
    return 0;
}

static int
org_parse_apps(store *st, json_t *org, org_plan *p, err_t *e)
{
    static const char *const app_keys[] = {"name",   "client_id", "client_secret",
                                           "run_as", "jwt_cert",  "preauthorized_users"};
    p->apps = json_object_get(org, "connected_apps");
    if (p->apps && !json_is_array(p->apps))
        return org_error(e, "connected_apps: must be an array");
    for (size_t i = 0; i < json_array_size(p->apps); i++) {
        json_t *a = json_array_get(p->apps, i);
        char path[64];
        const char *cid, *sec, *run, *name;
        snprintf(path, sizeof path, "connected_apps[%zu]", i);
        if (!json_is_object(a))
            return org_error(e, "%s: must be a JSON object", path);
        if (check_keys(a, path, app_keys, 6, e) || opt_string(a, "name", path, &name, e) ||
            opt_string(a, "client_id", path, &cid, e) ||
            opt_string(a, "client_secret", path, &sec, e) || opt_string(a, "run_as", path, &run, e))
            return -1;
        if (cid == NULL || sec == NULL)
            return org_error(e, "%s: 'client_id' and 'client_secret' are required", path);
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(p->apps, j), "client_id")),
                       cid) == 0)
                return org_error(e, "%s: client_id '%s' is listed twice", path, cid);
        if (run && !org_has_user(st, p, run))
            return org_error(e, "%s.run_as: '%s' is not one of the users", path, run);
        if (org_parse_jwt(st, p, a, path, e))
            return -1;
    }
    return 0;
}

/* Validate what can be checked before touching the store. */
static int
org_parse(store *st, json_t *org, org_plan *p, err_t *e)
{
    static const char *const top[] = {"organization", "settings", "connected_apps",
                                      "users",        "objects",  "records"};
    static const char *const org_keys[] = {"name", "id"};
    static const char *const set_keys[] = {"session_ttl_seconds", "daily_api_limit"};
    static const char *const user_keys[] = {"username",  "password", "first_name",
                                            "last_name", "email",    "active"};
    memset(p, 0, sizeof *p);
    p->ttl = 7200;
    p->limit = 100000;
    if (!json_is_object(org))
        return org_error(e, "the org definition must be a JSON object");
    if (check_keys(org, "(top level)", top, 6, e))
        return -1;

    json_t *o = json_object_get(org, "organization");
    if (o) {
        const char *id;
        if (!json_is_object(o))
            return org_error(e, "organization: must be a JSON object");
        if (check_keys(o, "organization", org_keys, 2, e) ||
            opt_string(o, "name", "organization", &p->org_name, e) ||
            opt_string(o, "id", "organization", &id, e))
            return -1;
        if (id && (sfid_normalize(id, p->org_id) || !sfid_has_prefix(p->org_id, "00D")))
            return org_error(e,
                             "organization.id: '%s' is not a 15- or 18-character ID with "
                             "prefix 00D",
                             id);
    }
    json_t *s = json_object_get(org, "settings");
    if (s) {
        if (!json_is_object(s))
            return org_error(e, "settings: must be a JSON object");
        if (check_keys(s, "settings", set_keys, 2, e) ||
            opt_positive(s, "session_ttl_seconds", "settings", &p->ttl, e) ||
            opt_positive(s, "daily_api_limit", "settings", &p->limit, e))
            return -1;
    }

    p->users = json_object_get(org, "users");
    if (p->users && !json_is_array(p->users))
        return org_error(e, "users: must be an array");
    for (size_t i = 0; i < json_array_size(p->users); i++) {
        json_t *u = json_array_get(p->users, i);
        char path[64];
        const char *un, *pw, *x;
        snprintf(path, sizeof path, "users[%zu]", i);
        if (!json_is_object(u))
            return org_error(e, "%s: must be a JSON object", path);
        if (check_keys(u, path, user_keys, 6, e) || opt_string(u, "username", path, &un, e) ||
            opt_string(u, "password", path, &pw, e) || opt_string(u, "first_name", path, &x, e) ||
            opt_string(u, "last_name", path, &x, e) || opt_string(u, "email", path, &x, e))
            return -1;
        if (un == NULL || pw == NULL)
            return org_error(e, "%s: 'username' and 'password' are required", path);
        json_t *act = json_object_get(u, "active");
        if (act && !json_is_boolean(act))
            return org_error(e, "%s.active: must be true or false", path);
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(json_string_value(
                               json_object_get(json_array_get(p->users, j), "username")),
                           un) == 0)
                return org_error(e, "%s: username '%s' is listed twice", path, un);
    }

    if (org_parse_apps(st, org, p, e))
        return -1;

    p->objects = json_object_get(org, "objects");
    if (p->objects && !json_is_object(p->objects))
        return org_error(e, "objects: must be a JSON object");
    p->records = json_object_get(org, "records");
    if (p->records && !json_is_object(p->records))
        return org_error(e, "records: must be a JSON object");
    return 0;
}

/* Declared objects and fields not yet in the schema: into memory and SQLite.
 * created[] receives the objects created now. */
static int
org_apply_objects(store *st, org_plan *p, lf_object ***created, size_t *ncreated, err_t *e)
{
    size_t n = json_object_size(p->objects);
    char(*reserved)[4] = xcalloc(n ? n : 1, sizeof *reserved);
    size_t nreserved = 0;
    const char *name;
    json_t *def;
    json_object_foreach(p->objects, name, def) {
        json_t *kp = json_is_object(def) ? json_object_get(def, "key_prefix") : NULL;
        if (json_is_string(kp) && json_string_length(kp) == 3)
            memcpy(reserved[nreserved++], json_string_value(kp), 4);
    }
    *created = xcalloc(n ? n : 1, sizeof **created);
    *ncreated = 0;
    /* Existing objects that get fields: index -> field count before. */
    size_t nexist = st->schema.nobjects;
    size_t *before = xcalloc(nexist ? nexist : 1, sizeof *before);
    for (size_t i = 0; i < nexist; i++)
        before[i] = st->schema.objects[i]->nfields;
    int rc = -1;

    json_object_foreach(p->objects, name, def) {
        lf_object *tmp = schema_object_from_json(name, def, e);
        if (tmp == NULL)
            goto out;
        lf_object *ex = schema_object(&st->schema, tmp->name);
        if (ex == NULL) {
            if (tmp->key_prefix[0] == '\0')
                tbl_assign_prefix(st, tmp, reserved, nreserved);
            if (oi_add_object(st, tmp, e)) {
                object_free(tmp);
                goto out;
            }
            (*created)[(*ncreated)++] = tmp;
            continue;
        }
        if (oi_index(st, ex) >= nexist) {
            org_error(e, "objects.%s: declared twice", name);
            object_free(tmp);
            goto out;
        }
        for (size_t i = 0; i < tmp->nfields; i++) {
            lf_field *f = tmp->fields[i];
            if (f->system || strcmp(f->name, "OwnerId") == 0 || strcmp(f->name, "Name") == 0 ||
                object_field(ex, f->name))
                continue;
            tmp->fields[i] = NULL;
            object_add_field(ex, f, NULL);
        }
        object_free(tmp);
        if (tbl_check_relationships(ex, e))
            goto out;
    }
    if (schema_validate(&st->schema, e))
        goto out;
    for (size_t i = 0; i < nexist; i++) {
        lf_object *o = st->schema.objects[i];
        if (o->nfields == before[i])
            continue;
        for (size_t k = before[i]; k < o->nfields; k++)
            if (tbl_add_column(st, o, o->fields[k], e))
                goto out;
        if (tbl_save_object_def(st, o, e))
            goto out;
        oi_rebuild(st, i);
        before[i] = o->nfields;
    }
    for (size_t i = 0; i < *ncreated; i++)
        if (tbl_create_table(st, (*created)[i], e) || tbl_save_object_def(st, (*created)[i], e))
            goto out;
    rc = 0;
out:
    free(reserved);
    free(before);
    return rc;
}

/* Users of the file into the User table; returns the first one's Id in first_id. */
static int
org_apply_users(store *st, org_plan *p, err_t *e)
{
    objinfo *uoi = oi_find(st, "User");
    for (size_t i = 0; i < json_array_size(p->users); i++) {
        json_t *u = json_array_get(p->users, i);
        const char *un = json_string_value(json_object_get(u, "username"));
        const char *fn = json_string_value(json_object_get(u, "first_name"));
        const char *ln = json_string_value(json_object_get(u, "last_name"));
        const char *em = json_string_value(json_object_get(u, "email"));
        json_t *act = json_object_get(u, "active");
        char local[128];
        if (ln == NULL) {
            snprintf(local, sizeof local, "%s", un);
            char *at = strchr(local, '@');
            if (at && at != local)
                *at = '\0';
            ln = local;
        }
        if (em == NULL)
            em = un;
        bool active = act == NULL || json_is_true(act);
        json_t *rec = json_object();
        json_object_set_new(rec, "Username", json_string(un));
        json_object_set_new(rec, "FirstName", fn ? json_string(fn) : json_null());
        json_object_set_new(rec, "LastName", json_string(ln));
        json_object_set_new(rec, "Email", json_string(em));
        json_object_set_new(rec, "IsActive", json_boolean(active));
        lf_user *cur = users_find(st, un);
        char id[19];
        int rc;
        if (cur == NULL) {
            rc = wr_create(st, uoi, NULL, rec, 0, -1, NULL, id, e);
        } else {
            memcpy(id, cur->id, 19);
            bool same = util_streq_ci(cur->last_name, ln) && util_streq_ci(cur->email, em) &&
                        cur->active == active &&
                        ((fn == NULL && cur->first_name == NULL) ||
                         util_streq_ci(cur->first_name, fn));
            rc = same ? 0 : wr_update(st, uoi, NULL, sfid_seq(cur->id), cur->id, rec, 0, -1, e);
        }
        json_decref(rec);
        if (rc) {
            stdb_err_prefix(e, "users[%zu]", i);
            return -1;
        }
        if (i == 0)
            memcpy(st->default_user, id, 19);
    }
    return 0;
}

static int
org_apply_records(store *st, org_plan *p, lf_object **created, size_t ncreated, err_t *e)
{
    const char *name;
    json_t *recs;
    json_object_foreach(p->records, name, recs) {
        objinfo *oi = oi_find(st, name);
        if (oi == NULL)
            return org_error(e, "records.%s: unknown object", name);
        bool is_new = false;
        for (size_t i = 0; i < ncreated && !is_new; i++)
            is_new = created[i] == oi->o;
        if (!json_is_array(recs))
            return org_error(e, "records.%s: must be an array", name);
        if (!is_new)
            continue;
        char what[256];
        snprintf(what, sizeof what, "records.%.200s", name);
        int64_t n;
        if (rec_load_locked(st, oi, NULL, recs, 0, &n, what, e))
            return -1;
    }
    return 0;
}

static void
org_commit_memory(store *st, org_plan *p)
{
    /* passwords */
    for (size_t i = 0; i < json_array_size(p->users); i++) {
        json_t *u = json_array_get(p->users, i);
        lf_user *cur = users_find(st, json_string_value(json_object_get(u, "username")));
        if (cur) {
            free(cur->password);
            cur->password = xstrdup(json_string_value(json_object_get(u, "password")));
        }
    }
    users_apps_clear(st);
    size_t n = json_array_size(p->apps);
    st->apps = xcalloc(n ? n : 1, sizeof *st->apps);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(p->apps, i);
        lf_app *app = xcalloc(1, sizeof *app);
        const char *name = json_string_value(json_object_get(a, "name"));
        const char *run = json_string_value(json_object_get(a, "run_as"));
        app->client_id = xstrdup(json_string_value(json_object_get(a, "client_id")));
        app->client_secret = xstrdup(json_string_value(json_object_get(a, "client_secret")));
        app->name = xstrdup(name ? name : app->client_id);
        if (run) {
            lf_user *u = users_find(st, run);
            app->run_as = xstrdup(u ? u->username : run);
        }
        const char *cert = json_string_value(json_object_get(a, "jwt_cert"));
        app->jwt_cert = cert ? xstrdup(cert) : NULL;
        json_t *pre = json_object_get(a, "preauthorized_users");
        app->preauth = xcalloc(json_array_size(pre) + 1, sizeof *app->preauth);
        for (size_t j = 0; j < json_array_size(pre); j++) {
            const char *un = json_string_value(json_array_get(pre, j));
            lf_user *u = users_find(st, un);
            app->preauth[app->npreauth++] = xstrdup(u ? u->username : un);
        }
        st->apps[st->napps++] = app;
    }
}

static int
load_org_locked(store *st, json_t *org, err_t *e)
{
    org_plan p;
    if (org_parse(st, org, &p, e))
        return -1;
    if (st->tx_depth > 0)
        return err_set(e, 500, "UNKNOWN_EXCEPTION", "cannot load an org inside a transaction");
    snap sn;
    tbl_snap_take(st, &sn);
    char *old_name = st->org_name;
    char old_id[19];
    int64_t old_ttl = st->session_ttl_s, old_limit = st->api_limit;
    memcpy(old_id, st->org_id, sizeof old_id);
    lf_object **created = NULL;
    size_t ncreated = 0;
    if (stdb_tx_begin(st, e)) {
        tbl_snap_free(&sn);
        return -1;
    }
    if (p.org_name)
        st->org_name = xstrdup(p.org_name);
    if (p.org_id[0])
        memcpy(st->org_id, p.org_id, sizeof st->org_id);
    st->session_ttl_s = p.ttl;
    st->api_limit = p.limit;
    int rc = -1;
    if (org_apply_objects(st, &p, &created, &ncreated, e) || stdb_save_org_meta(st, e) ||
        org_apply_users(st, &p, e) || users_load(st, e) ||
        org_apply_records(st, &p, created, ncreated, e) || stdb_tx_commit(st, e)) {
        if (st->tx_depth > 0)
            stdb_tx_rollback(st);
        tbl_snap_restore(st, &sn);
        if (st->org_name != old_name) {
            free(st->org_name);
            st->org_name = old_name;
        }
        memcpy(st->org_id, old_id, sizeof old_id);
        st->session_ttl_s = old_ttl;
        st->api_limit = old_limit;
        users_load(st, NULL);
    } else {
        if (st->org_name != old_name)
            free(old_name);
        org_commit_memory(st, &p);
        rc = 0;
    }
    free(created);
    tbl_snap_free(&sn);
    return rc;
}

int
store_load_org_json(store *st, json_t *org, err_t *e)
{
    store_lock(st);
    int rc = load_org_locked(st, org, e);
    store_unlock(st);
    return rc;
}

/* A connected app's jwt_cert that is not PEM text names a file (relative to
 * the org file's folder): its text replaces the name. */
static int
org_read_certs(json_t *org, const char *path, err_t *e)
{
    json_t *apps = json_object_get(org, "connected_apps");
    for (size_t i = 0; json_is_array(apps) && i < json_array_size(apps); i++) {
        json_t *a = json_array_get(apps, i);
        const char *name = json_string_value(json_object_get(a, "jwt_cert"));
        if (name == NULL || *name == '\0' || strncmp(name, "-----BEGIN", 10) == 0)
            continue;
        const char *slash = strrchr(path, '/');
        char file[4096];
        if (name[0] == '/' || slash == NULL)
            snprintf(file, sizeof file, "%s", name);
        else
            snprintf(file, sizeof file, "%.*s/%s", (int)(slash - path), path, name);
        FILE *f = fopen(file, "r");
        char buf[16384];
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        bool whole = f && feof(f) && !ferror(f);
        if (f)
            fclose(f);
        if (!whole)
            return org_error(e, "connected_apps[%zu].jwt_cert: cannot read '%s'%s", i, file,
                             f ? " (over 16 KiB?)" : ": no such file, or not readable");
        buf[n] = '\0';
        json_object_set_new(a, "jwt_cert", json_string(buf));
    }
    return 0;
}

int
store_load_org_file(store *st, const char *path, err_t *e)
{
    json_error_t je;
    json_t *org = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (org == NULL && je.line > 0)
        return err_set(e, 400, "JSON_PARSER_ERROR", "line %d, column %d: %s", je.line, je.column,
                       je.text);
    if (org == NULL)
        return err_set(e, 400, "JSON_PARSER_ERROR", "%s", je.text);
    int rc = org_read_certs(org, path, e) == 0 ? store_load_org_json(st, org, e) : -1;
    json_decref(org);
    return rc;
}

/* ------------------------------------------------------------------------ */
