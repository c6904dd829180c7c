/*
 * Unit tests for change events and the Bayeux handling: the event rows and
 * CDC payloads the store's changes produce, transactions and rollbacks,
 * retention and replay ranges, PushTopic matching, and the Bayeux replies
 * of cometd_process (no sockets: a connect that would be held is answered by
 * cometd_finish at once).
 *
 * Every test gets a fresh in-memory org (ORG below), its event log and a
 * CometD server without a delivery thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cometd.h"
#include "events.h"
#include "store.h"
#include "util.h"

static const char ORG[] =
    "{\"users\":[{\"username\":\"u@ev.test\",\"password\":\"pw\",\"first_name\":\"Eve\","
    "\"last_name\":\"Ents\",\"email\":\"u@ev.test\"}],"
    "\"objects\":{"
    "\"Account\":{\"fields\":{\"Industry\":{\"type\":\"picklist\",\"values\":[\"Energy\","
    "\"Education\"]}}},"
    "\"Contact\":{\"fields\":{\"FirstName\":{\"type\":\"string\",\"length\":40},"
    "\"LastName\":{\"type\":\"string\",\"length\":80,\"required\":true},"
    "\"Email\":{\"type\":\"email\"}}},"
    "\"Teacher__c\":{\"fields\":{\"First_Name__c\":{\"type\":\"string\",\"length\":40,"
    "\"required\":true},\"Salary__c\":{\"type\":\"currency\"},\"Hired__c\":{\"type\":\"date\"},"
    "\"Active__c\":{\"type\":\"boolean\"}}}}}";

typedef struct fx {
    store *st;
    lf_events *ev;
    lf_cometd *cd;
    lf_actor actor;
    char user[19];
    char origin[80];
} fx;

static int
setup_with(void **state, const lf_events_config *cfg)
{
    fx *f = xcalloc(1, sizeof *f);
    err_t e;
    json_t *org = json_loads(ORG, 0, NULL);
    if (org == NULL || store_open(":memory:", &f->st, &e) || store_load_org_json(f->st, org, &e))
        fail_msg("org: %s", e.msg);
    json_decref(org);
    const lf_user *u = store_user_by_name(f->st, "u@ev.test");
    assert_non_null(u);
    memcpy(f->user, u->id, 19);
    snprintf(f->origin, sizeof f->origin, "com/salesforce/api/rest/59.0;client=unit");
    f->actor.user_id = f->user;
    f->actor.origin = f->origin;
    f->ev = events_new(f->st, cfg, &e);
    if (f->ev == NULL)
        fail_msg("events_new: %s", e.msg);
    lf_cometd_config cc = {.no_thread = true, .timeout_ms = 1000};
    f->cd = cometd_new_config(f->ev, &cc, &e);
    assert_non_null(f->cd);
    *state = f;
    return 0;
}

static int
setup(void **state)
{
    return setup_with(state, NULL);
}

static int
setup_gap(void **state)
{
    lf_events_config cfg = {.gap_events = true};
    return setup_with(state, &cfg);
}

static int
setup_noretention(void **state)
{
    lf_events_config cfg = {.retention_s = -1};
    return setup_with(state, &cfg);
}

static int
teardown(void **state)
{
    fx *f = *state;
    cometd_free(f->cd);
    events_free(f->ev);
    store_close(f->st);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static json_t *
J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (j == NULL)
        fail_msg("bad JSON (%s): %s", je.text, text);
    return j;
}

static void
create(fx *f, const char *obj, const char *rec, char id[19])
{
    err_t e;
    json_t *r = J(rec);
    if (store_create(f->st, &f->actor, obj, r, id, &e) != 0)
        fail_msg("create %s: %s %s", obj, e.code, e.msg);
    json_decref(r);
}

static void
update(fx *f, const char *obj, const char *id, const char *rec)
{
    err_t e;
    json_t *r = J(rec);
    if (store_update(f->st, &f->actor, obj, id, r, &e) != 0)
        fail_msg("update %s: %s %s", obj, e.code, e.msg);
    json_decref(r);
}

/* The events after replayId `after`: [{"replayId","channel","cdc","data"}]. */
static json_t *
rows_after(fx *f, int64_t after)
{
    json_t *out = json_array();
    store_lock(f->st);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(f->st),
                                        "SELECT replayId, channel, cdc, data FROM _lf_events "
                                        "WHERE replayId > ?1 ORDER BY replayId",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(q, 1, after);
    while (sqlite3_step(q) == SQLITE_ROW) {
        json_t *row = json_pack("{s:I,s:s,s:b,s:o}", "replayId",
                                (json_int_t)sqlite3_column_int64(q, 0), "channel",
                                (const char *)sqlite3_column_text(q, 1), "cdc",
                                sqlite3_column_int(q, 2), "data",
                                J((const char *)sqlite3_column_text(q, 3)));
        json_array_append_new(out, row);
    }
    sqlite3_finalize(q);
    store_unlock(f->st);
    return out;
}

static json_t *
header(json_t *row)
{
    return json_object_get(json_object_get(json_object_get(row, "data"), "payload"),
                           "ChangeEventHeader");
}

static json_t *
payload(json_t *row)
{
    return json_object_get(json_object_get(row, "data"), "payload");
}

static bool
array_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    return false;
}

static const char *
hs(json_t *row, const char *key)
{
    return json_string_value(json_object_get(header(row), key));
}

/* Run one Bayeux request; returns the reply array. */
static json_t *
bayeux(fx *f, const char *body, const char *user, int *status)
{
    cometd_reply r;
    cometd_process_body(f->cd, body, strlen(body), user, &r);
    if (status)
        *status = r.status;
    sb out = SB_INIT;
    cometd_finish(f->cd, &r, &out);
    json_t *j = J(sb_str(&out));
    sb_free(&out);
    assert_true(json_is_array(j));
    return j;
}

/* The reply on channel (the last one there). */
static json_t *
reply_on(json_t *arr, const char *channel)
{
    size_t i;
    json_t *v, *found = NULL;
    json_array_foreach(arr, i, v) {
        const char *ch = json_string_value(json_object_get(v, "channel"));
        if (ch && strcmp(ch, channel) == 0)
            found = v;
    }
    if (found == NULL)
        fail_msg("no %s reply in %s", channel, json_dumps(arr, 0));
    return found;
}

static void
handshake(fx *f, char client_id[64])
{
    json_t *r = bayeux(f,
                       "[{\"channel\":\"/meta/handshake\",\"version\":\"1.0\","
                       "\"supportedConnectionTypes\":[\"long-polling\"],\"id\":\"1\"}]",
                       f->user, NULL);
    json_t *m = reply_on(r, "/meta/handshake");
    assert_true(json_is_true(json_object_get(m, "successful")));
    snprintf(client_id, 64, "%s", json_string_value(json_object_get(m, "clientId")));
    json_decref(r);
}

/* ---- event rows and payloads -------------------------------------------- */

static void
test_create_event(void **state)
{
    fx *f = *state;
    int64_t before = events_last(f->ev);
    char id[19];
    create(f, "Teacher__c",
           "{\"First_Name__c\":\"Ada\",\"Salary__c\":1000,\"Hired__c\":\"2021-09-01\","
           "\"Active__c\":true}",
           id);
    json_t *rows = rows_after(f, before);
    assert_int_equal(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    assert_int_equal(events_last(f->ev), json_integer_value(json_object_get(row, "replayId")));
    assert_string_equal(json_string_value(json_object_get(row, "channel")),
                        "/data/Teacher__ChangeEvent");
    assert_true(json_is_true(json_object_get(row, "cdc")));
    json_t *data = json_object_get(row, "data");
    assert_int_equal(json_string_length(json_object_get(data, "schema")), 22);
    json_t *event = json_object_get(data, "event");
    assert_int_equal(json_integer_value(json_object_get(event, "replayId")),
                     json_integer_value(json_object_get(row, "replayId")));
    assert_string_equal(hs(row, "entityName"), "Teacher__c");
    assert_string_equal(hs(row, "changeType"), "CREATE");
    assert_string_equal(hs(row, "changeOrigin"), f->origin);
    assert_string_equal(hs(row, "commitUser"), f->user);
    assert_int_equal(strlen(hs(row, "transactionKey")), 36);
    json_t *h = header(row);
    assert_int_equal(json_integer_value(json_object_get(h, "sequenceNumber")), 1);
    assert_true(json_is_integer(json_object_get(h, "commitTimestamp")));
    assert_true(json_is_integer(json_object_get(h, "commitNumber")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(h, "recordIds"), 0)), id);
    assert_int_equal(json_array_size(json_object_get(h, "changedFields")), 0);
    assert_int_equal(json_array_size(json_object_get(h, "nulledFields")), 0);
    assert_int_equal(json_array_size(json_object_get(h, "diffFields")), 0);
    json_t *p = payload(row);
    assert_string_equal(json_string_value(json_object_get(p, "First_Name__c")), "Ada");
    assert_true(json_number_value(json_object_get(p, "Salary__c")) == 1000.0);
    assert_string_equal(json_string_value(json_object_get(p, "Hired__c")), "2021-09-01");
    assert_true(json_is_true(json_object_get(p, "Active__c")));
    assert_string_equal(json_string_value(json_object_get(p, "OwnerId")), f->user);
    const char *cd = json_string_value(json_object_get(p, "CreatedDate"));
    assert_non_null(cd);
    assert_int_equal(strlen(cd), 24);
    assert_int_equal(cd[23], 'Z');
    assert_null(json_object_get(p, "Id"));
    assert_null(json_object_get(p, "IsDeleted"));
    assert_null(json_object_get(p, "SystemModstamp"));
    json_decref(rows);
}

static void
test_update_event(void **state)
{
    fx *f = *state;
    char id[19];
    create(f, "Teacher__c",
           "{\"First_Name__c\":\"Ada\",\"Salary__c\":1000,"
           "\"Hired__c\":\"2021-09-01\"}",
           id);
    int64_t before = events_last(f->ev);
    update(f, "Teacher__c", id, "{\"Salary__c\":2500,\"Hired__c\":null,\"First_Name__c\":\"Ada\"}");
    json_t *rows = rows_after(f, before);
    assert_int_equal(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    assert_string_equal(hs(row, "changeType"), "UPDATE");
    json_t *changed = json_object_get(header(row), "changedFields");
    assert_true(array_has(changed, "Salary__c"));
    assert_true(array_has(changed, "Hired__c"));
    assert_true(array_has(changed, "LastModifiedDate"));
    assert_false(array_has(changed, "First_Name__c")); /* same value */
    assert_false(array_has(changed, "SystemModstamp"));
    json_t *nulled = json_object_get(header(row), "nulledFields");
    assert_int_equal(json_array_size(nulled), 1);
    assert_true(array_has(nulled, "Hired__c"));
    json_t *p = payload(row);
    assert_true(json_number_value(json_object_get(p, "Salary__c")) == 2500.0);
    assert_true(json_is_null(json_object_get(p, "Hired__c")));
    assert_null(json_object_get(p, "First_Name__c"));
    assert_non_null(json_object_get(p, "LastModifiedDate"));
    json_decref(rows);
}

static void
test_delete_event(void **state)
{
    fx *f = *state;
    char id[19];
    err_t e;
    create(f, "Account", "{\"Name\":\"Acme\"}", id);
    int64_t before = events_last(f->ev);
    assert_int_equal(store_delete(f->st, &f->actor, "Account", id, &e), 0);
    json_t *rows = rows_after(f, before);
    assert_int_equal(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(row, "channel")),
                        "/data/AccountChangeEvent");
    assert_string_equal(hs(row, "changeType"), "DELETE");
    assert_int_equal(json_object_size(payload(row)), 1); /* ChangeEventHeader only */
    json_decref(rows);
}

static void
test_compound_name(void **state)
{
    fx *f = *state;
    char id[19];
    int64_t before = events_last(f->ev);
    create(f, "Contact", "{\"FirstName\":\"Grace\",\"LastName\":\"Hopper\"}", id);
    update(f, "Contact", id, "{\"LastName\":\"Murray\"}");
    json_t *rows = rows_after(f, before);
    assert_int_equal(json_array_size(rows), 2);
    json_t *c = payload(json_array_get(rows, 0));
    json_t *name = json_object_get(c, "Name");
    assert_true(json_is_object(name));
    assert_string_equal(json_string_value(json_object_get(name, "FirstName")), "Grace");
    assert_string_equal(json_string_value(json_object_get(name, "LastName")), "Hopper");
    assert_null(json_object_get(c, "FirstName"));
    json_t *u = json_array_get(rows, 1);
    json_t *changed = json_object_get(header(u), "changedFields");
    assert_true(array_has(changed, "Name.LastName"));
    assert_false(array_has(changed, "Name"));
    name = json_object_get(payload(u), "Name");
    assert_string_equal(json_string_value(json_object_get(name, "LastName")), "Murray");
    assert_null(json_object_get(name, "FirstName"));
    json_decref(rows);
}

/* ---- transactions -------------------------------------------------------- */

static int listener_calls;

static void
count_listener(void *ctx)
{
    (void)ctx;
    listener_calls++;
}

static void
test_transaction_key_and_sequence(void **state)
{
    fx *f = *state;
    err_t e;
    char a[19], b[19], c[19];
    events_set_listener(f->ev, count_listener, NULL);
    listener_calls = 0;
    int64_t before = events_last(f->ev);
    assert_int_equal(store_begin(f->st, &e), 0);
    create(f, "Account", "{\"Name\":\"A\"}", a);
    create(f, "Teacher__c", "{\"First_Name__c\":\"B\"}", b);
    assert_int_equal(listener_calls, 0);          /* nothing before the commit */
    assert_int_equal(events_last(f->ev), before); /* not visible yet */
    assert_int_equal(store_commit(f->st, &e), 0);
    assert_int_equal(listener_calls, 1);
    create(f, "Account", "{\"Name\":\"C\"}", c);
    assert_int_equal(listener_calls, 2);
    json_t *rows = rows_after(f, before);
    assert_int_equal(json_array_size(rows), 3);
    json_t *r0 = json_array_get(rows, 0), *r1 = json_array_get(rows, 1);
    json_t *r2 = json_array_get(rows, 2);
    assert_string_equal(hs(r0, "transactionKey"), hs(r1, "transactionKey"));
    assert_string_not_equal(hs(r0, "transactionKey"), hs(r2, "transactionKey"));
    assert_int_equal(json_integer_value(json_object_get(header(r0), "sequenceNumber")), 1);
    assert_int_equal(json_integer_value(json_object_get(header(r1), "sequenceNumber")), 2);
    assert_int_equal(json_integer_value(json_object_get(header(r2), "sequenceNumber")), 1);
    events_set_listener(f->ev, NULL, NULL);
    json_decref(rows);
}

static void
test_rollback_leaves_no_event(void **state)
{
    fx *f = *state;
    err_t e;
    char a[19], b[19];
    events_set_listener(f->ev, count_listener, NULL);
    listener_calls = 0;
    int64_t before = events_last(f->ev);
    assert_int_equal(store_begin(f->st, &e), 0);
    create(f, "Account", "{\"Name\":\"Gone\"}", a);
    store_rollback(f->st);
    json_t *rows = rows_after(f, before);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    assert_int_equal(listener_calls, 0);
    assert_int_equal(events_last(f->ev), before);

    /* A rolled-back savepoint drops its event; the sequence closes the gap. */
    assert_int_equal(store_begin(f->st, &e), 0);
    create(f, "Account", "{\"Name\":\"Kept 1\"}", a);
    assert_int_equal(store_begin(f->st, &e), 0);
    create(f, "Account", "{\"Name\":\"Dropped\"}", b);
    store_rollback(f->st);
    create(f, "Account", "{\"Name\":\"Kept 2\"}", b);
    assert_int_equal(store_commit(f->st, &e), 0);
    rows = rows_after(f, before);
    assert_int_equal(json_array_size(rows), 2);
    assert_int_equal(json_integer_value(
                         json_object_get(header(json_array_get(rows, 1)), "sequenceNumber")),
                     2);
    /* A failed write (required field missing) leaves nothing either. */
    int64_t mid = events_last(f->ev);
    json_t *bad = J("{\"Salary__c\":1}");
    assert_int_equal(store_create(f->st, &f->actor, "Teacher__c", bad, a, &e), -1);
    json_decref(bad);
    json_decref(rows);
    rows = rows_after(f, mid);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    events_set_listener(f->ev, NULL, NULL);
}

static void
test_gap_events(void **state)
{
    fx *f = *state;
    char id[19];
    int64_t before = events_last(f->ev);
    create(f, "Teacher__c", "{\"First_Name__c\":\"Gap\"}", id);
    update(f, "Teacher__c", id, "{\"Salary__c\":5}");
    json_t *rows = rows_after(f, before);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(hs(json_array_get(rows, 0), "changeType"), "GAP_CREATE");
    assert_string_equal(hs(json_array_get(rows, 1), "changeType"), "GAP_UPDATE");
    assert_int_equal(json_object_size(payload(json_array_get(rows, 0))), 1);
    assert_int_equal(json_object_size(payload(json_array_get(rows, 1))), 1);
    json_decref(rows);
}

/* ---- retention and replay ------------------------------------------------ */

static void
test_replay_ranges(void **state)
{
    fx *f = *state;
    err_t e;
    char id[19];
    for (int i = 0; i < 3; i++)
        create(f, "Account", "{\"Name\":\"R\"}", id);
    int64_t last = events_last(f->ev), after = -99;
    assert_true(last >= 3);
    assert_int_equal(events_replay_start(f->ev, -1, &after, &e), 0);
    assert_int_equal(after, last);
    assert_int_equal(events_replay_start(f->ev, -2, &after, &e), 0);
    assert_int_equal(after, 0);
    assert_int_equal(events_replay_start(f->ev, last - 1, &after, &e), 0);
    assert_int_equal(after, last - 1);
    assert_int_equal(events_replay_start(f->ev, last + 5, &after, &e), -1);
    char want[64];
    snprintf(want, sizeof want, "The replayId {%lld} you provided was invalid.",
             (long long)(last + 5));
    assert_memory_equal(e.msg, want, strlen(want));
    assert_int_equal(events_replay_start(f->ev, -7, &after, &e), -1);

    /* Purged events: replaying from before them fails; -2 starts after them. */
    store_lock(f->st);
    assert_int_equal(sqlite3_exec(store_db(f->st),
                                  "UPDATE _lf_events SET created = 0 WHERE replayId <= 2", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    store_unlock(f->st);
    events_purge(f->ev);
    json_t *rows = rows_after(f, 0);
    assert_int_equal(json_array_size(rows), (size_t)(last - 2));
    json_decref(rows);
    assert_int_equal(events_replay_start(f->ev, 1, &after, &e), -1);
    assert_int_equal(events_replay_start(f->ev, 2, &after, &e), 0);
    assert_int_equal(events_replay_start(f->ev, -2, &after, &e), 0);
    assert_int_equal(after, 2);
}

static void
test_fetch(void **state)
{
    fx *f = *state;
    char id[19];
    err_t e;
    for (int i = 0; i < 3; i++)
        create(f, "Account", "{\"Name\":\"F\"}", id);
    create(f, "Teacher__c", "{\"First_Name__c\":\"T\"}", id);
    sb out = SB_INIT;
    int count = 0;
    int64_t next = 0;
    assert_int_equal(events_fetch(f->ev, "/data/AccountChangeEvent", "/data/AccountChangeEvent", 0,
                                  2, &out, &count, &next, &e),
                     0);
    assert_int_equal(count, 2);
    assert_int_equal(next, 2);
    sb_clear(&out);
    count = 0;
    assert_int_equal(events_fetch(f->ev, "/data/ChangeEvents", "/data/ChangeEvents", next, 100,
                                  &out, &count, &next, &e),
                     0);
    assert_int_equal(count, 2); /* the third Account and the Teacher */
    assert_int_equal(next, events_last(f->ev));
    char *wrapped = xcalloc(1, out.len + 3);
    snprintf(wrapped, out.len + 3, "[%s]", out.buf);
    json_t *msgs = J(wrapped);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "channel")),
                        "/data/ChangeEvents");
    json_decref(msgs);
    free(wrapped);
    sb_free(&out);
}

static void
test_no_retention(void **state)
{
    fx *f = *state;
    err_t e;
    char id[19];
    create(f, "Account", "{\"Name\":\"N\"}", id);
    int64_t last = events_last(f->ev), after;
    assert_int_equal(events_replay_start(f->ev, last, &after, &e), -1);
    assert_int_equal(events_replay_start(f->ev, 0, &after, &e), -1);
    assert_int_equal(events_replay_start(f->ev, -2, &after, &e), 0);
    assert_int_equal(after, last); /* nothing retained to replay */
}

/* ---- channels and PushTopics ---------------------------------------------- */

/* An object not selected for Change Data Capture: no channel, no events. */
static void
test_object_without_cdc(void **state)
{
    fx *f = *state;
    err_t e;
    char key[256], id[19];
    schema_object(store_schema(f->st), "Teacher__c")->no_cdc = true;
    assert_int_equal(events_channel_key(f->ev, "/data/Teacher__ChangeEvent", key, 256, &e), -1);
    assert_non_null(strstr(e.msg, "does not exist"));
    int64_t before = events_last(f->ev);
    create(f, "Teacher__c", "{\"Name\":\"No Event\",\"First_Name__c\":\"N\"}", id);
    assert_true(events_last(f->ev) == before);
    create(f, "Account", "{\"Name\":\"Evented\"}", id);
    assert_true(events_last(f->ev) > before);
}

static void
test_channel_keys(void **state)
{
    fx *f = *state;
    err_t e;
    char key[256], id[19];
    assert_int_equal(events_channel_key(f->ev, "/data/ChangeEvents", key, sizeof key, &e), 0);
    assert_string_equal(key, "/data/ChangeEvents");
    assert_int_equal(events_channel_key(f->ev, "/data/Teacher__ChangeEvent", key, 256, &e), 0);
    assert_string_equal(key, "/data/Teacher__ChangeEvent");
    assert_int_equal(events_channel_key(f->ev, "/data/teacher__ChangeEvent", key, 256, &e), 0);
    assert_string_equal(key, "/data/Teacher__ChangeEvent");
    assert_int_equal(events_channel_key(f->ev, "/data/AccountChangeEvent", key, sizeof key, &e), 0);
    assert_int_equal(events_channel_key(f->ev, "/data/Nope__ChangeEvent", key, sizeof key, &e), -1);
    assert_non_null(strstr(e.msg, "does not exist"));
    assert_int_equal(events_channel_key(f->ev, "/data/PushTopicChangeEvent", key, 256, &e), -1);
    assert_int_equal(events_channel_key(f->ev, "/data/ChangeEvent", key, sizeof key, &e), -1);
    assert_int_equal(events_channel_key(f->ev, "/event/Foo__e", key, sizeof key, &e), -1);
    assert_int_equal(events_channel_key(f->ev, "/topic/Nope", key, sizeof key, &e), -1);
    create(f, "PushTopic",
           "{\"Name\":\"Rich\",\"Query\":\"SELECT Id FROM Account\",\"ApiVersion\":59.0}", id);
    assert_int_equal(events_channel_key(f->ev, "/topic/rich", key, sizeof key, &e), 0);
    assert_string_equal(key, "/topic/Rich");
}

static void
test_pushtopic_bad_query(void **state)
{
    fx *f = *state;
    err_t e;
    char id[19];
    int64_t before = events_last(f->ev);
    const char *bad[] = {
        "{\"Name\":\"B1\",\"Query\":\"SELECT Id FRM Account\",\"ApiVersion\":59}",
        "{\"Name\":\"B2\",\"Query\":\"SELECT Id FROM Nope__c\",\"ApiVersion\":59}",
        "{\"Name\":\"B3\",\"Query\":\"SELECT Id FROM Account LIMIT 5\",\"ApiVersion\":59}",
        "{\"Name\":\"B4\",\"Query\":\"SELECT COUNT() FROM Account\",\"ApiVersion\":59}",
        "{\"Name\":\"B5\",\"Query\":\"SELECT Id FROM Account\",\"ApiVersion\":59,"
        "\"NotifyForFields\":\"Sometimes\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *r = J(bad[i]);
        assert_int_equal(store_create(f->st, &f->actor, "PushTopic", r, id, &e), -1);
        assert_true(e.code[0] >= 'A' && e.code[0] <= 'Z');
        json_decref(r);
    }
    assert_int_equal(store_count(f->st, "PushTopic", true), 0);
    /* An update to a bad query is refused too. */
    create(f, "PushTopic",
           "{\"Name\":\"Good\",\"Query\":\"SELECT Id FROM Account\","
           "\"ApiVersion\":59}",
           id);
    json_t *r = J("{\"Query\":\"SELECT Id FROM\"}");
    assert_int_equal(store_update(f->st, &f->actor, "PushTopic", id, r, &e), -1);
    json_decref(r);
    /* PushTopic changes are not change events. */
    json_t *rows = rows_after(f, before);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
}

static void
test_pushtopic_matching(void **state)
{
    fx *f = *state;
    err_t e;
    char topic[19], t1[19], t2[19];
    create(f, "PushTopic",
           "{\"Name\":\"Rich\",\"Query\":\"SELECT Id, First_Name__c, Salary__c FROM Teacher__c "
           "WHERE Salary__c > 1000\",\"ApiVersion\":59.0}",
           topic);
    int64_t before = events_last(f->ev);
    create(f, "Teacher__c", "{\"First_Name__c\":\"Rich\",\"Salary__c\":2000}", t1);
    create(f, "Teacher__c", "{\"First_Name__c\":\"Poor\",\"Salary__c\":500}", t2);
    update(f, "Teacher__c", t1, "{\"Hired__c\":\"2020-02-02\"}"); /* not referenced */
    update(f, "Teacher__c", t2, "{\"First_Name__c\":\"Still\"}"); /* no match */
    update(f, "Teacher__c", t1, "{\"First_Name__c\":\"Richer\"}");
    assert_int_equal(store_delete(f->st, &f->actor, "Teacher__c", t1, &e), 0);
    json_t *rows = rows_after(f, before);
    json_t *topic_rows = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
        if (strcmp(json_string_value(json_object_get(row, "channel")), "/topic/Rich") == 0)
            json_array_append(topic_rows, row);
    assert_int_equal(json_array_size(topic_rows), 3);
    const char *types[] = {"created", "updated", "deleted"};
    for (size_t k = 0; k < 3; k++) {
        json_t *d = json_object_get(json_array_get(topic_rows, k), "data");
        json_t *ev = json_object_get(d, "event");
        json_t *so = json_object_get(d, "sobject");
        assert_string_equal(json_string_value(json_object_get(ev, "type")), types[k]);
        assert_int_equal(json_integer_value(json_object_get(ev, "replayId")),
                         json_integer_value(
                             json_object_get(json_array_get(topic_rows, k), "replayId")));
        assert_int_equal(strlen(json_string_value(json_object_get(ev, "createdDate"))), 24);
        assert_string_equal(json_string_value(json_object_get(so, "Id")), t1);
        assert_int_equal(json_object_size(so), 3);
        assert_true(json_number_value(json_object_get(so, "Salary__c")) == 2000.0);
    }
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(json_array_get(topic_rows, 1), "data"),
                                            "sobject"),
                            "First_Name__c")),
                        "Richer");
    json_decref(topic_rows);
    json_decref(rows);

    /* Deactivated: no more events. */
    update(f, "PushTopic", topic, "{\"IsActive\":false}");
    before = events_last(f->ev);
    create(f, "Teacher__c", "{\"First_Name__c\":\"Rich\",\"Salary__c\":9000}", t1);
    rows = rows_after(f, before);
    assert_int_equal(json_array_size(rows), 1); /* the CDC event only */
    json_decref(rows);
}

/* ---- Bayeux ---------------------------------------------------------------- */

static void
test_bayeux_handshake(void **state)
{
    fx *f = *state;
    json_t *r = bayeux(f, "[{\"channel\":\"/meta/handshake\",\"version\":\"1.0\",\"id\":\"1\"}]",
                       f->user, NULL);
    json_t *m = reply_on(r, "/meta/handshake");
    assert_true(json_is_true(json_object_get(m, "successful")));
    assert_string_equal(json_string_value(json_object_get(m, "id")), "1");
    assert_string_equal(json_string_value(json_object_get(m, "version")), "1.0");
    assert_int_equal(json_string_length(json_object_get(m, "clientId")), 27);
    assert_true(json_is_true(json_object_get(json_object_get(m, "ext"), "replay")));
    assert_string_equal(json_string_value(
                            json_array_get(json_object_get(m, "supportedConnectionTypes"), 0)),
                        "long-polling");
    json_decref(r);
    assert_int_equal(cometd_client_count(f->cd), 1);

    /* Without a valid session: 403::Handshake denied, reconnect none, the sfdc reason. */
    r = bayeux(f, "[{\"channel\":\"/meta/handshake\",\"version\":\"1.0\",\"id\":\"2\"}]", NULL,
               NULL);
    m = reply_on(r, "/meta/handshake");
    assert_true(json_is_false(json_object_get(m, "successful")));
    assert_string_equal(json_string_value(json_object_get(m, "error")), "403::Handshake denied");
    assert_string_equal(json_string_value(
                            json_object_get(json_object_get(m, "advice"), "reconnect")),
                        "none");
    assert_string_equal(json_string_value(
                            json_object_get(json_object_get(json_object_get(m, "ext"), "sfdc"),
                                            "failureReason")),
                        "401::Authentication invalid");
    json_decref(r);
    assert_int_equal(cometd_client_count(f->cd), 1);
}

static void
test_bayeux_connect_subscribe(void **state)
{
    fx *f = *state;
    char cid[64], id[19], body[512];
    create(f, "Teacher__c", "{\"First_Name__c\":\"Before\"}", id);
    handshake(f, cid);
    snprintf(body, sizeof body,
             "[{\"channel\":\"/meta/connect\",\"clientId\":\"%s\",\"connectionType\":"
             "\"long-polling\",\"id\":\"2\"}]",
             cid);
    json_t *r = bayeux(f, body, f->user, NULL);
    json_t *m = reply_on(r, "/meta/connect");
    assert_true(json_is_true(json_object_get(m, "successful")));
    assert_string_equal(json_string_value(json_object_get(m, "clientId")), cid);
    json_t *adv = json_object_get(m, "advice");
    assert_int_equal(json_integer_value(json_object_get(adv, "interval")), 0);
    assert_int_equal(json_integer_value(json_object_get(adv, "timeout")), 1000);
    assert_string_equal(json_string_value(json_object_get(adv, "reconnect")), "retry");
    json_decref(r);

    snprintf(body, sizeof body,
             "[{\"channel\":\"/meta/subscribe\",\"clientId\":\"%s\",\"subscription\":"
             "\"/data/Teacher__ChangeEvent\",\"id\":\"3\",\"ext\":{\"replay\":"
             "{\"/data/Teacher__ChangeEvent\":-2}}}]",
             cid);
    r = bayeux(f, body, f->user, NULL);
    m = reply_on(r, "/meta/subscribe");
    assert_true(json_is_true(json_object_get(m, "successful")));
    assert_string_equal(json_string_value(json_object_get(m, "subscription")),
                        "/data/Teacher__ChangeEvent");
    json_decref(r);

    /* The next connect would be held; answered now it carries the replayed event. */
    snprintf(body, sizeof body,
             "[{\"channel\":\"/meta/connect\",\"clientId\":\"%s\",\"connectionType\":"
             "\"long-polling\",\"id\":\"4\"}]",
             cid);
    cometd_reply rep;
    cometd_process_body(f->cd, body, strlen(body), f->user, &rep);
    assert_true(rep.hold);
    sb out = SB_INIT;
    cometd_finish(f->cd, &rep, &out);
    r = J(out.buf);
    sb_free(&out);
    assert_int_equal(json_array_size(r), 2);
    json_t *ev = json_array_get(r, 0);
    assert_string_equal(json_string_value(json_object_get(ev, "channel")),
                        "/data/Teacher__ChangeEvent");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(json_object_get(json_object_get(ev,
                                                                                            "data"),
                                                                            "payload"),
                                                            "ChangeEventHeader"),
                                            "recordIds"),
                            0)),
                        id);
    m = reply_on(r, "/meta/connect");
    assert_string_equal(json_string_value(json_object_get(m, "id")), "4");
    assert_null(json_object_get(m, "advice"));
    json_decref(r);

    /* Nothing new: the next answer is the bare connect reply. */
    r = bayeux(f, body, f->user, NULL);
    assert_int_equal(json_array_size(r), 1);
    json_decref(r);

    /* Batched with another message, a connect is answered at once. */
    snprintf(body, sizeof body,
             "[{\"channel\":\"/meta/connect\",\"clientId\":\"%s\",\"id\":\"5\"},"
             "{\"channel\":\"/meta/unsubscribe\",\"clientId\":\"%s\",\"subscription\":"
             "\"/data/Teacher__ChangeEvent\",\"id\":\"6\"}]",
             cid, cid);
    cometd_process_body(f->cd, body, strlen(body), f->user, &rep);
    assert_false(rep.hold);
    cometd_finish(f->cd, &rep, &out);
    r = J(out.buf);
    sb_free(&out);
    assert_true(json_is_true(json_object_get(reply_on(r, "/meta/unsubscribe"), "successful")));
    json_decref(r);

    snprintf(body, sizeof body,
             "[{\"channel\":\"/meta/disconnect\",\"clientId\":\"%s\",\"id\":\"7\"}]", cid);
    r = bayeux(f, body, f->user, NULL);
    assert_true(json_is_true(json_object_get(reply_on(r, "/meta/disconnect"), "successful")));
    json_decref(r);
    assert_int_equal(cometd_client_count(f->cd), 0);
}

static void
test_bayeux_unknown_client(void **state)
{
    fx *f = *state;
    const char *channels[] = {"/meta/connect", "/meta/subscribe", "/meta/unsubscribe",
                              "/meta/disconnect"};
    for (size_t i = 0; i < 4; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "[{\"channel\":\"%s\",\"clientId\":\"nosuchclient\",\"subscription\":"
                 "\"/data/ChangeEvents\",\"id\":\"9\"}]",
                 channels[i]);
        json_t *r = bayeux(f, body, f->user, NULL);
        json_t *m = reply_on(r, channels[i]);
        assert_true(json_is_false(json_object_get(m, "successful")));
        assert_string_equal(json_string_value(json_object_get(m, "error")), "403::Unknown client");
        assert_string_equal(json_string_value(json_object_get(m, "id")), "9");
        assert_string_equal(json_string_value(
                                json_object_get(json_object_get(m, "advice"), "reconnect")),
                            "handshake");
        json_decref(r);
    }
    /* A known client whose session is gone: 401, reconnect none. */
    char cid[64], body[256];
    handshake(f, cid);
    snprintf(body, sizeof body,
             "[{\"channel\":\"/meta/connect\",\"clientId\":\"%s\",\"id\":\"3\"}]", cid);
    json_t *r = bayeux(f, body, NULL, NULL);
    json_t *m = reply_on(r, "/meta/connect");
    assert_string_equal(json_string_value(json_object_get(m, "error")),
                        "401::Authentication invalid");
    assert_string_equal(json_string_value(
                            json_object_get(json_object_get(m, "advice"), "reconnect")),
                        "none");
    json_decref(r);
}

static void
test_bayeux_bad_replay(void **state)
{
    fx *f = *state;
    char cid[64], body[512];
    handshake(f, cid);
    snprintf(body, sizeof body,
             "[{\"channel\":\"/meta/subscribe\",\"clientId\":\"%s\",\"subscription\":"
             "\"/data/ChangeEvents\",\"id\":\"3\",\"ext\":{\"replay\":{\"/data/ChangeEvents\":"
             "424242}}}]",
             cid);
    json_t *r = bayeux(f, body, f->user, NULL);
    json_t *m = reply_on(r, "/meta/subscribe");
    assert_true(json_is_false(json_object_get(m, "successful")));
    assert_string_equal(json_string_value(json_object_get(m, "error")),
                        "400::The replayId {424242} you provided was invalid. Please provide a "
                        "valid ID, -2 to replay all events, or -1 to replay only new events.");
    assert_string_equal(json_string_value(json_object_get(m, "subscription")),
                        "/data/ChangeEvents");
    json_decref(r);

    snprintf(body, sizeof body,
             "[{\"channel\":\"/meta/subscribe\",\"clientId\":\"%s\",\"subscription\":"
             "\"/data/ChangeEvents\",\"id\":\"4\",\"ext\":{\"replay\":{}}}]",
             cid);
    r = bayeux(f, body, f->user, NULL);
    m = reply_on(r, "/meta/subscribe");
    const char *err = json_string_value(json_object_get(m, "error"));
    const char *want = "400::The replayId for channel {/data/ChangeEvents} wasn't found using the "
                       "provided replay ID map {{}}.";
    assert_memory_equal(err, want, strlen(want));
    json_decref(r);

    snprintf(body, sizeof body,
             "[{\"channel\":\"/meta/subscribe\",\"clientId\":\"%s\",\"subscription\":"
             "\"/topic/NoSuchTopic\",\"id\":\"5\"}]",
             cid);
    r = bayeux(f, body, f->user, NULL);
    m = reply_on(r, "/meta/subscribe");
    assert_true(json_is_false(json_object_get(m, "successful")));
    assert_non_null(strstr(json_string_value(json_object_get(m, "error")), "400::"));
    json_decref(r);
}

static void
test_bayeux_malformed(void **state)
{
    fx *f = *state;
    int status;
    const char *bodies[] = {"not json", "\"x\"", "[]", "42", "{\"channel\": \"/meta/handshake\""};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_t *r = bayeux(f, bodies[i], f->user, &status);
        assert_int_equal(status, 400);
        assert_true(json_is_false(json_object_get(json_array_get(r, 0), "successful")));
        json_decref(r);
    }
    const char *msgs[] = {
        "[1,2,3]",
        "[{\"id\":\"1\"}]",
        "[{\"channel\":7}]",
        "[{\"channel\":\"\"}]",
        "[{\"channel\":\"/meta/connect\",\"id\":[1]}]",
        "[null]",
        "[{\"channel\":\"/meta/"
        "handshake\",\"id\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxx\"}]",
        "[{\"channel\":\"/meta/bogus\"}]",
        "[{\"channel\":\"/topic/x\",\"data\":{}}]",
        "[{\"channel\":\"/meta/subscribe\",\"clientId\":{}}]",
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        json_t *r = bayeux(f, msgs[i], f->user, &status);
        assert_int_equal(status, 200);
        size_t k;
        json_t *m;
        assert_true(json_array_size(r) > 0);
        json_array_foreach(r, k, m)
            assert_true(json_is_false(json_object_get(m, "successful")));
        json_decref(r);
    }
    /* Over 32 KB: 413. */
    size_t n = COMETD_MAX_BODY + 100;
    char *big = xmalloc(n + 1);
    memset(big, ' ', n);
    big[0] = '[';
    big[n - 1] = ']';
    big[n] = '\0';
    json_t *r = bayeux(f, big, f->user, &status);
    assert_int_equal(status, 413);
    json_decref(r);
    free(big);
    assert_int_equal(cometd_client_count(f->cd), 0);
}

static void
test_bayeux_client_expiry(void **state)
{
    fx *f = *state;
    err_t e;
    /* A server with its delivery thread, which drops clients that stay away. */
    lf_cometd_config cc = {.timeout_ms = 1000, .expire_ms = 50, .expire_events_ms = 50};
    lf_cometd *live = cometd_new_config(f->ev, &cc, &e);
    assert_non_null(live);
    cometd_reply r;
    const char *hs = "[{\"channel\":\"/meta/handshake\",\"version\":\"1.0\",\"id\":\"1\"}]";
    cometd_process_body(live, hs, strlen(hs), f->user, &r);
    sb out = SB_INIT;
    cometd_finish(live, &r, &out);
    sb_free(&out);
    assert_int_equal(cometd_client_count(live), 1);
    for (int i = 0; i < 100 && cometd_client_count(live) > 0; i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(cometd_client_count(live), 0);
    cometd_shutdown(live);
    cometd_free(live);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_create_event),
        T(test_update_event),
        T(test_delete_event),
        T(test_compound_name),
        T(test_transaction_key_and_sequence),
        T(test_rollback_leaves_no_event),
        cmocka_unit_test_setup_teardown(test_gap_events, setup_gap, teardown),
        T(test_replay_ranges),
        T(test_fetch),
        cmocka_unit_test_setup_teardown(test_no_retention, setup_noretention, teardown),
        T(test_channel_keys),
        T(test_object_without_cdc),
        T(test_pushtopic_bad_query),
        T(test_pushtopic_matching),
        T(test_bayeux_handshake),
        T(test_bayeux_connect_subscribe),
        T(test_bayeux_unknown_client),
        T(test_bayeux_bad_replay),
        T(test_bayeux_malformed),
        T(test_bayeux_client_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
