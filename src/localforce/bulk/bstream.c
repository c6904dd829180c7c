/*
 * bstream: a streamed response body produced a piece at a time. See bstream.h.
 */
#include "bstream.h"

#include <string.h>

#include "http.h"

ssize_t
bstream_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    bstream *bs = ctx;
    size_t n = 0;
    while (n < max) {
        if (bs->pend_pos < bs->pend.len) {
            size_t k = bs->pend.len - bs->pend_pos;
            if (k > max - n)
                k = max - n;
            memcpy(buf + n, bs->pend.buf + bs->pend_pos, k);
            n += k;
            bs->pend_pos += k;
            continue;
        }
        sb_clear(&bs->pend);
        bs->pend_pos = 0;
        if (bs->failed)
            return HTTP_STREAM_ABORT;
        if (bs->finished)
            break;
        bs->fill(bs, max - n);
    }
    return n ? (ssize_t)n : HTTP_STREAM_END;
}
