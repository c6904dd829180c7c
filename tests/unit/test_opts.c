/*
 * Unit tests for opts, the CLI's one parser: options before and after
 * arguments, --name=value, values that look like options, ranges, lists,
 * argument counts, and the sentence each mistake gets (with "did you mean").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"

static const opt_spec spec[] = {
    {"json", OPT_FLAG, NULL, 0, 0},
    {"watch", OPT_INT, "SECONDS", 1, 3600},
    {"out", OPT_STR, "FILE", 0, 0},
    {"fields", OPT_LIST, "F1,F2", 0, 0},
    {"index", OPT_MULTI, "FIELD", 0, 0},
    {"accelerated", OPT_FLAG, NULL, 0, 0},
    OPT_END,
};
static const opt_spec global[] = {{"schema", OPT_STR, "NAME", 0, 0}, OPT_END};
static const opt_args one = {1, 1, "the Salesforce object", false};
static const opt_args ids = {0, -1, "trigger log ids", true};

/* Parse a space-separated command line (copied: lists split in place). */
static int
parse(opts *o, const opt_args *a, const char *line, err_t *e)
{
    static char buf[512];
    static char *argv[32];
    snprintf(buf, sizeof buf, "%s", line);
    int argc = 0;
    for (char *t = strtok(buf, " "); t && argc < 32; t = strtok(NULL, " "))
        argv[argc++] = t;
    err_clear(e);
    return opts_parse(o, spec, global, a, argc, argv, e);
}

static void
expect_error(const opt_args *a, const char *line, const char *msg)
{
    opts o;
    err_t e;
    assert_int_equal(parse(&o, a, line, &e), -1);
    assert_string_equal(e.code, "BAD_USAGE");
    assert_string_equal(e.msg, msg);
    opts_free(&o);
}

static void
test_options_anywhere(void **state)
{
    (void)state;
    opts o;
    err_t e;
    assert_int_equal(parse(&o, &one, "--json Teacher__c --schema=s1 --watch 5 --out=x.json", &e),
                     0);
    assert_true(opts_flag(&o, "json"));
    assert_int_equal(opts_get(&o, "watch")->num, 5);
    assert_string_equal(opts_str(&o, "out"), "x.json");
    assert_string_equal(opts_str(&o, "schema"), "s1");
    assert_int_equal(o.nargs, 1);
    assert_string_equal(o.args[0], "Teacher__c");
    assert_false(opts_flag(&o, "accelerated"));
    assert_null(opts_str(&o, "nonexistent"));
    opts_free(&o);
}

static void
test_lists_and_repeats(void **state)
{
    (void)state;
    opts o;
    err_t e;
    assert_int_equal(parse(&o, &one, "X --fields A,B,,C --fields D --index E --index F:unique", &e),
                     0);
    const opt_val *f = opts_get(&o, "fields");
    assert_int_equal(f->n, 4);
    assert_string_equal(f->list[2], "C");
    assert_string_equal(f->list[3], "D");
    assert_int_equal(opts_get(&o, "index")->n, 2);
    assert_string_equal(opts_get(&o, "index")->list[1], "F:unique");
    opts_free(&o);
}

static void
test_double_dash_and_help(void **state)
{
    (void)state;
    opts o;
    err_t e;
    assert_int_equal(parse(&o, &one, "-- --json", &e), 0);
    assert_string_equal(o.args[0], "--json");
    assert_false(opts_flag(&o, "json"));
    opts_free(&o);
    /* --help wins over missing arguments. */
    assert_int_equal(parse(&o, &one, "--help", &e), 0);
    assert_true(o.help);
    opts_free(&o);
}

static void
test_values_named(void **state)
{
    (void)state;
    expect_error(&one, "X --watch", "--watch needs a value (SECONDS)");
    expect_error(&one, "X --watch --json", "--watch needs a value (SECONDS)");
    expect_error(&one, "X --watch 0", "--watch must be a whole number from 1 to 3600, not '0'");
    expect_error(&one, "X --watch -5", "--watch must be a whole number from 1 to 3600, not '-5'");
    expect_error(&one, "X --watch=abc", "--watch must be a whole number from 1 to 3600, not 'abc'");
    expect_error(&one, "X --json=1", "--json takes no value");
    expect_error(&one, "X --out=", "--out needs a value (FILE), not an empty one");
    expect_error(&one, "X --fields ,,", "--fields needs a value (F1,F2)");
    expect_error(&one, "X --schema", "--schema needs a value (NAME)");
}

static void
test_unknown_options_suggest(void **state)
{
    (void)state;
    expect_error(&one, "X --jsno", "unknown option '--jsno'; did you mean --json?");
    expect_error(&one, "X --acc", "unknown option '--acc'; did you mean --accelerated?");
    expect_error(&one, "X --shcema x", "unknown option '--shcema'; did you mean --schema?");
    expect_error(&one, "X --frobnicate", "unknown option '--frobnicate'");
    expect_error(&one, "X -j", "unknown option '-j' (options are --words)");
}

static void
test_arguments_counted(void **state)
{
    (void)state;
    expect_error(&one, "--json", "name the Salesforce object");
    expect_error(&one, "A B", "unexpected argument 'B' (at most 1: the Salesforce object)");
    expect_error(&ids, "12 abc", "trigger log ids are whole numbers, not 'abc'");
    expect_error(&ids, "0", "trigger log ids are whole numbers, not '0'");
    expect_error(NULL, "A", "unexpected argument 'A'");
    opts o;
    err_t e;
    assert_int_equal(parse(&o, &ids, "1 2 3", &e), 0);
    assert_int_equal(o.nargs, 3);
    opts_free(&o);
}

static void
test_nearest(void **state)
{
    (void)state;
    const char *cmds[] = {"init", "run", "status", "load", "poll", "drift", "mapping"};
    assert_string_equal(opts_nearest("stauts", cmds, 7), "status");
    assert_string_equal(opts_nearest("mapings", cmds, 7), "mapping");
    assert_string_equal(opts_nearest("pol", cmds, 7), "poll");
    assert_null(opts_nearest("xyzzy", cmds, 7));
    assert_null(opts_nearest("", cmds, 7));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_anywhere),
        cmocka_unit_test(test_lists_and_repeats),
        cmocka_unit_test(test_double_dash_and_help),
        cmocka_unit_test(test_values_named),
        cmocka_unit_test(test_unknown_options_suggest),
        cmocka_unit_test(test_arguments_counted),
        cmocka_unit_test(test_nearest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
