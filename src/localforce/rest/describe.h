/*
 * describe: the org's metadata as Salesforce's describe JSON: describeGlobal
 * (GET /sobjects), the basic object info (GET /sobjects/X) and the full
 * describe (GET /sobjects/X/describe) with every field key clients read.
 * The caller holds the store lock while the schema is read.
 */
#ifndef DESCRIBE_H
#define DESCRIBE_H

#include "sb.h"
#include "schema.h"

void describe_global(sb *out, const lf_schema *s, const char *ver);
void describe_object_basic(sb *out, const lf_object *o, const char *ver);
void describe_object(sb *out, const lf_schema *s, const lf_object *o, const char *ver);
void describe_field(sb *out, const lf_field *f);

#endif
