/*
 * admin: (being written). See admin.h.
 */
#include "admin.h"
