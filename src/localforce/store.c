/*
 * store: (being written). See store.h.
 */
#include "store.h"
