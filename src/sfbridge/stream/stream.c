/*
 * stream: accelerated sync over CometD (see stream.h).
 *
 * The loop: make sure there is a client (handshake, then one subscribe per
 * streamed mapping with the replay id committed last time), long-poll
 * /meta/connect, group the events of the reply by mapping, apply each group
 * (sync_stream_apply), and fall back to a poll where the stream cannot be
 * trusted (refused replay id, GAP event). Any failure drops the client; the
 * next one resubscribes from the committed replay ids, so nothing is missed.
 */
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "app.h"
#include "catalog.h"
#include "ddl.h"
#include "log.h"
#include "pg.h"
#include "retry.h"
#include "sb.h"
#include "sfapi.h"
#include "sync.h"
#include "util.h"
#include "worker.h"

#define CONNECT_TIMEOUT_MS 130000 /* Salesforce holds a connect up to 110 s */
#define IDLE_CHECK_MS      2000
#define STREAM_DEFER_MS    500 /* before asking again for events that waited for the writer */

struct stream {
    const cfg *cfg;
    volatile sig_atomic_t *stop;
    PGconn *pg;
    sfapi *sf;
    worker_thread worker;
    char *client_id;
    char *subscribed; /* the set of channels, to notice changes */
    json_t *heard;    /* object -> when its stream last proved alive (ms), for silence */
    char path[64];    /* /cometd/60.0 */
    int failures;
    volatile sig_atomic_t wake; /* stream_wake: the mappings may have changed */
};

typedef struct sub {
    mapping *m;
    char channel[128];
    bool fallback; /* needs a windowed poll */
    bool catchup;  /* ...only to catch up at a first subscription (not a fallback) */
    /* events of the current batch */
    json_t *ids;
    json_t *deleted;
    int64_t replay;
    int64_t commit_ms;
} sub;

void
stream_cdc_channel(char *out, size_t n, const char *object)
{
    size_t len = strlen(object);
    if (len > 3 && strcmp(object + len - 3, "__c") == 0)
        snprintf(out, n, "/data/%.*s__ChangeEvent", (int)(len - 3), object);
    else
        snprintf(out, n, "/data/%sChangeEvent", object);
}

void
stream_pushtopic_name(char *out, size_t n, const mapping *m)
{
    /* PushTopic names are at most 25 characters: sfb_<table>, shortened with
     * a hash when longer, so two long tables never share a topic. */
    char name[26];
    ddl_name_within(name, 25, "sfb_", m->table, "");
    snprintf(out, n, "%s", name);
}

stream *
stream_new(const cfg *c, volatile sig_atomic_t *stop)
{
    stream *s = xcalloc(1, sizeof *s);
    s->cfg = c;
    s->stop = stop;
    snprintf(s->path, sizeof s->path, "/cometd/%s", c->api_version);
    return s;
}

void
stream_free(stream *s)
{
    if (!s)
        return;
    if (s->pg)
        PQfinish(s->pg);
    if (s->sf)
        sfapi_free(s->sf);
    free(s->client_id);
    free(s->subscribed);
    json_decref(s->heard);
    free(s);
}

static void
drop_client(stream *s)
{
    free(s->client_id);
    s->client_id = NULL;
    free(s->subscribed);
    s->subscribed = NULL;
}

static int
connections(stream *s, err_t *e)
{
    if (!s->pg || pg_connection_lost(s->pg)) {
        if (s->pg)
            PQfinish(s->pg);
        s->pg = pg_connect(s->cfg->database_url, e);
        if (!s->pg)
            return -1;
    }
    if (!s->sf)
        s->sf = app_sfapi_new(s->cfg, 2, CONNECT_TIMEOUT_MS, s->stop);
    if (!*sfapi_instance_url(s->sf))
        return sfapi_login(s->sf, e);
    return 0;
}

static void
set_stream_state(stream *s, const mapping *m, stream_state state, const char *error)
{
    err_t e;
    /* Only what `status` shows: the stream goes on either way. */
    if (cat_stream_state(s->pg, s->cfg->schema, m->object, state, error, &e) != 0)
        log_warn("stream: %s: stream state not recorded: %s", m->object, e.msg);
}

/* POST one Bayeux message; *reply is the array Salesforce answers. */
static int
bayeux(stream *s, json_t *msg, json_t **reply, err_t *e)
{
    json_t *arr = json_pack("[o]", msg);
    char *body = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    long status = 0;
    *reply = NULL;
    int rc = sfapi_rest(s->sf, "POST", s->path, body, &status, reply, e);
    free(body);
    if (rc == 0 && !json_is_array(*reply)) {
        json_decref(*reply);
        *reply = NULL;
        return err_set(e, 502, "BAD_RESPONSE", "the CometD reply is not an array");
    }
    return rc;
}

static json_t *
meta_reply(json_t *reply, const char *channel)
{
    size_t i;
    json_t *m;
    json_array_foreach(reply, i, m) {
        const char *ch = json_string_value(json_object_get(m, "channel"));
        if (ch && strcmp(ch, channel) == 0)
            return m;
    }
    return NULL;
}

static int
handshake(stream *s, err_t *e)
{
    json_t *reply = NULL;
    json_t *msg = json_pack("{s:s,s:s,s:s,s:[s],s:{s:b}}", "channel", "/meta/handshake", "version",
                            "1.0", "minimumVersion", "1.0", "supportedConnectionTypes",
                            "long-polling", "ext", "replay", 1);
    if (bayeux(s, msg, &reply, e) != 0)
        return -1;
    json_t *r = meta_reply(reply, "/meta/handshake");
    const char *id = json_string_value(json_object_get(r, "clientId"));
    int rc = 0;
    if (!json_is_true(json_object_get(r, "successful")) || !id) {
        const char *why = json_string_value(json_object_get(r, "error"));
        const char *reason = json_string_value(
            json_object_get(json_object_get(json_object_get(r, "ext"), "sfdc"), "failureReason"));
        rc = err_set(e, 403, "HANDSHAKE_DENIED", "CometD handshake refused: %s%s%s%s",
                     why ? why : "no reason given", reason ? " (" : "", reason ? reason : "",
                     reason ? ")" : "");
        /* Salesforce refuses the handshake of an expired or revoked session
         * ("403::Handshake denied", failureReason "401::Authentication invalid")
         * rather than answering 401: log in afresh before the next attempt. */
        sfapi_forget_session(s->sf);
        err_class_set(e, ERR_TRANSIENT);
    } else {
        free(s->client_id);
        s->client_id = xstrdup(id);
    }
    json_decref(reply);
    return rc;
}

/* Subscribe; *error gets Salesforce's error string on refusal (caller frees). */
static int
subscribe(stream *s, const char *channel, int64_t replay, char **error, err_t *e)
{
    *error = NULL;
    json_t *rep = json_object();
    json_object_set_new(rep, channel, json_integer(replay));
    json_t *msg = json_pack("{s:s,s:s,s:s,s:{s:o}}", "channel", "/meta/subscribe", "clientId",
                            s->client_id, "subscription", channel, "ext", "replay", rep);
    json_t *reply = NULL;
    if (bayeux(s, msg, &reply, e) != 0)
        return -1;
    json_t *r = meta_reply(reply, "/meta/subscribe");
    int rc = 0;
    if (!json_is_true(json_object_get(r, "successful"))) {
        const char *err = json_string_value(json_object_get(r, "error"));
        *error = xstrdup(err ? err : "subscription refused");
        rc = 1;
    }
    json_decref(reply);
    return rc;
}

/* A PushTopic for objects whose CDC channel Salesforce refuses. */
static int
ensure_pushtopic(stream *s, const mapping *m, char *channel, size_t n, err_t *e)
{
    char name[32];
    stream_pushtopic_name(name, sizeof name, m);
    sb q = SB_INIT;
    sb_puts(&q, "SELECT Id FROM PushTopic WHERE Name = '");
    sfapi_soql_escape(&q, name);
    sb_putc(&q, '\'');
    json_t *page = NULL;
    int rc = sfapi_query(s->sf, sb_str(&q), false, 0, &page, e);
    sb_free(&q);
    if (rc != 0)
        return -1;
    bool exists = json_integer_value(json_object_get(page, "totalSize")) > 0;
    json_decref(page);
    if (!exists) {
        json_t *body = json_pack("{s:s,s:s,s:f,s:s,s:b,s:b,s:b,s:b}", "Name", name, "Query", "",
                                 "ApiVersion", atof(s->cfg->api_version), "NotifyForFields", "All",
                                 "NotifyForOperationCreate", 1, "NotifyForOperationUpdate", 1,
                                 "NotifyForOperationDelete", 1, "NotifyForOperationUndelete", 1);
        sb query = SB_INIT;
        sb_printf(&query, "SELECT Id FROM %s", m->object);
        json_object_set_new(body, "Query", json_string(sb_str(&query)));
        sb_free(&query);
        char *txt = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        char path[128];
        snprintf(path, sizeof path, "/services/data/v%s/sobjects/PushTopic", s->cfg->api_version);
        long status = 0;
        json_t *out = NULL;
        rc = sfapi_rest(s->sf, "POST", path, txt, &status, &out, e);
        free(txt);
        json_decref(out);
        if (rc != 0)
            return -1;
        log_info("stream: created PushTopic %s for %s", name, m->object);
    }
    snprintf(channel, n, "/topic/%s", name);
    return 0;
}

int
stream_drop_pushtopic(sfapi *sf, const char *api_version, const mapping *m, err_t *e)
{
    char name[32];
    stream_pushtopic_name(name, sizeof name, m);
    sb q = SB_INIT;
    sb_puts(&q, "SELECT Id FROM PushTopic WHERE Name = '");
    sfapi_soql_escape(&q, name);
    sb_putc(&q, '\'');
    json_t *page = NULL;
    int rc = sfapi_query(sf, sb_str(&q), false, 0, &page, e);
    sb_free(&q);
    if (rc != 0)
        return -1;
    int dropped = 0;
    json_t *rec;
    size_t i;
    json_array_foreach(json_object_get(page, "records"), i, rec) {
        const char *id = json_string_value(json_object_get(rec, "Id"));
        if (!id || rc != 0)
            continue;
        char path[160];
        snprintf(path, sizeof path, "/services/data/v%s/sobjects/PushTopic/%s", api_version, id);
        long status = 0;
        json_t *out = NULL;
        rc = sfapi_rest(sf, "DELETE", path, NULL, &status, &out, e);
        json_decref(out);
        if (rc == 0) {
            dropped = 1;
            log_info("stream: deleted PushTopic %s (%s no longer streams)", name, m->object);
        }
    }
    json_decref(page);
    return rc != 0 ? -1 : dropped;
}

/* Handshake and subscribe every streamed mapping. */
static int
connect_client(stream *s, sub *subs, size_t n, const char *set, err_t *e)
{
    drop_client(s);
    if (handshake(s, e) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        sub *u = &subs[i];
        /* The position and channel committed last time, as loaded this round. */
        int64_t replay = u->m->replay_id;
        if (u->m->stream_channel)
            snprintf(u->channel, sizeof u->channel, "%s", u->m->stream_channel);
        if (!u->channel[0])
            stream_cdc_channel(u->channel, sizeof u->channel, u->m->object);
        char *error = NULL;
        int rc = subscribe(s, u->channel, replay, &error, e);
        if (rc < 0)
            return -1;
        if (rc > 0 && strstr(error, "replayId")) {
            /* The events since our replay id are gone: poll the window, stream new events. */
            log_warn("stream: %s: %s; falling back to a poll of the window", u->m->object, error);
            u->fallback = true, u->catchup = false;
            free(error);
            error = NULL;
            rc = subscribe(s, u->channel, -1, &error, e);
            if (rc < 0)
                return -1;
        }
        if (rc > 0 && strncmp(u->channel, "/data/", 6) == 0) {
            /* No Change Data Capture for this object: a PushTopic instead. */
            log_warn("stream: %s: %s; using a PushTopic", u->m->object, error);
            free(error);
            error = NULL;
            if (ensure_pushtopic(s, u->m, u->channel, sizeof u->channel, e) != 0)
                return -1;
            rc = subscribe(s, u->channel, -1, &error, e);
            if (rc < 0)
                return -1;
            u->fallback = true, u->catchup = false;
        }
        if (rc > 0) {
            set_stream_state(s, u->m, SS_FAILED, error);
            log_error("stream: %s: cannot subscribe to %s: %s", u->m->object, u->channel, error);
            free(error);
            continue;
        }
        err_t ce;
        /* The channel is found again at the next subscribe; only `status` misses it. */
        if (cat_stream_subscribed(s->pg, s->cfg->schema, u->m->object, u->channel, &ce) != 0)
            log_warn("stream: %s: subscription not recorded: %s", u->m->object, ce.msg);
        log_info("stream: %s subscribed to %s from replay id %lld", u->m->object, u->channel,
                 (long long)replay);
        if (replay < 0 && !u->fallback) {
            /* No replay id committed yet (a new stream, or nothing streamed
             * since): what changed between the last pull and this subscription
             * is not replayed, so poll that window once now. */
            u->fallback = u->catchup = true;
        }
    }
    s->subscribed = xstrdup(set);
    return 0;
}

/* Sort one event into its mapping's batch. */
static void
take_event(sub *subs, size_t n, json_t *msg)
{
    const char *ch = json_string_value(json_object_get(msg, "channel"));
    json_t *data = json_object_get(msg, "data");
    sub *u = NULL;
    for (size_t i = 0; ch && i < n; i++)
        if (strcmp(subs[i].channel, ch) == 0)
            u = &subs[i];
    if (!u || !json_is_object(data))
        return;
    json_int_t replay = json_integer_value(
        json_object_get(json_object_get(data, "event"), "replayId"));
    if (replay > u->replay)
        u->replay = replay;
    json_t *payload = json_object_get(data, "payload");
    json_t *hdr = json_object_get(payload, "ChangeEventHeader");
    if (json_is_object(hdr)) {
        const char *type = json_string_value(json_object_get(hdr, "changeType"));
        json_int_t commit = json_integer_value(json_object_get(hdr, "commitTimestamp"));
        if (commit > u->commit_ms)
            u->commit_ms = commit;
        if (!type)
            return;
        if (strncmp(type, "GAP_", 4) == 0) {
            u->fallback = true, u->catchup = false;
            return;
        }
        json_t *target = strcmp(type, "DELETE") == 0 ? u->deleted : u->ids;
        size_t i;
        json_t *id;
        json_array_foreach(json_object_get(hdr, "recordIds"), i, id)
            if (json_is_string(id))
                json_array_append(target, id);
        return;
    }
    /* PushTopic: {"event": {"type": "updated", ...}, "sobject": {"Id": ...}} */
    const char *type = json_string_value(json_object_get(json_object_get(data, "event"), "type"));
    json_t *id = json_object_get(json_object_get(data, "sobject"), "Id");
    if (type && json_is_string(id))
        json_array_append(strcmp(type, "deleted") == 0 ? u->deleted : u->ids, id);
}

static const char **
strings(json_t *arr)
{
    const char **v = xcalloc(json_array_size(arr) + 1, sizeof *v);
    for (size_t i = 0; i < json_array_size(arr); i++)
        v[i] = json_string_value(json_array_get(arr, i));
    return v;
}

/* The stream of object proved alive now (subscribed, events applied, polled). */
static void
heard(stream *s, const char *object)
{
    if (!s->heard)
        s->heard = json_object();
    json_object_set_new(s->heard, object, json_integer(util_mono_ms()));
}

/* Silent longer than SFBRIDGE_STREAM_SILENCE_MS: events may have been lost
 * without a sign (a subscription the server dropped), so poll the window. */
static bool
silent(stream *s, const char *object)
{
    json_t *t = s->heard ? json_object_get(s->heard, object) : NULL;
    if (!t) {
        heard(s, object);
        return false;
    }
    return util_mono_ms() - json_integer_value(t) >= s->cfg->stream_silence_ms;
}

static void
fallback_poll(stream *s, sub *u)
{
    sync_ctx x = {.pg = s->pg,
                  .sf = s->sf,
                  .cfg = s->cfg,
                  .schema = s->cfg->schema,
                  .stop = s->stop};
    if (!u->catchup)
        set_stream_state(s, u->m, SS_FALLBACK, NULL);
    err_t e;
    err_clear(&e);
    int64_t n = 0;
    if (sync_poll(&x, u->m, &n, &e) != 0) {
        log_warn("stream: %s: fallback poll failed (%s); the next one retries", u->m->object,
                 e.msg);
        return; /* u->fallback stays set */
    }
    u->fallback = false;
    heard(s, u->m->object);
    if (u->catchup) {
        u->catchup = false;
        log_info("stream: %s: caught up with %lld changes from before the subscription",
                 u->m->object, (long long)n);
        return;
    }
    err_t fe;
    /* A counter and what `status` shows: the stream goes on either way. */
    if (cat_stream_fallback_done(s->pg, s->cfg->schema, u->m->object, &fe) != 0)
        log_warn("stream: %s: fallback not recorded: %s", u->m->object, fe.msg);
    log_info("stream: %s: fallback poll applied %lld changes; streaming again", u->m->object,
             (long long)n);
}

/* The mappings of ms that stream now, as subs (caller frees); set gets their
 * names ("A,B,"), to notice a change. */
static sub *
streamed(mapping *ms, size_t n, size_t *ns, sb *set)
{
    sub *subs = xcalloc(n + 1, sizeof *subs);
    *ns = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ms[i].notify || ms[i].paused || !ms[i].loaded)
            continue;
        subs[*ns].m = &ms[i];
        subs[*ns].ids = json_array();
        subs[*ns].deleted = json_array();
        (*ns)++;
        sb_printf(set, "%s,", ms[i].object);
    }
    return subs;
}

/* The channel each sub listens on: the one chosen at subscribe time (CDC or
 * PushTopic) as stored, else the CDC channel. */
static void
stored_channels(sub *subs, size_t ns)
{
    for (size_t i = 0; i < ns; i++) {
        if (subs[i].channel[0]) /* chosen by this round's subscribe */
            continue;
        if (subs[i].m->stream_channel)
            snprintf(subs[i].channel, sizeof subs[i].channel, "%s", subs[i].m->stream_channel);
        else
            stream_cdc_channel(subs[i].channel, sizeof subs[i].channel, subs[i].m->object);
    }
}

/* Poll the window of the mappings whose stream cannot be trusted. */
static void
poll_untrusted(stream *s, sub *subs, size_t ns)
{
    for (size_t i = 0; i < ns && !*s->stop; i++) {
        if (!subs[i].fallback && silent(s, subs[i].m->object)) {
            log_info("stream: %s: no event for %ld s; polling the window in case one was lost",
                     subs[i].m->object, s->cfg->stream_silence_ms / 1000);
            subs[i].fallback = true, subs[i].catchup = false;
        }
        if (subs[i].fallback)
            fallback_poll(s, &subs[i]);
    }
}

/* Sort the events of a /meta/connect reply by mapping and apply each batch. */
static int
apply_reply(stream *s, sub *subs, size_t ns, json_t *reply, err_t *e)
{
    json_t *c = meta_reply(reply, "/meta/connect");
    if (c && !json_is_true(json_object_get(c, "successful"))) {
        /* "403::Unknown client" and the like: handshake again. */
        const char *err = json_string_value(json_object_get(c, "error"));
        log_info("stream: connect refused (%s); handshaking again", err ? err : "no reason");
        drop_client(s);
    }
    size_t i;
    json_t *m;
    json_array_foreach(reply, i, m) {
        const char *ch = json_string_value(json_object_get(m, "channel"));
        if (ch && strncmp(ch, "/meta/", 6) != 0)
            take_event(subs, ns, m);
    }
    sync_ctx x = {.pg = s->pg,
                  .sf = s->sf,
                  .cfg = s->cfg,
                  .schema = s->cfg->schema,
                  .stop = s->stop};
    /* A mapping whose events wait for the writer (DEFERRED) does not hold the
     * others: they are applied (and their replay ids committed) all the same;
     * then the client is dropped so that the waiting mapping's events come
     * again from its committed replay id. Any other failure stops the round. */
    int rc = 0;
    err_t deferred;
    err_clear(&deferred);
    for (size_t k = 0; k < ns && rc == 0; k++) {
        sub *u = &subs[k];
        size_t nids = json_array_size(u->ids), ndel = json_array_size(u->deleted);
        if (u->fallback) {
            fallback_poll(s, u);
            continue;
        }
        if (!nids && !ndel && u->replay <= 0)
            continue;
        const char **ids = strings(u->ids), **del = strings(u->deleted);
        int64_t lag = u->commit_ms ? util_now_ms() - u->commit_ms : 0;
        rc = sync_stream_apply(&x, u->m, ids, nids, del, ndel, u->replay, lag, e);
        if (rc == 0)
            heard(s, u->m->object);
        free(ids);
        free(del);
        if (rc != 0 && sync_deferred(e)) {
            log_debug("stream: %s: events wait (%s)", u->m->object, e->msg);
            deferred = *e;
            rc = 0;
        } else if (rc != 0) {
            /* Not applied: resubscribe from the committed replay id. */
            drop_client(s);
            log_warn("stream: %s: applying events failed (%s)", u->m->object, e->msg);
        }
    }
    if (rc == 0 && sync_deferred(&deferred)) {
        drop_client(s);
        *e = deferred;
        rc = -1;
    }
    return rc;
}

/* Subscribed (again if the set changed), one long poll, its events applied. */
static int
listen_once(stream *s, sub *subs, size_t ns, const char *set, err_t *e)
{
    int rc = 0;
    if (!s->client_id || !s->subscribed || strcmp(s->subscribed, set) != 0)
        rc = connect_client(s, subs, ns, set, e);
    if (rc == 0 && s->subscribed)
        stored_channels(subs, ns);
    if (rc == 0)
        poll_untrusted(s, subs, ns);
    json_t *reply = NULL;
    if (rc == 0 && !*s->stop && !s->wake) {
        json_t *msg = json_pack("{s:s,s:s,s:s}", "channel", "/meta/connect", "clientId",
                                s->client_id, "connectionType", "long-polling");
        /* Only the held connect may be cut short by a wake: a fetch of
         * records or a fallback poll is finished, not redone. */
        sfapi_set_wake_flag(s->sf, &s->wake);
        rc = bayeux(s, msg, &reply, e);
        sfapi_set_wake_flag(s->sf, NULL);
        if (rc != 0 && s->wake) {
            /* Cut short by stream_wake: not a failure; the next round sees the
             * new set of mappings (the held poll's events are delivered again
             * from the committed replay ids). */
            log_debug("stream: long poll cut short: the mappings changed");
            drop_client(s);
            rc = 0;
        }
    }
    if (rc == 0 && reply)
        rc = apply_reply(s, subs, ns, reply, e);
    json_decref(reply);
    return rc;
}

/* One round: (re)connect if needed, one long poll, apply. */
static int
round_trip(stream *s, err_t *e)
{
    s->wake = 0; /* a wake from now on cuts this round's long poll short */
    if (connections(s, e) != 0)
        return -1;
    mapping *ms = NULL;
    size_t n = 0;
    if (cat_load(s->pg, s->cfg->schema, NULL, &ms, &n, e) != 0)
        return -1;
    size_t ns = 0;
    sb set = SB_INIT;
    sub *subs = streamed(ms, n, &ns, &set);
    int rc = 0;
    if (ns == 0) {
        if (s->client_id)
            drop_client(s);
        usleep(IDLE_CHECK_MS * 1000);
    } else {
        rc = listen_once(s, subs, ns, sb_str(&set), e);
    }
    for (size_t i = 0; i < ns; i++) {
        json_decref(subs[i].ids);
        json_decref(subs[i].deleted);
    }
    free(subs);
    sb_free(&set);
    mapping_free_all(ms, n);
    return rc;
}

static void *
stream_main(void *arg)
{
    stream *s = arg;
    while (!*s->stop) {
        err_t e;
        err_clear(&e);
        if (round_trip(s, &e) == 0) {
            s->failures = 0;
            continue;
        }
        drop_client(s);
        if (*s->stop) /* the stop aborted the call: not a failure to report */
            break;
        /* Events waiting for the writer (an insert's outcome being settled)
         * are not a failure of the stream: a short pause, no backoff, and
         * `status` keeps showing the streams connected. */
        bool waits = sync_deferred(&e);
        s->failures = waits ? 0 : s->failures + 1;
        long d = waits ? STREAM_DEFER_MS
                       : retry_delay_ms(&retry_presets[RETRY_STREAM], s->failures,
                                        s->cfg->backoff_cap_ms);
        if (waits)
            log_debug("stream: %s (again in %.1f s)", e.msg, (double)d / 1000.0);
        else
            log_warn("stream: %s: %s (reconnecting in %.1f s)", e.code, e.msg, (double)d / 1000.0);
        err_t ce;
        /* What `status` shows while reconnecting; a lost connection is the reason itself. */
        if (!waits && s->pg && !pg_connection_lost(s->pg) &&
            cat_streams_connecting(s->pg, s->cfg->schema, e.msg, &ce) != 0)
            log_warn("stream: state not recorded: %s", ce.msg);
        for (long t = 0; t < d && !*s->stop; t += 100)
            usleep(100000);
    }
    err_t ce;
    /* A clean stop leaves no stream and no transport error behind in `status`. */
    if (s->pg && !pg_connection_lost(s->pg) && cat_streams_stopped(s->pg, s->cfg->schema, &ce) != 0)
        log_debug("stream: stop not recorded: %s", ce.msg);
    return NULL;
}

int
stream_start(stream *s)
{
    return worker_start(&s->worker, stream_main, s);
}

void
stream_wake(stream *s)
{
    if (s)
        s->wake = 1;
}

void
stream_join(stream *s)
{
    if (s)
        worker_join(&s->worker);
}
