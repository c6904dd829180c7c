/*
 * ingest: Bulk ingest jobs: creation, processing INGEST_BATCH rows per transaction
 * through the store (resumable after a restart), errors as Bulk reports them,
 * and the successfulResults / failedResults / unprocessedrecords files.
 */
#include "ingest.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bstream.h"
#include "ctx.h"
#include "log.h"
#include "sfid.h"
#include "util.h"

/* ----- ingest: processing (worker) --------------------------------------- */

void
ing_run_free(store *st, ingest_run *run)
{
    if (run == NULL)
        return;
    store_lock(st);
    sqlite3_finalize(run->ins);
    up_iter_free(&run->it);
    store_unlock(st);
    free(run->cols);
    jobs_clear(&run->j);
    sb_free(&run->rowtext);
    sb_free(&run->errtext);
    free(run);
}

/* Salesforce's Bulk error text: "CODE:message:Field1,Field2 --" ("CODE:message:--"). */
static void
put_row_error(sb *out, const err_t *e)
{
    sb_printf(out, "%s:%s:", e->code, e->msg);
    if (e->fields[0])
        sb_printf(out, "%s ", e->fields);
    sb_puts(out, "--");
}

/* Store errors rephrased as Bulk (SOAP) reports them. */
static void
bulk_error(const ingest_run *run, const csv_row *row, err_t *e)
{
    if (strcmp(e->code, "MULTIPLE_CHOICES") == 0) {
        snprintf(e->code, sizeof e->code, "DUPLICATE_EXTERNAL_ID");
    } else if (strcmp(e->code, "NOT_FOUND") == 0 && e->fields[0] == '\0') {
        snprintf(e->code, sizeof e->code, "INVALID_CROSS_REFERENCE_KEY");
        snprintf(e->msg, sizeof e->msg, "invalid cross reference id");
    } else if (strcmp(e->code, "JSON_PARSER_ERROR") == 0 && e->fields[0]) {
        /* A value that does not convert: name its column and type. */
        for (size_t i = 0; i < run->ncols && i < row->nfields; i++) {
            const lf_field *f = run->cols[i].pfield ? run->cols[i].pfield : run->cols[i].field;
            if (strcasecmp(run->cols[i].field->name, e->fields) == 0 ||
                strcasecmp(f->name, e->fields) == 0) {
                char fields[ERR_FIELDS_MAX];
                snprintf(fields, sizeof fields, "%s", e->fields);
                err_set(e, 400, "INVALID_FIELD",
                        "Failed to deserialize field at col %zu. Due to, '%.200s' is not a valid "
                        "value for the type %s",
                        i + 1, row->field[i], lf_types[f->type].soap_type);
                err_fields(e, fields);
                return;
            }
        }
    }
}

/* Process one data row; writes its result. Store lock (and transaction) held. */
static int
process_row(store *st, ingest_run *run, const csv_row *row, int64_t seq, bool *failed_out,
            err_t *dbe)
{
    const job *j = &run->j;
    lf_actor actor = {.user_id = j->created_by[0] ? j->created_by : NULL, .origin = run->origin};
    err_t e;
    err_clear(&e);
    char id_out[19] = "";
    bool created = false;
    int rc = -1;
    json_t *rec = json_object();
    const char *id = NULL, *ext = NULL;
    if (run->id_col >= 0 && (size_t)run->id_col < row->nfields && row->len[run->id_col])
        id = row->field[run->id_col];
    if (run->ext_col >= 0 && (size_t)run->ext_col < row->nfields && row->len[run->ext_col])
        ext = row->field[run->ext_col];
    for (size_t i = 0; i < run->ncols && i < row->nfields; i++) {
        if (row->len[i] == 0)
            continue; /* an empty value leaves the field as it is */
        const column *c = &run->cols[i];
        bool null = row->len[i] == 4 && memcmp(row->field[i], "#N/A", 4) == 0;
        json_t *v = null ? json_null() : json_stringn(row->field[i], row->len[i]);
        if (v == NULL)
            v = json_null();
        if (c->pfield) {
            json_t *ref = v;
            if (!null) {
                ref = json_object();
                json_object_set_new(ref, c->pfield->name, v);
            }
            json_object_set_new(rec, c->field->relationship_name, ref);
        } else {
            json_object_set_new(rec, c->field->name, v);
        }
    }
    switch (j->op) {
    case OP_INSERT:
        rc = store_create(st, &actor, j->object, rec, id_out, &e);
        created = rc == 0;
        break;
    case OP_UPDATE:
        if (id == NULL)
            rc = err_set(&e, 400, "MISSING_ARGUMENT", "Id not specified in an update call");
        else if ((rc = store_update(st, &actor, j->object, id, rec, &e)) == 0)
            sfid_normalize(id, id_out);
        break;
    case OP_UPSERT: {
        bool by_id = strcasecmp(j->ext_field, "Id") == 0;
        if (ext == NULL && !by_id) {
            rc = err_set(&e, 400, "MISSING_ARGUMENT", "%s not specified", j->ext_field);
        } else {
            rc = store_upsert(st, &actor, j->object, j->ext_field, ext, rec, j->ver, id_out,
                              &created, NULL, &e);
        }
        break;
    }
    case OP_DELETE:
    case OP_HARD_DELETE:
        if (id == NULL)
            rc = err_set(&e, 400, "MISSING_ARGUMENT", "Id not specified in a delete call");
        else if ((rc = store_delete(st, &actor, j->object, id, &e)) == 0)
            sfid_normalize(id, id_out);
        break;
    default: rc = err_set(&e, 400, "INVALID_OPERATION", "invalid operation"); break;
    }
    json_decref(rec);
    sb_clear(&run->rowtext);
    up_put_row_csv(&run->rowtext, row, j->delim);
    sb_clear(&run->errtext);
    if (rc != 0) {
        bulk_error(run, row, &e);
        put_row_error(&run->errtext, &e);
        /* A failed update or delete names the record it was about. */
        if ((j->op == OP_UPDATE || j->op == OP_DELETE || j->op == OP_HARD_DELETE) && id &&
            sfid_normalize(id, id_out) != 0)
            id_out[0] = '\0';
    }
    sqlite3_stmt *s = run->ins;
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, rc == 0 ? R_SUCCESS : R_FAILED);
    sqlite3_bind_int64(s, 3, seq);
    sqlite3_bind_text(s, 4, id_out, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, created);
    if (rc == 0)
        sqlite3_bind_null(s, 6);
    else
        sqlite3_bind_text(s, 6, run->errtext.buf, (int)run->errtext.len, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, run->rowtext.buf ? run->rowtext.buf : "", (int)run->rowtext.len,
                      SQLITE_STATIC);
    int src = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (src != SQLITE_DONE)
        return jobs_db_fail(st, dbe, "store result");
    *failed_out = rc != 0;
    return 0;
}

/* Start (or resume) an ingest job. NULL if there is nothing to run. Store lock held. */
ingest_run *
ing_run_start(lf_bulk *b, const char *id)
{
    store *st = b->st;
    err_t e;
    ingest_run *run = xcalloc(1, sizeof *run);
    if (jobs_load(st, id, &run->j, &e) != 0) {
        free(run);
        return NULL;
    }
    job *j = &run->j;
    if (j->state != JS_UPLOAD_COMPLETE && j->state != JS_IN_PROGRESS)
        goto none;
    if (j->upload_error) {
        char *msg = xstrdup(j->upload_error);
        jobs_set_state(st, j, JS_FAILED, msg, &e);
        free(msg);
        goto none;
    }
    run->o = schema_object(store_schema(st), j->object);
    if (run->o == NULL) {
        jobs_set_state(st, j, JS_FAILED, "InvalidBatch : the object no longer exists", &e);
        goto none;
    }
    /* The header, from the stored first upload (or none: no data at all). */
    run->id_col = run->ext_col = -1;
    if (j->columns) {
        csv_opts o;
        up_reader_opts(j, &o);
        csv_reader *r = csv_reader_new(&o);
        csv_feed(r, j->columns, strlen(j->columns));
        csv_finish(r);
        csv_row h;
        char *problem = NULL;
        if (csv_next(r, &h) != CSV_ROW ||
            up_columns_resolve(store_schema(st), run->o, &h, &run->cols, &problem) != 0) {
            jobs_set_state(st, j, JS_FAILED,
                           problem ? problem : "InvalidBatch : the header row cannot be read", &e);
            free(problem);
            csv_reader_free(r);
            goto none;
        }
        run->ncols = h.nfields;
        csv_reader_free(r);
        for (size_t i = 0; i < run->ncols; i++) {
            if (run->cols[i].pfield)
                continue;
            if (strcmp(run->cols[i].field->name, "Id") == 0)
                run->id_col = (int)i;
            if (j->ext_field && strcasecmp(run->cols[i].field->name, j->ext_field) == 0)
                run->ext_col = (int)i;
        }
    } else if (j->uploads == 0) {
        jobs_set_state(st, j, JS_FAILED, "InvalidBatch : No data was uploaded for the job", &e);
        goto none;
    }
    run->ins = jobs_prep(st,
                         "INSERT OR REPLACE INTO _lf_bulk_results (job, kind, seq, sf_id, created, "
                         "error, row) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                         &e);
    if (run->ins == NULL)
        goto none;
    snprintf(run->origin, sizeof run->origin, "com/salesforce/api/bulkapi/%s", j->ver);
    up_iter_init(&run->it, st, j);
    /* Resume: skip the rows a previous run processed. */
    csv_row row;
    for (int64_t k = 0; k < j->processed; k++)
        if (up_iter_next(&run->it, &row) != 1)
            break;
    if (j->state == JS_UPLOAD_COMPLETE) {
        sqlite3_stmt *s = jobs_prep(st, "UPDATE _lf_bulk_jobs SET started = ?2 WHERE id = ?1", &e);
        if (s) {
            sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, util_now_ms());
            sqlite3_step(s);
            sqlite3_finalize(s);
        }
        jobs_set_state(st, j, JS_IN_PROGRESS, NULL, &e);
    }
    run->t0 = util_mono_ms();
    run->base_ms = j->total_ms;
    return run;
none:
    sqlite3_finalize(run->ins);
    up_iter_free(&run->it);
    free(run->cols);
    jobs_clear(&run->j);
    free(run);
    return NULL;
}

/* Process the next batch of a running ingest job. Returns false when the run is over. */
bool
ing_run_step(lf_bulk *b, ingest_run *run)
{
    store *st = b->st;
    err_t e;
    job *j = &run->j;
    if (store_begin(st, &e) != 0)
        return false;
    /* Still ours to run? (It may have been aborted meanwhile.) */
    job now;
    int lr = jobs_load(st, j->id, &now, &e);
    if (lr != 0 || now.state != JS_IN_PROGRESS) {
        if (lr == 0)
            jobs_clear(&now);
        store_commit(st, &e);
        return false;
    }
    jobs_clear(&now);
    bool done = false, broken = false;
    int64_t nfailed = 0, nrows = 0;
    for (int k = 0; k < INGEST_BATCH; k++) {
        csv_row row;
        int rc = up_iter_next(&run->it, &row);
        if (rc == 0) {
            done = true;
            break;
        }
        if (rc < 0) {
            broken = true;
            break;
        }
        bool failed = false;
        if (process_row(st, run, &row, j->processed + nrows, &failed, &e) != 0) {
            broken = true;
            break;
        }
        nrows++;
        nfailed += failed;
    }
    j->processed += nrows;
    j->failed += nfailed;
    j->total_ms = run->base_ms + (util_mono_ms() - run->t0);
    sqlite3_stmt *u =
        jobs_prep(st,
                  "UPDATE _lf_bulk_jobs SET processed = ?2, failed = ?3, total_ms = ?4 "
                  "WHERE id = ?1",
                  &e);
    if (u) {
        sqlite3_bind_text(u, 1, j->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(u, 2, j->processed);
        sqlite3_bind_int64(u, 3, j->failed);
        sqlite3_bind_int64(u, 4, j->total_ms);
        sqlite3_step(u);
        sqlite3_finalize(u);
    }
    if (broken) {
        char msg[ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", run->it.problem ? run->it.problem : e.msg);
        jobs_set_state(st, j, JS_FAILED, msg, &e);
    } else if (done) {
        jobs_set_state(st, j, JS_JOB_COMPLETE, NULL, &e);
    }
    if (store_commit(st, &e) != 0) {
        log_error("bulk: job %s: commit failed: %s", j->id, e.msg);
        return false;
    }
    return !done && !broken;
}

/* ----- ingest: HTTP handlers --------------------------------------------- */

void
bulk_ingest_create(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    job j;
    json_t *body = jobs_create_body(req, resp, &j, K_INGEST);
    if (body == NULL)
        return;
    const char *obj, *op, *ext, *rule;
    if (jobs_opt_string(body, "object", &obj, resp) ||
        jobs_opt_string(body, "operation", &op, resp) ||
        jobs_opt_string(body, "externalIdFieldName", &ext, resp) ||
        jobs_opt_string(body, "assignmentRuleId", &rule, resp) || jobs_csv_options(body, &j, resp))
        goto out;
    if (op == NULL || jobs_op_parse(op, &j.op) != 0 || jobs_ops[j.op].kind != K_INGEST) {
        http_errorf(resp, 400, "INVALIDJOB",
                    "Invalid operation: %.100s. Valid operations are insert, update, upsert, "
                    "delete and hardDelete",
                    op ? op : "null");
        goto out;
    }
    if (obj == NULL || *obj == '\0') {
        http_errorf(resp, 400, "INVALIDJOB", "The job needs an object");
        goto out;
    }
    store_lock(st);
    const lf_object *o = schema_object(store_schema(st), obj);
    if (o == NULL) {
        store_unlock(st);
        http_errorf(resp, 400, "INVALIDENTITY", "Entity '%.200s' is not supported by the Bulk API.",
                    obj);
        goto out;
    }
    j.object = xstrdup(o->name);
    if (j.op == OP_UPSERT) {
        const lf_field *f = ext && *ext ? object_field(o, ext) : NULL;
        if (ext == NULL || *ext == '\0') {
            store_unlock(st);
            http_errorf(resp, 400, "INVALIDJOB",
                        "External ID was blank for %s. An External ID must be specified for "
                        "upsert.",
                        o->name);
            goto out;
        }
        if (f == NULL || !(f->external_id || strcmp(f->name, "Id") == 0)) {
            store_unlock(st);
            http_errorf(resp, 400, "INVALIDJOB",
                        "Field name provided, %.200s does not match an External ID, Salesforce "
                        "Id, or indexed field for %s",
                        ext, o->name);
            goto out;
        }
        j.ext_field = xstrdup(f->name);
    }
    j.state = JS_OPEN;
    jobs_new(srv->bulk, req, &j);
    err_t e;
    int rc = jobs_insert(st, &j, &e);
    store_unlock(st);
    if (rc != 0)
        http_error(resp, &e);
    else
        jobs_answer(resp, 200, &j, INFO_BRIEF);
out:
    jobs_clear(&j);
    json_decref(body);
}

/* ----- ingest results: the stream ---------------------------------------- */

typedef struct rstream {
    bstream bs; /* first: the stream reads through it */
    lf_bulk *b;
    job j;
    int kind;         /* R_SUCCESS, R_FAILED, R_UNPROCESSED */
    int64_t next_seq; /* keyset position in _lf_bulk_results */
    upload_iter it;   /* R_UNPROCESSED: the uploads */
    int64_t skip;     /* R_UNPROCESSED: rows processed, not to repeat */
    bool header_done;
} rstream;

static void
rstream_fill(bstream *bs, size_t want)
{
    rstream *rs = (rstream *)bs;
    store *st = rs->b->st;
    const char *eol = csv_eol_str(rs->j.eol);
    store_lock(st);
    if (!rs->header_done) {
        rs->header_done = true;
        if (rs->kind != R_UNPROCESSED) {
            csv_put_str(&rs->bs.pend, "sf__Id");
            sb_putc(&rs->bs.pend, rs->j.delim);
            csv_put_str(&rs->bs.pend, rs->kind == R_SUCCESS ? "sf__Created" : "sf__Error");
            if (rs->j.columns)
                sb_putc(&rs->bs.pend, rs->j.delim);
        }
        if (rs->j.columns)
            sb_puts(&rs->bs.pend, rs->j.columns);
        if (rs->bs.pend.len)
            sb_puts(&rs->bs.pend, eol);
        if (rs->kind == R_UNPROCESSED) {
            /* Rows a finished job processed are not "unprocessed"; nor is data
             * that never made it into the job. */
            if (rs->j.state == JS_JOB_COMPLETE || rs->j.columns == NULL) {
                rs->bs.finished = true;
                store_unlock(st);
                return;
            }
            up_iter_init(&rs->it, st, &rs->j);
            csv_row row;
            for (int64_t k = 0; k < rs->skip; k++)
                if (up_iter_next(&rs->it, &row) != 1)
                    break;
        }
    }
    if (rs->kind == R_UNPROCESSED) {
        while (rs->bs.pend.len < want) {
            csv_row row;
            if (up_iter_next(&rs->it, &row) != 1) {
                rs->bs.finished = true;
                break;
            }
            up_put_row_csv(&rs->bs.pend, &row, rs->j.delim);
            sb_puts(&rs->bs.pend, eol);
        }
        store_unlock(st);
        return;
    }
    err_t e;
    sqlite3_stmt *s = jobs_prep(st,
                                "SELECT seq, sf_id, created, error, row FROM _lf_bulk_results "
                                "WHERE job = ?1 AND kind = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                                &e);
    if (s == NULL) {
        rs->bs.failed = true;
        store_unlock(st);
        return;
    }
    while (!rs->bs.finished && rs->bs.pend.len < want) {
        sqlite3_bind_text(s, 1, rs->j.id, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, rs->kind);
        sqlite3_bind_int64(s, 3, rs->next_seq);
        sqlite3_bind_int(s, 4, RESULTS_BATCH);
        int n = 0, rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            n++;
            rs->next_seq = sqlite3_column_int64(s, 0);
            const char *id = (const char *)sqlite3_column_text(s, 1);
            csv_put_str(&rs->bs.pend, id ? id : "");
            sb_putc(&rs->bs.pend, rs->j.delim);
            if (rs->kind == R_SUCCESS)
                csv_put_str(&rs->bs.pend, sqlite3_column_int(s, 2) ? "true" : "false");
            else
                csv_put_str(&rs->bs.pend, (const char *)sqlite3_column_text(s, 3));
            if (rs->j.columns) {
                sb_putc(&rs->bs.pend, rs->j.delim);
                const char *row = (const char *)sqlite3_column_text(s, 4);
                sb_puts(&rs->bs.pend, row ? row : "");
            }
            sb_puts(&rs->bs.pend, eol);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) {
            jobs_db_fail(st, &e, "results");
            rs->bs.failed = true;
            break;
        }
        if (n < RESULTS_BATCH)
            rs->bs.finished = true;
    }
    sqlite3_finalize(s);
    store_unlock(st);
}

static void
rstream_free(void *ctx)
{
    rstream *rs = ctx;
    if (rs->it.st) {
        store_lock(rs->b->st);
        up_iter_free(&rs->it);
        store_unlock(rs->b->st);
    }
    jobs_clear(&rs->j);
    sb_free(&rs->bs.pend);
    free(rs);
}

void
bulk_ingest_results(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    const char *what = req->nseg >= 3 ? req->seg[2] : "";
    int kind;
    if (strcmp(what, "successfulResults") == 0)
        kind = R_SUCCESS;
    else if (strcmp(what, "failedResults") == 0)
        kind = R_FAILED;
    else if (strcasecmp(what, "unprocessedrecords") == 0)
        kind = R_UNPROCESSED;
    else {
        http_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    job j;
    store_lock(st);
    int rc = jobs_of_request(req, resp, K_INGEST, &j);
    store_unlock(st);
    if (rc != 0)
        return;
    rstream *rs = xcalloc(1, sizeof *rs);
    rs->bs.fill = rstream_fill;
    rs->b = srv->bulk;
    rs->j = j;
    rs->kind = kind;
    rs->next_seq = -1;
    rs->skip = j.processed;
    resp->status = 200;
    resp->content_type = CT_CSV;
    sb_clear(&resp->body);
    resp->stream = bstream_read;
    resp->stream_ctx = rs;
    resp->stream_free = rstream_free;
}
