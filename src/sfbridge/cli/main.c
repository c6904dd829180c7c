/*
 * sfbridge: the sync daemon and its CLI (see docs/sfbridge.md and
 * docs/architecture.md). One table lists the commands with their help; each
 * command parses its own options and calls the module that does the work.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "app.h"
#include "catalog.h"
#include "daemon.h"
#include "fsm.h"
#include "log.h"
#include "mapping.h"
#include "pg.h"
#include "status.h"
#include "util.h"
#include "writer.h"

#define SFBRIDGE_VERSION "0.2.0"

typedef int (*cmd_fn)(app *a, int argc, char **argv);

typedef struct command {
    const char *name;
    cmd_fn fn;
    const char *usage;
    const char *help;
} command;

static const command *find_command(const command *table, const char *name);
static const command commands[];
static const command mapping_commands[];

/* ---- helpers ----------------------------------------------------------------- */

static int
fail(const err_t *e)
{
    fprintf(stderr, "sfbridge: %s\n", e->msg[0] ? e->msg : e->code);
    return 1;
}

/* what may hold one "%s", replaced by arg. */
static int
usage_error(const command *c, const char *what, const char *arg)
{
    const char *hole = strstr(what, "%s");
    if (hole)
        fprintf(stderr, "sfbridge: %.*s%s%s", (int)(hole - what), what, arg ? arg : "", hole + 2);
    else
        fprintf(stderr, "sfbridge: %s", what);
    fprintf(stderr, "\nusage: sfbridge %s\n", c->usage);
    return 2;
}

static bool
wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

static void
print_help(const command *c, FILE *to)
{
    fprintf(to, "usage: sfbridge %s\n\n%s", c->usage, c->help);
}

/* Split "a,b,c" into a NULL-free array appended to *arr (strings point into s). */
static void
split_list(char *s, const char ***arr, size_t *n)
{
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        *arr = xrealloc(*arr, (*n + 1) * sizeof **arr);
        (*arr)[(*n)++] = tok;
    }
}

static int
parse_int(const command *c, const char *what, const char *s, long lo, long hi, long *out)
{
    int64_t v;
    if (util_parse_i64(s, &v) != 0 || v < lo || v > hi) {
        fprintf(stderr,
                "sfbridge: %s must be a whole number from %ld to %ld, not '%s'\nusage: sfbridge "
                "%s\n",
                what, lo, hi, s, c->usage);
        return -1;
    }
    *out = (long)v;
    return 0;
}

/* ---- commands ----------------------------------------------------------------- */

static int
cmd_init(app *a, int argc, char **argv)
{
    const command *c = find_command(commands, "init");
    if (argc > 1)
        return usage_error(c, "init takes no arguments ('%s')", argv[1]);
    err_t e;
    err_clear(&e);
    if (!app_pg(a, &e) || !app_sf(a, &e))
        return fail(&e);
    printf("connected: org %s at %s, schema %s ready\n", sfapi_org_id(a->sf),
           sfapi_instance_url(a->sf), a->cfg.schema);
    return 0;
}

static int
run_mode(app *a, int argc, char **argv, const char *name, daemon_mode mode)
{
    const command *c = find_command(commands, name);
    const char **objs = NULL;
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0 && mode == DAEMON_RUN) {
            mode = DAEMON_ONCE;
        } else if (argv[i][0] == '-') {
            free(objs);
            return usage_error(c, "unknown option '%s'", argv[i]);
        } else if (mode == DAEMON_RUN || mode == DAEMON_ONCE) {
            free(objs);
            return usage_error(c, "run takes no objects ('%s')", argv[i]);
        } else {
            objs = xrealloc(objs, (n + 1) * sizeof *objs);
            objs[n++] = argv[i];
        }
    }
    status_bar bar = {.out = stderr, .tty = isatty(2)};
    bool show_bar = mode != DAEMON_RUN;
    err_t e;
    err_clear(&e);
    app_install_signals();
    int rc = daemon_main(a, mode, objs, n, show_bar ? status_progress : NULL, &bar, &e);
    status_bar_finish(&bar);
    free(objs);
    if (rc != 0)
        return fail(&e);
    return 0;
}

static int
cmd_run(app *a, int argc, char **argv)
{
    return run_mode(a, argc, argv, "run", DAEMON_RUN);
}

static int
cmd_load(app *a, int argc, char **argv)
{
    return run_mode(a, argc, argv, "load", DAEMON_LOAD);
}

static int
cmd_poll(app *a, int argc, char **argv)
{
    return run_mode(a, argc, argv, "poll", DAEMON_POLL);
}

static int
cmd_drift(app *a, int argc, char **argv)
{
    return run_mode(a, argc, argv, "drift", DAEMON_DRIFT);
}

static int
cmd_status(app *a, int argc, char **argv)
{
    const command *c = find_command(commands, "status");
    bool json = false;
    long watch = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--watch") == 0 && i + 1 < argc) {
            if (parse_int(c, "--watch", argv[++i], 1, 3600, &watch) != 0)
                return 2;
        } else
            return usage_error(c, "unknown argument '%s'", argv[i]);
    }
    err_t e;
    err_clear(&e);
    app_install_signals();
    do {
        if (watch && isatty(1))
            fputs("\033[H\033[2J", stdout);
        if (status_print(a, json, stdout, &e) != 0)
            return fail(&e);
        fflush(stdout);
        for (long t = 0; watch && t < watch * 10 && !app_stop; t++)
            usleep(100000);
    } while (watch && !app_stop);
    return 0;
}

static int
cmd_push(app *a, int argc, char **argv)
{
    const command *c = find_command(commands, "push");
    if (argc > 1)
        return usage_error(c, "unexpected argument '%s'", argv[1]);
    err_t e;
    err_clear(&e);
    if (!app_pg(a, &e) || !app_sf(a, &e))
        return fail(&e);
    app_install_signals();
    if (app_lock(a, &e) != 0 || writer_recover(a->pg, a->cfg.schema, &e) != 0)
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
cmd_retry(app *a, int argc, char **argv)
{
    const command *c = find_command(commands, "retry");
    bool all = false;
    const char **ids = NULL;
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) {
            all = true;
        } else if (argv[i][0] == '-') {
            free(ids);
            return usage_error(c, "unknown option '%s'", argv[i]);
        } else {
            ids = xrealloc(ids, (n + 1) * sizeof *ids);
            ids[n++] = argv[i];
        }
    }
    if (all == (n > 0)) {
        free(ids);
        return usage_error(c, "%s",
                           all ? "use --all or ids, not both" : "name trigger log ids, or --all");
    }
    err_t e;
    err_clear(&e);
    int64_t count = 0;
    int rc = app_pg(a, &e) ? writer_requeue(a->pg, a->cfg.schema, ids, n, all, &count, &e) : -1;
    free(ids);
    if (rc != 0)
        return fail(&e);
    printf("%lld failed writes requeued\n", (long long)count);
    return 0;
}

/* reload, pause, resume: changes the daemon picks up. */
typedef enum { FLAG_RELOAD, FLAG_PAUSE, FLAG_RESUME } flag_change;

/* One mapping's change: resume clears a failure state (EV_RESUME), reload
 * asks for RELOAD_TABLE (EV_RELOAD_REQUEST); pause is a flag, not a state. */
static int
set_mapping_flags(app *a, mapping *m, flag_change what, err_t *e)
{
    cat_cols cols = {0};
    switch (what) {
    case FLAG_PAUSE: return cat_set_paused(a->pg, a->cfg.schema, m->object, true, e);
    case FLAG_RESUME:
        cat_cols_resume(&cols);
        return fsm_fire(a->pg, a->cfg.schema, m, EV_RESUME, &cols, e);
    case FLAG_RELOAD:
        cat_cols_reload_request(&cols);
        return fsm_fire(a->pg, a->cfg.schema, m, EV_RELOAD_REQUEST, &cols, e);
    }
    return 0;
}

static int
set_flags(app *a, const char *object, flag_change what, err_t *e)
{
    if (!app_pg(a, e))
        return -1;
    int rc;
    if (object) {
        mapping *m = NULL;
        size_t n = 0;
        if (cat_load_any(a->pg, a->cfg.schema, object, &m, &n, e) != 0)
            return -1;
        rc = n ? set_mapping_flags(a, m, what, e)
               : err_set(e, 404, "NOT_MAPPED", "%s is not mapped (see: sfbridge mapping list)",
                         object);
        mapping_free_all(m, n);
    } else {
        rc = cat_set_conn_paused(a->pg, a->cfg.schema, what == FLAG_PAUSE, e);
    }
    if (rc == 0)
        rc = cat_notify(a->pg, a->cfg.schema, e);
    return rc;
}

static int
flag_command(app *a, int argc, char **argv, const char *name, bool need_object, flag_change what,
             const char *done_msg)
{
    const command *c = find_command(commands, name);
    if (argc > 2 || (need_object && argc != 2))
        return usage_error(c, "%s",
                           need_object ? "name one mapped object" : "name at most one object");
    if (argc == 2 && argv[1][0] == '-')
        return usage_error(c, "unknown option '%s'", argv[1]);
    err_t e;
    err_clear(&e);
    if (set_flags(a, argc == 2 ? argv[1] : NULL, what, &e) != 0)
        return fail(&e);
    printf("%s: %s\n", argc == 2 ? argv[1] : "the connection", done_msg);
    return 0;
}

static int
cmd_reload(app *a, int argc, char **argv)
{
    return flag_command(a, argc, argv, "reload", true, FLAG_RELOAD,
                        "reload scheduled (the running daemon, or sfbridge load, does it)");
}

static int
cmd_pause(app *a, int argc, char **argv)
{
    return flag_command(a, argc, argv, "pause", false, FLAG_PAUSE, "paused");
}

static int
cmd_resume(app *a, int argc, char **argv)
{
    return flag_command(a, argc, argv, "resume", false, FLAG_RESUME, "resumed");
}

/* ---- mapping subcommands ------------------------------------------------------------ */

enum {
    OPT_FIELDS = 1,
    OPT_ALL,
    OPT_ACCESS,
    OPT_POLL,
    OPT_UPSERT,
    OPT_NO_UPSERT,
    OPT_INDEX,
    OPT_TOMB,
    OPT_NO_TOMB,
    OPT_ACCEL,
    OPT_NO_ACCEL,
    OPT_ADD,
    OPT_REMOVE,
    OPT_READ_WRITE,
    OPT_READ_ONLY,
    OPT_MAXDAILY,
};

static int
parse_map_opts(const command *c, int argc, char **argv, bool edit, map_opts *o, const char **object)
{
    static const struct option add_opts[] = {
        {"fields", required_argument, NULL, OPT_FIELDS},
        {"all-fields", no_argument, NULL, OPT_ALL},
        {"access", required_argument, NULL, OPT_ACCESS},
        {"read-write", no_argument, NULL, OPT_READ_WRITE},
        {"read-only", no_argument, NULL, OPT_READ_ONLY},
        {"poll", required_argument, NULL, OPT_POLL},
        {"max-daily-api-calls", required_argument, NULL, OPT_MAXDAILY},
        {"upsert-field", required_argument, NULL, OPT_UPSERT},
        {"no-upsert-field", no_argument, NULL, OPT_NO_UPSERT},
        {"index", required_argument, NULL, OPT_INDEX},
        {"tombstones", no_argument, NULL, OPT_TOMB},
        {"no-tombstones", no_argument, NULL, OPT_NO_TOMB},
        {"accelerated", no_argument, NULL, OPT_ACCEL},
        {"no-accelerated", no_argument, NULL, OPT_NO_ACCEL},
        {"add-fields", required_argument, NULL, OPT_ADD},
        {"remove-fields", required_argument, NULL, OPT_REMOVE},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int ch;
    long v;
    while ((ch = getopt_long(argc, argv, ":", add_opts, NULL)) != -1) {
        bool edit_only = ch == OPT_ADD || ch == OPT_REMOVE || ch == OPT_NO_UPSERT ||
                         ch == OPT_NO_TOMB || ch == OPT_NO_ACCEL;
        bool add_only = ch == OPT_FIELDS || ch == OPT_ALL;
        if ((edit_only && !edit) || (add_only && edit))
            return usage_error(c, "option '%s' does not apply here", argv[optind - 1]);
        switch (ch) {
        case OPT_FIELDS: split_list(optarg, &o->fields, &o->nfields); break;
        case OPT_ALL: o->all_fields = true; break;
        case OPT_ADD: split_list(optarg, &o->add_fields, &o->nadd); break;
        case OPT_REMOVE: split_list(optarg, &o->remove_fields, &o->nremove); break;
        case OPT_ACCESS:
            if (strcmp(optarg, "read_only") && strcmp(optarg, "read_write"))
                return usage_error(c, "--access is read_only or read_write, not '%s'", optarg);
            o->access = strcmp(optarg, "read_write") == 0;
            break;
        case OPT_READ_WRITE: o->access = 1; break;
        case OPT_READ_ONLY: o->access = 0; break;
        case OPT_POLL:
            if (parse_int(c, "--poll", optarg, 1, 86400, &v) != 0)
                return 2;
            o->poll_seconds = (int)v;
            break;
        case OPT_MAXDAILY:
            if (parse_int(c, "--max-daily-api-calls", optarg, 1, 100000000, &v) != 0)
                return 2;
            o->max_daily = v;
            break;
        case OPT_UPSERT: o->upsert_field = optarg; break;
        case OPT_NO_UPSERT: o->no_upsert_field = true; break;
        case OPT_INDEX:
            o->indexes = xrealloc(o->indexes, (o->nindexes + 1) * sizeof *o->indexes);
            o->indexes[o->nindexes++] = optarg;
            break;
        case OPT_TOMB: o->tombstones = 1; break;
        case OPT_NO_TOMB: o->tombstones = 0; break;
        case OPT_ACCEL: o->notify = 1; break;
        case OPT_NO_ACCEL: o->notify = 0; break;
        case ':': return usage_error(c, "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error(c, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return usage_error(c, "%s",
                           optind >= argc ? "name the Salesforce object"
                                          : "name exactly one object");
    if (o->all_fields && o->nfields)
        return usage_error(c, "use --fields or --all-fields, not both", NULL);
    *object = argv[optind];
    return 0;
}

static void
free_map_opts(map_opts *o)
{
    free(o->fields);
    free(o->add_fields);
    free(o->remove_fields);
    free(o->indexes);
}

static int
map_cmd_add_edit(app *a, int argc, char **argv, bool edit)
{
    const command *c = find_command(mapping_commands, edit ? "edit" : "add");
    map_opts o = MAP_OPTS_INIT;
    const char *object = NULL;
    int rc = parse_map_opts(c, argc, argv, edit, &o, &object);
    if (rc == 0) {
        err_t e;
        err_clear(&e);
        if ((edit ? map_edit : map_add)(a, object, &o, &e) != 0)
            rc = fail(&e);
        else
            printf("%s: mapping %s\n", object,
                   edit ? "updated" : "added; the daemon (or sfbridge load) loads it");
    }
    free_map_opts(&o);
    return rc;
}

static int
map_cmd_add(app *a, int argc, char **argv)
{
    return map_cmd_add_edit(a, argc, argv, false);
}

static int
map_cmd_edit(app *a, int argc, char **argv)
{
    return map_cmd_add_edit(a, argc, argv, true);
}

static int
map_cmd_list(app *a, int argc, char **argv)
{
    if (argc > 1)
        return usage_error(find_command(mapping_commands, "list"), "unknown argument '%s'",
                           argv[1]);
    err_t e;
    err_clear(&e);
    return map_list(a, stdout, &e) == 0 ? 0 : fail(&e);
}

/* OBJECT [FLAG]: the object's name and whether flag was given; 0, or the
 * usage error's exit status. */
static int
object_and_flag(const command *c, int argc, char **argv, const char *flag, const char **object,
                bool *set)
{
    *object = NULL;
    *set = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], flag) == 0)
            *set = true;
        else if (argv[i][0] == '-' || *object)
            return usage_error(c, "unexpected argument '%s'", argv[i]);
        else
            *object = argv[i];
    }
    if (!*object)
        return usage_error(c, "name the mapped object", NULL);
    return 0;
}

static int
map_cmd_show(app *a, int argc, char **argv)
{
    const command *c = find_command(mapping_commands, "show");
    bool json;
    const char *object;
    int rc = object_and_flag(c, argc, argv, "--json", &object, &json);
    if (rc != 0)
        return rc;
    err_t e;
    err_clear(&e);
    return map_show(a, object, json, stdout, &e) == 0 ? 0 : fail(&e);
}

static int
map_cmd_remove(app *a, int argc, char **argv)
{
    const command *c = find_command(mapping_commands, "remove");
    bool drop;
    const char *object;
    int rc = object_and_flag(c, argc, argv, "--drop-table", &object, &drop);
    if (rc != 0)
        return rc;
    err_t e;
    err_clear(&e);
    if (map_remove(a, object, drop, &e) != 0)
        return fail(&e);
    printf("%s: mapping removed, table %s\n", object, drop ? "dropped" : "kept");
    return 0;
}

static int
map_cmd_export(app *a, int argc, char **argv)
{
    const command *c = find_command(mapping_commands, "export");
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            path = argv[++i];
        else
            return usage_error(c, "unexpected argument '%s'", argv[i]);
    }
    err_t e;
    err_clear(&e);
    json_t *doc = map_export_json(a, &e);
    if (!doc)
        return fail(&e);
    int rc = 0;
    if (path) {
        if (json_dump_file(doc, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
            fprintf(stderr, "sfbridge: cannot write %s\n", path);
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
map_cmd_import(app *a, int argc, char **argv)
{
    const command *c = find_command(mapping_commands, "import");
    if (argc != 2 || argv[1][0] == '-')
        return usage_error(c, "name one export file", NULL);
    json_error_t je;
    json_t *doc = json_load_file(argv[1], JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        fprintf(stderr, "sfbridge: %s: not valid JSON at line %d: %s\n", argv[1], je.line, je.text);
        return 1;
    }
    err_t e;
    err_clear(&e);
    int rc = map_import(a, doc, &e) == 0 ? 0 : fail(&e);
    if (rc == 0)
        printf("imported %zu mappings from %s\n", json_array_size(json_object_get(doc, "mappings")),
               argv[1]);
    json_decref(doc);
    return rc;
}

static const command mapping_commands[] = {
    {"add", map_cmd_add,
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
     "  --max-daily-api-calls N  API calls this mapping may use per day (default 30000)\n"},
    {"edit", map_cmd_edit,
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
     "  --max-daily-api-calls N API calls this mapping may use per day\n"},
    {"list", map_cmd_list, "mapping list", "List the mappings.\n"},
    {"show", map_cmd_show, "mapping show OBJECT [--json]",
     "Show one mapping: configuration, fields, state.\n"},
    {"remove", map_cmd_remove, "mapping remove OBJECT [--drop-table]",
     "Stop syncing an object. The table and its data stay unless --drop-table is given.\n"},
    {"export", map_cmd_export, "mapping export [--out FILE]",
     "Write every mapping as Heroku Connect export JSON (to stdout, or FILE).\n"},
    {"import", map_cmd_import, "mapping import FILE",
     "Create or update mappings from a Heroku Connect export JSON file. The whole file is checked "
     "against\n"
     "Salesforce first; if anything is wrong nothing changes. Existing mappings gain the file's "
     "fields and\n"
     "settings (fields are never removed by an import).\n"},
    {NULL, NULL, NULL, NULL},
};

static void
mapping_usage(FILE *to)
{
    fputs("usage: sfbridge mapping <subcommand> ...\n\nsubcommands:\n", to);
    for (const command *c = mapping_commands; c->name; c++)
        fprintf(to, "  %s\n", c->usage);
    fputs("\n`sfbridge mapping <subcommand> --help` shows more.\n", to);
}

static int
cmd_mapping(app *a, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        mapping_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const command *c = find_command(mapping_commands, argv[1]);
    if (!c) {
        fprintf(stderr, "sfbridge: unknown mapping subcommand '%s'\n", argv[1]);
        mapping_usage(stderr);
        return 2;
    }
    if (wants_help(argc - 1, argv + 1)) {
        print_help(c, stdout);
        return 0;
    }
    return c->fn(a, argc - 1, argv + 1);
}

static const command commands[] = {
    {"init", cmd_init, "init",
     "Create the schema and sfbridge's state tables, log in to Salesforce and record the org.\n"},
    {"run", cmd_run, "run [--once]",
     "The daemon: loads new mappings, polls each at its interval, checks for drift, retries "
     "failures with\n"
     "backoff. Stops cleanly on Ctrl-C or SIGTERM. --once does one pass (pending loads, then one "
     "poll of\n"
     "every active mapping) and exits, 1 if anything failed.\n"},
    {"status", cmd_status, "status [--json] [--watch SECONDS]",
     "Connection and mapping states, load progress (rows, rows/s, estimate), last and next polls, "
     "errors,\n"
     "API calls used today.\n"},
    {"load", cmd_load, "load [OBJECT ...]",
     "Run pending initial loads, reloads and backfills now, in the foreground, with a progress "
     "bar.\n"},
    {"poll", cmd_poll, "poll [OBJECT ...]",
     "Poll Salesforce for changes now, whatever the interval.\n"},
    {"drift", cmd_drift, "drift [OBJECT ...]",
     "Compare record ids and modstamps with Salesforce now and repair what differs.\n"},
    {"push", cmd_push, "push",
     "Send the changes apps made in Postgres to Salesforce now, in the foreground (what the "
     "daemon's writer\n"
     "does continuously). Exits 1 when some changes wait for a retry.\n"},
    {"retry", cmd_retry, "retry [--all | ID ...]",
     "Requeue failed writes (trigger log ids, from _trigger_log or _trigger_log_archive) after the "
     "data was\n"
     "fixed; the writer sends them again.\n"},
    {"reload", cmd_reload, "reload OBJECT",
     "Refill one mapping from Salesforce. Readers keep seeing the old rows until the new ones "
     "replace them\n"
     "in one transaction.\n"},
    {"pause", cmd_pause, "pause [OBJECT]", "Stop syncing one mapping, or the whole connection.\n"},
    {"resume", cmd_resume, "resume [OBJECT]",
     "Resume a paused mapping or connection; also retries now a\n"
     "mapping that stopped on an error.\n"},
    {"mapping", cmd_mapping, "mapping <add|edit|list|show|remove|export|import> ...",
     "Manage mappings (sfbridge mapping --help).\n"},
    {NULL, NULL, NULL, NULL},
};

static const command *
find_command(const command *table, const char *name)
{
    for (const command *c = table; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
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
          "options:\n"
          "  --config FILE      settings file (NAME = value lines; must not be readable by "
          "others)\n"
          "  --schema NAME      schema of the mapped tables (default salesforce)\n"
          "  --log-level LEVEL  debug, info, warn or error\n"
          "  --version          print the version\n"
          "\n"
          "Settings come from the environment (DATABASE_URL, SF_LOGIN_URL, SF_CLIENT_ID, "
          "SF_CLIENT_SECRET,\n"
          "SF_REFRESH_TOKEN or SF_USERNAME/SF_PASSWORD, ...); see docs/sfbridge.md.\n"
          "`sfbridge <command> --help` shows more.\n",
          to);
}

int
main(int argc, char **argv)
{
    const char *config = NULL, *schema = NULL, *level = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("sfbridge %s\n", SFBRIDGE_VERSION);
            return 0;
        }
        const char **slot = strcmp(argv[i], "--config") == 0      ? &config
                            : strcmp(argv[i], "--schema") == 0    ? &schema
                            : strcmp(argv[i], "--log-level") == 0 ? &level
                                                                  : NULL;
        if (!slot) {
            fprintf(stderr, "sfbridge: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sfbridge: %s needs a value\n", argv[i]);
            return 2;
        }
        *slot = argv[++i];
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[i], "help") == 0) {
        const command *hc = i + 1 < argc ? find_command(commands, argv[i + 1]) : NULL;
        if (hc)
            print_help(hc, stdout);
        else
            usage(stdout);
        return 0;
    }
    const command *c = find_command(commands, argv[i]);
    if (!c) {
        fprintf(stderr, "sfbridge: unknown command '%s' (try --help)\n", argv[i]);
        return 2;
    }
    int cargc = argc - i;
    char **cargv = argv + i;
    if (c->fn != cmd_mapping && wants_help(cargc, cargv)) {
        print_help(c, stdout);
        return 0;
    }
    app a;
    memset(&a, 0, sizeof a);
    err_t e;
    err_clear(&e);
    if (cfg_load(&a.cfg, config, &e) != 0) {
        cfg_free(&a.cfg);
        return fail(&e);
    }
    if (schema)
        cfg_set(&a.cfg, "SFBRIDGE_SCHEMA", schema);
    if (level)
        cfg_set(&a.cfg, "SFBRIDGE_LOG_LEVEL", level);
    log_level lv;
    if (log_level_parse(a.cfg.log_level, &lv) != 0) {
        fprintf(stderr, "sfbridge: unknown log level '%s' (debug, info, warn, error)\n",
                a.cfg.log_level);
        cfg_free(&a.cfg);
        return 2;
    }
    log_set_level(lv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = c->fn(&a, cargc, cargv);
    app_close(&a);
    curl_global_cleanup();
    return rc;
}
