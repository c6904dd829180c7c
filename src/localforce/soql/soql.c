/*
 * soql: the SOQL compiler. See soql.h.
 *
 * Three stages, each bounded: a tokenizer (on demand, one token of
 * lookahead beyond the current one), a recursive-descent parser that builds
 * a small AST (recursion only through parentheses, at most SOQL_MAX_DEPTH
 * deep), and a compiler that resolves names against the schema, checks
 * literals against field types and writes SQLite SQL with bound parameters.
 * Syntax errors are reported before name errors, as Salesforce does, because
 * the whole statement is parsed before anything is resolved.
 *
 * Null semantics follow SOQL, not SQL: "x != v" and "x NOT IN (...)" match
 * rows where x is null, and NOT negates a two-valued condition (comparisons
 * that SQL would make NULL count as false before NOT applies).
 */
#include "soql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sb.h"
#include "sfid.h"
#include "util.h"

#define SOQL_MAX_LEN      100000 /* characters in a statement, as Salesforce */
#define SOQL_MAX_DEPTH    64     /* nested parentheses in WHERE, as written */
#define SOQL_MAX_NEST     16     /* parentheses in the SQL for WHERE (SQLite's parser stack) */
#define CHAIN_FLAT        200    /* longest flat AND/OR chain handed to SQLite */
#define CHAIN_CHUNK       100    /* longer chains go in parenthesised chunks of this size */
#define SOQL_MAX_HOPS     5      /* relationships in one field path */
#define SOQL_MAX_SEGS     (SOQL_MAX_HOPS + 2) /* + the field + an object/alias prefix */
#define SOQL_MAX_RELS     55     /* distinct parent relationships per query, as Salesforce */
#define SOQL_MAX_PARAMS   20000  /* bound values (SQLite allows 32766) */
#define SOQL_MAX_COLS     1900   /* result columns (SQLite allows 2000) */
#define SOQL_MAX_OFFSET   2000
#define SOQL_FIELDS_LIMIT 200    /* FIELDS(ALL|CUSTOM) needs LIMIT <= 200 */
#define LIKE_MAX          50000  /* bytes in a LIKE pattern (SQLite's limit) */
#define ERR_WINDOW        200    /* statement characters shown around an error */
#define ERR_TOKEN_MAX     120    /* bytes of a token quoted in a message */
#define MS_PER_DAY        86400000LL

/* ------------------------------------------------------------------------ */
/* Tokens                                                                    */

typedef enum {
    TK_EOF, TK_IDENT, TK_STRING, TK_NUMBER, TK_DATE, TK_DATETIME,
    TK_LPAREN, TK_RPAREN, TK_COMMA, TK_DOT, TK_COLON,
    TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE,
} tkind;

typedef struct token {
    tkind  k;
    size_t pos, len; /* byte span in the statement */
} token;

/* ------------------------------------------------------------------------ */
/* AST                                                                       */

typedef struct fpath {      /* a.b.c as written */
    token seg[SOQL_MAX_SEGS];
    int   nseg;
    size_t pos, end;        /* span of the whole path */
} fpath;

typedef enum { SI_FIELD, SI_COUNT, SI_FIELDS } sikind;
typedef enum { FIELDS_ALL, FIELDS_STANDARD, FIELDS_CUSTOM } fields_kind;

typedef struct sel_item {
    sikind      k;
    fpath       path;      /* SI_FIELD */
    fields_kind fk;        /* SI_FIELDS */
    size_t      pos;
} sel_item;

typedef enum { V_NULL, V_TRUE, V_FALSE, V_NUMBER, V_STRING, V_DATE, V_DATETIME, V_DATEFN } vkind;

typedef enum {
    DF_TODAY, DF_YESTERDAY, DF_TOMORROW, DF_LAST_N_DAYS, DF_NEXT_N_DAYS, DF_N_DAYS_AGO,
    DF_LAST_90_DAYS, DF_NEXT_90_DAYS, DF_THIS_MONTH, DF_LAST_MONTH, DF_NEXT_MONTH,
    DF_LAST_N_MONTHS, DF_NEXT_N_MONTHS, DF_THIS_YEAR, DF_LAST_YEAR, DF_NEXT_YEAR,
    DF_LAST_N_YEARS, DF_NEXT_N_YEARS,
} datefn;

typedef struct value {
    vkind   k;
    token   tok;           /* the literal (for V_DATEFN, the name) */
    datefn  fn;
    int64_t n;             /* LAST_N_DAYS:n etc. */
} value;

typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_LIKE, OP_IN, OP_NOT_IN,
               OP_INCLUDES, OP_EXCLUDES } cmpop;

typedef enum { CN_AND, CN_OR, CN_NOT, CN_CMP } cnkind;

typedef struct cnode {
    cnkind         k;
    size_t         pos;    /* where it starts in the statement */
    struct cnode **kids;   /* CN_AND, CN_OR: nkids >= 2; CN_NOT: one */
    int            nkids;
    fpath          path;   /* CN_CMP */
    cmpop          op;
    size_t         op_pos;
    value         *vals;   /* one, or the list of IN/INCLUDES/EXCLUDES */
    int            nvals;
} cnode;

typedef struct order_item {
    fpath path;
    bool  desc;
    bool  nulls_first;
} order_item;

/* ------------------------------------------------------------------------ */
/* The compiler's state                                                      */

typedef struct compiler {
    const lf_schema *s;
    const char      *q;
    size_t           qlen;
    int64_t          now_ms;
    bool             all_rows;
    err_t           *e;

    /* tokenizer: la[0] is the current token, la[1] the next, nla how many are valid */
    size_t lexpos;
    token  la[2];
    int    nla;

    /* everything the parser allocates, freed together */
    void  **allocs;
    size_t  nallocs, cap_allocs;

    /* the parsed statement */
    sel_item   *items;
    int         nitems, cap_items;
    token       obj_tok;
    token       alias_tok;     /* TK_EOF if none */
    cnode      *where;
    order_item *order;
    int         norder, cap_order;
    token       limit_tok, offset_tok; /* TK_EOF if absent */

    /* the plan under construction */
    const lf_object *obj;
    soql_param *params;
    int         nparams, cap_params;
    soql_col   *cols;
    int         ncols, cap_cols;
    soql_rel    rels[SOQL_MAX_RELS];
    const lf_field *rel_ref[SOQL_MAX_RELS]; /* the reference field each rel follows */
    int         nrels;
    bool       *seen[SOQL_MAX_RELS + 1];     /* selected fields per level, by field index */
} compiler;

static void *
c_alloc(compiler *c, size_t n)
{
    void *p = xcalloc(1, n ? n : 1);
    if (c->nallocs == c->cap_allocs) {
        c->cap_allocs = c->cap_allocs ? c->cap_allocs * 2 : 64;
        c->allocs = xrealloc(c->allocs, c->cap_allocs * sizeof *c->allocs);
    }
    c->allocs[c->nallocs++] = p;
    return p;
}

/* Grow an array owned by the compiler's allocation list. */
static void *
c_grow(compiler *c, void *arr, int n, int *cap, size_t elem)
{
    if (n < *cap)
        return arr;
    int ncap = *cap ? *cap * 2 : 8;
    void *p = c_alloc(c, (size_t)ncap * elem);
    if (n)
        memcpy(p, arr, (size_t)n * elem);
    *cap = ncap;
    return p; /* the old block is freed with the rest */
}

/* ------------------------------------------------------------------------ */
/* Errors in Salesforce's layout                                             */

static bool
is_cont(unsigned char ch)
{
    return (ch & 0xC0) == 0x80;
}

/* Characters (code points) in q[a, b). */
static size_t
count_chars(const char *q, size_t a, size_t b)
{
    size_t n = 0;
    for (size_t i = a; i < b; i++)
        n += !is_cont((unsigned char)q[i]);
    return n;
}

/* Fill c->e with "\n<text>\n<spaces>^\nERROR at Row:R:Column:C\n<what>" for the
 * error at byte pos. Returns -1. */
static int
fail_at(compiler *c, size_t pos, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail_at(compiler *c, size_t pos, const char *code, const char *fmt, ...)
{
    const char *q = c->q;
    if (pos > c->qlen)
        pos = c->qlen;
    size_t line_start = 0;
    int row = 1;
    for (size_t i = 0; i < pos; i++)
        if (q[i] == '\n')
            row++, line_start = i + 1;
    size_t line_end = pos;
    while (line_end < c->qlen && q[line_end] != '\n' && q[line_end] != '\r')
        line_end++;

    size_t ws = line_start, we = line_end;
    if (we - ws > ERR_WINDOW) {
        if (pos - ws > ERR_WINDOW / 2)
            ws = pos - ERR_WINDOW / 2;
        we = ws + ERR_WINDOW < line_end ? ws + ERR_WINDOW : line_end;
        if (we - ws < ERR_WINDOW)
            ws = we - ERR_WINDOW > line_start ? we - ERR_WINDOW : line_start;
        if (ws > pos)
            ws = pos;
        while (ws < pos && is_cont((unsigned char)q[ws]))
            ws++;
        while (we > pos && we < line_end && is_cont((unsigned char)q[we]))
            we--;
    }
    size_t col = count_chars(q, line_start, pos) + 1;

    sb m = SB_INIT;
    sb_putc(&m, '\n');
    sb_append(&m, q + ws, we - ws);
    sb_putc(&m, '\n');
    for (size_t i = count_chars(q, ws, pos); i > 0; i--)
        sb_putc(&m, ' ');
    sb_printf(&m, "^\nERROR at Row:%d:Column:%zu\n", row, col);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&m, fmt, ap);
    va_end(ap);
    err_set(c->e, 400, code, "%s", sb_str(&m));
    sb_free(&m);
    return -1;
}

/* s[0, len) for a message, cut at ERR_TOKEN_MAX bytes on a character boundary. */
static void
cut_text(const char *s, size_t len, char *out, size_t outsz)
{
    size_t n = len;
    if (n > ERR_TOKEN_MAX)
        n = ERR_TOKEN_MAX;
    if (n >= outsz)
        n = outsz - 1;
    while (n > 0 && n < len && is_cont((unsigned char)s[n]))
        n--;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* A token's text for a message. */
static void
tok_text(const compiler *c, const token *t, char *out, size_t outsz)
{
    cut_text(c->q + t->pos, t->len, out, outsz);
}

/* Keywords Salesforce does not let us treat as plain identifiers here, with a
 * hint when localforce does not support the clause they start. */
static const struct {
    const char *kw;
    const char *hint;
} unsupported_kw[] = {
    {"GROUP", "GROUP BY"},     {"HAVING", "HAVING"},           {"WITH", "WITH"},
    {"FOR", "FOR VIEW/UPDATE/REFERENCE"}, {"UPDATE", "UPDATE TRACKING/VIEWSTAT"},
    {"USING", "USING SCOPE"},  {"TYPEOF", "TYPEOF"},           {"ALL", "ALL ROWS"},
};

static bool tok_is(const compiler *c, const token *t, const char *kw);

static int
unexpected(compiler *c, const token *t)
{
    if (t->k == TK_EOF)
        return fail_at(c, t->pos, "MALFORMED_QUERY", "unexpected token: <EOF>");
    char buf[ERR_TOKEN_MAX + 1];
    tok_text(c, t, buf, sizeof buf);
    for (size_t i = 0; i < sizeof unsupported_kw / sizeof unsupported_kw[0]; i++)
        if (tok_is(c, t, unsupported_kw[i].kw))
            return fail_at(c, t->pos, "MALFORMED_QUERY",
                           "unexpected token: '%s' (localforce does not support %s)", buf,
                           unsupported_kw[i].hint);
    return fail_at(c, t->pos, "MALFORMED_QUERY", "unexpected token: '%s'", buf);
}

static int
unsupported(compiler *c, size_t pos, const char *what)
{
    return fail_at(c, pos, "MALFORMED_QUERY", "localforce does not support %s", what);
}

/* ------------------------------------------------------------------------ */
/* Tokenizer                                                                 */

static bool
is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static bool
is_alpha(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool
is_ident_char(int ch)
{
    return is_alpha(ch) || is_digit(ch) || ch == '_';
}

static bool
is_space(int ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static int
hexval(int ch)
{
    if (is_digit(ch))
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static void
put_utf8(sb *out, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12)), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18)), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    sb_append(out, b, n);
}

/* Four hex digits at p (within end) as a number, or -1. */
static long
hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

typedef enum { DEC_CHECK, DEC_PLAIN, DEC_LIKE } decmode;

/* Append one decoded character to out for the given mode: in a LIKE pattern the
 * characters %, _ and \ that stand for themselves are escaped with \. */
static void
dec_put(sb *out, decmode mode, uint32_t cp)
{
    if (out == NULL)
        return;
    if (mode == DEC_LIKE && (cp == '%' || cp == '_' || cp == '\\'))
        sb_putc(out, '\\');
    put_utf8(out, cp);
}

/* Decode the string literal t (quotes included in its span). DEC_CHECK only
 * validates (out may be NULL). On a bad escape sequence fails with
 * Salesforce's message. */
static int
decode_string(compiler *c, const token *t, decmode mode, sb *out)
{
    const char *p = c->q + t->pos + 1, *end = c->q + t->pos + t->len - 1;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (ch != '\\') {
            /* raw bytes pass through; in a LIKE pattern % and _ are wildcards */
            if (out)
                sb_putc(out, (char)ch);
            p++;
            continue;
        }
        const char *esc = p;
        char e = p[1];
        p += 2;
        switch (e) {
        case 'n': case 'N': dec_put(out, mode, '\n'); break;
        case 'r': case 'R': dec_put(out, mode, '\r'); break;
        case 't': case 'T': dec_put(out, mode, '\t'); break;
        case 'b': case 'B': dec_put(out, mode, '\b'); break;
        case 'f': case 'F': dec_put(out, mode, '\f'); break;
        case '"': dec_put(out, mode, '"'); break;
        case '\'': dec_put(out, mode, '\''); break;
        case '\\': dec_put(out, mode, '\\'); break;
        case '%':
        case '_':
            /* LIKE: the literal character; elsewhere simply the character */
            if (out && mode == DEC_LIKE)
                sb_putc(out, '\\');
            if (out)
                sb_putc(out, e);
            break;
        case 'u':
        case 'U': {
            long cp = hex4(p, end);
            if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 10 && p[4] == '\\' &&
                (p[5] == 'u' || p[5] == 'U')) {
                long lo = hex4(p + 6, end);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    dec_put(out, mode, (uint32_t)(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)));
                    p += 10;
                    break;
                }
            }
            if (cp > 0 && (cp < 0xD800 || cp > 0xDFFF)) {
                dec_put(out, mode, (uint32_t)cp);
                p += 4;
                break;
            }
            goto bad_escape;
        }
        default:
        bad_escape: {
            char buf[ERR_TOKEN_MAX + 1];
            tok_text(c, t, buf, sizeof buf);
            int n = 2; /* the backslash and the whole character after it */
            while (esc + n < end && is_cont((unsigned char)esc[n]))
                n++;
            return fail_at(c, (size_t)(esc - c->q), "MALFORMED_QUERY",
                           "Invalid string literal %s. Illegal character sequence '%.*s' in "
                           "string literal.",
                           buf, n, esc);
        }
        }
    }
    return 0;
}

/* Does q[i..] start with the shape YYYY-MM-DD? */
static bool
date_shape(const char *q, size_t i, size_t len)
{
    if (len - i < 10)
        return false;
    for (int k = 0; k < 10; k++) {
        char ch = q[i + k];
        if (k == 4 || k == 7 ? ch != '-' : !is_digit(ch))
            return false;
    }
    return true;
}

/* Is q[a, b) a complete SOQL datetime: YYYY-MM-DDThh:mm:ss[.f+](Z|+hh:mm|-hh:mm|+hhmm|-hhmm)? */
static bool
datetime_valid(const char *q, size_t a, size_t b)
{
    char buf[48];
    if (b - a >= sizeof buf)
        return false;
    memcpy(buf, q + a, b - a);
    buf[b - a] = '\0';
    const char *p = buf + 11;
    for (int k = 0; k < 8; k++)
        if (k == 2 || k == 5 ? p[k] != ':' : !is_digit(p[k]))
            return false;
    p += 8;
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return false;
        while (is_digit(*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        p++;
        if (!is_digit(p[0]) || !is_digit(p[1]))
            return false;
        p += 2;
        if (*p == ':')
            p++;
        if (!is_digit(p[0]) || !is_digit(p[1]))
            return false;
        p += 2;
    } else {
        return false;
    }
    int64_t ms;
    return *p == '\0' && util_parse_datetime(buf, &ms) == 0;
}

/* Scan one token at c->lexpos. */
static int
lex(compiler *c, token *t)
{
    const char *q = c->q;
    size_t i = c->lexpos, len = c->qlen;
    while (i < len && is_space((unsigned char)q[i]))
        i++;
    t->pos = i;
    t->len = 0;
    t->k = TK_EOF;
    if (i >= len) {
        c->lexpos = i;
        return 0;
    }
    unsigned char ch = (unsigned char)q[i];
    size_t j = i + 1;
    if (is_alpha(ch) || ch == '_') {
        while (j < len && is_ident_char((unsigned char)q[j]))
            j++;
        t->k = TK_IDENT;
    } else if (is_digit(ch) && date_shape(q, i, len)) {
        j = i + 10;
        t->k = TK_DATE;
        if (j < len && (q[j] == 'T' || q[j] == 't')) {
            j++;
            while (j < len && (is_digit((unsigned char)q[j]) || q[j] == ':' || q[j] == '.'))
                j++;
            if (j < len && (q[j] == 'Z' || q[j] == 'z')) {
                j++;
            } else if (j < len && (q[j] == '+' || q[j] == '-')) {
                j++;
                while (j < len && (is_digit((unsigned char)q[j]) || q[j] == ':'))
                    j++;
            }
            t->k = TK_DATETIME;
        }
        t->len = j - i;
        int y, m, d;
        char dbuf[11];
        memcpy(dbuf, q + i, 10);
        dbuf[10] = '\0';
        bool ok = t->k == TK_DATE ? util_parse_date(dbuf, &y, &m, &d) == 0
                                  : datetime_valid(q, i, j);
        if (!ok)
            return unexpected(c, t);
    } else if (is_digit(ch) ||
               ((ch == '-' || ch == '+') && j < len && is_digit((unsigned char)q[j]))) {
        while (j < len && is_digit((unsigned char)q[j]))
            j++;
        if (j + 1 < len && q[j] == '.' && is_digit((unsigned char)q[j + 1])) {
            j++;
            while (j < len && is_digit((unsigned char)q[j]))
                j++;
        }
        t->k = TK_NUMBER;
    } else if (ch == '\'') {
        while (j < len && q[j] != '\'') {
            if (q[j] == '\\' && j + 1 < len)
                j++;
            j++;
        }
        if (j >= len) { /* ANTLR's message, 0-based column */
            size_t ls = len;
            while (ls > 0 && q[ls - 1] != '\n')
                ls--;
            int row = 1;
            for (size_t k = 0; k < len; k++)
                row += q[k] == '\n';
            return fail_at(c, len, "MALFORMED_QUERY",
                           "line %d:%zu mismatched character '<EOF>' expecting '''", row,
                           count_chars(q, ls, len));
        }
        j++;
        t->k = TK_STRING;
        t->len = j - i;
        if (decode_string(c, t, DEC_CHECK, NULL) != 0)
            return -1;
    } else {
        switch (ch) {
        case '(': t->k = TK_LPAREN; break;
        case ')': t->k = TK_RPAREN; break;
        case ',': t->k = TK_COMMA; break;
        case '.': t->k = TK_DOT; break;
        case ':': t->k = TK_COLON; break;
        case '=': t->k = TK_EQ; break;
        case '!':
            if (j < len && q[j] == '=')
                j++, t->k = TK_NE;
            break;
        case '<':
            t->k = TK_LT;
            if (j < len && q[j] == '=')
                j++, t->k = TK_LE;
            else if (j < len && q[j] == '>')
                j++, t->k = TK_NE;
            break;
        case '>':
            t->k = TK_GT;
            if (j < len && q[j] == '=')
                j++, t->k = TK_GE;
            break;
        default: break;
        }
        if (t->k == TK_EOF) { /* a character SOQL has no use for */
            while (j < len && is_cont((unsigned char)q[j]))
                j++;
            t->k = TK_IDENT; /* only so that unexpected() quotes it */
            t->len = j - i;
            return unexpected(c, t);
        }
    }
    t->len = j - i;
    c->lexpos = j;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Parser: statement text -> AST                                             */

/* The k-th token from the current one (k is 0 or 1); NULL on a lexical error. */
static token *
peek(compiler *c, int k)
{
    while (c->nla <= k) {
        if (lex(c, &c->la[c->nla]) != 0)
            return NULL;
        c->nla++;
    }
    return &c->la[k];
}

/* Drop the current token (peek(c, 0) must have succeeded). */
static void
advance(compiler *c)
{
    c->la[0] = c->la[1];
    c->nla--;
}

static bool
tok_is(const compiler *c, const token *t, const char *kw)
{
    size_t n = strlen(kw);
    return t->k == TK_IDENT && t->len == n && strncasecmp(c->q + t->pos, kw, n) == 0;
}

/* SOQL's reserved words: never a field, object or alias name. */
static const char *const reserved_words[] = {
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES",
    "LAST", "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH",
};

static bool
is_reserved(const compiler *c, const token *t)
{
    if (t->k != TK_IDENT || t->len > 8)
        return false;
    for (size_t i = 0; i < sizeof reserved_words / sizeof reserved_words[0]; i++)
        if (tok_is(c, t, reserved_words[i]))
            return true;
    return false;
}

/* 1 if the current token is keyword kw (and consume it), 0 if not, -1 on error. */
static int
accept_kw(compiler *c, const char *kw)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (!tok_is(c, t, kw))
        return 0;
    advance(c);
    return 1;
}

static int
expect_kw(compiler *c, const char *kw)
{
    int r = accept_kw(c, kw);
    if (r < 0)
        return -1;
    return r ? 0 : unexpected(c, &c->la[0]);
}

static int
expect_tk(compiler *c, tkind k)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (t->k != k)
        return unexpected(c, t);
    advance(c);
    return 0;
}

/* An identifier that is not a reserved word. */
static int
parse_ident(compiler *c, token *out)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (t->k != TK_IDENT || is_reserved(c, t))
        return unexpected(c, t);
    *out = *t;
    advance(c);
    return 0;
}

static int
too_many_levels(compiler *c, size_t pos)
{
    return fail_at(c, pos, "MALFORMED_QUERY",
                   "SOQL statements cannot query more than %d levels of child-to-parent "
                   "relationships",
                   SOQL_MAX_HOPS);
}

/* name(.name)* */
static int
parse_path(compiler *c, fpath *p)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    p->pos = t->pos;
    p->nseg = 0;
    for (;;) {
        token id;
        if (parse_ident(c, &id) != 0)
            return -1;
        if (p->nseg == SOQL_MAX_SEGS)
            return too_many_levels(c, p->pos);
        p->seg[p->nseg++] = id;
        p->end = id.pos + id.len;
        if ((t = peek(c, 0)) == NULL)
            return -1;
        if (t->k != TK_DOT)
            return 0;
        advance(c);
    }
}

/* A function call where localforce takes none: name it in the error. */
static int
unsupported_function(compiler *c, const token *t)
{
    char buf[ERR_TOKEN_MAX + 1], what[ERR_TOKEN_MAX + 32];
    tok_text(c, t, buf, sizeof buf);
    snprintf(what, sizeof what, "the function %s()", buf);
    return unsupported(c, t->pos, what);
}

static int
parse_select_item(compiler *c, sel_item *it)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    it->pos = t->pos;
    if (t->k == TK_LPAREN) {
        token *t1 = peek(c, 1);
        if (t1 == NULL)
            return -1;
        if (tok_is(c, t1, "SELECT"))
            return unsupported(c, c->la[0].pos, "child relationship subqueries");
        return unexpected(c, &c->la[0]);
    }
    if (t->k != TK_IDENT || is_reserved(c, t))
        return unexpected(c, t);
    if (tok_is(c, t, "TYPEOF"))
        return unsupported(c, t->pos, "TYPEOF");
    token *t1 = peek(c, 1);
    if (t1 == NULL)
        return -1;
    t = &c->la[0];
    if (t1->k != TK_LPAREN) {
        it->k = SI_FIELD;
        return parse_path(c, &it->path);
    }
    token name = *t;
    if (tok_is(c, &name, "COUNT")) {
        advance(c), advance(c);
        if ((t = peek(c, 0)) == NULL)
            return -1;
        if (t->k != TK_RPAREN)
            return unsupported(c, name.pos,
                               "aggregate queries (COUNT(field), GROUP BY); use COUNT()");
        advance(c);
        it->k = SI_COUNT;
        return 0;
    }
    if (tok_is(c, &name, "FIELDS")) {
        advance(c), advance(c);
        if ((t = peek(c, 0)) == NULL)
            return -1;
        if (tok_is(c, t, "ALL"))
            it->fk = FIELDS_ALL;
        else if (tok_is(c, t, "STANDARD"))
            it->fk = FIELDS_STANDARD;
        else if (tok_is(c, t, "CUSTOM"))
            it->fk = FIELDS_CUSTOM;
        else
            return unexpected(c, t);
        advance(c);
        it->k = SI_FIELDS;
        return expect_tk(c, TK_RPAREN);
    }
    return unsupported_function(c, &name);
}

static int
parse_select_list(compiler *c)
{
    for (;;) {
        c->items = c_grow(c, c->items, c->nitems, &c->cap_items, sizeof *c->items);
        sel_item *it = &c->items[c->nitems];
        memset(it, 0, sizeof *it);
        if (parse_select_item(c, it) != 0)
            return -1;
        c->nitems++;
        token *t = peek(c, 0);
        if (t == NULL)
            return -1;
        if (t->k != TK_COMMA)
            return 0;
        advance(c);
    }
}

/* Date literals: name, range kind, whether it takes ":n", and the largest n. */
static const struct {
    const char *name;
    datefn      fn;
    bool        takes_n;
    int64_t     max_n;
} date_literals[] = {
    {"TODAY", DF_TODAY, false, 0},
    {"YESTERDAY", DF_YESTERDAY, false, 0},
    {"TOMORROW", DF_TOMORROW, false, 0},
    {"LAST_N_DAYS", DF_LAST_N_DAYS, true, 100000},
    {"NEXT_N_DAYS", DF_NEXT_N_DAYS, true, 100000},
    {"N_DAYS_AGO", DF_N_DAYS_AGO, true, 100000},
    {"LAST_90_DAYS", DF_LAST_90_DAYS, false, 0},
    {"NEXT_90_DAYS", DF_NEXT_90_DAYS, false, 0},
    {"THIS_MONTH", DF_THIS_MONTH, false, 0},
    {"LAST_MONTH", DF_LAST_MONTH, false, 0},
    {"NEXT_MONTH", DF_NEXT_MONTH, false, 0},
    {"LAST_N_MONTHS", DF_LAST_N_MONTHS, true, 12000},
    {"NEXT_N_MONTHS", DF_NEXT_N_MONTHS, true, 12000},
    {"THIS_YEAR", DF_THIS_YEAR, false, 0},
    {"LAST_YEAR", DF_LAST_YEAR, false, 0},
    {"NEXT_YEAR", DF_NEXT_YEAR, false, 0},
    {"LAST_N_YEARS", DF_LAST_N_YEARS, true, 1000},
    {"NEXT_N_YEARS", DF_NEXT_N_YEARS, true, 1000},
};

/* Does an identifier look like one of SOQL's other date literals (weeks,
 * quarters, fiscal periods), which localforce does not implement? */
static bool
other_date_literal(const compiler *c, const token *t)
{
    static const char *const parts[] = {"WEEK", "QUARTER", "FISCAL", "_AGO", "LAST_", "NEXT_",
                                        "THIS_"};
    char buf[64];
    if (t->len >= sizeof buf)
        return false;
    for (size_t i = 0; i < t->len; i++) {
        char ch = c->q[t->pos + i];
        buf[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    }
    buf[t->len] = '\0';
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strstr(buf, parts[i]))
            return true;
    return false;
}

/* An unsigned integer literal's value; -1 if t is not one or it is too large for int64. */
static int64_t
uint_value(const compiler *c, const token *t)
{
    if (t->k != TK_NUMBER || !is_digit((unsigned char)c->q[t->pos]))
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < t->len; i++) {
        char ch = c->q[t->pos + i];
        if (!is_digit((unsigned char)ch))
            return -1;
        if (v > (INT64_MAX - (ch - '0')) / 10)
            return -2;
        v = v * 10 + (ch - '0');
    }
    return v;
}

static int
parse_value(compiler *c, value *v)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    v->tok = *t;
    switch (t->k) {
    case TK_STRING: v->k = V_STRING; break;
    case TK_NUMBER: v->k = V_NUMBER; break;
    case TK_DATE: v->k = V_DATE; break;
    case TK_DATETIME: v->k = V_DATETIME; break;
    case TK_IDENT:
        if (tok_is(c, t, "NULL")) {
            v->k = V_NULL;
            break;
        }
        if (tok_is(c, t, "TRUE")) {
            v->k = V_TRUE;
            break;
        }
        if (tok_is(c, t, "FALSE")) {
            v->k = V_FALSE;
            break;
        }
        for (size_t i = 0; i < sizeof date_literals / sizeof date_literals[0]; i++) {
            if (!tok_is(c, t, date_literals[i].name))
                continue;
            v->k = V_DATEFN;
            v->fn = date_literals[i].fn;
            advance(c);
            if (!date_literals[i].takes_n)
                return 0;
            if (expect_tk(c, TK_COLON) != 0 || (t = peek(c, 0)) == NULL)
                return -1;
            int64_t n = uint_value(c, t);
            if (n < 0 || n > date_literals[i].max_n)
                return unexpected(c, t);
            v->n = n;
            advance(c);
            return 0;
        }
        if (other_date_literal(c, t)) {
            char buf[ERR_TOKEN_MAX + 1], what[ERR_TOKEN_MAX + 32];
            tok_text(c, t, buf, sizeof buf);
            snprintf(what, sizeof what, "the date literal %s", buf);
            return unsupported(c, t->pos, what);
        }
        return unexpected(c, t);
    default: return unexpected(c, t);
    }
    advance(c);
    return 0;
}

static int parse_logical(compiler *c, int depth, cnode **out);

/* field op value */
static int
parse_field_expr(compiler *c, cnode **out)
{
    token *t = peek(c, 0), *t1;
    if (t == NULL || (t1 = peek(c, 1)) == NULL)
        return -1;
    t = &c->la[0];
    if (t->k == TK_IDENT && !is_reserved(c, t) && t1->k == TK_LPAREN)
        return unsupported_function(c, t);
    cnode *n = c_alloc(c, sizeof *n);
    n->k = CN_CMP;
    n->pos = t->pos;
    if (parse_path(c, &n->path) != 0 || (t = peek(c, 0)) == NULL)
        return -1;
    n->op_pos = t->pos;
    switch (t->k) {
    case TK_EQ: n->op = OP_EQ; break;
    case TK_NE: n->op = OP_NE; break;
    case TK_LT: n->op = OP_LT; break;
    case TK_LE: n->op = OP_LE; break;
    case TK_GT: n->op = OP_GT; break;
    case TK_GE: n->op = OP_GE; break;
    default:
        if (tok_is(c, t, "LIKE")) {
            n->op = OP_LIKE;
        } else if (tok_is(c, t, "IN")) {
            n->op = OP_IN;
        } else if (tok_is(c, t, "INCLUDES")) {
            n->op = OP_INCLUDES;
        } else if (tok_is(c, t, "EXCLUDES")) {
            n->op = OP_EXCLUDES;
        } else if (tok_is(c, t, "NOT")) {
            advance(c);
            if ((t = peek(c, 0)) == NULL)
                return -1;
            if (!tok_is(c, t, "IN"))
                return unexpected(c, t);
            n->op = OP_NOT_IN;
        } else {
            return unexpected(c, t);
        }
    }
    advance(c);
    if (n->op == OP_IN || n->op == OP_NOT_IN || n->op == OP_INCLUDES || n->op == OP_EXCLUDES) {
        if ((t = peek(c, 0)) == NULL || (t1 = peek(c, 1)) == NULL)
            return -1;
        t = &c->la[0];
        if (t->k == TK_LPAREN && tok_is(c, t1, "SELECT"))
            return unsupported(c, t->pos, "semi-join subqueries (IN (SELECT ...))");
        if (expect_tk(c, TK_LPAREN) != 0)
            return -1;
        int cap = 0;
        for (;;) {
            n->vals = c_grow(c, n->vals, n->nvals, &cap, sizeof *n->vals);
            if (parse_value(c, &n->vals[n->nvals]) != 0)
                return -1;
            n->nvals++;
            if ((t = peek(c, 0)) == NULL)
                return -1;
            if (t->k != TK_COMMA)
                break;
            advance(c);
        }
        if (expect_tk(c, TK_RPAREN) != 0)
            return -1;
    } else {
        n->vals = c_alloc(c, sizeof *n->vals);
        n->nvals = 1;
        if (parse_value(c, &n->vals[0]) != 0)
            return -1;
    }
    *out = n;
    return 0;
}

/* '(' logical ')' | field expression */
static int
parse_conditional(compiler *c, int depth, cnode **out)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (t->k != TK_LPAREN)
        return parse_field_expr(c, out);
    if (depth >= SOQL_MAX_DEPTH)
        return fail_at(c, t->pos, "MALFORMED_QUERY",
                       "conditions are nested too deeply: at most %d levels of parentheses",
                       SOQL_MAX_DEPTH);
    advance(c);
    if (parse_logical(c, depth + 1, out) != 0)
        return -1;
    return expect_tk(c, TK_RPAREN);
}

/* NOT cond | cond (AND cond)* | cond (OR cond)*: SOQL wants parentheses to mix
 * AND and OR, and NOT applies to one condition and ends the expression. */
static int
parse_logical(compiler *c, int depth, cnode **out)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (tok_is(c, t, "NOT")) {
        size_t pos = t->pos;
        advance(c);
        cnode *n = c_alloc(c, sizeof *n);
        n->k = CN_NOT;
        n->pos = pos;
        n->kids = c_alloc(c, sizeof *n->kids);
        n->nkids = 1;
        *out = n;
        return parse_conditional(c, depth, &n->kids[0]);
    }
    cnode *first;
    if (parse_conditional(c, depth, &first) != 0 || (t = peek(c, 0)) == NULL)
        return -1;
    const char *kw = tok_is(c, t, "AND") ? "AND" : tok_is(c, t, "OR") ? "OR" : NULL;
    if (kw == NULL) {
        *out = first;
        return 0;
    }
    cnode *n = c_alloc(c, sizeof *n);
    n->k = kw[0] == 'A' ? CN_AND : CN_OR;
    n->pos = first->pos;
    int cap = 0;
    n->kids = c_grow(c, n->kids, n->nkids, &cap, sizeof *n->kids);
    n->kids[n->nkids++] = first;
    while (tok_is(c, t, kw)) {
        advance(c);
        n->kids = c_grow(c, n->kids, n->nkids, &cap, sizeof *n->kids);
        if (parse_conditional(c, depth, &n->kids[n->nkids]) != 0 || (t = peek(c, 0)) == NULL)
            return -1;
        n->nkids++;
    }
    *out = n;
    return 0;
}

static int
parse_order_by(compiler *c)
{
    for (;;) {
        c->order = c_grow(c, c->order, c->norder, &c->cap_order, sizeof *c->order);
        order_item *o = &c->order[c->norder];
        memset(o, 0, sizeof *o);
        token *t = peek(c, 0), *t1;
        if (t == NULL || (t1 = peek(c, 1)) == NULL)
            return -1;
        t = &c->la[0];
        if (t->k == TK_IDENT && !is_reserved(c, t) && t1->k == TK_LPAREN)
            return unsupported_function(c, t);
        if (parse_path(c, &o->path) != 0)
            return -1;
        c->norder++;
        int r;
        if ((r = accept_kw(c, "DESC")) < 0)
            return -1;
        o->desc = r == 1;
        if (!o->desc && accept_kw(c, "ASC") < 0)
            return -1;
        o->nulls_first = !o->desc;
        if ((r = accept_kw(c, "NULLS")) < 0)
            return -1;
        if (r) {
            if ((r = accept_kw(c, "FIRST")) < 0)
                return -1;
            if (r)
                o->nulls_first = true;
            else if (expect_kw(c, "LAST") != 0)
                return -1;
            else
                o->nulls_first = false;
        }
        if ((t = peek(c, 0)) == NULL)
            return -1;
        if (t->k != TK_COMMA)
            return 0;
        advance(c);
    }
}

/* LIMIT n / OFFSET n: an unsigned integer literal. */
static int
parse_count_clause(compiler *c, const char *kw, token *out)
{
    int r = accept_kw(c, kw);
    if (r <= 0)
        return r;
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (uint_value(c, t) == -1)
        return unexpected(c, t);
    *out = *t;
    advance(c);
    return 0;
}

/* Keywords that end the FROM clause and so cannot be an alias. */
static const char *const after_from[] = {"ORDER", "OFFSET", "FOR", "UPDATE", "USING", "ALL"};

static int
parse_statement(compiler *c)
{
    if (expect_kw(c, "SELECT") != 0 || parse_select_list(c) != 0 || expect_kw(c, "FROM") != 0 ||
        parse_ident(c, &c->obj_tok) != 0)
        return -1;
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (t->k == TK_IDENT && !is_reserved(c, t)) {
        bool kw = false;
        for (size_t i = 0; i < sizeof after_from / sizeof after_from[0]; i++)
            kw = kw || tok_is(c, t, after_from[i]);
        if (!kw) {
            c->alias_tok = *t;
            advance(c);
        }
    }
    int r = accept_kw(c, "WHERE");
    if (r < 0 || (r == 1 && parse_logical(c, 0, &c->where) != 0))
        return -1;
    if ((r = accept_kw(c, "ORDER")) < 0)
        return -1;
    if (r == 1 && (expect_kw(c, "BY") != 0 || parse_order_by(c) != 0))
        return -1;
    if (parse_count_clause(c, "LIMIT", &c->limit_tok) != 0 ||
        parse_count_clause(c, "OFFSET", &c->offset_tok) != 0)
        return -1;
    if ((t = peek(c, 0)) == NULL)
        return -1;
    return t->k == TK_EOF ? 0 : unexpected(c, t);
}

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

static bool
span_is(const compiler *c, const token *t, const char *name)
{
    size_t n = strlen(name);
    return t->len == n && strncasecmp(c->q + t->pos, name, n) == 0;
}

static int
field_index(const compiler *c, const lf_object *o, const token *t)
{
    for (size_t i = 0; i < o->nfields; i++)
        if (span_is(c, t, o->fields[i]->name))
            return (int)i;
    return -1;
}

static const lf_field *
rel_field(const compiler *c, const lf_object *o, const token *t)
{
    for (size_t i = 0; i < o->nfields; i++) {
        const lf_field *f = o->fields[i];
        if (f->type == FT_REFERENCE && f->relationship_name && span_is(c, t, f->relationship_name))
            return f;
    }
    return NULL;
}

/* t<rel+1>."Field" */
static void
put_col(sb *s, int rel, const lf_field *f)
{
    sb_printf(s, "t%d.", rel + 1);
    sb_sql_ident(s, f->name);
}

static void
path_text(const compiler *c, const fpath *p, char *out, size_t outsz)
{
    token t = {TK_IDENT, p->pos, p->end - p->pos};
    tok_text(c, &t, out, outsz);
}

/* The join for following ref from rel parent (-1: the FROM object), made once. */
static int
get_rel(compiler *c, int parent, const lf_field *ref, const lf_object *target, size_t pos)
{
    for (int i = 0; i < c->nrels; i++)
        if (c->rels[i].parent == parent && c->rel_ref[i] == ref)
            return i;
    if (c->nrels == SOQL_MAX_RELS)
        return fail_at(c, pos, "MALFORMED_QUERY",
                       "SOQL statements cannot query more than %d child-to-parent relationships",
                       SOQL_MAX_RELS);
    soql_rel *r = &c->rels[c->nrels];
    r->name = ref->relationship_name;
    r->object = target;
    r->parent = parent;
    r->id_col = 0;
    c->rel_ref[c->nrels] = ref;
    return c->nrels++;
}

typedef struct fref {
    int              rel;  /* -1: the FROM object */
    const lf_field  *f;
    int              idx;  /* f's index in o->fields */
    const lf_object *o;    /* the object f belongs to */
} fref;

/* Resolve a field path: walk its relationships (adding joins) to the field. */
static int
resolve(compiler *c, const fpath *p, fref *out)
{
    const lf_object *o = c->obj;
    int rel = -1, i = 0, n = p->nseg;
    char buf[ERR_TOKEN_MAX + 1];
    /* "Account.Name" FROM Account, or "a.Name" FROM Account a */
    if (n >= 2 && rel_field(c, o, &p->seg[0]) == NULL &&
        ((c->alias_tok.k == TK_IDENT && c->alias_tok.len == p->seg[0].len &&
          strncasecmp(c->q + c->alias_tok.pos, c->q + p->seg[0].pos, p->seg[0].len) == 0) ||
         span_is(c, &p->seg[0], o->name)))
        i = 1;
    if (n - 1 - i > SOQL_MAX_HOPS)
        return too_many_levels(c, p->pos);
    for (; i < n - 1; i++) {
        const lf_field *ref = rel_field(c, o, &p->seg[i]);
        const lf_object *target = ref && ref->reference_to ? schema_object(c->s, ref->reference_to)
                                                           : NULL;
        if (target == NULL) {
            tok_text(c, &p->seg[i], buf, sizeof buf);
            return fail_at(c, p->pos, "INVALID_FIELD",
                           "Didn't understand relationship '%s' in field path. If you are "
                           "attempting to use a custom relationship, be sure to append the '__r' "
                           "after the custom relationship name. Please reference your WSDL or the "
                           "describe call for the appropriate names.",
                           buf);
        }
        if ((rel = get_rel(c, rel, ref, target, p->pos)) < 0)
            return -1;
        o = target;
    }
    int fi = field_index(c, o, &p->seg[n - 1]);
    if (fi < 0) {
        tok_text(c, &p->seg[n - 1], buf, sizeof buf);
        return fail_at(c, p->pos, "INVALID_FIELD",
                       "No such column '%s' on entity '%s'. If you are attempting to use a custom "
                       "field, be sure to append the '__c' after the custom field name. Please "
                       "reference your WSDL or the describe call for the appropriate names.",
                       buf, o->name);
    }
    out->rel = rel;
    out->f = o->fields[fi];
    out->idx = fi;
    out->o = o;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Literals                                                                  */

typedef enum { FC_TEXT, FC_ID, FC_MULTI, FC_BOOL, FC_INT, FC_REAL, FC_DATE, FC_DATETIME } fclass;

static const struct {
    const char *type;   /* as Salesforce names it in type errors */
    bool        quoted; /* literals of this type are quoted */
} fclass_info[] = {
    [FC_TEXT] = {"string", true},   [FC_ID] = {"id", true},        [FC_MULTI] = {"string", true},
    [FC_BOOL] = {"boolean", false}, [FC_INT] = {"integer", false}, [FC_REAL] = {"double", false},
    [FC_DATE] = {"date", false},    [FC_DATETIME] = {"dateTime", false},
};

static fclass
field_class(const lf_field *f)
{
    switch (f->type) {
    case FT_ID:
    case FT_REFERENCE: return FC_ID;
    case FT_MULTIPICKLIST: return FC_MULTI;
    default: break;
    }
    switch (lf_types[f->type].storage) {
    case ST_BOOL: return FC_BOOL;
    case ST_INT: return FC_INT;
    case ST_REAL: return FC_REAL;
    case ST_DATE: return FC_DATE;
    case ST_DATETIME: return FC_DATETIME;
    default: return FC_TEXT;
    }
}

static const char *
field_type_name(const lf_field *f)
{
    fclass fc = field_class(f);
    return fc == FC_ID ? "id" : lf_types[f->type].name;
}

static int
type_error(compiler *c, const lf_field *f, const value *v)
{
    fclass fc = field_class(f);
    return fail_at(c, v->tok.pos, "INVALID_FIELD",
                   "value of filter criterion for field '%s' must be of type %s and should %sbe "
                   "enclosed in quotes",
                   f->name, fclass_info[fc].type, fclass_info[fc].quoted ? "" : "not ");
}

/* Add a bound parameter (takes s). Returns its number (?N), or -1. */
static int
add_param(compiler *c, size_t pos, soql_ptype type, int64_t i, double r, char *s)
{
    if (c->nparams == SOQL_MAX_PARAMS) {
        free(s);
        return fail_at(c, pos, "MALFORMED_QUERY", "too many values in the query: at most %d",
                       SOQL_MAX_PARAMS);
    }
    if (c->nparams == c->cap_params) {
        c->cap_params = c->cap_params ? c->cap_params * 2 : 16;
        c->params = xrealloc(c->params, (size_t)c->cap_params * sizeof *c->params);
    }
    soql_param *p = &c->params[c->nparams++];
    p->type = type;
    p->i = i;
    p->r = r;
    p->s = s;
    return c->nparams;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* First day of the month k months after y-m. */
static int64_t
month_start(int64_t y, int m, int64_t k)
{
    int64_t t = y * 12 + (m - 1) + k;
    int64_t yy = floor_div(t, 12);
    return days_from_civil(yy, (int)(t - yy * 12) + 1, 1);
}

/* The days [lo, hi) a date literal such as TODAY or LAST_N_DAYS:7 stands for (UTC). */
static void
date_range(const compiler *c, const value *v, int64_t *lo, int64_t *hi)
{
    int64_t d0 = floor_div(c->now_ms, MS_PER_DAY), y, n = v->n;
    int m, d;
    civil_from_days(d0, &y, &m, &d);
    switch (v->fn) {
    case DF_TODAY: *lo = d0, *hi = d0 + 1; break;
    case DF_YESTERDAY: *lo = d0 - 1, *hi = d0; break;
    case DF_TOMORROW: *lo = d0 + 1, *hi = d0 + 2; break;
    case DF_LAST_N_DAYS: *lo = d0 - n, *hi = d0 + 1; break;
    case DF_LAST_90_DAYS: *lo = d0 - 90, *hi = d0 + 1; break;
    case DF_NEXT_N_DAYS: *lo = d0 + 1, *hi = d0 + 1 + n; break;
    case DF_NEXT_90_DAYS: *lo = d0 + 1, *hi = d0 + 91; break;
    case DF_N_DAYS_AGO: *lo = d0 - n, *hi = d0 - n + 1; break;
    case DF_THIS_MONTH: *lo = month_start(y, m, 0), *hi = month_start(y, m, 1); break;
    case DF_LAST_MONTH: *lo = month_start(y, m, -1), *hi = month_start(y, m, 0); break;
    case DF_NEXT_MONTH: *lo = month_start(y, m, 1), *hi = month_start(y, m, 2); break;
    case DF_LAST_N_MONTHS: *lo = month_start(y, m, -n), *hi = month_start(y, m, 0); break;
    case DF_NEXT_N_MONTHS: *lo = month_start(y, m, 1), *hi = month_start(y, m, 1 + n); break;
    case DF_THIS_YEAR: *lo = days_from_civil(y, 1, 1), *hi = days_from_civil(y + 1, 1, 1); break;
    case DF_LAST_YEAR: *lo = days_from_civil(y - 1, 1, 1), *hi = days_from_civil(y, 1, 1); break;
    case DF_NEXT_YEAR:
        *lo = days_from_civil(y + 1, 1, 1), *hi = days_from_civil(y + 2, 1, 1);
        break;
    case DF_LAST_N_YEARS: *lo = days_from_civil(y - n, 1, 1), *hi = days_from_civil(y, 1, 1); break;
    case DF_NEXT_N_YEARS:
        *lo = days_from_civil(y + 1, 1, 1), *hi = days_from_civil(y + 1 + n, 1, 1);
        break;
    }
}

static char *
date_text(int64_t days)
{
    int64_t y;
    int m, d;
    char buf[40];
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, sizeof buf, "%04lld-%02d-%02d", (long long)y, m, d);
    return xstrdup(buf);
}

/* An 18-character ID's checksum must be the one its (case-restored) first 15
 * characters give; sfid_normalize only uses it to restore case. */
static bool
checksum_matches(const char *s, size_t len, const char id[19])
{
    if (len != 18)
        return true;
    for (int i = 15; i < 18; i++) {
        char ch = s[i];
        if ((ch >= 'a' && ch <= 'z' ? ch - 32 : ch) != id[i])
            return false;
    }
    return true;
}

/* A value converted for comparison with a field: null, one parameter, or a
 * range of two ([lo, hi), for date literals such as TODAY). */
typedef enum { CV_NULL, CV_PARAM, CV_RANGE } cvkind;

typedef struct cval {
    cvkind k;
    int    p, p2;
} cval;

/* Check literal v against field f and bind it. mode: how to decode strings;
 * eq: for = != IN NOT IN, where '' means null (the store keeps no empty
 * strings, and Salesforce treats a blank text or id as null). */
static int
convert(compiler *c, const lf_field *f, const value *v, decmode mode, bool eq, cval *out)
{
    size_t pos = v->tok.pos;
    fclass fc = field_class(f);
    out->k = CV_PARAM;
    out->p = out->p2 = -1;
    if (v->k == V_NULL) {
        out->k = CV_NULL;
        return 0;
    }
    switch (fc) {
    case FC_TEXT:
    case FC_MULTI:
    case FC_ID: {
        if (v->k != V_STRING)
            return type_error(c, f, v);
        sb b = SB_INIT;
        if (decode_string(c, &v->tok, fc == FC_ID ? DEC_PLAIN : mode, &b) != 0) {
            sb_free(&b);
            return -1;
        }
        if (b.len == 0 && (eq || fc == FC_ID)) {
            sb_free(&b);
            out->k = CV_NULL;
            return 0;
        }
        if (fc != FC_ID) {
            out->p = add_param(c, pos, SP_TEXT, 0, 0, sb_steal(&b));
            break;
        }
        char id[19];
        if (sfid_normalize(sb_str(&b), id) != 0 || !checksum_matches(sb_str(&b), b.len, id)) {
            char buf[ERR_TOKEN_MAX + 1];
            cut_text(sb_str(&b), b.len, buf, sizeof buf);
            sb_free(&b);
            return fail_at(c, pos, "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: %s", buf);
        }
        sb_free(&b);
        out->p = add_param(c, pos, SP_TEXT, 0, 0, xstrdup(id));
        break;
    }
    case FC_BOOL:
        if (v->k != V_TRUE && v->k != V_FALSE)
            return type_error(c, f, v);
        out->p = add_param(c, pos, SP_INT, v->k == V_TRUE, 0, NULL);
        break;
    case FC_INT:
    case FC_REAL: {
        if (v->k != V_NUMBER)
            return type_error(c, f, v);
        char *txt = xstrndup(c->q + pos, v->tok.len);
        int64_t i;
        double r;
        if (strchr(txt, '.') == NULL && util_parse_i64(txt, &i) == 0) {
            out->p = add_param(c, pos, SP_INT, i, 0, NULL);
        } else if (util_parse_double(txt, &r) == 0) {
            out->p = add_param(c, pos, SP_REAL, 0, r, NULL);
        } else {
            free(txt);
            return fail_at(c, pos, "NUMBER_OUTSIDE_VALID_RANGE",
                           "value of filter criterion for field '%s' is out of range", f->name);
        }
        free(txt);
        break;
    }
    case FC_DATE:
    case FC_DATETIME: {
        bool dt = fc == FC_DATETIME;
        if (v->k == V_DATEFN) {
            int64_t lo = 0, hi = 0;
            date_range(c, v, &lo, &hi);
            out->k = CV_RANGE;
            if (dt) {
                out->p = add_param(c, pos, SP_INT, lo * MS_PER_DAY, 0, NULL);
                out->p2 = out->p < 0 ? -1 : add_param(c, pos, SP_INT, hi * MS_PER_DAY, 0, NULL);
            } else {
                out->p = add_param(c, pos, SP_TEXT, 0, 0, date_text(lo));
                out->p2 = out->p < 0 ? -1 : add_param(c, pos, SP_TEXT, 0, 0, date_text(hi));
            }
            if (out->p2 < 0)
                return -1;
            break;
        }
        if (v->k == V_DATE && !dt) {
            out->p = add_param(c, pos, SP_TEXT, 0, 0, xstrndup(c->q + pos, 10));
        } else if (dt && (v->k == V_DATE || v->k == V_DATETIME)) {
            char *txt = xstrndup(c->q + pos, v->tok.len);
            int64_t ms = 0;
            util_parse_datetime(txt, &ms); /* validated by the tokenizer */
            free(txt);
            out->p = add_param(c, pos, SP_INT, ms, 0, NULL);
        } else {
            return type_error(c, f, v);
        }
        break;
    }
    }
    return out->p < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Conditions -> SQL                                                         */

/* terms joined by op. A long chain is cut into parenthesised chunks: SQLite
 * builds a flat chain as a left-deep tree, and limits the tree's depth. */
static void
join_chain(sb *out, char **terms, int n, const char *op)
{
    bool chunked = n > CHAIN_FLAT;
    for (int i = 0; i < n; i++) {
        if (i)
            sb_printf(out, " %s ", op);
        if (chunked && i % CHAIN_CHUNK == 0)
            sb_putc(out, '(');
        sb_puts(out, terms[i]);
        if (chunked && (i % CHAIN_CHUNK == CHAIN_CHUNK - 1 || i == n - 1))
            sb_putc(out, ')');
    }
}

static void
free_terms(char **terms, int n)
{
    for (int i = 0; i < n; i++)
        free(terms[i]);
    free(terms);
}

/* = != < <= > >= LIKE. *nullable: the SQL may be NULL (meaning false). */
static int
emit_simple(compiler *c, const cnode *n, const lf_field *f, const char *x, sb *out, bool *nullable)
{
    static const char *const op_sql[] = {
        [OP_EQ] = "=", [OP_NE] = "!=", [OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">=",
    };
    cval v;
    if (convert(c, f, &n->vals[0], n->op == OP_LIKE ? DEC_LIKE : DEC_PLAIN,
                n->op == OP_EQ || n->op == OP_NE, &v) != 0)
        return -1;
    if (n->op == OP_LIKE && v.k == CV_PARAM && strlen(c->params[v.p - 1].s) > LIKE_MAX)
        return fail_at(c, n->vals[0].tok.pos, "MALFORMED_QUERY",
                       "LIKE pattern too long: at most %d characters", LIKE_MAX);
    *nullable = true;
    if (v.k == CV_NULL) {
        *nullable = false;
        if (n->op == OP_EQ)
            sb_printf(out, "%s IS NULL", x);
        else if (n->op == OP_NE)
            sb_printf(out, "%s IS NOT NULL", x);
        else
            sb_puts(out, "0");
    } else if (v.k == CV_PARAM) {
        switch (n->op) {
        case OP_EQ: sb_printf(out, "%s IS ?%d", x, v.p), *nullable = false; break;
        case OP_NE: sb_printf(out, "%s IS NOT ?%d", x, v.p), *nullable = false; break;
        case OP_LIKE: sb_printf(out, "%s LIKE ?%d ESCAPE '\\'", x, v.p); break;
        default: sb_printf(out, "%s %s ?%d", x, op_sql[n->op], v.p); break;
        }
    } else {
        switch (n->op) {
        case OP_EQ: sb_printf(out, "(%s >= ?%d AND %s < ?%d)", x, v.p, x, v.p2); break;
        case OP_NE:
            sb_printf(out, "(%s IS NULL OR %s < ?%d OR %s >= ?%d)", x, x, v.p, x, v.p2);
            *nullable = false;
            break;
        case OP_LT: sb_printf(out, "%s < ?%d", x, v.p); break;
        case OP_LE: sb_printf(out, "%s < ?%d", x, v.p2); break;
        case OP_GT: sb_printf(out, "%s >= ?%d", x, v.p2); break;
        default: sb_printf(out, "%s >= ?%d", x, v.p); break; /* OP_GE */
        }
    }
    return 0;
}

/* IN (...) / NOT IN (...) */
static int
emit_in(compiler *c, const cnode *n, const lf_field *f, const char *x, sb *out, bool *nullable)
{
    sb list = SB_INIT;
    bool has_null = false;
    for (int i = 0; i < n->nvals; i++) {
        cval v;
        if (convert(c, f, &n->vals[i], DEC_PLAIN, true, &v) != 0) {
            sb_free(&list);
            return -1;
        }
        if (v.k == CV_RANGE) {
            sb_free(&list);
            return unsupported(c, n->vals[i].tok.pos, "date literals such as TODAY in IN lists");
        }
        if (v.k == CV_NULL) {
            has_null = true;
            continue;
        }
        sb_printf(&list, "%s?%d", list.len ? ", " : "", v.p);
    }
    bool in = n->op == OP_IN;
    *nullable = false;
    if (list.len == 0)
        sb_printf(out, in ? "%s IS NULL" : "%s IS NOT NULL", x);
    else if (in && has_null)
        sb_printf(out, "(%s IS NULL OR %s IN (%s))", x, x, list.buf);
    else if (in)
        sb_printf(out, "%s IN (%s)", x, list.buf), *nullable = true;
    else if (has_null)
        sb_printf(out, "(%s IS NOT NULL AND %s NOT IN (%s))", x, x, list.buf);
    else
        sb_printf(out, "(%s IS NULL OR %s NOT IN (%s))", x, x, list.buf);
    sb_free(&list);
    return 0;
}

/* INCLUDES ('a;b', 'c') on a multipicklist ("a;b;c" in the column): each string
 * is a set of values that must all be present; any of the strings may match. */
static int
emit_includes(compiler *c, const cnode *n, const lf_field *f, const char *x, sb *out,
              bool *nullable)
{
    char **items = xcalloc((size_t)n->nvals, sizeof *items);
    int nitems = 0;
    for (int i = 0; i < n->nvals; i++) {
        const value *v = &n->vals[i];
        if (v->k != V_STRING) {
            free_terms(items, nitems);
            return type_error(c, f, v);
        }
        sb b = SB_INIT;
        decode_string(c, &v->tok, DEC_PLAIN, &b); /* validated by the tokenizer */
        const char *s = sb_str(&b);
        size_t nparts = 1;
        for (const char *p = s; *p; p++)
            nparts += *p == ';';
        char **parts = xcalloc(nparts, sizeof *parts);
        int np = 0;
        for (const char *p = s;;) {
            const char *e = strchr(p, ';');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            const char *a = p, *z = p + len;
            while (a < z && *a == ' ')
                a++;
            while (z > a && z[-1] == ' ')
                z--;
            if (z > a) {
                /* ";value;" inside ";" || x || ";", ASCII case-insensitively (as NOCASE) */
                sb pat = SB_INIT;
                sb_putc(&pat, ';');
                for (const char *q = a; q < z; q++)
                    sb_putc(&pat, (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q));
                sb_putc(&pat, ';');
                int pn = add_param(c, v->tok.pos, SP_TEXT, 0, 0, sb_steal(&pat));
                if (pn < 0) {
                    free_terms(parts, np);
                    free_terms(items, nitems);
                    sb_free(&b);
                    return -1;
                }
                sb t = SB_INIT;
                sb_printf(&t, "instr(';' || lower(%s) || ';', ?%d) > 0", x, pn);
                parts[np++] = sb_steal(&t);
            }
            if (e == NULL)
                break;
            p = e + 1;
        }
        sb_free(&b);
        sb item = SB_INIT;
        if (np == 0)
            sb_puts(&item, "0");
        else
            join_chain(&item, parts, np, "AND");
        free_terms(parts, np);
        items[nitems++] = sb_steal(&item);
    }
    sb inc = SB_INIT;
    join_chain(&inc, items, nitems, "OR");
    free_terms(items, nitems);
    if (n->op == OP_INCLUDES) {
        sb_printf(out, "(%s)", inc.buf);
        *nullable = true;
    } else {
        sb_printf(out, "(%s IS NULL OR NOT (%s))", x, inc.buf);
        *nullable = false;
    }
    sb_free(&inc);
    return 0;
}

static int
compile_cmp(compiler *c, const cnode *n, sb *out, bool *nullable)
{
    fref r;
    if (resolve(c, &n->path, &r) != 0)
        return -1;
    const lf_field *f = r.f;
    fclass fc = field_class(f);
    if (f->type == FT_TEXTAREA && f->length > 255)
        return fail_at(c, n->path.pos, "INVALID_FIELD",
                       "field '%s' can not be filtered in a query call", f->name);
    bool ok = true;
    switch (n->op) {
    case OP_LIKE: ok = fc == FC_TEXT; break;
    case OP_INCLUDES:
    case OP_EXCLUDES:
        if (fc != FC_MULTI)
            return fail_at(c, n->op_pos, "INVALID_QUERY_FILTER_OPERATOR",
                           "includes or excludes operator only valid on multipicklist field");
        break;
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: ok = fc != FC_MULTI && fc != FC_BOOL; break;
    case OP_IN:
    case OP_NOT_IN: ok = fc != FC_MULTI; break;
    default: break;
    }
    if (!ok)
        return fail_at(c, n->op_pos, "INVALID_QUERY_FILTER_OPERATOR",
                       "invalid operator on %s field", field_type_name(f));
    sb x = SB_INIT;
    put_col(&x, r.rel, f);
    int rc;
    switch (n->op) {
    case OP_IN:
    case OP_NOT_IN: rc = emit_in(c, n, f, x.buf, out, nullable); break;
    case OP_INCLUDES:
    case OP_EXCLUDES: rc = emit_includes(c, n, f, x.buf, out, nullable); break;
    default: rc = emit_simple(c, n, f, x.buf, out, nullable); break;
    }
    sb_free(&x);
    return rc;
}

static int
too_deep(compiler *c, size_t pos)
{
    return fail_at(c, pos, "MALFORMED_QUERY",
                   "conditions are nested too deeply: at most %d nested groups of AND, OR and NOT",
                   SOQL_MAX_NEST);
}

/* The conditions of an AND/OR chain, flattened through groups of the same operator. */
static void
collect_chain(compiler *c, const cnode *n, cnkind op, cnode ***list, int *cnt, int *cap)
{
    for (int i = 0; i < n->nkids; i++) {
        cnode *k = n->kids[i];
        if (k->k == op) {
            collect_chain(c, k, op, list, cnt, cap);
        } else {
            *list = c_grow(c, *list, *cnt, cap, sizeof **list);
            (*list)[(*cnt)++] = k;
        }
    }
}

static int emit_cond(compiler *c, const cnode *n, int nest, sb *out, bool *nullable);

/* An AND/OR chain with as few parentheses as SQL's precedence allows (AND binds
 * tighter than OR; comparisons tighter than both): SQLite's parser has a small
 * fixed stack, and each open parenthesis costs it a few entries. nest counts
 * the parentheses already open. */
static int
emit_chain(compiler *c, const cnode *n, int nest, sb *out, bool *nullable)
{
    cnode **kids = NULL;
    int cnt = 0, cap = 0;
    collect_chain(c, n, n->k, &kids, &cnt, &cap);
    bool chunked = cnt > CHAIN_FLAT;
    if (chunked && ++nest > SOQL_MAX_NEST)
        return too_deep(c, n->pos);
    *nullable = false;
    for (int i = 0; i < cnt; i++) {
        const cnode *k = kids[i];
        bool paren = n->k == CN_AND && k->k == CN_OR, nl;
        if (i)
            sb_puts(out, n->k == CN_AND ? " AND " : " OR ");
        if (chunked && i % CHAIN_CHUNK == 0)
            sb_putc(out, '(');
        if (paren && nest + 1 > SOQL_MAX_NEST)
            return too_deep(c, k->pos);
        if (paren)
            sb_putc(out, '(');
        if (emit_cond(c, k, nest + paren, out, &nl) != 0)
            return -1;
        if (paren)
            sb_putc(out, ')');
        if (chunked && (i % CHAIN_CHUNK == CHAIN_CHUNK - 1 || i == cnt - 1))
            sb_putc(out, ')');
        *nullable = *nullable || nl;
    }
    return 0;
}

static int
emit_cond(compiler *c, const cnode *n, int nest, sb *out, bool *nullable)
{
    switch (n->k) {
    case CN_AND:
    case CN_OR: return emit_chain(c, n, nest, out, nullable);
    case CN_NOT:
        /* SOQL's NOT sees a two-valued condition: NULL (unknown) counts as false,
         * so NOT x is "x IS NOT 1" (true for 0 and NULL). */
        if (nest + 1 > SOQL_MAX_NEST)
            return too_deep(c, n->pos);
        sb_putc(out, '(');
        if (emit_cond(c, n->kids[0], nest + 1, out, nullable) != 0)
            return -1;
        sb_puts(out, ") IS NOT 1");
        *nullable = false;
        return 0;
    default: return compile_cmp(c, n, out, nullable);
    }
}

/* ------------------------------------------------------------------------ */
/* SELECT list, ORDER BY, the statements                                     */

static int
add_col(compiler *c, int rel, const lf_field *f, size_t pos)
{
    if (c->ncols >= SOQL_MAX_COLS)
        return fail_at(c, pos, "MALFORMED_QUERY", "too many fields selected: at most %d",
                       SOQL_MAX_COLS);
    if (c->ncols == c->cap_cols) {
        c->cap_cols = c->cap_cols ? c->cap_cols * 2 : 16;
        c->cols = xrealloc(c->cols, (size_t)c->cap_cols * sizeof *c->cols);
    }
    c->cols[c->ncols].field = f;
    c->cols[c->ncols].rel = rel;
    c->cols[c->ncols].sql_col = 0;
    c->ncols++;
    return 0;
}

/* Which fields of level rel (-1: the FROM object) are selected: 0 no, 1 by
 * name, 2 through FIELDS(). */
static unsigned char *
seen_for(compiler *c, int rel, const lf_object *o)
{
    if (c->seen[rel + 1] == NULL)
        c->seen[rel + 1] = c_alloc(c, o->nfields);
    return (unsigned char *)c->seen[rel + 1];
}

static int
compile_select(compiler *c, int64_t limit, bool *count_only)
{
    int first_count = -1;
    for (int i = 0; i < c->nitems && first_count < 0; i++)
        if (c->items[i].k == SI_COUNT)
            first_count = i;
    if (first_count >= 0) {
        for (int i = 0; i < c->nitems; i++) {
            if (i == first_count)
                continue;
            const sel_item *it = &c->items[i];
            char buf[ERR_TOKEN_MAX + 1] = "COUNT()";
            if (it->k == SI_FIELD)
                path_text(c, &it->path, buf, sizeof buf);
            else if (it->k == SI_FIELDS)
                snprintf(buf, sizeof buf, "FIELDS()");
            return fail_at(c, it->pos, "MALFORMED_QUERY", "Field must be grouped or aggregated: %s",
                           buf);
        }
        *count_only = true;
        return 0;
    }
    for (int i = 0; i < c->nitems; i++) {
        const sel_item *it = &c->items[i];
        if (it->k == SI_FIELDS) {
            if (it->fk != FIELDS_STANDARD && (limit < 0 || limit > SOQL_FIELDS_LIMIT))
                return fail_at(c, it->pos, "MALFORMED_QUERY",
                               "The SOQL FIELDS function must have a LIMIT of at most %d",
                               SOQL_FIELDS_LIMIT);
            unsigned char *seen = seen_for(c, -1, c->obj);
            for (size_t j = 0; j < c->obj->nfields; j++) {
                const lf_field *f = c->obj->fields[j];
                if (seen[j] || (it->fk == FIELDS_STANDARD && f->custom) ||
                    (it->fk == FIELDS_CUSTOM && !f->custom))
                    continue;
                seen[j] = 2;
                if (add_col(c, -1, f, it->pos) != 0)
                    return -1;
            }
            continue;
        }
        fref r;
        if (resolve(c, &it->path, &r) != 0)
            return -1;
        unsigned char *seen = seen_for(c, r.rel, r.o);
        if (seen[r.idx] == 1) {
            char buf[ERR_TOKEN_MAX + 1];
            path_text(c, &it->path, buf, sizeof buf);
            return fail_at(c, it->pos, "MALFORMED_QUERY", "duplicate field selected: %s", buf);
        }
        bool already = seen[r.idx] == 2; /* by FIELDS(): keep its column */
        seen[r.idx] = 1;
        if (!already && add_col(c, r.rel, r.f, it->pos) != 0)
            return -1;
    }
    return 0;
}

static int
compile_order(compiler *c, bool count_only, sb *out)
{
    for (int i = 0; i < c->norder; i++) {
        const order_item *o = &c->order[i];
        char buf[ERR_TOKEN_MAX + 1];
        if (count_only) {
            path_text(c, &o->path, buf, sizeof buf);
            return fail_at(c, o->path.pos, "MALFORMED_QUERY",
                           "Ordered field must be grouped or aggregated: %s", buf);
        }
        fref r;
        if (resolve(c, &o->path, &r) != 0)
            return -1;
        if (r.f->type == FT_MULTIPICKLIST || (r.f->type == FT_TEXTAREA && r.f->length > 255))
            return fail_at(c, o->path.pos, "INVALID_FIELD",
                           "field '%s' can not be sorted in a query call", r.f->name);
        put_col(out, r.rel, r.f);
        if (o->desc)
            sb_puts(out, " DESC");
        /* SQLite's defaults are SOQL's: ASC NULLS FIRST, DESC NULLS LAST */
        if (o->nulls_first == o->desc)
            sb_puts(out, o->nulls_first ? " NULLS FIRST" : " NULLS LAST");
        sb_puts(out, ", ");
    }
    sb_puts(out, "t0.\"_rowid\"");
    return 0;
}

/* LIMIT / OFFSET values; -1 / 0 when absent. */
static int
compile_counts(compiler *c, int64_t *limit, int64_t *offset)
{
    *limit = -1;
    *offset = 0;
    if (c->limit_tok.k != TK_EOF) {
        int64_t v = uint_value(c, &c->limit_tok);
        if (v < 0 || v > INT32_MAX)
            return fail_at(c, c->limit_tok.pos, "NUMBER_OUTSIDE_VALID_RANGE",
                           "Maximum SOQL LIMIT allowed is %d", INT32_MAX);
        *limit = v;
    }
    if (c->offset_tok.k != TK_EOF) {
        int64_t v = uint_value(c, &c->offset_tok);
        if (v < 0 || v > SOQL_MAX_OFFSET)
            return fail_at(c, c->offset_tok.pos, "NUMBER_OUTSIDE_VALID_RANGE",
                           "Maximum SOQL offset allowed is %d", SOQL_MAX_OFFSET);
        *offset = v;
    }
    return 0;
}

static const lf_object *
object_by_token(const compiler *c, const token *t)
{
    for (size_t i = 0; i < c->s->nobjects; i++)
        if (span_is(c, t, c->s->objects[i]->name))
            return c->s->objects[i];
    return NULL;
}

static int
compile_statement(compiler *c, soql_plan **out)
{
    c->obj = object_by_token(c, &c->obj_tok);
    if (c->obj == NULL) {
        char buf[ERR_TOKEN_MAX + 1];
        tok_text(c, &c->obj_tok, buf, sizeof buf);
        return fail_at(c, c->obj_tok.pos, "INVALID_TYPE",
                       "sObject type '%s' is not supported. If you are attempting to use a custom "
                       "object, be sure to append the '__c' after the entity name. Please "
                       "reference your WSDL or the describe call for the appropriate names.",
                       buf);
    }
    int64_t limit, offset;
    bool count_only = false, nullable;
    if (compile_counts(c, &limit, &offset) != 0 || compile_select(c, limit, &count_only) != 0)
        return -1;
    sb where = SB_INIT, order = SB_INIT, from = SB_INIT, sql = SB_INIT, cnt = SB_INIT;
    if ((c->where && emit_cond(c, c->where, 1, &where, &nullable) != 0) ||
        compile_order(c, count_only, &order) != 0)
        goto fail;
    int plimit = 0, poffset = 0;
    if (limit >= 0 && (plimit = add_param(c, c->limit_tok.pos, SP_INT, limit, 0, NULL)) < 0)
        goto fail;
    if (offset > 0 && (poffset = add_param(c, c->offset_tok.pos, SP_INT, offset, 0, NULL)) < 0)
        goto fail;

    /* FROM ... LEFT JOIN ... WHERE ... */
    sb_puts(&from, " FROM ");
    sb_sql_ident(&from, c->obj->name);
    sb_puts(&from, " AS t0");
    for (int i = 0; i < c->nrels; i++) {
        const soql_rel *r = &c->rels[i];
        sb_puts(&from, " LEFT JOIN ");
        sb_sql_ident(&from, r->object->name);
        sb_printf(&from, " AS t%d ON t%d.\"Id\" = ", i + 1, i + 1);
        put_col(&from, r->parent, c->rel_ref[i]);
    }
    bool live = !c->all_rows && object_field(c->obj, "IsDeleted") != NULL;
    if (live)
        sb_puts(&from, " WHERE t0.\"IsDeleted\" = 0");
    if (where.len)
        sb_printf(&from, live ? " AND (%s)" : " WHERE %s", where.buf);

    /* SELECT t0."Id", <fields>, <parent Ids> */
    sb_puts(&sql, "SELECT t0.\"Id\"");
    for (int i = 0; i < c->ncols; i++) {
        sb_puts(&sql, ", ");
        put_col(&sql, c->cols[i].rel, c->cols[i].field);
        c->cols[i].sql_col = 1 + i;
    }
    for (int i = 0; i < c->nrels; i++) {
        sb_printf(&sql, ", t%d.\"Id\"", i + 1);
        c->rels[i].id_col = 1 + c->ncols + i;
    }
    sb_append(&sql, from.buf, from.len);
    sb_printf(&sql, " ORDER BY %s", order.buf);
    sb tail = SB_INIT;
    if (plimit || poffset) {
        if (plimit)
            sb_printf(&tail, " LIMIT ?%d", plimit);
        else
            sb_puts(&tail, " LIMIT -1");
        if (poffset)
            sb_printf(&tail, " OFFSET ?%d", poffset);
        sb_append(&sql, tail.buf, tail.len);
        sb_printf(&cnt, "SELECT count(*) FROM (SELECT 1%s%s)", from.buf, tail.buf);
    } else {
        sb_printf(&cnt, "SELECT count(*)%s", from.buf);
    }
    sb_free(&tail);

    soql_plan *p = xcalloc(1, sizeof *p);
    p->object = c->obj;
    p->count_only = count_only;
    p->all_rows = c->all_rows;
    p->sql = sb_steal(&sql);
    p->count_sql = sb_steal(&cnt);
    p->params = c->params;
    p->nparams = c->nparams;
    c->params = NULL;
    c->nparams = 0;
    p->cols = c->cols;
    p->ncols = c->ncols;
    c->cols = NULL;
    c->ncols = 0;
    if (c->nrels) {
        p->rels = xcalloc((size_t)c->nrels, sizeof *p->rels);
        memcpy(p->rels, c->rels, (size_t)c->nrels * sizeof *p->rels);
    }
    p->nrels = c->nrels;
    p->limit = limit;
    p->offset = offset;
    *out = p;
    sb_free(&where);
    sb_free(&order);
    sb_free(&from);
    return 0;
fail:
    sb_free(&where);
    sb_free(&order);
    sb_free(&from);
    sb_free(&sql);
    sb_free(&cnt);
    return -1;
}

int
soql_compile(const lf_schema *s, const char *q, bool all_rows, int64_t now_ms, soql_plan **out,
             err_t *e)
{
    *out = NULL;
    compiler c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.q = q ? q : "";
    c.qlen = strlen(c.q);
    c.now_ms = now_ms;
    c.all_rows = all_rows;
    c.e = e;
    int rc;
    size_t chars = 0, i;
    for (i = 0; i < c.qlen; i++) {
        chars += !is_cont((unsigned char)c.q[i]);
        if (chars > SOQL_MAX_LEN)
            break;
    }
    if (chars > SOQL_MAX_LEN)
        rc = fail_at(&c, i, "MALFORMED_QUERY",
                     "SOQL statements cannot be longer than %d characters", SOQL_MAX_LEN);
    else
        rc = parse_statement(&c) != 0 ? -1 : compile_statement(&c, out);
    for (size_t k = 0; k < c.nallocs; k++)
        free(c.allocs[k]);
    free(c.allocs);
    for (int k = 0; k < c.nparams; k++)
        free(c.params[k].s);
    free(c.params);
    free(c.cols);
    return rc;
}

void
soql_plan_free(soql_plan *p)
{
    if (p == NULL)
        return;
    free(p->sql);
    free(p->count_sql);
    for (int i = 0; i < p->nparams; i++)
        free(p->params[i].s);
    free(p->params);
    free(p->cols);
    free(p->rels);
    free(p);
}
