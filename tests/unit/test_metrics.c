/*
 * Unit tests for metrics (the Prometheus text of /metrics) and the API's
 * loopback test: every family has HELP and TYPE, labels are escaped, values
 * come from the status document, and what a mapping lacks is left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "metrics.h"

static const char doc[] =
    "{\"connection\": {\"state\": \"IDLE\"},"
    " \"writer\": {\"pending\": 2, \"retrying\": 1, \"failed\": 3},"
    " \"health\": {\"status\": \"degraded\", \"reasons\": [\"x\"]},"
    " \"mappings\": [{\"object_name\": \"Teacher__c\", \"table_name\": \"teacher__c\","
    "   \"state\": \"DATA_SYNCED\", \"rows\": 42, \"rows_synced\": 40, \"repairs\": 1, \"errors\": "
    "0,"
    "   \"api_calls_today\": 100, \"sf_max_daily_api_calls\": 1000, \"sf_polling_seconds\": 60,"
    "   \"last_poll_at\": \"2026-01-01T00:00:00.123456+00:00\","
    "   \"stream\": {\"state\": \"CONNECTED\", \"events\": 7, \"fallbacks\": 0, \"lag_ms\": 250}},"
    "  {\"object_name\": \"We\\\"ird\\\\\", \"table_name\": \"weird\", \"state\": \"PAUSED\","
    "   \"rows\": 0, \"api_calls_today\": 2000, \"sf_max_daily_api_calls\": 1000, \"stream\": "
    "null}]}";

static char *
render(void)
{
    json_t *st = json_loads(doc, 0, NULL);
    json_t *conf = json_pack("{s:i}", "teacher__c", 5);
    assert_non_null(st);
    /* 10 s after the poll; started 60 s before. */
    int64_t now = 1767225610123LL;
    char *text = metrics_text(st, conf, now, now - 60000);
    json_decref(st);
    json_decref(conf);
    return text;
}

static void
expect_line(const char *text, const char *line)
{
    char *want = malloc(strlen(line) + 3);
    sprintf(want, "\n%s\n", line);
    if (!strstr(text, want))
        fail_msg("missing line: %s\nin:\n%s", line, text);
    free(want);
}

static void
test_values_and_labels(void **state)
{
    (void)state;
    char *t = render();
    expect_line(t, "sfbridge_health 1");
    expect_line(t, "sfbridge_uptime_seconds 60");
    expect_line(t, "sfbridge_writes_failed 3");
    expect_line(t, "sfbridge_api_budget_left 900");
    expect_line(t, "sfbridge_connection_state{state=\"IDLE\"} 1");
    expect_line(t, "sfbridge_mapping_rows{object=\"Teacher__c\"} 42");
    expect_line(t, "sfbridge_mapping_state{object=\"We\\\"ird\\\\\",state=\"PAUSED\"} 1");
    expect_line(t,
                "sfbridge_mapping_last_poll_age_seconds{object=\"Teacher__c\"} 10.122999999999999");
    expect_line(t, "sfbridge_stream_connected{object=\"Teacher__c\"} 1");
    expect_line(t, "sfbridge_stream_lag_seconds{object=\"Teacher__c\"} 0.25");
    expect_line(t, "sfbridge_mapping_conflicts_total{object=\"Teacher__c\"} 5");
    expect_line(t, "sfbridge_mapping_conflicts_total{object=\"We\\\"ird\\\\\"} 0");
    /* no stream, no poll yet: those series are left out for that mapping */
    assert_null(strstr(t, "sfbridge_stream_connected{object=\"We"));
    assert_null(strstr(t, "sfbridge_mapping_last_poll_age_seconds{object=\"We"));
    free(t);
}

static void
test_every_family_has_help_and_type(void **state)
{
    (void)state;
    char *t = render();
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char name[128];
        size_t n = strcspn(line, "{ ");
        assert_true(n < sizeof name);
        memcpy(name, line, n);
        name[n] = '\0';
        /* strtok has cut the text: look in a fresh copy */
        char *again = render();
        char help[160], type[160];
        snprintf(help, sizeof help, "# HELP %s ", name);
        snprintf(type, sizeof type, "# TYPE %s ", name);
        assert_non_null(strstr(again, help));
        assert_non_null(strstr(again, type));
        free(again);
    }
    free(t);
}

static void
test_loopback(void **state)
{
    (void)state;
    assert_true(api_is_loopback("127.0.0.1"));
    assert_true(api_is_loopback("127.9.9.9"));
    assert_true(api_is_loopback("::1"));
    assert_true(api_is_loopback("localhost"));
    assert_false(api_is_loopback("0.0.0.0"));
    assert_false(api_is_loopback("::"));
    assert_false(api_is_loopback("10.0.0.1"));
    assert_false(api_is_loopback("example.org"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_labels),
        cmocka_unit_test(test_every_family_has_help_and_type),
        cmocka_unit_test(test_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
