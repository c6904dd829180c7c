/*
 * pg: libpq helpers: marked connections, parameterised statements, COPY, and
 * errors in the project's err_t convention (code = SQLSTATE).
 */
#include "pg.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "log.h"

/* libpq's messages span lines ("...failed: Connection refused\n\tIs the
 * server running..."): one line, runs of white space holding a newline
 * become one space, trailing white space goes. */
static void
one_line(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (isspace((unsigned char)*r)) {
            bool nl = false;
            char *start = r;
            while (isspace((unsigned char)*r))
                nl |= *r++ == '\n';
            if (*r == '\0')
                break;
            if (nl)
                *w++ = ' ';
            else
                while (start < r)
                    *w++ = *start++;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

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
    one_line(clean);
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

/* A word without "=" is a database name to libpq ("garbage", "mysql://x"
 * would be tried as databases on the default socket): only postgres URLs and
 * key=value strings libpq can parse are connection strings. The message
 * never repeats the string, which may hold a password. */
static int
check_conninfo(const char *url, err_t *e)
{
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
        return 0;
    const char *scheme_end = strstr(url, "://");
    if (scheme_end)
        return err_set(e, 400, "BAD_CONFIG",
                       "DATABASE_URL is a %.*s:// URL; sfbridge needs a Postgres one "
                       "(postgresql://USER:PASSWORD@HOST:PORT/DATABASE)",
                       (int)(scheme_end - url < 20 ? scheme_end - url : 20), url);
    char *why = NULL;
    PQconninfoOption *opts = strchr(url, '=') ? PQconninfoParse(url, &why) : NULL;
    if (opts) {
        PQconninfoFree(opts);
        return 0;
    }
    if (why)
        one_line(why);
    err_set(e, 400, "BAD_CONFIG",
            "DATABASE_URL is not a Postgres connection string: %s (write "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or host=... dbname=...)",
            why ? why : "neither a postgresql:// URL nor key=value pairs");
    PQfreemem(why);
    return -1;
}

PGconn *
pg_connect(const char *url, err_t *e)
{
    if (check_conninfo(url, e) != 0)
        return NULL;
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {url, "sfbridge", "10", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        /* libpq's message never holds the password. */
        char msg[ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "out of memory");
        one_line(msg);
        err_set(e, 500, "08006", "cannot connect to Postgres: %s", msg);
        PQfinish(c);
        return NULL;
    }
    if (pg_exec(c, e,
                "SET xmlbinary = 'hex'; SET sfbridge.session = 'on'; SET TIME ZONE 'UTC';"
                " SET datestyle = 'ISO, YMD'; "
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

json_t *
pg_query_json(PGconn *c, err_t *e, const char *sql, int nparams, const char *const *params,
              const char *what)
{
    PGresult *r = pg_query(c, e, sql, nparams, params);
    if (!r)
        return NULL;
    json_t *j = PQntuples(r) ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
    PQclear(r);
    if (!j)
        err_set(e, 500, "BAD_CATALOG", "%s could not be read", what);
    return j;
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

/* The COPY ended (abort_reason NULL) or abandoned; *rows (may be NULL) gets
 * the rows Postgres says it copied. */
static int
copy_end(PGconn *c, const char *abort_reason, int64_t *rows, err_t *e)
{
    if (PQputCopyEnd(c, abort_reason) != 1)
        return pg_fail(c, NULL, e, "COPY");
    int rc = 0;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !abort_reason && rc == 0)
            rc = pg_fail(c, r, e, "COPY");
        else if (rows && PQresultStatus(r) == PGRES_COMMAND_OK)
            *rows = atoll(PQcmdTuples(r));
        PQclear(r);
    }
    return abort_reason ? -1 : rc;
}

int
pg_copy_end(PGconn *c, const char *abort_reason, err_t *e)
{
    return copy_end(c, abort_reason, NULL, e);
}

int
pg_copy_end_rows(PGconn *c, int64_t *rows, err_t *e)
{
    *rows = 0;
    return copy_end(c, NULL, rows, e);
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

/* Drop the notifications libpq holds; whether there were any. */
static bool
drain_notifies(PGconn *c)
{
    bool any = false;
    PGnotify *nt;
    while ((nt = PQnotifies(c)) != NULL) {
        PQfreemem(nt);
        any = true;
    }
    return any;
}

bool
pg_wait_notify(PGconn *c, int64_t ms)
{
    int fd = PQsocket(c);
    if (fd < 0 || ms <= 0)
        return false;
    if (drain_notifies(c))
        return true;
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    if (select(fd + 1, &rd, NULL, NULL, &tv) <= 0)
        return false;
    /* A read failure shows as a lost connection at the caller's next statement. */
    (void)PQconsumeInput(c);
    return drain_notifies(c);
}

int
pg_table_exists(PGconn *c, const char *schema, const char *name, bool *yes, err_t *e)
{
    sb q = SB_INIT;
    pg_qname(&q, schema, name);
    const char *p[] = {sb_str(&q)};
    PGresult *r = pg_query(c, e, "SELECT to_regclass($1) IS NOT NULL", 1, p);
    sb_free(&q);
    if (!r)
        return -1;
    *yes = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return 0;
}
