/*
 * ast: what the SOQL compiler's passes share: tokens, the AST, the compiler's
 * state and its arena, and errors in Salesforce's layout
 * ("ERROR at Row:1:Column:N", MALFORMED_QUERY and friends). Limits that bound
 * every pass are here too.
 */
#include "ast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

void *
ast_alloc(compiler *c, size_t n)
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
void *
ast_grow(compiler *c, void *arr, int n, int *cap, size_t elem)
{
    if (n < *cap)
        return arr;
    int ncap = *cap ? *cap * 2 : 8;
    void *p = ast_alloc(c, (size_t)ncap * elem);
    if (n)
        memcpy(p, arr, (size_t)n * elem);
    *cap = ncap;
    return p; /* the old block is freed with the rest */
}

/* ------------------------------------------------------------------------ */
/* Errors in Salesforce's layout                                             */

bool
ast_is_cont(unsigned char ch)
{
    return (ch & 0xC0) == 0x80;
}

/* Characters (code points) in q[a, b). */
size_t
ast_count_chars(const char *q, size_t a, size_t b)
{
    size_t n = 0;
    for (size_t i = a; i < b; i++)
        n += !ast_is_cont((unsigned char)q[i]);
    return n;
}

/* Is t the identifier kw (case-insensitive)? */
bool
ast_tok_is(const compiler *c, const token *t, const char *kw)
{
    size_t n = strlen(kw);
    return t->k == TK_IDENT && t->len == n && strncasecmp(c->q + t->pos, kw, n) == 0;
}

/* Fill c->e with "\n<text>\n<spaces>^\nERROR at Row:R:Column:C\n<what>" for the
 * error at byte pos. Returns -1. */
int
ast_fail_at(compiler *c, size_t pos, const char *code, const char *fmt, ...)
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
        while (ws < pos && ast_is_cont((unsigned char)q[ws]))
            ws++;
        while (we > pos && we < line_end && ast_is_cont((unsigned char)q[we]))
            we--;
    }
    size_t col = ast_count_chars(q, line_start, pos) + 1;

    sb m = SB_INIT;
    sb_putc(&m, '\n');
    sb_append(&m, q + ws, we - ws);
    sb_putc(&m, '\n');
    for (size_t i = ast_count_chars(q, ws, pos); i > 0; i--)
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
void
ast_cut_text(const char *s, size_t len, char *out, size_t outsz)
{
    size_t n = len;
    if (n > ERR_TOKEN_MAX)
        n = ERR_TOKEN_MAX;
    if (n >= outsz)
        n = outsz - 1;
    while (n > 0 && n < len && ast_is_cont((unsigned char)s[n]))
        n--;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* A token's text for a message. */
void
ast_tok_text(const compiler *c, const token *t, char *out, size_t outsz)
{
    ast_cut_text(c->q + t->pos, t->len, out, outsz);
}

/* Keywords Salesforce does not let us treat as plain identifiers here, with a
 * hint when localforce does not support the clause they start. */
static const struct {
    const char *kw;
    const char *hint;
} unsupported_kw[] = {
    {"GROUP", "GROUP BY"},
    {"HAVING", "HAVING"},
    {"WITH", "WITH"},
    {"FOR", "FOR VIEW/UPDATE/REFERENCE"},
    {"UPDATE", "UPDATE TRACKING/VIEWSTAT"},
    {"USING", "USING SCOPE"},
    {"TYPEOF", "TYPEOF"},
    {"ALL", "ALL ROWS"},
};

int
ast_unexpected(compiler *c, const token *t)
{
    if (t->k == TK_EOF)
        return ast_fail_at(c, t->pos, "MALFORMED_QUERY", "unexpected token: <EOF>");
    char buf[ERR_TOKEN_MAX + 1];
    ast_tok_text(c, t, buf, sizeof buf);
    for (size_t i = 0; i < sizeof unsupported_kw / sizeof unsupported_kw[0]; i++)
        if (ast_tok_is(c, t, unsupported_kw[i].kw))
            return ast_fail_at(c, t->pos, "MALFORMED_QUERY",
                               "unexpected token: '%s' (localforce does not support %s)", buf,
                               unsupported_kw[i].hint);
    return ast_fail_at(c, t->pos, "MALFORMED_QUERY", "unexpected token: '%s'", buf);
}

int
ast_unsupported(compiler *c, size_t pos, const char *what)
{
    return ast_fail_at(c, pos, "MALFORMED_QUERY", "localforce does not support %s", what);
}
