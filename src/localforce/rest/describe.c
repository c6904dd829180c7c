/*
 * describe: metadata as Salesforce's describe JSON. See describe.h.
 */
#include "describe.h"

#include <string.h>
#include <strings.h>

static void
kv_bool(sb *out, const char *key, bool v)
{
    sb_printf(out, ",\"%s\":%s", key, v ? "true" : "false");
}

static void
kv_str(sb *out, const char *key, const char *v)
{
    sb_printf(out, ",\"%s\":", key);
    sb_json_str(out, v);
}

static void
kv_int(sb *out, const char *key, long long v)
{
    sb_printf(out, ",\"%s\":%lld", key, v);
}

/* Object-level keys shared by describeGlobal, basic info and describe. */
static void
object_keys(sb *out, const lf_object *o, const char *ver)
{
    bool is_user = strcmp(o->name, "User") == 0;
    sb_puts(out, "\"activateable\":false");
    kv_bool(out, "createable", !is_user);
    kv_bool(out, "custom", o->custom);
    kv_bool(out, "customSetting", false);
    kv_bool(out, "deepCloneable", false);
    kv_bool(out, "deletable", !is_user);
    kv_bool(out, "deprecatedAndHidden", false);
    kv_bool(out, "feedEnabled", false);
    kv_bool(out, "hasSubtypes", false);
    kv_bool(out, "isInterface", false);
    kv_bool(out, "isSubtype", false);
    kv_str(out, "keyPrefix", o->key_prefix);
    kv_str(out, "label", o->label ? o->label : o->name);
    kv_str(out, "labelPlural", o->label_plural ? o->label_plural : o->name);
    kv_bool(out, "layoutable", true);
    kv_bool(out, "mergeable", false);
    kv_bool(out, "mruEnabled", true);
    kv_str(out, "name", o->name);
    kv_bool(out, "queryable", true);
    kv_bool(out, "replicateable", true);
    kv_bool(out, "retrieveable", true);
    kv_bool(out, "searchable", true);
    kv_bool(out, "triggerable", true);
    kv_bool(out, "undeletable", !is_user);
    kv_bool(out, "updateable", true);
    sb_printf(out,
              ",\"urls\":{\"rowTemplate\":\"/services/data/%s/sobjects/%s/{ID}\""
              ",\"defaultValues\":\"/services/data/%s/sobjects/%s/"
              "defaultValues?recordTypeId&fields\""
              ",\"describe\":\"/services/data/%s/sobjects/%s/describe\""
              ",\"sobject\":\"/services/data/%s/sobjects/%s\"}",
              ver, o->name, ver, o->name, ver, o->name, ver, o->name);
}

void
describe_global(sb *out, const lf_schema *s, const char *ver)
{
    sb_puts(out, "{\"encoding\":\"UTF-8\",\"maxBatchSize\":200,\"sobjects\":[");
    for (size_t i = 0; i < s->nobjects; i++) {
        if (i)
            sb_putc(out, ',');
        sb_putc(out, '{');
        object_keys(out, s->objects[i], ver);
        sb_putc(out, '}');
    }
    sb_puts(out, "]}");
}

void
describe_object_basic(sb *out, const lf_object *o, const char *ver)
{
    sb_puts(out, "{\"objectDescribe\":{");
    object_keys(out, o, ver);
    sb_puts(out, "},\"recentItems\":[]}");
}

static bool
is_text(lf_ftype t)
{
    return lf_types[t].storage == ST_TEXT && t != FT_TIME;
}

void
describe_field(sb *out, const lf_field *f)
{
    lf_ftype t = f->type;
    bool text = is_text(t);
    bool number = t == FT_INT || t == FT_DOUBLE || t == FT_CURRENCY || t == FT_PERCENT;
    int length = t == FT_ID || t == FT_REFERENCE ? 18 : text ? f->length : 0;
    bool nillable = !f->required && t != FT_BOOLEAN && t != FT_ID &&
                    !(f->system && (strcmp(f->name, "CreatedDate") == 0 ||
                                    strcmp(f->name, "LastModifiedDate") == 0 ||
                                    strcmp(f->name, "SystemModstamp") == 0 ||
                                    strcmp(f->name, "CreatedById") == 0 ||
                                    strcmp(f->name, "LastModifiedById") == 0 ||
                                    strcmp(f->name, "OwnerId") == 0));
    bool filterable = t != FT_TEXTAREA || f->length <= 255;
    bool name_field = strcmp(f->name, "Name") == 0;

    sb_puts(out, "{\"aggregatable\":");
    sb_puts(out, t == FT_TEXTAREA || t == FT_BOOLEAN ? "false" : "true");
    kv_bool(out, "autoNumber", false);
    kv_int(out, "byteLength", text || t == FT_ID || t == FT_REFERENCE ? (long long)length * 3 : 0);
    kv_bool(out, "calculated", false);
    sb_puts(out, ",\"calculatedFormula\":null");
    kv_bool(out, "cascadeDelete", false);
    kv_bool(out, "caseSensitive", f->case_sensitive);
    sb_puts(out, ",\"compoundFieldName\":null,\"controllerName\":null");
    kv_bool(out, "createable", f->createable && !f->system);
    kv_bool(out, "custom", f->custom);
    if (t == FT_BOOLEAN)
        sb_printf(out, ",\"defaultValue\":%s",
                  f->default_value && strcmp(f->default_value, "true") == 0 ? "true" : "false");
    else
        kv_str(out, "defaultValue", f->default_value);
    sb_puts(out, ",\"defaultValueFormula\":null");
    kv_bool(out, "defaultedOnCreate", f->system || t == FT_BOOLEAN || f->default_value != NULL);
    kv_bool(out, "dependentPicklist", false);
    kv_bool(out, "deprecatedAndHidden", false);
    kv_int(out, "digits", t == FT_INT ? (f->precision ? f->precision : 18) : 0);
    kv_bool(out, "displayLocationInDecimal", false);
    kv_bool(out, "encrypted", false);
    kv_bool(out, "externalId", f->external_id);
    sb_puts(out, ",\"extraTypeInfo\":null");
    kv_bool(out, "filterable", filterable);
    sb_puts(out, ",\"filteredLookupInfo\":null");
    kv_bool(out, "groupable",
            filterable && t != FT_DOUBLE && t != FT_CURRENCY && t != FT_PERCENT &&
                t != FT_DATETIME);
    kv_bool(out, "highScaleNumber", false);
    kv_bool(out, "htmlFormatted", false);
    kv_bool(out, "idLookup", t == FT_ID || f->external_id || name_field);
    sb_puts(out, ",\"inlineHelpText\":null");
    kv_str(out, "label", f->label ? f->label : f->name);
    kv_int(out, "length", length);
    sb_puts(out, ",\"mask\":null,\"maskType\":null");
    kv_str(out, "name", f->name);
    kv_bool(out, "nameField", name_field);
    kv_bool(out, "namePointing", false);
    kv_bool(out, "nillable", nillable);
    kv_bool(out, "permissionable", f->custom && !f->required);
    sb_puts(out, ",\"picklistValues\":[");
    for (size_t i = 0; i < f->npicklist; i++) {
        if (i)
            sb_putc(out, ',');
        bool dflt = f->default_value && strcmp(f->default_value, f->picklist[i]) == 0;
        sb_printf(out, "{\"active\":true,\"defaultValue\":%s,\"label\":", dflt ? "true" : "false");
        sb_json_str(out, f->picklist[i]);
        sb_puts(out, ",\"validFor\":null,\"value\":");
        sb_json_str(out, f->picklist[i]);
        sb_putc(out, '}');
    }
    sb_putc(out, ']');
    kv_bool(out, "polymorphicForeignKey", false);
    kv_int(out, "precision", number && t != FT_INT ? (f->precision ? f->precision : 18) : 0);
    kv_bool(out, "queryByDistance", false);
    sb_puts(out, ",\"referenceTargetField\":null,\"referenceTo\":[");
    if (t == FT_REFERENCE && f->reference_to)
        sb_json_str(out, f->reference_to);
    sb_putc(out, ']');
    kv_str(out, "relationshipName", t == FT_REFERENCE ? f->relationship_name : NULL);
    sb_puts(out, ",\"relationshipOrder\":null");
    kv_bool(out, "restrictedDelete", false);
    kv_bool(out, "restrictedPicklist", f->restricted_picklist);
    kv_int(out, "scale", number && t != FT_INT ? f->scale : 0);
    kv_bool(out, "searchPrefilterable", false);
    kv_str(out, "soapType", lf_types[t].soap_type);
    kv_bool(out, "sortable", filterable);
    kv_str(out, "type", lf_types[t].name);
    kv_bool(out, "unique", f->unique);
    kv_bool(out, "updateable", f->updateable && !f->system);
    kv_bool(out, "writeRequiresMasterRead", false);
    sb_putc(out, '}');
}

/* "Course__c" -> "Courses__r"; "Contact" -> "Contacts". */
static void
child_relationship_name(sb *out, const lf_object *child)
{
    const char *n = child->name;
    size_t len = strlen(n);
    bool custom = len > 3 && strcmp(n + len - 3, "__c") == 0;
    sb tmp = SB_INIT;
    sb_append(&tmp, n, custom ? len - 3 : len);
    sb_puts(&tmp, custom ? "s__r" : "s");
    sb_json_str(out, sb_str(&tmp));
    sb_free(&tmp);
}

void
describe_object(sb *out, const lf_schema *s, const lf_object *o, const char *ver)
{
    sb_puts(out, "{\"actionOverrides\":[]");
    sb_putc(out, ',');
    /* object_keys starts without a comma */
    object_keys(out, o, ver);
    sb_puts(out, ",\"childRelationships\":[");
    bool first = true;
    for (size_t i = 0; i < s->nobjects; i++) {
        const lf_object *child = s->objects[i];
        for (size_t j = 0; j < child->nfields; j++) {
            const lf_field *f = child->fields[j];
            if (f->type != FT_REFERENCE || f->reference_to == NULL ||
                strcasecmp(f->reference_to, o->name) != 0 || f->system)
                continue;
            if (!first)
                sb_putc(out, ',');
            first = false;
            sb_puts(out, "{\"cascadeDelete\":false,\"childSObject\":");
            sb_json_str(out, child->name);
            sb_puts(out, ",\"deprecatedAndHidden\":false,\"field\":");
            sb_json_str(out, f->name);
            sb_puts(out,
                    ",\"junctionIdListNames\":[],\"junctionReferenceTo\":[],\"relationshipName\":");
            child_relationship_name(out, child);
            sb_puts(out, ",\"restrictedDelete\":false}");
        }
    }
    sb_puts(out, "],\"compactLayoutable\":true,\"fields\":[");
    for (size_t i = 0; i < o->nfields; i++) {
        if (i)
            sb_putc(out, ',');
        describe_field(out, o->fields[i]);
    }
    sb_printf(out,
              "],\"listviewable\":null,\"lookupLayoutable\":null,\"namedLayoutInfos\":[],"
              "\"networkScopeFieldName\":null,\"recordTypeInfos\":[{\"active\":true,"
              "\"available\":true,\"defaultRecordTypeMapping\":true,\"developerName\":\"Master\","
              "\"master\":true,\"name\":\"Master\",\"recordTypeId\":\"012000000000000AAA\","
              "\"urls\":{\"layout\":\"/services/data/%s/sobjects/%s/describe/layouts/"
              "012000000000000AAA\"}}],\"searchLayoutable\":true,\"supportedScopes\":"
              "[{\"label\":\"All %s\",\"name\":\"everything\"}]}",
              ver, o->name, o->label_plural ? o->label_plural : o->name);
}
