/*
 * jobres: the job resources common to query and ingest jobs: the job list
 * (GET jobs/{query|ingest}, paged) and one job (GET, PATCH its state, DELETE
 * it with its data and parked statements).
 */
#ifndef JOBRES_H
#define JOBRES_H

#include "jobs.h"

/* Its handlers (bulk_{query,ingest}_{list,job}) are declared in bulk.h. */

#endif
