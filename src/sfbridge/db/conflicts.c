/*
 * conflicts: the table of records changed on both sides (see conflicts.h).
 */
#include "conflicts.h"

#include "pg.h"

void
conflicts_sql_ddl(sb *out, const char *qschema)
{
    sb_printf(out,
              "CREATE TABLE IF NOT EXISTS %s._sfbridge_conflicts ("
              " id bigserial PRIMARY KEY, table_name varchar(128) NOT NULL,"
              " sfid varchar(18) NOT NULL,"
              " detected_at timestamptz NOT NULL DEFAULT now(), sf_systemmodstamp timestamp,"
              " pg_changed_at timestamptz, winner varchar(16) NOT NULL,"
              " policy varchar(32) NOT NULL,"
              " sf_values jsonb, pg_values jsonb, UNIQUE (table_name, sfid, sf_systemmodstamp))",
              qschema);
}

void
conflicts_sql_record(sb *out, const char *schema, const char *table_lit, const char *policy_lit)
{
    sb qc = SB_INIT;
    pg_qname(&qc, schema, "_sfbridge_conflicts");
    sb_printf(out,
              " rec AS (INSERT INTO %s (table_name, sfid, sf_systemmodstamp, pg_changed_at, winner,"
              " policy, sf_values, pg_values)"
              " SELECT %s, sfid, sfstamp, changed_at, winner, %s, sfv, pgv"
              " FROM conf ON CONFLICT DO NOTHING RETURNING 1),",
              sb_str(&qc), table_lit, policy_lit);
    sb_free(&qc);
}

json_t *
conflicts_counts(PGconn *c, const char *schema, err_t *e)
{
    sb s = SB_INIT;
    sb_puts(&s, "SELECT coalesce(json_object_agg(table_name, n), '{}'::json)::text FROM"
                " (SELECT table_name, count(*) AS n FROM ");
    pg_qname(&s, schema, "_sfbridge_conflicts");
    sb_puts(&s, " GROUP BY table_name) t");
    json_t *j = pg_query_json(c, e, sb_str(&s), 0, NULL, "the conflicts' counts");
    sb_free(&s);
    return j;
}
