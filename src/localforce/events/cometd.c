/*
 * cometd: the Streaming API's Bayeux long polling. See cometd.h.
 *
 * Clients live in a list guarded by c->mu. Each has its subscriptions, each
 * subscription a cursor: the replayId after which its next events come.
 * Events themselves stay in the event log (events.h) and are read when a
 * connect is answered, so a replay and live delivery are the same path.
 *
 * A connect that has nothing to deliver is parked (http_defer) on its
 * client. The delivery thread wakes when events commit (the events listener
 * signals c->cond), when a subscription may have made events pending, or
 * when the next deadline passes; it takes due parked connects off their
 * clients under c->mu, reads their events without c->mu, and completes them
 * (or parks them again if nothing matched). Whoever takes a parked request
 * off its client completes it, so each is answered exactly once.
 *
 * Lock order: the store lock, then c->mu (the events listener runs under
 * the store lock). So nothing here calls into events.h or the store while
 * holding c->mu, and http_complete is never called under it.
 */
#include "cometd.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "ctx.h"
#include "log.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS       110000
#define DEFAULT_EXPIRE_MS        110000
#define DEFAULT_EXPIRE_EVENTS_MS 40000
#define DEFAULT_MAX_CLIENTS      1000
#define MAX_SUBS                 100 /* per client */
#define MAX_MESSAGES             100 /* per request */
#define MAX_EVENTS_PER_REPLY     500
#define MAX_ID_LEN               128
#define MAX_CHANNEL_LEN          512
#define CLIENT_ID_LEN            27

typedef struct sub {
    char *channel;  /* as the client named it: events are delivered on it */
    char *key;      /* canonical (events_channel_key) */
    int64_t cursor; /* next events have replayId > cursor */
    uint64_t gen;   /* identifies this subscription (a re-subscribe gets a new one) */
} sub;

typedef struct client {
    char id[CLIENT_ID_LEN + 1];
    sub *subs;
    size_t nsubs;
    bool connected;    /* the first connect was answered */
    bool busy;         /* someone is reading its events */
    bool check;        /* look for events at the next connect */
    bool delivered;    /* the last connect reply carried events */
    int64_t last_seen; /* mono ms of the last request or reply */
    /* the parked connect, if any */
    http_pending *parked;
    char *parked_prefix; /* the request's other replies */
    int parked_n;
    char *parked_id;  /* the connect's id as JSON text, or NULL */
    int64_t deadline; /* mono ms when it is answered empty */
    struct client *next;
} client;

struct lf_cometd {
    lf_events *ev;
    lf_cometd_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    client *clients;
    int nclients;
    uint64_t gen;
    bool stopping;
    bool stopped;
    bool thread_started;
    pthread_t thread;
};

/* A parked connect taken off its client, to be answered. */
typedef struct parked {
    char client_id[CLIENT_ID_LEN + 1];
    http_pending *p;
    char *prefix;
    int n;
    char *id;
    bool timed_out;
} parked;

/* ----- helpers ------------------------------------------------------------- */

static client *
find_client(lf_cometd *c, const char *id)
{
    if (id == NULL)
        return NULL;
    for (client *cl = c->clients; cl; cl = cl->next)
        if (strcmp(cl->id, id) == 0)
            return cl;
    return NULL;
}

static void
sub_free(sub *s)
{
    free(s->channel);
    free(s->key);
}

static void
client_free(client *cl)
{
    for (size_t i = 0; i < cl->nsubs; i++)
        sub_free(&cl->subs[i]);
    free(cl->subs);
    free(cl->parked_prefix);
    free(cl->parked_id);
    free(cl);
}

static void
unlink_client(lf_cometd *c, client *cl)
{
    for (client **pp = &c->clients; *pp; pp = &(*pp)->next)
        if (*pp == cl) {
            *pp = cl->next;
            c->nclients--;
            return;
        }
}

/* Take the parked connect off cl (c->mu held). */
static bool
detach(client *cl, parked *out, bool timed_out)
{
    if (cl->parked == NULL)
        return false;
    memcpy(out->client_id, cl->id, sizeof out->client_id);
    out->p = cl->parked;
    out->prefix = cl->parked_prefix;
    out->n = cl->parked_n;
    out->id = cl->parked_id;
    out->timed_out = timed_out;
    cl->parked = NULL;
    cl->parked_prefix = NULL;
    cl->parked_id = NULL;
    cl->parked_n = 0;
    return true;
}

static void
emit(cometd_reply *r, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    if (text) {
        if (r->n++ > 0)
            sb_putc(&r->body, ',');
        sb_puts(&r->body, text);
        free(text);
    }
    json_decref(msg);
}

/* A reply's channel, then the request's id (if any): the order every reply uses. */
static void
set_channel_id(json_t *m, const char *channel, json_t *id)
{
    json_object_set_new(m, "channel", json_string(channel));
    if (id)
        json_object_set(m, "id", id);
}

/* A reply message: clientId (if any), channel, id (if any), then the rest. */
static json_t *
reply_new(const char *channel, json_t *id, const char *client_id)
{
    json_t *m = json_object();
    if (client_id)
        json_object_set_new(m, "clientId", json_string(client_id));
    set_channel_id(m, channel, id);
    return m;
}

static json_t *
error_reply(const char *channel, json_t *id, const char *client_id, const char *error)
{
    json_t *m = reply_new(channel, id, client_id);
    json_object_set_new(m, "error", json_string(error));
    json_object_set_new(m, "successful", json_false());
    return m;
}

static json_t *
unknown_client(const char *channel, json_t *id)
{
    json_t *m = json_object();
    json_object_set_new(m, "advice",
                        json_pack("{s:i,s:s}", "interval", 0, "reconnect", "handshake"));
    set_channel_id(m, channel, id);
    json_object_set_new(m, "error", json_string("403::Unknown client"));
    json_object_set_new(m, "successful", json_false());
    return m;
}

static void
new_client_id(char out[CLIENT_ID_LEN + 1])
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    unsigned char r[CLIENT_ID_LEN];
    util_random(r, sizeof r);
    for (int i = 0; i < CLIENT_ID_LEN; i++)
        out[i] = alphabet[r[i] % 36];
    out[0] = alphabet[1 + r[0] % 35]; /* no leading zero */
    out[CLIENT_ID_LEN] = '\0';
}

/* The message's "id", when it is one we echo: a short string or an integer. */
static int
message_id(json_t *m, json_t **id)
{
    json_t *v = json_object_get(m, "id");
    *id = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v) && json_string_length(v) <= MAX_ID_LEN) {
        *id = v;
        return 0;
    }
    if (json_is_integer(v)) {
        *id = v;
        return 0;
    }
    return -1;
}

/* ----- reading events for a client -------------------------------------------- */

typedef struct subsnap {
    char *channel, *key;
    int64_t cursor, next;
    uint64_t gen;
    bool fetched;
} subsnap;

/* Append the client's pending events (as Bayeux messages) to r. Returns how
 * many; never holds c->mu while reading. */
static int
deliver_events(lf_cometd *c, const char *client_id, cometd_reply *r)
{
    pthread_mutex_lock(&c->mu);
    client *cl = find_client(c, client_id);
    if (cl == NULL || cl->busy || cl->nsubs == 0) {
        if (cl && cl->busy)
            cl->check = true;
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    cl->busy = true;
    cl->check = false;
    size_t n = cl->nsubs;
    subsnap *snap = xcalloc(n, sizeof *snap);
    for (size_t i = 0; i < n; i++) {
        snap[i].channel = xstrdup(cl->subs[i].channel);
        snap[i].key = xstrdup(cl->subs[i].key);
        snap[i].cursor = cl->subs[i].cursor;
        snap[i].gen = cl->subs[i].gen;
    }
    pthread_mutex_unlock(&c->mu);

    int before = r->n, budget = MAX_EVENTS_PER_REPLY;
    bool more = false;
    for (size_t i = 0; i < n && !more; i++) {
        int start = r->n;
        err_t e;
        if (events_fetch(c->ev, snap[i].key, snap[i].channel, snap[i].cursor, budget, &r->body,
                         &r->n, &snap[i].next, &e) != 0) {
            log_warn("cometd: reading events for %s: %s", snap[i].channel, e.msg);
            break;
        }
        snap[i].fetched = true;
        budget -= r->n - start;
        if (budget <= 0)
            more = true;
    }

    pthread_mutex_lock(&c->mu);
    cl = find_client(c, client_id);
    if (cl) {
        for (size_t i = 0; i < n; i++) {
            if (!snap[i].fetched)
                continue;
            for (size_t k = 0; k < cl->nsubs; k++)
                if (cl->subs[k].gen == snap[i].gen && cl->subs[k].cursor < snap[i].next)
                    cl->subs[k].cursor = snap[i].next;
        }
        cl->busy = false;
        if (more)
            cl->check = true;
        if (cl->parked)
            pthread_cond_signal(&c->cond); /* the delivery thread skipped it while busy */
    }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        free(snap[i].channel);
        free(snap[i].key);
    }
    free(snap);
    return r->n - before;
}

/* Answer a parked connect with the messages in r (as a JSON array), and free
 * what the parked entry held. */
static void
send_parked(parked *pk, cometd_reply *r)
{
    http_resp resp = {.status = 200, .content_type = CT_JSON};
    sb_putc(&resp.body, '[');
    sb_append(&resp.body, sb_str(&r->body), r->body.len);
    sb_putc(&resp.body, ']');
    cometd_reply_free(r);
    http_complete(pk->p, &resp);
    free(pk->prefix);
    free(pk->id);
    pk->prefix = pk->id = NULL;
}

/* Events for the client, then the connect reply (with advice on the first). */
static void
answer_connect(lf_cometd *c, const char *client_id, json_t *id, cometd_reply *r)
{
    int got = deliver_events(c, client_id, r);
    pthread_mutex_lock(&c->mu);
    client *cl = find_client(c, client_id);
    bool first = false;
    if (cl) {
        first = !cl->connected;
        cl->connected = true;
        cl->last_seen = util_mono_ms();
        cl->delivered = got > 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (cl == NULL) {
        emit(r, unknown_client("/meta/connect", id));
        return;
    }
    json_t *m = reply_new("/meta/connect", id, client_id);
    if (first)
        json_object_set_new(m, "advice",
                            json_pack("{s:i,s:I,s:s}", "interval", 0, "timeout",
                                      (json_int_t)c->cfg.timeout_ms, "reconnect", "retry"));
    json_object_set_new(m, "successful", json_true());
    emit(r, m);
}

/* Answer a parked connect taken off its client: its events and reply. */
static void
complete_parked(lf_cometd *c, parked *pk, bool with_events)
{
    cometd_reply r = {.status = 200};
    if (pk->prefix) {
        sb_puts(&r.body, pk->prefix);
        r.n = pk->n;
    }
    json_t *id = pk->id ? json_loads(pk->id, JSON_DECODE_ANY, NULL) : NULL;
    if (with_events) {
        answer_connect(c, pk->client_id, id, &r);
    } else {
        json_t *m = reply_new("/meta/connect", id, pk->client_id);
        json_object_set_new(m, "successful", json_true());
        emit(&r, m);
    }
    json_decref(id);
    send_parked(pk, &r);
}

/* ----- the delivery thread ---------------------------------------------------- */

static bool
has_pending(const client *cl, int64_t last)
{
    if (cl->check)
        return true;
    for (size_t i = 0; i < cl->nsubs; i++)
        if (cl->subs[i].cursor < last)
            return true;
    return false;
}

static void
wait_until(lf_cometd *c, int64_t due_mono)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = util_mono_ms();
    int64_t wait = due_mono - now;
    if (wait <= 0)
        return;
    ts.tv_sec += wait / 1000;
    ts.tv_nsec += (wait % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&c->cond, &c->mu, &ts);
}

/* Parked connects that are due (events pending or timed out) are taken off
 * their clients; clients that did not come back in time are dropped.
 * c->mu held. Returns how many were taken; *due is the next deadline. */
static size_t
collect(lf_cometd *c, parked **work, size_t *cap, int64_t *due)
{
    int64_t now = util_mono_ms(), last = events_last(c->ev);
    size_t n = 0;
    *due = now + 60000;
    for (client **pp = &c->clients; *pp;) {
        client *cl = *pp;
        if (cl->parked) {
            bool pending = !cl->busy && has_pending(cl, last);
            if (pending || now >= cl->deadline) {
                if (n == *cap) {
                    *cap = *cap ? *cap * 2 : 16;
                    *work = xrealloc(*work, *cap * sizeof **work);
                }
                detach(cl, &(*work)[n++], !pending);
            } else if (cl->deadline < *due) {
                *due = cl->deadline;
            }
        } else if (!cl->busy) {
            int64_t limit = cl->delivered ? c->cfg.expire_events_ms : c->cfg.expire_ms;
            if (now - cl->last_seen > limit) {
                *pp = cl->next;
                c->nclients--;
                log_debug("cometd: client %s did not reconnect; dropped", cl->id);
                client_free(cl);
                continue;
            }
            if (cl->last_seen + limit + 1 < *due)
                *due = cl->last_seen + limit + 1;
        }
        pp = &cl->next;
    }
    return n;
}

/* Answer one taken connect, or put it back if its wake-up found nothing. */
static void
serve(lf_cometd *c, parked *pk)
{
    if (!pk->timed_out) {
        cometd_reply probe = {.status = 200};
        int got = deliver_events(c, pk->client_id, &probe);
        if (got == 0) {
            cometd_reply_free(&probe);
            /* Nothing for it after all (other channels' events): back to waiting,
             * unless something is still pending (then reading failed, or events
             * came meanwhile: the client comes straight back for them). */
            pthread_mutex_lock(&c->mu);
            client *cl = find_client(c, pk->client_id);
            if (cl && cl->parked == NULL && !c->stopping && !has_pending(cl, events_last(c->ev))) {
                cl->parked = pk->p;
                cl->parked_prefix = pk->prefix;
                cl->parked_n = pk->n;
                cl->parked_id = pk->id;
                pthread_mutex_unlock(&c->mu);
                return;
            }
            pthread_mutex_unlock(&c->mu);
            complete_parked(c, pk, false);
            return;
        }
        /* Answer with what was read: prefix, events, connect reply. */
        cometd_reply r = {.status = 200};
        if (pk->prefix) {
            sb_puts(&r.body, pk->prefix);
            r.n = pk->n;
        }
        if (r.n > 0)
            sb_putc(&r.body, ',');
        sb_append(&r.body, sb_str(&probe.body), probe.body.len);
        r.n += probe.n;
        cometd_reply_free(&probe);
        json_t *id = pk->id ? json_loads(pk->id, JSON_DECODE_ANY, NULL) : NULL;
        pthread_mutex_lock(&c->mu);
        client *cl = find_client(c, pk->client_id);
        if (cl) {
            cl->connected = true;
            cl->last_seen = util_mono_ms();
            cl->delivered = true;
        }
        pthread_mutex_unlock(&c->mu);
        json_t *m = reply_new("/meta/connect", id, pk->client_id);
        json_object_set_new(m, "successful", json_true());
        emit(&r, m);
        json_decref(id);
        send_parked(pk, &r);
        return;
    }
    complete_parked(c, pk, true);
}

static void *
delivery_main(void *arg)
{
    lf_cometd *c = arg;
    parked *work = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        int64_t due;
        size_t n = collect(c, &work, &cap, &due);
        if (n == 0) {
            wait_until(c, due);
            continue;
        }
        pthread_mutex_unlock(&c->mu);
        for (size_t i = 0; i < n; i++)
            serve(c, &work[i]);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    free(work);
    return NULL;
}

/* Events were committed (called under the store lock). */
static void
on_events(void *ctx)
{
    lf_cometd *c = ctx;
    pthread_mutex_lock(&c->mu);
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* Park a held connect on its client; answers at once when that cannot be. */
static void
park(lf_cometd *c, cometd_reply *r, http_pending *p)
{
    parked old = {0}, now = {0};
    bool had_old = false;
    pthread_mutex_lock(&c->mu);
    client *cl = find_client(c, r->client_id);
    if (cl == NULL || c->stopping || !c->thread_started) {
        pthread_mutex_unlock(&c->mu);
        memcpy(now.client_id, r->client_id, sizeof now.client_id);
        now.p = p;
        now.prefix = r->n ? sb_steal(&r->body) : NULL;
        now.n = r->n;
        now.id = r->connect_id;
        r->connect_id = NULL;
        cometd_reply_free(r);
        complete_parked(c, &now, true);
        return;
    }
    had_old = detach(cl, &old, true); /* a second connect ends the first */
    cl->parked = p;
    cl->parked_prefix = r->n ? sb_steal(&r->body) : NULL;
    cl->parked_n = r->n;
    cl->parked_id = r->connect_id;
    r->connect_id = NULL;
    cl->deadline = util_mono_ms() + c->cfg.timeout_ms;
    cl->last_seen = util_mono_ms();
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    cometd_reply_free(r);
    if (had_old)
        complete_parked(c, &old, false);
}

/* ----- Bayeux messages ------------------------------------------------------- */

/* Is the request from a known client? Touches it. */
static bool
known_client(lf_cometd *c, const char *id)
{
    pthread_mutex_lock(&c->mu);
    client *cl = find_client(c, id);
    if (cl)
        cl->last_seen = util_mono_ms();
    pthread_mutex_unlock(&c->mu);
    return cl != NULL;
}

static void
do_handshake(lf_cometd *c, json_t *id, const char *user_id, cometd_reply *r)
{
    if (user_id == NULL) {
        json_t *m = json_object();
        json_object_set_new(m, "ext",
                            json_pack("{s:{s:s},s:b,s:b}", "sfdc", "failureReason",
                                      "401::Authentication invalid", "replay", 1, "payload.format",
                                      1));
        json_object_set_new(m, "advice", json_pack("{s:s}", "reconnect", "none"));
        set_channel_id(m, "/meta/handshake", id);
        json_object_set_new(m, "error", json_string("403::Handshake denied"));
        json_object_set_new(m, "successful", json_false());
        emit(r, m);
        return;
    }
    client *cl = xcalloc(1, sizeof *cl);
    cl->last_seen = util_mono_ms();
    pthread_mutex_lock(&c->mu);
    bool full = c->nclients >= c->cfg.max_clients || c->stopping;
    if (!full) {
        do
            new_client_id(cl->id);
        while (find_client(c, cl->id));
        cl->next = c->clients;
        c->clients = cl;
        c->nclients++;
        /* The delivery thread may be asleep until a deadline computed before
         * this client existed: wake it to schedule the client's expiry. */
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
    if (full) {
        free(cl);
        emit(r, error_reply("/meta/handshake", id, NULL,
                            "403::Organization concurrent user limit exceeded"));
        return;
    }
    json_t *m = json_object();
    json_object_set_new(m, "ext", json_pack("{s:b,s:b}", "replay", 1, "payload.format", 1));
    json_object_set_new(m, "minimumVersion", json_string("1.0"));
    json_object_set_new(m, "clientId", json_string(cl->id));
    json_object_set_new(m, "supportedConnectionTypes", json_pack("[s]", "long-polling"));
    set_channel_id(m, "/meta/handshake", id);
    json_object_set_new(m, "version", json_string("1.0"));
    json_object_set_new(m, "successful", json_true());
    emit(r, m);
}

/* {"/topic/x": 5, ...} as Salesforce prints a replay map: {/topic/x=5, ...}. */
static void
replay_map_text(json_t *map, sb *out)
{
    const char *k;
    json_t *v;
    bool first = true;
    sb_putc(out, '{');
    json_object_foreach(map, k, v) {
        if (out->len > 400) {
            sb_puts(out, ", ...");
            break;
        }
        char *vt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        sb_printf(out, "%s%.100s=%.40s", first ? "" : ", ", k, vt ? vt : "?");
        free(vt);
        first = false;
    }
    sb_putc(out, '}');
}

/* The replay value the subscribe message asks for: -1 without the extension. */
static int
replay_value(json_t *msg, const char *channel, int64_t *replay, sb *error)
{
    *replay = -1;
    json_t *ext = json_object_get(msg, "ext");
    json_t *map = json_is_object(ext) ? json_object_get(ext, "replay") : NULL;
    if (!json_is_object(map))
        return 0;
    json_t *v = json_object_get(map, channel);
    if (v == NULL) {
        sb_printf(error,
                  "400::The replayId for channel {%s} wasn't found using the provided "
                  "replay ID map {",
                  channel);
        replay_map_text(map, error);
        sb_puts(error, "}. Please provide a valid ID, -2 to replay all events, or -1 to replay "
                       "only new events.");
        return -1;
    }
    if (json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        *replay = json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && util_parse_i64(json_string_value(v), replay) == 0)
        return 0;
    if (json_is_real(v) && json_real_value(v) > -1e15 && json_real_value(v) < 1e15 &&
        json_real_value(v) == (double)(int64_t)json_real_value(v)) {
        *replay = (int64_t)json_real_value(v);
        return 0;
    }
    char *vt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    sb_printf(error,
              "400::The replayId {%.60s} you provided was invalid. Please provide a valid "
              "ID, -2 to replay all events, or -1 to replay only new events.",
              vt ? vt : "?");
    free(vt);
    return -1;
}

static void
do_subscribe(lf_cometd *c, json_t *msg, json_t *id, const char *client_id, cometd_reply *r)
{
    json_t *js = json_object_get(msg, "subscription");
    const char *channel = json_string_value(js);
    if (channel == NULL || json_string_length(js) > MAX_CHANNEL_LEN ||
        strlen(channel) != json_string_length(js)) {
        emit(r, error_reply("/meta/subscribe", id, client_id, "400::Invalid subscription"));
        return;
    }
    char key[MAX_CHANNEL_LEN + 64];
    err_t e;
    sb error = SB_INIT;
    int64_t replay, after = 0;
    if (events_channel_key(c->ev, channel, key, sizeof key, &e) != 0)
        sb_printf(&error, "400::%s", e.msg);
    else if (replay_value(msg, channel, &replay, &error) == 0 &&
             events_replay_start(c->ev, replay, &after, &e) != 0)
        sb_printf(&error, "400::%s", e.msg);
    if (error.len) {
        json_t *m = reply_new("/meta/subscribe", id, client_id);
        json_object_set_new(m, "subscription", json_string(channel));
        json_object_set_new(m, "error", json_string(error.buf));
        json_object_set_new(m, "successful", json_false());
        emit(r, m);
        sb_free(&error);
        return;
    }
    const char *failure = NULL;
    pthread_mutex_lock(&c->mu);
    client *cl = find_client(c, client_id);
    if (cl == NULL) {
        failure = "403::Unknown client";
    } else {
        sub *s = NULL;
        for (size_t i = 0; i < cl->nsubs && s == NULL; i++)
            if (strcmp(cl->subs[i].channel, channel) == 0)
                s = &cl->subs[i];
        if (s == NULL && cl->nsubs >= MAX_SUBS) {
            failure = "403::Too many subscriptions for this client";
        } else {
            if (s == NULL) {
                cl->subs = xrealloc(cl->subs, (cl->nsubs + 1) * sizeof *cl->subs);
                s = &cl->subs[cl->nsubs++];
                s->channel = xstrdup(channel);
                s->key = xstrdup(key);
            }
            s->cursor = after;
            s->gen = ++c->gen;
            pthread_cond_signal(&c->cond); /* a parked connect may have events now */
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (failure && strcmp(failure, "403::Unknown client") == 0) {
        emit(r, unknown_client("/meta/subscribe", id));
        return;
    }
    json_t *m = reply_new("/meta/subscribe", id, client_id);
    json_object_set_new(m, "subscription", json_string(channel));
    if (failure)
        json_object_set_new(m, "error", json_string(failure));
    json_object_set_new(m, "successful", json_boolean(failure == NULL));
    emit(r, m);
}

static void
do_unsubscribe(lf_cometd *c, json_t *msg, json_t *id, const char *client_id, cometd_reply *r)
{
    json_t *js = json_object_get(msg, "subscription");
    const char *channel = json_string_value(js);
    if (channel == NULL || json_string_length(js) > MAX_CHANNEL_LEN) {
        emit(r, error_reply("/meta/unsubscribe", id, client_id, "400::Invalid subscription"));
        return;
    }
    pthread_mutex_lock(&c->mu);
    client *cl = find_client(c, client_id);
    if (cl) {
        for (size_t i = 0; i < cl->nsubs; i++)
            if (strcmp(cl->subs[i].channel, channel) == 0) {
                sub_free(&cl->subs[i]);
                cl->subs[i] = cl->subs[--cl->nsubs];
                break;
            }
    }
    pthread_mutex_unlock(&c->mu);
    if (cl == NULL) {
        emit(r, unknown_client("/meta/unsubscribe", id));
        return;
    }
    json_t *m = reply_new("/meta/unsubscribe", id, client_id);
    json_object_set_new(m, "subscription", json_string(channel));
    json_object_set_new(m, "successful", json_true());
    emit(r, m);
}

static void
do_disconnect(lf_cometd *c, json_t *id, const char *client_id, cometd_reply *r)
{
    parked pk = {0};
    bool had = false;
    pthread_mutex_lock(&c->mu);
    client *cl = find_client(c, client_id);
    bool known = cl != NULL;
    if (cl) {
        /* Anyone reading its events meanwhile finds it gone and lets go. */
        had = detach(cl, &pk, true);
        unlink_client(c, cl);
        client_free(cl);
    }
    pthread_mutex_unlock(&c->mu);
    if (had)
        complete_parked(c, &pk, false);
    if (!known) {
        emit(r, unknown_client("/meta/disconnect", id));
        return;
    }
    json_t *m = reply_new("/meta/disconnect", id, client_id);
    json_object_set_new(m, "successful", json_true());
    emit(r, m);
}

/* A connect: answered now, or held (r->hold). */
static void
do_connect(lf_cometd *c, json_t *msg, json_t *id, const char *client_id, bool alone,
           cometd_reply *r)
{
    pthread_mutex_lock(&c->mu);
    client *cl = find_client(c, client_id);
    bool first = cl && !cl->connected;
    if (cl)
        cl->last_seen = util_mono_ms();
    pthread_mutex_unlock(&c->mu);
    if (cl == NULL) {
        emit(r, unknown_client("/meta/connect", id));
        return;
    }
    /* faye asks for an immediate answer with advice.timeout 0 when it batches. */
    json_t *advice = json_object_get(msg, "advice");
    json_t *to = json_is_object(advice) ? json_object_get(advice, "timeout") : NULL;
    bool now = first || !alone || r->hold || (json_is_number(to) && json_number_value(to) == 0);
    if (now) {
        answer_connect(c, client_id, id, r);
        return;
    }
    r->hold = true;
    snprintf(r->client_id, sizeof r->client_id, "%s", client_id);
    r->connect_id = id ? json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
}

static const char *
client_id_of(json_t *msg)
{
    json_t *v = json_object_get(msg, "clientId");
    if (!json_is_string(v) || json_string_length(v) > 64)
        return NULL;
    return json_string_value(v);
}

static void
one_message(lf_cometd *c, json_t *msg, const char *user_id, bool alone, cometd_reply *r)
{
    if (!json_is_object(msg)) {
        json_t *m = json_object();
        json_object_set_new(m, "error", json_string("400::A Bayeux message must be a JSON object"));
        json_object_set_new(m, "successful", json_false());
        emit(r, m);
        return;
    }
    json_t *id = NULL;
    bool bad_id = message_id(msg, &id) != 0;
    json_t *jc = json_object_get(msg, "channel");
    const char *channel = json_string_value(jc);
    if (bad_id || channel == NULL || json_string_length(jc) > MAX_CHANNEL_LEN ||
        strlen(channel) != json_string_length(jc) || channel[0] != '/') {
        json_t *m = json_object();
        if (channel && json_string_length(jc) <= MAX_CHANNEL_LEN)
            json_object_set(m, "channel", jc);
        if (id)
            json_object_set(m, "id", id);
        json_object_set_new(m, "error",
                            json_string(bad_id ? "400::Invalid message id"
                                               : "400::Invalid or missing channel"));
        json_object_set_new(m, "successful", json_false());
        emit(r, m);
        return;
    }
    if (strcmp(channel, "/meta/handshake") == 0) {
        do_handshake(c, id, user_id, r);
        return;
    }
    bool meta = strncmp(channel, "/meta/", 6) == 0;
    if (!meta) {
        emit(r, error_reply(channel, id, NULL, "403::Publish denied"));
        return;
    }
    static const char *const known[] = {"/meta/connect", "/meta/subscribe", "/meta/unsubscribe",
                                        "/meta/disconnect"};
    size_t k = 0;
    while (k < sizeof known / sizeof known[0] && strcmp(known[k], channel) != 0)
        k++;
    if (k == sizeof known / sizeof known[0]) {
        emit(r, error_reply(channel, id, NULL, "400::Unknown channel"));
        return;
    }
    if (user_id == NULL) {
        json_t *m = error_reply(channel, id, client_id_of(msg), "401::Authentication invalid");
        json_object_set_new(m, "advice", json_pack("{s:s}", "reconnect", "none"));
        emit(r, m);
        return;
    }
    const char *client_id = client_id_of(msg);
    if (!known_client(c, client_id)) {
        emit(r, unknown_client(channel, id));
        return;
    }
    switch (k) {
    case 0: do_connect(c, msg, id, client_id, alone, r); break;
    case 1: do_subscribe(c, msg, id, client_id, r); break;
    case 2: do_unsubscribe(c, msg, id, client_id, r); break;
    default: do_disconnect(c, id, client_id, r); break;
    }
}

void
cometd_process(lf_cometd *c, json_t *msgs, const char *user_id, cometd_reply *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
    if (json_is_object(msgs)) {
        one_message(c, msgs, user_id, true, r);
        return;
    }
    if (!json_is_array(msgs) || json_array_size(msgs) == 0 ||
        json_array_size(msgs) > MAX_MESSAGES) {
        r->status = 400;
        json_t *m = json_object();
        json_object_set_new(m, "error",
                            json_string(json_is_array(msgs) && json_array_size(msgs) > 0
                                            ? "400::Too many messages in one request"
                                            : "400::The request must be a JSON array of Bayeux "
                                              "messages"));
        json_object_set_new(m, "successful", json_false());
        emit(r, m);
        return;
    }
    size_t n = json_array_size(msgs);
    for (size_t i = 0; i < n; i++)
        one_message(c, json_array_get(msgs, i), user_id, n == 1, r);
}

void
cometd_process_body(lf_cometd *c, const char *body, size_t len, const char *user_id,
                    cometd_reply *r)
{
    json_t *msgs = NULL;
    const char *why = NULL;
    int status = 400;
    if (len > COMETD_MAX_BODY) {
        status = 413;
        why = "413::Maximum Request Size Exceeded";
    } else if (!util_valid_utf8(body, len)) {
        why = "400::The request body is not UTF-8";
    } else {
        json_error_t je;
        msgs = json_loadb(body, len, JSON_DECODE_ANY, &je);
        if (msgs == NULL)
            why = "400::The request body is not JSON";
    }
    if (why) {
        memset(r, 0, sizeof *r);
        r->status = status;
        json_t *m = json_object();
        json_object_set_new(m, "error", json_string(why));
        json_object_set_new(m, "successful", json_false());
        emit(r, m);
        return;
    }
    cometd_process(c, msgs, user_id, r);
    json_decref(msgs);
}

void
cometd_reply_free(cometd_reply *r)
{
    sb_free(&r->body);
    free(r->connect_id);
    r->connect_id = NULL;
    r->n = 0;
    r->hold = false;
}

void
cometd_finish(lf_cometd *c, cometd_reply *r, sb *out)
{
    if (r->hold) {
        json_t *id = r->connect_id ? json_loads(r->connect_id, JSON_DECODE_ANY, NULL) : NULL;
        r->hold = false;
        answer_connect(c, r->client_id, id, r);
        json_decref(id);
    }
    sb_putc(out, '[');
    sb_append(out, sb_str(&r->body), r->body.len);
    sb_putc(out, ']');
    cometd_reply_free(r);
}

/* ----- lifecycle and HTTP ----------------------------------------------------- */

lf_cometd *
cometd_new_config(lf_events *ev, const lf_cometd_config *cfg, err_t *e)
{
    lf_cometd *c = xcalloc(1, sizeof *c);
    c->ev = ev;
    if (cfg)
        c->cfg = *cfg;
    if (c->cfg.timeout_ms <= 0)
        c->cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (c->cfg.expire_ms <= 0)
        c->cfg.expire_ms = DEFAULT_EXPIRE_MS;
    if (c->cfg.expire_events_ms <= 0)
        c->cfg.expire_events_ms = DEFAULT_EXPIRE_EVENTS_MS;
    if (c->cfg.max_clients <= 0)
        c->cfg.max_clients = DEFAULT_MAX_CLIENTS;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (!c->cfg.no_thread) {
        if (pthread_create(&c->thread, NULL, delivery_main, c) != 0) {
            err_set(e, 500, "UNKNOWN_EXCEPTION", "cometd: cannot start the delivery thread");
            pthread_cond_destroy(&c->cond);
            pthread_mutex_destroy(&c->mu);
            free(c);
            return NULL;
        }
        c->thread_started = true;
    }
    events_set_listener(ev, on_events, c);
    return c;
}

lf_cometd *
cometd_new(lf_events *ev, err_t *e)
{
    lf_cometd_config cfg = {0};
    const char *t = getenv("LOCALFORCE_COMETD_TIMEOUT_MS");
    int64_t v;
    if (t && util_parse_i64(t, &v) == 0 && v >= 100 && v <= 600000)
        cfg.timeout_ms = v;
    else if (t)
        log_warn("cometd: ignoring LOCALFORCE_COMETD_TIMEOUT_MS=%s (wants 100..600000)", t);
    return cometd_new_config(ev, &cfg, e);
}

void
cometd_shutdown(lf_cometd *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    if (c->stopped) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->stopping = true;
    c->stopped = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    /* Answer whatever is still parked; nothing parks any more. */
    for (;;) {
        parked pk = {0};
        bool got = false;
        pthread_mutex_lock(&c->mu);
        for (client *cl = c->clients; cl && !got; cl = cl->next)
            got = detach(cl, &pk, true);
        pthread_mutex_unlock(&c->mu);
        if (!got)
            break;
        complete_parked(c, &pk, false);
    }
}

void
cometd_free(lf_cometd *c)
{
    if (c == NULL)
        return;
    cometd_shutdown(c);
    events_set_listener(c->ev, NULL, NULL);
    while (c->clients) {
        client *cl = c->clients;
        c->clients = cl->next;
        client_free(cl);
    }
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int
cometd_client_count(lf_cometd *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->nclients;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void
cometd_handle(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    lf_cometd *c = srv->cometd;
    lf_session s;
    const char *user = NULL;
    if (req->body_len <= COMETD_MAX_BODY) {
        http_resp scratch = {0};
        if (auth_check(srv->auth, req, &scratch, &s) == 0)
            user = s.user_id;
        http_resp_free(&scratch);
    }
    cometd_reply r;
    cometd_process_body(c, req->body, req->body_len, user, &r);
    if (r.hold) {
        http_pending *p = http_defer(req);
        if (p) {
            park(c, &r, p);
            return;
        }
        /* Already deferred (a delayed request run by faults.c): answer now. */
    }
    resp->status = r.status;
    resp->content_type = CT_JSON;
    cometd_finish(c, &r, &resp->body);
}
