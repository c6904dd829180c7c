/*
 * libFuzzer harness: Bayeux message handling (cometd_process), without
 * sockets, against an in-memory org with a change event log.
 *
 * Input: a request body. A leading '!' makes the request unauthenticated.
 * When the body is a JSON array of arrays, each inner array is one request,
 * run in order, and:
 *   - a clientId of "$" stands for the client of the latest successful
 *     handshake in this input (so connect, subscribe, ... reach a live one);
 *   - the string "create" (instead of a message array) creates a record,
 *     "update" updates it, "delete" deletes it, so events are pending.
 * Anything else goes through cometd_process_body as a raw body. Every
 * answer must be a JSON array; anything else aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cometd.h"
#include "events.h"
#include "store.h"
#include "util.h"

static const char org_json[] =
    "{\"organization\":{\"name\":\"Fuzz\"},"
    "\"users\":[{\"username\":\"f@f.test\",\"password\":\"p\",\"first_name\":\"F\","
    "\"last_name\":\"Z\",\"email\":\"f@f.test\"}],"
    "\"objects\":{\"Account\":{\"fields\":{}},"
    "\"Contact\":{\"fields\":{\"FirstName\":{\"type\":\"string\",\"length\":40},"
    "\"LastName\":{\"type\":\"string\",\"length\":80,\"required\":true}}},"
    "\"Teacher__c\":{\"fields\":{\"First_Name__c\":{\"type\":\"string\",\"length\":10,"
    "\"required\":true},"
    "\"Pay__c\":{\"type\":\"currency\"},\"Hired__c\":{\"type\":\"date\"},"
    "\"Seen__c\":{\"type\":\"datetime\"}}}}}";

static store *st;
static lf_events *ev;
static char user[19];
static char last_id[19];
static unsigned long runs;
static lf_actor actor = {NULL, "com/salesforce/api/rest/59.0;client=fuzz"};

static void
setup(void)
{
    err_t e;
    json_t *org = json_loads(org_json, 0, NULL);
    if (store_open(":memory:", &st, &e) != 0 || store_load_org_json(st, org, &e) != 0)
        abort();
    json_decref(org);
    const lf_user *u = store_user_by_name(st, "f@f.test");
    if (u == NULL)
        abort();
    memcpy(user, u->id, 19);
    actor.user_id = user;
    lf_events_config cfg = {0};
    if ((ev = events_new(st, &cfg, &e)) == NULL)
        abort();
    json_t *t = json_loads("{\"Name\":\"Rich\",\"Query\":\"SELECT Id, Pay__c FROM Teacher__c WHERE "
                           "Pay__c > 10\",\"ApiVersion\":59}",
                           0, NULL);
    char id[19];
    if (store_create(st, &actor, "PushTopic", t, id, &e) != 0)
        abort();
    json_decref(t);
    last_id[0] = '\0';
}

static void
teardown(void)
{
    events_free(ev);
    store_close(st);
    ev = NULL;
    st = NULL;
}

static void
record_change(const char *what)
{
    err_t e;
    if (strcmp(what, "create") == 0) {
        json_t *r = json_pack("{s:s,s:i}", "First_Name__c", "Fz", "Pay__c", (int)(runs % 50));
        if (store_create(st, &actor, "Teacher__c", r, last_id, &e) != 0)
            last_id[0] = '\0';
        json_decref(r);
    } else if (strcmp(what, "update") == 0 && last_id[0]) {
        json_t *r = json_pack("{s:i,s:n}", "Pay__c", (int)(runs % 70), "Hired__c");
        store_update(st, &actor, "Teacher__c", last_id, r, &e);
        json_decref(r);
    } else if (strcmp(what, "delete") == 0 && last_id[0]) {
        store_delete(st, &actor, "Teacher__c", last_id, &e);
        last_id[0] = '\0';
    }
}

/* The answer must be a JSON array; remember a handshake's clientId. */
static void
check_answer(const sb *out, char client[64])
{
    json_error_t je;
    json_t *a = json_loadb(sb_str(out), out->len, 0, &je);
    if (!json_is_array(a)) {
        fprintf(stderr, "not a JSON array: %s\n", sb_str(out));
        abort();
    }
    size_t i;
    json_t *m;
    json_array_foreach(a, i, m) {
        const char *ch = json_string_value(json_object_get(m, "channel"));
        const char *id = json_string_value(json_object_get(m, "clientId"));
        if (ch && id && strcmp(ch, "/meta/handshake") == 0 &&
            json_is_true(json_object_get(m, "successful")))
            snprintf(client, 64, "%s", id);
    }
    json_decref(a);
}

static void
substitute_client(json_t *req, const char *client)
{
    size_t i;
    json_t *m;
    json_array_foreach(req, i, m) {
        json_t *cid = json_object_get(m, "clientId");
        if (json_is_string(cid) && strcmp(json_string_value(cid), "$") == 0 && client[0])
            json_object_set_new(m, "clientId", json_string(client));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (st == NULL || ++runs % 5000 == 0) { /* keep the event log small */
        if (st)
            teardown();
        setup();
    }
    const char *body = (const char *)data;
    const char *who = user;
    if (size > 0 && body[0] == '!') {
        who = NULL;
        body++;
        size--;
    }
    lf_cometd_config cc = {.no_thread = true, .timeout_ms = 1000, .max_clients = 50};
    lf_cometd *c = cometd_new_config(ev, &cc, NULL);
    if (c == NULL)
        abort();
    char client[64] = "";
    json_t *script = size <= COMETD_MAX_BODY ? json_loadb(body, size, JSON_DECODE_ANY, NULL) : NULL;
    bool scripted = json_is_array(script) && json_array_size(script) > 0;
    for (size_t i = 0; scripted && i < json_array_size(script); i++) {
        json_t *x = json_array_get(script, i);
        if (!json_is_array(x) && !json_is_string(x))
            scripted = false;
    }
    if (scripted) {
        for (size_t i = 0; i < json_array_size(script) && i < 64; i++) {
            json_t *req = json_array_get(script, i);
            if (json_is_string(req)) {
                record_change(json_string_value(req));
                continue;
            }
            substitute_client(req, client);
            cometd_reply r;
            cometd_process(c, req, who, &r);
            sb out = SB_INIT;
            cometd_finish(c, &r, &out);
            check_answer(&out, client);
            sb_free(&out);
        }
    } else {
        cometd_reply r;
        cometd_process_body(c, body, size, who, &r);
        sb out = SB_INIT;
        cometd_finish(c, &r, &out);
        check_answer(&out, client);
        sb_free(&out);
    }
    json_decref(script);
    cometd_free(c);
    return 0;
}
