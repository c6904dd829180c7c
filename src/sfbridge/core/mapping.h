/*
 * mapping: the mapping commands (add, edit, remove) and Heroku Connect's
 * export/import JSON. Every change is checked against Salesforce's describe
 * first and then applied to Postgres in one transaction, so a refused
 * request changes nothing.
 */
#ifndef MAPPING_H
#define MAPPING_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "app.h"
#include "err.h"

/* Heroku Connect's words for a read-write mapping without a unique
 * identifier (diagnose, the API, the dashboard's editor). */
#define MAP_WARN_NO_UNIQUE_ID "Read-write mappings require a unique identifier to be specified"

typedef struct map_opts {
    const char **fields; /* add: fields to map */
    size_t nfields;
    bool all_fields;
    const char **add_fields; /* edit */
    size_t nadd;
    const char **remove_fields; /* edit */
    size_t nremove;
    const char **indexes; /* "Field" or "Field:unique" */
    size_t nindexes;
    int access;       /* -1 unchanged, 0 read_only, 1 read_write */
    int poll_seconds; /* 0 unchanged */
    long max_daily;   /* 0 unchanged */
    const char *upsert_field;
    bool no_upsert_field;
    int tombstones; /* -1 unchanged */
    int notify;     /* -1 unchanged */
} map_opts;

#define MAP_OPTS_INIT                                \
    {                                                \
        .access = -1, .tombstones = -1, .notify = -1 \
    }

/* Salesforce's describe of object (*d to json_decref); an unknown object is
 * 404 INVALID_TYPE in the words the mapping commands use. */
int map_describe(app *a, const char *object, json_t **d, err_t *e) ERR_MUST_CHECK;
/* Whether name is one of the fields every mapping has (Id, SystemModstamp,
 * IsDeleted): never added or removed by hand. */
bool map_field_is_fixed(const char *name);

int map_add(app *a, const char *object, const map_opts *o, err_t *e) ERR_MUST_CHECK;
int map_edit(app *a, const char *object, const map_opts *o, err_t *e) ERR_MUST_CHECK;
int map_remove(app *a, const char *object, bool drop_table, err_t *e) ERR_MUST_CHECK;
int map_list(app *a, FILE *out, err_t *e) ERR_MUST_CHECK;
int map_show(app *a, const char *object, bool json, FILE *out, err_t *e) ERR_MUST_CHECK;
/* Heroku Connect export JSON of every mapping. */
json_t *map_export_json(app *a, err_t *e);
/* Validate the whole file against Salesforce first, then apply it. */
int map_import(app *a, json_t *doc, err_t *e) ERR_MUST_CHECK;
/* Check the shape of an export document (no I/O); fills e naming the fault. */
int map_import_check(json_t *doc, err_t *e) ERR_MUST_CHECK;

#endif
