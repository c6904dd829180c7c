/*
 * sb: a growable byte string. See sb.h.
 */
#include "sb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sb_reserve(sb *s, size_t extra)
{
    if (s->len + extra + 1 <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->len + extra + 1)
        cap *= 2;
    char *p = realloc(s->buf, cap);
    if (p == NULL) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    s->buf = p;
    s->cap = cap;
}

void
sb_append(sb *s, const void *data, size_t n)
{
    sb_reserve(s, n);
    if (n)
        memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

void
sb_puts(sb *s, const char *str)
{
    sb_append(s, str, strlen(str));
}

void
sb_putc(sb *s, char c)
{
    sb_reserve(s, 1);
    s->buf[s->len++] = c;
    s->buf[s->len] = '\0';
}

void
sb_vprintf(sb *s, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    sb_reserve(s, (size_t)n);
    vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
    s->len += (size_t)n;
}

void
sb_printf(sb *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(s, fmt, ap);
    va_end(ap);
}

void
sb_put_i64(sb *s, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    sb_append(s, p, (size_t)(tmp + sizeof tmp - p));
}

void
sb_clear(sb *s)
{
    s->len = 0;
    if (s->buf)
        s->buf[0] = '\0';
}

void
sb_free(sb *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

char *
sb_steal(sb *s)
{
    if (s->buf == NULL)
        sb_reserve(s, 0), s->buf[0] = '\0';
    char *p = s->buf;
    s->buf = NULL;
    s->len = s->cap = 0;
    return p;
}

const char *
sb_str(const sb *s)
{
    return s->buf ? s->buf : "";
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 if invalid. */
static size_t
utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void
sb_json_strn(sb *s, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)str;
    sb_reserve(s, n + 2);
    sb_putc(s, '"');
    size_t run = 0; /* start of a run of bytes that need no escaping */
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        size_t l = c >= 0x80 ? utf8_seq_len(p + i, n - i) : 0;
        if (l > 1) {
            i += l;
            continue;
        }
        sb_append(s, p + run, i - run);
        switch (c) {
        case '"': sb_append(s, "\\\"", 2); break;
        case '\\': sb_append(s, "\\\\", 2); break;
        case '\n': sb_append(s, "\\n", 2); break;
        case '\r': sb_append(s, "\\r", 2); break;
        case '\t': sb_append(s, "\\t", 2); break;
        case '\b': sb_append(s, "\\b", 2); break;
        case '\f': sb_append(s, "\\f", 2); break;
        default:
            if (c < 0x20) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                sb_append(s, u, 6);
            } else {
                sb_append(s, "\xEF\xBF\xBD", 3); /* invalid UTF-8 byte */
            }
        }
        i++;
        run = i;
    }
    sb_append(s, p + run, n - run);
    sb_putc(s, '"');
}

void
sb_json_str(sb *s, const char *str)
{
    if (str == NULL)
        sb_append(s, "null", 4);
    else
        sb_json_strn(s, str, strlen(str));
}

void
sb_json_double(sb *s, double v)
{
    if (!isfinite(v)) {
        sb_append(s, "null", 4);
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        sb_printf(s, "%.1f", v);
        return;
    }
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    sb_puts(s, tmp);
}

/* &, <, >, " and ' escaped, ' as apos. */
static void
markup_str(sb *s, const char *str, const char *apos)
{
    for (const char *p = str; p && *p; p++) {
        switch (*p) {
        case '&': sb_puts(s, "&amp;"); break;
        case '<': sb_puts(s, "&lt;"); break;
        case '>': sb_puts(s, "&gt;"); break;
        case '"': sb_puts(s, "&quot;"); break;
        case '\'': sb_puts(s, apos); break;
        default: sb_putc(s, *p);
        }
    }
}

void
sb_xml_str(sb *s, const char *str)
{
    markup_str(s, str, "&apos;");
}

void
sb_html_str(sb *s, const char *str)
{
    markup_str(s, str, "&#39;");
}

/* text between two q's, each q inside doubled */
static void
sql_quoted(sb *s, const char *text, char q)
{
    sb_putc(s, q);
    for (const char *p = text; *p; p++) {
        if (*p == q)
            sb_putc(s, q);
        sb_putc(s, *p);
    }
    sb_putc(s, q);
}

void
sb_sql_ident(sb *s, const char *name)
{
    sql_quoted(s, name, '"');
}

void
sb_sql_literal(sb *s, const char *text)
{
    sql_quoted(s, text, '\'');
}
