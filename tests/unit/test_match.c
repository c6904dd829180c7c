/*
 * Unit tests for match: which record an insert whose answer was lost created
 * when the record was edited in Salesforce before sfbridge looked for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "match.h"

#define SEC 1000

static json_t *
J(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    return v;
}

/* Runs match_inserts on ni inserts (sent JSON, all in [0, 60 s]; the first
 * nmine settled, the rest competing) and nc candidates (record JSON, created
 * at 10 s unless `at` says otherwise) by `rules`. */
static void
run_by(const char *const *sent, size_t ni, size_t nmine, const char *const *recs, const int64_t *at,
       size_t nc, const match_rules *rules, int *out)
{
    match_insert ins[8];
    match_cand cand[8];
    for (size_t i = 0; i < ni; i++)
        ins[i] = (match_insert){J(sent[i]), 0, 60 * SEC, false};
    for (size_t c = 0; c < nc; c++)
        cand[c] = (match_cand){J(recs[c]), at ? at[c] : 10 * SEC};
    match_inserts(ins, ni, nmine, cand, nc, rules, out);
    for (size_t i = 0; i < ni; i++)
        json_decref((json_t *)ins[i].sent);
    for (size_t c = 0; c < nc; c++)
        json_decref((json_t *)cand[c].rec);
}

/* `strong` the telling fields; the user may be shared. */
static void
run_with(const char *const *sent, size_t ni, size_t nmine, const char *const *recs,
         const int64_t *at, size_t nc, const char *const *strong, int *out)
{
    match_rules rules = {strong, false};
    run_by(sent, ni, nmine, recs, at, nc, &rules, out);
}

/* The user is sfbridge's alone; any field telling. */
static void
run_sole(const char *const *sent, size_t ni, size_t nmine, const char *const *recs,
         const int64_t *at, size_t nc, int *out)
{
    match_rules rules = {NULL, true};
    run_by(sent, ni, nmine, recs, at, nc, &rules, out);
}

/* Every insert settled, any field telling. */
static void
run(const char *const *sent, size_t ni, const char *const *recs, const int64_t *at, size_t nc,
    int *out)
{
    run_with(sent, ni, ni, recs, at, nc, NULL, out);
}

static void
test_score(void **state)
{
    (void)state;
    json_t *s = J("{\"LastName\":\"A\",\"Age__c\":3,\"Seen__c\":\"2024-01-02T03:04:05Z\","
                  "\"Gone__c\":null,\"Vip__c\":true,\"attributes\":{\"type\":\"Contact\"}}");
    json_t *r = J("{\"LastName\":\"A\",\"Age__c\":3.0,\"Seen__c\":\"2024-01-02T03:04:05.000+0000\","
                  "\"Gone__c\":null,\"Vip__c\":false}");
    /* LastName, Age__c (3 is 3.0), Seen__c (one instant); nulls and attributes do not count */
    assert_int_equal(match_score(s, r, NULL), 3);
    /* a match that tells records apart is needed: only flags and numbers is none */
    const char *const names[] = {"Name", NULL};
    assert_int_equal(match_score(s, r, names), 0);
    const char *const last[] = {"LastName", NULL};
    assert_int_equal(match_score(s, r, last), 3);
    json_decref(s);
    json_decref(r);
}

static void
test_an_edited_record_is_found(void **state)
{
    (void)state;
    const char *sent[] = {"{\"LastName\":\"Lee\",\"FirstName\":\"v1\",\"Email\":\"a@x.test\"}"};
    const char *recs[] = {"{\"Id\":\"003A\",\"LastName\":\"Lee\",\"FirstName\":\"edited\","
                          "\"Email\":\"a@x.test\"}"};
    int out[1];
    run(sent, 1, recs, NULL, 1, out);
    assert_int_equal(out[0], 0);
}

static void
test_nothing_to_find_means_not_created(void **state)
{
    (void)state;
    const char *sent[] = {"{\"LastName\":\"Lee\",\"FirstName\":\"v1\"}"};
    const char *recs[] = {"{\"LastName\":\"Other\",\"FirstName\":\"x\"}", /* scores 0 */
                          "{\"LastName\":\"Lee\",\"FirstName\":\"v1\"}"}; /* outside the window */
    int64_t at[] = {10 * SEC, 61 * SEC};
    int out[1];
    run(sent, 1, NULL, NULL, 0, out);
    assert_int_equal(out[0], MATCH_NONE);
    run(sent, 1, recs, at, 2, out);
    assert_int_equal(out[0], MATCH_NONE);
}

static void
test_a_collection_of_edited_records_pairs_up(void **state)
{
    (void)state;
    const char *sent[] = {"{\"LastName\":\"K1\",\"FirstName\":\"a\",\"Phone\":\"1\"}",
                          "{\"LastName\":\"K2\",\"FirstName\":\"a\",\"Phone\":\"2\"}",
                          "{\"LastName\":\"K3\",\"FirstName\":\"a\",\"Phone\":\"3\"}"};
    const char *recs[] = {"{\"LastName\":\"K3\",\"FirstName\":\"z\",\"Phone\":\"3\"}",
                          "{\"LastName\":\"K1\",\"FirstName\":\"z\",\"Phone\":\"1\"}",
                          "{\"LastName\":\"K2\",\"FirstName\":\"a\",\"Phone\":\"2\"}"};
    int out[3];
    run(sent, 3, recs, NULL, 3, out);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 2);
    assert_int_equal(out[2], 0);
}

static void
test_a_tie_is_ambiguous(void **state)
{
    (void)state;
    const char *sent[] = {"{\"LastName\":\"Same\",\"FirstName\":\"v1\",\"Email\":\"p@x\"}"};
    const char *recs[] = {"{\"LastName\":\"Same\",\"FirstName\":\"x\",\"Email\":\"p@x\"}",
                          "{\"LastName\":\"Same\",\"FirstName\":\"y\",\"Email\":\"p@x\"}"};
    int out[1];
    run(sent, 1, recs, NULL, 2, out);
    assert_int_equal(out[0], MATCH_AMBIGUOUS);
}

static void
test_a_better_claim_settles_first(void **state)
{
    (void)state;
    /* Insert 0 scores both candidates 2; insert 1 scores candidate 1 higher:
     * it takes it, then insert 0 has one candidate left. */
    const char *sent[] = {"{\"LastName\":\"Same\",\"FirstName\":\"p\",\"Phone\":\"5\"}",
                          "{\"LastName\":\"Same\",\"FirstName\":\"q\",\"Phone\":\"5\"}"};
    const char *recs[] = {"{\"LastName\":\"Same\",\"FirstName\":\"edited\",\"Phone\":\"5\"}",
                          "{\"LastName\":\"Same\",\"FirstName\":\"q\",\"Phone\":\"5\"}"};
    int out[2];
    run(sent, 2, recs, NULL, 2, out);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[0], 0);
}

static void
test_one_candidate_two_claims_is_not_given_twice(void **state)
{
    (void)state;
    const char *sent[] = {"{\"LastName\":\"Same\",\"FirstName\":\"p\",\"Email\":\"e@x\"}",
                          "{\"LastName\":\"Same\",\"FirstName\":\"q\",\"Email\":\"e@x\"}"};
    const char *recs[] = {"{\"LastName\":\"Same\",\"FirstName\":\"edited\",\"Email\":\"e@x\"}"};
    int out[2];
    run(sent, 2, recs, NULL, 1, out);
    assert_int_equal(out[0], MATCH_AMBIGUOUS);
    assert_int_equal(out[1], MATCH_AMBIGUOUS);
}

static void
test_only_flags_in_common_is_not_a_match(void **state)
{
    (void)state;
    /* An insert that never reached Salesforce, and another lost insert's record
     * that shares its picklist and flag values: not the same record. */
    const char *sent[] = {"{\"Name\":\"WLD-388\",\"Subject__c\":\"Music\",\"Active__c\":true}"};
    const char *recs[] = {"{\"Name\":\"WLA-471\",\"Subject__c\":\"Music\",\"Active__c\":true}"};
    const char *const strong[] = {"Name", NULL};
    int out[1];
    run_with(sent, 1, 1, recs, NULL, 1, strong, out);
    assert_int_equal(out[0], MATCH_NONE);
}

static void
test_one_value_in_common_is_not_a_match(void **state)
{
    (void)state;
    /* The chaos campaign's case: another record made as the same user that
     * shares only a phone number with ours (1 of 5 values). */
    const char *sent[] = {"{\"LastName\":\"ckey a11055\",\"FirstName\":\"two lines\","
                          "\"Email\":\"x5@mail.test\",\"Phone\":\"+1 (555) 5793\","
                          "\"Description\":\"back\"}"};
    const char *recs[] = {"{\"LastName\":\"ckey s1153\",\"FirstName\":\"=> 884762\","
                          "\"Email\":\"x531315@mail.test\",\"Phone\":\"+1 (555) 5793\","
                          "\"Description\":\"k\"}"};
    int out[1];
    run(sent, 1, recs, NULL, 1, out);
    assert_int_equal(out[0], MATCH_NONE);
}

static void
test_a_competitor_keeps_its_own_record(void **state)
{
    (void)state;
    /* Ours (not created) shares a name with a record another lost insert (a
     * competitor, not being settled now) made with exactly its values. */
    const char *sent[] = {"{\"LastName\":\"Smith\",\"FirstName\":\"Ann\",\"Email\":\"s@x\"}",
                          "{\"LastName\":\"Smith\",\"FirstName\":\"Bob\",\"Email\":\"s@x\"}"};
    const char *recs[] = {"{\"LastName\":\"Smith\",\"FirstName\":\"Bob\",\"Email\":\"s@x\"}"};
    int out[1];
    run_with(sent, 2, 1, recs, NULL, 1, NULL, out);
    assert_int_equal(out[0], MATCH_NONE);
    /* without the competitor the record would have looked like ours, edited */
    run_with(sent, 1, 1, recs, NULL, 1, NULL, out);
    assert_int_equal(out[0], 0);
}

static void
test_sole_user_a_record_edited_everywhere_is_found_by_elimination(void **state)
{
    (void)state;
    /* The chaos campaign's duplicates: every value edited before the look. */
    const char *sent[] = {"{\"LastName\":\"Lee\",\"FirstName\":\"v1\",\"Phone\":\"1\"}"};
    const char *recs[] = {"{\"LastName\":\"Kim\",\"FirstName\":\"v9\",\"Phone\":\"7\"}"};
    int out[1];
    run_with(sent, 1, 1, recs, NULL, 1, NULL, out); /* a shared user: maybe a person's record */
    assert_int_equal(out[0], MATCH_NONE);
    run_sole(sent, 1, 1, recs, NULL, 1, out);
    assert_int_equal(out[0], 0);
    /* created outside its window: not its record, however alone the user */
    int64_t late[] = {61 * SEC};
    run_sole(sent, 1, 1, recs, late, 1, out);
    assert_int_equal(out[0], MATCH_NONE);
}

static void
test_sole_user_values_then_elimination(void **state)
{
    (void)state;
    /* Two inserts of one collection: one record still holds its values, the
     * other was edited everywhere; values pair the first, which leaves the
     * second to the other insert. */
    const char *sent[] = {"{\"LastName\":\"A\",\"FirstName\":\"a\",\"Phone\":\"1\"}",
                          "{\"LastName\":\"B\",\"FirstName\":\"b\",\"Phone\":\"2\"}"};
    const char *recs[] = {"{\"LastName\":\"X\",\"FirstName\":\"x\",\"Phone\":\"9\"}",
                          "{\"LastName\":\"B\",\"FirstName\":\"b\",\"Phone\":\"8\"}"};
    int out[2];
    run_sole(sent, 2, 2, recs, NULL, 2, out);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 1);
    /* the same when the second insert is a competitor, not being settled */
    run_sole(sent, 2, 1, recs, NULL, 2, out);
    assert_int_equal(out[0], 0);
}

static void
test_sole_user_two_claims_on_an_unrecognisable_record_are_left_to_values(void **state)
{
    (void)state;
    /* One of two lost inserts made the record (the other never reached
     * Salesforce); nothing tells which: neither takes it, and each is judged
     * by its values alone (here: not created). */
    const char *sent[] = {"{\"LastName\":\"A\",\"Phone\":\"1\"}",
                          "{\"LastName\":\"B\",\"Phone\":\"2\"}"};
    const char *recs[] = {"{\"LastName\":\"X\",\"Phone\":\"9\"}"};
    int out[2];
    run_sole(sent, 2, 2, recs, NULL, 1, out);
    assert_int_equal(out[0], MATCH_NONE);
    assert_int_equal(out[1], MATCH_NONE);
    /* one insert whose window does not reach the record: the other's */
    int64_t at[] = {10 * SEC};
    match_insert ins[2] = {{J(sent[0]), 0, 60 * SEC, false},
                           {J(sent[1]), 20 * SEC, 80 * SEC, false}};
    match_cand cand[1] = {{J(recs[0]), at[0]}};
    match_rules sole = {NULL, true};
    match_inserts(ins, 2, 2, cand, 1, &sole, out);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], MATCH_NONE);
    json_decref((json_t *)ins[0].sent);
    json_decref((json_t *)ins[1].sent);
    json_decref((json_t *)cand[0].rec);
}

static void
test_sole_user_a_collection_edited_everywhere_pairs_as_a_set(void **state)
{
    (void)state;
    /* The chaos campaign's last duplicates: two inserts of one collection,
     * both records edited in all but the last name before the look. Two
     * records, two inserts, nothing else in their windows: one each, and the
     * pairing that keeps the names is the only one holding any value sent. */
    const char *sent[] = {"{\"LastName\":\"ckey a169\",\"FirstName\":\"a\",\"Email\":\"a@x\","
                          "\"Phone\":\"1\",\"Description\":\"d1\"}",
                          "{\"LastName\":\"ckey a170\",\"FirstName\":\"b\",\"Email\":\"b@x\","
                          "\"Phone\":\"2\",\"Description\":\"d2\"}"};
    const char *recs[] = {"{\"LastName\":\"ckey a170\",\"FirstName\":\"y\",\"Email\":\"y@x\","
                          "\"Phone\":\"8\",\"Description\":\"e2\"}",
                          "{\"LastName\":\"ckey a169\",\"FirstName\":\"z\",\"Email\":\"z@x\","
                          "\"Phone\":\"9\",\"Description\":\"e1\"}"};
    int out[2];
    run_with(sent, 2, 2, recs, NULL, 2, NULL, out); /* a shared user: nothing to go on */
    assert_int_equal(out[0], MATCH_NONE);
    assert_int_equal(out[1], MATCH_NONE);
    run_sole(sent, 2, 2, recs, NULL, 2, out);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 0);
    /* nothing held at all: either pairing is a guess */
    const char *blank[] = {"{\"LastName\":\"p\"}", "{\"LastName\":\"q\"}"};
    run_sole(sent, 2, 2, blank, NULL, 2, out);
    assert_int_equal(out[0], MATCH_NONE);
    assert_int_equal(out[1], MATCH_NONE);
    /* three inserts for two records: one made nothing; each record holding a
     * value of its insert tells which */
    const char *three[] = {sent[0], sent[1], "{\"LastName\":\"ckey a171\"}"};
    int out3[3];
    run_sole(three, 3, 3, recs, NULL, 2, out3);
    assert_int_equal(out3[0], 1);
    assert_int_equal(out3[1], 0);
    assert_int_equal(out3[2], MATCH_NONE);
    /* a record holding nothing could be either other insert's: the one
     * holding a name is paired (and never lost to a guess), the other two
     * are left to their values */
    const char *one_blank[] = {recs[0], "{\"LastName\":\"p\"}"};
    run_sole(three, 3, 3, one_blank, NULL, 2, out3);
    assert_int_equal(out3[0], MATCH_NONE);
    assert_int_equal(out3[1], 0);
    assert_int_equal(out3[2], MATCH_NONE);
}

static void
test_sole_user_waits_for_a_competitor_yet_to_look(void **state)
{
    (void)state;
    /* Ours (edited everywhere) and a competitor whose look has not concluded
     * share the window of one record nothing recognises: the competitor may
     * yet take its own record (elsewhere) and leave this one to us, so we
     * wait; once it has concluded (FAILED), ours is judged by its values. */
    const char *sent[] = {"{\"LastName\":\"A\",\"Phone\":\"1\"}",
                          "{\"LastName\":\"B\",\"Phone\":\"2\"}"};
    const char *recs[] = {"{\"LastName\":\"X\",\"Phone\":\"9\"}"};
    match_rules sole = {NULL, true}, shared = {NULL, false};
    int out[1];
    for (int pending = 0; pending <= 1; pending++) {
        match_insert ins[2] = {{J(sent[0]), 0, 60 * SEC, false},
                               {J(sent[1]), 0, 60 * SEC, pending == 1}};
        match_cand cand[1] = {{J(recs[0]), 10 * SEC}};
        match_inserts(ins, 2, 1, cand, 1, &sole, out);
        assert_int_equal(out[0], pending ? MATCH_WAIT : MATCH_NONE);
        match_inserts(ins, 2, 1, cand, 1, &shared, out); /* a shared user: no waiting */
        assert_int_equal(out[0], MATCH_NONE);
        json_decref((json_t *)ins[0].sent);
        json_decref((json_t *)ins[1].sent);
        json_decref((json_t *)cand[0].rec);
    }
}

static void
test_sole_user_a_burst_of_lost_inserts_finds_the_one_record_by_its_name(void **state)
{
    (void)state;
    /* Eight lost inserts (an offline spell whose requests were dropped), one
     * of which did reach Salesforce and was edited in all but its name: more
     * than a set can take, but the name tells; the rest made nothing. */
    const char *sent[8];
    char buf[8][64];
    for (int i = 0; i < 8; i++) {
        snprintf(buf[i], sizeof buf[i], "{\"LastName\":\"k%d\",\"FirstName\":\"f%d\"}", i, i);
        sent[i] = buf[i];
    }
    const char *recs[] = {"{\"LastName\":\"k3\",\"FirstName\":\"edited\"}"};
    int out[8];
    run_sole(sent, 8, 8, recs, NULL, 1, out);
    for (int i = 0; i < 8; i++)
        assert_int_equal(out[i], i == 3 ? 0 : MATCH_NONE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score),
        cmocka_unit_test(test_an_edited_record_is_found),
        cmocka_unit_test(test_nothing_to_find_means_not_created),
        cmocka_unit_test(test_a_collection_of_edited_records_pairs_up),
        cmocka_unit_test(test_a_tie_is_ambiguous),
        cmocka_unit_test(test_a_better_claim_settles_first),
        cmocka_unit_test(test_one_candidate_two_claims_is_not_given_twice),
        cmocka_unit_test(test_only_flags_in_common_is_not_a_match),
        cmocka_unit_test(test_one_value_in_common_is_not_a_match),
        cmocka_unit_test(test_a_competitor_keeps_its_own_record),
        cmocka_unit_test(test_sole_user_a_record_edited_everywhere_is_found_by_elimination),
        cmocka_unit_test(test_sole_user_values_then_elimination),
        cmocka_unit_test(test_sole_user_two_claims_on_an_unrecognisable_record_are_left_to_values),
        cmocka_unit_test(test_sole_user_a_collection_edited_everywhere_pairs_as_a_set),
        cmocka_unit_test(test_sole_user_waits_for_a_competitor_yet_to_look),
        cmocka_unit_test(test_sole_user_a_burst_of_lost_inserts_finds_the_one_record_by_its_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
