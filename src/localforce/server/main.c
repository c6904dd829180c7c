/*
 * localforce: a local Salesforce-compatible org. Command-line entry point.
 *
 *   localforce serve --listen 127.0.0.1:8111 --org ORG.json --db PATH
 *   localforce check --org ORG.json
 *
 * "serve" prints "localforce listening on http://HOST:PORT" (https:// with
 * --tls-cert or --tls-self-signed) once it accepts connections, and stops
 * cleanly on SIGINT or SIGTERM.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "util.h"

#define LOCALFORCE_VERSION "0.1.0"

static const char usage_text[] =
    "usage: localforce <command> [options]\n"
    "\n"
    "A local Salesforce-compatible org: OAuth and SOAP login, REST, SOQL, for\n"
    "testing Salesforce clients without a real org.\n"
    "\n"
    "commands:\n"
    "  serve        run the org\n"
    "  check        validate an org definition file and exit\n"
    "  version      print the version\n"
    "\n"
    "serve options:\n"
    "  --listen HOST:PORT   address to listen on (default 127.0.0.1:8111; port 0 picks a free "
    "one)\n"
    "  --org FILE           org definition (objects, fields, users, apps, seed records);\n"
    "                       see docs/org-file.md\n"
    "  --db PATH            SQLite database file, or :memory: (default :memory:); an existing\n"
    "                       file keeps its records and is extended by --org\n"
    "  --session-ttl SECS   access token lifetime (default: the org file's, else 7200)\n"
    "  --threads N          HTTP worker threads (default 4)\n"
    "  --public-url URL     base URL to hand clients as instance_url (default http://HOST:PORT)\n"
    "  --log-level LEVEL    debug, info, warn or error (default info)\n"
    "  --faults SPEC        inject faults from the start (see docs/localforce.md), e.g.\n"
    "                       'latency=200,jitter=100,error_rate=0.1' ; change later via "
    "/admin/faults\n"
    "  --cdc-retention SECS how long change events are kept for replay (default 259200 = 72 h;\n"
    "                       0 keeps none, so every replay id is too old)\n"
    "  --cdc-gap-events     emit GAP_* change events (header only) instead of full events\n"
    "  --tls-cert FILE      serve HTTPS with this PEM certificate (and --tls-key FILE, its\n"
    "                       private key); instance_url and identity URLs are https:// then\n"
    "  --tls-self-signed DIR  serve HTTPS with DIR/localforce.crt and .key, made (self-signed,\n"
    "                       for localhost, 127.0.0.1 and ::1) when DIR has none; clients trust\n"
    "                       DIR/localforce.crt (sfbridge: SF_CA_FILE)\n"
    "  --result-page-rows N rows per page a Bulk query's resultPages listing names\n"
    "                       (default 100000)\n"
    "\n"
    "check options:\n"
    "  --org FILE           the file to validate\n";

static int
parse_listen(const char *s, char *host, size_t hostsz, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    int64_t p;
    if (colon == NULL || colon == s || (size_t)(colon - s) >= hostsz ||
        util_parse_i64(colon + 1, &p) != 0 || p < 0 || p > 65535)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* localforce check: load the org file into a throwaway org. */
static int
check_org(const char *org_file)
{
    if (org_file == NULL) {
        fputs("localforce: check needs --org FILE\n", stderr);
        return 2;
    }
    store *st = NULL;
    err_t e;
    if (store_open(":memory:", &st, &e) != 0 || store_load_org_file(st, org_file, &e)) {
        fprintf(stderr, "localforce: %s: %s\n", org_file, e.msg);
        if (st)
            store_close(st);
        return 1;
    }
    store_close(st);
    printf("%s: ok\n", org_file);
    return 0;
}

/* A numeric option's value in [lo, hi]: 0, or -1 after saying what it wants. */
static int
number_opt(const char *opt, const char *want, const char *arg, int64_t lo, int64_t hi, int64_t *n)
{
    if (util_parse_i64(arg, n) == 0 && *n >= lo && *n <= hi)
        return 0;
    fprintf(stderr, "localforce: --%s wants %s, got '%s'\n", opt, want, arg);
    return -1;
}

static int
cmd_serve(int argc, char **argv, bool check_only)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"org", required_argument, NULL, 'o'},
        {"db", required_argument, NULL, 'd'},
        {"session-ttl", required_argument, NULL, 't'},
        {"threads", required_argument, NULL, 'n'},
        {"log-level", required_argument, NULL, 'v'},
        {"public-url", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {"faults", required_argument, NULL, 'f'},
        {"cdc-retention", required_argument, NULL, 'r'},
        {"cdc-gap-events", no_argument, NULL, 'g'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"tls-self-signed", required_argument, NULL, 'S'},
        {"result-page-rows", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    char host[128] = "127.0.0.1";
    lf_server_config cfg = {.listen_host = host, .listen_port = 8111, .db_path = ":memory:"};
    int c;
    int64_t n;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (parse_listen(optarg, host, sizeof host, &cfg.listen_port) != 0) {
                fprintf(stderr, "localforce: --listen wants HOST:PORT, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'o': cfg.org_file = optarg; break;
        case 'd': cfg.db_path = optarg; break;
        case 'u': cfg.public_url = optarg; break;
        case 'f': cfg.faults_spec = optarg; break;
        case 'g': cfg.events.gap_events = true; break;
        case 'C': cfg.tls_cert = optarg; break;
        case 'K': cfg.tls_key = optarg; break;
        case 'S': cfg.tls_dir = optarg; break;
        case 'r':
            if (number_opt("cdc-retention", "seconds (0..31536000)", optarg, 0, 365LL * 86400, &n))
                return 2;
            cfg.events.retention_s = n == 0 ? -1 : n;
            break;
        case 'P':
            if (number_opt("result-page-rows", "1..100000000", optarg, 1, 100000000, &n))
                return 2;
            cfg.result_page_rows = n;
            break;
        case 't':
            if (number_opt("session-ttl", "seconds (1..31536000)", optarg, 1, 365LL * 86400, &n))
                return 2;
            cfg.session_ttl_s = n;
            break;
        case 'n':
            if (number_opt("threads", "1..64", optarg, 1, 64, &n))
                return 2;
            cfg.threads = (unsigned)n;
            break;
        case 'v': {
            log_level lvl;
            if (log_level_parse(optarg, &lvl) != 0) {
                fprintf(stderr, "localforce: --log-level wants debug|info|warn|error, got '%s'\n",
                        optarg);
                return 2;
            }
            log_set_level(lvl);
            break;
        }
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs("try 'localforce --help'\n", stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "localforce: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!cfg.tls_cert != !cfg.tls_key || (cfg.tls_cert && cfg.tls_dir)) {
        fputs("localforce: HTTPS wants --tls-cert FILE and --tls-key FILE together, or "
              "--tls-self-signed DIR alone\n",
              stderr);
        return 2;
    }
    if (check_only)
        return check_org(cfg.org_file);

    /* Signals are taken synchronously by this thread; workers never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    lf_server *srv;
    err_t e;
    if (server_start(&cfg, &srv, &e) != 0) {
        fprintf(stderr, "localforce: %s\n", e.msg);
        return 1;
    }
    printf("localforce listening on %s\n", srv->base_url);
    fflush(stdout);
    log_info("org '%s' ready (database %s)", store_org_name(srv->st), cfg.db_path);
    int sig = 0;
    sigwait(&set, &sig);
    log_info("caught %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_stop(srv);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("localforce %s\n", LOCALFORCE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1, false);
    if (strcmp(cmd, "check") == 0)
        return cmd_serve(argc - 1, argv + 1, true);
    fprintf(stderr, "localforce: unknown command '%s' (try --help)\n", cmd);
    return 2;
}
