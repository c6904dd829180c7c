/*
 * schema: the org's objects and fields, in memory. See schema.h.
 *
 * This file holds the type table, lookups and ownership; reading and writing
 * definitions as JSON is in schema_json.c.
 */
#include "schema.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

const lf_type_info lf_types[FT__COUNT] = {
    [FT_ID] = {"id", "tns:ID", ST_TEXT},
    [FT_STRING] = {"string", "xsd:string", ST_TEXT},
    [FT_TEXTAREA] = {"textarea", "xsd:string", ST_TEXT},
    [FT_EMAIL] = {"email", "xsd:string", ST_TEXT},
    [FT_PHONE] = {"phone", "xsd:string", ST_TEXT},
    [FT_URL] = {"url", "xsd:string", ST_TEXT},
    [FT_PICKLIST] = {"picklist", "xsd:string", ST_TEXT},
    [FT_MULTIPICKLIST] = {"multipicklist", "xsd:string", ST_TEXT},
    [FT_BOOLEAN] = {"boolean", "xsd:boolean", ST_BOOL},
    [FT_INT] = {"int", "xsd:int", ST_INT},
    [FT_DOUBLE] = {"double", "xsd:double", ST_REAL},
    [FT_CURRENCY] = {"currency", "xsd:double", ST_REAL},
    [FT_PERCENT] = {"percent", "xsd:double", ST_REAL},
    [FT_DATE] = {"date", "xsd:date", ST_DATE},
    [FT_DATETIME] = {"datetime", "xsd:dateTime", ST_DATETIME},
    [FT_TIME] = {"time", "xsd:time", ST_TEXT},
    [FT_REFERENCE] = {"reference", "tns:ID", ST_TEXT},
};

/* Names an org file may use besides the describe names above. */
static const struct {
    const char *alias;
    lf_ftype type;
} type_aliases[] = {
    {"text", FT_STRING},
    {"longtextarea", FT_TEXTAREA},
    {"checkbox", FT_BOOLEAN},
    {"number", FT_DOUBLE},
    {"integer", FT_INT},
    {"lookup", FT_REFERENCE},
    {"masterdetail", FT_REFERENCE},
    {"dateTime", FT_DATETIME},
    {"multiselectpicklist", FT_MULTIPICKLIST},
};

int
lf_type_parse(const char *name, lf_ftype *out)
{
    if (name == NULL)
        return -1;
    for (int t = 0; t < FT__COUNT; t++)
        if (strcasecmp(name, lf_types[t].name) == 0) {
            *out = (lf_ftype)t;
            return 0;
        }
    for (size_t i = 0; i < sizeof type_aliases / sizeof type_aliases[0]; i++)
        if (strcasecmp(name, type_aliases[i].alias) == 0) {
            *out = type_aliases[i].type;
            return 0;
        }
    return -1;
}

lf_object *
schema_object(const lf_schema *s, const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < s->nobjects; i++)
        if (strcasecmp(s->objects[i]->name, name) == 0)
            return s->objects[i];
    return NULL;
}

lf_object *
schema_object_by_prefix(const lf_schema *s, const char prefix[3])
{
    for (size_t i = 0; i < s->nobjects; i++)
        if (memcmp(s->objects[i]->key_prefix, prefix, 3) == 0)
            return s->objects[i];
    return NULL;
}

lf_field *
object_field(const lf_object *o, const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < o->nfields; i++)
        if (strcasecmp(o->fields[i]->name, name) == 0)
            return o->fields[i];
    return NULL;
}

lf_field *
object_field_by_relationship(const lf_object *o, const char *rel)
{
    if (rel == NULL)
        return NULL;
    for (size_t i = 0; i < o->nfields; i++) {
        lf_field *f = o->fields[i];
        if (f->type == FT_REFERENCE && f->relationship_name &&
            strcasecmp(f->relationship_name, rel) == 0)
            return f;
    }
    return NULL;
}

int
schema_add_object(lf_schema *s, lf_object *o, err_t *e)
{
    if (schema_object(s, o->name))
        return err_set(e, 400, "DUPLICATE_DEVELOPER_NAME", "object %s already exists", o->name);
    if (o->key_prefix[0] && schema_object_by_prefix(s, o->key_prefix))
        return err_set(e, 400, "DUPLICATE_VALUE", "key prefix %s of %s is already used by %s",
                       o->key_prefix, o->name, schema_object_by_prefix(s, o->key_prefix)->name);
    if (s->nobjects == s->cap_objects) {
        s->cap_objects = s->cap_objects ? s->cap_objects * 2 : 16;
        s->objects = xrealloc(s->objects, s->cap_objects * sizeof *s->objects);
    }
    s->objects[s->nobjects++] = o;
    return 0;
}

int
object_add_field(lf_object *o, lf_field *f, err_t *e)
{
    if (object_field(o, f->name))
        return err_set(e, 400, "DUPLICATE_DEVELOPER_NAME", "field %s.%s already exists", o->name,
                       f->name);
    if (o->nfields == o->cap_fields) {
        o->cap_fields = o->cap_fields ? o->cap_fields * 2 : 16;
        o->fields = xrealloc(o->fields, o->cap_fields * sizeof *o->fields);
    }
    o->fields[o->nfields++] = f;
    return 0;
}

int
schema_validate(const lf_schema *s, err_t *e)
{
    for (size_t i = 0; i < s->nobjects; i++) {
        const lf_object *o = s->objects[i];
        for (size_t j = 0; j < o->nfields; j++) {
            const lf_field *f = o->fields[j];
            if (f->type != FT_REFERENCE)
                continue;
            if (f->reference_to == NULL || schema_object(s, f->reference_to) == NULL)
                return err_set(e, 400, "INVALID_FIELD", "field %s.%s refers to unknown object '%s'",
                               o->name, f->name, f->reference_to ? f->reference_to : "(none)");
        }
    }
    return 0;
}

void
field_free(lf_field *f)
{
    if (f == NULL)
        return;
    free(f->name);
    free(f->label);
    for (size_t i = 0; i < f->npicklist; i++)
        free(f->picklist[i]);
    free(f->picklist);
    free(f->default_value);
    free(f->reference_to);
    free(f->relationship_name);
    free(f);
}

void
object_free(lf_object *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->nfields; i++)
        field_free(o->fields[i]);
    free(o->fields);
    free(o->name);
    free(o->label);
    free(o->label_plural);
    free(o);
}

void
schema_free(lf_schema *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nobjects; i++)
        object_free(s->objects[i]);
    free(s->objects);
    s->objects = NULL;
    s->nobjects = s->cap_objects = 0;
}
