/*
 * web: the dashboard's files (src/sfbridge/web/), built into the binary by
 * cmake/embed.cmake, or read from SFBRIDGE_WEB_DIR on every request while
 * someone works on them. api.c serves them at / (index.html) and /ui/NAME.
 * Names are plain file names ([A-Za-z0-9._-], no leading dot), so no
 * request reaches beyond the folder.
 */
#ifndef WEB_H
#define WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

typedef struct web_asset {
    const char *name;
    const unsigned char *data;
    size_t size;
} web_asset;

/* The built-in files (web_assets.c, generated), ending with a zeroed entry. */
extern const web_asset web_assets[];
extern const size_t web_nassets;

/* One file to send: data is the built-in bytes, or owned (a file read from dir). */
typedef struct web_file {
    const unsigned char *data;
    size_t size;
    bool owned; /* data is malloc'd: free it */
    const char *ctype;
} web_file;

/* The file called name, from dir when dir is set, else built in. 0, or -1
 * with e filled (404 NOT_FOUND: no such file, or a name that is not one). */
int web_find(const char *dir, const char *name, web_file *out, err_t *e) ERR_MUST_CHECK;
/* The Content-Type of a file name by its extension. */
const char *web_ctype(const char *name);

#endif
