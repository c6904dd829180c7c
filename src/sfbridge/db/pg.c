/*
 * pg: libpq helpers: marked connections, parameterised statements, COPY, and
 * errors in the project's err_t convention (code = SQLSTATE).
 */
#include "pg.h"

#include <string.h>

#include "log.h"

int
pg_fail(PGconn *c, const PGresult *r, err_t *e, const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    if (!msg || !*msg)
        msg = PQerrorMessage(c);
    char clean[ERR_MSG_MAX];
    snprintf(clean, sizeof clean, "%s", msg ? msg : "unknown error");
    size_t n = strlen(clean);
    while (n > 0 && (clean[n - 1] == '\n' || clean[n - 1] == ' '))
        clean[--n] = '\0';
    if (!state || !*state)
        state = PQstatus(c) == CONNECTION_OK ? "PG_ERROR" : "08006";
    err_set(e, 500, state, "%s: %s%s%s", what, clean, detail ? " (" : "", detail ? detail : "");
    return err_class_set(e, pg_transient(c, e) ? ERR_TRANSIENT : ERR_PERMANENT);
}

bool
pg_connection_lost(PGconn *c)
{
    return PQstatus(c) != CONNECTION_OK;
}

bool
pg_transient(PGconn *c, const err_t *e)
{
    static const char *const codes[] = {
        "40001", /* serialization_failure */
        "40P01", /* deadlock_detected */
        "55P03", /* lock_not_available (lock_timeout) */
        "57014", /* query_canceled (statement_timeout) */
        "57P01", /* admin_shutdown */
        "57P03", /* cannot_connect_now (starting up) */
    };
    if (c && pg_connection_lost(c))
        return true;
    if (strncmp(e->code, "08", 2) == 0 || strncmp(e->code, "53", 2) == 0)
        return true;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(e->code, codes[i]) == 0)
            return true;
    return false;
}

PGconn *
pg_connect(const char *url, err_t *e)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {url, "sfbridge", "10", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        /* libpq's message never holds the password. */
        err_set(e, 500, "08006", "cannot connect to Postgres: %s",
                c ? PQerrorMessage(c) : "out of memory");
        size_t n = e ? strlen(e->msg) : 0;
        while (e && n > 0 && e->msg[n - 1] == '\n')
            e->msg[--n] = '\0';
        PQfinish(c);
        return NULL;
    }
    if (pg_exec(c, e,
                "SET xmlbinary = 'hex'; SET TIME ZONE 'UTC'; SET datestyle = 'ISO, YMD'; "
                "SET extra_float_digits = 3; SET client_min_messages = warning") != 0) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

int
pg_exec(PGconn *c, err_t *e, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_fail(c, r, e, "Postgres");
    PQclear(r);
    return rc;
}

PGresult *
pg_query(PGconn *c, err_t *e, const char *sql, int nparams, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pg_fail(c, r, e, "Postgres");
        PQclear(r);
        return NULL;
    }
    return r;
}

int
pg_run(PGconn *c, err_t *e, const char *sql, int nparams, const char *const *params)
{
    PGresult *r = pg_query(c, e, sql, nparams, params);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

void
pg_rollback_quietly(PGconn *c)
{
    if (PQtransactionStatus(c) != PQTRANS_IDLE) {
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
    }
}

void
pg_qname(sb *out, const char *schema, const char *name)
{
    sb_sql_ident(out, schema);
    sb_putc(out, '.');
    sb_sql_ident(out, name);
}

int
pg_copy_begin(PGconn *c, const char *sql, err_t *e)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        pg_fail(c, r, e, "COPY");
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

int
pg_copy_put(PGconn *c, const char *data, size_t len, err_t *e)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        if (PQputCopyData(c, data, chunk) != 1)
            return pg_fail(c, NULL, e, "COPY");
        data += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

int
pg_copy_end(PGconn *c, const char *abort_reason, err_t *e)
{
    if (PQputCopyEnd(c, abort_reason) != 1)
        return pg_fail(c, NULL, e, "COPY");
    int rc = 0;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !abort_reason && rc == 0)
            rc = pg_fail(c, r, e, "COPY");
        PQclear(r);
    }
    return abort_reason ? -1 : rc;
}

void
pg_text_array(sb *out, const char *const *v, size_t n)
{
    sb_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_putc(out, ',');
        if (!v[i]) {
            sb_puts(out, "NULL");
            continue;
        }
        sb_putc(out, '"');
        for (const char *p = v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                sb_putc(out, '\\');
            sb_putc(out, *p);
        }
        sb_putc(out, '"');
    }
    sb_putc(out, '}');
}

void
pg_i64_array(sb *out, const int64_t *v, size_t n)
{
    sb_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_putc(out, ',');
        sb_put_i64(out, v[i]);
    }
    sb_putc(out, '}');
}
