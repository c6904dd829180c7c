/*
 * writer_int: what writer.c shares with settle.c, the other half of the
 * writer's pass: the writer itself and one claimed batch. Not for use
 * outside src/sfbridge/push/.
 */
#ifndef WRITER_INT_H
#define WRITER_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "config.h"
#include "fold.h"
#include "lanes.h"
#include "mapping.h"
#include "pgpool.h"
#include "recorder.h"
#include "sfapi.h"
#include "worker.h"
#include "writer.h"

struct writer {
    const cfg *cfg;
    volatile sig_atomic_t *stop;
    PGconn *pg;
    bool connected; /* pg was open once: a new one recovers what the last had in flight */
    recorder *rec;
    lanes *lanes;     /* the collections in flight */
    pgpool *pool;     /* the lanes' connections: payloads remembered, outcomes recorded */
    lane_job **later; /* collections back with rows an app held locked, for drain */
    size_t nlater;
    sfapi *sf;
    mapping *ms;
    size_t nms;
    worker_thread thread;
    int64_t last_prune_ms;
    int64_t last_housekeeping_ms; /* when housekeeping() last ran */
};

/* One claim: its entries (sorted by mapping, record, id) and their operations. */
typedef struct batch {
    fold_entry *es;
    size_t n;
    op *ops;
    size_t nops;
} batch;

#endif
