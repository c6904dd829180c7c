/*
 * typed: the trigger log's text values as JSON of the right type, and JSON
 * values as Salesforce wants them.
 *
 * The capture trigger stores a row as an hstore, which the writer reads back
 * with hstore_to_json: every value is text, printed by Postgres with DateStyle
 * ISO. The column's Postgres type (map_field.pgtype) says what it was. Pure.
 */
#ifndef TYPED_H
#define TYPED_H

#include <jansson.h>

#include "catalog.h"

/* The field of m mapped to Postgres column col; NULL when none is. */
const map_field *typed_field(const mapping *m, const char *col);
/* A text value typed by its column (a new reference): booleans ("t", "true",
 * "f", "false") and numbers (integer and floating types) become JSON ones,
 * timestamps ISO 8601 ("2024-01-02 03:04:05+05" -> "2024-01-02T03:04:05+05:00").
 * Anything else, text that does not parse included, stays as it is
 * (Salesforce then refuses it for that record alone). */
json_t *typed_value(const map_field *f, json_t *v);
/* Every string value of the object raw typed in place by m's columns; returns raw. */
json_t *typed_values(const mapping *m, json_t *raw);
/* A value as Salesforce wants it for field f (a new reference): datetimes and
 * times without a zone are UTC ("Z" added), "HH:MM:SS" times get ".000Z". */
json_t *typed_sf_value(const map_field *f, json_t *v);

#endif
