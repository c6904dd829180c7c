/*
 * Unit tests for sdnotify: each message arrives as one datagram on the
 * socket $NOTIFY_SOCKET names (a path, or an abstract '@' name), nothing is
 * sent without it, and unusable addresses are errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

/* A bound datagram socket standing in for systemd's. */
typedef struct listener {
    int fd;
    char name[108]; /* what NOTIFY_SOCKET says */
    char dir[64];   /* the temporary directory of a path socket, or "" */
} listener;

static void
listener_bind(listener *l, int abstract)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t len;
    l->dir[0] = '\0';
    if (abstract) {
        snprintf(l->name, sizeof l->name, "@sfbridge-test-sdnotify-%ld", (long)getpid());
        memcpy(sa.sun_path, l->name, strlen(l->name));
        sa.sun_path[0] = '\0';
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(l->name));
    } else {
        snprintf(l->dir, sizeof l->dir, "/tmp/sdnotify-XXXXXX");
        assert_non_null(mkdtemp(l->dir));
        snprintf(l->name, sizeof l->name, "%s/notify", l->dir);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", l->name);
        len = (socklen_t)sizeof sa;
    }
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(l->fd >= 0);
    assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, len), 0);
    struct timeval tv = {.tv_sec = 5};
    assert_int_equal(setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", l->name, 1), 0);
}

static void
listener_close(listener *l)
{
    close(l->fd);
    if (l->dir[0]) {
        unlink(l->name);
        rmdir(l->dir);
    }
    unsetenv("NOTIFY_SOCKET");
}

/* The next datagram, NUL-terminated, into buf. */
static void
receive(listener *l, char *buf, size_t size)
{
    ssize_t n = recv(l->fd, buf, size - 1, 0);
    if (n < 0)
        fail_msg("no datagram arrived: %s", strerror(errno));
    buf[n] = '\0';
}

static void
test_unset_is_a_no_op(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    err_t e = {0};
    assert_false(sdnotify_enabled());
    assert_int_equal(sdnotify_ready("syncing", &e), 0);
    assert_int_equal(sdnotify_stopping(&e), 0);
    assert_int_equal(sdnotify_status(&e, "%d mappings", 3), 0);
    assert_int_equal(sdnotify_send("READY=1", &e), 0);
    assert_int_equal(err_class_of(&e), ERR_OK);
    setenv("NOTIFY_SOCKET", "", 1); /* empty counts as unset */
    assert_false(sdnotify_enabled());
    assert_int_equal(sdnotify_watchdog(&e), 0);
    unsetenv("NOTIFY_SOCKET");
}

static void
test_path_socket(void **state)
{
    (void)state;
    listener l;
    listener_bind(&l, 0);
    err_t e = {0};
    char buf[4096];
    assert_true(sdnotify_enabled());
    assert_int_equal(sdnotify_ready(NULL, &e), 0);
    receive(&l, buf, sizeof buf);
    assert_string_equal(buf, "READY=1");
    assert_int_equal(sdnotify_ready("syncing\n3 mappings", &e), 0);
    receive(&l, buf, sizeof buf);
    assert_string_equal(buf, "READY=1\nSTATUS=syncing 3 mappings");
    assert_int_equal(sdnotify_stopping(&e), 0);
    receive(&l, buf, sizeof buf);
    assert_string_equal(buf, "STOPPING=1");
    listener_close(&l);
}

static void
test_abstract_socket(void **state)
{
    (void)state;
    listener l;
    listener_bind(&l, 1);
    err_t e = {0};
    char buf[4096];
    assert_int_equal(sdnotify_status(&e, "%d of %d mappings\nsynced", 2, 3), 0);
    receive(&l, buf, sizeof buf);
    assert_string_equal(buf, "STATUS=2 of 3 mappings synced");
    assert_int_equal(sdnotify_watchdog(&e), 0);
    receive(&l, buf, sizeof buf);
    assert_string_equal(buf, "WATCHDOG=1");
    assert_int_equal(sdnotify_reloading(&e), 0);
    receive(&l, buf, sizeof buf);
    assert_memory_equal(buf,
                        "RELOADING=1\nMONOTONIC_USEC=", strlen("RELOADING=1\nMONOTONIC_USEC="));
    char *end = NULL;
    long long usec = strtoll(buf + strlen("RELOADING=1\nMONOTONIC_USEC="), &end, 10);
    assert_true(usec > 0);
    assert_int_equal(*end, '\0');
    assert_int_equal(sdnotify_send("READY=1\nSTATUS=reloaded", &e), 0);
    receive(&l, buf, sizeof buf);
    assert_string_equal(buf, "READY=1\nSTATUS=reloaded");
    listener_close(&l);
}

static void
test_long_status_is_cut_not_overflowed(void **state)
{
    (void)state;
    listener l;
    listener_bind(&l, 1);
    err_t e = {0};
    char big[8000], buf[16384];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sdnotify_status(&e, "%s", big), 0);
    receive(&l, buf, sizeof buf);
    assert_memory_equal(buf, "STATUS=xxx", 10);
    assert_true(strlen(buf) < sizeof big);
    listener_close(&l);
}

static void
test_unusable_addresses(void **state)
{
    (void)state;
    err_t e = {0};
    setenv("NOTIFY_SOCKET", "run/notify", 1); /* relative: neither form */
    assert_int_equal(sdnotify_ready(NULL, &e), -1);
    assert_string_equal(e.code, "NOTIFY_SOCKET");
    assert_non_null(strstr(e.msg, "run/notify"));
    err_clear(&e);
    setenv("NOTIFY_SOCKET", "/nonexistent/sfbridge-notify", 1);
    assert_int_equal(sdnotify_stopping(&e), -1);
    assert_non_null(strstr(e.msg, "STOPPING=1"));
    assert_non_null(strstr(e.msg, "/nonexistent/sfbridge-notify"));
    err_clear(&e);
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[0] = '/';
    longname[sizeof longname - 1] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(sdnotify_watchdog(&e), -1);
    assert_int_equal(sdnotify_watchdog(NULL), -1); /* a NULL err_t is allowed */
    unsetenv("NOTIFY_SOCKET");
}

static void
test_watchdog_interval(void **state)
{
    (void)state;
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    assert_int_equal(sdnotify_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_int_equal(sdnotify_watchdog_usec(), 30000000);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(sdnotify_watchdog_usec(), 30000000);
    setenv("WATCHDOG_PID", "1", 1); /* another process's watchdog */
    assert_int_equal(sdnotify_watchdog_usec(), 0);
    setenv("WATCHDOG_PID", pid, 1);
    setenv("WATCHDOG_USEC", "soon", 1);
    assert_int_equal(sdnotify_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_is_a_no_op),
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_long_status_is_cut_not_overflowed),
        cmocka_unit_test(test_unusable_addresses),
        cmocka_unit_test(test_watchdog_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
