/*
 * webhook: notifications to a URL (see webhook.h).
 */
#include "webhook.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "app.h"
#include "log.h"
#include "notices.h"
#include "retry.h"
#include "util.h"
#include "version.h"
#include "worker.h"

#define WEBHOOK_BATCH      20
#define WEBHOOK_SWEEP_MS   1000
#define WEBHOOK_TIMEOUT_MS 10000

struct webhook {
    app a; /* its own settings and Postgres connection */
    volatile sig_atomic_t *stop;
    worker_thread thread;
    char host[256]; /* for the log: the URL may hold a secret (Slack's do) */
};

static size_t
discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p, (void)ctx;
    return size * n;
}

/* POST one notification. 0 delivered, -1 with why. */
static int
post(webhook *w, json_t *n, char *why, size_t whysz)
{
    json_t *body = json_pack("{s:s, s:s, s:O, s:O, s:O, s:O, s:O, s:O}", "source", "sfbridge",
                             "schema", w->a.cfg.schema, "id", json_object_get(n, "id"),
                             "created_at", json_object_get(n, "created_at"), "kind",
                             json_object_get(n, "kind"), "level", json_object_get(n, "level"),
                             "object", json_object_get(n, "object_name"), "message",
                             json_object_get(n, "message"));
    json_object_set_new(body, "text",
                        json_sprintf("sfbridge (%s): %s", w->a.cfg.schema,
                                     json_string_value(json_object_get(n, "message"))));
    char *txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    long status = 0;
    CURLcode cc = CURLE_FAILED_INIT;
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, w->a.cfg.webhook_url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, txt);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)WEBHOOK_TIMEOUT_MS);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "sfbridge/" SFBRIDGE_VERSION);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
    }
    curl_slist_free_all(hdr);
    free(txt);
    if (cc == CURLE_OK && status >= 200 && status < 300)
        return 0;
    if (cc != CURLE_OK)
        snprintf(why, whysz, "%s", curl_easy_strerror(cc));
    else
        snprintf(why, whysz, "HTTP %ld", status);
    return -1;
}

/* Deliver what is due. */
static void
sweep(webhook *w)
{
    err_t e;
    err_clear(&e);
    PGconn *pg = app_pg_read(&w->a, &e);
    json_t *due = pg ? notices_due(pg, w->a.cfg.schema, WEBHOOK_BATCH, &e) : NULL;
    if (!due) {
        log_debug("webhook: notifications not read: %s", e.msg);
        app_close_pg(&w->a);
        return;
    }
    size_t i;
    json_t *n;
    json_array_foreach(due, i, n) {
        if (*w->stop)
            break;
        int64_t id = json_integer_value(json_object_get(n, "id"));
        int attempts = (int)json_integer_value(json_object_get(n, "attempts"));
        char why[256];
        int rc;
        if (post(w, n, why, sizeof why) == 0) {
            rc = notices_delivered(pg, w->a.cfg.schema, id, &e);
        } else {
            long d = retry_delay_ms(&retry_presets[RETRY_WEBHOOK], attempts + 1, 0);
            log_warn("webhook: notification %lld not taken by %s: %s (again in %.0f s)",
                     (long long)id, w->host, why, (double)d / 1000.0);
            rc = notices_failed(pg, w->a.cfg.schema, id, why, d, &e);
        }
        if (rc != 0) {
            log_debug("webhook: delivery not recorded: %s", e.msg);
            break;
        }
    }
    json_decref(due);
}

static void *
webhook_main(void *arg)
{
    webhook *w = arg;
    while (!*w->stop) {
        sweep(w);
        for (int t = 0; t < WEBHOOK_SWEEP_MS && !*w->stop; t += 100)
            usleep(100000);
    }
    return NULL;
}

webhook *
webhook_start(const cfg *c, volatile sig_atomic_t *stop)
{
    webhook *w = xcalloc(1, sizeof *w);
    cfg_copy(&w->a.cfg, c);
    w->stop = stop;
    CURLU *u = curl_url();
    char *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, c->webhook_url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        snprintf(w->host, sizeof w->host, "%s", host);
    else
        snprintf(w->host, sizeof w->host, "the webhook");
    curl_free(host);
    curl_url_cleanup(u);
    if (worker_start(&w->thread, webhook_main, w) != 0) {
        app_close(&w->a);
        free(w);
        return NULL;
    }
    log_info("webhook: notifications go to %s", w->host);
    return w;
}

void
webhook_stop(webhook *w)
{
    if (!w)
        return;
    worker_join(&w->thread);
    app_close(&w->a);
    free(w);
}
