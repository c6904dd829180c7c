/*
 * Unit tests for fsm: every transition in the table, refusal of the others,
 * the SQL a transition runs as, decide's choices, and that docs/sfbridge.md's
 * States section names exactly the states of the code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "fsm.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

static bool
guard_allows(fsm_guard g, bool loaded)
{
    return g == W_ANY || (g == W_LOADED) == loaded;
}

/* Whether the table has a row for (from, ev) that holds for loaded. */
static bool
in_table(map_state from, map_event ev, bool loaded)
{
    for (size_t i = 0; i < fsm_table_len; i++)
        if (fsm_table[i].from == from && fsm_table[i].event == ev &&
            guard_allows(fsm_table[i].when, loaded))
            return true;
    return false;
}

static void
test_every_transition(void **state)
{
    (void)state;
    for (size_t i = 0; i < fsm_table_len; i++) {
        const fsm_transition *t = &fsm_table[i];
        for (int loaded = 0; loaded <= 1; loaded++) {
            if (!guard_allows(t->when, loaded))
                continue;
            int to = fsm_next(t->from, t->event, loaded);
            if (to != (int)t->to)
                fail_msg("%s --%s%s--> %s expected, got %s", fsm_state_name(t->from),
                         fsm_event_name(t->event), loaded ? " (loaded)" : "", fsm_state_name(t->to),
                         to < 0 ? "refused" : fsm_state_name(to));
        }
        /* and the UPDATE says the same */
        sb sql = SB_INIT;
        fsm_case_sql(&sql, t->event);
        char when[128];
        snprintf(when, sizeof when, "WHEN state = '%s'%s THEN '%s'", fsm_state_name(t->from),
                 t->when == W_LOADED     ? " AND loaded"
                 : t->when == W_UNLOADED ? " AND NOT loaded"
                                         : "",
                 fsm_state_name(t->to));
        assert_non_null(strstr(sb_str(&sql), when));
        sb_free(&sql);
    }
}

static void
test_table_is_a_function(void **state)
{
    (void)state;
    /* no (from, event) pair leads two ways for the same loaded */
    for (size_t i = 0; i < fsm_table_len; i++)
        for (size_t j = i + 1; j < fsm_table_len; j++) {
            const fsm_transition *a = &fsm_table[i], *b = &fsm_table[j];
            if (a->from != b->from || a->event != b->event)
                continue;
            for (int loaded = 0; loaded <= 1; loaded++)
                if (guard_allows(a->when, loaded) && guard_allows(b->when, loaded))
                    fail_msg("rows %zu and %zu both move %s on %s", i, j, fsm_state_name(a->from),
                             fsm_event_name(a->event));
        }
    /* PAUSED is shown, never stored: nothing leads into it or out of it */
    for (size_t i = 0; i < fsm_table_len; i++) {
        assert_int_not_equal(fsm_table[i].from, MS_PAUSED);
        assert_int_not_equal(fsm_table[i].to, MS_PAUSED);
    }
}

static void
test_refusals(void **state)
{
    (void)state;
    /* whatever the table lacks is refused */
    for (int s = 0; s < MS_COUNT; s++)
        for (int ev = 0; ev < EV_COUNT; ev++)
            for (int loaded = 0; loaded <= 1; loaded++)
                if (!in_table((map_state)s, (map_event)ev, loaded))
                    assert_int_equal(fsm_next((map_state)s, (map_event)ev, loaded), -1);
    /* the ones that matter */
    assert_int_equal(fsm_next(MS_RELOAD_TABLE, EV_FAIL_TRANSIENT, true),
                     -1); /* the reload is retried */
    assert_int_equal(fsm_next(MS_INITIAL, EV_RELOAD_REQUEST, false),
                     -1); /* a pending load does it */
    assert_int_equal(fsm_next(MS_RETRYING, EV_RELOAD_REQUEST, false), -1);
    assert_int_equal(fsm_next(MS_DATA_SYNCED, EV_POLL_DONE, true),
                     -1); /* a stream's fallback poll */
    assert_int_equal(fsm_next(MS_RELOAD_TABLE, EV_POLL_DONE, true),
                     -1); /* reload asked during a poll */
    assert_int_equal(fsm_next(MS_DATA_SYNCED, EV_RESUME, true), -1);
    assert_int_equal(fsm_next(MS_LOADING, EV_DRIFT_DONE, false), -1);
    assert_int_equal(fsm_next(MS_PAUSED, EV_RESUME, true), -1);
    /* guards */
    assert_int_equal(fsm_next(MS_BAD_CONFIG, EV_RESUME, true), MS_DATA_SYNCED);
    assert_int_equal(fsm_next(MS_BAD_CONFIG, EV_RESUME, false), MS_INITIAL);
    assert_int_equal(fsm_next(MS_RETRYING, EV_RELOAD_REQUEST, true), MS_RELOAD_TABLE);
    assert_int_equal(fsm_next(MS_DATA_SYNCED, EV_FIELDS_ADDED, true), MS_RESYNC);
    assert_int_equal(fsm_next(MS_RELOAD_TABLE, EV_BAD_ROW, true), MS_BAD_CONFIG);
}

static void
test_case_sql(void **state)
{
    (void)state;
    sb sql = SB_INIT;
    fsm_case_sql(&sql, EV_DRIFT_DONE);
    assert_string_equal(sb_str(&sql),
                        "CASE WHEN state = 'DRIFT_CHECK' THEN 'DATA_SYNCED' ELSE state END");
    sb_clear(&sql);
    fsm_case_sql(&sql, EV_CONFIG_CHANGED);
    assert_string_equal(sb_str(&sql),
                        "CASE WHEN state = 'BAD_CONFIG' AND loaded THEN 'DATA_SYNCED'"
                        " WHEN state = 'BAD_CONFIG' AND NOT loaded THEN 'INITIAL' ELSE state END");
    sb_free(&sql);
}

static void
test_names(void **state)
{
    (void)state;
    for (int s = 0; s < MS_COUNT; s++) {
        assert_non_null(fsm_state_name((map_state)s));
        assert_int_equal(fsm_state_parse(fsm_state_name((map_state)s)), s);
    }
    for (int ev = 0; ev < EV_COUNT; ev++)
        assert_string_not_equal(fsm_event_name((map_event)ev), "?");
    assert_int_equal(fsm_state_parse("SLEEPING"), -1);
    assert_int_equal(fsm_state_parse(NULL), -1);
    assert_string_equal(fsm_state_name(MS_BAD_CONFIG), "BAD_CONFIG");
    assert_string_equal(fsm_conn_name(CS_OFFLINE), "OFFLINE");
    assert_string_equal(fsm_stream_name(SS_FALLBACK), "FALLBACK");
}

/* ---- decide ---- */

static mapping
synced(void)
{
    return (mapping){.object = "Teacher__c",
                     .state = MS_DATA_SYNCED,
                     .loaded = true,
                     .next_poll_ms = 2000,
                     .last_drift_ms = 0};
}

static void
test_decide(void **state)
{
    (void)state;
    const int64_t now = 1000;
    mapping m = synced();
    assert_int_equal(fsm_decide(&m, DAEMON_RUN, now, 0), ACT_NONE);    /* not due */
    assert_int_equal(fsm_decide(&m, DAEMON_RUN, 2000, 0), ACT_POLL);   /* due */
    assert_int_equal(fsm_decide(&m, DAEMON_RUN, now, 500), ACT_DRIFT); /* drift due */
    assert_int_equal(fsm_decide(&m, DAEMON_ONCE, now, 0), ACT_POLL);   /* foreground: at once */
    assert_int_equal(fsm_decide(&m, DAEMON_POLL, now, 0), ACT_POLL);
    assert_int_equal(fsm_decide(&m, DAEMON_DRIFT, now, 0), ACT_DRIFT);
    assert_int_equal(fsm_decide(&m, DAEMON_LOAD, now, 0), ACT_NONE);
    m.next_poll_ms = 0;
    assert_int_equal(fsm_decide(&m, DAEMON_RUN, now, 0), ACT_POLL); /* never polled */

    m = synced();
    m.paused = true;
    assert_int_equal(fsm_decide(&m, DAEMON_ONCE, now, 0), ACT_NONE);
    m = synced();
    m.bad = "bad catalog row";
    assert_int_equal(fsm_decide(&m, DAEMON_ONCE, now, 0), ACT_NONE);

    m = synced();
    m.loaded = false;
    m.state = MS_INITIAL;
    assert_int_equal(fsm_decide(&m, DAEMON_LOAD, now, 0), ACT_LOAD);
    m.next_poll_ms = 0;
    assert_int_equal(fsm_decide(&m, DAEMON_RUN, now, 0), ACT_LOAD);

    m = synced();
    m.state = MS_RELOAD_TABLE;
    assert_int_equal(fsm_decide(&m, DAEMON_LOAD, now, 0), ACT_RELOAD);
    m = synced();
    m.resync = json_array();
    assert_int_equal(fsm_decide(&m, DAEMON_LOAD, now, 0), ACT_BACKFILL);
    json_decref(m.resync);

    /* after a failure nothing runs before its retry time */
    m = synced();
    m.state = MS_RETRYING;
    m.errors = 2;
    assert_int_equal(fsm_decide(&m, DAEMON_RUN, now, 500), ACT_NONE);
    assert_int_equal(fsm_decide(&m, DAEMON_RUN, 2000, 0), ACT_POLL);
    m = synced();
    m.state = MS_BAD_CONFIG;
    assert_int_equal(fsm_decide(&m, DAEMON_RUN, now, 500), ACT_NONE);
    assert_int_equal(fsm_decide(&m, DAEMON_ONCE, now, 0), ACT_POLL);

    assert_int_equal(fsm_action_event(ACT_POLL), EV_POLL_START);
    assert_int_equal(fsm_action_event(ACT_LOAD), EV_COUNT);
    assert_string_equal(fsm_action_name(ACT_DRIFT), "drift check");
}

/* ---- docs/sfbridge.md ---- */

static char *
read_doc(void)
{
    FILE *f = fopen(SRCDIR "/docs/sfbridge.md", "rb");
    assert_non_null(f);
    sb s = SB_INIT;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_append(&s, buf, n);
    fclose(f);
    return sb_steal(&s);
}

/* The `NAMES` of the paragraph starting with label in the States section, as
 * " A B C ", each once (code spans in capitals only: `last_error` is a column). */
static void
doc_names(const char *doc, const char *label, sb *out)
{
    const char *sec = strstr(doc, "\n## States\n");
    assert_non_null(sec);
    const char *end = strstr(sec + 4, "\n## ");
    const char *p = strstr(sec, label);
    assert_true(p && (!end || p < end));
    const char *stop = strstr(p, "\n\n");
    if (!stop || (end && end < stop))
        stop = end;
    sb_putc(out, ' ');
    for (const char *q = p; q < stop; q++) {
        if (*q != '`')
            continue;
        const char *close = strchr(q + 1, '`');
        assert_non_null(close);
        size_t len = (size_t)(close - q - 1);
        char name[64];
        snprintf(name, sizeof name, " %.*s ", (int)(len < 60 ? len : 60), q + 1);
        if (len && strspn(q + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == len &&
            !strstr(sb_str(out), name)) {
            sb_append(out, q + 1, len);
            sb_putc(out, ' ');
        }
        q = close;
    }
}

static void
check_names(const char *doc, const char *label, const char *(*name)(int), int count)
{
    sb got = SB_INIT;
    doc_names(doc, label, &got);
    int listed = 0;
    for (const char *p = sb_str(&got); *p; p++)
        if (*p == ' ' && p[1])
            listed++;
    for (int i = 0; i < count; i++) {
        char want[64];
        snprintf(want, sizeof want, " %s ", name(i));
        if (!strstr(sb_str(&got), want))
            fail_msg("docs/sfbridge.md, States, %s does not list %s", label, name(i));
    }
    if (listed != count)
        fail_msg("docs/sfbridge.md, States, %s lists %d names, the code has %d:%s", label, listed,
                 count, sb_str(&got));
    sb_free(&got);
}

static const char *
state_name_i(int i)
{
    return fsm_state_name((map_state)i);
}

static const char *
conn_name_i(int i)
{
    return fsm_conn_name((conn_state)i);
}

static const char *
stream_name_i(int i)
{
    return fsm_stream_name((stream_state)i);
}

static void
test_doc_lists_the_states(void **state)
{
    (void)state;
    char *doc = read_doc();
    check_names(doc, "Mapping:", state_name_i, MS_COUNT);
    check_names(doc, "Connection:", conn_name_i, CS_COUNT);
    check_names(doc, "Stream:", stream_name_i, SS_COUNT);
    free(doc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_transition),
        cmocka_unit_test(test_table_is_a_function),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_case_sql),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_doc_lists_the_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
