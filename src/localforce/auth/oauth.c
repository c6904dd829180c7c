/*
 * oauth: the OAuth 2.0 endpoints: the token endpoint (password, refresh_token,
 * authorization_code, client_credentials), revoke, and the authorize page
 * that signs a user in and issues codes.
 */
#include "oauth.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctx.h"
#include "jwt.h"
#include "log.h"
#include "util.h"

#define JWT_SKEW_S 10 /* an assertion expired less than this long ago still passes */
/* ----- the token endpoint --------------------------------------------------- */

typedef struct grant {
    user_info user;
    app_info app;
    char parent[AUTH_TOKEN_MAX]; /* refresh token the new session comes from */
    bool want_refresh;
    const char *error, *desc; /* on failure */
} grant;

static int
grant_fail(grant *g, const char *error, const char *desc)
{
    g->error = error;
    g->desc = desc;
    return -1;
}

/* The connected app named by client_id; with check_secret the secret must match
 * (a NULL secret fails). */
static int
grant_app(store *st, grant *g, const char *client_id, const char *secret, bool check_secret)
{
    if (login_app(st, login_nonempty(client_id), &g->app) != 0)
        return grant_fail(g, "invalid_client_id", "client identifier invalid");
    if (check_secret && !login_secret_eq(g->app.secret, secret))
        return grant_fail(g, "invalid_client", "invalid client credentials");
    return 0;
}

static int
grant_password(lf_server *srv, http_req *req, grant *g)
{
    char cid[FIELD_MAX], csec[FIELD_MAX], user[FIELD_MAX], pass[FIELD_MAX];
    const char *client_id = login_param(req, "client_id", cid, sizeof cid);
    const char *secret = login_param(req, "client_secret", csec, sizeof csec);
    const char *username = login_param(req, "username", user, sizeof user);
    const char *password = login_param(req, "password", pass, sizeof pass);
    int rc = grant_app(srv->st, g, client_id, secret, true);
    if (rc == 0 && (login_nonempty(username) == NULL || login_nonempty(password) == NULL))
        rc = grant_fail(g, "invalid_request",
                        login_nonempty(username) ? "missing required parameter: password"
                                                 : "missing required parameter: username");
    if (rc == 0 && login_user(srv->st, username, password, &g->user) != 0) {
        log_info("auth: password login failed for user '%s'", username);
        rc = grant_fail(g, "invalid_grant", "authentication failure");
    }
    OPENSSL_cleanse(pass, sizeof pass);
    OPENSSL_cleanse(csec, sizeof csec);
    return rc;
}

static int
grant_refresh(lf_server *srv, http_req *req, grant *g)
{
    char cid[FIELD_MAX], csec[FIELD_MAX], rt[FIELD_MAX];
    const char *client_id = login_param(req, "client_id", cid, sizeof cid);
    const char *secret = login_nonempty(login_param(req, "client_secret", csec, sizeof csec));
    const char *refresh = login_nonempty(login_param(req, "refresh_token", rt, sizeof rt));
    lf_session s;
    memset(&s, 0, sizeof s);
    int rc = grant_app(srv->st, g, client_id, secret, secret != NULL);
    if (rc == 0 && refresh == NULL)
        rc = grant_fail(g, "invalid_request", "missing required parameter: refresh_token");
    if (rc == 0 && (auth_lookup_refresh(srv->auth, refresh, &s) != 0 ||
                    strcmp(s.client_id, g->app.client_id) != 0))
        rc = grant_fail(g, "invalid_grant", "expired access/refresh token");
    if (rc == 0 && (login_user_by_id(srv->st, s.user_id, &g->user) != 0 || !g->user.active))
        rc = grant_fail(g, "invalid_grant", "inactive user");
    if (rc == 0)
        login_copy(g->parent, sizeof g->parent, refresh);
    OPENSSL_cleanse(rt, sizeof rt);
    OPENSSL_cleanse(csec, sizeof csec);
    return rc;
}

static int
grant_code(lf_server *srv, http_req *req, grant *g)
{
    char cid[FIELD_MAX], csec[FIELD_MAX], code[FIELD_MAX], redir[FIELD_MAX], ver[FIELD_MAX];
    const char *client_id = login_param(req, "client_id", cid, sizeof cid);
    const char *secret = login_nonempty(login_param(req, "client_secret", csec, sizeof csec));
    const char *c = login_nonempty(login_param(req, "code", code, sizeof code));
    const char *redirect = login_param(req, "redirect_uri", redir, sizeof redir);
    const char *verifier = login_nonempty(login_param(req, "code_verifier", ver, sizeof ver));
    /* The secret may be left out only when PKCE protects the code. */
    int rc = grant_app(srv->st, g, client_id, secret, secret != NULL || verifier == NULL);
    if (rc == 0 && c == NULL)
        rc = grant_fail(g, "invalid_request", "missing required code parameter");
    if (rc == 0 && login_nonempty(redirect) == NULL)
        rc = grant_fail(g, "invalid_request", "missing required redirect_uri parameter");
    lf_session s;
    memset(&s, 0, sizeof s);
    const char *why = NULL;
    if (rc == 0 &&
        auth_redeem_code(srv->auth, c, g->app.client_id, redirect, verifier, &s, &why) != 0)
        rc = grant_fail(g, "invalid_grant", why);
    if (rc == 0 && (login_user_by_id(srv->st, s.user_id, &g->user) != 0 || !g->user.active))
        rc = grant_fail(g, "invalid_grant", "inactive user");
    g->want_refresh = true;
    OPENSSL_cleanse(code, sizeof code);
    OPENSSL_cleanse(csec, sizeof csec);
    return rc;
}

static int
grant_client_credentials(lf_server *srv, http_req *req, grant *g)
{
    char cid[FIELD_MAX], csec[FIELD_MAX];
    const char *client_id = login_param(req, "client_id", cid, sizeof cid);
    const char *secret = login_param(req, "client_secret", csec, sizeof csec);
    if (login_nonempty(client_id) == NULL &&
        auth_parse_basic(http_header(req, "Authorization"), cid, sizeof cid, csec, sizeof csec) ==
            0) {
        client_id = cid;
        secret = csec;
    }
    int rc = grant_app(srv->st, g, client_id, secret, true);
    if (rc == 0 && (g->app.run_as[0] == '\0' ||
                    login_user_by_name(srv->st, g->app.run_as, &g->user) != 0 || !g->user.active))
        rc = grant_fail(g, "invalid_request", "no client credentials user enabled");
    OPENSSL_cleanse(csec, sizeof csec);
    return rc;
}

/* localforce's clock as the JWT bearer grant reads it: LOCALFORCE_CLOCK_OFFSET_S
 * seconds ahead (tests: an assertion from a client whose clock is slow). */
static int64_t
jwt_now_s(void)
{
    const char *off = getenv("LOCALFORCE_CLOCK_OFFSET_S");
    int64_t o = 0;
    if (off == NULL || util_parse_i64(off, &o) != 0)
        o = 0;
    return util_now_ms() / 1000 + o;
}

/* The audiences a JWT may name: localforce's own URL, and the two Salesforce
 * login hosts (a production org takes login., a sandbox test.; localforce is
 * both). */
static bool
jwt_audience_ok(const lf_server *srv, const jwt_token *t)
{
    return jwt_has_audience(t, srv->base_url) ||
           jwt_has_audience(t, "https://login.salesforce.com") ||
           jwt_has_audience(t, "https://test.salesforce.com");
}

/* The checks of the JWT bearer grant, in Salesforce's words. */
static int
jwt_check(lf_server *srv, const jwt_token *t, grant *g)
{
    char cert[JWT_MAX];
    if (login_app(srv->st, t->iss, &g->app) != 0)
        return grant_fail(g, "invalid_client_id", "client identifier invalid");
    if (login_app_cert(srv->st, g->app.client_id, cert, sizeof cert) != 0 ||
        jwt_verify(t, cert) != 0)
        return grant_fail(g, "invalid_grant", "invalid assertion");
    if (!jwt_audience_ok(srv, t))
        return grant_fail(g, "invalid_grant", "audience is invalid");
    if (!t->has_exp || t->exp + JWT_SKEW_S <= jwt_now_s())
        return grant_fail(g, "invalid_grant", "expired authorization code");
    if (login_user_by_name(srv->st, t->sub, &g->user) != 0 ||
        !login_app_preauthorized(srv->st, g->app.client_id, g->user.username))
        return grant_fail(g, "invalid_grant", "user hasn't approved this consumer");
    if (!g->user.active)
        return grant_fail(g, "invalid_grant", "inactive user");
    return 0;
}

static int
grant_jwt(lf_server *srv, http_req *req, grant *g)
{
    char *as = xmalloc(JWT_MAX);
    const char *assertion = login_nonempty(login_param(req, "assertion", as, JWT_MAX));
    jwt_token t;
    memset(&t, 0, sizeof t);
    int rc;
    if (assertion == NULL)
        rc = grant_fail(g, "invalid_request", "missing required parameter: assertion");
    else if (jwt_parse(assertion, &t) != 0)
        rc = grant_fail(g, "invalid_grant", "invalid assertion");
    else
        rc = jwt_check(srv, &t, g);
    if (rc != 0)
        log_info("auth: jwt bearer login failed for user '%s' (client id '%s'): %s",
                 assertion && t.sub[0] ? t.sub : "?", assertion && t.iss[0] ? t.iss : "?", g->desc);
    OPENSSL_cleanse(as, JWT_MAX);
    free(as);
    return rc;
}

static const struct {
    const char *name;
    int (*fn)(lf_server *srv, http_req *req, grant *g);
} grant_types[] = {
    {"password", grant_password},
    {"refresh_token", grant_refresh},
    {"authorization_code", grant_code},
    {"client_credentials", grant_client_credentials},
    {"urn:ietf:params:oauth:grant-type:jwt-bearer", grant_jwt},
};

static void
oauth_error(http_resp *resp, int status, const char *error, const char *desc)
{
    resp->status = status;
    resp->content_type = CT_JSON;
    sb_clear(&resp->body);
    sb_puts(&resp->body, "{\"error\":");
    sb_json_str(&resp->body, error);
    sb_puts(&resp->body, ",\"error_description\":");
    sb_json_str(&resp->body, desc);
    sb_putc(&resp->body, '}');
    http_set_header(resp, "Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private");
}

/* Everything a token response carries about one new session. */
typedef struct issued {
    char access[AUTH_TOKEN_MAX];
    char refresh[AUTH_TOKEN_MAX];
    char id_url[512];
    char issued_at[24];
    char signature[AUTH_SIG_MAX];
} issued;

static void
issue_session(lf_server *srv, const grant *g, issued *out)
{
    char org18[19], org15[16];
    lf_session s;
    login_org_ids(srv->st, org18, org15);
    /* A refresh token issued with the session is its parent too: revoking the
     * refresh token ends every session that came with it or from it. */
    out->refresh[0] = '\0';
    if (g->want_refresh)
        auth_issue_refresh(srv->auth, g->user.id, g->user.username, g->app.client_id, out->refresh);
    const char *parent = g->want_refresh ? out->refresh : g->parent[0] ? g->parent : NULL;
    auth_issue_access(srv->auth, g->user.id, g->user.username, g->app.client_id, parent, &s,
                      out->access);
    snprintf(out->id_url, sizeof out->id_url, "%s/id/%s/%s", srv->base_url, org18, g->user.id);
    snprintf(out->issued_at, sizeof out->issued_at, "%lld", (long long)s.issued_ms);
    auth_sign(g->app.secret, out->id_url, out->issued_at, out->signature);
}

void
auth_handle_token(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    char gt[64];
    const char *name = login_param(req, "grant_type", gt, sizeof gt);
    grant g;
    memset(&g, 0, sizeof g);
    int rc = -1;
    const char *flow = NULL;
    for (size_t i = 0; name && i < sizeof grant_types / sizeof grant_types[0]; i++)
        if (strcmp(name, grant_types[i].name) == 0) {
            flow = grant_types[i].name;
            rc = grant_types[i].fn(srv, req, &g);
            break;
        }
    if (flow == NULL) {
        oauth_error(resp, 400, "unsupported_grant_type", "grant type not supported");
    } else if (rc != 0) {
        oauth_error(resp, 400, g.error, g.desc);
    } else {
        issued is;
        issue_session(srv, &g, &is);
        sb *b = &resp->body;
        resp->status = 200;
        resp->content_type = CT_JSON;
        sb_clear(b);
        sb_puts(b, "{\"access_token\":");
        sb_json_str(b, is.access);
        if (is.refresh[0]) {
            sb_puts(b, ",\"refresh_token\":");
            sb_json_str(b, is.refresh);
        }
        sb_puts(b, ",\"signature\":");
        sb_json_str(b, is.signature);
        sb_puts(b, ",\"scope\":");
        sb_json_str(b, is.refresh[0] ? SCOPE_REFRESH : SCOPE_DEFAULT);
        sb_puts(b, ",\"instance_url\":");
        sb_json_str(b, srv->base_url);
        sb_puts(b, ",\"id\":");
        sb_json_str(b, is.id_url);
        sb_puts(b, ",\"token_type\":\"Bearer\",\"issued_at\":");
        sb_json_str(b, is.issued_at);
        sb_putc(b, '}');
        http_set_header(resp, "Cache-Control",
                        "no-cache,must-revalidate,max-age=0,no-store,private");
        log_info("auth: %s signed in (%s grant, app '%s')", g.user.username, flow, g.app.name);
        OPENSSL_cleanse(&is, sizeof is);
    }
    OPENSSL_cleanse(&g.app.secret, sizeof g.app.secret);
}

/* ----- revoke --------------------------------------------------------------- */

void
auth_handle_revoke(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    char tk[FIELD_MAX];
    const char *token = login_nonempty(login_param(req, "token", tk, sizeof tk));
    sb_clear(&resp->body);
    if (token && auth_revoke(srv->auth, token) == 0) {
        login_log_token("revoked", token);
        resp->status = 200;
        resp->content_type = CT_TEXT;
    } else {
        resp->status = 400;
        resp->content_type = CT_FORM;
        sb_puts(&resp->body, token ? "error=invalid_token&error_description=invalid%20token"
                                   : "error=invalid_request&error_description="
                                     "missing%20required%20parameter%3A%20token");
    }
    OPENSSL_cleanse(tk, sizeof tk);
}

/* ----- the authorize page -------------------------------------------------- */

typedef struct authz {
    char response_type[32];
    char client_id[128];
    char redirect_uri[FIELD_MAX];
    char state[FIELD_MAX];
    char scope[256];
    char challenge[256];
    char challenge_method[16];
} authz;

static void
authz_field(http_req *req, const char *name, char *out, size_t sz)
{
    char buf[FIELD_MAX];
    const char *v = login_param(req, name, buf, sizeof buf);
    if (v == NULL || strlen(v) >= sz)
        v = "";
    login_copy(out, sz, v);
}

/* A redirect URI we are willing to put in a Location header: absolute
 * (scheme:...), printable ASCII, no fragment. */
static bool
redirect_ok(const char *u)
{
    const char *p = u;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        return false;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '+' || *p == '-' || *p == '.')
        p++;
    if (*p != ':' || p[1] == '\0')
        return false;
    for (; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#')
            return false;
    return true;
}

static void
html_head(sb *b, const char *title)
{
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"UTF-8\">"
               "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    sb_html_str(b, title);
    sb_puts(b, "</title><style>body{font-family:sans-serif;background:#f3f3f3;margin:0}"
               "main{max-width:22em;margin:4em auto;background:#fff;padding:2em;"
               "border:1px solid #ddd;border-radius:4px}label{display:block;margin:1em 0 .3em}"
               "input[type=text],input[type=password]{width:100%;box-sizing:border-box;"
               "padding:.5em}button{margin-top:1.5em;width:100%;padding:.7em;background:#0070d2;"
               "color:#fff;border:0;border-radius:4px}.error{color:#c23934}</style>"
               "</head><body><main><h1>localforce</h1>");
}

static void
html_error_page(http_resp *resp, const char *error, const char *desc)
{
    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 400;
    resp->content_type = CT_HTML;
    html_head(b, "Error | localforce");
    sb_puts(b, "<p class=\"error\">error=");
    sb_html_str(b, error);
    sb_puts(b, "&amp;error_description=");
    sb_html_str(b, desc);
    sb_puts(b, "</p></main></body></html>\n");
}

static void
hidden(sb *b, const char *name, const char *value)
{
    if (value[0] == '\0')
        return;
    sb_puts(b, "<input type=\"hidden\" name=\"");
    sb_html_str(b, name);
    sb_puts(b, "\" value=\"");
    sb_html_str(b, value);
    sb_puts(b, "\">");
}

static void
login_page(http_resp *resp, const authz *z, const char *app_name, const char *username,
           const char *error)
{
    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 200;
    resp->content_type = CT_HTML;
    html_head(b, "Login | localforce");
    sb_puts(b, "<p>Log in to allow <strong>");
    sb_html_str(b, app_name);
    sb_puts(b, "</strong> to access your data.</p>");
    if (error) {
        sb_puts(b, "<p class=\"error\" id=\"error\">");
        sb_html_str(b, error);
        sb_puts(b, "</p>");
    }
    sb_puts(b, "<form method=\"POST\" action=\"/services/oauth2/authorize\">");
    hidden(b, "response_type", z->response_type);
    hidden(b, "client_id", z->client_id);
    hidden(b, "redirect_uri", z->redirect_uri);
    hidden(b, "state", z->state);
    hidden(b, "scope", z->scope);
    hidden(b, "code_challenge", z->challenge);
    hidden(b, "code_challenge_method", z->challenge_method);
    sb_puts(b, "<label for=\"username\">Username</label><input type=\"text\" id=\"username\" "
               "name=\"username\" autocomplete=\"username\" value=\"");
    sb_html_str(b, username ? username : "");
    sb_puts(b, "\"><label for=\"password\">Password</label><input type=\"password\" "
               "id=\"password\" name=\"password\" autocomplete=\"current-password\">"
               "<button type=\"submit\" name=\"Login\" value=\"Log In\">Log In</button>"
               "</form></main></body></html>\n");
    http_set_header(resp, "Cache-Control", "no-cache,no-store");
    http_set_header(resp, "X-Frame-Options", "DENY");
}

/* 302 to the client's redirect URI; sep is '?' (code flow) or '#' (token flow);
 * params holds "k=v&..." already encoded. */
static void
redirect_to(http_resp *resp, const char *uri, char sep, const sb *params)
{
    sb loc = SB_INIT;
    sb_puts(&loc, uri);
    if (sep == '?' && strchr(uri, '?'))
        sep = '&';
    sb_putc(&loc, sep);
    sb_puts(&loc, sb_str(params));
    resp->status = 302;
    resp->content_type = CT_HTML;
    sb_clear(&resp->body);
    http_set_header(resp, "Location", sb_str(&loc));
    http_set_header(resp, "Cache-Control", "no-cache,no-store");
    OPENSSL_cleanse(loc.buf, loc.len);
    sb_free(&loc);
}

static void
add_param(sb *p, const char *name, const char *value)
{
    if (p->len)
        sb_putc(p, '&');
    sb_puts(p, name);
    sb_putc(p, '=');
    login_url_encode(p, value);
}

static void
redirect_error(http_resp *resp, const authz *z, const char *error, const char *desc)
{
    sb p = SB_INIT;
    add_param(&p, "error", error);
    add_param(&p, "error_description", desc);
    if (z->state[0])
        add_param(&p, "state", z->state);
    redirect_to(resp, z->redirect_uri, strcmp(z->response_type, "token") == 0 ? '#' : '?', &p);
    sb_free(&p);
}

void
auth_handle_authorize(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    authz z;
    app_info app;
    memset(&z, 0, sizeof z);
    authz_field(req, "response_type", z.response_type, sizeof z.response_type);
    authz_field(req, "client_id", z.client_id, sizeof z.client_id);
    authz_field(req, "redirect_uri", z.redirect_uri, sizeof z.redirect_uri);
    authz_field(req, "state", z.state, sizeof z.state);
    authz_field(req, "scope", z.scope, sizeof z.scope);
    authz_field(req, "code_challenge", z.challenge, sizeof z.challenge);
    authz_field(req, "code_challenge_method", z.challenge_method, sizeof z.challenge_method);

    if (login_app(srv->st, z.client_id, &app) != 0) {
        html_error_page(resp, "invalid_client_id", "client identifier invalid");
        return;
    }
    if (!redirect_ok(z.redirect_uri)) {
        html_error_page(resp, "redirect_uri_mismatch", "redirect_uri must match configuration");
        return;
    }
    if (strcmp(z.response_type, "code") != 0 && strcmp(z.response_type, "token") != 0) {
        redirect_error(resp, &z, "unsupported_response_type", "response type not supported");
        return;
    }
    bool plain = strcmp(z.challenge_method, "plain") == 0;
    if (z.challenge_method[0] && !plain && strcmp(z.challenge_method, "S256") != 0) {
        redirect_error(resp, &z, "invalid_request", "invalid code_challenge_method");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        login_page(resp, &z, app.name[0] ? app.name : app.client_id, NULL, NULL);
        return;
    }

    char ubuf[FIELD_MAX], pbuf[FIELD_MAX];
    const char *username = http_form(req, "username", ubuf, sizeof ubuf);
    const char *password = http_form(req, "password", pbuf, sizeof pbuf);
    user_info u;
    if (login_user(srv->st, username, password, &u) != 0) {
        OPENSSL_cleanse(pbuf, sizeof pbuf);
        log_info("auth: authorize login failed for user '%s'", username ? username : "");
        login_page(resp, &z, app.name[0] ? app.name : app.client_id, username,
                   "Please check your username and password. If you still can't log in, "
                   "contact your Salesforce administrator.");
        return;
    }
    OPENSSL_cleanse(pbuf, sizeof pbuf);

    sb p = SB_INIT;
    if (strcmp(z.response_type, "code") == 0) {
        char code[AUTH_TOKEN_MAX];
        auth_issue_code(srv->auth, u.id, u.username, app.client_id, z.redirect_uri, z.challenge,
                        plain, code);
        add_param(&p, "code", code);
        if (z.state[0])
            add_param(&p, "state", z.state);
        redirect_to(resp, z.redirect_uri, '?', &p);
        OPENSSL_cleanse(code, sizeof code);
    } else {
        /* User-agent flow: the session goes back in the fragment. */
        grant g;
        issued is;
        memset(&g, 0, sizeof g);
        g.user = u;
        g.app = app;
        issue_session(srv, &g, &is);
        add_param(&p, "access_token", is.access);
        add_param(&p, "instance_url", srv->base_url);
        add_param(&p, "id", is.id_url);
        add_param(&p, "issued_at", is.issued_at);
        add_param(&p, "signature", is.signature);
        add_param(&p, "scope", SCOPE_DEFAULT);
        add_param(&p, "token_type", "Bearer");
        if (z.state[0])
            add_param(&p, "state", z.state);
        redirect_to(resp, z.redirect_uri, '#', &p);
        OPENSSL_cleanse(&is, sizeof is);
    }
    log_info("auth: %s authorized app '%s' (%s flow)", u.username, app.name, z.response_type);
    OPENSSL_cleanse(p.buf, p.len);
    sb_free(&p);
    OPENSSL_cleanse(app.secret, sizeof app.secret);
}
