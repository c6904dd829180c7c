/*
 * metrics: Prometheus text from a status document (see metrics.h).
 */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb.h"
#include "util.h"
#include "version.h"

/* Where a per-mapping metric comes from in a mapping's status entry. */
typedef enum {
    SRC_NUM,        /* a number of the entry (0 when absent) */
    SRC_OPT,        /* a number of the entry, left out when absent */
    SRC_AGE,        /* seconds since a timestamp of the entry */
    SRC_STREAM_NUM, /* a number of its "stream" */
    SRC_STREAM_MS,  /* milliseconds of its "stream", in seconds */
    SRC_STREAM_UP,  /* whether its stream is connected */
} metric_src;

typedef struct metric {
    const char *name;
    const char *type; /* "gauge" or "counter" */
    const char *help;
    metric_src src;
    const char *key; /* in the mapping entry (or its "stream") */
} metric;

static const metric per_mapping[] = {
    {"sfbridge_mapping_rows", "gauge", "Rows in the mapping's table (estimated above 100,000).",
     SRC_NUM, "rows"},
    {"sfbridge_mapping_salesforce_rows", "gauge",
     "Salesforce's count of the object's records, at the last load, reload or drift check.",
     SRC_OPT, "sf_rows"},
    {"sfbridge_mapping_rows_synced_total", "counter", "Rows sfbridge applied from Salesforce.",
     SRC_NUM, "rows_synced"},
    {"sfbridge_mapping_polls_total", "counter", "Polls (and loads) the mapping finished.", SRC_NUM,
     "polls"},
    {"sfbridge_mapping_repairs_total", "counter", "Rows the drift checks repaired.", SRC_NUM,
     "repairs"},
    {"sfbridge_mapping_errors_total", "counter", "Failures of the mapping's sync.", SRC_NUM,
     "errors"},
    {"sfbridge_mapping_api_calls_today", "gauge", "API calls the mapping made today (UTC).",
     SRC_NUM, "api_calls_today"},
    {"sfbridge_mapping_api_budget", "gauge", "The mapping's daily API budget.", SRC_NUM,
     "sf_max_daily_api_calls"},
    {"sfbridge_mapping_poll_interval_seconds", "gauge", "The mapping's polling interval.", SRC_NUM,
     "sf_polling_seconds"},
    {"sfbridge_mapping_last_poll_age_seconds", "gauge",
     "Seconds since the mapping's last poll (its lag when it does not stream).", SRC_AGE,
     "last_poll_at"},
    {"sfbridge_stream_connected", "gauge", "1 when the mapping's stream is connected.",
     SRC_STREAM_UP, "state"},
    {"sfbridge_stream_events_total", "counter", "Change events the stream applied.", SRC_STREAM_NUM,
     "events"},
    {"sfbridge_stream_fallbacks_total", "counter", "Windowed polls the stream fell back to.",
     SRC_STREAM_NUM, "fallbacks"},
    {"sfbridge_stream_lag_seconds", "gauge",
     "Commit in Salesforce to commit in Postgres, last batch of events.", SRC_STREAM_MS, "lag_ms"},
};

static void
header(sb *out, const char *name, const char *type, const char *help)
{
    sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the text format wants (\\, \", \n). */
static void
label(sb *out, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            sb_putc(out, '\\');
        if (*p == '\n')
            sb_puts(out, "\\n");
        else
            sb_putc(out, *p);
    }
}

static double
num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* Seconds between an ISO timestamp (Postgres's, any fraction) and now; -1 without one. */
static double
age_seconds(json_t *o, const char *key, int64_t now_ms)
{
    const char *s = json_string_value(json_object_get(o, key));
    char buf[32];
    int64_t ms;
    if (!s || strlen(s) < 19)
        return -1;
    snprintf(buf, sizeof buf, "%.19sZ", s);
    if (util_parse_datetime(buf, &ms) != 0)
        return -1;
    return (double)(now_ms - ms) / 1000.0;
}

static void
mapping_metric(sb *out, const metric *mt, json_t *m, int64_t now_ms)
{
    json_t *st = json_object_get(m, "stream");
    double v = 0;
    switch (mt->src) {
    case SRC_NUM: v = num(m, mt->key); break;
    case SRC_OPT:
        if (!json_is_number(json_object_get(m, mt->key)))
            return;
        v = num(m, mt->key);
        break;
    case SRC_AGE:
        if ((v = age_seconds(m, mt->key, now_ms)) < 0)
            return;
        break;
    case SRC_STREAM_NUM:
        if (!json_is_object(st))
            return;
        v = num(st, mt->key);
        break;
    case SRC_STREAM_MS:
        if (!json_is_number(json_object_get(st, mt->key)))
            return;
        v = num(st, mt->key) / 1000.0;
        break;
    case SRC_STREAM_UP: {
        if (!json_is_object(st))
            return;
        const char *state = json_string_value(json_object_get(st, "state"));
        v = state && strcmp(state, "CONNECTED") == 0;
        break;
    }
    }
    sb_printf(out, "%s{object=\"", mt->name);
    label(out, json_string_value(json_object_get(m, "object_name")));
    sb_printf(out, "\"} %.17g\n", v);
}

static void
one(sb *out, const char *name, const char *type, const char *help, double v)
{
    header(out, name, type, help);
    sb_printf(out, "%s %.17g\n", name, v);
}

static void
process_metrics(sb *out, json_t *status, int64_t now_ms, int64_t started_ms)
{
    header(out, "sfbridge_build_info", "gauge", "sfbridge's version.");
    sb_puts(out, "sfbridge_build_info{version=\"" SFBRIDGE_VERSION "\"} 1\n");
    one(out, "sfbridge_uptime_seconds", "gauge", "Seconds since this process started.",
        (double)(now_ms - started_ms) / 1000.0);
    json_t *h = json_object_get(status, "health");
    const char *hs = json_string_value(json_object_get(h, "status"));
    one(out, "sfbridge_health", "gauge", "0 healthy, 1 degraded, 2 down (as sfbridge status).",
        hs && strcmp(hs, "healthy") == 0    ? 0
        : hs && strcmp(hs, "degraded") == 0 ? 1
                                            : 2);
    json_t *c = json_object_get(status, "connection");
    header(out, "sfbridge_connection_state", "gauge",
           "The connection's state (1 for the current).");
    sb_puts(out, "sfbridge_connection_state{state=\"");
    label(out, json_string_value(json_object_get(c, "state")));
    sb_puts(out, "\"} 1\n");
    json_t *w = json_object_get(status, "writer");
    one(out, "sfbridge_writes_pending", "gauge", "Changes waiting to be written to Salesforce.",
        num(w, "pending"));
    one(out, "sfbridge_writes_retrying", "gauge", "Writes waiting out a retry delay.",
        num(w, "retrying"));
    one(out, "sfbridge_writes_failed", "gauge", "Writes Salesforce refused (kept a day).",
        num(w, "failed"));
    double left = 0;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(status, "mappings"), i, m) {
        double l = num(m, "sf_max_daily_api_calls") - num(m, "api_calls_today");
        left += l > 0 ? l : 0;
    }
    one(out, "sfbridge_api_budget_left", "gauge",
        "API calls the mappings may still make today (sum of their budgets left).", left);
}

char *
metrics_text(json_t *status, json_t *conflicts, int64_t now_ms, int64_t started_ms)
{
    sb out = SB_INIT;
    process_metrics(&out, status, now_ms, started_ms);
    json_t *maps = json_object_get(status, "mappings");
    size_t i;
    json_t *m;
    header(&out, "sfbridge_mapping_state", "gauge", "The mapping's state (1 for the current).");
    json_array_foreach(maps, i, m) {
        sb_puts(&out, "sfbridge_mapping_state{object=\"");
        label(&out, json_string_value(json_object_get(m, "object_name")));
        sb_puts(&out, "\",state=\"");
        label(&out, json_string_value(json_object_get(m, "state")));
        sb_puts(&out, "\"} 1\n");
    }
    for (size_t k = 0; k < sizeof per_mapping / sizeof per_mapping[0]; k++) {
        header(&out, per_mapping[k].name, per_mapping[k].type, per_mapping[k].help);
        json_array_foreach(maps, i, m)
            mapping_metric(&out, &per_mapping[k], m, now_ms);
    }
    header(&out, "sfbridge_mapping_conflicts_total", "counter",
           "Records changed on both sides, recorded in _sfbridge_conflicts.");
    json_array_foreach(maps, i, m) {
        const char *table = json_string_value(json_object_get(m, "table_name"));
        sb_puts(&out, "sfbridge_mapping_conflicts_total{object=\"");
        label(&out, json_string_value(json_object_get(m, "object_name")));
        sb_printf(&out, "\"} %lld\n",
                  (long long)json_integer_value(json_object_get(conflicts, table ? table : "")));
    }
    return sb_steal(&out);
}
