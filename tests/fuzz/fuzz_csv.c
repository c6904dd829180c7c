/*
 * libFuzzer harness: the streaming CSV reader and the writer (csv.h).
 *
 * The first input byte picks the options (delimiter, line-ending mode, UTF-8
 * checking) and how the rest is fed (all at once, or in pieces of 1..16
 * bytes). Beyond "no crash, no leak, no hang", three properties are checked,
 * and anything else aborts:
 *   - feeding pattern does not matter: the rows, the final status and any
 *     error (code, line, column) are the same as when the input comes whole;
 *   - every row's fields are NUL-terminated at their length, and errors carry
 *     a message and a position;
 *   - what the writer writes, the reader reads back unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char delims[] = {',', '\t', '|', ';', '^', '`'};

static void
die(const char *what)
{
    fprintf(stderr, "fuzz_csv: %s\n", what);
    abort();
}

/* Read in (pieces of step bytes, 0 = whole) into a canonical dump: for each row,
 * the field count, then each field's length and bytes. Returns the status. */
static csv_status
read_dump(const char *in, size_t len, const csv_opts *o, size_t step, sb *dump, csv_error *err,
          sb *rewritten)
{
    csv_reader *r = csv_reader_new(o);
    size_t pos = 0;
    csv_status st;
    for (;;) {
        csv_row row;
        st = csv_next(r, &row);
        if (st == CSV_ROW) {
            sb_printf(dump, "R%zu%s:", row.nfields, row.blank ? "b" : "");
            for (size_t i = 0; i < row.nfields; i++) {
                if (row.field[i][row.len[i]] != '\0')
                    die("a field is not NUL-terminated at its length");
                sb_printf(dump, "%zu=", row.len[i]);
                sb_append(dump, row.field[i], row.len[i]);
                if (rewritten && !row.blank) {
                    if (i)
                        sb_putc(rewritten, o->delim);
                    csv_put(rewritten, row.field[i], row.len[i]);
                }
            }
            if (rewritten && !row.blank)
                sb_putc(rewritten, '\n');
            continue;
        }
        if (st == CSV_NEED) {
            if (pos >= len) {
                csv_finish(r);
                continue;
            }
            size_t n = step && len - pos > step ? step : len - pos;
            csv_feed(r, in + pos, n);
            pos += n;
            continue;
        }
        break;
    }
    *err = *csv_reader_error(r);
    csv_reader_free(r);
    return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    csv_opts o = {
        .delim = delims[ctl % 6],
        .eol = (csv_eol)((ctl / 6) % 3),
        .utf8 = (ctl & 0x80) != 0,
        .max_field = 4096,
        .max_row = 16384,
        .max_fields = 256,
    };
    size_t step = (size_t)((ctl >> 3) & 0x0f); /* 0 = whole, else 1..15 */

    sb whole = SB_INIT, pieces = SB_INIT, rewritten = SB_INIT;
    csv_error e1, e2;
    csv_status s1 = read_dump(in, len, &o, 0, &whole, &e1, &rewritten);
    csv_status s2 = read_dump(in, len, &o, step ? step : 1, &pieces, &e2, NULL);
    if (s1 != s2)
        die("the status depends on how the input is fed");
    if (whole.len != pieces.len || (whole.len && memcmp(whole.buf, pieces.buf, whole.len) != 0))
        die("the rows depend on how the input is fed");
    if (s1 == CSV_FAIL) {
        if (e1.code != e2.code || e1.line != e2.line || e1.col != e2.col)
            die("the error depends on how the input is fed");
        if (e1.code == CSV_OK || e1.msg[0] == '\0' || e1.line < 1 || e1.col < 1)
            die("an error without a code, message or position");
    } else if (s1 != CSV_END) {
        die("reading ended without CSV_END or CSV_FAIL");
    } else {
        /* Write every (non-blank) row back and read it again: the same rows. */
        csv_opts o2 = o;
        o2.eol = CSV_EOL_LF;
        o2.max_row = o.max_row * 3 + 16; /* quoting can double a field */
        o2.max_field = o.max_field * 2 + 2;
        sb again = SB_INIT, expect = SB_INIT;
        csv_error e3;
        csv_status s3 = read_dump(rewritten.buf ? rewritten.buf : "", rewritten.len, &o2, 0, &again,
                                  &e3, NULL);
        if (s3 != CSV_END)
            die("the writer's output does not read back");
        /* The expected dump: the original rows minus blank lines. */
        csv_reader *r = csv_reader_new(&o);
        csv_feed(r, in, len);
        csv_finish(r);
        csv_row row;
        while (csv_next(r, &row) == CSV_ROW) {
            if (row.blank)
                continue;
            sb_printf(&expect, "R%zu:", row.nfields);
            for (size_t i = 0; i < row.nfields; i++) {
                sb_printf(&expect, "%zu=", row.len[i]);
                sb_append(&expect, row.field[i], row.len[i]);
            }
        }
        csv_reader_free(r);
        if (again.len != expect.len || (again.len && memcmp(again.buf, expect.buf, again.len) != 0))
            die("a written row reads back differently");
        sb_free(&again);
        sb_free(&expect);
    }
    sb_free(&whole);
    sb_free(&pieces);
    sb_free(&rewritten);
    return 0;
}
