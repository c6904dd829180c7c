/*
 * rest: (being written). See rest.h.
 */
#include "rest.h"
