/*
 * sb: a growable byte string ("string builder").
 *
 * Used everywhere a response body, SQL text or message is assembled. An sb
 * always holds a NUL after its last byte, so sb.buf can be used as a C string.
 * Allocation failure aborts (there is no sane recovery in a server that has
 * run out of memory); every other function cannot fail.
 */
#ifndef SB_H
#define SB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sb {
    char *buf;  /* NUL-terminated; NULL until the first append */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
} sb;

#define SB_INIT    \
    {              \
        NULL, 0, 0 \
    }

void sb_reserve(sb *s, size_t extra);
void sb_append(sb *s, const void *data, size_t n);
void sb_puts(sb *s, const char *str);
void sb_putc(sb *s, char c);
void sb_printf(sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(sb *s, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void sb_put_i64(sb *s, int64_t v);
void sb_clear(sb *s); /* length to 0, keeps the buffer */
void sb_free(sb *s);
char *sb_steal(sb *s);           /* hands the buffer to the caller ("" if empty) */
const char *sb_str(const sb *s); /* never NULL */

/* JSON: a quoted, escaped string; invalid UTF-8 bytes become U+FFFD. */
void sb_json_str(sb *s, const char *str);
void sb_json_strn(sb *s, const char *str, size_t n);
/* JSON: a finite double as Salesforce prints it (shortest exact form, "1.0" for
 * whole numbers); non-finite values become null. */
void sb_json_double(sb *s, double v);
/* An SQL identifier, double-quoted with embedded quotes doubled: the one way
 * names reach SQL text in this project (values are always bound). */
void sb_sql_ident(sb *s, const char *name);
/* An SQL string literal, single-quoted with embedded quotes doubled: for text
 * that must be part of a statement (DDL bodies, NOTIFY channels), never for
 * values a statement can bind. */
void sb_sql_literal(sb *s, const char *text);
/* XML text content with &, <, >, " and ' escaped. */
void sb_xml_str(sb *s, const char *str);
/* HTML text or attribute value: &, <, >, " and ' escaped (' as &#39;, which
 * every HTML parser knows; XML's &apos; is not HTML 4's). NULL is empty. */
void sb_html_str(sb *s, const char *str);

#endif
