/*
 * capture: Heroku Connect's change capture in Postgres.
 *
 * The trigger log (<schema>._trigger_log and _trigger_log_archive, with
 * Heroku Connect's columns, states and indexes, plus sfbridge's retry
 * bookkeeping columns sfb_*), the NOTIFY that wakes the writer, and per mapped
 * table the logger trigger (app sessions only: xmlbinary = 'base64'), which
 * records NEW, READONLY or IGNORE entries, and the TRUNCATE guard.
 */
#ifndef CAPTURE_H
#define CAPTURE_H

#include <libpq-fe.h>

#include "catalog.h"
#include "err.h"
#include "sb.h"

/* Create hstore, get_xmlbinary() and the trigger log tables if missing. */
int cap_ensure(PGconn *c, const char *schema, err_t *e);
/* Statements (re)installing the logger and TRUNCATE guard of one mapping. */
void cap_install_sql(sb *out, const char *schema, const mapping *m);
/* Install on every mapping (idempotent; upgrades older tables). */
int cap_install_all(PGconn *c, const char *schema, err_t *e);
/* The channel the writer listens on: "<schema>.hc_trigger_log". */
void cap_channel(sb *out, const char *schema);

#endif
