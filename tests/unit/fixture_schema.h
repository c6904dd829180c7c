/*
 * fixture_schema: a small org schema built by hand (no org file, no JSON),
 * shared by the SOQL unit tests and the SOQL fuzz harness.
 *
 *   User        Username, Name
 *   Account     Name, Industry (picklist), AnnualRevenue (currency),
 *               NumberOfEmployees (int), Description (long textarea),
 *               ParentId -> Account (Parent)
 *   Contact     FirstName, LastName, Email, AccountId -> Account (Account), Birthdate (date)
 *   Teacher__c  Name, Email__c, School__c -> Account (School__r)
 *   Course__c   Name, Teacher__c -> Teacher__c (Teacher__r), Active__c (boolean),
 *               Start__c (datetime), Subjects__c (multipicklist)
 *
 * Every object has Id, IsDeleted, CreatedDate, LastModifiedDate,
 * SystemModstamp; all but User have OwnerId -> User (Owner).
 */
#ifndef FIXTURE_SCHEMA_H
#define FIXTURE_SCHEMA_H

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "sb.h"
#include "schema.h"
#include "util.h"

static lf_field *
fx_field(const char *name, lf_ftype type)
{
    lf_field *f = xcalloc(1, sizeof *f);
    size_t n = strlen(name);
    f->name = xstrdup(name);
    f->label = xstrdup(name);
    f->type = type;
    f->custom = n > 3 && strcmp(name + n - 3, "__c") == 0;
    f->length = lf_types[type].storage == ST_TEXT ? 255 : 0;
    f->createable = f->updateable = true;
    return f;
}

static lf_field *
fx_ref(const char *name, const char *to, const char *rel)
{
    lf_field *f = fx_field(name, FT_REFERENCE);
    f->length = 18;
    f->reference_to = xstrdup(to);
    f->relationship_name = xstrdup(rel);
    return f;
}

static void
fx_add(lf_object *o, lf_field *f)
{
    err_t e;
    if (object_add_field(o, f, &e) != 0)
        abort();
}

static lf_field *
fx_system(lf_field *f)
{
    f->system = true;
    f->createable = f->updateable = false;
    return f;
}

static lf_object *
fx_object(const char *name, const char *prefix, bool owned)
{
    lf_object *o = xcalloc(1, sizeof *o);
    size_t n = strlen(name);
    o->name = xstrdup(name);
    o->label = xstrdup(name);
    o->label_plural = xstrdup(name);
    memcpy(o->key_prefix, prefix, 3);
    o->custom = n > 3 && strcmp(name + n - 3, "__c") == 0;
    lf_field *id = fx_system(fx_field("Id", FT_ID));
    id->length = 18;
    fx_add(o, id);
    fx_add(o, fx_system(fx_field("IsDeleted", FT_BOOLEAN)));
    fx_add(o, fx_system(fx_field("CreatedDate", FT_DATETIME)));
    fx_add(o, fx_system(fx_field("LastModifiedDate", FT_DATETIME)));
    fx_add(o, fx_system(fx_field("SystemModstamp", FT_DATETIME)));
    if (owned)
        fx_add(o, fx_system(fx_ref("OwnerId", "User", "Owner")));
    return o;
}

static void
fx_add_object(lf_schema *s, lf_object *o)
{
    err_t e;
    if (schema_add_object(s, o, &e) != 0)
        abort();
}

/* The fixture schema (free with fixture_free). */
static lf_schema *
fixture_schema(void)
{
    lf_schema *s = xcalloc(1, sizeof *s);

    lf_object *user = fx_object("User", "005", false);
    fx_add(user, fx_field("Username", FT_STRING));
    fx_add(user, fx_field("Name", FT_STRING));
    fx_add_object(s, user);

    lf_object *acc = fx_object("Account", "001", true);
    fx_add(acc, fx_field("Name", FT_STRING));
    fx_add(acc, fx_field("Industry", FT_PICKLIST));
    fx_add(acc, fx_field("AnnualRevenue", FT_CURRENCY));
    fx_add(acc, fx_field("NumberOfEmployees", FT_INT));
    lf_field *desc = fx_field("Description", FT_TEXTAREA);
    desc->length = 32000;
    fx_add(acc, desc);
    fx_add(acc, fx_ref("ParentId", "Account", "Parent"));
    fx_add_object(s, acc);

    lf_object *con = fx_object("Contact", "003", true);
    fx_add(con, fx_field("FirstName", FT_STRING));
    fx_add(con, fx_field("LastName", FT_STRING));
    fx_add(con, fx_field("Email", FT_EMAIL));
    fx_add(con, fx_ref("AccountId", "Account", "Account"));
    fx_add(con, fx_field("Birthdate", FT_DATE));
    fx_add_object(s, con);

    lf_object *teacher = fx_object("Teacher__c", "a01", true);
    fx_add(teacher, fx_field("Name", FT_STRING));
    fx_add(teacher, fx_field("Email__c", FT_EMAIL));
    fx_add(teacher, fx_ref("School__c", "Account", "School__r"));
    fx_add_object(s, teacher);

    lf_object *course = fx_object("Course__c", "a02", true);
    fx_add(course, fx_field("Name", FT_STRING));
    fx_add(course, fx_ref("Teacher__c", "Teacher__c", "Teacher__r"));
    fx_add(course, fx_field("Active__c", FT_BOOLEAN));
    fx_add(course, fx_field("Start__c", FT_DATETIME));
    lf_field *subj = fx_field("Subjects__c", FT_MULTIPICKLIST);
    subj->length = 4099;
    fx_add(course, subj);
    fx_add_object(s, course);
    return s;
}

/* Create s's tables in db as the store lays them out (see store.h, schema.h):
 * text columns COLLATE NOCASE except Id and references. 0 ok, -1 not. */
static int
fixture_create_tables(sqlite3 *db, const lf_schema *s)
{
    int rc = 0;
    for (size_t i = 0; i < s->nobjects && rc == 0; i++) {
        const lf_object *o = s->objects[i];
        sb q = SB_INIT;
        sb_printf(&q, "CREATE TABLE \"%s\" (\"_rowid\" INTEGER PRIMARY KEY", o->name);
        for (size_t j = 0; j < o->nfields; j++) {
            const lf_field *f = o->fields[j];
            sb_printf(&q, ", \"%s\"", f->name);
            switch (lf_types[f->type].storage) {
            case ST_TEXT:
                sb_puts(&q, f->type == FT_ID          ? " TEXT UNIQUE"
                            : f->type == FT_REFERENCE ? " TEXT"
                                                      : " TEXT COLLATE NOCASE");
                break;
            case ST_DATE: sb_puts(&q, " TEXT"); break;
            case ST_INT:
            case ST_DATETIME: sb_puts(&q, " INTEGER"); break;
            case ST_REAL: sb_puts(&q, " REAL"); break;
            case ST_BOOL: sb_puts(&q, " INTEGER NOT NULL DEFAULT 0"); break;
            }
        }
        sb_puts(&q, ", \"_deleted_at\" INTEGER)");
        rc = sqlite3_exec(db, q.buf, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
        sb_free(&q);
    }
    return rc;
}

static void
fixture_free(lf_schema *s)
{
    schema_free(s);
    free(s);
}

#endif
