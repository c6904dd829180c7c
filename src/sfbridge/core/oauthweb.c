/*
 * oauthweb: `sfbridge auth` (see oauthweb.h).
 */
#include "oauthweb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "app.h"
#include "sb.h"
#include "sfjwt.h"
#include "util.h"

#define CODE_MAX 1024

extern char **environ;

/* What the browser brought back to the loopback callback. */
typedef struct callback {
    pthread_mutex_t mu;
    char state[64]; /* the state sent: answers with another are not ours */
    bool done;
    char code[CODE_MAX];
    char error[128], desc[512];
} callback;

static void
put_escaped(CURL *h, sb *out, const char *s)
{
    char *x = curl_easy_escape(h, s, (int)strlen(s));
    if (x == NULL) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    sb_puts(out, x);
    curl_free(x);
}

static void
copy_arg(struct MHD_Connection *conn, const char *name, char *out, size_t sz)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    snprintf(out, sz, "%s", v ? v : "");
}

static enum MHD_Result
page(struct MHD_Connection *conn, unsigned status, const char *text)
{
    sb b = SB_INIT;
    sb_printf(&b,
              "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"UTF-8\"><title>sfbridge"
              "</title></head><body><h1>sfbridge</h1><p>%s</p></body></html>\n",
              text);
    struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.buf, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/html; charset=UTF-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    sb_free(&b);
    return rc;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version, (void)upload, (void)upload_size, (void)con_cls;
    callback *cb = cls;
    if (strcmp(method, "GET") != 0 || strcmp(url, "/callback") != 0)
        return page(conn, 404, "Not found.");
    char state[64];
    copy_arg(conn, "state", state, sizeof state);
    pthread_mutex_lock(&cb->mu);
    bool ours = !cb->done && strcmp(state, cb->state) == 0;
    if (ours) {
        copy_arg(conn, "code", cb->code, sizeof cb->code);
        copy_arg(conn, "error", cb->error, sizeof cb->error);
        copy_arg(conn, "error_description", cb->desc, sizeof cb->desc);
        cb->done = true;
    }
    bool refused = ours && cb->error[0];
    pthread_mutex_unlock(&cb->mu);
    if (!ours)
        return page(conn, 400,
                    "This answer is not for the sfbridge auth that is waiting (its state "
                    "differs, or it has already been answered).");
    return page(conn, 200,
                refused ? "Salesforce did not authorize sfbridge; see the terminal."
                        : "sfbridge is authorized. You can close this tab; the terminal says "
                          "where the token is kept.");
}

/* The loopback server on 127.0.0.1:port (0: a free one); *bound its port. */
static struct MHD_Daemon *
listen_loopback(callback *cb, int port, int *bound, err_t *e)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL,
                                            NULL, on_request, cb, MHD_OPTION_SOCK_ADDR,
                                            (struct sockaddr *)&a, MHD_OPTION_CONNECTION_TIMEOUT,
                                            30u, MHD_OPTION_END);
    if (d == NULL) {
        err_set(e, 400, "BAD_USAGE", "cannot listen on 127.0.0.1:%d for the callback (in use?)",
                port);
        return NULL;
    }
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = i ? i->port : port;
    return d;
}

/* xdg-open URL, in the background, its output dropped. */
static void
open_browser(const char *url)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"xdg-open", (char *)url, NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "xdg-open", &fa, NULL, argv, environ) != 0)
        fprintf(stderr, "sfbridge: cannot run xdg-open; open the URL above yourself\n");
    posix_spawn_file_actions_destroy(&fa);
}

/* Waits for the callback until timeout_s passes or a signal stops us. */
static int
wait_callback(callback *cb, long timeout_s, err_t *e)
{
    int64_t until = util_mono_ms() + timeout_s * 1000;
    for (;;) {
        pthread_mutex_lock(&cb->mu);
        bool done = cb->done;
        pthread_mutex_unlock(&cb->mu);
        if (done)
            break;
        if (app_stop)
            return err_set(e, 400, "STOPPED", "stopped before the browser came back");
        if (util_mono_ms() > until)
            return err_set(e, 400, "TIMEOUT",
                           "no answer from the browser within %ld s (use --timeout SECONDS)",
                           timeout_s);
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (cb->error[0])
        return err_set(e, 400, cb->error, "Salesforce did not authorize sfbridge: %s%s%s",
                       cb->error, cb->desc[0] ? ": " : "", cb->desc);
    if (cb->code[0] == '\0')
        return err_set(e, 400, "BAD_RESPONSE", "the callback brought no code");
    return 0;
}

static size_t
collect(char *data, size_t size, size_t nmemb, void *ud)
{
    sb *b = ud;
    if (b->len + size * nmemb > ((size_t)1 << 20))
        return 0;
    sb_append(b, data, size * nmemb);
    return size * nmemb;
}

/* POST the code to the token endpoint; *reply the parsed answer (200 only). */
static int
exchange(const cfg *c, const char *login, const char *redirect, const char *code,
         const char *verifier, json_t **reply, err_t *e)
{
    CURL *h = curl_easy_init();
    sb form = SB_INIT, url = SB_INIT, body = SB_INIT;
    sb_puts(&form, "grant_type=authorization_code&code=");
    put_escaped(h, &form, code);
    sb_puts(&form, "&client_id=");
    put_escaped(h, &form, c->client_id);
    if (c->client_secret && *c->client_secret) {
        sb_puts(&form, "&client_secret=");
        put_escaped(h, &form, c->client_secret);
    }
    sb_puts(&form, "&redirect_uri=");
    put_escaped(h, &form, redirect);
    sb_puts(&form, "&code_verifier=");
    put_escaped(h, &form, verifier);
    sb_printf(&url, "%s/services/oauth2/token", login);
    curl_easy_setopt(h, CURLOPT_URL, url.buf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, form.buf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    json_t *j = cc == CURLE_OK ? json_loadb(body.buf, body.len, 0, NULL) : NULL;
    int rc = 0;
    if (cc != CURLE_OK)
        rc = err_set(e, 0, "NETWORK_ERROR", "cannot reach %s: %s%s", url.buf,
                     curl_easy_strerror(cc),
                     cc == CURLE_PEER_FAILED_VERIFICATION ? " (set SF_CA_FILE?)" : "");
    else if (status != 200 || !json_is_object(j)) {
        const char *err = json_string_value(json_object_get(j, "error"));
        const char *desc = json_string_value(json_object_get(j, "error_description"));
        rc = err_set(e, (int)status, "LOGIN_REFUSED",
                     "Salesforce refused the code: HTTP %ld %s%s%s", status, err ? err : "",
                     desc ? ": " : "", desc ? desc : "");
    }
    OPENSSL_cleanse(form.buf, form.len);
    if (body.buf)
        OPENSSL_cleanse(body.buf, body.len);
    sb_free(&form);
    sb_free(&url);
    sb_free(&body);
    curl_easy_cleanup(h);
    if (rc != 0)
        json_decref(j);
    else
        *reply = j;
    return rc;
}

/* The folder of path, made (0700) when missing, with its parent. */
static void
make_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return;
    *slash = '\0';
    if (mkdir(dir, 0700) == 0 || errno != ENOENT)
        return;
    char *up = strrchr(dir, '/');
    if (up && up != dir) {
        *up = '\0';
        (void)mkdir(dir, 0700);
        *up = '/';
    }
    (void)mkdir(dir, 0700);
}

/* Whether the config file is kept 0640 for the service's group. */
static bool
group_shared(const char *config_path, gid_t *gid)
{
    struct stat cs;
    if (!config_path || stat(config_path, &cs) != 0 || (cs.st_mode & 077) != 040)
        return false;
    *gid = cs.st_gid;
    return true;
}

/* The credentials file: the refresh token and where it logs in, written
 * anew (0600; 0640 with the config file's group when that is how the config
 * file is kept). */
static int
store_token(const char *path, const char *config_path, const char *login, const char *token,
            err_t *e)
{
    make_parent(path);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(e, 400, "BAD_CONFIG", "cannot write %s: %s", tmp, strerror(errno));
    gid_t gid;
    if (group_shared(config_path, &gid) && fchown(fd, (uid_t)-1, gid) == 0)
        (void)fchmod(fd, 0640);
    sb b = SB_INIT;
    sb_printf(&b,
              "# Written by sfbridge auth: the refresh token sfbridge logs in with. Keep it\n"
              "# readable by sfbridge alone. To log out, remove this file and revoke the token\n"
              "# (Salesforce: Connected Apps OAuth Usage).\n"
              "SF_REFRESH_TOKEN = %s\nSF_LOGIN_URL = %s\n",
              token, login);
    bool ok = write(fd, b.buf, b.len) == (ssize_t)b.len && fsync(fd) == 0;
    int err = errno;
    OPENSSL_cleanse(b.buf, b.len);
    sb_free(&b);
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return err_set(e, 400, "BAD_CONFIG", "cannot write %s: %s", path,
                       strerror(ok ? errno : err));
    }
    return 0;
}

/* The authorize URL for this run. */
static void
authorize_url(CURL *h, sb *u, const cfg *c, const char *login, const char *redirect,
              const char *challenge, const char *state)
{
    sb_printf(u, "%s/services/oauth2/authorize?response_type=code&client_id=", login);
    put_escaped(h, u, c->client_id);
    sb_puts(u, "&redirect_uri=");
    put_escaped(h, u, redirect);
    sb_puts(u, "&scope=api%20refresh_token&code_challenge_method=S256&code_challenge=");
    sb_puts(u, challenge);
    sb_puts(u, "&state=");
    sb_puts(u, state);
}

/* verifier (43 characters of base64url), its S256 challenge, and a state. */
static void
make_pkce(sb *verifier, sb *challenge, callback *cb)
{
    unsigned char rnd[32], md[32];
    util_random(rnd, sizeof rnd);
    sfjwt_b64url(verifier, rnd, sizeof rnd);
    unsigned int mdlen = 0;
    EVP_Digest(verifier->buf, verifier->len, md, &mdlen, EVP_sha256(), NULL);
    sfjwt_b64url(challenge, md, mdlen);
    sb st = SB_INIT;
    util_random(rnd, 16);
    sfjwt_b64url(&st, rnd, 16);
    snprintf(cb->state, sizeof cb->state, "%s", sb_str(&st));
    sb_free(&st);
    OPENSSL_cleanse(rnd, sizeof rnd);
}

/* Takes the token reply: stores the refresh token in the credentials file
 * (its path into path). */
static int
store_reply(const cfg *c, const char *config_path, const char *login, json_t *j, char *path,
            size_t n, err_t *e)
{
    const char *rt = json_string_value(json_object_get(j, "refresh_token"));
    if (rt == NULL || *rt == '\0')
        return err_set(e, 400, "NO_REFRESH_TOKEN",
                       "Salesforce gave no refresh token: add the scope \"Perform requests at any "
                       "time (refresh_token, offline_access)\" to the connected app");
    if (cfg_credentials_path(c, config_path, path, n) != 0)
        return err_set(e, 400, "BAD_CONFIG",
                       "no place for the credentials: set SFBRIDGE_CREDENTIALS (or HOME)");
    return store_token(path, config_path, login, rt, e);
}

/* What the command says once the token is stored. */
static void
say_stored(const cfg *c, const char *config_path, const char *user, const char *path)
{
    gid_t gid;
    printf("authorized%s%s: the refresh token is in %s (readable by its owner%s only)\n",
           *user ? " as " : "", user, path, group_shared(config_path, &gid) ? " and group" : "");
    if (c->jwt_key_file && *c->jwt_key_file)
        printf("note: SF_JWT_KEY_FILE is set, and the JWT bearer flow comes first; unset it to "
               "log in with this token\n");
    else if (getenv("SF_REFRESH_TOKEN"))
        printf("note: SF_REFRESH_TOKEN in the environment comes first; unset it to log in with "
               "this token\n");
}

int
oauthweb_begin(const cfg *c, const char *login_url, const char *redirect, oauthweb_flow *f,
               char **url, err_t *e)
{
    memset(f, 0, sizeof *f);
    *url = NULL;
    if (c->client_id == NULL || *c->client_id == '\0')
        return err_set(e, 400, "BAD_CONFIG",
                       "SF_CLIENT_ID is not set (the connected app's consumer key)");
    const char *lu = login_url && *login_url ? login_url : c->login_url;
    if (strlen(lu) >= sizeof f->login || strlen(redirect) >= sizeof f->redirect)
        return err_set(e, 400, "BAD_REQUEST", "the login URL or the callback URL is too long");
    snprintf(f->login, sizeof f->login, "%s", lu);
    for (size_t n = strlen(f->login); n > 0 && f->login[n - 1] == '/'; n--)
        f->login[n - 1] = '\0';
    snprintf(f->redirect, sizeof f->redirect, "%s", redirect);
    callback cb = {.mu = PTHREAD_MUTEX_INITIALIZER};
    sb verifier = SB_INIT, challenge = SB_INIT, u = SB_INIT;
    make_pkce(&verifier, &challenge, &cb);
    snprintf(f->verifier, sizeof f->verifier, "%s", sb_str(&verifier));
    snprintf(f->state, sizeof f->state, "%s", cb.state);
    CURL *h = curl_easy_init();
    authorize_url(h, &u, c, f->login, f->redirect, sb_str(&challenge), f->state);
    curl_easy_cleanup(h);
    OPENSSL_cleanse(verifier.buf, verifier.len);
    sb_free(&verifier);
    sb_free(&challenge);
    *url = sb_steal(&u);
    return 0;
}

int
oauthweb_finish(const cfg *c, const oauthweb_flow *f, const char *config_path, const char *code,
                const char *state, char *path, size_t n, char user[64], err_t *e)
{
    user[0] = '\0';
    if (!*f->state || !state || strcmp(state, f->state) != 0)
        return err_set(e, 400, "BAD_STATE",
                       "this answer is not for the authorization this sfbridge asked for "
                       "(start again)");
    if (!code || !*code)
        return err_set(e, 400, "NO_CODE", "Salesforce sent no authorization code");
    json_t *reply = NULL;
    int rc = exchange(c, f->login, f->redirect, code, f->verifier, &reply, e);
    if (rc == 0)
        rc = store_reply(c, config_path, f->login, reply, path, n, e);
    const char *id = json_string_value(json_object_get(reply, "id"));
    if (rc == 0 && id && strrchr(id, '/'))
        snprintf(user, 64, "%s", strrchr(id, '/') + 1);
    json_decref(reply);
    return rc;
}

int
oauthweb_run(const cfg *c, const oauthweb_opts *o, err_t *e)
{
    callback cb = {.mu = PTHREAD_MUTEX_INITIALIZER};
    oauthweb_flow f;
    char redirect[64], path[4096], user[64] = "";
    char *url = NULL;
    int port = 0, rc = -1;
    if (c->client_id == NULL || *c->client_id == '\0')
        return err_set(e, 400, "BAD_CONFIG",
                       "SF_CLIENT_ID is not set (the connected app's consumer key)");
    struct MHD_Daemon *d = listen_loopback(&cb, o->port, &port, e);
    if (d == NULL)
        return -1;
    snprintf(redirect, sizeof redirect, "http://127.0.0.1:%d/callback", port);
    if (oauthweb_begin(c, o->login_url, redirect, &f, &url, e) != 0)
        goto out;
    pthread_mutex_lock(&cb.mu);
    snprintf(cb.state, sizeof cb.state, "%s", f.state);
    pthread_mutex_unlock(&cb.mu);
    printf("Log in to Salesforce in a browser on this machine and allow access:\n\n  %s\n\n"
           "(the connected app's callback URL must be %s)\n",
           url, redirect);
    fflush(stdout);
    if (o->open)
        open_browser(url);
    rc = wait_callback(&cb, o->timeout_s > 0 ? o->timeout_s : 300, e);
    MHD_stop_daemon(d);
    d = NULL;
    if (rc == 0)
        rc = oauthweb_finish(c, &f, o->config_path, cb.code, f.state, path, sizeof path, user, e);
    if (rc == 0)
        say_stored(c, o->config_path, user, path);
out:
    if (d)
        MHD_stop_daemon(d);
    OPENSSL_cleanse(cb.code, sizeof cb.code);
    OPENSSL_cleanse(&f, sizeof f);
    free(url);
    return rc;
}
