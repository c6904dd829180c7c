/*
 * sdnotify: systemd's service notification protocol, without libsystemd:
 * one datagram to $NOTIFY_SOCKET per message. See sdnotify.h.
 */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define SDNOTIFY_MSG_MAX 2048

bool
sdnotify_enabled(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    return s != NULL && s[0] != '\0';
}

/* $NOTIFY_SOCKET as a socket address: "/path", or "@name" for Linux's
 * abstract namespace (a leading NUL byte, and no terminating one). */
static int
notify_addr(const char *name, struct sockaddr_un *sa, socklen_t *len, err_t *e)
{
    size_t n = strlen(name);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (name[0] != '/' && name[0] != '@')
        return err_set(e, 500, "NOTIFY_SOCKET",
                       "NOTIFY_SOCKET '%s' is neither a path nor an abstract socket (@name)", name);
    if (n >= sizeof sa->sun_path || n < 2)
        return err_set(e, 500, "NOTIFY_SOCKET", "NOTIFY_SOCKET '%s' is not a usable socket name",
                       name);
    memcpy(sa->sun_path, name, n);
    if (name[0] == '@')
        sa->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
    return 0;
}

int
sdnotify_send(const char *msg, err_t *e)
{
    if (!sdnotify_enabled())
        return 0;
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t len = 0;
    if (notify_addr(name, &sa, &len, e) != 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(e, 500, "NOTIFY_SOCKET", "cannot make a socket to tell systemd: %s",
                       strerror(errno));
    size_t n = strlen(msg);
    ssize_t sent;
    do
        sent = sendto(fd, msg, n, MSG_NOSIGNAL, (const struct sockaddr *)&sa, len);
    while (sent < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (sent < 0)
        return err_set(e, 500, "NOTIFY_SOCKET", "cannot tell systemd '%.*s' through %s: %s",
                       (int)strcspn(msg, "\n"), msg, name, strerror(saved));
    if ((size_t)sent != n)
        return err_set(e, 500, "NOTIFY_SOCKET", "systemd got %zd of %zu bytes through %s", sent, n,
                       name);
    return 0;
}

int
sdnotify_ready(const char *status, err_t *e)
{
    if (status == NULL)
        return sdnotify_send("READY=1", e);
    if (!sdnotify_enabled())
        return 0;
    char msg[SDNOTIFY_MSG_MAX];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status);
    for (char *p = msg + strlen("READY=1\nSTATUS="); *p; p++)
        if (*p == '\n')
            *p = ' ';
    return sdnotify_send(msg, e);
}

int
sdnotify_reloading(err_t *e)
{
    if (!sdnotify_enabled())
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[96];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%lld",
             (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000);
    return sdnotify_send(msg, e);
}

int
sdnotify_stopping(err_t *e)
{
    return sdnotify_send("STOPPING=1", e);
}

int
sdnotify_status(err_t *e, const char *fmt, ...)
{
    if (!sdnotify_enabled())
        return 0;
    char msg[SDNOTIFY_MSG_MAX] = "STATUS=";
    size_t off = strlen(msg);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + off, sizeof msg - off, fmt, ap);
    va_end(ap);
    for (char *p = msg + off; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return sdnotify_send(msg, e);
}

int
sdnotify_watchdog(err_t *e)
{
    return sdnotify_send("WATCHDOG=1", e);
}

int64_t
sdnotify_watchdog_usec(void)
{
    const char *pid = getenv("WATCHDOG_PID"), *usec = getenv("WATCHDOG_USEC");
    int64_t p = 0, u = 0;
    if (pid && pid[0] && (util_parse_i64(pid, &p) != 0 || p != (int64_t)getpid()))
        return 0;
    if (!usec || util_parse_i64(usec, &u) != 0 || u <= 0)
        return 0;
    return u;
}
