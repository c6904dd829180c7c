/*
 * Unit tests for sfbridge's config: defaults, file, environment precedence,
 * refusal of readable files, bad values named; and the HC export checker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "mapping.h"

static char path[] = "/tmp/sfbcfgXXXXXX";

static void
write_file(const char *text, mode_t mode)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

static void
clear_env(void)
{
    unsetenv("DATABASE_URL");
    unsetenv("SFBRIDGE_SCHEMA");
    unsetenv("SFBRIDGE_CONFIG");
    unsetenv("SFBRIDGE_BULK_THRESHOLD");
}

static void
test_defaults(void **state)
{
    (void)state;
    clear_env();
    cfg c;
    err_t e;
    assert_int_equal(cfg_load(&c, NULL, &e), 0);
    assert_string_equal(c.schema, "salesforce");
    assert_string_equal(c.login_url, "https://login.salesforce.com");
    assert_int_equal(c.bulk_threshold, 10000);
    assert_null(c.database_url);
    assert_int_equal(cfg_require_db(&c, &e), -1);
    assert_non_null(strstr(e.msg, "DATABASE_URL"));
    assert_int_equal(cfg_require_sf(&c, &e), -1);
    assert_non_null(strstr(e.msg, "SF_CLIENT_ID"));
    cfg_free(&c);
}

static void
test_file_and_env(void **state)
{
    (void)state;
    clear_env();
    strcpy(path, "/tmp/sfbcfgXXXXXX");
    write_file("# comment\nDATABASE_URL = "
               "postgres://x/y\nSFBRIDGE_SCHEMA='org'\nSFBRIDGE_BULK_THRESHOLD=5\n",
               0600);
    setenv("SFBRIDGE_SCHEMA", "fromenv", 1);
    cfg c;
    err_t e;
    assert_int_equal(cfg_load(&c, path, &e), 0);
    assert_string_equal(c.database_url, "postgres://x/y");
    assert_string_equal(c.schema, "fromenv");
    assert_int_equal(c.bulk_threshold, 5);
    cfg_free(&c);
    unlink(path);
    clear_env();
}

static void
test_readable_file_refused(void **state)
{
    (void)state;
    clear_env();
    strcpy(path, "/tmp/sfbcfgXXXXXX");
    write_file("SF_PASSWORD = hunter2\n", 0644);
    cfg c;
    err_t e;
    assert_int_equal(cfg_load(&c, path, &e), -1);
    assert_non_null(strstr(e.msg, "chmod 600"));
    assert_null(strstr(e.msg, "hunter2"));
    cfg_free(&c);
    unlink(path);
}

static void
test_bad_values_named(void **state)
{
    (void)state;
    clear_env();
    strcpy(path, "/tmp/sfbcfgXXXXXX");
    write_file("NOPE = 1\n", 0600);
    cfg c;
    err_t e;
    assert_int_equal(cfg_load(&c, path, &e), -1);
    assert_non_null(strstr(e.msg, "unknown setting 'NOPE'"));
    assert_non_null(strstr(e.msg, ":1"));
    cfg_free(&c);
    unlink(path);
    setenv("SFBRIDGE_BULK_THRESHOLD", "lots", 1);
    assert_int_equal(cfg_load(&c, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "SFBRIDGE_BULK_THRESHOLD"));
    cfg_free(&c);
    clear_env();
}

/* Parse text as a config file into c (fresh); 0 or -1. */
static int
parse_text(cfg *c, const char *text, err_t *e)
{
    memset(c, 0, sizeof *c);
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    int rc = cfg_parse(c, f, "t.conf", e);
    fclose(f);
    return rc;
}

static void
test_comments_quotes_and_export(void **state)
{
    (void)state;
    cfg c;
    err_t e;
    assert_int_equal(parse_text(&c,
                                "SF_PASSWORD = pa#ss   # the user's\n"
                                "export SF_USERNAME=u@x.test\n"
                                "export  SF_CLIENT_SECRET = \"a # b\"  # quoted\n"
                                "SFBRIDGE_SCHEMA = 'crm'\n"
                                "SF_CLIENT_ID = #\n",
                                &e),
                     0);
    assert_string_equal(c.password, "pa#ss");
    assert_string_equal(c.username, "u@x.test");
    assert_string_equal(c.client_secret, "a # b");
    assert_string_equal(c.schema, "crm");
    assert_string_equal(c.client_id, "#"); /* a '#' that starts the value is the value */
    cfg_free(&c);
    assert_int_equal(parse_text(&c, "SF_PASSWORD = 'open\n", &e), -1);
    assert_non_null(
        strstr(e.msg, "t.conf:1: SF_PASSWORD: a quoted value ends with its closing quote"));
    cfg_free(&c);
    assert_int_equal(parse_text(&c, "SF_PASSWORD = 'a' b\n", &e), -1);
    cfg_free(&c);
    assert_int_equal(parse_text(&c, "SF_API_VERSION = abc\n", &e), -1);
    assert_non_null(strstr(e.msg, "SF_API_VERSION must be a version such as 60.0, not 'abc'"));
    cfg_free(&c);
    assert_int_equal(parse_text(&c, "SF_API_VERSION = 62.0\nSFBRIDGE_LOG_LEVEL=debug\n", &e), 0);
    cfg_free(&c);
}

static void
test_group_readable_file_used(void **state)
{
    (void)state;
    clear_env();
    strcpy(path, "/tmp/sfbcfgXXXXXX");
    write_file("SFBRIDGE_SCHEMA = grp\n", 0640);
    cfg c;
    err_t e;
    assert_int_equal(cfg_load(&c, path, &e), 0);
    assert_string_equal(c.schema, "grp");
    cfg_free(&c);
    unlink(path);
    strcpy(path, "/tmp/sfbcfgXXXXXX");
    write_file("SFBRIDGE_SCHEMA = grp\n", 0660);
    assert_int_equal(cfg_load(&c, path, &e), -1);
    assert_non_null(strstr(e.msg, "changed by its group"));
    cfg_free(&c);
    unlink(path);
}

static void
check_import(const char *doc, int want, const char *needle)
{
    json_error_t je;
    json_t *j = json_loads(doc, 0, &je);
    assert_non_null(j);
    err_t e;
    err_clear(&e);
    assert_int_equal(map_import_check(j, &e), want);
    if (needle)
        assert_non_null(strstr(e.msg, needle));
    json_decref(j);
}

static void
test_import_shape(void **state)
{
    (void)state;
    check_import("{\"version\":1,\"mappings\":[{\"object_name\":\"Account\",\"config\":{\"access\":"
                 "\"read_only\","
                 "\"sf_polling_seconds\":600,\"fields\":{\"Id\":{},\"Name\":{}},\"indexes\":{}}}]}",
                 0, NULL);
    check_import("[]", -1, "not a JSON object");
    check_import("{\"version\":2,\"mappings\":[]}", -1, "version");
    check_import("{\"version\":1,\"mappings\":[{\"config\":{}}]}", -1, "object_name");
    check_import("{\"version\":1,\"mappings\":[{\"object_name\":\"A\",\"config\":{\"access\":"
                 "\"all\",\"fields\":{\"Id\":{}}}}]}",
                 -1, "access");
    check_import("{\"version\":1,\"mappings\":[{\"object_name\":\"A\",\"config\":{\"sf_polling_"
                 "seconds\":0,\"fields\":{\"Id\":{}}}}]}",
                 -1, "sf_polling_seconds");
    check_import("{\"version\":1,\"mappings\":[{\"object_name\":\"A\",\"config\":{\"fields\":[]}}]"
                 "}",
                 -1, "fields");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_and_env),
        cmocka_unit_test(test_readable_file_refused),
        cmocka_unit_test(test_bad_values_named),
        cmocka_unit_test(test_comments_quotes_and_export),
        cmocka_unit_test(test_group_readable_file_used),
        cmocka_unit_test(test_import_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
