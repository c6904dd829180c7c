/*
 * notices: the notifications table and the triggers that fill it (see
 * notices.h).
 */
#include "notices.h"

#include <stdio.h>
#include <stdlib.h>

#include "fsm.h"
#include "pg.h"

/* %1$s the quoted schema; %2$s..%7$s the state names the triggers compare;
 * %8$s and %9$s the two catalog tables' names as literals.
 * An error and its recovery are one event each however the state flickers
 * while retrying (RETRYING, POLLING, RETRYING...; OFFLINE, POLLING, OFFLINE):
 * an error is recorded when the last notice of its pair is not already that
 * error, a recovery when the state is settled again (DATA_SYNCED, IDLE) and
 * the last notice of the pair is the error. */
static const char notices_ddl[] =
    "CREATE TABLE IF NOT EXISTS %1$s._sfbridge_notifications ("
    " id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(),"
    " kind varchar(32) NOT NULL, level varchar(8) NOT NULL, object_name varchar(255),"
    " message text NOT NULL, acknowledged_at timestamptz, delivered_at timestamptz,"
    " attempts integer NOT NULL DEFAULT 0, next_attempt_at timestamptz, last_error text);\n"
    "CREATE INDEX IF NOT EXISTS _sfbridge_notifications_undelivered"
    " ON %1$s._sfbridge_notifications (id) WHERE delivered_at IS NULL;\n"
    "CREATE OR REPLACE FUNCTION %1$s.sfbridge_notice_connection() RETURNS trigger"
    " LANGUAGE plpgsql AS $n$\n"
    "DECLARE\n"
    "  down text[] := ARRAY[%2$s];\n"
    "  last text := (SELECT kind FROM %1$s._sfbridge_notifications WHERE object_name IS NULL\n"
    "    AND kind IN ('CONNECTION_LOST', 'CONNECTION_RECOVERED') ORDER BY id DESC LIMIT 1);\n"
    "BEGIN\n"
    "  IF NEW.state = ANY(down) AND last IS DISTINCT FROM 'CONNECTION_LOST' THEN\n"
    "    INSERT INTO %1$s._sfbridge_notifications (kind, level, message) VALUES\n"
    "      ('CONNECTION_LOST', 'error', format('connection %%s: %%s', NEW.state,\n"
    "       coalesce(NEW.last_error, 'no reason recorded')));\n"
    "  ELSIF NEW.state = %3$s AND last = 'CONNECTION_LOST' THEN\n"
    "    INSERT INTO %1$s._sfbridge_notifications (kind, level, message) VALUES\n"
    "      ('CONNECTION_RECOVERED', 'info', 'connection to Salesforce restored');\n"
    "  END IF;\n"
    "  RETURN NULL;\n"
    "END $n$;\n"
    /* A trigger is made once (CREATE TRIGGER locks the table against readers; the
     * functions above are replaced freely). */
    "DO $d$ BEGIN\n"
    "  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'sfbridge_notice'\n"
    "                 AND tgrelid = %8$s::regclass) THEN\n"
    "    CREATE TRIGGER sfbridge_notice AFTER UPDATE ON %1$s._sfbridge_connection FOR EACH ROW"
    " WHEN (OLD.state IS DISTINCT FROM NEW.state)"
    " EXECUTE FUNCTION %1$s.sfbridge_notice_connection();\n"
    "  END IF;\n"
    "END $d$;\n"
    "CREATE OR REPLACE FUNCTION %1$s.sfbridge_notice_mapping() RETURNS trigger"
    " LANGUAGE plpgsql AS $n$\n"
    "DECLARE\n"
    "  bad text[] := ARRAY[%4$s];\n"
    "  last text := (SELECT kind FROM %1$s._sfbridge_notifications\n"
    "    WHERE object_name = NEW.object_name AND kind IN ('MAPPING_ERROR', 'MAPPING_RECOVERED')\n"
    "    ORDER BY id DESC LIMIT 1);\n"
    "BEGIN\n"
    "  IF NEW.state = ANY(bad) AND last IS DISTINCT FROM 'MAPPING_ERROR' THEN\n"
    "    INSERT INTO %1$s._sfbridge_notifications (kind, level, object_name, message) VALUES\n"
    "      ('MAPPING_ERROR', CASE WHEN NEW.state = %5$s THEN 'warn' ELSE 'error' END,\n"
    "       NEW.object_name, format('%%s is %%s: %%s', NEW.object_name, NEW.state,\n"
    "       coalesce(NEW.last_error, 'no reason recorded')));\n"
    "  ELSIF NEW.state = %6$s AND last = 'MAPPING_ERROR' THEN\n"
    "    INSERT INTO %1$s._sfbridge_notifications (kind, level, object_name, message) VALUES\n"
    "      ('MAPPING_RECOVERED', 'info', NEW.object_name,\n"
    "       format('%%s is syncing again', NEW.object_name));\n"
    "  END IF;\n"
    "  IF NEW.stream_state = %7$s AND OLD.stream_state IS DISTINCT FROM NEW.stream_state THEN\n"
    "    INSERT INTO %1$s._sfbridge_notifications (kind, level, object_name, message) VALUES\n"
    "      ('STREAM_FALLBACK', 'warn', NEW.object_name, format('%%s: the stream fell back to"
    " polling%%s', NEW.object_name, coalesce(': ' || NEW.stream_error, '')));\n"
    "  END IF;\n"
    "  IF NEW.api_calls >= 0.9 * NEW.sf_max_daily_api_calls\n"
    "     AND (OLD.api_day IS DISTINCT FROM NEW.api_day\n"
    "          OR OLD.api_calls < 0.9 * OLD.sf_max_daily_api_calls) THEN\n"
    "    INSERT INTO %1$s._sfbridge_notifications (kind, level, object_name, message) VALUES\n"
    "      ('API_BUDGET_LOW', 'warn', NEW.object_name, format('%%s has used %%s of its %%s API"
    " calls today', NEW.object_name, NEW.api_calls, NEW.sf_max_daily_api_calls));\n"
    "  END IF;\n"
    "  RETURN NULL;\n"
    "END $n$;\n"
    "DO $d$ BEGIN\n"
    "  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'sfbridge_notice'\n"
    "                 AND tgrelid = %9$s::regclass) THEN\n"
    "    CREATE TRIGGER sfbridge_notice AFTER UPDATE ON %1$s._sfbridge_mapping FOR EACH ROW"
    " WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.stream_state IS DISTINCT FROM"
    " NEW.stream_state OR OLD.api_calls IS DISTINCT FROM NEW.api_calls"
    " OR OLD.sf_max_daily_api_calls IS DISTINCT FROM NEW.sf_max_daily_api_calls)"
    " EXECUTE FUNCTION %1$s.sfbridge_notice_mapping();\n"
    "  END IF;\n"
    "END $d$;\n";

void
notices_sql_ddl(sb *out, const char *qschema)
{
    sb down = SB_INIT, idle = SB_INIT, bad = SB_INIT, retry = SB_INIT, synced = SB_INIT,
       fallback = SB_INIT;
    sb_sql_literal(&down, fsm_conn_name(CS_OFFLINE));
    sb_puts(&down, ", ");
    sb_sql_literal(&down, fsm_conn_name(CS_NEED_AUTHENTICATION));
    sb_sql_literal(&idle, fsm_conn_name(CS_IDLE));
    const map_state states[] = {MS_BAD_CONFIG, MS_NEED_AUTHENTICATION, MS_RETRYING};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        if (i)
            sb_puts(&bad, ", ");
        sb_sql_literal(&bad, fsm_state_name(states[i]));
    }
    sb_sql_literal(&retry, fsm_state_name(MS_RETRYING));
    sb_sql_literal(&synced, fsm_state_name(MS_DATA_SYNCED));
    sb_sql_literal(&fallback, fsm_stream_name(SS_FALLBACK));
    /* The tables' names as literals (a quote in the schema's name stays inside them). */
    sb conn = SB_INIT, map = SB_INIT, name = SB_INIT;
    sb_printf(&name, "%s._sfbridge_connection", qschema);
    sb_sql_literal(&conn, sb_str(&name));
    sb_clear(&name);
    sb_printf(&name, "%s._sfbridge_mapping", qschema);
    sb_sql_literal(&map, sb_str(&name));
    sb_printf(out, notices_ddl, qschema, sb_str(&down), sb_str(&idle), sb_str(&bad), sb_str(&retry),
              sb_str(&synced), sb_str(&fallback), sb_str(&conn), sb_str(&map));
    sb *all[] = {&down, &idle, &bad, &retry, &synced, &fallback, &conn, &map, &name};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sb_free(all[i]);
}

static void
table(sb *s, const char *schema)
{
    pg_qname(s, schema, "_sfbridge_notifications");
}

int
notices_add(PGconn *c, const char *schema, const char *kind, const char *level, const char *object,
            const char *message, err_t *e)
{
    sb s = SB_INIT;
    sb_puts(&s, "INSERT INTO ");
    table(&s, schema);
    sb_puts(&s, " (kind, level, object_name, message) VALUES ($1, $2, $3, $4)");
    const char *p[] = {kind, level, object, message};
    int rc = pg_run(c, e, sb_str(&s), 4, p);
    sb_free(&s);
    return rc;
}

/* The JSON array a query's one text value holds. */
static json_t *
json_of(PGconn *c, const char *sql, int n, const char *const *p, err_t *e)
{
    PGresult *r = pg_query(c, e, sql, n, p);
    if (!r)
        return NULL;
    json_t *j = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    if (!j)
        err_set(e, 500, "BAD_CATALOG", "the notifications could not be read");
    return j;
}

#define NOTICE_JSON                                                                         \
    "coalesce(json_agg(json_build_object('id', id, 'created_at', created_at, 'kind', kind," \
    " 'level', level, 'object_name', object_name, 'message', message, 'acknowledged_at',"   \
    " acknowledged_at, 'delivered_at', delivered_at) ORDER BY id DESC), '[]'::json)::text"

json_t *
notices_list(PGconn *c, const char *schema, bool all, int hours, err_t *e)
{
    sb s = SB_INIT;
    char h[16];
    snprintf(h, sizeof h, "%d", hours);
    sb_puts(&s, "SELECT " NOTICE_JSON " FROM ");
    table(&s, schema);
    sb_puts(&s, " WHERE CASE WHEN $1::boolean THEN created_at > now() - make_interval(hours =>"
                " $2::int) ELSE acknowledged_at IS NULL END");
    const char *p[] = {all ? "true" : "false", h};
    json_t *j = json_of(c, sb_str(&s), 2, p, e);
    sb_free(&s);
    return j;
}

int
notices_ack(PGconn *c, const char *schema, int64_t id, int64_t *n, err_t *e)
{
    sb s = SB_INIT;
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    sb_puts(&s, "UPDATE ");
    table(&s, schema);
    sb_puts(&s, " SET acknowledged_at = now() WHERE acknowledged_at IS NULL"
                " AND ($1::bigint = 0 OR id = $1::bigint)");
    const char *p[] = {ids};
    PGresult *r = pg_query(c, e, sb_str(&s), 1, p);
    sb_free(&s);
    if (!r)
        return -1;
    *n = atoll(PQcmdTuples(r));
    PQclear(r);
    return 0;
}

json_t *
notices_due(PGconn *c, const char *schema, int limit, err_t *e)
{
    sb s = SB_INIT;
    char l[16];
    snprintf(l, sizeof l, "%d", limit);
    sb_puts(&s, "SELECT coalesce(json_agg(json_build_object('id', id, 'created_at', created_at,"
                " 'kind', kind, 'level', level, 'object_name', object_name, 'message', message,"
                " 'attempts', attempts) ORDER BY id), '[]'::json)::text FROM (SELECT * FROM ");
    table(&s, schema);
    sb_puts(&s, " WHERE delivered_at IS NULL AND created_at > now() - interval '1 day'"
                " AND (next_attempt_at IS NULL OR next_attempt_at <= now())"
                " ORDER BY id LIMIT $1::int) d");
    const char *p[] = {l};
    json_t *j = json_of(c, sb_str(&s), 1, p, e);
    sb_free(&s);
    return j;
}

int
notices_delivered(PGconn *c, const char *schema, int64_t id, err_t *e)
{
    sb s = SB_INIT;
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    sb_puts(&s, "UPDATE ");
    table(&s, schema);
    sb_puts(&s, " SET delivered_at = now(), attempts = attempts + 1, last_error = NULL"
                " WHERE id = $1::bigint");
    const char *p[] = {ids};
    int rc = pg_run(c, e, sb_str(&s), 1, p);
    sb_free(&s);
    return rc;
}

int
notices_failed(PGconn *c, const char *schema, int64_t id, const char *error, long delay_ms,
               err_t *e)
{
    sb s = SB_INIT;
    char ids[24], d[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    snprintf(d, sizeof d, "%ld", delay_ms);
    sb_puts(&s, "UPDATE ");
    table(&s, schema);
    sb_puts(&s, " SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() +"
                " make_interval(secs => $3::bigint / 1000.0) WHERE id = $1::bigint");
    const char *p[] = {ids, error, d};
    int rc = pg_run(c, e, sb_str(&s), 3, p);
    sb_free(&s);
    return rc;
}

int
notices_prune(PGconn *c, const char *schema, long days, err_t *e)
{
    sb s = SB_INIT;
    char d[24];
    snprintf(d, sizeof d, "%ld", days);
    sb_puts(&s, "DELETE FROM ");
    table(&s, schema);
    sb_puts(&s, " WHERE created_at < now() - make_interval(days => $1::int)");
    const char *p[] = {d};
    int rc = pg_run(c, e, sb_str(&s), 1, p);
    sb_free(&s);
    return rc;
}
