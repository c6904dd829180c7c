/*
 * libFuzzer harness for sfbridge's parsers of outside input: the config file
 * (first byte 'c') and Heroku Connect export JSON checked for import
 * (anything else). Neither may crash, hang or leak on any input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "config.h"
#include "mapping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
        cfg_parse(&c, f, "fuzz", &e);
        fclose(f);
        cfg_free(&c);
        return 0;
    }
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (j) {
        map_import_check(j, &e);
        json_decref(j);
    }
    return 0;
}
