/*
 * orgfile: the org definition file (docs/org-file.md): parsed and checked in full,
 * then applied in one transaction (objects, users, apps, seed records), with
 * the in-memory schema restored if anything fails.
 */
#ifndef ORGFILE_H
#define ORGFILE_H

#include "objcache.h"

#endif
