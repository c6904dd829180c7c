/*
 * events: the change event log (being written). See events.h.
 */
#include "events.h"

#include <stdlib.h>

#include "util.h"

struct lf_events {
    store           *st;
    lf_events_config cfg;
};

lf_events *
events_new(store *st, const lf_events_config *cfg, err_t *e)
{
    (void)e;
    lf_events *ev = xcalloc(1, sizeof *ev);
    ev->st = st;
    if (cfg)
        ev->cfg = *cfg;
    return ev;
}

void
events_free(lf_events *ev)
{
    free(ev);
}
