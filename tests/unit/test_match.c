/*
 * Unit tests for match: which record an insert whose answer was lost created
 * when the record was edited in Salesforce before sfbridge looked for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
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
 * at 10 s unless `at` says otherwise), `strong` the telling fields. */
static void
run_with(const char *const *sent, size_t ni, size_t nmine, const char *const *recs,
         const int64_t *at, size_t nc, const char *const *strong, int *out)
{
    match_insert ins[8];
    match_cand cand[8];
    for (size_t i = 0; i < ni; i++)
        ins[i] = (match_insert){J(sent[i]), 0, 60 * SEC};
    for (size_t c = 0; c < nc; c++)
        cand[c] = (match_cand){J(recs[c]), at ? at[c] : 10 * SEC};
    match_inserts(ins, ni, nmine, cand, nc, strong, out);
    for (size_t i = 0; i < ni; i++)
        json_decref((json_t *)ins[i].sent);
    for (size_t c = 0; c < nc; c++)
        json_decref((json_t *)cand[c].rec);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
