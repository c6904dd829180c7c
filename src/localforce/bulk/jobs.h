/*
 * jobs: Bulk API 2.0 jobs as the other bulk modules share them: the job record
 * and its row in _lf_bulk_jobs, states and operations, locators, the job info
 * JSON, request parsing (body, CSV options, the job named by the URL), and
 * the worker's wake-up.
 */
#ifndef JOBS_H
#define JOBS_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include "bulk.h"
#include "csv.h"
#include "http.h"
#include "soql.h"
#include "store.h"

#define JOB_PREFIX          "750"
#define PAGE_DEFAULT        100000     /* rows per results page without maxRecords */
#define RESULT_PAGES_LISTED 5          /* result URLs per resultPages answer, as Salesforce */
#define CHUNK_BYTES         (1u << 20) /* uploads are stored in pieces of this size */
#define INGEST_BATCH        200        /* ingest rows per transaction */
#define LIST_PAGE           1000       /* jobs per page of GET jobs/{query|ingest} */
#define PARK_MAX            32         /* parked result statements */
#define PARK_IDLE_MS        (15 * 60 * 1000)
#define RESULTS_BATCH       500 /* result rows read per statement */
/* Salesforce's CSV limits: 5,000 fields, 400,000 characters per record,
 * 131,072 bytes per field (here in bytes, as UTF-8 takes up to 4 per character). */
#define CSV_MAX_FIELDS 5000
#define CSV_MAX_ROW    (400000u * 4)
#define CSV_MAX_FIELD  131072u

enum { K_QUERY = 0, K_INGEST = 1 };
enum { R_SUCCESS = 0, R_FAILED = 1, R_UNPROCESSED = 2 };

typedef enum {
    JS_OPEN,
    JS_UPLOAD_COMPLETE,
    JS_IN_PROGRESS,
    JS_JOB_COMPLETE,
    JS_ABORTED,
    JS_FAILED,
    JS__COUNT
} jstate;

typedef enum {
    OP_QUERY,
    OP_QUERY_ALL,
    OP_INSERT,
    OP_UPDATE,
    OP_UPSERT,
    OP_DELETE,
    OP_HARD_DELETE,
    OP__COUNT
} jop;

/* Job states as the API spells them, and as its JOB_NOT_COMPLETE message does. */
extern const char *const jobs_state_name[JS__COUNT];
extern const char *const jobs_state_upper[JS__COUNT];

/* Operations: the API's name and the kind of job (K_QUERY, K_INGEST). */
struct job_op {
    const char *name;
    int kind;
};
extern const struct job_op jobs_ops[OP__COUNT];

/* How much of a job jobs_job_json writes. */
enum { INFO_BRIEF, INFO_FULL, INFO_LIST };

/* The columns of _lf_bulk_jobs that jobs_job_from_row reads, in order. */
#define JOB_COLS                                                                          \
    "id, seq, kind, operation, object, query, ext_field, created_by, created, modstamp, " \
    "state, delim, eol, api_version, processed, failed, total_ms, error, columns, "       \
    "upload_error, uploads, started"

/* A job, as stored in _lf_bulk_jobs. */
typedef struct job {
    char id[19];
    int64_t seq;
    int kind;
    jop op;
    char *object;
    char *query;     /* query jobs */
    char *ext_field; /* upsert */
    char created_by[19];
    int64_t created, modstamp, started;
    jstate state;
    char delim;
    csv_eol eol;
    char ver[16]; /* API version of the request that created it, "59.0" */
    int64_t processed, failed, total_ms, uploads;
    char *error;        /* errorMessage of a Failed job */
    char *columns;      /* ingest: the header row as CSV, once data came */
    char *upload_error; /* ingest: the first problem found in the uploads */
} job;

/* An open query statement, parked between result pages. */
typedef struct qcursor {
    char job[19];
    soql_plan *plan;
    sqlite3_stmt *stmt;
    int64_t pos;       /* rows stepped past */
    int64_t last_used; /* monotonic ms */
    struct qcursor *next;
} qcursor;

struct lf_bulk {
    store *st;
    int64_t seq;              /* last job sequence number (store lock) */
    int64_t result_page_rows; /* rows per page a resultPages listing names (0: PAGE_DEFAULT) */
    qcursor *parked;          /* store lock */
    int nparked;
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t mu; /* guards stop and kicked; never held while taking the
                           store lock */
    pthread_cond_t cv;
    bool stop;
    bool kicked;
};

const char *jobs_ver_of(http_req *req);
int jobs_db_fail(store *st, err_t *e, const char *what);
sqlite3_stmt *jobs_prep(store *st, const char *sql, err_t *e);
int jobs_exec(store *st, const char *sql, err_t *e);
void jobs_kick(lf_bulk *b);
bool jobs_stopping(lf_bulk *b);
int jobs_state_parse(const char *s, jstate *out);
int jobs_op_parse(const char *s, jop *out);
void jobs_locator_make(int64_t offset, char out[32]);
int jobs_locator_parse(const char *s, int64_t *offset);
void jobs_clear(job *j);
void jobs_job_from_row(sqlite3_stmt *s, job *j);
int jobs_load(store *st, const char *id, job *j, err_t *e);
int jobs_insert(store *st, const job *j, err_t *e);
int jobs_set_state(store *st, job *j, jstate to, const char *error_msg, err_t *e);
int jobs_delete_rows(store *st, const char *id, err_t *e);
void jobs_job_json(sb *out, const job *j, int mode);
void jobs_answer(http_resp *resp, int status, const job *j, int mode);
json_t *jobs_body_json(http_req *req, http_resp *resp);
json_t *jobs_create_body(http_req *req, http_resp *resp, job *j, int kind);
int jobs_opt_string(json_t *o, const char *key, const char **out, http_resp *resp);
int jobs_csv_options(json_t *body, job *j, http_resp *resp);
int jobs_of_request(http_req *req, http_resp *resp, int kind, job *j);
void jobs_new(lf_bulk *b, http_req *req, job *j);

#endif
