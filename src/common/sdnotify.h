/*
 * sdnotify: systemd's service notification protocol, without libsystemd.
 *
 * Under a unit with Type=notify, systemd passes $NOTIFY_SOCKET: a datagram
 * socket, a path ("/run/systemd/notify") or an abstract name ("@..."). A
 * message is newline-separated VAR=value assignments sent as one datagram:
 * READY=1 (started; systemd now calls the unit active), RELOADING=1 (reading
 * the configuration again; READY=1 follows when done), STOPPING=1, STATUS=...
 * (one line shown by `systemctl status`), WATCHDOG=1 (alive, when the unit has
 * WatchdogSec=). See sd_notify(3) and systemd.service(5).
 *
 * Every function is a no-op returning 0 when $NOTIFY_SOCKET is unset (run by
 * hand, by another supervisor, in a container): callers never need to ask
 * first. Each call opens its own socket, so any thread may call them.
 */
#ifndef SDNOTIFY_H
#define SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* Whether $NOTIFY_SOCKET is set (a supervisor listens). */
bool sdnotify_enabled(void);

/* Send msg ("READY=1\nSTATUS=syncing") as one datagram. 0 sent (or nothing
 * to send to), -1 with e filled: an address sfbridge cannot use, no such
 * socket, a refused send. */
int sdnotify_send(const char *msg, err_t *e) ERR_MUST_CHECK;

/* READY=1, with STATUS=status too when status is not NULL. */
int sdnotify_ready(const char *status, err_t *e) ERR_MUST_CHECK;
/* RELOADING=1 and MONOTONIC_USEC=<now> (which Type=notify-reload, systemd
 * 253 and later, requires); send sdnotify_ready() when the reload is done. */
int sdnotify_reloading(err_t *e) ERR_MUST_CHECK;
/* STOPPING=1: the service is shutting down. */
int sdnotify_stopping(err_t *e) ERR_MUST_CHECK;
/* STATUS=<text> (printf format). A newline in the text becomes a space: the
 * protocol's assignments are one line each. */
int sdnotify_status(err_t *e, const char *fmt, ...) ERR_MUST_CHECK
    __attribute__((format(printf, 2, 3)));
/* WATCHDOG=1: keep-alive for WatchdogSec=. */
int sdnotify_watchdog(err_t *e) ERR_MUST_CHECK;

/* The unit's watchdog interval in microseconds ($WATCHDOG_USEC, when
 * $WATCHDOG_PID is unset or names this process), or 0 without a watchdog.
 * Send sdnotify_watchdog() at least every half of it. */
int64_t sdnotify_watchdog_usec(void);

#endif
