/*
 * Unit tests for log: the three formats and their keys, folding of
 * multi-line messages, and repeated warnings held back and counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static char buf[16384];
static FILE *sink;

static int
setup(void **state)
{
    (void)state;
    sink = fmemopen(buf, sizeof buf, "w");
    assert_non_null(sink);
    log_set_stream(sink);
    log_set_level(LOG_INFO);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    log_set_stream(NULL);
    log_set_format(LOG_TEXT);
    fclose(sink);
    return 0;
}

static const char *
written(void)
{
    fflush(sink);
    return buf;
}

static void
test_text_folds_lines(void **state)
{
    (void)state;
    log_set_format(LOG_TEXT);
    log_info("sfapi: cannot connect:\n\tIs the server running?\n");
    const char *w = written();
    assert_non_null(strstr(w, " info  sfapi: cannot connect: Is the server running?\n"));
    assert_int_equal(strchr(w, '\n') - w + 1, (long)strlen(w)); /* one line */
}

static void
test_json_keys(void **state)
{
    (void)state;
    log_set_format(LOG_JSON);
    log_info("stream: Teacher__c: caught up with \"3\" changes");
    const char *w = written();
    assert_non_null(strstr(w,
                           "\"level\":\"info\",\"component\":\"stream\",\"object\":\"Teacher__c\","
                           "\"msg\":\"caught up with \\\"3\\\" changes\"}\n"));
    assert_true(strncmp(w, "{\"ts\":\"", 7) == 0);
}

static void
test_logfmt_quotes(void **state)
{
    (void)state;
    log_set_format(LOG_LOGFMT);
    log_info("Account: initial load of 3 records via REST");
    log_info("plain");
    const char *w = written();
    assert_non_null(
        strstr(w, " level=info object=Account msg=\"initial load of 3 records via REST\"\n"));
    assert_non_null(strstr(w, " level=info msg=plain\n"));
}

static void
warn_once(int i)
{
    log_warn("sfapi: POST /x: NETWORK_ERROR: refused (%d)", i);
}

static void
test_repeats_are_counted(void **state)
{
    (void)state;
    log_set_format(LOG_TEXT);
    for (int i = 0; i < 10; i++)
        warn_once(i);
    log_warn("another site");
    log_flush_repeats();
    const char *w = written();
    int lines = 0;
    for (const char *p = w; (p = strstr(p, "refused (")) != NULL; p++)
        lines++;
    assert_int_equal(lines, 4); /* three written, then one with the count */
    assert_non_null(strstr(w, "refused (9) (and 7 more like it in 60 s)"));
    assert_non_null(strstr(w, "another site"));
}

static void
test_formats_parse(void **state)
{
    (void)state;
    log_format f;
    assert_int_equal(log_format_parse("json", &f), 0);
    assert_int_equal(f, LOG_JSON);
    assert_int_equal(log_format_parse("logfmt", &f), 0);
    assert_int_equal(log_format_parse("xml", &f), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_folds_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logfmt_quotes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeats_are_counted, setup, teardown),
        cmocka_unit_test(test_formats_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
