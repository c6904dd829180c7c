/*
 * upload: Bulk ingest uploads: PUT batches checked as they come (header names,
 * field counts, quoting, UTF-8, delimiter and line ending), stored in
 * _lf_bulk_data in chunks, and read back row by row for processing.
 */
#include "upload.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ctx.h"
#include "util.h"

/* ----- ingest: columns of an upload --------------------------------------- */

/* Resolve the header row against object o. On failure sets *problem (the job's
 * errorMessage) and returns -1. Store lock held. */
int
up_columns_resolve(const lf_schema *s, const lf_object *o, const csv_row *h, column **out,
                   char **problem)
{
    column *cols = xcalloc(h->nfields ? h->nfields : 1, sizeof *cols);
    sb msg = SB_INIT;
    for (size_t i = 0; i < h->nfields && msg.len == 0; i++) {
        const char *name = h->field[i];
        const char *dot = memchr(name, '.', h->len[i]);
        if (dot == NULL) {
            cols[i].field = strlen(name) == h->len[i] ? object_field(o, name) : NULL;
        } else {
            char rel[256];
            size_t rn = (size_t)(dot - name);
            snprintf(rel, sizeof rel, "%.*s", (int)(rn < 255 ? rn : 255), name);
            const lf_field *rf = rn < 255 ? object_field_by_relationship(o, rel) : NULL;
            const lf_object *po = rf ? schema_object(s, rf->reference_to) : NULL;
            const lf_field *pf = po && !strchr(dot + 1, '.') ? object_field(po, dot + 1) : NULL;
            if (pf && strlen(name) == h->len[i]) {
                cols[i].field = rf;
                cols[i].pfield = pf;
            }
        }
        if (cols[i].field == NULL) {
            sb_puts(&msg, "InvalidBatch : Field name not found : ");
            sb_append(&msg, name, h->len[i] > 255 ? 255 : h->len[i]);
            break;
        }
        for (size_t k = 0; k < i; k++)
            if (cols[k].field == cols[i].field && cols[k].pfield == cols[i].pfield) {
                sb_puts(&msg, "InvalidBatch : Duplicate field name: ");
                sb_append(&msg, name, h->len[i] > 255 ? 255 : h->len[i]);
                break;
            }
    }
    if (msg.len) {
        free(cols);
        *problem = sb_steal(&msg);
        return -1;
    }
    sb_free(&msg);
    *out = cols;
    return 0;
}

void
up_put_row_csv(sb *out, const csv_row *row, char delim)
{
    for (size_t i = 0; i < row->nfields; i++) {
        if (i)
            sb_putc(out, delim);
        csv_put(out, row->field[i], row->len[i]);
    }
}

void
up_reader_opts(const job *j, csv_opts *o)
{
    memset(o, 0, sizeof *o);
    o->delim = j->delim;
    o->eol = j->eol;
    o->utf8 = true;
    o->max_field = CSV_MAX_FIELD;
    o->max_row = CSV_MAX_ROW;
    o->max_fields = CSV_MAX_FIELDS;
}

/* The job's errorMessage for a reader error. */
static char *
csv_problem(const job *j, const csv_error *ce)
{
    sb m = SB_INIT;
    if (ce->code == CSV_ERR_EOL)
        sb_printf(&m,
                  "ClientInputError : LineEnding is invalid on user data. Current LineEnding "
                  "setting is %s",
                  csv_eol_name(j->eol));
    else if (ce->code == CSV_ERR_UTF8)
        sb_printf(&m, "ClientInputError : The data is not valid UTF-8 (line %lld, column %lld)",
                  (long long)ce->line, (long long)ce->col);
    else
        sb_printf(&m, "InvalidBatch : Failed to parse CSV: %s (line %lld, column %lld)", ce->msg,
                  (long long)ce->line, (long long)ce->col);
    return sb_steal(&m);
}

/* Check a whole upload: its header names fields of the object (and matches the
 * job's earlier uploads), every row has as many fields as the header, and the
 * CSV is well-formed UTF-8 with the job's delimiter and line ending. Fills
 * *header (the header as CSV) and returns NULL, or returns the problem. Takes
 * the store lock only to look at the header. */
static char *
check_upload(store *st, const job *j, const char *data, size_t len, sb *header)
{
    csv_opts opts;
    up_reader_opts(j, &opts);
    csv_reader *r = csv_reader_new(&opts);
    csv_feed(r, data, len);
    csv_finish(r);
    char *problem = NULL;
    size_t nhdr = 0;
    bool have_header = false;
    csv_row row;
    csv_status rc;
    while ((rc = csv_next(r, &row)) == CSV_ROW) {
        if (!have_header) {
            if (row.blank)
                continue;
            column *cols = NULL;
            store_lock(st);
            const lf_schema *s = store_schema(st);
            const lf_object *o = schema_object(s, j->object);
            int bad = o ? up_columns_resolve(s, o, &row, &cols, &problem) : -1;
            store_unlock(st);
            free(cols);
            if (o == NULL) {
                sb m = SB_INIT;
                sb_printf(&m, "InvalidBatch : Entity '%s' is not supported by the Bulk API.",
                          j->object);
                problem = sb_steal(&m);
            }
            if (bad)
                break;
            up_put_row_csv(header, &row, j->delim);
            nhdr = row.nfields;
            have_header = true;
            if (j->columns && strcmp(j->columns, header->buf) != 0) {
                problem = xstrdup("InvalidBatch : The header row of this upload differs from "
                                  "the header row of the job's first upload");
                break;
            }
            continue;
        }
        if (row.blank)
            continue;
        if (row.nfields != nhdr) {
            sb m = SB_INIT;
            sb_printf(&m,
                      "InvalidBatch : Wrong number of fields in the row on line %lld: found %zu, "
                      "the header has %zu",
                      (long long)row.line, row.nfields, nhdr);
            problem = sb_steal(&m);
            break;
        }
    }
    if (problem == NULL && rc == CSV_FAIL)
        problem = csv_problem(j, csv_reader_error(r));
    if (problem == NULL && !have_header)
        problem = xstrdup("InvalidBatch : The CSV data is empty: no header row was found");
    csv_reader_free(r);
    return problem;
}

static void
not_open(http_resp *resp, const job *j)
{
    http_errorf(resp, 400, "INVALIDJOBSTATE",
                "Data can only be uploaded to an Open job; the job's state is %s",
                jobs_state_name[j->state]);
}

void
bulk_ingest_upload(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    err_t e;
    job j;
    store_lock(st);
    if (jobs_of_request(req, resp, K_INGEST, &j) != 0) {
        store_unlock(st);
        return;
    }
    if (j.state != JS_OPEN) {
        not_open(resp, &j);
        goto out;
    }
    /* Parse without holding the store lock: an upload can be large. */
    store_unlock(st);
    sb header = SB_INIT;
    char *problem = check_upload(st, &j, req->body, req->body_len, &header);
    store_lock(st);
    jobs_clear(&j);
    int rc = 0;
    if (jobs_of_request(req, resp, K_INGEST, &j) != 0) {
        /* deleted meanwhile: answered */
    } else if (j.state != JS_OPEN) {
        not_open(resp, &j);
    } else if (problem == NULL) {
        /* Keep the data, in chunks, with the header of the job's first upload. */
        rc = jobs_exec(st, "SAVEPOINT lf_bulk_upload", &e);
        sqlite3_stmt *s = rc ? NULL
                             : jobs_prep(st,
                                         "INSERT INTO _lf_bulk_data (job, upload, chunk, data) "
                                         "VALUES (?1, ?2, ?3, ?4)",
                                         &e);
        if (s == NULL)
            rc = -1;
        for (size_t off = 0, k = 0; rc == 0 && off < req->body_len; off += CHUNK_BYTES, k++) {
            size_t n = req->body_len - off < CHUNK_BYTES ? req->body_len - off : CHUNK_BYTES;
            sqlite3_bind_text(s, 1, j.id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, j.uploads);
            sqlite3_bind_int64(s, 3, (int64_t)k);
            sqlite3_bind_blob(s, 4, req->body + off, (int)n, SQLITE_STATIC);
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = jobs_db_fail(st, &e, "store upload");
            sqlite3_reset(s);
        }
        sqlite3_finalize(s);
        sqlite3_stmt *u = rc ? NULL
                             : jobs_prep(st,
                                         "UPDATE _lf_bulk_jobs SET uploads = uploads + 1, "
                                         "columns = COALESCE(columns, ?2) WHERE id = ?1",
                                         &e);
        if (u) {
            sqlite3_bind_text(u, 1, j.id, -1, SQLITE_STATIC);
            sqlite3_bind_text(u, 2, header.buf, -1, SQLITE_STATIC);
            if (sqlite3_step(u) != SQLITE_DONE)
                rc = jobs_db_fail(st, &e, "upload");
            sqlite3_finalize(u);
        } else {
            rc = -1;
        }
        if (rc == 0)
            rc = jobs_exec(st, "RELEASE lf_bulk_upload", &e);
        else if (sqlite3_get_autocommit(store_db(st)) == 0)
            sqlite3_exec(store_db(st), "ROLLBACK TO lf_bulk_upload; RELEASE lf_bulk_upload", NULL,
                         NULL, NULL);
    } else if (j.upload_error == NULL) {
        /* The job fails when it is closed, as Salesforce's does when it processes it. */
        sqlite3_stmt *u = jobs_prep(st, "UPDATE _lf_bulk_jobs SET upload_error = ?2 WHERE id = ?1",
                                    &e);
        if (u) {
            sqlite3_bind_text(u, 1, j.id, -1, SQLITE_STATIC);
            sqlite3_bind_text(u, 2, problem, -1, SQLITE_STATIC);
            if (sqlite3_step(u) != SQLITE_DONE)
                rc = jobs_db_fail(st, &e, "upload");
            sqlite3_finalize(u);
        } else {
            rc = -1;
        }
    }
    free(problem);
    sb_free(&header);
    if (resp->status >= 400) {
        /* answered above */
    } else if (rc != 0) {
        http_error(resp, &e);
    } else {
        resp->status = 201;
        sb_clear(&resp->body);
    }
out:
    jobs_clear(&j);
    store_unlock(st);
}

/* ----- ingest: reading the stored uploads row by row ---------------------- */

void
up_iter_init(upload_iter *it, store *st, const job *j)
{
    memset(it, 0, sizeof *it);
    it->st = st;
    it->j = j;
}

void
up_iter_free(upload_iter *it)
{
    csv_reader_free(it->r);
    sb_free(&it->data);
    free(it->problem);
    memset(it, 0, sizeof *it);
}

/* The next data row of the job's uploads: 1 row, 0 no more, -1 error
 * (it->problem). Store lock held. */
int
up_iter_next(upload_iter *it, csv_row *row)
{
    for (;;) {
        if (it->upload >= it->j->uploads)
            return 0;
        if (it->r == NULL) {
            csv_opts o;
            up_reader_opts(it->j, &o);
            it->r = csv_reader_new(&o);
            it->chunk = 0;
            it->header_seen = false;
        }
        csv_status rc = csv_next(it->r, row);
        if (rc == CSV_ROW) {
            if (row->blank)
                continue;
            if (!it->header_seen) {
                it->header_seen = true;
                continue;
            }
            return 1;
        }
        if (rc == CSV_FAIL) {
            free(it->problem);
            it->problem = csv_problem(it->j, csv_reader_error(it->r));
            return -1;
        }
        if (rc == CSV_END) {
            csv_reader_free(it->r);
            it->r = NULL;
            it->upload++;
            continue;
        }
        /* CSV_NEED: the next chunk of this upload, or its end. */
        err_t e;
        sqlite3_stmt *s = jobs_prep(it->st,
                                    "SELECT data FROM _lf_bulk_data WHERE job = ?1 AND upload = ?2 "
                                    "AND chunk = ?3",
                                    &e);
        if (s == NULL) {
            free(it->problem);
            it->problem = xstrdup(e.msg);
            return -1;
        }
        sqlite3_bind_text(s, 1, it->j->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, it->upload);
        sqlite3_bind_int64(s, 3, it->chunk);
        sb_clear(&it->data);
        int src = sqlite3_step(s);
        if (src == SQLITE_ROW) {
            const void *p = sqlite3_column_blob(s, 0);
            int n = sqlite3_column_bytes(s, 0);
            sb_append(&it->data, p ? p : "", p && n > 0 ? (size_t)n : 0);
            it->chunk++;
            csv_feed(it->r, it->data.buf ? it->data.buf : "", it->data.len);
        } else {
            csv_feed(it->r, "", 0);
            csv_finish(it->r);
        }
        sqlite3_finalize(s);
    }
}
