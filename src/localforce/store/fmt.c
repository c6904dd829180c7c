/*
 * fmt: stored values written as Salesforce writes them in REST JSON. See fmt.h.
 *
 * The storage class of the field's type (schema.h) decides how a column is
 * read; SQL NULL is always null, and an empty text is null too (Salesforce
 * never returns "" for a text field).
 */
#include "fmt.h"

#include <ctype.h>
#include <stdbool.h>

#include "util.h"

void
fmt_value(sb *out, const lf_field *f, sqlite3_stmt *stmt, int col)
{
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
        sb_append(out, "null", 4);
        return;
    }
    switch (lf_types[f->type].storage) {
    case ST_TEXT:
    case ST_DATE: {
        const char *s = (const char *)sqlite3_column_text(stmt, col);
        int n = sqlite3_column_bytes(stmt, col);
        if (s == NULL || n <= 0)
            sb_append(out, "null", 4);
        else
            sb_json_strn(out, s, (size_t)n);
        break;
    }
    case ST_INT: sb_put_i64(out, sqlite3_column_int64(stmt, col)); break;
    case ST_REAL: sb_json_double(out, sqlite3_column_double(stmt, col)); break;
    case ST_BOOL:
        if (sqlite3_column_int64(stmt, col))
            sb_append(out, "true", 4);
        else
            sb_append(out, "false", 5);
        break;
    case ST_DATETIME: {
        char buf[32];
        util_fmt_datetime(sqlite3_column_int64(stmt, col), buf);
        sb_putc(out, '"');
        sb_puts(out, buf);
        sb_putc(out, '"');
        break;
    }
    }
}

/* Only letters, digits, '.', '_' and '-': safe inside a JSON string as is. */
static bool
plain(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return false;
    return true;
}

void
fmt_attributes(sb *out, const char *obj, const char *ver, const char *id)
{
    if (ver == NULL)
        ver = "59.0";
    sb_puts(out, "{\"type\":");
    sb_json_str(out, obj);
    if (id != NULL) {
        sb_puts(out, ",\"url\":");
        if (plain(obj) && plain(ver) && plain(id)) {
            /* The common case, without a temporary string. */
            sb_puts(out, "\"/services/data/v");
            sb_puts(out, ver);
            sb_puts(out, "/sobjects/");
            sb_puts(out, obj);
            sb_putc(out, '/');
            sb_puts(out, id);
            sb_putc(out, '"');
        } else {
            sb url = SB_INIT;
            sb_printf(&url, "/services/data/v%s/sobjects/%s/%s", ver, obj, id);
            sb_json_strn(out, url.buf, url.len);
            sb_free(&url);
        }
    }
    sb_putc(out, '}');
}
