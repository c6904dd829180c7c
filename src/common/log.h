/*
 * log: leveled logging to stderr, one line per event, with a timestamp, as
 * text ("TS LEVEL message"), logfmt or JSON (stable keys: ts, level,
 * component, object, msg, repeated). A message's newlines are folded into
 * spaces. A warning or error that one call site repeats is written three
 * times a minute; the rest are counted and said once, with the count.
 *
 * Never log secrets: passwords, client secrets, access or refresh tokens.
 * log_redact() shortens a token to a recognisable but useless prefix.
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include <stdio.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

typedef enum { LOG_TEXT, LOG_LOGFMT, LOG_JSON } log_format;

void log_set_level(log_level lvl);
void log_set_format(log_format f);
int log_format_parse(const char *name, log_format *out); /* text, logfmt, json */
/* Write to f instead of stderr (tests). */
void log_set_stream(FILE *f);
/* Say the counts of warnings held back (at exit). */
void log_flush_repeats(void);
int log_level_parse(const char *name, log_level *out); /* 0 ok, -1 unknown */
void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The status line (a progress bar). On a terminal it is drawn in place
 * below the log lines, which are written above it; log_status_end leaves
 * its last text on screen and moves on. Elsewhere each call is one line. */
void log_status(const char *line);
void log_status_end(void);
bool log_is_tty(void); /* whether stderr is a terminal */

/* "00D000000000001!AQ8x..." -> "00D000000000001!AQ8x…" into buf. */
const char *log_redact(const char *secret, char *buf, unsigned bufsz);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
