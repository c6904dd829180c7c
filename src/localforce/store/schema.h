/*
 * schema: the org's metadata, i.e. its objects and their fields.
 *
 * Read from the org definition file (see docs/org-file.md), kept in the
 * SQLite database next to the records, and changed at run time through the
 * admin API. Every other module (SOQL compiler, store, describe, formatting)
 * works from these structs. Names are compared case-insensitively, as
 * Salesforce does; the canonical spelling is the one in the definition.
 *
 * Storage: object X lives in the SQLite table "X" (quoted), field F in column
 * "F". Each type has one storage class, see lf_types[].
 */
#ifndef SCHEMA_H
#define SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

typedef enum {
    FT_ID,
    FT_STRING,
    FT_TEXTAREA,
    FT_EMAIL,
    FT_PHONE,
    FT_URL,
    FT_PICKLIST,
    FT_MULTIPICKLIST,
    FT_BOOLEAN,
    FT_INT,
    FT_DOUBLE,
    FT_CURRENCY,
    FT_PERCENT,
    FT_DATE,
    FT_DATETIME,
    FT_TIME,
    FT_REFERENCE,
    FT__COUNT
} lf_ftype;

/* How a type is stored in SQLite and described to clients. */
typedef enum {
    ST_TEXT,     /* TEXT (COLLATE NOCASE except ids and references) */
    ST_INT,      /* INTEGER */
    ST_REAL,     /* REAL */
    ST_BOOL,     /* INTEGER 0/1, never NULL */
    ST_DATETIME, /* INTEGER, ms since epoch UTC */
    ST_DATE,     /* TEXT "YYYY-MM-DD" */
} lf_storage;

typedef struct lf_type_info {
    const char *name;      /* describe "type": "string", "datetime", ... */
    const char *soap_type; /* describe "soapType": "xsd:string", ... */
    lf_storage storage;
} lf_type_info;

extern const lf_type_info lf_types[FT__COUNT];
/* The type named in an org file ("string", "Text", "lookup" aliases accepted). 0 ok, -1 unknown. */
int lf_type_parse(const char *name, lf_ftype *out);

typedef struct lf_field {
    char *name; /* canonical API name, e.g. "Email__c" */
    char *label;
    lf_ftype type;
    int length;           /* text types: max characters */
    int precision, scale; /* numbers */
    bool custom;          /* name ends in __c */
    bool system;          /* Id, IsDeleted, CreatedDate, ...: never writable */
    bool required;        /* must be given on create (nillable = !required) */
    bool unique;
    bool case_sensitive; /* for unique / external id matching */
    bool external_id;
    bool createable, updateable;
    bool restricted_picklist;
    char **picklist; /* values, in order */
    size_t npicklist;
    char *default_value;     /* as text, or NULL */
    char *reference_to;      /* FT_REFERENCE: target object name */
    char *relationship_name; /* FT_REFERENCE: "Teacher__r", "Account" */
} lf_field;

typedef struct lf_object {
    char *name; /* "Teacher__c" */
    char *label, *label_plural;
    char key_prefix[4]; /* "a01", NUL-terminated */
    bool custom;
    bool no_cdc;       /* Change Data Capture not enabled for it ("change_data_capture": false) */
    lf_field **fields; /* in describe order; system fields first */
    size_t nfields;
    size_t cap_fields;
} lf_object;

typedef struct lf_schema {
    lf_object **objects;
    size_t nobjects;
    size_t cap_objects;
} lf_schema;

/* Lookups are case-insensitive; NULL when absent. */
lf_object *schema_object(const lf_schema *s, const char *name);
lf_object *schema_object_by_prefix(const lf_schema *s, const char prefix[3]);
lf_field *object_field(const lf_object *o, const char *name);
/* The reference field whose relationshipName is rel ("Teacher__r"), or NULL. */
lf_field *object_field_by_relationship(const lf_object *o, const char *rel);

/* Build an object from its definition in the org file (a JSON object, see
 * docs/org-file.md). System fields are added. On error returns NULL and fills e
 * naming the object and field at fault. */
lf_object *schema_object_from_json(const char *name, json_t *def, err_t *e);
/* A field from its JSON definition ({"type":"string","length":80,...}). */
lf_field *schema_field_from_json(const char *name, json_t *def, err_t *e);
/* Relationship names must not collide with each other or with field names.
 * The error reads "<opath>.fields.<F>: relationship name 'R' is already used
 * by <by><field>". */
int schema_check_relationships(const lf_object *o, const char *opath, const char *by, err_t *e);
/* The JSON definition of an object or field (round-trips with *_from_json). */
json_t *schema_object_to_json(const lf_object *o);
json_t *schema_field_to_json(const lf_field *f);

/* Add an object (takes ownership); fails on a duplicate name or key prefix. */
int schema_add_object(lf_schema *s, lf_object *o, err_t *e);
/* Add a field to an object (takes ownership); fails if the name exists. */
int object_add_field(lf_object *o, lf_field *f, err_t *e);
/* Check cross-object consistency: references point at existing objects. */
int schema_validate(const lf_schema *s, err_t *e);

void schema_free(lf_schema *s);
void object_free(lf_object *o);
void field_free(lf_field *f);

#endif
