/*
 * libFuzzer harness for sfbridge's parsers of outside input: the config file
 * (first byte 'c'), a command line (first byte 'o': words separated by NUL
 * or newline, checked against a table like mapping add's), an HTTP
 * Authorization header checked against a token (first byte 'a'), a dashboard
 * file name (first byte 'w'), a JWT bearer key file and login URL (first
 * byte 'k'), a Sforce-Limit-Info header (first byte 'u'), a Bulk query's
 * resultPages listing (first byte 'r'), and Heroku Connect export JSON checked for
 * import (anything else). None may crash, hang or
 * leak on any input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "apiusage.h"
#include "config.h"
#include "mapping.h"
#include "opts.h"
#include "sfbulk.h"
#include "sfjwt.h"
#include "web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const opt_spec spec[] = {
    {"fields", OPT_LIST, "F1,F2", 0, 0},      {"all-fields", OPT_FLAG, NULL, 0, 0},
    {"poll", OPT_INT, "SECONDS", 1, 86400},   {"upsert-field", OPT_STR, "FIELD", 0, 0},
    {"index", OPT_MULTI, "FIELD", 0, 0},      {"accelerated", OPT_FLAG, NULL, 0, 0},
    {"no-accelerated", OPT_FLAG, NULL, 0, 0}, OPT_END,
};
static const opt_spec global[] = {{"schema", OPT_STR, "NAME", 0, 0}, OPT_END};

static void
command_line(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    char **argv = calloc(size + 1, sizeof *argv);
    memcpy(buf, data, size);
    buf[size] = '\0';
    int argc = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == 0 || buf[i - 1] == '\0')
            argv[argc++] = &buf[i];
        if (buf[i] == '\n')
            buf[i] = '\0';
    }
    opts o;
    err_t e;
    opt_args args = {1, 1, "the Salesforce object", size && (data[0] & 1) != 0};
    if (opts_parse(&o, spec, global, &args, argc, argv, &e) == 0) {
        (void)opts_get(&o, "index");
        (void)opts_str(&o, "schema");
    }
    opts_free(&o);
    free(argv);
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    err_t e;
    if (data[0] == 'c') {
        FILE *f = fmemopen((void *)(data + 1), size - 1, "r");
        if (!f)
            return 0;
        cfg c = {0};
        (void)cfg_parse(&c, f, "fuzz", &e); /* refusals are expected */
        fclose(f);
        cfg_free(&c);
        return 0;
    }
    if (data[0] == 'o') {
        command_line(data + 1, size - 1);
        return 0;
    }
    if (data[0] == 'k') { /* SF_JWT_KEY_FILE's bytes; and the text as a login URL */
        EVP_PKEY *k = NULL;
        if (sfjwt_key_from_pem((const char *)data + 1, size - 1, &k, &e) == 0)
            EVP_PKEY_free(k);
        char *s = strndup((const char *)data + 1, size - 1);
        char aud[SFJWT_AUD_MAX];
        sfjwt_audience(s, NULL, aud);
        free(s);
        return 0;
    }
    if (data[0] == 'r') {
        sfbulk_pages p;
        if (sfbulk_pages_parse((const char *)data + 1, size - 1, &p, &e) == 0)
            sfbulk_pages_free(&p);
        return 0;
    }
    if (data[0] == 'u') { /* the org's API usage, and its share compared */
        char *s = strndup((const char *)data + 1, size - 1);
        long used, max;
        if (au_parse(s, &used, &max) == 0)
            (void)au_reached(used, max, (long)(size % 101));
        free(s);
        return 0;
    }
    if (data[0] == 'a' || data[0] == 'w') {
        char *s = strndup((const char *)data + 1, size - 1);
        if (data[0] == 'a') {
            (void)api_token_matches(s, "s3cret-token");
        } else {
            web_file f;
            if (web_find(NULL, s, &f, &e) == 0 && f.owned)
                free((void *)f.data);
        }
        free(s);
        return 0;
    }
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (j) {
        (void)map_import_check(j, &e); /* refusals are expected */
        json_decref(j);
    }
    return 0;
}
