/*
 * auth: (being written). See auth.h.
 */
#include "auth.h"
