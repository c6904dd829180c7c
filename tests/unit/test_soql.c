/*
 * Unit tests for soql: Salesforce's errors (codes, messages, columns) and the
 * semantics of the generated SQL, run against an in-memory SQLite database
 * laid out as the store lays out its tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "fixture_schema.h"
#include "sb.h"
#include "sfid.h"
#include "soql.h"

static lf_schema *S;
static sqlite3 *db;
static int64_t NOW; /* 2024-06-15T12:00:00Z */

/* IDs by record number: acc[1] is the first Account, ... */
static char usr[3][19], acc[7][19], con[6][19], tea[3][19], crs[5][19];

/* ------------------------------------------------------------------------ */
/* Fixture database                                                          */

static void
exec_sql(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, err);
        abort();
    }
    sqlite3_free(sql);
}

static int64_t
ms(const char *dt)
{
    int64_t v;
    if (util_parse_datetime(dt, &v) != 0)
        abort();
    return v;
}

static void
insert_rows(void)
{
    for (int i = 1; i <= 2; i++)
        sfid_make("005", (uint64_t)i, usr[i]);
    for (int i = 1; i <= 6; i++)
        sfid_make("001", (uint64_t)i, acc[i]);
    for (int i = 1; i <= 5; i++)
        sfid_make("003", (uint64_t)i, con[i]);
    for (int i = 1; i <= 2; i++)
        sfid_make("a01", (uint64_t)i, tea[i]);
    for (int i = 1; i <= 4; i++)
        sfid_make("a02", (uint64_t)i, crs[i]);

    exec_sql("INSERT INTO \"User\"(_rowid, Id, Username, Name) VALUES (1, %Q, 'ann@x.test', "
             "'Ann Admin'), (2, %Q, 'bob@x.test', 'Bob Boss')",
             usr[1], usr[2]);
    static const struct {
        const char *name, *industry, *revenue, *employees;
        int deleted, parent, owner;
    } a[] = {
        {0},
        {"Acme", "Tech", "1000.5", "10", 0, 0, 1},
        {"Globex", NULL, "250", "NULL", 0, 1, 2},
        {"Initech", "Finance", "5000", "200", 0, 2, 1},
        {"acme labs", "Tech", "NULL", "5", 0, 0, 0},
        {"100% Pure_Co", "Retail", "10", "1", 0, 0, 2},
        {"Deleted Co", "Tech", "99", "99", 1, 0, 1},
    };
    for (int i = 1; i <= 6; i++)
        exec_sql("INSERT INTO Account(_rowid, Id, IsDeleted, Name, Industry, AnnualRevenue, "
                 "NumberOfEmployees, ParentId, OwnerId, CreatedDate) "
                 "VALUES (%d, %Q, %d, %Q, %Q, %s, %s, %Q, %Q, %lld)",
                 i, acc[i], a[i].deleted, a[i].name, a[i].industry, a[i].revenue, a[i].employees,
                 a[i].parent ? acc[a[i].parent] : NULL, a[i].owner ? usr[a[i].owner] : NULL,
                 (long long)ms("2024-01-01T00:00:00Z") + i);
    static const struct {
        const char *first, *last, *email;
        int account;
        const char *birth;
    } c[] = {
        {0},
        {"Ann", "Lee", "ann@x.test", 1, "1990-05-01"},
        {"Bob", "Stone", "bob@y.test", 3, "1985-12-31"},
        {"Cy", "Orphan", NULL, 0, NULL},
        {"Dee", "Gone", "dee@x.test", 6, "2024-06-15"},
        {"Eve", "O'Brien", "eve@x.test", 3, "2024-06-14"},
    };
    for (int i = 1; i <= 5; i++)
        exec_sql("INSERT INTO Contact(_rowid, Id, FirstName, LastName, Email, AccountId, "
                 "Birthdate) VALUES (%d, %Q, %Q, %Q, %Q, %Q, %Q)",
                 i, con[i], c[i].first, c[i].last, c[i].email,
                 c[i].account ? acc[c[i].account] : NULL, c[i].birth);
    exec_sql("INSERT INTO Teacher__c(_rowid, Id, Name, Email__c, School__c) VALUES "
             "(1, %Q, 'Tess', 'tess@s.test', %Q), (2, %Q, 'Tom', NULL, NULL)",
             tea[1], acc[1], tea[2]);
    static const struct {
        const char *name;
        int teacher, active;
        const char *start, *subjects;
    } k[] = {
        {0},
        {"Math", 1, 1, "2024-06-15T09:00:00Z", "Algebra;Geometry"},
        {"Art", 2, 0, "2024-06-14T23:59:59Z", "Painting"},
        {"Bio", 0, 1, "2024-01-01T00:00:00Z", NULL},
        {"Chem", 1, 0, NULL, "Geometry;Lab"},
    };
    for (int i = 1; i <= 4; i++) {
        char start[32] = "NULL";
        if (k[i].start)
            snprintf(start, sizeof start, "%lld", (long long)ms(k[i].start));
        exec_sql("INSERT INTO Course__c(_rowid, Id, Name, Teacher__c, Active__c, Start__c, "
                 "Subjects__c) VALUES (%d, %Q, %Q, %Q, %d, %s, %Q)",
                 i, crs[i], k[i].name, k[i].teacher ? tea[k[i].teacher] : NULL, k[i].active, start,
                 k[i].subjects);
    }
}

static int
setup(void **state)
{
    (void)state;
    NOW = ms("2024-06-15T12:00:00Z");
    S = fixture_schema();
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        return -1;
    if (fixture_create_tables(db, S) != 0)
        return -1;
    insert_rows();
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    sqlite3_close(db);
    fixture_free(S);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static soql_plan *
compile_ok(const char *q, bool all_rows)
{
    soql_plan *p = NULL;
    err_t e;
    memset(&e, 0, sizeof e);
    if (soql_compile(S, q, all_rows, NOW, &p, &e) != 0)
        fail_msg("compile failed: %s\n%s\n%s", q, e.code, e.msg);
    assert_non_null(p);
    return p;
}

static sqlite3_stmt *
prepare_bound(const char *sql, const soql_plan *p)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("prepare failed: %s\n%s", sqlite3_errmsg(db), sql);
    for (int i = 0; i < p->nparams; i++) {
        const soql_param *sp = &p->params[i];
        switch (sp->type) {
        case SP_INT: sqlite3_bind_int64(st, i + 1, sp->i); break;
        case SP_REAL: sqlite3_bind_double(st, i + 1, sp->r); break;
        case SP_TEXT: sqlite3_bind_text(st, i + 1, sp->s, -1, SQLITE_STATIC); break;
        default: sqlite3_bind_null(st, i + 1); break;
        }
    }
    return st;
}

static int64_t
count_of(const soql_plan *p)
{
    sqlite3_stmt *st = prepare_bound(p->count_sql, p);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Run q and return selected column k (-1: the Id in column 0) of every row,
 * comma-separated, "null" for NULL. Also checks that count_sql agrees. */
static char *
run_col(const char *q, bool all_rows, int k)
{
    soql_plan *p = compile_ok(q, all_rows);
    int col = k < 0 || p->ncols == 0 ? 0 : p->cols[k].sql_col;
    sqlite3_stmt *st = prepare_bound(p->sql, p);
    sb out = SB_INIT;
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++)
            sb_putc(&out, ',');
        const unsigned char *v = sqlite3_column_text(st, col);
        sb_puts(&out, v ? (const char *)v : "null");
    }
    assert_int_equal(rc, SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(count_of(p), n);
    soql_plan_free(p);
    return sb_steal(&out);
}

#define assert_col(q, k, expected)             \
    do {                                       \
        char *got_ = run_col((q), false, (k)); \
        assert_string_equal(got_, (expected)); \
        free(got_);                            \
    } while (0)
#define assert_rows(q, expected) assert_col(q, 0, expected)

static int64_t
count_query(const char *q, bool all_rows)
{
    soql_plan *p = compile_ok(q, all_rows);
    int64_t n = count_of(p);
    soql_plan_free(p);
    return n;
}

/* Compile q, expect failure with code and a message ending in
 * "ERROR at Row:row:Column:col\n<text>"; for short one-line statements also
 * check the whole layout. */
static void
check_error(const char *q, const char *code, int row, int col, const char *text)
{
    soql_plan *p = NULL;
    err_t e;
    memset(&e, 0, sizeof e);
    assert_int_equal(soql_compile(S, q, false, NOW, &p, &e), -1);
    assert_null(p);
    assert_int_equal(e.http, 400);
    assert_string_equal(e.code, code);
    char tail[ERR_MSG_MAX];
    snprintf(tail, sizeof tail, "ERROR at Row:%d:Column:%d\n%s", row, col, text);
    size_t lt = strlen(tail), lm = strlen(e.msg);
    if (lm < lt || strcmp(e.msg + lm - lt, tail) != 0)
        fail_msg("message mismatch for %s\n got: %s\nwant: ...%s", q, e.msg, tail);
    if (row == 1 && strlen(q) <= 200 && strchr(q, '\n') == NULL) {
        sb want = SB_INIT;
        sb_printf(&want, "\n%s\n%*s^\n%s", q, col - 1, "", tail);
        assert_string_equal(e.msg, want.buf);
        sb_free(&want);
    }
}

/* 1-based column of the first occurrence of marker in q. */
static int
col_of(const char *q, const char *marker)
{
    const char *m = strstr(q, marker);
    assert_non_null(m);
    return (int)(m - q) + 1;
}

static const char NO_FIELD[] =
    ". If you are attempting to use a custom field, be sure to append the '__c' after the custom "
    "field name. Please reference your WSDL or the describe call for the appropriate names.";

/* ------------------------------------------------------------------------ */
/* Syntax errors                                                             */

static void
test_err_unexpected_token(void **state)
{
    (void)state;
    check_error("SELECT Id FRM Account", "MALFORMED_QUERY", 1, 11, "unexpected token: 'FRM'");
    check_error("SELECT FROM Account", "MALFORMED_QUERY", 1, 8, "unexpected token: 'FROM'");
    const char *q = "SELECT Id FROM Account WHERE Name = 'x' LIMIT 5 WHERE";
    check_error(q, "MALFORMED_QUERY", 1, col_of(q, "5 WHERE") + 2, "unexpected token: 'WHERE'");
    check_error("SELECT Id FROM Account WHERE Name = \"x\"", "MALFORMED_QUERY", 1, 37,
                "unexpected token: '\"'");
    check_error("SELECT Id FROM Account LIMIT -1", "MALFORMED_QUERY", 1, 30,
                "unexpected token: '-1'");
}

static void
test_err_unexpected_eof(void **state)
{
    (void)state;
    check_error("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", 1, 29,
                "unexpected token: <EOF>");
    check_error("SELECT Id FROM Account LIMIT", "MALFORMED_QUERY", 1, 29,
                "unexpected token: <EOF>");
    check_error("SELECT Id FROM Account WHERE Name IN ('a',", "MALFORMED_QUERY", 1, 43,
                "unexpected token: <EOF>");
    check_error("", "MALFORMED_QUERY", 1, 1, "unexpected token: <EOF>");
}

static void
test_err_mixed_and_or_needs_parentheses(void **state)
{
    (void)state;
    const char *q = "SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'";
    check_error(q, "MALFORMED_QUERY", 1, col_of(q, "OR"), "unexpected token: 'OR'");
    /* NOT applies to one condition at the start of an expression */
    q = "SELECT Id FROM Account WHERE Name = 'a' AND NOT Name = 'b'";
    check_error(q, "MALFORMED_QUERY", 1, col_of(q, "NOT"), "unexpected token: 'NOT'");
    q = "SELECT Id FROM Account WHERE NOT Name = 'a' AND Name = 'b'";
    check_error(q, "MALFORMED_QUERY", 1, col_of(q, "AND"), "unexpected token: 'AND'");
}

static void
test_err_string_literals(void **state)
{
    (void)state;
    check_error("SELECT Id FROM Account WHERE Name = 'abc", "MALFORMED_QUERY", 1, 41,
                "line 1:40 mismatched character '<EOF>' expecting '''");
    const char *q = "SELECT Id FROM Account WHERE Name = 'a\\qb'";
    check_error(q, "MALFORMED_QUERY", 1, col_of(q, "\\q"),
                "Invalid string literal 'a\\qb'. Illegal character sequence '\\q' in string "
                "literal.");
    q = "SELECT Id FROM Account WHERE Name = 'a\\u00zz'";
    check_error(q, "MALFORMED_QUERY", 1, col_of(q, "\\u"),
                "Invalid string literal 'a\\u00zz'. Illegal character sequence '\\u' in string "
                "literal.");
}

static void
test_err_bad_date_literal(void **state)
{
    (void)state;
    const char *q = "SELECT Id FROM Account WHERE CreatedDate > 2024-02-30T00:00:00Z";
    check_error(q, "MALFORMED_QUERY", 1, col_of(q, "2024"),
                "unexpected token: '2024-02-30T00:00:00Z'");
    q = "SELECT Id FROM Account WHERE CreatedDate > 2024-01-01T10:00:00";
    check_error(q, "MALFORMED_QUERY", 1, col_of(q, "2024"),
                "unexpected token: '2024-01-01T10:00:00'");
}

static void
test_err_multiline_row_and_column(void **state)
{
    (void)state;
    const char *q = "SELECT Id\nFROM Account\nWHERE Nme = 'x'";
    check_error(q, "INVALID_FIELD", 3, 7,
                "No such column 'Nme' on entity 'Account'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference "
                "your WSDL or the describe call for the appropriate names.");
    err_t e;
    soql_plan *p = NULL;
    assert_int_equal(soql_compile(S, q, false, NOW, &p, &e), -1);
    /* the layout shows the line the error is on, with the caret under it */
    assert_non_null(strstr(e.msg, "\nWHERE Nme = 'x'\n      ^\nERROR at Row:3:Column:7\n"));
}

static void
test_err_window_on_long_statement(void **state)
{
    (void)state;
    sb q = SB_INIT;
    sb_puts(&q, "SELECT Id FROM Account WHERE ");
    for (int i = 0; i < 40; i++)
        sb_printf(&q, "Name = 'n%02d' OR ", i);
    sb_puts(&q, "Nope__c = 1");
    err_t e;
    soql_plan *p = NULL;
    assert_int_equal(soql_compile(S, q.buf, false, NOW, &p, &e), -1);
    assert_string_equal(e.code, "INVALID_FIELD");
    /* "\n<window>\n<spaces>^\n": the window is at most 200 characters and the
     * caret points at the field */
    char *line1 = e.msg + 1, *nl1 = strchr(line1, '\n');
    assert_non_null(nl1);
    char *line2 = nl1 + 1, *caret = strchr(line2, '^');
    assert_non_null(caret);
    assert_true(nl1 - line1 <= 200);
    assert_int_equal(strncmp(line1 + (caret - line2), "Nope__c", 7), 0);
    char want[64];
    snprintf(want, sizeof want, "ERROR at Row:1:Column:%d\n", col_of(q.buf, "Nope__c"));
    assert_non_null(strstr(e.msg, want));
    sb_free(&q);
}

static void
test_err_statement_too_long(void **state)
{
    (void)state;
    sb q = SB_INIT;
    sb_puts(&q, "SELECT Id FROM Account WHERE Name = '");
    while (q.len < 100010)
        sb_putc(&q, 'a');
    sb_puts(&q, "'");
    err_t e;
    soql_plan *p = NULL;
    assert_int_equal(soql_compile(S, q.buf, false, NOW, &p, &e), -1);
    assert_string_equal(e.code, "MALFORMED_QUERY");
    assert_int_equal(e.http, 400);
    assert_non_null(strstr(e.msg, "SOQL statements cannot be longer than 100000 characters"));
    assert_true(strlen(e.msg) < 600);
    /* exactly 100,000 characters is fine */
    sb_clear(&q);
    sb_puts(&q, "SELECT Id FROM Account WHERE Name = '");
    while (q.len < 100000 - 1)
        sb_putc(&q, 'a');
    sb_puts(&q, "'");
    assert_int_equal(q.len, 100000);
    soql_plan_free(compile_ok(q.buf, false));
    sb_free(&q);
}

static void
test_err_nesting_limits(void **state)
{
    (void)state;
    /* 64 levels of parentheses as written are fine, 65 are not */
    sb q = SB_INIT;
    sb_puts(&q, "SELECT Name FROM Account WHERE ");
    for (int i = 0; i < 64; i++)
        sb_putc(&q, '(');
    sb_puts(&q, "Name = 'Acme'");
    for (int i = 0; i < 64; i++)
        sb_putc(&q, ')');
    assert_rows(q.buf, "Acme");
    sb_clear(&q);
    sb_puts(&q, "SELECT Name FROM Account WHERE ");
    for (int i = 0; i < 65; i++)
        sb_putc(&q, '(');
    sb_puts(&q, "Name = 'Acme'");
    for (int i = 0; i < 65; i++)
        sb_putc(&q, ')');
    check_error(q.buf, "MALFORMED_QUERY", 1, 32 + 64,
                "conditions are nested too deeply: at most 64 levels of parentheses");

    /* alternating OR/AND nesting that SQLite must parse: the deepest we accept
     * still prepares; one more level is refused, never a SQLite error */
    for (int depth = 1; depth <= 17; depth++) {
        sb_clear(&q);
        sb_puts(&q, "SELECT Name FROM Account WHERE ");
        for (int i = 0; i < depth; i++)
            sb_puts(&q, "Name = 'a' OR (Name = 'b' AND (");
        sb_puts(&q, "Name = 'Acme'");
        for (int i = 0; i < depth; i++)
            sb_puts(&q, "))");
        err_t e;
        soql_plan *p = NULL;
        if (soql_compile(S, q.buf, false, NOW, &p, &e) == 0) {
            char *got = run_col(q.buf, false, 0);
            assert_string_equal(got, "");
            free(got);
            soql_plan_free(p);
        } else {
            assert_true(depth > 8);
            assert_string_equal(e.code, "MALFORMED_QUERY");
            assert_non_null(strstr(e.msg, "nested too deeply"));
        }
    }
    sb_free(&q);
}

static void
test_long_or_chain(void **state)
{
    (void)state;
    sb q = SB_INIT;
    sb_puts(&q, "SELECT Name FROM Account WHERE ");
    for (int i = 0; i < 3000; i++)
        sb_printf(&q, "Name = 'n%d' OR ", i);
    sb_puts(&q, "Name = 'Globex'");
    assert_rows(q.buf, "Globex");
    sb_free(&q);
}

/* ------------------------------------------------------------------------ */
/* Name and type errors                                                      */

static void
test_err_invalid_type(void **state)
{
    (void)state;
    check_error("SELECT Id FROM Foo", "INVALID_TYPE", 1, 16,
                "sObject type 'Foo' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your "
                "WSDL or the describe call for the appropriate names.");
}

static void
test_err_invalid_field(void **state)
{
    (void)state;
    char want[512];
    snprintf(want, sizeof want, "No such column 'Foo__c' on entity 'Account'%s", NO_FIELD);
    check_error("SELECT Id, Foo__c FROM Account", "INVALID_FIELD", 1, 12, want);
    snprintf(want, sizeof want, "No such column 'Nope__c' on entity 'Account'%s", NO_FIELD);
    check_error("SELECT Id FROM Account WHERE Nope__c = 1", "INVALID_FIELD", 1, 30, want);
    check_error("SELECT Id FROM Account ORDER BY Nope__c", "INVALID_FIELD", 1, 33, want);
    /* on a parent: the parent's entity */
    snprintf(want, sizeof want, "No such column 'Nope' on entity 'Account'%s", NO_FIELD);
    check_error("SELECT Account.Nope FROM Contact", "INVALID_FIELD", 1, 8, want);
    /* syntax errors come first, wherever they are */
    check_error("SELECT Nope__c FROM Account WHERE", "MALFORMED_QUERY", 1, 34,
                "unexpected token: <EOF>");
}

static void
test_err_invalid_relationship(void **state)
{
    (void)state;
    static const char tail[] =
        "' in field path. If you are attempting to use a custom relationship, be sure to append "
        "the '__r' after the custom relationship name. Please reference your WSDL or the "
        "describe call for the appropriate names.";
    char want[512];
    snprintf(want, sizeof want, "Didn't understand relationship 'Foo__r%s", tail);
    check_error("SELECT Foo__r.Name FROM Contact", "INVALID_FIELD", 1, 8, want);
    /* the reference field's own name is not a relationship */
    snprintf(want, sizeof want, "Didn't understand relationship 'AccountId%s", tail);
    check_error("SELECT Id FROM Contact WHERE AccountId.Name = 'x'", "INVALID_FIELD", 1, 30, want);
}

static void
test_err_relationship_depth(void **state)
{
    (void)state;
    /* five levels are allowed */
    assert_col("SELECT Name, Parent.Parent.Parent.Parent.Parent.Name FROM Account", 1,
               "null,null,null,null,null");
    assert_col("SELECT Name, Parent.Parent.Name FROM Account WHERE Parent.Parent.Name != null", 1,
               "Acme");
    check_error("SELECT Parent.Parent.Parent.Parent.Parent.Parent.Name FROM Account",
                "MALFORMED_QUERY", 1, 8,
                "SOQL statements cannot query more than 5 levels of child-to-parent relationships");
}

static void
test_err_literal_types(void **state)
{
    (void)state;
    static const struct {
        const char *where, *lit, *msg;
    } cases[] = {
        {"annualrevenue = '5'", "'5'",
         "value of filter criterion for field 'AnnualRevenue' must be of type double and should "
         "not be enclosed in quotes"},
        {"Name = 5", "5",
         "value of filter criterion for field 'Name' must be of type string and should be "
         "enclosed in quotes"},
        {"NumberOfEmployees = true", "true",
         "value of filter criterion for field 'NumberOfEmployees' must be of type integer and "
         "should not be enclosed in quotes"},
        {"CreatedDate > '2024-01-01T00:00:00Z'", "'2024",
         "value of filter criterion for field 'CreatedDate' must be of type dateTime and should "
         "not be enclosed in quotes"},
        {"Id = 5", "5",
         "value of filter criterion for field 'Id' must be of type id and should be enclosed in "
         "quotes"},
        {"Industry IN ('a', 2)", "2",
         "value of filter criterion for field 'Industry' must be of type string and should be "
         "enclosed in quotes"},
        {"Name = TODAY", "TODAY",
         "value of filter criterion for field 'Name' must be of type string and should be "
         "enclosed in quotes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q[256];
        snprintf(q, sizeof q, "SELECT Id FROM Account WHERE %s", cases[i].where);
        check_error(q, "INVALID_FIELD", 1, col_of(q, cases[i].lit), cases[i].msg);
    }
}

static void
test_err_literal_types_dates_booleans(void **state)
{
    (void)state;
    const char *q = "SELECT Id FROM Contact WHERE Birthdate = 2024-01-01T00:00:00Z";
    check_error(q, "INVALID_FIELD", 1, col_of(q, "2024"),
                "value of filter criterion for field 'Birthdate' must be of type date and should "
                "not be enclosed in quotes");
    q = "SELECT Id FROM Course__c WHERE Active__c = 'true'";
    check_error(q, "INVALID_FIELD", 1, col_of(q, "'true'"),
                "value of filter criterion for field 'Active__c' must be of type boolean and "
                "should not be enclosed in quotes");
    q = "SELECT Id FROM Course__c WHERE Active__c = 1";
    check_error(q, "INVALID_FIELD", 1, col_of(q, "1"),
                "value of filter criterion for field 'Active__c' must be of type boolean and "
                "should not be enclosed in quotes");
}

static void
test_err_invalid_id(void **state)
{
    (void)state;
    const char *q = "SELECT Id FROM Account WHERE Id = 'xyz'";
    check_error(q, "INVALID_QUERY_FILTER_OPERATOR", 1, col_of(q, "'xyz'"), "invalid ID field: xyz");
    char buf[256];
    /* an 18-character ID whose checksum is wrong */
    char bad[19];
    memcpy(bad, acc[1], 19);
    bad[17] = bad[17] == 'Z' ? 'Y' : 'Z';
    snprintf(buf, sizeof buf, "SELECT Id FROM Contact WHERE AccountId IN ('%s', '%s')", acc[1],
             bad);
    char want[64];
    snprintf(want, sizeof want, "invalid ID field: %s", bad);
    check_error(buf, "INVALID_QUERY_FILTER_OPERATOR", 1, col_of(buf, bad) - 1, want);
}

static void
test_err_duplicate_field(void **state)
{
    (void)state;
    check_error("SELECT Name, name FROM Account", "MALFORMED_QUERY", 1, 14,
                "duplicate field selected: name");
    check_error("SELECT Account.Name, account.NAME FROM Contact", "MALFORMED_QUERY", 1, 22,
                "duplicate field selected: account.NAME");
    /* the same name on different objects is not a duplicate */
    assert_col("SELECT Name, Parent.Name FROM Account WHERE Parent.Name != null", 1, "Acme,Globex");
}

static void
test_err_offset_range(void **state)
{
    (void)state;
    const char *q = "SELECT Id FROM Account ORDER BY Name OFFSET 2001";
    check_error(q, "NUMBER_OUTSIDE_VALID_RANGE", 1, col_of(q, "2001"),
                "Maximum SOQL offset allowed is 2000");
    assert_rows("SELECT Name FROM Account ORDER BY Name OFFSET 2000", "");
}

static void
test_err_count_combined(void **state)
{
    (void)state;
    check_error("SELECT COUNT(), Name FROM Account", "MALFORMED_QUERY", 1, 17,
                "Field must be grouped or aggregated: Name");
    check_error("SELECT Name, COUNT() FROM Account", "MALFORMED_QUERY", 1, 8,
                "Field must be grouped or aggregated: Name");
    check_error("SELECT COUNT() FROM Account ORDER BY Name", "MALFORMED_QUERY", 1, 38,
                "Ordered field must be grouped or aggregated: Name");
}

static void
test_err_operators_and_field_kinds(void **state)
{
    (void)state;
    const char *q = "SELECT Id FROM Account WHERE AnnualRevenue LIKE '5%'";
    check_error(q, "INVALID_QUERY_FILTER_OPERATOR", 1, col_of(q, "LIKE"),
                "invalid operator on currency field");
    q = "SELECT Id FROM Account WHERE Id LIKE '001%'";
    check_error(q, "INVALID_QUERY_FILTER_OPERATOR", 1, col_of(q, "LIKE"),
                "invalid operator on id field");
    q = "SELECT Id FROM Account WHERE Name INCLUDES ('a')";
    check_error(q, "INVALID_QUERY_FILTER_OPERATOR", 1, col_of(q, "INCLUDES"),
                "includes or excludes operator only valid on multipicklist field");
    check_error("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD", 1, 30,
                "field 'Description' can not be filtered in a query call");
    check_error("SELECT Id FROM Course__c ORDER BY Subjects__c", "INVALID_FIELD", 1, 35,
                "field 'Subjects__c' can not be sorted in a query call");
}

static void
test_err_unsupported_constructs(void **state)
{
    (void)state;
    check_error("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "MALFORMED_QUERY", 1, 12,
                "localforce does not support child relationship subqueries");
    check_error("SELECT Industry FROM Account GROUP BY Industry", "MALFORMED_QUERY", 1, 30,
                "unexpected token: 'GROUP' (localforce does not support GROUP BY)");
    check_error("SELECT COUNT(Id) FROM Account", "MALFORMED_QUERY", 1, 8,
                "localforce does not support aggregate queries (COUNT(field), GROUP BY); use "
                "COUNT()");
    check_error("SELECT Id FROM Account WHERE CreatedDate = LAST_WEEK", "MALFORMED_QUERY", 1, 44,
                "localforce does not support the date literal LAST_WEEK");
    check_error("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)",
                "MALFORMED_QUERY", 1, 36,
                "localforce does not support semi-join subqueries (IN (SELECT ...))");
    check_error("SELECT FIELDS(ALL) FROM Account", "MALFORMED_QUERY", 1, 8,
                "The SOQL FIELDS function must have a LIMIT of at most 200");
}

/* ------------------------------------------------------------------------ */
/* Semantics                                                                 */

static void
test_plan_shape(void **state)
{
    (void)state;
    soql_plan *p = compile_ok("SELECT Id, LastName, Account.Name, Account.Owner.Name FROM Contact",
                              false);
    assert_ptr_equal(p->object, schema_object(S, "Contact"));
    assert_false(p->count_only);
    assert_int_equal(p->limit, -1);
    assert_int_equal(p->offset, 0);
    assert_int_equal(p->ncols, 4);
    assert_int_equal(p->nrels, 2);
    assert_string_equal(p->rels[0].name, "Account");
    assert_ptr_equal(p->rels[0].object, schema_object(S, "Account"));
    assert_int_equal(p->rels[0].parent, -1);
    assert_string_equal(p->rels[1].name, "Owner");
    assert_ptr_equal(p->rels[1].object, schema_object(S, "User"));
    assert_int_equal(p->rels[1].parent, 0);
    assert_string_equal(p->cols[1].field->name, "LastName");
    assert_int_equal(p->cols[1].rel, -1);
    assert_int_equal(p->cols[2].rel, 0);
    assert_int_equal(p->cols[3].rel, 1);
    for (int i = 0; i < p->ncols; i++)
        assert_int_equal(p->cols[i].sql_col, i + 1);
    assert_int_equal(p->rels[0].id_col, 5);
    assert_int_equal(p->rels[1].id_col, 6);
    assert_int_equal(strncmp(p->sql, "SELECT t0.\"Id\",", 15), 0);
    soql_plan_free(p);
}

static void
test_values_are_bound_parameters(void **state)
{
    (void)state;
    char q[512];
    char id15[16];
    memcpy(id15, acc[3], 15);
    id15[15] = '\0';
    snprintf(q, sizeof q,
             "SELECT Id FROM Account WHERE NumberOfEmployees = 5 AND AnnualRevenue > 2.5 AND "
             "Name = 'x''); DROP TABLE Account; --' AND CreatedDate > 2024-01-02T03:04:05Z AND "
             "Id = '%s' AND Industry != null LIMIT 7",
             id15);
    /* the quote inside the string is the SQL-injection attempt: in SOQL '' ends the string */
    err_t e;
    soql_plan *p = NULL;
    assert_int_equal(soql_compile(S, q, false, NOW, &p, &e), -1);
    snprintf(q, sizeof q,
             "SELECT Id FROM Account WHERE NumberOfEmployees = 5 AND AnnualRevenue > 2.5 AND "
             "Name = 'x\\'); DROP TABLE Account; --' AND CreatedDate > 2024-01-02T03:04:05Z AND "
             "Id = '%s' AND Industry != null LIMIT 7",
             id15);
    p = compile_ok(q, false);
    assert_int_equal(p->nparams, 6);
    assert_int_equal(p->params[0].type, SP_INT);
    assert_int_equal(p->params[0].i, 5);
    assert_int_equal(p->params[1].type, SP_REAL);
    assert_true(p->params[1].r == 2.5);
    assert_int_equal(p->params[2].type, SP_TEXT);
    assert_string_equal(p->params[2].s, "x'); DROP TABLE Account; --");
    assert_int_equal(p->params[3].type, SP_INT);
    assert_int_equal(p->params[3].i, ms("2024-01-02T03:04:05Z"));
    assert_int_equal(p->params[4].type, SP_TEXT);
    assert_string_equal(p->params[4].s, acc[3]); /* normalised to 18 characters */
    assert_int_equal(p->params[5].type, SP_INT);
    assert_int_equal(p->params[5].i, 7);
    assert_int_equal(p->limit, 7);
    assert_null(strstr(p->sql, "DROP"));
    soql_plan_free(p);
}

static void
test_select_skips_deleted_rows(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account", "Acme,Globex,Initech,acme labs,100% Pure_Co");
}

static void
test_all_rows_includes_deleted(void **state)
{
    (void)state;
    char *got = run_col("SELECT Name, IsDeleted FROM Account", true, 0);
    assert_string_equal(got, "Acme,Globex,Initech,acme labs,100% Pure_Co,Deleted Co");
    free(got);
    got = run_col("SELECT Name, IsDeleted FROM Account WHERE IsDeleted = true", true, 0);
    assert_string_equal(got, "Deleted Co");
    free(got);
    soql_plan *p = compile_ok("SELECT Id FROM Account", true);
    assert_true(p->all_rows);
    soql_plan_free(p);
}

static void
test_and_or_with_parentheses(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account WHERE Industry = 'Tech' AND "
                "(NumberOfEmployees > 6 OR AnnualRevenue = null)",
                "Acme,acme labs");
    assert_rows("SELECT Name FROM Account WHERE (Industry = 'Tech' AND NumberOfEmployees > 6) OR "
                "AnnualRevenue < 100",
                "Acme,100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE Name = 'Acme' OR Name = 'Globex' OR "
                "Name = 'Initech'",
                "Acme,Globex,Initech");
    assert_rows("SELECT Name FROM Account WHERE Industry = 'Tech' AND (Name LIKE 'a%' AND "
                "NumberOfEmployees < 8)",
                "acme labs");
}

static void
test_not_is_two_valued(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account WHERE NOT Industry = 'Tech'",
                "Globex,Initech,100% Pure_Co");
    /* a null revenue is not "> 300", so NOT (...) matches it */
    assert_rows("SELECT Name FROM Account WHERE NOT (AnnualRevenue > 300)",
                "Globex,acme labs,100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE (NOT Name LIKE 'a%') AND NumberOfEmployees != null",
                "Initech,100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE NOT (Industry = 'Tech' OR Industry = null)",
                "Initech,100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE NOT (NOT (Name = 'Globex'))", "Globex");
}

static void
test_not_equal_matches_null(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account WHERE Industry != 'Tech'", "Globex,Initech,100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE Industry <> 'tech'", "Globex,Initech,100% Pure_Co");
}

static void
test_null_comparisons(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account WHERE Industry = null", "Globex");
    assert_rows("SELECT Name FROM Account WHERE AnnualRevenue != null",
                "Acme,Globex,Initech,100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE NumberOfEmployees > 100", "Initech");
    assert_rows("SELECT Name FROM Account WHERE NumberOfEmployees < 100",
                "Acme,acme labs,100% Pure_Co");
}

static void
test_empty_string_means_null(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account WHERE Industry = ''", "Globex");
    assert_rows("SELECT Name FROM Account WHERE Industry != ''",
                "Acme,Initech,acme labs,100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE Industry IN ('', 'Finance')", "Globex,Initech");
    assert_rows("SELECT LastName FROM Contact WHERE AccountId = ''", "Orphan");
}

static void
test_like_wildcards_and_escapes(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account WHERE Name LIKE 'ac%'", "Acme,acme labs");
    assert_rows("SELECT Name FROM Account WHERE Name LIKE 'ACME'", "Acme");
    assert_rows("SELECT Name FROM Account WHERE Name LIKE '_lobex'", "Globex");
    assert_rows("SELECT Name FROM Account WHERE Name LIKE '%\\%%'", "100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE Name LIKE '100\\% Pure\\_C_'", "100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE Name LIKE '%e\\_%'", "100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE Name LIKE '%x\\_%'", "");
    assert_rows("SELECT Name FROM Account WHERE Name LIKE '%e_%'",
                "Globex,Initech,acme labs,100% Pure_Co");
    /* SQLite refuses LIKE patterns over 50,000 bytes: so do we, cleanly */
    sb q = SB_INIT;
    sb_puts(&q, "SELECT Name FROM Account WHERE Name LIKE '");
    for (int i = 0; i < 50001; i++)
        sb_putc(&q, '%');
    sb_puts(&q, "'");
    check_error(q.buf, "MALFORMED_QUERY", 1, 42, "LIKE pattern too long: at most 50000 characters");
    sb_free(&q);
}

static void
test_in_and_not_in(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account WHERE Industry IN ('tech', 'Retail')",
                "Acme,acme labs,100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE Industry NOT IN ('Tech')",
                "Globex,Initech,100% Pure_Co");
    assert_rows("SELECT Name FROM Account WHERE NumberOfEmployees IN (5, 200)",
                "Initech,acme labs");
    assert_rows("SELECT Name FROM Account WHERE Industry IN ('Finance', null)", "Globex,Initech");
    assert_rows("SELECT Name FROM Account WHERE Industry NOT IN ('Finance', null)",
                "Acme,acme labs,100% Pure_Co");
}

static void
test_string_equality_ignores_case(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account WHERE Name = 'ACME'", "Acme");
    assert_rows("SELECT Name FROM Account WHERE Name = 'acme LABS'", "acme labs");
    assert_rows("SELECT Name FROM Account WHERE Name > 'globex' ORDER BY Name", "Initech");
}

static void
test_keywords_and_names_ignore_case(void **state)
{
    (void)state;
    assert_rows("select name from ACCOUNT where NAME like 'A%' order by NAME desc limit 1",
                "acme labs");
    soql_plan *p = compile_ok("select lastname, ACCOUNT.name from contact", false);
    assert_string_equal(p->cols[0].field->name, "LastName");
    assert_string_equal(p->rels[0].name, "Account"); /* canonical spelling */
    soql_plan_free(p);
}

static void
test_string_escapes(void **state)
{
    (void)state;
    assert_rows("SELECT FirstName FROM Contact WHERE LastName = 'O\\'Brien'", "Eve");
    assert_rows("SELECT FirstName FROM Contact WHERE LastName = 'O\\u0027Brien'", "Eve");
    assert_rows("SELECT FirstName FROM Contact WHERE LastName IN ('o\\'brien', 'LEE')", "Ann,Eve");
}

static void
test_parent_fields_left_join(void **state)
{
    (void)state;
    /* no parent -> null; a deleted parent is still joined, as in Salesforce */
    assert_col("SELECT LastName, Account.Name FROM Contact", 1,
               "Acme,Initech,null,Deleted Co,Initech");
    soql_plan *p = compile_ok("SELECT LastName, Account.Name FROM Contact", false);
    sqlite3_stmt *st = prepare_bound(p->sql, p);
    for (int row = 1; sqlite3_step(st) == SQLITE_ROW; row++) {
        assert_string_equal((const char *)sqlite3_column_text(st, 0), con[row]);
        if (row == 3)
            assert_int_equal(sqlite3_column_type(st, p->rels[0].id_col), SQLITE_NULL);
        else
            assert_int_equal(sqlite3_column_type(st, p->rels[0].id_col), SQLITE_TEXT);
    }
    sqlite3_finalize(st);
    soql_plan_free(p);
}

static void
test_where_and_order_on_parent_fields(void **state)
{
    (void)state;
    assert_rows("SELECT LastName FROM Contact WHERE Account.Industry = 'tech'", "Lee,Gone");
    assert_rows("SELECT LastName FROM Contact WHERE Account.Owner.Username = 'ann@x.test'",
                "Lee,Stone,Gone,O'Brien");
    assert_rows("SELECT LastName FROM Contact ORDER BY Account.Name DESC NULLS LAST",
                "Stone,O'Brien,Gone,Lee,Orphan");
    /* a relationship used only in WHERE still gets its join (and an Id column) */
    soql_plan *p = compile_ok("SELECT LastName FROM Contact WHERE Account.Name = 'Acme'", false);
    assert_int_equal(p->nrels, 1);
    assert_int_equal(p->rels[0].id_col, 2);
    soql_plan_free(p);
}

static void
test_multi_level_relationships(void **state)
{
    (void)state;
    const char *q = "SELECT Name, Teacher__r.School__r.Name FROM Course__c "
                    "WHERE Teacher__r.School__r.Name != null";
    assert_rows(q, "Math,Chem");
    assert_col(q, 1, "Acme,Acme");
    assert_col("SELECT Name, Teacher__r.Name, Teacher__r.School__r.Owner.Name FROM Course__c", 2,
               "Ann Admin,null,null,Ann Admin");
    soql_plan *p = compile_ok("SELECT Teacher__r.Name, Teacher__r.School__r.Name FROM Course__c",
                              false);
    assert_int_equal(p->nrels, 2); /* Teacher__r is joined once */
    assert_int_equal(p->rels[1].parent, 0);
    soql_plan_free(p);
}

static void
test_order_by_nulls_and_direction(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account ORDER BY Industry",
                "Globex,Initech,100% Pure_Co,Acme,acme labs");
    assert_rows("SELECT Name FROM Account ORDER BY Industry DESC",
                "Acme,acme labs,100% Pure_Co,Initech,Globex");
    assert_rows("SELECT Name FROM Account ORDER BY Industry ASC NULLS LAST",
                "Initech,100% Pure_Co,Acme,acme labs,Globex");
    assert_rows("SELECT Name FROM Account ORDER BY Industry DESC NULLS FIRST",
                "Globex,Acme,acme labs,100% Pure_Co,Initech");
    assert_rows("SELECT Name FROM Account ORDER BY Industry, Name DESC",
                "Globex,Initech,100% Pure_Co,acme labs,Acme");
    assert_rows("SELECT Name FROM Account ORDER BY AnnualRevenue DESC",
                "Initech,Acme,Globex,100% Pure_Co,acme labs");
}

static void
test_limit_and_offset(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 1", "Acme,acme labs");
    assert_rows("SELECT Name FROM Account ORDER BY Name OFFSET 4", "Initech");
    assert_rows("SELECT Name FROM Account LIMIT 0", "");
    assert_rows("SELECT Name FROM Account LIMIT 2", "Acme,Globex");
    soql_plan *p = compile_ok("SELECT Name FROM Account LIMIT 3 OFFSET 2", false);
    assert_int_equal(p->limit, 3);
    assert_int_equal(p->offset, 2);
    assert_int_equal(count_of(p), 3);
    soql_plan_free(p);
}

static void
test_count(void **state)
{
    (void)state;
    soql_plan *p = compile_ok("SELECT COUNT() FROM Account", false);
    assert_true(p->count_only);
    assert_int_equal(p->ncols, 0);
    assert_int_equal(count_of(p), 5);
    soql_plan_free(p);
    assert_int_equal(count_query("SELECT COUNT() FROM Account", true), 6);
    assert_int_equal(count_query("select count() from Account where Industry = 'Tech'", false), 2);
    assert_int_equal(count_query("SELECT COUNT() FROM Account LIMIT 1", false), 1);
    assert_int_equal(count_query("SELECT COUNT() FROM Account OFFSET 4", false), 1);
    assert_int_equal(count_query("SELECT COUNT() FROM Contact WHERE Account.Name = null", false),
                     1);
}

static void
test_datetime_literals(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Course__c WHERE Start__c > 2024-06-15T00:00:00Z", "Math");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c >= 2024-06-15T01:00:00+02:00",
                "Math,Art");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c < 2024-06-14T20:00:00-04:00", "Art,Bio");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c = 2024-06-15T09:00:00.000Z", "Math");
    /* a date literal against a datetime field means midnight UTC */
    assert_rows("SELECT Name FROM Course__c WHERE Start__c < 2024-06-15", "Art,Bio");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c = null", "Chem");
}

static void
test_relative_date_literals(void **state)
{
    (void)state;
    /* now is 2024-06-15T12:00:00Z */
    assert_rows("SELECT Name FROM Course__c WHERE Start__c = TODAY", "Math");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c = YESTERDAY", "Art");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c = LAST_N_DAYS:1", "Math,Art");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c < TODAY", "Art,Bio");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c > YESTERDAY", "Math");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c != TODAY", "Art,Bio,Chem");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c = THIS_YEAR", "Math,Art,Bio");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c = NEXT_N_DAYS:30", "");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c = LAST_MONTH", "");
    assert_rows("SELECT Name FROM Course__c WHERE Start__c = THIS_MONTH", "Math,Art");
}

static void
test_date_field_comparisons(void **state)
{
    (void)state;
    assert_rows("SELECT LastName FROM Contact WHERE Birthdate > 1988-01-01", "Lee,Gone,O'Brien");
    assert_rows("SELECT LastName FROM Contact WHERE Birthdate = 1985-12-31", "Stone");
    assert_rows("SELECT LastName FROM Contact WHERE Birthdate = TODAY", "Gone");
    assert_rows("SELECT LastName FROM Contact WHERE Birthdate = LAST_N_DAYS:1", "Gone,O'Brien");
    assert_rows("SELECT LastName FROM Contact WHERE Birthdate >= YESTERDAY", "Gone,O'Brien");
    assert_rows("SELECT LastName FROM Contact WHERE Birthdate IN (1990-05-01, 1985-12-31)",
                "Lee,Stone");
}

static void
test_boolean_fields(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Course__c WHERE Active__c = true", "Math,Bio");
    assert_rows("SELECT Name FROM Course__c WHERE Active__c = FALSE", "Art,Chem");
    assert_rows("SELECT Name FROM Course__c WHERE Active__c != true", "Art,Chem");
}

static void
test_id_literals_15_and_18(void **state)
{
    (void)state;
    char q[512], id15[16], lower[19];
    memcpy(id15, acc[3], 15);
    id15[15] = '\0';
    snprintf(q, sizeof q, "SELECT LastName FROM Contact WHERE AccountId = '%s'", id15);
    assert_rows(q, "Stone,O'Brien");
    for (int i = 0; i < 19; i++)
        lower[i] = (char)(con[1][i] >= 'A' && con[1][i] <= 'Z' ? con[1][i] + 32 : con[1][i]);
    memcpy(id15, con[2], 15);
    snprintf(q, sizeof q, "SELECT LastName FROM Contact WHERE Id IN ('%s', '%s')", lower, id15);
    assert_rows(q, "Lee,Stone");
    snprintf(q, sizeof q,
             "SELECT LastName FROM Contact WHERE AccountId != null AND AccountId NOT IN ('%s')",
             acc[1]);
    assert_rows(q, "Stone,Gone,O'Brien");
    snprintf(q, sizeof q, "SELECT Name FROM Account WHERE Id > '%s' ORDER BY Id DESC LIMIT 2",
             acc[3]);
    assert_rows(q, "100% Pure_Co,acme labs");
}

static void
test_includes_excludes(void **state)
{
    (void)state;
    assert_rows("SELECT Name FROM Course__c WHERE Subjects__c INCLUDES ('geometry')", "Math,Chem");
    assert_rows("SELECT Name FROM Course__c WHERE Subjects__c INCLUDES ('Algebra;Geometry', 'Lab')",
                "Math,Chem");
    assert_rows("SELECT Name FROM Course__c WHERE Subjects__c INCLUDES ('Algebra; Lab')", "");
    assert_rows("SELECT Name FROM Course__c WHERE Subjects__c EXCLUDES ('Geometry')", "Art,Bio");
    assert_rows("SELECT Name FROM Course__c WHERE Subjects__c = 'Painting'", "Art");
    assert_rows("SELECT Name FROM Course__c WHERE Subjects__c INCLUDES ('Alg%')", "");
}

static void
test_alias_and_object_prefix(void **state)
{
    (void)state;
    assert_rows("SELECT a.Name FROM Account a WHERE a.Industry = 'Finance'", "Initech");
    assert_rows("SELECT Account.Name FROM Account WHERE Account.Name = 'Globex'", "Globex");
    assert_rows("SELECT Contact.LastName, Contact.Account.Name FROM Contact "
                "WHERE Contact.Id != null ORDER BY Contact.LastName LIMIT 1",
                "Gone");
    /* "Account" on Contact is the relationship, not the object */
    assert_col("SELECT LastName, Account.Name FROM Contact LIMIT 1", 1, "Acme");
}

static void
test_fields_function(void **state)
{
    (void)state;
    const lf_object *acct = schema_object(S, "Account");
    soql_plan *p = compile_ok("SELECT FIELDS(STANDARD) FROM Account", false);
    assert_int_equal(p->ncols, (int)acct->nfields); /* no custom fields on Account */
    soql_plan_free(p);
    p = compile_ok("SELECT Name, FIELDS(ALL) FROM Course__c LIMIT 200", false);
    assert_int_equal(p->ncols, (int)schema_object(S, "Course__c")->nfields);
    assert_string_equal(p->cols[0].field->name, "Name");
    soql_plan_free(p);
    p = compile_ok("SELECT FIELDS(CUSTOM) FROM Course__c LIMIT 10", false);
    assert_int_equal(p->ncols, 4);
    soql_plan_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_unexpected_token),
        cmocka_unit_test(test_err_unexpected_eof),
        cmocka_unit_test(test_err_mixed_and_or_needs_parentheses),
        cmocka_unit_test(test_err_string_literals),
        cmocka_unit_test(test_err_bad_date_literal),
        cmocka_unit_test(test_err_multiline_row_and_column),
        cmocka_unit_test(test_err_window_on_long_statement),
        cmocka_unit_test(test_err_statement_too_long),
        cmocka_unit_test(test_err_nesting_limits),
        cmocka_unit_test(test_long_or_chain),
        cmocka_unit_test(test_err_invalid_type),
        cmocka_unit_test(test_err_invalid_field),
        cmocka_unit_test(test_err_invalid_relationship),
        cmocka_unit_test(test_err_relationship_depth),
        cmocka_unit_test(test_err_literal_types),
        cmocka_unit_test(test_err_literal_types_dates_booleans),
        cmocka_unit_test(test_err_invalid_id),
        cmocka_unit_test(test_err_duplicate_field),
        cmocka_unit_test(test_err_offset_range),
        cmocka_unit_test(test_err_count_combined),
        cmocka_unit_test(test_err_operators_and_field_kinds),
        cmocka_unit_test(test_err_unsupported_constructs),
        cmocka_unit_test(test_plan_shape),
        cmocka_unit_test(test_values_are_bound_parameters),
        cmocka_unit_test(test_select_skips_deleted_rows),
        cmocka_unit_test(test_all_rows_includes_deleted),
        cmocka_unit_test(test_and_or_with_parentheses),
        cmocka_unit_test(test_not_is_two_valued),
        cmocka_unit_test(test_not_equal_matches_null),
        cmocka_unit_test(test_null_comparisons),
        cmocka_unit_test(test_empty_string_means_null),
        cmocka_unit_test(test_like_wildcards_and_escapes),
        cmocka_unit_test(test_in_and_not_in),
        cmocka_unit_test(test_string_equality_ignores_case),
        cmocka_unit_test(test_keywords_and_names_ignore_case),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_parent_fields_left_join),
        cmocka_unit_test(test_where_and_order_on_parent_fields),
        cmocka_unit_test(test_multi_level_relationships),
        cmocka_unit_test(test_order_by_nulls_and_direction),
        cmocka_unit_test(test_limit_and_offset),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_datetime_literals),
        cmocka_unit_test(test_relative_date_literals),
        cmocka_unit_test(test_date_field_comparisons),
        cmocka_unit_test(test_boolean_fields),
        cmocka_unit_test(test_id_literals_15_and_18),
        cmocka_unit_test(test_includes_excludes),
        cmocka_unit_test(test_alias_and_object_prefix),
        cmocka_unit_test(test_fields_function),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
