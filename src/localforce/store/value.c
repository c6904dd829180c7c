/*
 * value: one field value on its way between JSON, validation and SQLite (`val`):
 * integer, real, text (borrowed, copied or owned) or NULL; binding to and
 * reading from statements.
 */
#include "value.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* Values                                                                   */

void
val_reset(val *v)
{
    free(v->own);
    v->own = NULL;
    v->kind = V_UNSET;
}

void
val_null(val *v)
{
    val_reset(v);
    v->kind = V_NULL;
}

void
val_int(val *v, int64_t i)
{
    val_reset(v);
    v->kind = V_INT;
    v->i = i;
}

void
val_real(val *v, double r)
{
    val_reset(v);
    v->kind = V_REAL;
    v->r = r;
}

/* Text that outlives the val (schema strings, JSON being processed). */
void
val_text_ref(val *v, const char *s, size_t n)
{
    val_reset(v);
    v->kind = V_TEXT;
    v->s = s;
    v->n = n;
}

/* Text copied into the val. */
void
val_text_copy(val *v, const char *s, size_t n)
{
    val_reset(v);
    v->kind = V_TEXT;
    if (n < sizeof v->buf) {
        memcpy(v->buf, s, n);
        v->buf[n] = '\0';
        v->s = v->buf;
    } else {
        v->own = xstrndup(s, n);
        v->s = v->own;
    }
    v->n = n;
}

void
val_text_take(val *v, char *s)
{
    val_reset(v);
    v->kind = V_TEXT;
    v->own = s;
    v->s = s;
    v->n = strlen(s);
}

/* dst refers to src's value (src must outlive dst's use). */
void
val_ref(val *dst, const val *src)
{
    val_reset(dst);
    dst->kind = src->kind;
    dst->i = src->i;
    dst->r = src->r;
    dst->s = src->s;
    dst->n = src->n;
}

bool
val_empty(const val *v)
{
    return v->kind == V_UNSET || v->kind == V_NULL;
}

/* A deep copy (dst is reset first), for the change hook's before-image. */
void
val_copy(val *dst, const val *src)
{
    if (src->kind == V_TEXT) {
        val_text_copy(dst, src->s, src->n);
    } else {
        val_reset(dst);
        dst->kind = src->kind;
        dst->i = src->i;
        dst->r = src->r;
    }
}

/* Same stored value? (Unset and null are the same.) */
bool
val_same(const val *a, const val *b)
{
    int ka = a->kind == V_UNSET ? V_NULL : a->kind, kb = b->kind == V_UNSET ? V_NULL : b->kind;
    if (ka != kb)
        return false;
    switch (ka) {
    case V_INT: return a->i == b->i;
    case V_REAL: return a->r == b->r;
    case V_TEXT: return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
    default: return true;
    }
}

void
val_bind(sqlite3_stmt *s, int idx, const val *v)
{
    switch (v->kind) {
    case V_INT: sqlite3_bind_int64(s, idx, v->i); break;
    case V_REAL: sqlite3_bind_double(s, idx, v->r); break;
    case V_TEXT: sqlite3_bind_text(s, idx, v->s, (int)v->n, SQLITE_STATIC); break;
    default: sqlite3_bind_null(s, idx); break;
    }
}

/* Column col of the current row into v (copied). */
void
val_column(sqlite3_stmt *s, int col, lf_storage storage, val *v)
{
    int t = sqlite3_column_type(s, col);
    if (t == SQLITE_NULL) {
        val_null(v);
        return;
    }
    switch (storage) {
    case ST_INT:
    case ST_BOOL:
    case ST_DATETIME: val_int(v, sqlite3_column_int64(s, col)); break;
    case ST_REAL: val_real(v, sqlite3_column_double(s, col)); break;
    default:
        val_text_copy(v, (const char *)sqlite3_column_text(s, col),
                      (size_t)sqlite3_column_bytes(s, col));
    }
}
