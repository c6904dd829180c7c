/*
 * shadow: the table an initial Bulk load fills before apps see any of it
 * (see shadow.h).
 */
#include "shadow.h"

#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "ddl.h"
#include "pg.h"
#include "util.h"

void
shadow_qname(sb *out, const char *schema, const mapping *m)
{
    char name[64];
    DDL_SHADOW(name, m->table);
    pg_qname(out, schema, name);
}

int
shadow_create(PGconn *c, const char *schema, const mapping *m, err_t *e)
{
    char name[64];
    DDL_SHADOW(name, m->table);
    sb q = SB_INIT, s = SB_INIT;
    pg_qname(&q, schema, name);
    sb_printf(&s, "DROP TABLE IF EXISTS %s;\n", sb_str(&q));
    ddl_create_heap(&s, schema, name, m);
    /* what the status trigger would make of a pulled row */
    sb_printf(&s, "ALTER TABLE %s ALTER COLUMN \"_hc_lastop\" SET DEFAULT '" HC_SYNCED "';\n",
              sb_str(&q));
    int rc = pg_exec(c, e, sb_str(&s));
    sb_free(&s);
    sb_free(&q);
    return rc;
}

/* The shadow's column names (NULL when it is missing) against the names a
 * shadow made now would have: "id", the fields' columns, the status columns. */
#define SHADOW_CHECK_SQL                                                                     \
    "SELECT (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a" \
    "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)"                    \
    " = (SELECT array_agg(x ORDER BY x) FROM unnest($3::text[]) x)"                          \
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"                         \
    " WHERE n.nspname = $1 AND c.relname = $2"

int
shadow_check(PGconn *c, const char *schema, const mapping *m, shadow_fit *fit, err_t *e)
{
    char name[64];
    DDL_SHADOW(name, m->table);
    sb arr = SB_INIT;
    ddl_heap_columns(&arr, m);
    const char *p[] = {schema, name, sb_str(&arr)};
    PGresult *r = pg_query(c, e, SHADOW_CHECK_SQL, 3, p);
    sb_free(&arr);
    if (!r)
        return -1;
    *fit = PQntuples(r) == 0                       ? SHADOW_MISSING
           : strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? SHADOW_FITS
                                                   : SHADOW_STALE;
    PQclear(r);
    return 0;
}

int
shadow_index(PGconn *c, const char *schema, const mapping *m, err_t *e)
{
    char name[64];
    DDL_SHADOW(name, m->table);
    sb s = SB_INIT;
    sb_puts(&s, "BEGIN;\n");
    ddl_create_own_indexes(&s, schema, name, m);
    sb_puts(&s, "COMMIT;");
    int rc = pg_exec(c, e, sb_str(&s));
    sb_free(&s);
    if (rc != 0)
        pg_rollback_quietly(c);
    return rc;
}

int
shadow_drop(PGconn *c, const char *schema, const mapping *m, err_t *e)
{
    sb s = SB_INIT;
    sb_puts(&s, "DROP TABLE IF EXISTS ");
    shadow_qname(&s, schema, m);
    int rc = pg_exec(c, e, sb_str(&s));
    sb_free(&s);
    return rc;
}

/* What may hang on a table the swap replaces: its row type, column defaults,
 * TOAST table and serial sequence, its primary key, and the indexes ($3) and
 * triggers ($4) sfbridge makes. Anything else (a view's rule, a foreign key,
 * a policy, a publication, an app's index or trigger, extended statistics)
 * is the app's, and the rows are moved in instead. */
#define SWAP_CHECK_SQL                                                                           \
    "WITH t AS (SELECT $1::regclass AS oid), s AS (SELECT $2::regclass AS oid),"                 \
    " cols AS (SELECT a.attrelid, array_agg(a.attname::text || ' ' ||"                           \
    "   format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) AS l,"                           \
    "   bool_or(a.attacl IS NOT NULL) AS acl FROM pg_attribute a"                                \
    "   WHERE a.attrelid IN ((SELECT oid FROM t), (SELECT oid FROM s)) AND a.attnum > 0"         \
    "   AND NOT a.attisdropped GROUP BY a.attrelid)"                                             \
    " SELECT c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"               \
    "  AND c.relkind = 'r' AND NOT c.relrowsecurity AND c.relreplident = 'd'"                    \
    "  AND c.reloptions IS NULL"                                                                 \
    "  AND NOT EXISTS (SELECT 1 FROM pg_description d WHERE d.objoid = c.oid"                    \
    "    AND d.classoid = 'pg_class'::regclass)"                                                 \
    "  AND (SELECT l FROM cols WHERE attrelid = c.oid)"                                          \
    "    = (SELECT l FROM cols WHERE attrelid = (SELECT oid FROM s))"                            \
    "  AND NOT (SELECT acl FROM cols WHERE attrelid = c.oid)"                                    \
    "  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass"      \
    "    AND d.refobjid = c.oid AND NOT ("                                                       \
    "      d.classid IN ('pg_type'::regclass, 'pg_attrdef'::regclass)"                           \
    "      OR (d.classid = 'pg_class'::regclass AND EXISTS (SELECT 1 FROM pg_class k"            \
    "        WHERE k.oid = d.objid AND (k.relkind IN ('S', 't')"                                 \
    "        OR (k.relkind = 'i' AND k.relname = ANY($3::text[])))))"                            \
    "      OR (d.classid = 'pg_constraint'::regclass AND EXISTS (SELECT 1 FROM pg_constraint k"  \
    "        WHERE k.oid = d.objid AND k.contype = 'p' AND k.conrelid = c.oid))"                 \
    "      OR (d.classid = 'pg_trigger'::regclass AND EXISTS (SELECT 1 FROM pg_trigger k"        \
    "        WHERE k.oid = d.objid AND k.tgname = ANY($4::text[])))))"                           \
    "  AS plain,"                                                                                \
    " (SELECT k.relname FROM pg_depend d JOIN pg_class k ON k.oid = d.objid"                     \
    "   WHERE d.refobjid = c.oid AND d.classid = 'pg_class'::regclass AND k.relkind = 'S'"       \
    "   LIMIT 1),"                                                                               \
    " (SELECT conname FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p'),"             \
    " (SELECT k.relname FROM pg_depend d JOIN pg_class k ON k.oid = d.objid"                     \
    "   WHERE d.refobjid = (SELECT oid FROM s) AND d.classid = 'pg_class'::regclass"             \
    "   AND k.relkind = 'S' LIMIT 1),"                                                           \
    " (SELECT conname FROM pg_constraint WHERE conrelid = (SELECT oid FROM s)"                   \
    "   AND contype = 'p'),"                                                                     \
    " (SELECT string_agg(format('REVOKE ALL ON %s FROM %s;', $1, CASE WHEN a.grantee = 0"        \
    "   THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END), ' ')"                   \
    "   FROM (SELECT DISTINCT x.grantee FROM pg_class k, aclexplode(k.relacl) x"                 \
    "   WHERE k.oid = (SELECT oid FROM s) AND x.grantee <> k.relowner) a),"                      \
    " (SELECT string_agg(format('GRANT %s ON %s TO %s%s;', a.privilege_type, $1,"                \
    "   CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END," \
    "   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), ' ')"                   \
    "   FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner)"                              \
    " FROM pg_class c WHERE c.oid = (SELECT oid FROM t)"

/* The names sfbridge gives the table's indexes (ix[] from ddl_own_indexes)
 * and triggers, as text[] literals for SWAP_CHECK_SQL. */
static void
own_names(const mapping *m, const ddl_index *ix, size_t n, sb *indexes, sb *triggers)
{
    char(*names)[64] = xcalloc(n, sizeof *names);
    const char **v = xcalloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        ddl_index_name(names[i], m->table, ix[i].column, ix[i].unique);
        v[i] = names[i];
    }
    pg_text_array(indexes, v, n);
    char t[3][64];
    DDL_STATUS_TRIGGER(t[0], m->table);
    DDL_LOG_TRIGGER(t[1], m->table);
    DDL_TRUNCATE_TRIGGER(t[2], m->table);
    const char *tv[] = {t[0], t[1], t[2]};
    pg_text_array(triggers, tv, 3);
    free(v);
    free(names);
}

/* The statements that put the shadow in the table's place; r is the
 * SWAP_CHECK_SQL row. */
static void
swap_sql(sb *s, const char *schema, const mapping *m, const ddl_index *ix, size_t n,
         const PGresult *r)
{
    char shadow[64];
    DDL_SHADOW(shadow, m->table);
    sb t = SB_INIT;
    pg_qname(&t, schema, m->table);
    sb_printf(s, "DROP TABLE %s;\nALTER TABLE ", sb_str(&t));
    pg_qname(s, schema, shadow);
    sb_puts(s, " RENAME TO ");
    sb_sql_ident(s, m->table);
    sb_puts(s, ";\n");
    if (!PQgetisnull(r, 0, 1) && !PQgetisnull(r, 0, 3)) {
        sb_puts(s, "ALTER SEQUENCE ");
        pg_qname(s, schema, PQgetvalue(r, 0, 3));
        sb_puts(s, " RENAME TO ");
        sb_sql_ident(s, PQgetvalue(r, 0, 1));
        sb_puts(s, ";\n");
    }
    if (!PQgetisnull(r, 0, 2) && !PQgetisnull(r, 0, 4)) {
        sb_printf(s, "ALTER TABLE %s RENAME CONSTRAINT ", sb_str(&t));
        sb_sql_ident(s, PQgetvalue(r, 0, 4));
        sb_puts(s, " TO ");
        sb_sql_ident(s, PQgetvalue(r, 0, 2));
        sb_puts(s, ";\n");
    }
    for (size_t i = 0; i < n; i++) {
        char from[64], to[64];
        ddl_index_name(from, shadow, ix[i].column, ix[i].unique);
        ddl_index_name(to, m->table, ix[i].column, ix[i].unique);
        sb_puts(s, "ALTER INDEX ");
        pg_qname(s, schema, from);
        sb_puts(s, " RENAME TO ");
        sb_sql_ident(s, to);
        sb_puts(s, ";\n");
    }
    sb_printf(s, "ALTER TABLE %s ALTER COLUMN \"_hc_lastop\" DROP DEFAULT;\n", sb_str(&t));
    cap_install_sql(s, schema, m);
    for (int col = 5; col <= 6; col++)
        if (!PQgetisnull(r, 0, col))
            sb_printf(s, "%s\n", PQgetvalue(r, 0, col));
    sb_free(&t);
}

int
shadow_swap(PGconn *c, const char *schema, const mapping *m, bool *swapped, err_t *e)
{
    *swapped = false;
    size_t n = ddl_own_indexes(m, NULL, 0);
    ddl_index *ix = xcalloc(n, sizeof *ix);
    ddl_own_indexes(m, ix, n);
    sb t = SB_INIT, sh = SB_INIT, idx = SB_INIT, trg = SB_INIT, s = SB_INIT;
    pg_qname(&t, schema, m->table);
    shadow_qname(&sh, schema, m);
    own_names(m, ix, n, &idx, &trg);
    PGresult *r = NULL, *empty = NULL;
    /* An app holding the table for long fails this attempt, not the app's. */
    sb_printf(&s, "SET LOCAL lock_timeout = '5s'; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE",
              sb_str(&t));
    int rc = pg_exec(c, e, sb_str(&s));
    if (rc != 0)
        goto out;
    sb_clear(&s);
    sb_printf(&s, "SELECT NOT EXISTS (SELECT 1 FROM %s)", sb_str(&t));
    empty = pg_query(c, e, sb_str(&s), 0, NULL);
    const char *p[] = {sb_str(&t), sb_str(&sh), sb_str(&idx), sb_str(&trg)};
    r = empty ? pg_query(c, e, SWAP_CHECK_SQL, 4, p) : NULL;
    if (!r) {
        rc = -1;
        goto out;
    }
    if (PQntuples(r) != 1 || strcmp(PQgetvalue(empty, 0, 0), "t") != 0 ||
        strcmp(PQgetvalue(r, 0, 0), "t") != 0)
        goto out; /* the app's table: the caller moves the rows in */
    sb_clear(&s);
    swap_sql(&s, schema, m, ix, n, r);
    rc = pg_exec(c, e, sb_str(&s));
    *swapped = rc == 0;
out:
    PQclear(empty);
    PQclear(r);
    sb_free(&s);
    sb_free(&trg);
    sb_free(&idx);
    sb_free(&sh);
    sb_free(&t);
    free(ix);
    return rc;
}
