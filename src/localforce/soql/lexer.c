/*
 * lexer: the SOQL tokenizer: identifiers, keywords, numbers, quoted strings with
 * their escapes, date and datetime literals; one token of lookahead, produced
 * on demand.
 */
#include "lexer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* Tokenizer                                                                 */

bool
lex_is_digit(int ch)
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
    return is_alpha(ch) || lex_is_digit(ch) || ch == '_';
}

static bool
is_space(int ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static int
hexval(int ch)
{
    if (lex_is_digit(ch))
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
int
lex_decode_string(compiler *c, const token *t, decmode mode, sb *out)
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
        case 'n':
        case 'N': dec_put(out, mode, '\n'); break;
        case 'r':
        case 'R': dec_put(out, mode, '\r'); break;
        case 't':
        case 'T': dec_put(out, mode, '\t'); break;
        case 'b':
        case 'B': dec_put(out, mode, '\b'); break;
        case 'f':
        case 'F': dec_put(out, mode, '\f'); break;
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
        bad_escape : {
            char buf[ERR_TOKEN_MAX + 1];
            ast_tok_text(c, t, buf, sizeof buf);
            int n = 2; /* the backslash and the whole character after it */
            while (esc + n < end && ast_is_cont((unsigned char)esc[n]))
                n++;
            return ast_fail_at(c, (size_t)(esc - c->q), "MALFORMED_QUERY",
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
        if (k == 4 || k == 7 ? ch != '-' : !lex_is_digit(ch))
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
        if (k == 2 || k == 5 ? p[k] != ':' : !lex_is_digit(p[k]))
            return false;
    p += 8;
    if (*p == '.') {
        p++;
        if (!lex_is_digit(*p))
            return false;
        while (lex_is_digit(*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        p++;
        if (!lex_is_digit(p[0]) || !lex_is_digit(p[1]))
            return false;
        p += 2;
        if (*p == ':')
            p++;
        if (!lex_is_digit(p[0]) || !lex_is_digit(p[1]))
            return false;
        p += 2;
    } else {
        return false;
    }
    int64_t ms;
    return *p == '\0' && util_parse_datetime(buf, &ms) == 0;
}

/* Scan one token at c->lexpos. */
int
lex_next(compiler *c, token *t)
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
    } else if (lex_is_digit(ch) && date_shape(q, i, len)) {
        j = i + 10;
        t->k = TK_DATE;
        if (j < len && (q[j] == 'T' || q[j] == 't')) {
            j++;
            while (j < len && (lex_is_digit((unsigned char)q[j]) || q[j] == ':' || q[j] == '.'))
                j++;
            if (j < len && (q[j] == 'Z' || q[j] == 'z')) {
                j++;
            } else if (j < len && (q[j] == '+' || q[j] == '-')) {
                j++;
                while (j < len && (lex_is_digit((unsigned char)q[j]) || q[j] == ':'))
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
            return ast_unexpected(c, t);
    } else if (lex_is_digit(ch) ||
               ((ch == '-' || ch == '+') && j < len && lex_is_digit((unsigned char)q[j]))) {
        while (j < len && lex_is_digit((unsigned char)q[j]))
            j++;
        if (j + 1 < len && q[j] == '.' && lex_is_digit((unsigned char)q[j + 1])) {
            j++;
            while (j < len && lex_is_digit((unsigned char)q[j]))
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
            return ast_fail_at(c, len, "MALFORMED_QUERY",
                               "line %d:%zu mismatched character '<EOF>' expecting '''", row,
                               ast_count_chars(q, ls, len));
        }
        j++;
        t->k = TK_STRING;
        t->len = j - i;
        if (lex_decode_string(c, t, DEC_CHECK, NULL) != 0)
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
            while (j < len && ast_is_cont((unsigned char)q[j]))
                j++;
            t->k = TK_IDENT; /* only so that unexpected() quotes it */
            t->len = j - i;
            return ast_unexpected(c, t);
        }
    }
    t->len = j - i;
    c->lexpos = j;
    return 0;
}

/* ------------------------------------------------------------------------ */
