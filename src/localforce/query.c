/*
 * query: (being written). See query.h.
 */
#include "query.h"
