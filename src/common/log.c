/*
 * log: leveled logging to stderr. See log.h.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static log_level cur_level = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
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
    fprintf(stderr, "%s.%03ldZ %-5s ", when, ts.tv_nsec / 1000000, level_names[lvl]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
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
