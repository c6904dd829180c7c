/*
 * worker: background threads that leave signals to the main thread.
 */
#include "worker.h"

#include <errno.h>
#include <signal.h>

int
worker_start(worker_thread *t, void *(*fn)(void *), void *arg)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&t->thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    t->started = true;
    return 0;
}

void
worker_join(worker_thread *t)
{
    if (t && t->started) {
        pthread_join(t->thread, NULL);
        t->started = false;
    }
}
