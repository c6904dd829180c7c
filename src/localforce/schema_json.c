/*
 * schema_json: object and field definitions to and from JSON (being written).
 */
#include "schema.h"
