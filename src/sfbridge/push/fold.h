/*
 * fold: a record's trigger-log entries folded into one operation.
 *
 * The writer claims entries, groups them per record (mapping, row id) in
 * commit order and folds each group into an `op`: what to send to Salesforce
 * (its kind and record body), which entries it settles, and later its outcome.
 * Folding is pure: no Postgres, no Salesforce; fold_group's comment in fold.c
 * gives the rules. This module also owns the op: its kinds, outcomes, and the
 * helpers that set an outcome.
 */
#ifndef FOLD_H
#define FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "catalog.h"
#include "tlog.h"

/* What an operation sends. Sets of kinds are bitmasks (OP_SET). */
typedef enum op_kind {
    OP_INSERT,  /* create the record: POST sobjects collection */
    OP_UPSERT,  /* create or update by the mapping's unique identifier (PATCH .../<object>/<field>):
                 * an insert whose external id is set */
    OP_UPDATE,  /* change the record named by its sfid: PATCH sobjects collection */
    OP_DELETE,  /* delete the record named by its sfid: DELETE sobjects?ids= */
    OP_NOTHING, /* nothing to send: the entries are IGNORED (outcome OUT_DROPPED) */
    OP_LOOKUP_DELETE, /* deleted in Postgres after an insert whose outcome is unknown: look for the
                       * record in Salesforce first; delete it if found, else nothing to send */
    OP_KIND_COUNT
} op_kind;

typedef unsigned op_kinds; /* a set of op_kind: OP_SET(OP_INSERT) | OP_SET(OP_UPSERT) */
#define OP_SET(k) (1u << (k))

/* "insert", "upsert", ...; NULL out of range. */
const char *op_kind_name(op_kind k);
/* The kind named name; -1 when none is. */
int op_kind_parse(const char *name, op_kind *out);
/* Whether the kind creates a record (an insert or an upsert). */
bool op_kind_creates(op_kind k);

typedef enum op_outcome {
    OUT_NONE,    /* not decided yet: to be sent */
    OUT_OK,      /* Salesforce accepted it (or it was there already) */
    OUT_FAILED,  /* Salesforce refused it */
    OUT_RETRY,   /* try again later (transient failure, or waiting to settle) */
    OUT_DROPPED, /* nothing was sent and nothing needs to be */
} op_outcome;

/* One claimed trigger-log entry. */
typedef struct fold_entry {
    int64_t id;
    int record_id;
    tlog_action action;
    char *sfid;   /* the entry's sfid, or NULL */
    bool unknown; /* an earlier attempt's outcome was lost */
    int attempts;
    char sent_at[40];
    json_t *payload; /* what an earlier attempt sent (unknown inserts), or NULL */
    json_t *vals;    /* typed values by column, or NULL */
    size_t map;      /* the mapping's index */
} fold_entry;

void fold_entry_free(fold_entry *e);

/* The record's row as it is now (see fold_group). */
typedef struct fold_row {
    int record_id;
    char *sfid;  /* the row's sfid, or the one an earlier successful write got; NULL */
    json_t *row; /* NULL: the row is gone; the whole row when it may have to be inserted as it is;
                    else {} */
} fold_row;

typedef struct op {
    size_t map;
    int record_id;
    op_kind kind;
    char *sfid;
    json_t *rec;  /* the record to send (insert, upsert, update) */
    int64_t *ids; /* folded entries, the survivor last */
    size_t nids;
    bool unknown; /* an earlier attempt's outcome is unknown */
    int attempts;
    char sent_at[40];
    bool row_exists;
    json_t *sent;  /* what an earlier attempt with an unknown outcome sent */
    json_t *vals;  /* the folded column values */
    long retry_ms; /* when set, the retry delay instead of the backoff */
    op_outcome out;
    char *new_sfid;
    char lastop[16]; /* the row's _hc_lastop: INSERTED, UPDATED, DELETED, FAILED, SYNCED */
    char *err_json;  /* the row's _hc_err */
    char *msg;       /* the entries' sf_message */
} op;

/* Fold es[0..n) (one record's entries in id order, all of mapping m) and its
 * row ri (NULL when unknown) into *o (overwritten). Pure. */
void fold_group(const mapping *m, const fold_entry *es, size_t n, const fold_row *ri, op *o);
/* The record to send from typed column values: the fields Salesforce lets
 * this operation set (createable for inserts, updateable for updates), parent
 * references by external id nested; JSON nulls dropped from inserts except
 * for the columns `nulls` holds as keys (NULL: none). NULL when an update has
 * nothing left to send. */
json_t *fold_record(const mapping *m, json_t *vals, bool insert, const json_t *nulls);

void op_free(op *o);
/* Outcomes: refused (the row gets _hc_err as Heroku Connect writes it), or to
 * be retried (unknown: an insert may have happened). */
void op_set_failed(op *o, const char *code, const char *message, json_t *fields);
void op_set_retry(op *o, const char *why, bool unknown);
void op_set_ok(op *o, const char *lastop);

#endif
