/*
 * http: (being written). See http.h.
 */
#include "http.h"
