/*
 * log: leveled logging to stderr. See log.h.
 */
#include "log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static log_level cur_level = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* The status line (log_status): on a terminal it stays below the log lines,
 * cleared before each line is written and drawn again after it. */
static struct {
    int tty;    /* -1 not yet known, else whether stderr is a terminal */
    bool shown; /* on a terminal: the line is on screen, the cursor at its end */
    char text[512];
} status = {-1, false, ""};

static bool
on_tty(void)
{
    if (status.tty < 0)
        status.tty = isatty(2);
    return status.tty == 1;
}
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
log_set_level(log_level lvl)
{
    cur_level = lvl;
}

int
log_level_parse(const char *name, log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    return -1;
}

/* ---- formats ------------------------------------------------------------------ */

static log_format cur_format = LOG_TEXT;
static FILE *out_stream; /* NULL: stderr */

static const char *const format_names[] = {"text", "logfmt", "json"};

void
log_set_format(log_format f)
{
    cur_format = f;
}

int
log_format_parse(const char *name, log_format *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, format_names[i]) == 0) {
            *out = (log_format)i;
            return 0;
        }
    return -1;
}

void
log_set_stream(FILE *f)
{
    out_stream = f;
}

static FILE *
out(void)
{
    return out_stream ? out_stream : stderr;
}

/* One line: a newline and the white space around it become one space (a
 * libpq message spans lines), other control characters a space. */
static void
fold(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        unsigned char c = (unsigned char)*r;
        if (c == '\n' || c == '\r') {
            while (w > s && (w[-1] == ' ' || w[-1] == '\t'))
                w--;
            while (r[1] == ' ' || r[1] == '\t' || r[1] == '\n' || r[1] == '\r')
                r++;
            *w++ = ' ';
        } else {
            *w++ = c < 0x20 ? ' ' : (char)c;
        }
    }
    while (w > s && w[-1] == ' ')
        w--;
    *w = '\0';
}

/* The keys a message's words give: "sfapi: ..." names its component (a
 * lowercase word), "Teacher__c: ..." the object of a mapping (an API name). */
typedef struct fields {
    char component[32];
    char object[128];
    const char *msg; /* what is left */
} fields;

static size_t
word_len(const char *s, bool object)
{
    size_t n = 0;
    while (s[n] && (object ? (s[n] == '_' || (s[n] >= 'A' && s[n] <= 'Z') ||
                              (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9'))
                           : (s[n] >= 'a' && s[n] <= 'z')))
        n++;
    return n;
}

static void
split_fields(const char *msg, fields *f)
{
    memset(f, 0, sizeof *f);
    f->msg = msg;
    size_t n = word_len(msg, false);
    if (n && n < sizeof f->component && strncmp(msg + n, ": ", 2) == 0) {
        memcpy(f->component, msg, n);
        msg += n + 2;
        f->msg = msg;
    }
    n = word_len(msg, true);
    bool api_name = n && msg[0] >= 'A' && msg[0] <= 'Z';
    if (api_name && n < sizeof f->object && strncmp(msg + n, ": ", 2) == 0) {
        memcpy(f->object, msg, n);
        f->msg = msg + n + 2;
    }
}

static void
json_str(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 0x20)
            fprintf(o, "\\u%04x", c);
        else
            fputc(c, o);
    }
    fputc('"', o);
}

/* logfmt: a value with a space, '=', '"' or nothing is quoted. */
static void
logfmt_val(FILE *o, const char *s)
{
    if (*s && !strpbrk(s, " =\"\\")) {
        fputs(s, o);
        return;
    }
    fputc('"', o);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', o);
        fputc(*s, o);
    }
    fputc('"', o);
}

static void
write_line(const char *when, log_level lvl, const char *msg, int repeated)
{
    FILE *o = out();
    if (cur_format == LOG_TEXT) {
        fprintf(o, "%s %-5s %s\n", when, level_names[lvl], msg);
        return;
    }
    fields f;
    split_fields(msg, &f);
    const char *keys[] = {"component", "object"};
    const char *vals[] = {f.component, f.object};
    if (cur_format == LOG_JSON) {
        fprintf(o, "{\"ts\":\"%s\",\"level\":\"%s\"", when, level_names[lvl]);
        for (int i = 0; i < 2; i++)
            if (*vals[i]) {
                fprintf(o, ",\"%s\":", keys[i]);
                json_str(o, vals[i]);
            }
        if (repeated)
            fprintf(o, ",\"repeated\":%d", repeated);
        fputs(",\"msg\":", o);
        json_str(o, f.msg);
        fputs("}\n", o);
        return;
    }
    fprintf(o, "ts=%s level=%s", when, level_names[lvl]);
    for (int i = 0; i < 2; i++)
        if (*vals[i]) {
            fprintf(o, " %s=", keys[i]);
            logfmt_val(o, vals[i]);
        }
    if (repeated)
        fprintf(o, " repeated=%d", repeated);
    fputs(" msg=", o);
    logfmt_val(o, f.msg);
    fputc('\n', o);
}

/* ---- repeated warnings ------------------------------------------------------------ */

/* Warnings and errors from one call site (its format string) are written at
 * most LOG_BURST times a window; the rest are counted and said once, with
 * their count, when the window ends. */
#define LOG_BURST     3
#define LOG_WINDOW_MS 60000
#define LOG_SITES     64

static struct site {
    const char *fmt;
    int64_t window_ms;
    int written, held;
    log_level lvl;
    char last[256];
} sites[LOG_SITES];

static int64_t
mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void
stamp(char when[40])
{
    struct timespec ts;
    struct tm tm;
    char day[24];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when, 40, "%.20s.%03dZ", day, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* Say how many of a site's messages were held back (under the lock). */
static void
say_held(struct site *st)
{
    if (!st->held)
        return;
    char when[40], msg[400];
    stamp(when);
    snprintf(msg, sizeof msg, "%s (and %d more like it in %d s)", st->last, st->held,
             LOG_WINDOW_MS / 1000);
    write_line(when, st->lvl, msg, st->held);
    st->held = 0;
}

/* Whether a warning from fmt may be written now (under the lock). */
static bool
admit(const char *fmt, log_level lvl, const char *msg)
{
    int64_t now = mono_ms();
    struct site *st = NULL, *oldest = &sites[0];
    for (int i = 0; i < LOG_SITES; i++) {
        if (sites[i].fmt == fmt) {
            st = &sites[i];
            break;
        }
        if (sites[i].window_ms < oldest->window_ms)
            oldest = &sites[i];
    }
    if (!st) {
        say_held(oldest);
        st = oldest;
        memset(st, 0, sizeof *st);
        st->fmt = fmt;
    }
    if (now - st->window_ms >= LOG_WINDOW_MS) {
        say_held(st);
        st->window_ms = now;
        st->written = 0;
    }
    st->lvl = lvl;
    if (st->written < LOG_BURST) {
        st->written++;
        return true;
    }
    st->held++;
    snprintf(st->last, sizeof st->last, "%.255s", msg);
    return false;
}

void
log_flush_repeats(void)
{
    pthread_mutex_lock(&log_lock);
    for (int i = 0; i < LOG_SITES; i++)
        say_held(&sites[i]);
    fflush(out());
    pthread_mutex_unlock(&log_lock);
}

void
log_msg(log_level lvl, const char *fmt, ...)
{
    if (lvl < cur_level)
        return;
    char when[40], msg[4096];
    stamp(when);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fold(msg);
    pthread_mutex_lock(&log_lock);
    if (lvl < LOG_WARN || admit(fmt, lvl, msg)) {
        if (status.shown)
            fputs("\r\033[K", stderr);
        write_line(when, lvl, msg, 0);
        if (status.shown)
            fputs(status.text, stderr);
        fflush(out());
    }
    pthread_mutex_unlock(&log_lock);
}

void
log_status(const char *line)
{
    pthread_mutex_lock(&log_lock);
    if (on_tty()) {
        snprintf(status.text, sizeof status.text, "%s", line);
        fprintf(stderr, "\r%s\033[K", status.text);
        status.shown = true;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

void
log_status_end(void)
{
    pthread_mutex_lock(&log_lock);
    if (status.shown)
        fputc('\n', stderr);
    status.shown = false;
    status.text[0] = '\0';
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

bool
log_is_tty(void)
{
    pthread_mutex_lock(&log_lock);
    bool t = on_tty();
    pthread_mutex_unlock(&log_lock);
    return t;
}

const char *
log_redact(const char *secret, char *buf, unsigned bufsz)
{
    if (secret == NULL)
        return "(none)";
    size_t keep = strlen(secret) > 24 ? 20 : strlen(secret) / 3;
    snprintf(buf, bufsz, "%.*s...", (int)keep, secret);
    return buf;
}
