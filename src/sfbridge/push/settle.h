/*
 * settle: inserts whose outcome was lost (sent, no answer), and deletes of
 * such inserts, settled before anything is sent again. A record Salesforce
 * did create is found (by the values or unique identifier sent, then among
 * the records created in the window that nothing names, match.c) and
 * adopted: its sfid goes to the row and what changed since is sent as an
 * update. One not found after long enough is sent again; one that several
 * records could be is left for a person (AMBIGUOUS_INSERT). Exactly-once
 * inserts rest on this. Part of the writer's pass (writer.c).
 */
#ifndef SETTLE_H
#define SETTLE_H

#include "err.h"
#include "writer_int.h"

/* Look up b's inserts (and deletes of inserts) whose outcome was unknown and
 * decide each: adopted, dropped, sent again, ambiguous or left for later. */
void settle_unknown(writer *w, batch *b);
/* Record what is already decided in b (dropped, adopted, ambiguous), per mapping. */
int settle_record_decided(writer *w, batch *b, err_t *e) ERR_MUST_CHECK;

#endif
