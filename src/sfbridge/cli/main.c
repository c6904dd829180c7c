/*
 * sfbridge: the sync daemon and its CLI (see docs/sfbridge.md and
 * docs/architecture.md). One table lists the commands with their options,
 * arguments and help; opts_parse checks a command line against it, and each
 * command calls the module that does the work. Exit status: 0 done, 1 failed,
 * 2 bad usage.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "app.h"
#include "catalog.h"
#include "control.h"
#include "daemon.h"
#include "diagnose.h"
#include "fsm.h"
#include "log.h"
#include "mapping.h"
#include "opts.h"
#include "pg.h"
#include "status.h"
#include "util.h"
#include "version.h"
#include "notices.h"
#include "oauthweb.h"
#include "tlog.h"
#include "writer.h"

/* How long a foreground command waits for a running daemon doing its work. */
#define DAEMON_WAIT_S 600

typedef struct command command;
typedef int (*cmd_fn)(app *a, const command *c, const opts *o);

/* One command: its options and arguments are checked by opts_parse before
 * fn runs; a command with subcommands (mapping) has sub instead of fn. */
struct command {
    const char *name;
    cmd_fn fn;
    const opt_spec *opts;
    opt_args args;
    const char *usage;
    const char *help;
    const command *sub;
};

static const command commands[];

/* Options every command takes, before or after its name. */
static const opt_spec global_opts[] = {
    {"config", OPT_STR, "FILE", 0, 0},
    {"schema", OPT_STR, "NAME", 0, 0},
    {"log-level", OPT_STR, "LEVEL", 0, 0},
    OPT_END,
};

/* ---- helpers ----------------------------------------------------------------- */

static int
fail(const err_t *e)
{
    fprintf(stderr, "sfbridge: %s\n", e->msg[0] ? e->msg : e->code);
    return 1;
}

/* A usage mistake: the sentence, the command's usage, exit status 2. */
static int
usage_fail(const command *c, const err_t *e)
{
    fprintf(stderr, "sfbridge: %s\n", e->msg);
    if (c)
        fprintf(stderr, "usage: sfbridge %s\n", c->usage);
    return 2;
}

static int usage_error(const command *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
usage_error(const command *c, const char *fmt, ...)
{
    err_t e;
    va_list ap;
    va_start(ap, fmt);
    err_setv(&e, 400, "BAD_USAGE", fmt, ap);
    va_end(ap);
    return usage_fail(c, &e);
}

static void
print_help(const command *c, FILE *to)
{
    fprintf(to, "usage: sfbridge %s\n\n%s", c->usage, c->help);
}

/* ---- commands ----------------------------------------------------------------- */

static int
cmd_init(app *a, const command *c, const opts *o)
{
    (void)c, (void)o;
    err_t e;
    err_clear(&e);
    if (!app_pg(a, &e) || !app_sf(a, &e))
        return fail(&e);
    printf("connected: org %s at %s, schema %s ready\n", sfapi_org_id(a->sf),
           sfapi_instance_url(a->sf), a->cfg.schema);
    return 0;
}

static int
cmd_auth(app *a, const command *c, const opts *o)
{
    if (opts_flag(o, "sandbox") && opts_str(o, "login-url"))
        return usage_error(c, "--sandbox and --login-url say the same thing: give one");
    const opt_val *port = opts_get(o, "port"), *timeout = opts_get(o, "timeout");
    oauthweb_opts w = {
        .login_url = opts_flag(o, "sandbox") ? "https://test.salesforce.com"
                                             : opts_str(o, "login-url"),
        .port = port->set ? (int)port->num : 1717,
        .open = opts_flag(o, "open"),
        .timeout_s = timeout->set ? timeout->num : 300,
        .config_path = a->config_path,
    };
    err_t e;
    err_clear(&e);
    app_install_signals(false);
    return oauthweb_run(&a->cfg, &w, &e) == 0 ? 0 : fail(&e);
}

static int
run_mode(app *a, const opts *o, daemon_mode mode)
{
    if (mode == DAEMON_RUN && opts_flag(o, "once"))
        mode = DAEMON_ONCE;
    status_bar bar = {0};
    bool show_bar = mode != DAEMON_RUN;
    err_t e;
    err_clear(&e);
    app_install_signals(mode == DAEMON_RUN);
    int rc = daemon_main(a, mode, o->args, o->nargs, show_bar ? status_progress : NULL, &bar, &e);
    status_bar_finish(&bar);
    if (rc != 0 && strcmp(e.code, "LOCKED") == 0 && mode != DAEMON_RUN && mode != DAEMON_ONCE) {
        /* A daemon syncs the schema: it does the work, this command waits for it. */
        control_ask what = mode == DAEMON_LOAD   ? ASK_LOAD
                           : mode == DAEMON_POLL ? ASK_POLL
                                                 : ASK_DRIFT;
        err_clear(&e);
        rc = control_via_daemon(a, what, o->args, o->nargs, DAEMON_WAIT_S, stdout, &e);
    }
    return rc != 0 ? fail(&e) : 0;
}

static int
cmd_run(app *a, const command *c, const opts *o)
{
    err_t e;
    const char *http = opts_str(o, "http");
    if (http && opts_flag(o, "once"))
        return usage_error(c, "--http serves the running daemon: not with --once");
    if (http && app_override(a, "SFBRIDGE_HTTP", http, &e) != 0)
        return usage_fail(c, &e);
    return run_mode(a, o, DAEMON_RUN);
}

static int
cmd_load(app *a, const command *c, const opts *o)
{
    (void)c;
    return run_mode(a, o, DAEMON_LOAD);
}

static int
cmd_poll(app *a, const command *c, const opts *o)
{
    (void)c;
    return run_mode(a, o, DAEMON_POLL);
}

static int
cmd_drift(app *a, const command *c, const opts *o)
{
    (void)c;
    return run_mode(a, o, DAEMON_DRIFT);
}

static int
cmd_status(app *a, const command *c, const opts *o)
{
    (void)c;
    bool json = opts_flag(o, "json");
    long watch = opts_get(o, "watch")->num;
    err_t e;
    err_clear(&e);
    app_install_signals(false);
    status_health h = STATUS_DOWN;
    do {
        if (watch && isatty(1))
            fputs("\033[H\033[2J", stdout);
        if (status_print(a, json, stdout, &h, &e) != 0) {
            fail(&e);
            return STATUS_DOWN; /* no database, or no catalog: down for a health check */
        }
        fflush(stdout);
        for (long t = 0; watch && t < watch * 10 && !app_stop; t++)
            usleep(100000);
    } while (watch && !app_stop);
    return (int)h;
}

static int
cmd_push(app *a, const command *c, const opts *o)
{
    (void)c, (void)o;
    err_t e;
    err_clear(&e);
    if (!app_pg(a, &e) || !app_sf(a, &e))
        return fail(&e);
    app_install_signals(false);
    if (app_lock(a, &e) != 0 && strcmp(e.code, "LOCKED") == 0) {
        err_clear(&e);
        return control_via_daemon(a, ASK_PUSH, NULL, 0, DAEMON_WAIT_S, stdout, &e) == 0 ? 0
                                                                                        : fail(&e);
    }
    if (e.code[0] || writer_recover(a->pg, a->cfg.schema, &e) != 0)
        return fail(&e);
    writer *w = writer_new(&a->cfg, &app_stop);
    writer_stats st;
    int rc = writer_pass(w, &st, &e);
    writer_free(w);
    if (rc != 0)
        return fail(&e);
    printf("%lld records written, %lld refused (FAILED), %lld waiting to retry, %lld API calls\n",
           (long long)st.sent, (long long)st.failed, (long long)st.retrying,
           (long long)st.api_calls);
    return st.retrying ? 1 : 0;
}

static int
cmd_retry(app *a, const command *c, const opts *o)
{
    bool all = opts_flag(o, "all");
    if (all == (o->nargs > 0))
        return usage_error(c, "%s",
                           all ? "use --all or ids, not both" : "name trigger log ids, or --all");
    err_t e;
    err_clear(&e);
    int64_t count = 0;
    sb missing = SB_INIT;
    int rc = app_pg(a, &e) ? writer_requeue(a->pg, a->cfg.schema, o->args, o->nargs, all, &count,
                                            &missing, &e)
                           : -1;
    if (rc != 0) {
        sb_free(&missing);
        return fail(&e);
    }
    printf("%lld failed write%s requeued\n", (long long)count, count == 1 ? "" : "s");
    if (missing.len) {
        fprintf(stderr,
                "sfbridge: no failed write with id %s (failed writes are the entries in state "
                "FAILED of _trigger_log and _trigger_log_archive)\n",
                sb_str(&missing));
        rc = 1;
    }
    sb_free(&missing);
    return rc;
}

/* `sfbridge errors [OBJECT]`: the write errors, as Heroku Connect's connect:write-errors. */
static int
cmd_errors(app *a, const command *c, const opts *o)
{
    (void)c;
    err_t e;
    err_clear(&e);
    const char *table = NULL;
    mapping *m = NULL;
    size_t n = 0;
    if (!app_pg_read(a, &e))
        return fail(&e);
    if (o->nargs) {
        if (cat_load_any(a->pg, a->cfg.schema, o->args[0], &m, &n, &e) != 0)
            return fail(&e);
        if (!n) {
            err_set(&e, 404, "NOT_MAPPED", "%s is not mapped (see: sfbridge mapping list)",
                    o->args[0]);
            return fail(&e);
        }
        table = m->table;
    }
    long hours = opts_get(o, "hours")->set ? opts_get(o, "hours")->num : 24;
    json_t *list = tlog_errors_json(a->pg, a->cfg.schema, table, (int)hours, &e);
    mapping_free_all(m, n);
    if (!list)
        return fail(&e);
    if (opts_flag(o, "json")) {
        char *txt = json_dumps(list, JSON_COMPACT);
        printf("%s\n", txt);
        free(txt);
    } else if (json_array_size(list) == 0) {
        printf("no failed writes in the last %ld hours\n", hours);
    } else {
        printf("%-8s %-24s %-8s %-18s %-7s %-19s  %s\n", "ID", "TABLE", "ROW", "SFID", "ACTION",
               "FAILED AT", "SALESFORCE SAID");
        size_t i;
        json_t *x;
        json_array_foreach(list, i, x) {
            const char *sfid = json_string_value(json_object_get(x, "sfid"));
            const char *at = json_string_value(json_object_get(x, "processed_at"));
            const char *msg = json_string_value(json_object_get(x, "message"));
            printf("%-8lld %-24s %-8lld %-18s %-7s %-19.19s  %s\n",
                   (long long)json_integer_value(json_object_get(x, "id")),
                   json_string_value(json_object_get(x, "table_name")),
                   (long long)json_integer_value(json_object_get(x, "record_id")),
                   sfid ? sfid : "-", json_string_value(json_object_get(x, "action")),
                   at ? at : "-", msg ? msg : "");
        }
        printf(
            "\nfix the rows (or the data in Salesforce), then: sfbridge retry ID ... (or --all)\n");
    }
    json_decref(list);
    return 0;
}

static void
print_notice(json_t *x)
{
    const char *at = json_string_value(json_object_get(x, "created_at"));
    const char *acked = json_string_value(json_object_get(x, "acknowledged_at"));
    printf("%-6lld %-19.19s %-5s %-20s %s%s\n",
           (long long)json_integer_value(json_object_get(x, "id")), at ? at : "-",
           json_string_value(json_object_get(x, "level")),
           json_string_value(json_object_get(x, "kind")),
           json_string_value(json_object_get(x, "message")), acked ? " (acknowledged)" : "");
}

/* `sfbridge notifications`: what sfbridge has to tell (unacknowledged, or all of N hours). */
static int
cmd_notifications(app *a, const command *c, const opts *o)
{
    (void)c;
    err_t e;
    err_clear(&e);
    bool all = opts_flag(o, "all");
    long hours = opts_get(o, "hours")->set ? opts_get(o, "hours")->num : 24;
    json_t *list = app_pg_read(a, &e) ? notices_list(a->pg, a->cfg.schema, all, (int)hours, &e)
                                      : NULL;
    if (!list)
        return fail(&e);
    if (opts_flag(o, "json")) {
        char *txt = json_dumps(list, JSON_COMPACT);
        printf("%s\n", txt);
        free(txt);
    } else if (!json_array_size(list)) {
        printf(all ? "no notifications in the last %ld hours\n"
                   : "no unacknowledged notifications\n",
               hours);
    } else {
        size_t i;
        json_t *x;
        json_array_foreach(list, i, x)
            print_notice(x);
        if (!all)
            printf("\nsfbridge ack ID ... (or --all) acknowledges them\n");
    }
    json_decref(list);
    return 0;
}

static int
cmd_ack(app *a, const command *c, const opts *o)
{
    bool all = opts_flag(o, "all");
    if (all == (o->nargs > 0))
        return usage_error(c, "%s",
                           all ? "use --all or ids, not both" : "name notification ids, or --all");
    err_t e;
    err_clear(&e);
    if (!app_pg(a, &e))
        return fail(&e);
    int64_t total = 0;
    for (size_t i = 0; i < (all ? 1 : o->nargs); i++) {
        int64_t id = 0, n = 0;
        if (!all)
            (void)util_parse_i64(o->args[i], &id); /* checked by opts: a whole number */
        if (notices_ack(a->pg, a->cfg.schema, id, &n, &e) != 0)
            return fail(&e);
        if (!all && n == 0) {
            fprintf(stderr, "sfbridge: no unacknowledged notification with id %s\n", o->args[i]);
            return 1;
        }
        total += n;
    }
    printf("%lld notification%s acknowledged\n", (long long)total, total == 1 ? "" : "s");
    return 0;
}

static int
cmd_diagnose(app *a, const command *c, const opts *o)
{
    (void)c;
    err_t e;
    err_clear(&e);
    diag_color worst = DIAG_GREEN;
    if (diagnose_run(a, o->nargs ? o->args[0] : NULL, opts_flag(o, "json"), stdout, &worst, &e) !=
        0)
        return fail(&e);
    return (int)worst;
}

/* reload, pause, resume: changes the daemon picks up (control.c). */
static int
control_command(app *a, const opts *o, control_action what, const char *done_msg)
{
    const char *object = o->nargs ? o->args[0] : NULL;
    err_t e;
    err_clear(&e);
    if (control_apply(a, object, what, &e) != 0)
        return fail(&e);
    printf("%s: %s\n", object ? object : "the connection", done_msg);
    return 0;
}

static int
cmd_reload(app *a, const command *c, const opts *o)
{
    (void)c;
    return control_command(a, o, CONTROL_RELOAD,
                           "reload scheduled (the running daemon, or sfbridge load, does it)");
}

static int
cmd_pause(app *a, const command *c, const opts *o)
{
    (void)c;
    return control_command(a, o, CONTROL_PAUSE, "paused");
}

static int
cmd_resume(app *a, const command *c, const opts *o)
{
    (void)c;
    return control_command(a, o, CONTROL_RESUME, "resumed");
}

/* ---- mapping subcommands ------------------------------------------------------------ */

static void
list_opt(const opts *o, const char *name, const char ***arr, size_t *n)
{
    const opt_val *v = opts_get(o, name);
    *arr = v->list;
    *n = v->n;
}

/* -1 unchanged, else whether --on (and not --off) was given. */
static int
tristate(const command *c, const opts *o, const char *on, const char *off, int *out)
{
    bool y = opts_flag(o, on), n = off && opts_flag(o, off);
    if (y && n)
        return usage_error(c, "use --%s or --%s, not both", on, off);
    *out = y ? 1 : n ? 0 : -1;
    return 0;
}

/* The map_opts the add or edit command line asks for; 0, or exit status 2. */
static int
map_opts_of(const command *c, const opts *o, bool edit, map_opts *m)
{
    list_opt(o, "fields", &m->fields, &m->nfields);
    list_opt(o, "add-fields", &m->add_fields, &m->nadd);
    list_opt(o, "remove-fields", &m->remove_fields, &m->nremove);
    list_opt(o, "index", &m->indexes, &m->nindexes);
    m->all_fields = opts_flag(o, "all-fields");
    if (m->all_fields && m->nfields)
        return usage_error(c, "use --fields or --all-fields, not both");
    const char *access = opts_str(o, "access");
    if (access && strcmp(access, "read_only") && strcmp(access, "read_write"))
        return usage_error(c, "--access is read_only or read_write, not '%s'", access);
    int rw;
    if (tristate(c, o, "read-write", "read-only", &rw) != 0)
        return 2;
    if (access && rw >= 0 && rw != (strcmp(access, "read_write") == 0))
        return usage_error(c, "--access %s contradicts --%s", access,
                           rw ? "read-write" : "read-only");
    m->access = access ? strcmp(access, "read_write") == 0 : rw;
    m->poll_seconds = (int)opts_get(o, "poll")->num;
    m->max_daily = opts_get(o, "max-daily-api-calls")->num;
    m->upsert_field = opts_str(o, "upsert-field");
    m->no_upsert_field = opts_flag(o, "no-upsert-field");
    if (m->upsert_field && m->no_upsert_field)
        return usage_error(c, "use --upsert-field or --no-upsert-field, not both");
    if (tristate(c, o, "tombstones", "no-tombstones", &m->tombstones) != 0 ||
        tristate(c, o, "accelerated", "no-accelerated", &m->notify) != 0)
        return 2;
    bool any = m->nadd || m->nremove || m->nindexes || m->access >= 0 || m->poll_seconds ||
               m->max_daily || m->upsert_field || m->no_upsert_field || m->tombstones >= 0 ||
               m->notify >= 0;
    if (edit && !any)
        return usage_error(c, "nothing to change: give at least one option (--help lists them)");
    return 0;
}

static int
map_cmd_add_edit(app *a, const command *c, const opts *o, bool edit)
{
    map_opts m = MAP_OPTS_INIT;
    int rc = map_opts_of(c, o, edit, &m);
    if (rc != 0)
        return rc;
    const char *object = o->args[0];
    err_t e;
    err_clear(&e);
    if ((edit ? map_edit : map_add)(a, object, &m, &e) != 0)
        return fail(&e);
    printf("%s: mapping %s\n", object,
           edit ? "updated" : "added; the daemon (or sfbridge load) loads it");
    return 0;
}

static int
map_cmd_add(app *a, const command *c, const opts *o)
{
    return map_cmd_add_edit(a, c, o, false);
}

static int
map_cmd_edit(app *a, const command *c, const opts *o)
{
    return map_cmd_add_edit(a, c, o, true);
}

static int
map_cmd_list(app *a, const command *c, const opts *o)
{
    (void)c, (void)o;
    err_t e;
    err_clear(&e);
    return map_list(a, stdout, &e) == 0 ? 0 : fail(&e);
}

static int
map_cmd_show(app *a, const command *c, const opts *o)
{
    (void)c;
    err_t e;
    err_clear(&e);
    return map_show(a, o->args[0], opts_flag(o, "json"), stdout, &e) == 0 ? 0 : fail(&e);
}

static int
map_cmd_remove(app *a, const command *c, const opts *o)
{
    (void)c;
    bool drop = opts_flag(o, "drop-table");
    err_t e;
    err_clear(&e);
    if (map_remove(a, o->args[0], drop, &e) != 0)
        return fail(&e);
    printf("%s: mapping removed, table %s\n", o->args[0], drop ? "dropped" : "kept");
    return 0;
}

static int
map_cmd_export(app *a, const command *c, const opts *o)
{
    (void)c;
    const char *path = opts_str(o, "out");
    err_t e;
    err_clear(&e);
    json_t *doc = map_export_json(a, &e);
    if (!doc)
        return fail(&e);
    int rc = 0;
    if (path) {
        if (json_dump_file(doc, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
            fprintf(stderr, "sfbridge: cannot write %s: %s\n", path, strerror(errno));
            rc = 1;
        }
    } else {
        char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
    }
    json_decref(doc);
    return rc;
}

static int
map_cmd_import(app *a, const command *c, const opts *o)
{
    (void)c;
    const char *path = o->args[0];
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sfbridge: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    json_error_t je;
    json_t *doc = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!doc) {
        fprintf(stderr, "sfbridge: %s: not valid JSON at line %d: %s\n", path, je.line, je.text);
        return 1;
    }
    err_t e;
    err_clear(&e);
    int rc = map_import(a, doc, &e) == 0 ? 0 : fail(&e);
    if (rc == 0)
        printf("imported %zu mappings from %s\n", json_array_size(json_object_get(doc, "mappings")),
               path);
    json_decref(doc);
    return rc;
}

/* ---- the tables ----------------------------------------------------------------- */

#define FLAG(n)                 \
    {                           \
        n, OPT_FLAG, NULL, 0, 0 \
    }
#define INT(n, v, lo, hi)     \
    {                         \
        n, OPT_INT, v, lo, hi \
    }
#define STR(n, v)           \
    {                       \
        n, OPT_STR, v, 0, 0 \
    }
#define LIST(n, v)           \
    {                        \
        n, OPT_LIST, v, 0, 0 \
    }
#define MULTI(n, v)           \
    {                         \
        n, OPT_MULTI, v, 0, 0 \
    }

static const opt_spec no_opts[] = {OPT_END};
static const opt_spec run_opts[] = {FLAG("once"), STR("http", "HOST:PORT"), OPT_END};
static const opt_spec status_opts[] = {FLAG("json"), INT("watch", "SECONDS", 1, 3600), OPT_END};
static const opt_spec retry_opts[] = {FLAG("all"), OPT_END};
static const opt_spec errors_opts[] = {FLAG("json"), INT("hours", "N", 1, 744), OPT_END};
static const opt_spec notices_opts[] = {FLAG("all"), FLAG("json"), INT("hours", "N", 1, 744),
                                        OPT_END};
static const opt_spec ack_opts[] = {FLAG("all"), OPT_END};
static const opt_spec diagnose_opts[] = {FLAG("json"), OPT_END};
static const opt_spec auth_opts[] = {STR("login-url", "URL"),
                                     FLAG("sandbox"),
                                     INT("port", "PORT", 0, 65535),
                                     FLAG("open"),
                                     INT("timeout", "SECONDS", 1, 3600),
                                     OPT_END};
static const opt_spec show_opts[] = {FLAG("json"), OPT_END};
static const opt_spec remove_opts[] = {FLAG("drop-table"), OPT_END};
static const opt_spec export_opts[] = {STR("out", "FILE"), OPT_END};

/* The settings add and edit share. */
#define MAP_COMMON_OPTS                                                                     \
    STR("access", "read_only|read_write"), FLAG("read-write"), FLAG("read-only"),           \
        INT("poll", "SECONDS", 1, 86400), INT("max-daily-api-calls", "N", 1, 100000000),    \
        STR("upsert-field", "FIELD"), MULTI("index", "FIELD[:unique]"), FLAG("tombstones"), \
        FLAG("accelerated")

static const opt_spec add_opts[] = {LIST("fields", "F1,F2,..."), FLAG("all-fields"),
                                    MAP_COMMON_OPTS, OPT_END};
static const opt_spec edit_opts[] = {LIST("add-fields", "F1,F2,..."),
                                     LIST("remove-fields", "F1,F2,..."),
                                     FLAG("no-upsert-field"),
                                     FLAG("no-tombstones"),
                                     FLAG("no-accelerated"),
                                     MAP_COMMON_OPTS,
                                     OPT_END};

#define NONE                     \
    {                            \
        0, 0, "arguments", false \
    }
#define OBJECT                               \
    {                                        \
        1, 1, "the Salesforce object", false \
    }
#define OBJECTS                        \
    {                                  \
        0, -1, "mapped objects", false \
    }
#define AT_MOST_1                        \
    {                                    \
        0, 1, "the mapped object", false \
    }
#define IDS                            \
    {                                  \
        0, -1, "trigger log ids", true \
    }
#define FILE_ARG                       \
    {                                  \
        1, 1, "the export file", false \
    }
#define NOTICE_IDS                      \
    {                                   \
        0, -1, "notification ids", true \
    }

static const command mapping_commands[] = {
    {"add", map_cmd_add, add_opts, OBJECT,
     "mapping add OBJECT [--fields F1,F2,... | --all-fields] [--access read_only|read_write] "
     "[--poll SECONDS]\n"
     "                   [--upsert-field FIELD] [--index FIELD[:unique]]... [--tombstones] "
     "[--accelerated]\n"
     "                   [--max-daily-api-calls N]",
     "Map a Salesforce object to the table <schema>.<object in lowercase>, created as Heroku "
     "Connect does.\n"
     "Without --fields every field sfbridge can sync is mapped. Id, SystemModstamp, IsDeleted, "
     "CreatedDate and\n"
     "Name are always mapped. Checked against Salesforce first: unknown objects and fields are "
     "refused by name.\n\n"
     "  --fields F1,F2       the fields to map (API names; a compound field stands for its "
     "components)\n"
     "  --all-fields         every field (the default)\n"
     "  --access A           read_only (default) or read_write (also --read-only, --read-write)\n"
     "  --poll SECONDS       polling interval, 1 to 86400 (default 600)\n"
     "  --upsert-field F     the unique identifier: an External ID field\n"
     "  --index F[:unique]   an index on a mapped field (hc_idx_<table>_<column>, hcu_idx_ when "
     "unique)\n"
     "  --tombstones         keep deleted records as rows with isdeleted = true\n"
     "  --accelerated        accelerated sync (sf_notify_enabled)\n"
     "  --max-daily-api-calls N  API calls this mapping may use per day (default 30000)\n",
     NULL},
    {"edit", map_cmd_edit, edit_opts, OBJECT,
     "mapping edit OBJECT [--add-fields F,...] [--remove-fields F,...] [--poll SECONDS] [--access "
     "A]\n"
     "                    [--upsert-field F | --no-upsert-field] [--index F[:unique]]... "
     "[--[no-]tombstones]\n"
     "                    [--[no-]accelerated] [--max-daily-api-calls N]",
     "Change a mapping. Added fields become new columns at once and are backfilled from Salesforce "
     "by the\n"
     "daemon without blocking readers; removed fields drop their columns.\n\n"
     "  --add-fields F,...      map more fields (new columns, backfilled)\n"
     "  --remove-fields F,...   stop mapping fields (their columns are dropped)\n"
     "  --poll SECONDS          polling interval, 1 to 86400\n"
     "  --access A              read_only or read_write (also --read-only, --read-write)\n"
     "  --upsert-field F        the unique identifier (an External ID field); --no-upsert-field "
     "clears it\n"
     "  --index F[:unique]      add an index on a mapped field\n"
     "  --tombstones            keep deleted records as isdeleted = true; --no-tombstones removes "
     "them\n"
     "  --accelerated           accelerated sync on; --no-accelerated off\n"
     "  --max-daily-api-calls N API calls this mapping may use per day\n",
     NULL},
    {"list", map_cmd_list, no_opts, NONE, "mapping list", "List the mappings.\n", NULL},
    {"show", map_cmd_show, show_opts, OBJECT, "mapping show OBJECT [--json]",
     "Show one mapping: configuration, fields, state.\n", NULL},
    {"remove", map_cmd_remove, remove_opts, OBJECT, "mapping remove OBJECT [--drop-table]",
     "Stop syncing an object. The table and its data stay unless --drop-table is given.\n", NULL},
    {"export", map_cmd_export, export_opts, NONE, "mapping export [--out FILE]",
     "Write every mapping as Heroku Connect export JSON (to stdout, or FILE).\n", NULL},
    {"import", map_cmd_import, no_opts, FILE_ARG, "mapping import FILE",
     "Create or update mappings from a Heroku Connect export JSON file. The whole file is checked "
     "against\n"
     "Salesforce first; if anything is wrong nothing changes. Existing mappings gain the file's "
     "fields and\n"
     "settings (fields are never removed by an import).\n",
     NULL},
    {NULL, NULL, NULL, NONE, NULL, NULL, NULL},
};

static const command commands[] = {
    {"init", cmd_init, no_opts, NONE, "init",
     "Create the schema and sfbridge's state tables, log in to Salesforce and record the org.\n",
     NULL},
    {"auth", cmd_auth, auth_opts, NONE,
     "auth [--sandbox | --login-url URL] [--port PORT] [--open] [--timeout SECONDS]",
     "Connect an org the way an admin does: the OAuth web-server flow with PKCE. Prints the "
     "authorize URL\n"
     "(--open runs xdg-open on it), waits for the browser at "
     "http://127.0.0.1:PORT/callback (PORT 1717\n"
     "unless given; 0 picks a free one; the connected app's callback URL must be the same), "
     "and stores the\n"
     "refresh token in the credentials file (SFBRIDGE_CREDENTIALS, else \"credentials\" next "
     "to the config\n"
     "file, else ~/.config/sfbridge/credentials; mode 0600), which sfbridge logs in with "
     "from then on.\n"
     "--sandbox logs in at https://test.salesforce.com, --login-url at a My Domain; else at "
     "SF_LOGIN_URL.\n",
     NULL},
    {"run", cmd_run, run_opts, NONE, "run [--once] [--http HOST:PORT]",
     "The daemon: loads new mappings, polls each at its interval, checks for drift, retries "
     "failures with\n"
     "backoff. Stops cleanly on Ctrl-C or SIGTERM. --once does one pass (pending loads, then one "
     "poll of\n"
     "every active mapping) and exits, 1 if anything failed. --http serves the management API "
     "(health,\n"
     "metrics, JSON; as SFBRIDGE_HTTP) on HOST:PORT; beyond loopback it needs "
     "SFBRIDGE_HTTP_TOKEN.\n",
     NULL},
    {"status", cmd_status, status_opts, NONE, "status [--json] [--watch SECONDS]",
     "Connection and mapping states, load progress (rows, rows/s, estimate), last and next polls, "
     "errors,\n"
     "API calls used today, and a verdict. --watch redraws it every SECONDS (1 to 3600) until "
     "Ctrl-C.\n"
     "Reads only. Exit status for health checks: 0 healthy, 1 degraded (a mapping in error or "
     "retrying,\n"
     "a stream down, failed writes), 2 down (no daemon, the org offline or refusing the "
     "login, no\n"
     "database or catalog).\n",
     NULL},
    {"load", cmd_load, no_opts, OBJECTS, "load [OBJECT ...]",
     "Run pending initial loads, reloads and backfills now, in the foreground, with a progress "
     "bar.\n",
     NULL},
    {"poll", cmd_poll, no_opts, OBJECTS, "poll [OBJECT ...]",
     "Poll Salesforce for changes now, whatever the interval.\n", NULL},
    {"drift", cmd_drift, no_opts, OBJECTS, "drift [OBJECT ...]",
     "Compare record ids and modstamps with Salesforce now and repair what differs.\n", NULL},
    {"push", cmd_push, no_opts, NONE, "push",
     "Send the changes apps made in Postgres to Salesforce now, in the foreground (what the "
     "daemon's writer\n"
     "does continuously). Exits 1 when some changes wait for a retry.\n",
     NULL},
    {"retry", cmd_retry, retry_opts, IDS, "retry [--all | ID ...]",
     "Requeue failed writes (trigger log ids, from _trigger_log or _trigger_log_archive) after the "
     "data was\n"
     "fixed; the writer sends them again. Exits 1 when an id names no failed write.\n",
     NULL},
    {"errors", cmd_errors, errors_opts, AT_MOST_1, "errors [OBJECT] [--hours N] [--json]",
     "The writes Salesforce refused in the last N hours (default 24; 1 to 744), newest first: "
     "trigger log id,\n"
     "table, row, record, action, when and Salesforce's message (Heroku Connect's "
     "connect:write-errors).\n"
     "Fix the data, then sfbridge retry ID.\n",
     NULL},
    {"diagnose", cmd_diagnose, diagnose_opts, AT_MOST_1, "diagnose [OBJECT] [--json]",
     "Heroku Connect's connect:diagnose and more: each check GREEN, YELLOW or RED with the reason "
     "and a fix\n"
     "(Salesforce login, Postgres privileges, the trigger log's size; per mapping its state, the "
     "unique\n"
     "identifier of a read-write mapping, fields the user cannot read or write, required fields "
     "not mapped,\n"
     "formula fields, large text areas, the daily API budget). Exit status: 0 all green, 1 "
     "something\n"
     "yellow, 2 something red.\n",
     NULL},
    {"notifications", cmd_notifications, notices_opts, NONE,
     "notifications [--all] [--hours N] [--json]",
     "What sfbridge has to tell, newest first: mappings in error and back, the connection lost "
     "and\n"
     "recovered, streams fallen back to polling, API budgets 90% spent, writes refused. Without "
     "--all\n"
     "the unacknowledged ones; with it, all of the last N hours (default 24).\n",
     NULL},
    {"ack", cmd_ack, ack_opts, NOTICE_IDS, "ack [--all | ID ...]",
     "Acknowledge notifications (status stops showing them).\n", NULL},
    {"reload", cmd_reload, no_opts, OBJECT, "reload OBJECT",
     "Refill one mapping from Salesforce. Readers keep seeing the old rows until the new ones "
     "replace them\n"
     "in one transaction.\n",
     NULL},
    {"pause", cmd_pause, no_opts, AT_MOST_1, "pause [OBJECT]",
     "Stop syncing one mapping, or the whole connection.\n", NULL},
    {"resume", cmd_resume, no_opts, AT_MOST_1, "resume [OBJECT]",
     "Resume a paused mapping or connection; also retries now a\n"
     "mapping that stopped on an error.\n",
     NULL},
    {"mapping", NULL, NULL, NONE, "mapping <add|edit|list|show|remove|export|import> ...",
     "Manage mappings (sfbridge mapping --help).\n", mapping_commands},
    {NULL, NULL, NULL, NONE, NULL, NULL, NULL},
};

#undef FLAG
#undef INT
#undef STR
#undef LIST
#undef MULTI

/* ---- dispatch ----------------------------------------------------------------- */

static const command *
find_command(const command *table, const char *name)
{
    for (const command *c = table; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* "unknown command 'stauts'; did you mean status?" */
static void
unknown_command(const command *table, const char *what, const char *name)
{
    const char *names[32];
    size_t n = 0;
    for (const command *c = table; c->name && n < 32; c++)
        names[n++] = c->name;
    const char *near = opts_nearest(name, names, n);
    fprintf(stderr, "sfbridge: unknown %s '%s'", what, name);
    if (near)
        fprintf(stderr, "; did you mean %s?", near);
    fputs(" (try --help)\n", stderr);
}

static void
usage(FILE *to)
{
    fputs("usage: sfbridge [--config FILE] [--schema NAME] [--log-level LEVEL] <command> [args]\n"
          "\n"
          "Keeps a Postgres schema and a Salesforce org in sync, laid out as Heroku Connect lays "
          "it out.\n"
          "\n"
          "commands:\n",
          to);
    for (const command *c = commands; c->name; c++)
        fprintf(to, "  %s\n", c->usage);
    fputs("\n"
          "options (before or after the command):\n"
          "  --config FILE      settings file (NAME = value lines; must not be readable by "
          "others)\n"
          "  --schema NAME      schema of the mapped tables (default salesforce)\n"
          "  --log-level LEVEL  debug, info, warn or error\n"
          "  --version          print the version\n"
          "\n"
          "Settings come from the environment (DATABASE_URL, SF_LOGIN_URL, SF_CLIENT_ID, "
          "SF_CLIENT_SECRET,\n"
          "SF_REFRESH_TOKEN or SF_USERNAME/SF_PASSWORD, ...); see docs/sfbridge.md.\n"
          "Exit status: 0 done, 1 failed, 2 bad usage.\n"
          "`sfbridge <command> --help` shows more.\n",
          to);
}

static void
sub_usage(const command *parent, FILE *to)
{
    fprintf(to, "usage: sfbridge %s <subcommand> ...\n\nsubcommands:\n", parent->name);
    for (const command *c = parent->sub; c->name; c++)
        fprintf(to, "  %s\n", c->usage);
    fprintf(to, "\n`sfbridge %s <subcommand> --help` shows more.\n", parent->name);
}

static bool
takes_value(const char *arg)
{
    for (const opt_spec *s = global_opts; s->name; s++)
        if (s->kind != OPT_FLAG && strncmp(arg, "--", 2) == 0 && strcmp(arg + 2, s->name) == 0)
            return true;
    return false;
}

/* The first word of argv[from..) that is not an option or a global option's
 * value; argc when there is none. The words skipped are copied to rest. */
static int
next_word(int argc, char **argv, int from, char **rest, int *nrest)
{
    int i = from;
    for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++) {
        rest[(*nrest)++] = argv[i];
        if (takes_value(argv[i]) && i + 1 < argc)
            rest[(*nrest)++] = argv[++i];
    }
    return i;
}

/* Settings, then the command. The command's exit status. */
static int
run_command(const command *c, opts *o)
{
    app a;
    memset(&a, 0, sizeof a);
    err_t e;
    err_clear(&e);
    a.config_path = opts_str(o, "config");
    if (app_load_config(&a, &e) != 0) {
        cfg_free(&a.cfg);
        return fail(&e);
    }
    const char *schema = opts_str(o, "schema"), *level = opts_str(o, "log-level");
    log_level lv = LOG_INFO;
    if ((schema && app_override(&a, "SFBRIDGE_SCHEMA", schema, &e) != 0) ||
        (level && app_override(&a, "SFBRIDGE_LOG_LEVEL", level, &e) != 0)) {
        cfg_free(&a.cfg);
        return usage_fail(c, &e);
    }
    log_format lf = LOG_TEXT;
    (void)log_level_parse(a.cfg.log_level, &lv);   /* checked by cfg */
    (void)log_format_parse(a.cfg.log_format, &lf); /* likewise */
    log_set_level(lv);
    log_set_format(lf);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = c->fn(&a, c, o);
    log_flush_repeats();
    app_close(&a);
    curl_global_cleanup();
    return rc;
}

/* `sfbridge help [COMMAND [SUBCOMMAND]]` */
static int
help_command(int argc, char **argv, int i)
{
    const command *c = i + 1 < argc ? find_command(commands, argv[i + 1]) : NULL;
    const command *sub = c && c->sub && i + 2 < argc ? find_command(c->sub, argv[i + 2]) : NULL;
    if (sub)
        print_help(sub, stdout);
    else if (c && c->sub)
        sub_usage(c, stdout);
    else if (c)
        print_help(c, stdout);
    else
        usage(stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0, rc = 2;
    int i = next_word(argc, argv, 1, rest, &nrest);
    for (int k = 0; k < nrest; k++) {
        if (strcmp(rest[k], "--version") == 0) {
            printf("sfbridge %s\n", SFBRIDGE_VERSION);
            rc = 0;
            goto out;
        }
        if (strcmp(rest[k], "--help") == 0 || strcmp(rest[k], "-h") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        }
    }
    if (i >= argc) {
        usage(stderr);
        goto out;
    }
    if (strcmp(argv[i], "help") == 0) {
        rc = help_command(argc, argv, i);
        goto out;
    }
    const command *c = find_command(commands, argv[i]);
    if (!c) {
        unknown_command(commands, "command", argv[i]);
        goto out;
    }
    if (c->sub) {
        const command *parent = c;
        i = next_word(argc, argv, i + 1, rest, &nrest);
        if (i >= argc || strcmp(argv[i], "help") == 0) {
            bool asked = i < argc;
            for (int k = 0; k < nrest; k++)
                asked |= strcmp(rest[k], "--help") == 0 || strcmp(rest[k], "-h") == 0;
            sub_usage(parent, asked ? stdout : stderr);
            rc = asked ? 0 : 2;
            goto out;
        }
        if (!(c = find_command(parent->sub, argv[i]))) {
            unknown_command(parent->sub, "mapping subcommand", argv[i]);
            sub_usage(parent, stderr);
            goto out;
        }
    }
    for (int k = i + 1; k < argc; k++)
        rest[nrest++] = argv[k];
    opts o;
    err_t e;
    err_clear(&e);
    if (opts_parse(&o, c->opts, global_opts, &c->args, nrest, rest, &e) != 0)
        rc = usage_fail(c, &e);
    else if (o.help)
        print_help(c, stdout), rc = 0;
    else
        rc = run_command(c, &o);
    opts_free(&o);
out:
    free(rest);
    return rc;
}
