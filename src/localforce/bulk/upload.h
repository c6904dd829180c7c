/*
 * upload: Bulk ingest uploads: PUT batches checked as they come (header names,
 * field counts, quoting, UTF-8, delimiter and line ending), stored in
 * _lf_bulk_data in chunks, and read back row by row for processing.
 */
#ifndef UPLOAD_H
#define UPLOAD_H

#include "jobs.h"

typedef struct column {
    const lf_field *field;  /* the field; for "Rel__r.Ext__c" the reference field */
    const lf_field *pfield; /* for "Rel__r.Ext__c": the parent's field */
} column;

typedef struct upload_iter {
    store *st;
    const job *j;
    int64_t upload; /* the upload being read */
    int64_t chunk;  /* the next chunk to load */
    csv_reader *r;
    sb data; /* the chunk being read */
    bool header_seen;
    char *problem; /* set when the data cannot be read */
} upload_iter;

int up_columns_resolve(const lf_schema *s, const lf_object *o, const csv_row *h, column **out,
                       char **problem);
void up_put_row_csv(sb *out, const csv_row *row, char delim);
void up_reader_opts(const job *j, csv_opts *o);
void up_iter_init(upload_iter *it, store *st, const job *j);
void up_iter_free(upload_iter *it);
int up_iter_next(upload_iter *it, csv_row *row);

#endif
