/*
 * worker: a background thread that leaves signals to the main thread.
 *
 * SIGINT, SIGTERM and SIGHUP are blocked in the new thread, so they always
 * reach the main thread, which sets the stop flag the worker watches.
 */
#ifndef WORKER_H
#define WORKER_H

#include <pthread.h>
#include <stdbool.h>

typedef struct worker_thread {
    pthread_t thread;
    bool started;
} worker_thread;

/* Start fn(arg) on a new thread; 0 or -1 (errno from pthread_create). */
int worker_start(worker_thread *t, void *(*fn)(void *), void *arg);
/* Wait for it to return (no-op if it never started or was joined). */
void worker_join(worker_thread *t);

#endif
