/*
 * bstream: a streamed response body produced a piece at a time. The owner's
 * fill() appends formatted bytes to pend (as many as asked for, or what is
 * left) and sets finished when the body is complete or failed to cut the
 * response; bstream_read() hands pend out to the HTTP layer. Bulk query
 * result pages and ingest result files are the two bodies made this way.
 */
#ifndef BSTREAM_H
#define BSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sb.h"

typedef struct bstream {
    sb pend; /* formatted, not yet handed out */
    size_t pend_pos;
    bool finished; /* everything is in pend */
    bool failed;   /* cut the response */
    void (*fill)(struct bstream *bs, size_t want);
} bstream;

/* An http_stream_fn over a bstream (ctx: the bstream, or a struct that starts
 * with one). */
ssize_t bstream_read(void *ctx, uint64_t pos, char *buf, size_t max);

#endif
