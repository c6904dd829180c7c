/*
 * schema: (being written). See schema.h.
 */
#include "schema.h"
