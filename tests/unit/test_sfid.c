/*
 * Unit tests for sfid: checksums, normalisation, generation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "sfid.h"

static void
test_checksum_vectors(void **state)
{
    static const char *vec[][2] = {
        {"001D000000IRFma", "IAH"}, {"a0RE000000IJmcN", "MAT"}, {"001M000000qfPyS", "IAU"},
        {"aaaaaaaaaaaaaaa", "AAA"}, {"AbCdEfGhIjKlMnO", "VKV"}, {"aBcDEfgHIJKLMNO", "025"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        char c[4] = {0};
        sfid_checksum(vec[i][0], c);
        assert_string_equal(c, vec[i][1]);
    }
}

static void
test_normalize(void **state)
{
    char out[19];
    (void)state;
    assert_int_equal(sfid_normalize("001D000000IRFma", out), 0);
    assert_string_equal(out, "001D000000IRFmaIAH");
    assert_int_equal(sfid_normalize("001D000000IRFmaIAH", out), 0);
    assert_string_equal(out, "001D000000IRFmaIAH");
    /* lower-cased 18-char ID: case restored from the checksum */
    assert_int_equal(sfid_normalize("001d000000irfmaiah", out), 0);
    assert_string_equal(out, "001D000000IRFmaIAH");
    assert_int_equal(sfid_normalize("001D000000IRFm", out), -1);    /* 14 chars */
    assert_int_equal(sfid_normalize("001D000000IRFm!", out), -1);   /* bad char */
    assert_int_equal(sfid_normalize("001D000000IRFmaIA", out), -1); /* 17 chars */
    assert_int_equal(sfid_normalize("001D000000IRFma!!!", out), -1);
    assert_int_equal(sfid_normalize(NULL, out), -1);
}

static void
test_make_roundtrip(void **state)
{
    char id[19], norm[19];
    (void)state;
    uint64_t seqs[] = {0, 1, 61, 62, 123456789, 839299365868340223ULL /* 62^10 - 1 */};
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        sfid_make("a01", seqs[i], id);
        assert_int_equal(strlen(id), 18);
        assert_true(sfid_has_prefix(id, "a01"));
        assert_int_equal(sfid_seq(id), (int64_t)seqs[i]);
        assert_int_equal(sfid_normalize(id, norm), 0);
        assert_string_equal(id, norm);
        char id15[16];
        memcpy(id15, id, 15);
        id15[15] = '\0';
        assert_int_equal(sfid_normalize(id15, norm), 0);
        assert_string_equal(id, norm);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_vectors),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_make_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
