/*
 * fmt: writing stored values as Salesforce writes them in REST JSON.
 *
 * datetime -> "2024-01-02T03:04:05.000+0000", date -> "2024-01-02",
 * boolean -> true/false, int -> 42, double/currency/percent -> 12.5 / 10.0,
 * text -> escaped string, NULL -> null.
 */
#ifndef FMT_H
#define FMT_H

#include <sqlite3.h>

#include "sb.h"
#include "schema.h"

/* Column col of the current row of stmt, as the JSON value of field f. */
void fmt_value(sb *out, const lf_field *f, sqlite3_stmt *stmt, int col);
/* {"type":"Obj","url":"/services/data/vVER/sobjects/Obj/ID"} */
void fmt_attributes(sb *out, const char *obj, const char *ver, const char *id);

#endif
