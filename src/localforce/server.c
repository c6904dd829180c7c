/*
 * server: (being written). See server.h.
 */
#include "server.h"
