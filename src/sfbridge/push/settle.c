/*
 * settle: inserts whose outcome was lost, settled before any resend (see
 * settle.h).
 */
#include "settle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ddl.h"
#include "log.h"
#include "match.h"
#include "pg.h"
#include "sb.h"
#include "send.h"
#include "tlog.h"
#include "util.h"

#define MATCH_CHUNK 1000 /* inserts matched against edited records at a time */

/* Did Salesforce create o's record? 1 found (o->new_sfid set), 0 not found,
 * -1 could not tell (e filled; AMBIGUOUS_INSERT when several match). Records
 * already linked to a row are not candidates. */
static int
find_created(writer *w, op *o, err_t *e)
{
    const mapping *m = &w->ms[o->map];
    json_t *ids = NULL;
    if (send_lookup_insert(w->sf, m, o, &ids, e) != 0)
        return -1;
    sb qt = SB_INIT, s = SB_INIT;
    pg_qname(&qt, w->cfg->schema, m->table);
    sb_printf(&s, "SELECT 1 FROM %s WHERE sfid = $1", sb_str(&qt));
    const char *found = NULL;
    int matches = 0, rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        const char *p[] = {json_string_value(v)};
        PGresult *pr = pg_query(w->pg, e, sb_str(&s), 1, p);
        if (!pr) {
            rc = -1;
            break;
        }
        if (PQntuples(pr) == 0) {
            matches++;
            found = p[0];
        }
        PQclear(pr);
    }
    if (rc == 0 && matches == 1)
        o->new_sfid = xstrdup(found);
    sb_free(&s);
    sb_free(&qt);
    json_decref(ids);
    if (rc != 0)
        return -1;
    if (matches > 1)
        return err_set(e, 409, "AMBIGUOUS_INSERT",
                       "the insert's outcome was unknown and %d records created since then match "
                       "it; check them in "
                       "Salesforce, then requeue with sfbridge retry",
                       matches);
    return matches == 1;
}

/* One transaction: the entries name the adopted record (no longer unknown)
 * and the row gets its sfid, so no pull ever sees the record unlinked once
 * the entries stop holding pulls back. May wait for an app's row lock while
 * holding nothing else. */
static int
link_adopted(writer *w, op *o, err_t *e)
{
    const mapping *m = &w->ms[o->map];
    sb s = SB_INIT;
    sb_puts(&s, "UPDATE ");
    pg_qname(&s, w->cfg->schema, m->table);
    sb_puts(&s, " SET sfid = $1 WHERE id = $2::int AND sfid IS NULL");
    char rid[16];
    snprintf(rid, sizeof rid, "%d", o->record_id);
    const char *p[] = {o->new_sfid, rid};
    int rc = pg_exec(w->pg, e, "BEGIN");
    if (rc == 0)
        rc = tlog_adopt(w->pg, w->cfg->schema, o->ids, o->nids, o->new_sfid, e);
    if (rc == 0 && o->row_exists)
        rc = pg_run(w->pg, e, sb_str(&s), 2, p);
    if (rc == 0)
        rc = pg_exec(w->pg, e, "COMMIT");
    else
        pg_rollback_quietly(w->pg);
    sb_free(&s);
    return rc;
}

/* The insert was found in Salesforce: adopt it, and send what changed since
 * that attempt (nulls included) as an update. */
static void
adopt_created(writer *w, op *o)
{
    log_info("writer: %s record %s was created by an earlier attempt; adopted",
             w->ms[o->map].object, o->new_sfid);
    if (!o->sent || json_equal(o->sent, o->rec)) {
        op_set_ok(o, HC_INSERTED);
        return;
    }
    /* Settle the insert before sending anything more: if the update below is
     * retried, or sfbridge dies after it reached Salesforce, the entries
     * already name the record, so it is never looked for by its old values
     * (no longer there) and inserted a second time (issue 12 #2). */
    err_t ae;
    if (link_adopted(w, o, &ae) != 0) {
        op_set_retry(o, ae.msg, true);
        return;
    }
    json_t *upd = fold_record(&w->ms[o->map], o->vals, false, NULL);
    o->kind = OP_UPDATE;
    o->unknown = false;
    free(o->sfid);
    o->sfid = xstrdup(o->new_sfid);
    if (upd) {
        json_decref(o->rec);
        o->rec = upd;
    }
    json_object_set_new(o->rec, "id", json_string(o->new_sfid));
}

/* What a lookup found for o (an unknown insert, or the delete of one): 1 the
 * record (o->new_sfid), 0 nothing, -1 could not tell (le). */
static void
settle_found(writer *w, op *o, int found, const err_t *le)
{
    if (o->kind == OP_LOOKUP_DELETE) {
        if (found == 1) {
            o->kind = OP_DELETE;
            free(o->sfid);
            o->sfid = xstrdup(o->new_sfid);
        } else if (found == 0) {
            o->out = OUT_DROPPED;
        } else {
            op_set_retry(o, le->msg, true);
        }
    } else if (found == 1) {
        adopt_created(w, o);
    } else if (found < 0 && strcmp(le->code, "AMBIGUOUS_INSERT") == 0) {
        op_set_failed(o, le->code, le->msg, NULL);
    } else if (found < 0) {
        op_set_retry(o, le->msg, true);
    } else {
        o->unknown = false;
    }
}

/* Of `ids` (a JSON array of record ids), those no row of m's table and no
 * trigger-log entry of it names: records nothing in Postgres knows. */
static int
unlinked_ids(writer *w, const mapping *m, json_t *ids, json_t **out, err_t *e)
{
    *out = NULL;
    sb arr = SB_INIT, s = SB_INIT, lt = SB_INIT;
    const char **v = xcalloc(json_array_size(ids) + 1, sizeof *v);
    for (size_t i = 0; i < json_array_size(ids); i++)
        v[i] = json_string_value(json_array_get(ids, i));
    pg_text_array(&arr, v, json_array_size(ids));
    free(v);
    sb_sql_literal(&lt, m->table);
    sb_puts(&s, "SELECT u.id FROM unnest($1::text[]) AS u(id) WHERE NOT EXISTS (SELECT 1 FROM ");
    pg_qname(&s, w->cfg->schema, m->table);
    sb_puts(&s, " t WHERE t.sfid = u.id)");
    tlog_sql_names_no_sfid(&s, w->cfg->schema, sb_str(&lt), "u.id");
    const char *p[] = {sb_str(&arr)};
    PGresult *r = pg_query(w->pg, e, sb_str(&s), 1, p);
    sb_free(&arr);
    sb_free(&s);
    sb_free(&lt);
    if (!r)
        return -1;
    *out = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(*out, json_string(PQgetvalue(r, i, 0)));
    PQclear(r);
    return 0;
}

/* The window in which the record of an insert sent at `sent` (our clock,
 * ISO 8601) was created, in Salesforce's clock: from the send to the end of
 * the settle time, widened by what sfapi measured of the clocks' difference
 * (and SEND_CLOCK_MARGIN_MS for CreatedDate's whole seconds and drift), or by
 * SEND_LOOKUP_SKEW_MS before anything is measured. Earlier attempts were
 * looked for after their own settle time and had made nothing. */
static void
created_window(const writer *w, const char *sent, int64_t *from, int64_t *to)
{
    int64_t lo = -SEND_LOOKUP_SKEW_MS, hi = SEND_LOOKUP_SKEW_MS, at;
    if (sfapi_clock_offset(w->sf, &lo, &hi)) {
        lo -= SEND_CLOCK_MARGIN_MS;
        hi += SEND_CLOCK_MARGIN_MS;
    }
    if (util_parse_datetime(sent, &at) != 0)
        at = util_now_ms();
    *from = at + lo;
    *to = at + w->cfg->write_settle_ms + hi;
}

/* Has o waited long enough (SEND_WAIT_SETTLES settle times since its attempt)
 * for other lost inserts to be looked for? Two that wait for each other would
 * wait for ever. */
static bool
waited_enough(const writer *w, const op *o)
{
    int64_t at;
    return util_parse_datetime(o->sent_at, &at) != 0 ||
           util_now_ms() > at + SEND_WAIT_SETTLES * w->cfg->write_settle_ms;
}

/* Of the records created in the windows (recs), those nothing names
 * (free_ids) and no operation of this batch took (recorded later), with
 * their CreatedDate. */
static match_cand *
free_candidates(const batch *b, json_t *recs, json_t *free_ids, size_t *nc)
{
    match_cand *cand = xcalloc(json_array_size(recs) + 1, sizeof *cand);
    *nc = 0;
    for (size_t i = 0; i < json_array_size(recs); i++) {
        json_t *r = json_array_get(recs, i);
        const char *id = json_string_value(json_object_get(r, "Id"));
        bool unlinked = false;
        for (size_t k = 0; id && k < json_array_size(free_ids) && !unlinked; k++)
            unlinked = strcmp(json_string_value(json_array_get(free_ids, k)), id) == 0;
        for (size_t k = 0; unlinked && k < b->nops; k++)
            unlinked = !b->ops[k].new_sfid || strcmp(b->ops[k].new_sfid, id) != 0;
        int64_t created;
        if (unlinked && util_parse_datetime(json_string_value(json_object_get(r, "CreatedDate")),
                                            &created) == 0)
            cand[(*nc)++] = (match_cand){r, created};
    }
    return cand;
}

/* m's fields whose values tell records apart: text, not flags, numbers or
 * picklists (NULL-terminated; the caller frees the array). */
static const char **
strong_fields(const mapping *m)
{
    const char **strong = xcalloc(m->nfields + 1, sizeof *strong);
    static const char *const texts[] = {"string", "textarea", "email",
                                        "phone",  "url",      "encryptedstring"};
    for (size_t k = 0, ns = 0; k < m->nfields; k++)
        for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++)
            if (strcmp(m->fields[k].sftype, texts[t]) == 0)
                strong[ns++] = m->fields[k].name;
    return strong;
}

/* The second look for one mapping's inserts (and deletes of inserts) the
 * lookup by values missed: their records may have been edited in Salesforce
 * since (the chaos campaign's duplicates). See match.h for the rule. */
static void
find_edited(writer *w, const batch *b, size_t map, op **miss, size_t n)
{
    const mapping *m = &w->ms[map];
    int64_t settle = w->cfg->write_settle_ms, skew = SEND_LOOKUP_SKEW_MS;
    json_t *fields = json_array(), *recs = NULL, *ids = NULL, *free_ids = NULL, *comp = NULL;
    int64_t from = INT64_MAX, to = INT64_MIN;
    /* Not competitors: ours, and this batch's inserts already settled (their
     * records found, the log not yet told). */
    int *rids = xcalloc(n + b->nops + 1, sizeof *rids);
    size_t nrids = 0;
    for (size_t k = 0; k < b->nops; k++)
        if (b->ops[k].map == map && b->ops[k].new_sfid)
            rids[nrids++] = b->ops[k].record_id;
    for (size_t i = 0; i < n; i++) {
        int64_t f, t;
        created_window(w, miss[i]->sent_at, &f, &t);
        from = f < from ? f : from;
        to = t > to ? t : to;
        rids[nrids++] = miss[i]->record_id;
        const char *key;
        json_t *v;
        json_object_foreach(miss[i]->sent ? miss[i]->sent : miss[i]->rec, key, v) {
            bool have = false;
            for (size_t k = 0; k < json_array_size(fields) && !have; k++)
                have = strcmp(json_string_value(json_array_get(fields, k)), key) == 0;
            if (!have)
                json_array_append_new(fields, json_string(key));
        }
    }
    err_t e;
    err_clear(&e);
    /* Every other lost insert of the table whose window meets ours competes. */
    int rc = tlog_unknown_inserts(w->pg, w->cfg->schema, m->table, from - settle - skew, to + skew,
                                  rids, nrids, &comp, &e);
    if (rc == 0)
        rc = send_lookup_window(w->sf, m, fields, from, to, &recs, &e);
    if (rc == 0) {
        ids = json_array();
        size_t i;
        json_t *r;
        json_array_foreach(recs, i, r)
            json_array_append(ids, json_object_get(r, "Id"));
        rc = unlinked_ids(w, m, ids, &free_ids, &e);
    }
    size_t ncomp = json_array_size(comp), ni = n + ncomp;
    match_insert *ins = xcalloc(ni + 1, sizeof *ins);
    for (size_t i = 0; i < ni; i++) {
        const json_t *c = i < n ? NULL : json_array_get(comp, i - n);
        const json_t *sent = c ? json_object_get(c, "payload")
                               : (miss[i]->sent ? miss[i]->sent : miss[i]->rec);
        const char *at = c ? json_string_value(json_object_get(c, "sent_at")) : miss[i]->sent_at;
        /* A competitor not FAILED has yet to conclude its look for this window:
         * one that concluded was resent (a new window) or settled (gone). */
        bool pending = c && json_is_true(json_object_get(c, "open"));
        ins[i] = (match_insert){sent, 0, 0, pending};
        created_window(w, at, &ins[i].from_ms, &ins[i].to_ms);
    }
    size_t nc = 0;
    match_cand *cand = rc == 0 ? free_candidates(b, recs, free_ids, &nc) : xcalloc(1, sizeof *cand);
    const char **strong = strong_fields(m);
    int *out = xcalloc(n + 1, sizeof *out);
    match_rules rules = {strong, w->cfg->dedicated_user != 0};
    if (rc == 0)
        match_inserts(ins, ni, n, cand, nc, &rules, out);
    for (size_t i = 0; i < n; i++) {
        op *o = miss[i];
        err_t le;
        err_clear(&le);
        int found = 0;
        if (rc != 0) {
            found = -1;
            le = e;
        } else if (out[i] >= 0) {
            found = 1;
            o->new_sfid = xstrdup(json_string_value(json_object_get(cand[out[i]].rec, "Id")));
            int held = match_score(ins[i].sent, cand[out[i]].rec, strong);
            if (held > 0)
                log_info("writer: %s record %s holds %d of the values an insert whose answer was "
                         "lost sent; it was edited in Salesforce since",
                         m->object, o->new_sfid, held);
            else
                log_info("writer: %s record %s was made by an insert whose answer was lost: "
                         "created in its window, no other lost insert can claim it as well (the "
                         "user is sfbridge's alone); it was edited in Salesforce since",
                         m->object, o->new_sfid);
        } else if (out[i] == MATCH_WAIT && waited_enough(w, o)) {
            log_info("writer: %s: a record created while an insert whose answer was lost was "
                     "sent could be its or another lost insert's; nothing tells, so it is taken "
                     "for not created",
                     m->object);
        } else if (out[i] == MATCH_WAIT) {
            op_set_retry(o,
                         "waiting for other inserts whose answers were lost to be looked for "
                         "before telling which record this one created",
                         true);
            o->retry_ms = settle;
            continue;
        } else if (out[i] == MATCH_AMBIGUOUS) {
            found = -1;
            err_set(&le, 409, "AMBIGUOUS_INSERT",
                    "the insert's outcome was unknown; no record holds the values it sent, and "
                    "records created then (and edited since) hold some of them as much as other "
                    "lost inserts' values; check them in Salesforce, then requeue with sfbridge "
                    "retry");
        }
        settle_found(w, o, found, &le);
    }
    free(out);
    free(strong);
    free(cand);
    free(ins);
    free(rids);
    json_decref(fields);
    json_decref(recs);
    json_decref(ids);
    json_decref(free_ids);
    json_decref(comp);
}

/* Inserts whose outcome was unknown, and deletes of such inserts: look before
 * sending. First by the values sent (or the unique identifier); what that
 * misses, by the records created then that nothing names (find_edited). */
void
settle_unknown(writer *w, batch *b)
{
    op **miss = xcalloc(b->nops + 1, sizeof *miss);
    size_t nmiss = 0;
    for (size_t i = 0; i < b->nops; i++) {
        op *o = &b->ops[i];
        if (!((o->kind == OP_INSERT && o->unknown) || o->kind == OP_LOOKUP_DELETE) ||
            o->out != OUT_NONE)
            continue;
        /* A request Salesforce may still be running must be over before
         * looking for its record, or a miss would send it twice. */
        int64_t sent_ms;
        if (util_parse_datetime(o->sent_at, &sent_ms) != 0)
            sent_ms = 0;
        int64_t settle_at = sent_ms + w->cfg->write_settle_ms;
        if (util_now_ms() < settle_at) {
            op_set_retry(o,
                         "waiting for an earlier attempt to settle before looking for its record",
                         true);
            o->retry_ms = (long)(settle_at - util_now_ms()) + 1;
            continue;
        }
        err_t le;
        err_clear(&le);
        int found = find_created(w, o, &le);
        const mapping *m = &w->ms[o->map];
        const json_t *sent = o->sent ? o->sent : o->rec;
        bool keyed = m->upsert_field && json_is_string(json_object_get(sent, m->upsert_field));
        if (found == 0 && !keyed)
            miss[nmiss++] = o; /* keyed: the record, had it been created, was found */
        else
            settle_found(w, o, found, &le);
    }
    /* Per mapping, at most MATCH_CHUNK at a time (match's scores are n x candidates). */
    op **one = xcalloc(nmiss + 1, sizeof *one);
    for (size_t mi = 0; mi < w->nms; mi++) {
        size_t n = 0;
        for (size_t i = 0; i <= nmiss; i++) {
            if (i < nmiss && miss[i]->map == mi)
                one[n++] = miss[i];
            if (n && (n == MATCH_CHUNK || i == nmiss)) {
                find_edited(w, b, mi, one, n);
                n = 0;
            }
        }
    }
    free(one);
    free(miss);
}

/* Everything already decided (dropped, adopted, ambiguous) is recorded per mapping. */
int
settle_record_decided(writer *w, batch *b, err_t *e)
{
    op **done = xcalloc(b->nops + 1, sizeof *done);
    int rc = 0;
    for (size_t mi = 0; rc == 0 && mi < w->nms; mi++) {
        size_t nd = 0;
        for (size_t i = 0; i < b->nops; i++)
            if (b->ops[i].map == mi && b->ops[i].out != OUT_NONE)
                done[nd++] = &b->ops[i];
        rc = recorder_record(w->rec, w->pg, &w->ms[mi], done, nd, e);
    }
    free(done);
    return rc;
}
