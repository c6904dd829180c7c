/*
 * fmt: (being written). See fmt.h.
 */
#include "fmt.h"
