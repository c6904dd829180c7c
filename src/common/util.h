/*
 * util: small helpers with no better home: time, case-insensitive compare,
 * random bytes, strict number parsing, allocation that aborts on failure.
 */
#ifndef UTIL_H
#define UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

int64_t util_now_ms(void);  /* wall clock, ms since epoch */
int64_t util_mono_ms(void); /* monotonic clock, ms */

/* Fill buf with n cryptographically random bytes (getrandom). */
void util_random(void *buf, size_t n);
/* n random characters from [A-Za-z0-9] into out (NUL-terminated, out has n+1). */
void util_random_alnum(char *out, size_t n);

/* Strict parsers: the whole string must be a number in range. 0 ok, -1 not. */
int util_parse_i64(const char *s, int64_t *out);
int util_parse_double(const char *s, double *out);

/* Datetimes as Salesforce writes and reads them.
 * util_fmt_datetime: ms since epoch -> "2024-01-02T03:04:05.000+0000" (29 bytes + NUL).
 * util_fmt_datetime_z: ms -> "2024-01-02T03:04:05.000Z".
 * util_parse_datetime: accepts YYYY-MM-DDTHH:MM[:SS[.fff]] followed by Z, +HH:MM,
 * +HHMM or nothing (UTC), and YYYY-MM-DD alone as midnight UTC. 0 ok, -1 not. */
void util_fmt_datetime(int64_t ms, char out[32]);
void util_fmt_datetime_z(int64_t ms, char out[32]);
int util_parse_datetime(const char *s, int64_t *ms);
/* The date (proleptic Gregorian) days after 1970-01-01. */
void util_civil_from_days(int64_t days, int *y, int *m, int *d);
/* A valid calendar date "YYYY-MM-DD". 0 ok, -1 not. */
int util_parse_date(const char *s, int *y, int *m, int *d);

bool util_streq_ci(const char *a, const char *b);
bool util_valid_utf8(const char *s, size_t n);

/* Percent-decode in place ('+' is left alone unless plus_is_space). Returns new length. */
size_t util_url_decode(char *s, bool plus_is_space);

/* A file of secrets (mode from stat) that others can read, or anyone but
 * its owner can change, is refused: -1 with e filled (code), in one wording:
 * "WHATPATH can be read by ... (mode 644); it WHY: chmod 600 PATH (or 640,
 * for a group the service runs as)". 0 when the mode is safe. */
int util_secret_mode(unsigned mode, const char *path, const char *what, const char *why,
                     const char *code, err_t *e);

#endif
