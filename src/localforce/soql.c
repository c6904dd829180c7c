/*
 * soql: (being written). See soql.h.
 */
#include "soql.h"
