/*
 * lfbench: load generator for localforce (and any Salesforce org).
 *
 *   lfbench login  URL CLIENT_ID SECRET USER PASS    prints an access token
 *   lfbench query  URL TOKEN SOQL                    follows every page, reports records/s
 *   lfbench create URL TOKEN OBJECT N [CONNS]        creates N records through sObject
 *                                                    collections of 200, reports records/s
 *
 * It parses only what it must (page size, nextRecordsUrl), so the client is
 * never what limits the figure being measured.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t
on_data(char *p, size_t sz, size_t n, void *ud)
{
    sb_append(ud, p, sz * n);
    return sz * n;
}

/* One request; the body goes to out. Returns the HTTP status or -1. */
static long
request(CURL *c, const char *method, const char *url, const char *token, const char *body,
        const char *ctype, sb *out)
{
    struct curl_slist *h = NULL;
    char auth[1024];
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    if (ctype) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    sb_clear(out);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(c);
    long status = -1;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "lfbench: %s: %s\n", url, curl_easy_strerror(rc));
    curl_slist_free_all(h);
    return status;
}

static int
cmd_login(char **a)
{
    CURL *c = curl_easy_init();
    sb url = SB_INIT, body = SB_INIT, out = SB_INIT;
    sb_printf(&url, "%s/services/oauth2/token", a[0]);
    char *e1 = curl_easy_escape(c, a[1], 0), *e2 = curl_easy_escape(c, a[2], 0);
    char *e3 = curl_easy_escape(c, a[3], 0), *e4 = curl_easy_escape(c, a[4], 0);
    sb_printf(&body, "grant_type=password&client_id=%s&client_secret=%s&username=%s&password=%s",
              e1, e2, e3, e4);
    curl_free(e1), curl_free(e2), curl_free(e3), curl_free(e4);
    long st = request(c, "POST", sb_str(&url), NULL, sb_str(&body),
                      "application/x-www-form-urlencoded", &out);
    json_t *j = json_loads(sb_str(&out), 0, NULL);
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    int rc = 1;
    if (st == 200 && tok) {
        puts(tok);
        rc = 0;
    } else {
        fprintf(stderr, "lfbench: login failed (%ld): %s\n", st, sb_str(&out));
    }
    json_decref(j);
    sb_free(&url), sb_free(&body), sb_free(&out);
    curl_easy_cleanup(c);
    return rc;
}

/* Count records on a page cheaply: the top-level "attributes" of each record
 * appear as {"attributes": right after '[' or ',' at depth 2. We count
 * occurrences of "{\"attributes\":{\"type\":\"<Object>\"" instead, which is
 * exact for queries without parent relationships. */
static long
count_records(const char *page, const char *needle)
{
    long n = 0;
    for (const char *p = strstr(page, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static int
cmd_query(char **a)
{
    CURL *c = curl_easy_init();
    sb url = SB_INIT, out = SB_INIT;
    char *q = curl_easy_escape(c, a[2], 0);
    sb_printf(&url, "%s/services/data/v62.0/query?q=%s", a[0], q);
    curl_free(q);
    /* The FROM object, to count records by their attributes. */
    const char *from = strstr(a[2], "FROM ");
    char obj[128] = "";
    if (from)
        sscanf(from + 5, "%127[A-Za-z0-9_]", obj);
    char needle[200];
    snprintf(needle, sizeof needle, "{\"attributes\":{\"type\":\"%s\"", obj);
    double t0 = now_s();
    long records = 0, pages = 0, bytes = 0;
    for (;;) {
        long st = request(c, "GET", sb_str(&url), a[1], NULL, NULL, &out);
        if (st != 200) {
            fprintf(stderr, "lfbench: page %ld: HTTP %ld: %.300s\n", pages, st, sb_str(&out));
            return 1;
        }
        pages++;
        bytes += (long)out.len;
        records += count_records(sb_str(&out), needle);
        const char *next = strstr(sb_str(&out), "\"nextRecordsUrl\":\"");
        if (next == NULL)
            break;
        next += 18;
        const char *end = strchr(next, '"');
        sb_clear(&url);
        sb_printf(&url, "%s%.*s", a[0], (int)(end - next), next);
    }
    double dt = now_s() - t0;
    printf("{\"records\":%ld,\"pages\":%ld,\"bytes\":%ld,\"seconds\":%.3f,\"records_per_s\":%.0f}"
           "\n",
           records, pages, bytes, dt, records / dt);
    sb_free(&url), sb_free(&out);
    curl_easy_cleanup(c);
    return 0;
}

typedef struct worker {
    const char *base, *token, *object;
    long batches;
    long failed;
    long worker_id;
} worker;

static void *
create_worker(void *arg)
{
    worker *w = arg;
    CURL *c = curl_easy_init();
    sb url = SB_INIT, body = SB_INIT, out = SB_INIT;
    sb_printf(&url, "%s/services/data/v62.0/composite/sobjects", w->base);
    for (long b = 0; b < w->batches; b++) {
        sb_clear(&body);
        sb_puts(&body, "{\"allOrNone\":false,\"records\":[");
        for (int i = 0; i < 200; i++) {
            sb_printf(&body,
                      "%s{\"attributes\":{\"type\":\"%s\"},\"Name\":\"bench %ld-%ld-%d\","
                      "\"Code__c\":\"C%ld-%ld-%d\",\"Amount__c\":%d.5,\"Active__c\":%s,"
                      "\"Note__c\":\"created by lfbench\"}",
                      i ? "," : "", w->object, w->worker_id, b, i, w->worker_id, b, i, i,
                      i % 2 ? "true" : "false");
        }
        sb_puts(&body, "]}");
        long st = request(c, "POST", sb_str(&url), w->token, sb_str(&body), "application/json",
                          &out);
        if (st != 200 || strstr(sb_str(&out), "\"success\":false"))
            w->failed++;
    }
    sb_free(&url), sb_free(&body), sb_free(&out);
    curl_easy_cleanup(c);
    return NULL;
}

static int
cmd_create(char **a, int argc)
{
    long n = atol(a[3]);
    int conns = argc > 4 ? atoi(a[4]) : 1;
    if (n < 200 || conns < 1 || conns > 64) {
        fputs("lfbench: create wants N >= 200 and 1..64 connections\n", stderr);
        return 2;
    }
    worker *w = calloc((size_t)conns, sizeof *w);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    long batches = n / 200;
    double t0 = now_s();
    for (int i = 0; i < conns; i++) {
        w[i] = (worker){a[0], a[1], a[2], batches / conns + (i < batches % conns), 0, i};
        pthread_create(&th[i], NULL, create_worker, &w[i]);
    }
    long failed = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        failed += w[i].failed;
    }
    double dt = now_s() - t0;
    printf("{\"records\":%ld,\"connections\":%d,\"failed_batches\":%ld,\"seconds\":%.3f,"
           "\"records_per_s\":%.0f}\n",
           batches * 200, conns, failed, dt, batches * 200 / dt);
    free(w);
    free(th);
    return failed ? 1 : 0;
}

int
main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 2;
    if (argc >= 7 && strcmp(argv[1], "login") == 0)
        rc = cmd_login(argv + 2);
    else if (argc >= 5 && strcmp(argv[1], "query") == 0)
        rc = cmd_query(argv + 2);
    else if (argc >= 6 && strcmp(argv[1], "create") == 0)
        rc = cmd_create(argv + 2, argc - 2);
    else
        fputs("usage: lfbench login URL CLIENT_ID SECRET USER PASS\n"
              "       lfbench query URL TOKEN SOQL\n"
              "       lfbench create URL TOKEN OBJECT N [CONNS]\n",
              stderr);
    curl_global_cleanup();
    return rc;
}
