/*
 * csv: a streaming RFC 4180 reader and an always-quoting writer. See csv.h.
 *
 * The reader is a byte state machine over the piece of input it was fed. The
 * bytes of the row being read are copied into one buffer (each field
 * NUL-terminated, with its start offset recorded), so input pieces can be
 * dropped as soon as they are consumed and a row may span any number of them.
 * Runs of ordinary bytes are copied in one go; only delimiters, quotes and
 * line breaks go through the state machine.
 */
#include "csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum {
    S_FIELD,    /* at the start of a field */
    S_PLAIN,    /* inside an unquoted field */
    S_QUOTED,   /* inside a quoted field */
    S_QUOTE,    /* a quote seen inside a quoted field: closing, or the first of "" */
    S_AFTER_CR, /* a row ended with CR: a following LF belongs to it */
};

struct csv_reader {
    csv_opts o;
    const char *in;
    size_t in_len, in_pos;
    bool eof;
    int state;
    bool cr_prev;     /* the last byte was a CR (for line counting) */
    bool row_ready;   /* a row was returned: reset before reading on */
    bool row_started; /* the current row has consumed a byte */
    bool done;
    bool failed;
    sb buf;         /* the current row's fields, NUL-terminated */
    size_t *starts; /* field start offsets in buf */
    size_t *lens;
    const char **ptrs;
    size_t nfields, cap;
    size_t field_start; /* offset in buf of the field being read */
    int64_t line, col;  /* position of the next input byte */
    int64_t row_line;
    int64_t field_line, field_col;
    int64_t rows;
    csv_error err;
};

csv_reader *
csv_reader_new(const csv_opts *o)
{
    csv_reader *r = xcalloc(1, sizeof *r);
    if (o)
        r->o = *o;
    if (r->o.delim == 0)
        r->o.delim = ',';
    if (r->o.max_field == 0)
        r->o.max_field = 1u << 20;
    if (r->o.max_row == 0)
        r->o.max_row = 16u << 20;
    if (r->o.max_fields == 0)
        r->o.max_fields = 10000;
    r->line = 1;
    r->col = 1;
    r->row_line = 1;
    r->field_line = 1;
    r->field_col = 1;
    r->state = S_FIELD;
    return r;
}

void
csv_reader_free(csv_reader *r)
{
    if (r == NULL)
        return;
    sb_free(&r->buf);
    free(r->starts);
    free(r->lens);
    free(r->ptrs);
    free(r);
}

void
csv_feed(csv_reader *r, const char *data, size_t n)
{
    r->in = data;
    r->in_len = n;
    r->in_pos = 0;
}

void
csv_finish(csv_reader *r)
{
    r->eof = true;
}

const csv_error *
csv_reader_error(const csv_reader *r)
{
    return &r->err;
}

static csv_status
fail(csv_reader *r, csv_errcode code, int64_t line, int64_t col, const char *msg)
{
    r->failed = true;
    r->err.code = code;
    r->err.line = line;
    r->err.col = col;
    snprintf(r->err.msg, sizeof r->err.msg, "%s", msg);
    return CSV_FAIL;
}

/* Append n bytes to the field being read, within the limits. 0 or -1. */
static int
put(csv_reader *r, const char *p, size_t n)
{
    if (r->buf.len - r->field_start + n > r->o.max_field)
        return fail(r, CSV_ERR_LIMIT, r->field_line, r->field_col,
                    "a field is longer than the limit");
    if (r->buf.len + n > r->o.max_row)
        return fail(r, CSV_ERR_LIMIT, r->row_line, 1, "a row is longer than the limit");
    sb_append(&r->buf, p, n);
    return 0;
}

/* The field being read is complete. 0 or -1. */
static int
end_field(csv_reader *r)
{
    size_t len = r->buf.len - r->field_start;
    if (r->o.utf8 && !util_valid_utf8(r->buf.buf ? r->buf.buf + r->field_start : "", len))
        return fail(r, CSV_ERR_UTF8, r->field_line, r->field_col, "invalid UTF-8 in a field");
    if (r->nfields >= r->o.max_fields)
        return fail(r, CSV_ERR_LIMIT, r->row_line, r->field_col,
                    "a row has more fields than the limit");
    if (r->nfields == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->starts = xrealloc(r->starts, r->cap * sizeof *r->starts);
        r->lens = xrealloc(r->lens, r->cap * sizeof *r->lens);
        r->ptrs = xrealloc(r->ptrs, r->cap * sizeof *r->ptrs);
    }
    r->starts[r->nfields] = r->field_start;
    r->lens[r->nfields] = len;
    r->nfields++;
    sb_putc(&r->buf, '\0');
    r->field_start = r->buf.len;
    /* The next field starts after the delimiter at the current position (a
     * line break instead resets the position in reset_row). */
    r->field_line = r->line;
    r->field_col = r->col + 1;
    return 0;
}

/* The row is complete: fill *row. */
static csv_status
end_row(csv_reader *r, csv_row *row, bool blank)
{
    for (size_t i = 0; i < r->nfields; i++)
        r->ptrs[i] = r->buf.buf + r->starts[i];
    row->nfields = r->nfields;
    row->field = r->ptrs;
    row->len = r->lens;
    row->blank = blank;
    row->line = r->row_line;
    row->index = r->rows++;
    r->row_ready = true;
    return CSV_ROW;
}

static void
reset_row(csv_reader *r)
{
    sb_clear(&r->buf);
    r->nfields = 0;
    r->field_start = 0;
    r->row_started = false;
    r->row_ready = false;
    r->row_line = r->line;
    r->field_line = r->line;
    r->field_col = r->col;
}

/* Advance the position over byte c. */
static void
advance(csv_reader *r, char c)
{
    if (c == '\n') {
        if (!r->cr_prev)
            r->line++;
        r->col = 1;
        r->cr_prev = false;
    } else if (c == '\r') {
        r->line++;
        r->col = 1;
        r->cr_prev = true;
    } else {
        r->col++;
        r->cr_prev = false;
    }
}

/* A line break outside quotes: c is '\n' or '\r'. Ends the row, or fails. */
static csv_status
line_break(csv_reader *r, char c, csv_row *row)
{
    if (c == '\n' && r->o.eol == CSV_EOL_CRLF)
        return fail(r, CSV_ERR_EOL, r->line, r->col, "a line ends with LF where CRLF is expected");
    if (c == '\r' && r->o.eol == CSV_EOL_LF)
        return fail(r, CSV_ERR_EOL, r->line, r->col, "a line ends with CR where LF is expected");
    bool blank = !r->row_started;
    if (end_field(r) != 0)
        return CSV_FAIL;
    advance(r, c);
    r->in_pos++;
    r->state = c == '\r' ? S_AFTER_CR : S_FIELD;
    return end_row(r, row, blank);
}

/* The delimiter c ends the field being read; the next one starts. 0 or -1. */
static int
delimiter(csv_reader *r, char c)
{
    if (end_field(r) != 0)
        return -1;
    advance(r, c);
    r->in_pos++;
    r->state = S_FIELD;
    return 0;
}

/* Length of the run of bytes from p (at most n) that are none of a, b, c, d. */
static size_t
run_len(const char *p, size_t n, char a, char b, char c, char d)
{
    size_t i = 0;
    while (i < n && p[i] != a && p[i] != b && p[i] != c && p[i] != d)
        i++;
    return i;
}

/* Take the n bytes at p, none of them a line break, into the field being read
 * and step over them. 0 or -1. */
static int
take_run(csv_reader *r, const char *p, size_t n)
{
    if (put(r, p, n) != 0)
        return -1;
    r->col += (int64_t)n;
    r->cr_prev = false;
    r->in_pos += n;
    return 0;
}

/* The reader's state machine (field start, unquoted, quoted, quote seen,
 * row end), kept in one function on purpose: each byte's meaning depends on
 * the state, and splitting the states across functions would hide the
 * transitions that RFC 4180's quoting rules are made of. */
csv_status
csv_next(csv_reader *r, csv_row *row)
{
    if (r->failed)
        return CSV_FAIL;
    if (r->done)
        return CSV_END;
    if (r->row_ready)
        reset_row(r);
    const char d = r->o.delim;
    while (r->in_pos < r->in_len) {
        const char *p = r->in + r->in_pos;
        size_t left = r->in_len - r->in_pos;
        char c = *p;
        switch (r->state) {
        case S_AFTER_CR:
            if (c == '\n') {
                advance(r, c);
                r->in_pos++;
                r->state = S_FIELD;
                reset_row(r);
                continue;
            }
            if (r->o.eol == CSV_EOL_CRLF)
                return fail(r, CSV_ERR_EOL, r->line, r->col,
                            "a line ends with CR where CRLF is expected");
            r->state = S_FIELD;
            continue;
        case S_FIELD:
            if (c == '"') {
                r->row_started = true;
                advance(r, c);
                r->in_pos++;
                r->state = S_QUOTED;
                continue;
            }
            if (c == d) {
                r->row_started = true;
                if (delimiter(r, c) != 0)
                    return CSV_FAIL;
                continue;
            }
            if (c == '\n' || c == '\r')
                return line_break(r, c, row);
            r->state = S_PLAIN;
            r->row_started = true;
            continue;
        case S_PLAIN: {
            size_t n = run_len(p, left, d, '"', '\n', '\r');
            if (n) {
                if (take_run(r, p, n) != 0)
                    return CSV_FAIL;
                continue;
            }
            if (c == '"')
                return fail(r, CSV_ERR_QUOTE, r->line, r->col,
                            "a quote inside an unquoted field (quote the whole field and "
                            "double the quote)");
            if (c == d) {
                if (delimiter(r, c) != 0)
                    return CSV_FAIL;
                continue;
            }
            return line_break(r, c, row);
        }
        case S_QUOTED: {
            size_t n = run_len(p, left, '"', '\n', '\r', '"');
            if (n) {
                if (take_run(r, p, n) != 0)
                    return CSV_FAIL;
                continue;
            }
            if (c == '"') {
                advance(r, c);
                r->in_pos++;
                r->state = S_QUOTE;
                continue;
            }
            /* a line break inside quotes is data */
            if (put(r, p, 1) != 0)
                return CSV_FAIL;
            advance(r, c);
            r->in_pos++;
            continue;
        }
        case S_QUOTE:
            if (c == '"') {
                if (put(r, p, 1) != 0)
                    return CSV_FAIL;
                advance(r, c);
                r->in_pos++;
                r->state = S_QUOTED;
                continue;
            }
            if (c == d) {
                if (delimiter(r, c) != 0)
                    return CSV_FAIL;
                continue;
            }
            if (c == '\n' || c == '\r')
                return line_break(r, c, row);
            return fail(r, CSV_ERR_AFTER_QUOTE, r->line, r->col,
                        "a closing quote is followed by something else than a delimiter or a "
                        "line end");
        }
    }
    if (!r->eof)
        return CSV_NEED;
    /* End of input. */
    if (r->state == S_QUOTED)
        return fail(r, CSV_ERR_UNTERMINATED, r->field_line, r->field_col,
                    "a quoted field is not terminated");
    r->done = true;
    if (r->row_started) {
        r->state = S_FIELD;
        if (end_field(r) != 0)
            return CSV_FAIL;
        return end_row(r, row, false);
    }
    return CSV_END;
}

/* ----- writing ----------------------------------------------------------- */

void
csv_put(sb *out, const char *s, size_t n)
{
    sb_reserve(out, n + 2);
    out->buf[out->len++] = '"';
    const char *end = s + n;
    while (s < end) {
        const char *q = memchr(s, '"', (size_t)(end - s));
        size_t run = q ? (size_t)(q - s) + 1 : (size_t)(end - s);
        sb_append(out, s, run);
        if (q)
            sb_putc(out, '"');
        s += run;
    }
    sb_putc(out, '"');
}

void
csv_put_str(sb *out, const char *s)
{
    csv_put(out, s ? s : "", s ? strlen(s) : 0);
}

static const struct {
    const char *name;
    char c;
} delims[] = {
    {"COMMA", ','},     {"TAB", '\t'},  {"PIPE", '|'},
    {"SEMICOLON", ';'}, {"CARET", '^'}, {"BACKQUOTE", '`'},
};

int
csv_delim_parse(const char *name, char *out)
{
    for (size_t i = 0; name && i < sizeof delims / sizeof delims[0]; i++)
        if (strcmp(name, delims[i].name) == 0) {
            *out = delims[i].c;
            return 0;
        }
    return -1;
}

const char *
csv_delim_name(char delim)
{
    for (size_t i = 0; i < sizeof delims / sizeof delims[0]; i++)
        if (delims[i].c == delim)
            return delims[i].name;
    return NULL;
}

int
csv_eol_parse(const char *name, csv_eol *out)
{
    if (name && strcmp(name, "LF") == 0)
        *out = CSV_EOL_LF;
    else if (name && strcmp(name, "CRLF") == 0)
        *out = CSV_EOL_CRLF;
    else
        return -1;
    return 0;
}

const char *
csv_eol_name(csv_eol eol)
{
    return eol == CSV_EOL_CRLF ? "CRLF" : "LF";
}

const char *
csv_eol_str(csv_eol eol)
{
    return eol == CSV_EOL_CRLF ? "\r\n" : "\n";
}
