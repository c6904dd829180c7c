/*
 * schema_json: object and field definitions to and from JSON.
 *
 * The same JSON shape serves the org definition file (docs/org-file.md), the
 * admin API and the metadata the store keeps in its database, so that
 * schema_object_from_json(schema_object_to_json(o)) rebuilds o. Parsing is
 * strict: an unknown key, a wrong JSON type or an option that does not apply
 * to the field's type is an error naming the object, field and key.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sb.h"
#include "schema.h"
#include "util.h"

#define API_NAME_MAX 80

/* Standard objects a definition may name without the __c suffix. */
static const struct {
    const char *name, *prefix, *label, *plural;
} std_objects[] = {
    {"Account", "001", "Account", "Accounts"},
    {"Note", "002", "Note", "Notes"},
    {"Contact", "003", "Contact", "Contacts"},
    {"User", "005", "User", "Users"},
    {"Opportunity", "006", "Opportunity", "Opportunities"},
    {"Attachment", "00P", "Attachment", "Attachments"},
    {"Lead", "00Q", "Lead", "Leads"},
    {"Task", "00T", "Task", "Tasks"},
    {"Event", "00U", "Event", "Events"},
    {"Asset", "02i", "Asset", "Assets"},
    {"Pricebook2", "01s", "Price Book", "Price Books"},
    {"Product2", "01t", "Product", "Products"},
    {"Case", "500", "Case", "Cases"},
    {"Campaign", "701", "Campaign", "Campaigns"},
    {"Contract", "800", "Contract", "Contracts"},
    {"Order", "801", "Order", "Orders"},
    {"PushTopic", "0IF", "Push Topic", "Push Topics"}, /* created in every org by events.c */
};

/* Fields every object has and a definition may not declare (Name aside). */
static const char *const auto_fields[] = {
    "Id",
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
    "OwnerId",
};

#define TB(t) (1u << (t))
#define TEXTISH                                                                   \
    (TB(FT_STRING) | TB(FT_TEXTAREA) | TB(FT_EMAIL) | TB(FT_PHONE) | TB(FT_URL) | \
     TB(FT_PICKLIST) | TB(FT_MULTIPICKLIST))
#define NUMERIC (TB(FT_INT) | TB(FT_DOUBLE) | TB(FT_CURRENCY) | TB(FT_PERCENT))
#define KEYABLE \
    (TB(FT_STRING) | TB(FT_EMAIL) | TB(FT_PHONE) | TB(FT_URL) | TB(FT_INT) | TB(FT_DOUBLE))
#define PICKLIST (TB(FT_PICKLIST) | TB(FT_MULTIPICKLIST))
#define ANYTYPE  0xFFFFFFFFu

/* Field definition keys and the types they apply to. */
static const struct {
    const char *key;
    unsigned types;
} field_keys[] = {
    {"type", ANYTYPE},
    {"label", ANYTYPE},
    {"length", TEXTISH},
    {"precision", NUMERIC},
    {"scale", NUMERIC},
    {"required", ANYTYPE},
    {"unique", KEYABLE},
    {"case_sensitive", TEXTISH &KEYABLE},
    {"external_id", KEYABLE},
    {"values", PICKLIST},
    {"restricted", PICKLIST},
    {"default", ANYTYPE & ~(TB(FT_REFERENCE) | TB(FT_ID))},
    {"reference_to", TB(FT_REFERENCE)},
    {"relationship_name", TB(FT_REFERENCE)},
    {"createable", ANYTYPE},
    {"updateable", ANYTYPE},
};

static const char *const object_keys[] = {"label", "label_plural", "key_prefix", "fields",
                                          "change_data_capture"};

static bool
ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* One part of an API name: a letter, then letters, digits and single underscores. */
static bool
valid_name_part(const char *s, size_t n)
{
    if (n == 0 || !isalpha((unsigned char)s[0]) || s[n - 1] == '_')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* "Name", "Name__<suffix>" or "ns__Name__<suffix>": suffix "c" for fields and
 * objects (it makes them custom), "r" for relationship names. */
static bool
valid_name(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    if (n == 0 || n > API_NAME_MAX)
        return false;
    const char *parts[4];
    size_t lens[4], np = 0;
    const char *p = s;
    for (;;) {
        const char *q = strstr(p, "__");
        if (np == 3)
            return false;
        parts[np] = p;
        lens[np] = q ? (size_t)(q - p) : strlen(p);
        np++;
        if (q == NULL)
            break;
        p = q + 2;
    }
    if (np > 1 && strcasecmp(parts[np - 1], suffix) != 0)
        return false;
    for (size_t i = 0; i + 1 < np || (np == 1 && i == 0); i++)
        if (!valid_name_part(parts[i], lens[i]))
            return false;
    return true;
}

static bool
valid_api_name(const char *s)
{
    return valid_name(s, "c");
}

static int
find_std_object(const char *name)
{
    for (size_t i = 0; i < sizeof std_objects / sizeof std_objects[0]; i++)
        if (strcasecmp(std_objects[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool
is_auto_field(const char *name)
{
    for (size_t i = 0; i < sizeof auto_fields / sizeof auto_fields[0]; i++)
        if (strcasecmp(auto_fields[i], name) == 0)
            return true;
    return false;
}

/* "First_Name__c" -> "First Name", "AccountId" -> "Account ID", "FirstName" -> "First Name". */
static char *
default_label(const char *name, bool reference)
{
    sb s = SB_INIT;
    size_t n = strlen(name);
    bool custom = ends_with_ci(name, "__c");
    if (custom)
        n -= 3;
    bool id_suffix = !custom && reference && n > 2 && strncmp(name + n - 2, "Id", 2) == 0;
    if (id_suffix)
        n -= 2;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '_') {
            if (s.len && s.buf[s.len - 1] != ' ')
                sb_putc(&s, ' ');
            continue;
        }
        if (!custom && i > 0 && isupper((unsigned char)c) && islower((unsigned char)name[i - 1]))
            sb_putc(&s, ' ');
        sb_putc(&s, c);
    }
    if (id_suffix)
        sb_puts(&s, " ID");
    if (s.len == 0)
        sb_puts(&s, name);
    return sb_steal(&s);
}

static lf_field *
field_new(const char *name, const char *label, lf_ftype type)
{
    lf_field *f = xcalloc(1, sizeof *f);
    f->name = xstrdup(name);
    f->label = xstrdup(label);
    f->type = type;
    f->custom = ends_with_ci(name, "__c");
    f->createable = f->updateable = true;
    return f;
}

static lf_field *
system_field(const char *name, const char *label, lf_ftype type, const char *ref, const char *rel)
{
    lf_field *f = field_new(name, label, type);
    f->system = true;
    f->createable = f->updateable = false;
    if (type == FT_ID || type == FT_REFERENCE)
        f->length = 18;
    if (ref) {
        f->reference_to = xstrdup(ref);
        f->relationship_name = xstrdup(rel);
    }
    return f;
}

static int bad(err_t *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
bad(err_t *e, const char *path, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(e, 400, "INVALID_FIELD", "%s: %s", path, msg);
}

static int
get_bool(json_t *v, const char *path, const char *key, bool *out, err_t *e)
{
    if (!json_is_boolean(v))
        return bad(e, path, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int
get_int(json_t *v, const char *path, const char *key, int lo, int hi, int *out, err_t *e)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return bad(e, path, "'%s' must be an integer from %d to %d", key, lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static bool
picklist_has(const lf_field *f, const char *v, size_t n)
{
    for (size_t i = 0; i < f->npicklist; i++)
        if (strlen(f->picklist[i]) == n && strncasecmp(f->picklist[i], v, n) == 0)
            return true;
    return false;
}

static size_t
utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* The "default" option as text, checked against the field's type. */
static int
parse_default(lf_field *f, json_t *v, const char *path, err_t *e)
{
    sb s = SB_INIT;
    switch (lf_types[f->type].storage) {
    case ST_BOOL:
        if (json_is_boolean(v))
            sb_puts(&s, json_is_true(v) ? "true" : "false");
        else
            return bad(e, path, "'default' must be true or false");
        break;
    case ST_INT:
    case ST_REAL:
        if (json_is_integer(v)) {
            sb_put_i64(&s, json_integer_value(v));
        } else if (json_is_real(v) && f->type != FT_INT) {
            sb_json_double(&s, json_real_value(v));
        } else if (json_is_real(v) && json_real_value(v) == (double)(int64_t)json_real_value(v)) {
            sb_put_i64(&s, (int64_t)json_real_value(v));
        } else {
            return bad(e, path, "'default' must be a%s number",
                       f->type == FT_INT ? "n integer" : "");
        }
        break;
    case ST_DATETIME: {
        int64_t ms;
        if (!json_is_string(v) || util_parse_datetime(json_string_value(v), &ms))
            return bad(e, path, "'default' must be a datetime like 2024-01-02T03:04:05Z");
        sb_puts(&s, json_string_value(v));
        break;
    }
    case ST_DATE: {
        int y, m, d;
        if (!json_is_string(v) || strlen(json_string_value(v)) != 10 ||
            util_parse_date(json_string_value(v), &y, &m, &d))
            return bad(e, path, "'default' must be a date like 2024-01-02");
        sb_puts(&s, json_string_value(v));
        break;
    }
    case ST_TEXT:
        if (!json_is_string(v))
            return bad(e, path, "'default' must be a string");
        sb_puts(&s, json_string_value(v));
        break;
    }
    f->default_value = sb_steal(&s);
    return 0;
}

/* Checks that need all options: lengths, picklist defaults, relationship names. */
static int
check_field(lf_field *f, const char *path, err_t *e)
{
    if (f->type == FT_REFERENCE) {
        if (f->reference_to == NULL)
            return bad(e, path, "a reference field needs 'reference_to'");
        if (f->relationship_name == NULL) {
            size_t n = strlen(f->name);
            if (f->custom) {
                f->relationship_name = xstrdup(f->name);
                f->relationship_name[n - 1] = 'r';
            } else if (n > 2 && strcmp(f->name + n - 2, "Id") == 0) {
                f->relationship_name = xstrndup(f->name, n - 2);
            } else {
                return bad(e, path,
                           "'relationship_name' is needed (the default drops a trailing \"Id\")");
            }
        }
    }
    if (f->scale > f->precision)
        return bad(e, path, "'scale' (%d) is larger than 'precision' (%d)", f->scale, f->precision);
    if (f->type == FT_INT && f->scale != 0)
        return bad(e, path, "an int field has scale 0");
    if (f->default_value && (f->type == FT_PICKLIST || f->type == FT_MULTIPICKLIST) &&
        f->restricted_picklist) {
        const char *p = f->default_value;
        for (;;) {
            const char *q = f->type == FT_MULTIPICKLIST ? strchr(p, ';') : NULL;
            size_t n = q ? (size_t)(q - p) : strlen(p);
            if (!picklist_has(f, p, n))
                return bad(e, path, "default '%s' is not one of the picklist values",
                           f->default_value);
            if (q == NULL)
                break;
            p = q + 1;
        }
    }
    if (f->default_value && lf_types[f->type].storage == ST_TEXT && f->length > 0 &&
        utf8_chars(f->default_value) > (size_t)f->length)
        return bad(e, path, "default is longer than 'length' (%d)", f->length);
    if (f->restricted_picklist && f->npicklist == 0)
        return bad(e, path, "a restricted picklist needs 'values'");
    return 0;
}

static void
set_type_defaults(lf_field *f)
{
    switch (f->type) {
    case FT_TEXTAREA: f->length = 32768; break;
    case FT_EMAIL: f->length = 80; break;
    case FT_PHONE: f->length = 40; break;
    case FT_MULTIPICKLIST: f->length = 4099; break;
    case FT_STRING:
    case FT_URL:
    case FT_PICKLIST: f->length = 255; break;
    case FT_REFERENCE:
    case FT_ID: f->length = 18; break;
    case FT_INT: f->precision = 18, f->scale = 0; break;
    case FT_DOUBLE:
    case FT_CURRENCY:
    case FT_PERCENT: f->precision = 18, f->scale = 2; break;
    default: break;
    }
}

/* Options that are plain numbers or flags of lf_field. */
static const struct {
    const char *key;
    size_t off;
    int lo, hi;
} int_options[] = {
    {"length", offsetof(lf_field, length), 1, 131072},
    {"precision", offsetof(lf_field, precision), 1, 18},
    {"scale", offsetof(lf_field, scale), 0, 17},
};

static const struct {
    const char *key;
    size_t off;
} bool_options[] = {
    {"required", offsetof(lf_field, required)},
    {"unique", offsetof(lf_field, unique)},
    {"case_sensitive", offsetof(lf_field, case_sensitive)},
    {"external_id", offsetof(lf_field, external_id)},
    {"restricted", offsetof(lf_field, restricted_picklist)},
    {"createable", offsetof(lf_field, createable)},
    {"updateable", offsetof(lf_field, updateable)},
};

/* Parse one option of a field definition. */
static int
field_option(lf_field *f, const char *key, json_t *v, const char *path, err_t *e)
{
    if (strcmp(key, "type") == 0)
        return 0;
    if (strcmp(key, "label") == 0) {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return bad(e, path, "'label' must be a non-empty string");
        free(f->label);
        f->label = xstrdup(json_string_value(v));
        return 0;
    }
    for (size_t i = 0; i < sizeof int_options / sizeof int_options[0]; i++)
        if (strcmp(key, int_options[i].key) == 0)
            return get_int(v, path, key, int_options[i].lo, int_options[i].hi,
                           (int *)((char *)f + int_options[i].off), e);
    for (size_t i = 0; i < sizeof bool_options / sizeof bool_options[0]; i++)
        if (strcmp(key, bool_options[i].key) == 0)
            return get_bool(v, path, key, (bool *)((char *)f + bool_options[i].off), e);
    if (strcmp(key, "values") == 0) {
        if (!json_is_array(v))
            return bad(e, path, "'values' must be an array of strings");
        size_t n = json_array_size(v);
        f->picklist = xcalloc(n ? n : 1, sizeof *f->picklist);
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array_get(v, i);
            if (!json_is_string(s) || json_string_length(s) == 0 ||
                strchr(json_string_value(s), ';'))
                return bad(e, path, "'values' must be non-empty strings without ';'");
            if (picklist_has(f, json_string_value(s), json_string_length(s)))
                return bad(e, path, "picklist value '%s' is listed twice", json_string_value(s));
            f->picklist[f->npicklist++] = xstrdup(json_string_value(s));
        }
        return 0;
    }
    if (strcmp(key, "default") == 0)
        return json_is_null(v) ? 0 : parse_default(f, v, path, e);
    if (strcmp(key, "reference_to") == 0 || strcmp(key, "relationship_name") == 0) {
        bool rel = strcmp(key, "relationship_name") == 0;
        if (!json_is_string(v) || !valid_name(json_string_value(v), rel ? "r" : "c"))
            return bad(e, path, "'%s' must be an API name%s", key,
                       rel ? " (custom relationships end in __r)" : "");
        char **dst = rel ? &f->relationship_name : &f->reference_to;
        free(*dst);
        *dst = xstrdup(json_string_value(v));
        return 0;
    }
    return bad(e, path, "unknown key '%s'", key);
}

/* A field from its definition; path names it in errors. */
static lf_field *
field_parse(const char *path, const char *name, json_t *def, err_t *e)
{
    if (!valid_api_name(name)) {
        bad(e, path,
            "'%s' is not a valid field name (letters, digits and single "
            "underscores; custom fields end in __c)",
            name);
        return NULL;
    }
    if (!json_is_object(def)) {
        bad(e, path, "a field definition must be a JSON object");
        return NULL;
    }
    json_t *jt = json_object_get(def, "type");
    if (!json_is_string(jt)) {
        bad(e, path, "'type' is missing");
        return NULL;
    }
    lf_ftype type;
    if (lf_type_parse(json_string_value(jt), &type)) {
        bad(e, path, "unknown type '%s'", json_string_value(jt));
        return NULL;
    }
    if (type == FT_ID) {
        bad(e, path, "type 'id' is reserved for the Id field");
        return NULL;
    }
    char *label = default_label(name, type == FT_REFERENCE);
    lf_field *f = field_new(name, label, type);
    free(label);
    set_type_defaults(f);

    const char *key;
    json_t *v;
    json_object_foreach(def, key, v) {
        size_t k;
        for (k = 0; k < sizeof field_keys / sizeof field_keys[0]; k++)
            if (strcmp(field_keys[k].key, key) == 0)
                break;
        if (k == sizeof field_keys / sizeof field_keys[0]) {
            bad(e, path, "unknown key '%s'", key);
            goto fail;
        }
        if (!(field_keys[k].types & TB(type))) {
            bad(e, path, "'%s' does not apply to type %s", key, lf_types[type].name);
            goto fail;
        }
        /* Defaults are checked after "values" and "length" are known. */
        if (strcmp(key, "default") == 0)
            continue;
        if (field_option(f, key, v, path, e))
            goto fail;
    }
    json_t *dv = json_object_get(def, "default");
    if (dv && field_option(f, "default", dv, path, e))
        goto fail;
    if (check_field(f, path, e))
        goto fail;
    return f;
fail:
    field_free(f);
    return NULL;
}

lf_field *
schema_field_from_json(const char *name, json_t *def, err_t *e)
{
    return field_parse(name ? name : "(null)", name ? name : "", def, e);
}

int
schema_check_relationships(const lf_object *o, const char *opath, const char *by, err_t *e)
{
    for (size_t i = 0; i < o->nfields; i++) {
        const lf_field *f = o->fields[i];
        if (f->type != FT_REFERENCE || f->relationship_name == NULL)
            continue;
        const lf_field *g = object_field(o, f->relationship_name);
        const lf_field *h = object_field_by_relationship(o, f->relationship_name);
        if (g || h != f)
            return err_set(e, 400, "INVALID_FIELD",
                           "%s.fields.%s: relationship name '%s' is already used by %s%s", opath,
                           f->name, f->relationship_name, by, g ? g->name : h->name);
    }
    return 0;
}

/* The keys of an object definition and their JSON types; key_prefix's shape. */
static int
object_check_keys(json_t *def, const char *path, err_t *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(def, key, v) {
        size_t k;
        for (k = 0; k < sizeof object_keys / sizeof object_keys[0]; k++)
            if (strcmp(object_keys[k], key) == 0)
                break;
        if (k == sizeof object_keys / sizeof object_keys[0])
            return bad(e, path, "unknown key '%s'", key);
        bool is_fields = strcmp(key, "fields") == 0,
             is_cdc = strcmp(key, "change_data_capture") == 0;
        if (is_fields ? !json_is_object(v) : is_cdc ? !json_is_boolean(v) : !json_is_string(v))
            return bad(e, path, "'%s' must be %s", key,
                       is_fields ? "a JSON object"
                       : is_cdc  ? "true or false"
                                 : "a string");
    }
    json_t *jprefix = json_object_get(def, "key_prefix");
    if (jprefix) {
        const char *p = json_string_value(jprefix);
        if (strlen(p) != 3 || !isalnum((unsigned char)p[0]) || !isalnum((unsigned char)p[1]) ||
            !isalnum((unsigned char)p[2]))
            return bad(e, path, "'key_prefix' must be 3 letters or digits");
    }
    return 0;
}

/* Label, plural label and key prefix: given, else the standard object's, else made up. */
static void
object_labels(lf_object *o, const char *name, int std, json_t *def)
{
    json_t *jl = json_object_get(def, "label"), *jp = json_object_get(def, "label_plural");
    json_t *jprefix = json_object_get(def, "key_prefix");
    if (jl)
        o->label = xstrdup(json_string_value(jl));
    else if (std >= 0)
        o->label = xstrdup(std_objects[std].label);
    else
        o->label = default_label(name, false);
    if (jp)
        o->label_plural = xstrdup(json_string_value(jp));
    else if (std >= 0 && !jl)
        o->label_plural = xstrdup(std_objects[std].plural);
    else {
        sb s = SB_INIT;
        sb_printf(&s, "%ss", o->label);
        o->label_plural = sb_steal(&s);
    }
    if (jprefix)
        memcpy(o->key_prefix, json_string_value(jprefix), 4);
    else if (std >= 0)
        memcpy(o->key_prefix, std_objects[std].prefix, 4);
}

/* What the declared fields say about the Name field. */
typedef struct name_decl {
    json_t *jname;        /* a declared Name field, or NULL */
    const char *name_key; /* its key as written */
    bool has_first, has_last;
} name_decl;

/* Check the declared field names (no system fields, __c on custom objects). */
static int
scan_fields(json_t *fields, const char *path, bool custom, name_decl *nd, err_t *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(fields, key, v) {
        char fpath[512];
        snprintf(fpath, sizeof fpath, "%s.fields.%.200s", path, key);
        if (strcasecmp(key, "Name") == 0) {
            nd->jname = v;
            nd->name_key = key;
        } else if (is_auto_field(key)) {
            return bad(e, fpath, "'%s' is a system field every object has; do not declare it", key);
        } else if (custom && !ends_with_ci(key, "__c")) {
            return bad(e, fpath, "custom field names must end in __c");
        }
        nd->has_first |= strcmp(key, "FirstName") == 0;
        nd->has_last |= strcmp(key, "LastName") == 0;
    }
    return 0;
}

/* The Name field: declared, a full name from FirstName and LastName, or "<label> Name". */
static lf_field *
name_field(const lf_object *o, const char *path, const name_decl *nd, err_t *e)
{
    lf_field *f;
    if (nd->jname) {
        char fpath[512];
        snprintf(fpath, sizeof fpath, "%s.fields.%.200s", path, nd->name_key);
        f = field_parse(fpath, "Name", nd->jname, e);
        if (f && f->type != FT_STRING) {
            bad(e, fpath, "the Name field must be of type string");
            field_free(f);
            f = NULL;
        }
    } else if (nd->has_first && nd->has_last) {
        f = field_new("Name", "Full Name", FT_STRING);
        f->length = 121;
        f->createable = f->updateable = false;
    } else {
        sb s = SB_INIT;
        sb_printf(&s, "%s Name", o->label);
        f = field_new("Name", s.buf, FT_STRING);
        sb_free(&s);
        f->length = 80;
    }
    return f;
}

/* System fields first, in describe order. */
static int
add_system_fields(lf_object *o, const char *path, const name_decl *nd, err_t *e)
{
    lf_field *sys[9];
    sys[0] = system_field("Id", "Record ID", FT_ID, NULL, NULL);
    sys[1] = system_field("IsDeleted", "Deleted", FT_BOOLEAN, NULL, NULL);
    sys[2] = name_field(o, path, nd, e);
    if (sys[2] == NULL) {
        field_free(sys[0]);
        field_free(sys[1]);
        return -1;
    }
    sys[3] = system_field("CreatedDate", "Created Date", FT_DATETIME, NULL, NULL);
    sys[4] = system_field("CreatedById", "Created By ID", FT_REFERENCE, "User", "CreatedBy");
    sys[5] = system_field("LastModifiedDate", "Last Modified Date", FT_DATETIME, NULL, NULL);
    sys[6] = system_field("LastModifiedById", "Last Modified By ID", FT_REFERENCE, "User",
                          "LastModifiedBy");
    sys[7] = system_field("SystemModstamp", "System Modstamp", FT_DATETIME, NULL, NULL);
    sys[8] = system_field("OwnerId", "Owner ID", FT_REFERENCE, "User", "Owner");
    sys[8]->system = false;
    sys[8]->createable = sys[8]->updateable = true;
    for (int i = 0; i < 9; i++)
        object_add_field(o, sys[i], NULL);
    return 0;
}

/* The declared fields other than Name, in the order written. */
static int
add_declared_fields(lf_object *o, json_t *fields, const char *path, const name_decl *nd, err_t *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(fields, key, v) {
        if (v == nd->jname)
            continue;
        char fpath[512];
        snprintf(fpath, sizeof fpath, "%s.fields.%.200s", path, key);
        lf_field *f = field_parse(fpath, key, v, e);
        if (f == NULL)
            return -1;
        if (object_field(o, key)) {
            bad(e, fpath, "field '%s' is declared twice", key);
            field_free(f);
            return -1;
        }
        object_add_field(o, f, NULL);
    }
    return 0;
}

lf_object *
schema_object_from_json(const char *name, json_t *def, err_t *e)
{
    char path[256];
    snprintf(path, sizeof path, "objects.%.200s", name ? name : "(null)");
    if (name == NULL || !valid_api_name(name)) {
        bad(e, path, "'%s' is not a valid object name", name ? name : "");
        return NULL;
    }
    bool custom = ends_with_ci(name, "__c");
    int std = custom ? -1 : find_std_object(name);
    if (!custom && std < 0) {
        bad(e, path,
            "custom object names must end in __c (standard objects: Account, "
            "Contact, Lead, Opportunity, Case, User, ...)");
        return NULL;
    }
    if (!json_is_object(def)) {
        bad(e, path, "an object definition must be a JSON object");
        return NULL;
    }
    if (object_check_keys(def, path, e))
        return NULL;

    lf_object *o = xcalloc(1, sizeof *o);
    o->custom = custom;
    o->no_cdc = json_is_false(json_object_get(def, "change_data_capture"));
    o->name = xstrdup(std >= 0 ? std_objects[std].name : name);
    object_labels(o, name, std, def);

    json_t *fields = json_object_get(def, "fields");
    name_decl nd = {0};
    if (scan_fields(fields, path, custom, &nd, e) || add_system_fields(o, path, &nd, e) ||
        add_declared_fields(o, fields, path, &nd, e) ||
        schema_check_relationships(o, path, "field ", e)) {
        object_free(o);
        return NULL;
    }
    return o;
}

static json_t *
default_to_json(const lf_field *f)
{
    const char *d = f->default_value;
    switch (lf_types[f->type].storage) {
    case ST_BOOL: return json_boolean(strcmp(d, "true") == 0);
    case ST_INT: {
        int64_t i;
        if (util_parse_i64(d, &i) == 0)
            return json_integer(i);
        break;
    }
    case ST_REAL: {
        double x;
        int64_t i;
        if (util_parse_i64(d, &i) == 0)
            return json_integer(i);
        if (util_parse_double(d, &x) == 0)
            return json_real(x);
        break;
    }
    default: break;
    }
    return json_string(d);
}

json_t *
schema_field_to_json(const lf_field *f)
{
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string(lf_types[f->type].name));
    json_object_set_new(j, "label", json_string(f->label));
    if (TB(f->type) & TEXTISH)
        json_object_set_new(j, "length", json_integer(f->length));
    if (TB(f->type) & NUMERIC) {
        json_object_set_new(j, "precision", json_integer(f->precision));
        json_object_set_new(j, "scale", json_integer(f->scale));
    }
    if (f->required)
        json_object_set_new(j, "required", json_true());
    if (f->unique)
        json_object_set_new(j, "unique", json_true());
    if (f->case_sensitive)
        json_object_set_new(j, "case_sensitive", json_true());
    if (f->external_id)
        json_object_set_new(j, "external_id", json_true());
    if (TB(f->type) & PICKLIST) {
        json_t *vals = json_array();
        for (size_t i = 0; i < f->npicklist; i++)
            json_array_append_new(vals, json_string(f->picklist[i]));
        json_object_set_new(j, "values", vals);
        if (f->restricted_picklist)
            json_object_set_new(j, "restricted", json_true());
    }
    if (f->default_value)
        json_object_set_new(j, "default", default_to_json(f));
    if (f->type == FT_REFERENCE) {
        json_object_set_new(j, "reference_to", json_string(f->reference_to));
        if (f->relationship_name)
            json_object_set_new(j, "relationship_name", json_string(f->relationship_name));
    }
    if (!f->createable)
        json_object_set_new(j, "createable", json_false());
    if (!f->updateable)
        json_object_set_new(j, "updateable", json_false());
    return j;
}

json_t *
schema_object_to_json(const lf_object *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "label", json_string(o->label));
    json_object_set_new(j, "label_plural", json_string(o->label_plural));
    if (o->key_prefix[0])
        json_object_set_new(j, "key_prefix", json_string(o->key_prefix));
    json_t *fields = json_object();
    bool computed_name = object_field(o, "FirstName") && object_field(o, "LastName");
    for (size_t i = 0; i < o->nfields; i++) {
        const lf_field *f = o->fields[i];
        if (f->system || is_auto_field(f->name))
            continue;
        if (strcmp(f->name, "Name") == 0 && computed_name && !f->createable && !f->updateable)
            continue;
        json_object_set_new(fields, f->name, schema_field_to_json(f));
    }
    json_object_set_new(j, "fields", fields);
    return j;
}
