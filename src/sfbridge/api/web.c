/*
 * web: the dashboard's files (see web.h).
 */
#include "web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define NAME_MAX_LEN 64
#define FILE_LIMIT   (4u << 20) /* a dashboard file is small; larger is refused */

static const struct {
    const char *ext;
    const char *ctype;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

const char *
web_ctype(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].ctype;
    return "application/octet-stream";
}

static bool
plain_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN || name[0] == '.')
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int
read_file(const char *dir, const char *name, web_file *out, err_t *e)
{
    char path[4096];
    int rc = -1;
    unsigned char *buf = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, 404, "NOT_FOUND", "no such file: %s", name);
    if (fseek(f, 0, SEEK_END) != 0)
        goto out;
    long size = ftell(f);
    if (size < 0 || (unsigned long)size > FILE_LIMIT || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = xmalloc((size_t)size + 1);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size)
        goto out;
    out->data = buf;
    out->size = (size_t)size;
    out->owned = true;
    buf = NULL;
    rc = 0;
out:
    fclose(f);
    free(buf);
    if (rc != 0)
        err_set(e, 500, "WEB_FILE", "cannot read %s from SFBRIDGE_WEB_DIR", name);
    return rc;
}

int
web_find(const char *dir, const char *name, web_file *out, err_t *e)
{
    memset(out, 0, sizeof *out);
    if (!plain_name(name))
        return err_set(e, 404, "NOT_FOUND", "no such file");
    out->ctype = web_ctype(name);
    if (dir && *dir)
        return read_file(dir, name, out, e);
    for (size_t i = 0; i < web_nassets; i++) {
        if (strcmp(web_assets[i].name, name) == 0) {
            out->data = web_assets[i].data;
            out->size = web_assets[i].size;
            return 0;
        }
    }
    return err_set(e, 404, "NOT_FOUND", "no such file: %s", name);
}
