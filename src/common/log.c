/*
 * log: leveled logging to stderr. See log.h.
 */
#include "log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
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

void
log_msg(log_level lvl, const char *fmt, ...)
{
    if (lvl < cur_level)
        return;
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    if (status.shown)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "%s.%03ldZ %-5s ", when, ts.tv_nsec / 1000000, level_names[lvl]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    if (status.shown)
        fputs(status.text, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
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
