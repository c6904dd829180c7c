/*
 * activity: the activity table (see activity.h).
 */
#include "activity.h"

#include <stdio.h>

#include "pg.h"

#define KEEP_HOURS 48

static void
table(sb *out, const char *schema)
{
    pg_qname(out, schema, "_sfbridge_activity");
}

void
act_sql_ddl(sb *out, const char *qschema)
{
    sb_printf(out,
              "CREATE TABLE IF NOT EXISTS %s._sfbridge_activity ("
              " minute timestamptz NOT NULL, table_name varchar(63) NOT NULL,"
              " rows_in bigint NOT NULL DEFAULT 0, rows_out bigint NOT NULL DEFAULT 0,"
              " errors bigint NOT NULL DEFAULT 0, lag_ms bigint,"
              " PRIMARY KEY (minute, table_name));\n",
              qschema);
}

int
act_record(PGconn *c, const char *schema, const char *table_name, int64_t rows_in, int64_t rows_out,
           int64_t errors, int64_t lag_ms, err_t *e)
{
    if (rows_in == 0 && rows_out == 0 && errors == 0 && lag_ms < 0)
        return 0;
    sb s = SB_INIT;
    char in[24], out[24], er[24], lag[24];
    snprintf(in, sizeof in, "%lld", (long long)rows_in);
    snprintf(out, sizeof out, "%lld", (long long)rows_out);
    snprintf(er, sizeof er, "%lld", (long long)errors);
    snprintf(lag, sizeof lag, "%lld", (long long)lag_ms);
    sb_puts(&s, "INSERT INTO ");
    table(&s, schema);
    sb_puts(&s,
            " AS a (minute, table_name, rows_in, rows_out, errors, lag_ms)"
            " VALUES (date_trunc('minute', now()), $1, $2::bigint, $3::bigint, $4::bigint,"
            " nullif($5::bigint, -1))"
            " ON CONFLICT (minute, table_name) DO UPDATE SET"
            " rows_in = a.rows_in + EXCLUDED.rows_in, rows_out = a.rows_out + EXCLUDED.rows_out,"
            " errors = a.errors + EXCLUDED.errors,"
            " lag_ms = greatest(a.lag_ms, EXCLUDED.lag_ms)");
    const char *p[] = {table_name, in, out, er, lag_ms < 0 ? "-1" : lag};
    int rc = pg_run(c, e, sb_str(&s), 5, p);
    sb_free(&s);
    return rc;
}

int
act_prune(PGconn *c, const char *schema, err_t *e)
{
    sb s = SB_INIT;
    sb_puts(&s, "DELETE FROM ");
    table(&s, schema);
    sb_printf(&s, " WHERE minute < now() - interval '%d hours'", KEEP_HOURS);
    int rc = pg_run(c, e, sb_str(&s), 0, NULL);
    sb_free(&s);
    return rc;
}

json_t *
act_series_json(PGconn *c, const char *schema, const char *table_name, int hours, err_t *e)
{
    int step = hours <= 1 ? 60 : 900, n = hours * 3600 / step;
    char st[16], nb[16];
    snprintf(st, sizeof st, "%d", step);
    snprintf(nb, sizeof nb, "%d", n);
    sb s = SB_INIT;
    sb_puts(&s, "WITH b AS (SELECT to_timestamp((floor(extract(epoch FROM now()) / $1::int) - g)"
                " * $1::int) AS at FROM generate_series($2::int - 1, 0, -1) g),"
                " a AS (SELECT to_timestamp(floor(extract(epoch FROM minute) / $1::int) * $1::int)"
                " AS at, sum(rows_in) AS rows_in, sum(rows_out) AS rows_out, sum(errors) AS errors,"
                " max(lag_ms) AS lag_ms FROM ");
    table(&s, schema);
    sb_puts(&s, " WHERE minute >= (SELECT min(at) FROM b) AND ($3::text IS NULL OR table_name = $3)"
                " GROUP BY 1)"
                " SELECT json_build_object('bucket_seconds', $1::int, 'buckets',"
                " json_agg(json_build_object('at', to_char(b.at AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'rows_in', coalesce(a.rows_in, 0),"
                " 'rows_out', coalesce(a.rows_out, 0), 'errors', coalesce(a.errors, 0),"
                " 'lag_seconds', round(a.lag_ms / 1000.0, 3)) ORDER BY b.at))::text"
                " FROM b LEFT JOIN a USING (at)");
    const char *p[] = {st, nb, table_name};
    json_t *j = pg_query_json(c, e, sb_str(&s), 3, p, "the activity");
    sb_free(&s);
    return j;
}
