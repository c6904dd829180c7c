/*
 * convert: JSON values to stored values with Salesforce's checks and errors: type,
 * length, range, email, picklist, date/time formats, lookups that must point at
 * a live record of the right object, and parent references by external id.
 */
#include "convert.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sfid.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Conversion of JSON values to stored values, with Salesforce's errors     */

static const char *
json_token(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "START_OBJECT";
    case JSON_ARRAY: return "START_ARRAY";
    case JSON_STRING: return "VALUE_STRING";
    case JSON_INTEGER: return "VALUE_NUMBER_INT";
    case JSON_REAL: return "VALUE_NUMBER_FLOAT";
    case JSON_TRUE: return "VALUE_TRUE";
    case JSON_FALSE: return "VALUE_FALSE";
    default: return "VALUE_NULL";
    }
}

static int
deser_error(const lf_field *f, json_t *v, err_t *e)
{
    char text[128];
    switch (json_typeof(v)) {
    case JSON_OBJECT: snprintf(text, sizeof text, "{"); break;
    case JSON_ARRAY: snprintf(text, sizeof text, "["); break;
    case JSON_STRING: snprintf(text, sizeof text, "%.100s", json_string_value(v)); break;
    case JSON_INTEGER:
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: snprintf(text, sizeof text, "%.17g", json_real_value(v)); break;
    case JSON_TRUE: snprintf(text, sizeof text, "true"); break;
    case JSON_FALSE: snprintf(text, sizeof text, "false"); break;
    default: snprintf(text, sizeof text, "null"); break;
    }
    const char *tname;
    switch (f->type) {
    case FT_CURRENCY:
    case FT_PERCENT:
    case FT_DOUBLE: tname = "double"; break;
    case FT_INT: tname = "int"; break;
    case FT_BOOLEAN: tname = "boolean"; break;
    case FT_DATE: tname = "date"; break;
    case FT_DATETIME: tname = "datetime"; break;
    case FT_TIME: tname = "time"; break;
    case FT_ID:
    case FT_REFERENCE: tname = "id"; break;
    default: tname = "string"; break;
    }
    err_set(e, 400, "JSON_PARSER_ERROR",
            "Cannot deserialize instance of %s from %s value %s or request may be missing a "
            "required field (field %s)",
            tname, json_token(v), text, f->name);
    return err_fields(e, f->name);
}

static int
range_error(const lf_field *f, const char *text, err_t *e)
{
    err_set(e, 400, "NUMBER_OUTSIDE_VALID_RANGE",
            "%s: value outside of valid range on numeric field: %s", f->label, text);
    return err_fields(e, f->name);
}

/* local@domain.tld, printable ASCII without spaces, as Salesforce roughly checks it. */
static bool
valid_email(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (at == NULL || at == s || memchr(at + 1, '@', n - (size_t)(at + 1 - s)))
        return false;
    for (const char *p = s; p < at; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-/=?^_`{|}~.", *p))
            return false;
    if (s[0] == '.' || at[-1] == '.' || strstr(s, ".."))
        return false;
    const char *d = at + 1, *end = s + n;
    bool dot = false;
    if (d == end || *d == '.' || *d == '-' || end[-1] == '.' || end[-1] == '-')
        return false;
    for (const char *p = d; p < end; p++) {
        if (*p == '.') {
            if (p[1] == '.' || p[1] == '-' || p[-1] == '-')
                return false;
            dot = true;
        } else if (!isalnum((unsigned char)*p) && *p != '-') {
            return false;
        }
    }
    return dot;
}

static const char *
picklist_canon(const lf_field *f, const char *v, size_t n)
{
    for (size_t i = 0; i < f->npicklist; i++)
        if (strlen(f->picklist[i]) == n && strncasecmp(f->picklist[i], v, n) == 0)
            return f->picklist[i];
    return NULL;
}

static int
picklist_error(const lf_field *f, const char *v, size_t n, err_t *e)
{
    err_set(e, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "%s: bad value for restricted picklist field: %.*s", f->label, (int)(n > 255 ? 255 : n),
            v);
    return err_fields(e, f->name);
}

/* "<label> ID" unless the label already says so. */
static void
id_label(const lf_field *f, char *out, size_t n)
{
    size_t l = strlen(f->label);
    if (l >= 3 && strcmp(f->label + l - 3, " ID") == 0)
        snprintf(out, n, "%s", f->label);
    else
        snprintf(out, n, "%s ID", f->label);
}

/* 0 missing, 1 live, 2 deleted, -1 error. id18 is normalised. */
int
conv_row_status(store *st, objinfo *oi, const char *id18, int64_t *rowid, err_t *e)
{
    int64_t seq = sfid_seq(id18);
    if (seq <= 0 || !sfid_has_prefix(id18, oi->o->key_prefix))
        return 0;
    sqlite3_stmt *q = oi_live(st, oi, e);
    if (q == NULL)
        return -1;
    sqlite3_bind_int64(q, 1, seq);
    int rc = sqlite3_step(q), res;
    if (rc == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(q, 0);
        res = id && strcmp(id, id18) == 0 ? (sqlite3_column_int64(q, 1) ? 2 : 1) : 0;
    } else if (rc == SQLITE_DONE) {
        res = 0;
    } else {
        res = stdb_fail(st, e, "lookup");
    }
    sqlite3_reset(q);
    if (rowid)
        *rowid = seq;
    return res;
}

/* A lookup value: a live record of the referenced object. */
static int
convert_reference(store *st, const lf_field *f, const char *s, size_t n, val *out, err_t *e)
{
    char id[19], lbl[300];
    if (n == 0) {
        val_null(out);
        return 0;
    }
    if (n > 18 || sfid_normalize(s, id)) {
        err_set(e, 400, "MALFORMED_ID", "%s: id value of incorrect type: %.*s", f->label,
                (int)(n > 100 ? 100 : n), s);
        return err_fields(e, f->name);
    }
    objinfo *target = oi_find(st, f->reference_to);
    int status = target ? conv_row_status(st, target, id, NULL, e) : 0;
    if (status < 0)
        return -1;
    if (status != 1) {
        id_label(f, lbl, sizeof lbl);
        err_set(e, 400, "FIELD_INTEGRITY_EXCEPTION", "%s: id value of incorrect type: %s", lbl, id);
        return err_fields(e, f->name);
    }
    val_text_copy(out, id, 18);
    return 0;
}

static bool
two_digits(const char *p, int max, int *out)
{
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
        return false;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return *out <= max;
}

/* HH:MM[:SS[.f[f[f]]]][Z] -> "HH:MM:SS.fffZ" in out[16]. */
static int
parse_time(const char *s, size_t n, char out[16])
{
    int hh, mi, ss = 0, ms = 0;
    size_t i = 5;
    if (n < 5 || !two_digits(s, 23, &hh) || s[2] != ':' || !two_digits(s + 3, 59, &mi))
        return -1;
    if (i < n && s[i] == ':') {
        if (n < i + 3 || !two_digits(s + i + 1, 59, &ss))
            return -1;
        i += 3;
        if (i < n && s[i] == '.') {
            int digits = 0;
            for (i++; i < n && isdigit((unsigned char)s[i]); i++, digits++)
                if (digits < 3)
                    ms = ms * 10 + (s[i] - '0');
            if (digits == 0 || digits > 9)
                return -1;
            for (; digits < 3; digits++)
                ms *= 10;
        }
    }
    if (i < n && s[i] == 'Z')
        i++;
    if (i != n)
        return -1;
    snprintf(out, 16, "%02d:%02d:%02d.%03dZ", hh, mi, ss, ms);
    return 0;
}

static int
convert_text(store *st, const lf_field *f, json_t *v, val *out, err_t *e)
{
    char num[40];
    const char *s;
    size_t n;
    switch (json_typeof(v)) {
    case JSON_STRING:
        s = json_string_value(v);
        n = json_string_length(v);
        break;
    case JSON_INTEGER:
        n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
        break;
    case JSON_REAL: {
        sb t = SB_INIT;
        sb_json_double(&t, json_real_value(v));
        n = (size_t)snprintf(num, sizeof num, "%s", sb_str(&t));
        sb_free(&t);
        s = num;
        break;
    }
    case JSON_TRUE:
    case JSON_FALSE:
        s = json_is_true(v) ? "true" : "false";
        n = strlen(s);
        break;
    default: return deser_error(f, v, e);
    }
    if (f->type == FT_REFERENCE || f->type == FT_ID)
        return convert_reference(st, f, s, n, out, e);
    if (n == 0 || memchr(s, '\0', n)) {
        if (n == 0) {
            val_null(out);
            return 0;
        }
        return deser_error(f, v, e);
    }
    if (f->type == FT_TIME) {
        char buf[16];
        if (parse_time(s, n, buf))
            return deser_error(f, v, e);
        val_text_copy(out, buf, strlen(buf));
        return 0;
    }
    if (f->length > 0 && n > (size_t)f->length && stdb_utf8_chars(s, n) > (size_t)f->length) {
        err_set(e, 400, "STRING_TOO_LONG", "%s: data value too large: %.*s (max length=%d)",
                f->name, (int)(n > 300 ? 300 : n), s, f->length);
        return err_fields(e, f->name);
    }
    switch (f->type) {
    case FT_EMAIL:
        if (!valid_email(s, n)) {
            err_set(e, 400, "INVALID_EMAIL_ADDRESS", "%s: invalid email address: %.*s", f->label,
                    (int)(n > 255 ? 255 : n), s);
            return err_fields(e, f->name);
        }
        break;
    case FT_PICKLIST:
        if (f->restricted_picklist) {
            const char *c = picklist_canon(f, s, n);
            if (c == NULL)
                return picklist_error(f, s, n, e);
            val_text_ref(out, c, strlen(c));
            return 0;
        }
        break;
    case FT_MULTIPICKLIST:
        if (f->restricted_picklist) {
            sb m = SB_INIT;
            const char *p = s, *end = s + n;
            while (p <= end) {
                const char *q = memchr(p, ';', (size_t)(end - p));
                if (q == NULL)
                    q = end;
                const char *c = picklist_canon(f, p, (size_t)(q - p));
                if (c == NULL) {
                    sb_free(&m);
                    return picklist_error(f, p, (size_t)(q - p), e);
                }
                if (m.len)
                    sb_putc(&m, ';');
                sb_puts(&m, c);
                p = q + 1;
            }
            val_text_take(out, sb_steal(&m));
            return 0;
        }
        break;
    default: break;
    }
    if (s == num || json_typeof(v) != JSON_STRING)
        val_text_copy(out, s, n);
    else
        val_text_ref(out, s, n);
    return 0;
}

/* Round to the field's scale and check its precision. */
static int
convert_real(const lf_field *f, double r, json_t *v, val *out, err_t *e)
{
    if (!isfinite(r))
        return deser_error(f, v, e);
    if (f->scale <= 15) {
        double m = pow(10.0, f->scale);
        double x = r * m;
        if (fabs(x) < 9007199254740992.0)
            r = round(x) / m;
    }
    int digits = f->precision - f->scale;
    if (digits < 1)
        digits = 1;
    if (fabs(r) >= pow(10.0, digits)) {
        char t[40];
        snprintf(t, sizeof t, "%.17g", r);
        return range_error(f, t, e);
    }
    val_real(out, r);
    return 0;
}

/* Convert v, a value given for field f, into out. */
int
conv_value(store *st, const lf_field *f, json_t *v, val *out, err_t *e)
{
    lf_storage stg = lf_types[f->type].storage;
    if (json_is_null(v)) {
        if (stg == ST_BOOL)
            val_int(out, 0);
        else
            val_null(out);
        return 0;
    }
    switch (stg) {
    case ST_TEXT: return convert_text(st, f, v, out, e);
    case ST_BOOL:
        if (json_is_boolean(v)) {
            val_int(out, json_is_true(v));
            return 0;
        }
        if (json_is_string(v) && (strcasecmp(json_string_value(v), "true") == 0 ||
                                  strcasecmp(json_string_value(v), "false") == 0)) {
            val_int(out, strcasecmp(json_string_value(v), "true") == 0);
            return 0;
        }
        return deser_error(f, v, e);
    case ST_INT: {
        int64_t i;
        if (json_is_integer(v)) {
            i = json_integer_value(v);
        } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                   fabs(json_real_value(v)) < 9.2e18) {
            i = (int64_t)json_real_value(v);
        } else if (json_is_string(v) && util_parse_i64(json_string_value(v), &i) == 0) {
            /* numeric string: accepted */
        } else {
            return deser_error(f, v, e);
        }
        int64_t lim = 1;
        for (int k = 0; k < f->precision && k < 18; k++)
            lim *= 10;
        if (i >= lim || i <= -lim) {
            char t[32];
            snprintf(t, sizeof t, "%" PRId64, i);
            return range_error(f, t, e);
        }
        val_int(out, i);
        return 0;
    }
    case ST_REAL: {
        double r;
        if (json_is_number(v))
            r = json_number_value(v);
        else if (!json_is_string(v) || util_parse_double(json_string_value(v), &r))
            return deser_error(f, v, e);
        return convert_real(f, r, v, out, e);
    }
    case ST_DATE: {
        int y, m, d;
        const char *s = json_string_value(v);
        if (s == NULL || util_parse_date(s, &y, &m, &d))
            return deser_error(f, v, e);
        if (s[10] == 'T') {
            int64_t ms;
            char buf[32];
            if (util_parse_datetime(s, &ms))
                return deser_error(f, v, e);
            util_fmt_datetime(ms, buf);
            val_text_copy(out, buf, 10);
        } else {
            val_text_copy(out, s, 10);
        }
        return 0;
    }
    case ST_DATETIME: {
        int64_t ms;
        if (!json_is_string(v) || util_parse_datetime(json_string_value(v), &ms))
            return deser_error(f, v, e);
        val_int(out, ms);
        return 0;
    }
    }
    return deser_error(f, v, e);
}

/* Live rows of oi whose field ix equals key: up to max rowids/ids, *count = how many
 * (at most MAX_MATCHES + 1). exclude: a rowid to skip (0 = none). */
int
conv_ext_lookup(store *st, objinfo *oi, int ix, const val *key, int64_t exclude, int64_t *rowids,
                char (*ids)[19], int max, int *count, err_t *e)
{
    sqlite3_stmt *q = oi_ext(st, oi, ix, e);
    if (q == NULL)
        return -1;
    val_bind(q, 1, key);
    int n = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t r = sqlite3_column_int64(q, 0);
        if (r == exclude)
            continue;
        if (n < max) {
            if (rowids)
                rowids[n] = r;
            if (ids)
                snprintf(ids[n], 19, "%s", (const char *)sqlite3_column_text(q, 1));
        }
        n++;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc != SQLITE_DONE)
        return stdb_fail(st, e, "lookup");
    *count = n;
    return 0;
}

/* {"Teacher__r": {"Email__c": "x"}}: the parent's Id into out. */
int
conv_resolve_relationship(store *st, const lf_field *f, json_t *v, val *out, err_t *e)
{
    if (json_is_null(v)) {
        val_null(out);
        return 0;
    }
    objinfo *poi = oi_find(st, f->reference_to);
    if (!json_is_object(v) || poi == NULL) {
        err_set(e, 400, "INVALID_FIELD",
                "The value provided for foreign key reference %s is not a nested SObject",
                f->relationship_name);
        return err_fields(e, f->relationship_name);
    }
    const char *key = NULL, *k;
    json_t *kv = NULL, *x;
    int nkeys = 0;
    json_object_foreach(v, k, x) {
        if (strcasecmp(k, "attributes") == 0)
            continue;
        key = k;
        kv = x;
        nkeys++;
    }
    if (nkeys != 1) {
        err_set(e, 400, "INVALID_FIELD",
                "Foreign key reference %s must name exactly one external ID field of %s",
                f->relationship_name, poi->o->name);
        return err_fields(e, f->relationship_name);
    }
    int ix = oi_map_get(&poi->byname, poi->o, key, false);
    const lf_field *pf = ix >= 0 ? poi->o->fields[ix] : NULL;
    if (pf == NULL || !(pf->external_id || ix == poi->ix_id)) {
        err_set(e, 400, "INVALID_FIELD",
                "Field %s is not an external ID field of %s (foreign key reference %s)", key,
                poi->o->name, f->relationship_name);
        return err_fields(e, f->relationship_name);
    }
    if (ix == poi->ix_id) {
        if (!json_is_string(kv))
            return deser_error(f, kv, e);
        return convert_reference(st, f, json_string_value(kv), json_string_length(kv), out, e);
    }
    val key_val = {0};
    if (conv_value(st, pf, kv, &key_val, e))
        return -1;
    char ids[2][19];
    int n = 0;
    int rc = val_empty(&key_val) ? 0
                                 : conv_ext_lookup(st, poi, ix, &key_val, 0, NULL, ids, 2, &n, e);
    char shown[128];
    if (key_val.kind == V_TEXT)
        snprintf(shown, sizeof shown, "%.100s", key_val.s);
    else if (key_val.kind == V_INT)
        snprintf(shown, sizeof shown, "%" PRId64, key_val.i);
    else if (key_val.kind == V_REAL)
        snprintf(shown, sizeof shown, "%.17g", key_val.r);
    else
        snprintf(shown, sizeof shown, "null");
    val_reset(&key_val);
    if (rc)
        return -1;
    if (n == 0) {
        err_set(e, 400, "INVALID_FIELD",
                "Foreign key external ID: %s not found for field %s in entity %s", shown, pf->name,
                poi->o->name);
        return err_fields(e, f->relationship_name);
    }
    if (n > 1) {
        err_set(e, 400, "INVALID_FIELD",
                "Foreign key external ID: %s matches more than one record for field %s in "
                "entity %s",
                shown, pf->name, poi->o->name);
        return err_fields(e, f->relationship_name);
    }
    val_text_copy(out, ids[0], 18);
    return 0;
}
