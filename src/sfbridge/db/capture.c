/*
 * capture: the trigger log and the capture triggers (see capture.h).
 */
#include "capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conflicts.h"
#include "ddl.h"
#include "locks.h"
#include "log.h"
#include "pg.h"
#include "tlog.h"
#include "util.h"

/* The schema's shared capture objects; every statement is idempotent. The
 * trigger log's own tables, indexes and NOTIFY are tlog's (tlog_ensure), the
 * conflicts table is conflicts.c's. */
static void
shared_ddl(sb *out, const char *qschema)
{
    sb_printf(out,
              "CREATE EXTENSION IF NOT EXISTS hstore;\n"
              "CREATE OR REPLACE FUNCTION %1$s.get_xmlbinary() RETURNS varchar LANGUAGE sql STABLE "
              "AS"
              " $f$ SELECT current_setting('xmlbinary')::varchar $f$;\n"
              "CREATE OR REPLACE FUNCTION %1$s.hc_truncate_refused() RETURNS trigger LANGUAGE "
              "plpgsql"
              " AS $f$\n"
              "BEGIN\n"
              "  RAISE EXCEPTION 'TRUNCATE of %% is not sent to Salesforce', TG_TABLE_NAME\n"
              "    USING HINT = 'delete the rows instead (each delete reaches Salesforce), or SET"
              " xmlbinary = ''hex'' to empty only Postgres';\n"
              "END $f$;\n",
              qschema);
    conflicts_sql_ddl(out, qschema);
}

void
cap_channel(sb *out, const char *schema)
{
    sb_printf(out, "%s.hc_trigger_log", schema);
}

int
cap_ensure(PGconn *c, const char *schema, err_t *e)
{
    sb q = SB_INIT, chan = SB_INIT, lit = SB_INIT, sql = SB_INIT;
    sb_sql_ident(&q, schema);
    cap_channel(&chan, schema);
    sb_sql_literal(&lit, sb_str(&chan));
    int rc = pg_exec(c, e, "BEGIN");
    if (rc == 0)
        rc = pg_exec(c, e, "SELECT pg_advisory_xact_lock(" LOCK_DDL ")");
    if (rc == 0) {
        shared_ddl(&sql, sb_str(&q));
        rc = pg_exec(c, e, sb_str(&sql));
    }
    if (rc == 0)
        rc = tlog_ensure(c, schema, sb_str(&lit), e);
    rc = rc == 0 ? pg_exec(c, e, "COMMIT") : (pg_rollback_quietly(c), -1);
    sb_free(&q);
    sb_free(&chan);
    sb_free(&lit);
    sb_free(&sql);
    return rc;
}

void
cap_install_sql(sb *out, const char *schema, const mapping *m)
{
    sb qs = SB_INIT, qt = SB_INIT, fn = SB_INIT;
    sb_sql_ident(&qs, schema);
    pg_qname(&qt, schema, m->table);
    char name[64];
    DDL_LOGGER_FN(name, m->table);
    pg_qname(&fn, schema, name);
    const char *state = tlog_state_name(m->read_write ? TLOG_NEW : TLOG_READONLY);
    const char *pending = tlog_state_name(TLOG_PENDING), *ignore = tlog_state_name(TLOG_IGNORE);
    ddl_status_trigger(out, schema, m);
    /* Heroku Connect's logger ("VERSION 4"): the whole row for INSERT, the
     * changed columns for UPDATE, the old row for UPDATE and DELETE. Values
     * are printed with DateStyle ISO and exact floats whatever the app's
     * session settings, so the writer reads them back unambiguously.
     * SECURITY DEFINER with a pinned search_path: it runs with sfbridge's
     * rights, so an app role needs no rights on the trigger log (and cannot
     * write it), and it works whatever the app session's search_path is. */
    /* the sequence's name as a literal: a schema may hold a quote (issue 12 #6) */
    sb seqname = SB_INIT, seq = SB_INIT;
    sb_printf(&seqname, "%s._trigger_log_id_seq", sb_str(&qs));
    sb_sql_literal(&seq, sb_str(&seqname));
    sb_free(&seqname);
    ddl_pin_path_begin(out);
    sb_printf(out,
              "CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER\n"
              "  SET search_path FROM CURRENT SET datestyle = 'ISO, YMD' SET extra_float_digits = "
              "1 AS $hc$\n"
              "DECLARE\n"
              "  trigger_row %s._trigger_log;\n"
              "  excluded_cols text[] = ARRAY['_hc_lastop', '_hc_err'];\n"
              "BEGIN\n"
              "  trigger_row = ROW();\n"
              "  trigger_row.id = nextval(%s);\n"
              "  trigger_row.action = TG_OP::text;\n"
              "  trigger_row.table_name = TG_TABLE_NAME::text;\n"
              "  trigger_row.txid = txid_current();\n"
              "  trigger_row.created_at = clock_timestamp();\n"
              "  trigger_row.updated_at = trigger_row.created_at;\n"
              "  trigger_row.state = '%s';\n"
              "  trigger_row.sfb_attempts = 0;\n"
              "  trigger_row.sfb_unknown = false;\n"
              "  IF (TG_OP = 'DELETE') THEN\n"
              "    trigger_row.record_id = OLD.id;\n"
              "    trigger_row.old = hstore(OLD.*) - excluded_cols;\n"
              "    IF (OLD.sfid IS NOT NULL) THEN\n"
              "      trigger_row.sfid = OLD.sfid;\n"
              "    ELSIF NOT EXISTS (SELECT 1 FROM %s._trigger_log l WHERE l.table_name = "
              "TG_TABLE_NAME::text\n"
              "                      AND l.record_id = OLD.id AND l.state IN ('%s', '%s')) THEN\n"
              "      trigger_row.state = '%s';\n"
              "    END IF;\n"
              "  ELSIF (TG_OP = 'INSERT') THEN\n"
              "    trigger_row.record_id = NEW.id;\n"
              "    trigger_row.values = hstore(NEW.*) - excluded_cols;\n"
              "  ELSE\n"
              "    trigger_row.record_id = NEW.id;\n"
              "    trigger_row.old = hstore(OLD.*) - excluded_cols;\n"
              "    trigger_row.values = (hstore(NEW.*) - hstore(trigger_row.old)) - "
              "excluded_cols;\n"
              "    trigger_row.sfid = OLD.sfid;\n"
              "    IF (trigger_row.values = '') THEN\n"
              "      trigger_row.state = '%s';\n"
              "    END IF;\n"
              "  END IF;\n"
              "  INSERT INTO %s._trigger_log VALUES (trigger_row.*);\n"
              "  RETURN NULL;\n"
              "END $hc$;\n",
              sb_str(&fn), sb_str(&qs), sb_str(&seq), state, sb_str(&qs), tlog_state_name(TLOG_NEW),
              pending, ignore, ignore, sb_str(&qs));
    sb_free(&seq);
    ddl_pin_path_end(out);
    sb_printf(out, "REVOKE ALL ON FUNCTION %s() FROM PUBLIC;\n", sb_str(&fn));
    char trig[64];
    DDL_LOG_TRIGGER(trig, m->table);
    sb_puts(out, "DROP TRIGGER IF EXISTS ");
    sb_sql_ident(out, trig);
    sb_printf(out, " ON %s;\nCREATE TRIGGER ", sb_str(&qt));
    sb_sql_ident(out, trig);
    sb_printf(out,
              " AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW WHEN (%s.get_xmlbinary() = "
              "'base64')"
              " EXECUTE FUNCTION %s();\n",
              sb_str(&qt), sb_str(&qs), sb_str(&fn));
    DDL_TRUNCATE_TRIGGER(trig, m->table);
    sb_puts(out, "DROP TRIGGER IF EXISTS ");
    sb_sql_ident(out, trig);
    sb_printf(out, " ON %s;\n", sb_str(&qt));
    if (m->read_write) {
        sb_puts(out, "CREATE TRIGGER ");
        sb_sql_ident(out, trig);
        sb_printf(out,
                  " BEFORE TRUNCATE ON %s FOR EACH STATEMENT WHEN (%s.get_xmlbinary() = 'base64')"
                  " EXECUTE FUNCTION %s.hc_truncate_refused();\n",
                  sb_str(&qt), sb_str(&qs), sb_str(&qs));
    }
    sb_free(&qs);
    sb_free(&qt);
    sb_free(&fn);
}

/* One mapping's capture, in a transaction of its own that gives up quickly
 * on an app's lock: the triggers' DDL locks the table exclusively, and one
 * transaction over several tables could deadlock with an app's multi-table
 * transaction (Postgres would then fail the app's). 1 when it gave up. */
static int
install_one(PGconn *c, const char *schema, const mapping *m, err_t *e)
{
    sb s = SB_INIT;
    cap_install_sql(&s, schema, m);
    int rc = pg_exec(c, e, "BEGIN");
    if (rc == 0)
        rc = pg_exec(c, e, "SET LOCAL lock_timeout = '500ms'");
    if (rc == 0)
        rc = pg_exec(c, e, sb_str(&s));
    rc = rc == 0 ? pg_exec(c, e, "COMMIT") : (pg_rollback_quietly(c), -1);
    sb_free(&s);
    if (rc != 0 && e && strcmp(e->code, "55P03") == 0) /* lock_not_available */
        return 1;
    return rc;
}

int
cap_install_all(PGconn *c, const char *schema, err_t *e)
{
    mapping *ms = NULL;
    size_t n = 0;
    if (cat_load(c, schema, NULL, &ms, &n, e) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int r = 1;
        for (int attempt = 0; attempt < 5 && r == 1; attempt++)
            r = install_one(c, schema, &ms[i], e);
        if (r == 1) /* apps keep the table busy: its current triggers stay until next time */
            log_warn("%s: capture triggers not refreshed (the table stayed locked by apps): %s",
                     ms[i].table, e->msg);
        else
            rc = r;
    }
    mapping_free_all(ms, n);
    return rc;
}
