/*
 * csv: RFC 4180 CSV as Bulk API 2.0 reads and writes it.
 *
 * The reader is streaming: feed it pieces of input in any sizes and pull
 * complete rows out, so an upload of any size is read with memory bounded by
 * the longest row. It takes any one-byte column delimiter, rows ended by LF,
 * CRLF or CR (or exactly one of LF / CRLF when asked to be strict, as a Bulk
 * job's lineEnding is), quoted fields with "" standing for a quote and with
 * embedded delimiters and line breaks. It is strict where Salesforce is: a
 * quote inside an unquoted field, anything but a delimiter or line end after a
 * closing quote, and an unterminated quoted field are errors, reported with
 * the line and column (1-based, in bytes) where they happen. Nothing is
 * trimmed; a byte-order mark is data.
 *
 * The writer quotes every field, doubling embedded quotes, as Salesforce's
 * Bulk API writes its result files.
 */
#ifndef CSV_H
#define CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb.h"

typedef enum {
    CSV_EOL_ANY,  /* LF, CRLF or CR end a row */
    CSV_EOL_LF,   /* only LF; a CR outside quotes is an error */
    CSV_EOL_CRLF, /* only CRLF; a bare LF or CR outside quotes is an error */
} csv_eol;

typedef enum {
    CSV_OK = 0,
    CSV_ERR_QUOTE,        /* a quote inside an unquoted field */
    CSV_ERR_AFTER_QUOTE,  /* a closing quote followed by something else than a delimiter/line end */
    CSV_ERR_UNTERMINATED, /* the input ended inside a quoted field */
    CSV_ERR_EOL,          /* a line ending other than the one required */
    CSV_ERR_UTF8,         /* a field that is not valid UTF-8 (when utf8 is set) */
    CSV_ERR_LIMIT,        /* a field, row or field count over its limit */
} csv_errcode;

typedef struct csv_opts {
    char delim; /* ',' if 0 */
    csv_eol eol;
    bool utf8;         /* check that every field is valid UTF-8 */
    size_t max_field;  /* bytes per field; 0 = 1 MiB */
    size_t max_row;    /* bytes per row; 0 = 16 MiB */
    size_t max_fields; /* fields per row; 0 = 10000 */
} csv_opts;

typedef struct csv_error {
    csv_errcode code;
    int64_t line;  /* where it happened, 1-based */
    int64_t col;   /* byte column, 1-based */
    char msg[160]; /* e.g. "unescaped quote in an unquoted field" */
} csv_error;

/* One row; valid until the next csv_next()/csv_reader_free(). Every field is
 * NUL-terminated (and may contain NULs: use len). */
typedef struct csv_row {
    size_t nfields;
    const char **field;
    const size_t *len;
    bool blank;    /* the row was an empty line (one empty, unquoted field) */
    int64_t line;  /* the line the row starts on */
    int64_t index; /* 0 for the first row of the input */
} csv_row;

typedef enum {
    CSV_NEED = 0,  /* feed more input, or csv_finish() */
    CSV_ROW = 1,   /* *row holds the next row */
    CSV_END = 2,   /* no more rows: the input is finished and fully read */
    CSV_FAIL = -1, /* malformed input: see csv_reader_error(); sticky */
} csv_status;

typedef struct csv_reader csv_reader;

csv_reader *csv_reader_new(const csv_opts *o); /* o may be NULL: comma, any line end */
void csv_reader_free(csv_reader *r);
/* Hand the reader the next n bytes. It reads them in place: keep them alive and
 * unchanged until csv_next() returns CSV_NEED (or the reader is freed). */
void csv_feed(csv_reader *r, const char *data, size_t n);
/* No more input will come. */
void csv_finish(csv_reader *r);
csv_status csv_next(csv_reader *r, csv_row *row);
const csv_error *csv_reader_error(const csv_reader *r);

/* ----- writing ----------------------------------------------------------- */

/* Append s (n bytes) as one quoted field: "a ""b"" c". */
void csv_put(sb *out, const char *s, size_t n);
void csv_put_str(sb *out, const char *s);

/* Bulk API 2.0 option names. 0 ok, -1 unknown.
 * "COMMA" ',', "TAB" '\t', "PIPE" '|', "SEMICOLON" ';', "CARET" '^', "BACKQUOTE" '`'. */
int csv_delim_parse(const char *name, char *out);
const char *csv_delim_name(char delim); /* "COMMA", ...; NULL if none */
/* "LF" -> CSV_EOL_LF, "CRLF" -> CSV_EOL_CRLF. */
int csv_eol_parse(const char *name, csv_eol *out);
const char *csv_eol_name(csv_eol eol); /* "LF" / "CRLF" ("LF" for ANY) */
const char *csv_eol_str(csv_eol eol);  /* "\n" / "\r\n" */

#endif
