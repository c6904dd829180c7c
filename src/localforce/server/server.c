/*
 * server: one running localforce org. See server.h.
 *
 * The route table below is the whole API surface. Paths arrive normalized
 * (http_normalize_path: no doubled or trailing slashes), so "sobjects/X/" and
 * "//services/data/..." find the same routes as Salesforce finds. Routes under
 * /services/data/vNN.N/ need a session and count against the daily API limit;
 * their answers carry Sforce-Limit-Info.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "admin.h"
#include "gate.h"
#include "rest.h"
#include "tls.h"
#include "util.h"

static const http_route routes[] = {
    /* versions: no auth, not counted */
    {"GET", "/services/data", rest_versions},
    /* auth */
    {"POST", "/services/oauth2/token", auth_handle_token},
    {"POST", "/services/oauth2/revoke", auth_handle_revoke},
    {"GET", "/services/oauth2/revoke", auth_handle_revoke},
    {"GET", "/services/oauth2/authorize", auth_handle_authorize},
    {"POST", "/services/oauth2/authorize", auth_handle_authorize},
    {"GET", "/services/oauth2/userinfo", auth_handle_userinfo},
    {"POST", "/services/Soap/u/*", auth_handle_soap},
    {"POST", "/services/Soap/u/*/*", auth_handle_soap},
    {"GET", "/id/*/*", auth_handle_identity},
    /* REST */
    {"GET", "/services/data/*", rest_resources},
    {"GET", "/services/data/*/sobjects", rest_describe_global},
    {"GET", "/services/data/*/sobjects/*", rest_sobject_info},
    {"POST", "/services/data/*/sobjects/*", rest_create},
    {"GET", "/services/data/*/sobjects/*/describe", rest_describe},
    {"GET", "/services/data/*/sobjects/*/updated", rest_updated},
    {"GET", "/services/data/*/sobjects/*/deleted", rest_deleted},
    {"GET", "/services/data/*/sobjects/*/*", rest_record},
    {"PATCH", "/services/data/*/sobjects/*/*", rest_record},
    {"DELETE", "/services/data/*/sobjects/*/*", rest_record},
    {"POST", "/services/data/*/sobjects/*/*", rest_record},
    {"GET", "/services/data/*/sobjects/*/*/*", rest_by_external_id},
    {"PATCH", "/services/data/*/sobjects/*/*/*", rest_by_external_id},
    {"POST", "/services/data/*/sobjects/*/*/*", rest_by_external_id},
    {"DELETE", "/services/data/*/sobjects/*/*/*", rest_by_external_id},
    {"GET", "/services/data/*/query", rest_query},
    {"GET", "/services/data/*/queryAll", rest_query_all},
    {"GET", "/services/data/*/query/*", rest_query_more},
    {"GET", "/services/data/*/queryAll/*", rest_query_more},
    {"POST", "/services/data/*/composite/sobjects", rest_collection},
    {"PATCH", "/services/data/*/composite/sobjects", rest_collection},
    {"DELETE", "/services/data/*/composite/sobjects", rest_collection},
    {"PATCH", "/services/data/*/composite/sobjects/*/*", rest_collection_upsert},
    {"GET", "/services/data/*/composite/sobjects/*", rest_collection_retrieve},
    {"POST", "/services/data/*/composite/sobjects/*", rest_collection_retrieve},
    {"POST", "/services/data/*/composite/tree/*", rest_composite_tree},
    {"GET", "/services/data/*/limits", rest_limits},
    /* Bulk API 2.0 */
    {"POST", "/services/data/*/jobs/query", bulk_query_create},
    {"GET", "/services/data/*/jobs/query", bulk_query_list},
    {"GET", "/services/data/*/jobs/query/*", bulk_query_job},
    {"PATCH", "/services/data/*/jobs/query/*", bulk_query_job},
    {"DELETE", "/services/data/*/jobs/query/*", bulk_query_job},
    {"GET", "/services/data/*/jobs/query/*/results", bulk_query_results},
    {"GET", "/services/data/*/jobs/query/*/resultPages", bulk_query_result_pages},
    {"POST", "/services/data/*/jobs/ingest", bulk_ingest_create},
    {"GET", "/services/data/*/jobs/ingest", bulk_ingest_list},
    {"GET", "/services/data/*/jobs/ingest/*", bulk_ingest_job},
    {"PATCH", "/services/data/*/jobs/ingest/*", bulk_ingest_job},
    {"DELETE", "/services/data/*/jobs/ingest/*", bulk_ingest_job},
    {"PUT", "/services/data/*/jobs/ingest/*/batches", bulk_ingest_upload},
    {"GET", "/services/data/*/jobs/ingest/*/*", bulk_ingest_results},
    /* Streaming API (CometD); authenticated inside, as the Bayeux handshake answers in Bayeux */
    {"POST", "/cometd/*", cometd_handle},
    {"POST", "/cometd/*/*", cometd_handle},
    {"POST", "/cometd/*/*/*", cometd_handle},
    /* admin */
    {"GET", "/admin/health", admin_health},
    {"POST", "/admin/objects", admin_add_object},
    {"POST", "/admin/objects/*/fields", admin_add_field},
    {"POST", "/admin/objects/*/records", admin_load_records},
    {"POST", "/admin/objects/*/undelete", admin_undelete},
    {"POST", "/admin/sessions/expire", admin_expire_sessions},
    {"GET", "/admin/faults", faults_admin},
    {"PUT", "/admin/faults", faults_admin},
    {"POST", "/admin/faults", faults_admin},
    {"DELETE", "/admin/faults", faults_admin},
    {NULL, NULL, NULL},
};

static bool
before(const http_route *route, http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    /* Injected faults come first, as a bad network would; admin is never faulted. */
    if (strncmp(route->pattern, "/admin/", 7) != 0 && srv->faults) {
        switch (faults_before(srv->faults, route, req, resp)) {
        case FAULT_PASS: break;
        case FAULT_ANSWERED: return false;
        case FAULT_TAKEN: return false;
        }
    }
    return gate_check(route, req, resp);
}

int
server_start(const lf_server_config *cfg, lf_server **out, err_t *e)
{
    lf_server *srv = xcalloc(1, sizeof *srv);
    if (store_open(cfg->db_path ? cfg->db_path : ":memory:", &srv->st, e) != 0)
        goto fail;
    if (cfg->org_file && store_load_org_file(srv->st, cfg->org_file, e) != 0)
        goto fail;
    srv->auth = auth_new(srv->st);
    if (cfg->session_ttl_s > 0)
        auth_set_ttl(srv->auth, cfg->session_ttl_s);
    srv->cursors = cursors_new(srv->st);
    if ((srv->events = events_new(srv->st, &cfg->events, e)) == NULL ||
        (srv->cometd = cometd_new(srv->events, e)) == NULL ||
        (srv->bulk = bulk_new(srv->st, e)) == NULL ||
        (srv->faults = faults_new(cfg->faults_spec, e)) == NULL)
        goto fail;
    bulk_set_result_page_rows(srv->bulk, cfg->result_page_rows);
    atomic_init(&srv->api_limit, store_daily_api_limit(srv->st));
    atomic_init(&srv->api_used, 0);
    atomic_init(&srv->api_day, util_now_ms() / 86400000);

    if (cfg->tls_dir ? tls_self_signed(cfg->tls_dir, &srv->tls_cert_pem, &srv->tls_key_pem, e)
        : cfg->tls_cert && cfg->tls_key
            ? tls_read(cfg->tls_cert, cfg->tls_key, &srv->tls_cert_pem, &srv->tls_key_pem, e)
            : 0)
        goto fail;
    /* Bind first: base_url must be set before any request can arrive. */
    const char *host = cfg->listen_host ? cfg->listen_host : "127.0.0.1";
    int fd = -1;
    uint16_t port;
    if (http_listen(host, cfg->listen_port, &fd, &port, e) != 0)
        goto fail;
    if (cfg->public_url)
        snprintf(srv->base_url, sizeof srv->base_url, "%s", cfg->public_url);
    else
        snprintf(srv->base_url, sizeof srv->base_url, "%s://%s:%u",
                 srv->tls_cert_pem ? "https" : "http", host, port);
    http_config hc = {
        .host = host,
        .port = port,
        .listen_fd = fd,
        .routes = routes,
        .ctx = srv,
        .max_body = 64u << 20,
        .threads = cfg->threads ? cfg->threads : 4,
        .before = before,
        .after = gate_after,
        .tls_cert = srv->tls_cert_pem,
        .tls_key = srv->tls_key_pem,
    };
    if (http_start(&hc, &srv->http, e) != 0) {
        close(fd);
        goto fail;
    }
    *out = srv;
    return 0;
fail:
    server_stop(srv);
    return -1;
}

void
server_stop(lf_server *srv)
{
    if (srv == NULL)
        return;
    /* Answer parked requests first: the HTTP server cannot stop under them. */
    if (srv->cometd)
        cometd_shutdown(srv->cometd);
    if (srv->faults)
        faults_shutdown(srv->faults);
    http_stop(srv->http);
    faults_free(srv->faults);
    cometd_free(srv->cometd);
    events_free(srv->events);
    bulk_free(srv->bulk);
    cursors_free(srv->cursors);
    auth_free(srv->auth);
    store_close(srv->st);
    free(srv->tls_cert_pem);
    if (srv->tls_key_pem)
        OPENSSL_cleanse(srv->tls_key_pem, strlen(srv->tls_key_pem));
    free(srv->tls_key_pem);
    free(srv);
}
