/*
 * value: one field value on its way between JSON, validation and SQLite (`val`):
 * integer, real, text (borrowed, copied or owned) or NULL; binding to and
 * reading from statements.
 */
#ifndef VALUE_H
#define VALUE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "schema.h"

enum { V_UNSET, V_NULL, V_INT, V_REAL, V_TEXT };

typedef struct val {
    int kind;
    int64_t i;
    double r;
    const char *s; /* V_TEXT: NUL-terminated, n bytes; points at buf, own or elsewhere */
    size_t n;
    char *own; /* heap string owned by this val */
    char buf[40];
} val;

void val_reset(val *v);
void val_null(val *v);
void val_int(val *v, int64_t i);
void val_real(val *v, double r);
void val_text_ref(val *v, const char *s, size_t n);
void val_text_copy(val *v, const char *s, size_t n);
void val_text_take(val *v, char *s);
void val_ref(val *dst, const val *src);
bool val_empty(const val *v);
void val_copy(val *dst, const val *src);
bool val_same(const val *a, const val *b);
void val_bind(sqlite3_stmt *s, int idx, const val *v);
void val_column(sqlite3_stmt *s, int col, lf_storage storage, val *v);

#endif
