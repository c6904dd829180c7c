/*
 * webhook: delivers the notifications (db/notices.c) to SFBRIDGE_WEBHOOK_URL
 * as JSON POSTs, on a thread of its own with its own Postgres connection, so
 * a slow or dead receiver never holds up the sync. A notification is marked
 * delivered when the receiver answers 2xx, and tried again with backoff
 * (up to 10 minutes apart) until it does: each event reaches it once while
 * it answers. Notifications older than a day when first seen are not sent.
 */
#ifndef WEBHOOK_H
#define WEBHOOK_H

#include <signal.h>

#include "config.h"

typedef struct webhook webhook;

/* Start delivering (c->webhook_url set; the settings are copied). NULL when
 * the thread cannot start. stop: the flag that ends it. */
webhook *webhook_start(const cfg *c, volatile sig_atomic_t *stop);
void webhook_stop(webhook *w); /* after *stop is set: join and free */

#endif
