/*
 * config: sfbridge's settings, from a config file and the environment.
 *
 * The file holds "NAME = value" lines with the environment variables' names
 * ("export NAME=value" too; "#" starts a comment, at the start of a line or
 * after a space; quote a value holding " #"); the environment wins over the
 * file. The file holds secrets: one that others can read, or that anyone but
 * its owner can change, is refused (0600, or 0640 for the service's group).
 * The credentials file `sfbridge auth` writes (cfg_credentials_path; same
 * format, same rule) is read after the config file, before the environment.
 * The table in config.c
 * lists every setting with its default; docs/sfbridge.md documents them.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "err.h"

typedef struct cfg {
    char *database_url;
    char *schema;
    char *login_url;
    char *client_id;
    char *client_secret;
    char *refresh_token;
    char *username;
    char *password;
    char *jwt_key_file; /* SF_JWT_KEY_FILE: the JWT bearer flow's private key (PEM) */
    char *jwt_audience; /* SF_JWT_AUDIENCE: its aud, when not the one the login URL implies */
    char *ca_file;      /* SF_CA_FILE: certificates to trust for Salesforce (PEM) */
    char *credentials;  /* SFBRIDGE_CREDENTIALS: the file sfbridge auth writes (NULL: default) */
    char *api_version;
    char *log_level;
    char *log_format;      /* text, logfmt, json */
    char *conflict_policy; /* last_writer_wins, salesforce_wins, postgres_wins */
    long bulk_threshold;   /* initial loads above this many records use Bulk 2.0 */
    long bulk_page;        /* rows per Bulk results page */
    long load_workers;     /* Bulk results pages COPYed side by side, each on a connection */
    long load_fetchers;    /* Bulk results pages fetched side by side (resultPages) */
    long poll_overlap_ms;  /* how far behind the watermark a poll starts */
    long drift_seconds;    /* drift check period; 0 = never */
    long backoff_cap_ms;   /* ceiling of the retry delay */
    long rest_batch;       /* records per REST query page */
    long archive_days;     /* days processed trigger-log entries are kept */
    long bulk_write_min;   /* upserts waiting for one mapping that go by Bulk API */
    long bulk_write_usage; /* share (percent) of the org's daily API requests used from which
                              those upserts go by Bulk jobs (0: always) */
    long write_settle_ms;  /* how long after sending an insert with a lost answer sfbridge looks for
                              it */
    long dedicated_user;   /* 1: the Salesforce user is sfbridge's alone (no person or other
                              integration creates records as it) */
    long write_gather_ms;  /* how long the writer lets changes gather after being woken (0: none) */
    long write_concurrency; /* collections the writer has in flight at once (at most) */
    long write_connections; /* Postgres connections its lanes record outcomes on, side by side */
    long
        stream_silence_ms; /* a streamed mapping with no event for this long gets a windowed poll */
    char *http_listen;     /* the management API's HOST:PORT (NULL: off) */
    char *http_token;      /* its bearer token (required beyond loopback) */
    char *webhook_url;     /* where notifications are POSTed (NULL: nowhere) */
    char *web_dir;         /* the dashboard's files from this folder (NULL: the built-in ones) */
} cfg;

/* Load defaults, then file (path, or $SFBRIDGE_CONFIG, or none), then the
 * credentials file if it exists, then the environment. Errors name the file,
 * line or variable at fault. */
int cfg_load(cfg *c, const char *path, err_t *e);
/* Where `sfbridge auth` keeps the refresh token: SFBRIDGE_CREDENTIALS (the
 * environment's, else the config file's), else "credentials" next to the
 * config file (config_path, or $SFBRIDGE_CONFIG), else
 * $XDG_CONFIG_HOME/sfbridge/credentials (~/.config/...). -1 when there is
 * no such place (no HOME). */
int cfg_credentials_path(const cfg *c, const char *config_path, char *out, size_t sz);
void cfg_free(cfg *c);
/* dst becomes a copy of src with its own strings (free it with cfg_free). */
void cfg_copy(cfg *dst, const cfg *src);
/* Parse "NAME = value" lines from f (path names it in errors). For cfg_load and the fuzzer. */
int cfg_parse(cfg *c, FILE *f, const char *path, err_t *e);
/* Replace one string setting (command-line flags), checked as the file's are. */
int cfg_set(cfg *c, const char *name, const char *value, err_t *e) ERR_MUST_CHECK;
/* Check that what a command needs is present: the database, Salesforce (the
 * settings of one login flow, in sfapi_flow_of's order: SF_JWT_KEY_FILE,
 * SF_REFRESH_TOKEN, SF_USERNAME + SF_PASSWORD, SF_CLIENT_SECRET alone). */
int cfg_require_db(const cfg *c, err_t *e);
int cfg_require_sf(const cfg *c, err_t *e);

#endif
