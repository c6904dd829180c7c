/*
 * fold: a record's entries folded into one operation (see fold.h).
 */
#include "fold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddl.h"
#include "log.h"
#include "sb.h"
#include "typed.h"
#include "util.h"

static const char *const kind_names[OP_KIND_COUNT] = {
    [OP_INSERT] = "insert", [OP_UPSERT] = "upsert",   [OP_UPDATE] = "update",
    [OP_DELETE] = "delete", [OP_NOTHING] = "nothing", [OP_LOOKUP_DELETE] = "lookup-delete",
};

const char *
op_kind_name(op_kind k)
{
    return (unsigned)k < OP_KIND_COUNT ? kind_names[k] : NULL;
}

int
op_kind_parse(const char *name, op_kind *out)
{
    for (int i = 0; name && i < OP_KIND_COUNT; i++)
        if (strcmp(kind_names[i], name) == 0) {
            *out = (op_kind)i;
            return 0;
        }
    return -1;
}

bool
op_kind_creates(op_kind k)
{
    return k == OP_INSERT || k == OP_UPSERT;
}

void
fold_entry_free(fold_entry *e)
{
    free(e->sfid);
    json_decref(e->payload);
    json_decref(e->vals);
}

void
op_free(op *o)
{
    free(o->sfid);
    json_decref(o->rec);
    json_decref(o->sent);
    json_decref(o->vals);
    free(o->ids);
    free(o->new_sfid);
    free(o->err_json);
    free(o->msg);
}

void
op_set_failed(op *o, const char *code, const char *message, json_t *fields)
{
    o->out = OUT_FAILED;
    snprintf(o->lastop, sizeof o->lastop, HC_FAILED);
    json_t *err = json_pack("{s:s,s:s,s:O?}", "statusCode", code, "message", message, "fields",
                            fields);
    const char *what = o->kind == OP_DELETE   ? "DELETE"
                       : o->kind == OP_UPDATE ? "UPDATE"
                       : o->kind == OP_UPSERT ? "UPSERT"
                                              : "INSERT";
    json_t *j = json_pack("{s:s,s:[o]}", "op", what, "errors", err);
    free(o->err_json);
    o->err_json = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    free(o->msg);
    sb m = SB_INIT;
    sb_printf(&m, "%s: %s", code, message);
    o->msg = sb_steal(&m);
}

void
op_set_retry(op *o, const char *why, bool unknown)
{
    o->out = OUT_RETRY;
    o->unknown = o->unknown || unknown;
    free(o->msg);
    o->msg = xstrdup(why);
}

void
op_set_ok(op *o, const char *lastop)
{
    o->out = OUT_OK;
    snprintf(o->lastop, sizeof o->lastop, "%s", lastop);
}

json_t *
fold_record(const mapping *m, json_t *vals, bool insert, const json_t *nulls)
{
    json_t *rec = json_pack("{s:{s:s}}", "attributes", "type", m->object);
    const char *col;
    json_t *v;
    size_t n = 0;
    json_object_foreach(vals, col, v) {
        const map_field *f = typed_field(m, col);
        if (!f || strcmp(col, "sfid") == 0 || f->via)
            continue;
        if (insert ? !f->createable : !f->updateable)
            continue;
        if (insert && json_is_null(v) && !json_object_get(nulls, col))
            continue;
        json_object_set_new(rec, f->name, typed_sf_value(f, v));
        n++;
    }
    /* A parent named by external id ("School__r": {"External_Id__c": "S-1"}),
     * unless the lookup itself is set. */
    json_object_foreach(vals, col, v) {
        const map_field *f = typed_field(m, col);
        if (!f || !f->via || json_is_null(v) || (insert ? !f->createable : !f->updateable))
            continue;
        if (json_is_string(json_object_get(rec, f->via)))
            continue;
        json_object_del(rec, f->via);
        const char *dot = strchr(f->name, '.');
        char rel[256];
        snprintf(rel, sizeof rel, "%.*s", (int)(dot - f->name), f->name);
        json_object_set_new(rec, rel, json_pack("{s:O}", dot + 1, v));
        n++;
    }
    if (!n && !insert) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

/* Record in emptied the columns an UPDATE set to null (an app's "clear
 * this"), and forget those it set to a value. */
static void
note_emptied(json_t *emptied, json_t *vals)
{
    const char *col;
    json_t *v;
    json_object_foreach(vals, col, v) {
        if (json_is_null(v))
            json_object_set_new(emptied, col, json_true());
        else
            json_object_del(emptied, col);
    }
}

/* The entries in commit order: what they say together, before the row is
 * consulted. Returns the kind; *sfid the latest sfid an entry names;
 * emptied the columns UPDATEs after the last INSERT set to null. */
static op_kind
fold_entries(const fold_entry *es, size_t n, op *o, json_t *vals, json_t *emptied,
             const char **sfid)
{
    op_kind kind = OP_NOTHING;
    for (size_t i = 0; i < n; i++) {
        const fold_entry *en = &es[i];
        o->ids[i] = en->id;
        o->unknown = o->unknown || en->unknown;
        if (en->unknown && en->payload && !o->sent)
            o->sent = json_incref(en->payload);
        o->attempts = en->attempts > o->attempts ? en->attempts : o->attempts;
        if (i == 0)
            snprintf(o->sent_at, sizeof o->sent_at, "%s", en->sent_at);
        if (en->sfid)
            *sfid = en->sfid;
        if (en->action == TLOG_INSERT) {
            kind = OP_INSERT;
            json_object_clear(vals);
            json_object_clear(emptied);
            if (en->vals)
                json_object_update(vals, en->vals);
        } else if (en->action == TLOG_UPDATE) {
            if (kind != OP_INSERT)
                kind = OP_UPDATE;
            if (en->vals) {
                json_object_update(vals, en->vals);
                note_emptied(emptied, en->vals);
            }
        } else {
            kind = OP_DELETE;
        }
    }
    return kind;
}

/*
 * The folding rules. A record's entries are read in commit order (trigger-log
 * id order) and say, together:
 *
 *  - INSERT starts over: the operation is an insert of the inserted row's
 *    values. UPDATEs after it are merged into the insert (later values win),
 *    so an insert followed by updates is ONE insert of the latest values.
 *  - UPDATEs alone merge into one update of every column they changed, later
 *    values winning.
 *  - DELETE wins over whatever came before it: the record is deleted.
 *
 * Then the sfid decides what can actually be sent. It is the latest sfid an
 * entry carries, else the row's sfid now, else the sfid an earlier successful
 * write of the record got (its SUCCESS or MERGED entries, found by the writer
 * and handed in as ri->sfid):
 *
 *  - an update without an sfid: the record never reached Salesforce (its
 *    insert was refused): the row is inserted as it is now (ri->row, the
 *    whole row), or nothing is sent if the row is gone. (An insert still in
 *    flight cannot be the reason: a record with an entry PENDING or waiting
 *    out a retry is not claimed.);
 *  - an insert with an sfid: the row already names its Salesforce record, so
 *    it is sent as an update (an update after an insert that went through);
 *  - a delete without an sfid: the record was created and deleted before
 *    anything was sent, so nothing is sent (the entries are IGNORED) -- unless
 *    an earlier attempt at its insert may have reached Salesforce (its outcome
 *    is unknown and its payload was remembered): then OP_LOOKUP_DELETE, look
 *    for it and delete what is found.
 *
 * Inserts and updates carry only the fields Salesforce lets them set; an
 * update left with nothing to set sends nothing. Inserts leave out columns
 * that are null: a new record gets Salesforce's defaults. An insert whose
 * unique identifier (the mapping's upsert field) is set becomes an upsert,
 * which may update an existing record: it too leaves out the nulls of the
 * inserted row (an INSERT cannot tell "empty" from "not given", and clearing
 * the existing record's Name is a write nobody asked for), and sends as null
 * only the columns a later UPDATE of the row emptied.
 *
 * The operation settles all the record's entries: ids in commit order, the
 * last one the survivor. When it succeeds, the survivor becomes SUCCESS and
 * the others MERGED (see the recorder); on failure or retry, all share the
 * outcome. The entries' unknown flags and attempts carry over (any unknown;
 * the most attempts), with the first remembered payload and the first
 * entry's sent_at, for the look before an insert is sent again.
 */
void
fold_group(const mapping *m, const fold_entry *es, size_t n, const fold_row *ri, op *o)
{
    memset(o, 0, sizeof *o);
    o->map = es[0].map;
    o->record_id = es[0].record_id;
    o->ids = xcalloc(n, sizeof *o->ids);
    o->nids = n;
    json_t *vals = json_object(), *emptied = json_object();
    const char *sfid = NULL;
    op_kind kind = fold_entries(es, n, o, vals, emptied, &sfid);
    if (!sfid && ri)
        sfid = ri->sfid;
    o->row_exists = ri && ri->row;
    o->sfid = sfid ? xstrdup(sfid) : NULL;
    if (kind == OP_UPDATE && !sfid) {
        /* The record never reached Salesforce (its insert failed): insert the row as it is now. */
        kind = ri && ri->row ? OP_INSERT : OP_NOTHING;
        json_object_clear(vals);
        json_object_clear(emptied);
        if (ri && ri->row)
            json_object_update(vals, ri->row);
    }
    if (kind == OP_INSERT && sfid)
        kind = OP_UPDATE;           /* the row already names its Salesforce record */
    if (kind == OP_DELETE && !sfid) /* created and deleted before anything was sent... */
        kind = o->unknown && o->sent ? OP_LOOKUP_DELETE
                                     : OP_NOTHING; /* ...unless an insert may have reached SF */
    if (kind == OP_INSERT || kind == OP_UPDATE) {
        o->rec = fold_record(m, vals, kind == OP_INSERT, NULL);
        if (!o->rec)
            kind = OP_NOTHING;
        else if (kind == OP_UPDATE)
            json_object_set_new(o->rec, "id", json_string(sfid));
        if (kind == OP_INSERT && m->upsert_field &&
            json_is_string(json_object_get(o->rec, m->upsert_field))) {
            /* An upsert may update an existing record: only the columns the
             * app emptied are sent as null. */
            kind = OP_UPSERT;
            json_decref(o->rec);
            o->rec = fold_record(m, vals, true, emptied);
        }
    }
    json_decref(emptied);
    if (kind == OP_NOTHING) {
        log_debug("writer: %s row %d: nothing to send (entries %lld..%lld, row %s, sfid %s)",
                  m->table, o->record_id, (long long)es[0].id, (long long)es[n - 1].id,
                  o->row_exists ? "present" : "gone", sfid ? sfid : "none");
        o->out = OUT_DROPPED;
        snprintf(o->lastop, sizeof o->lastop, HC_SYNCED);
    }
    o->kind = kind;
    o->vals = vals;
}
