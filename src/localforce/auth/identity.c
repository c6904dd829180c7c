/*
 * identity: the identity URL (/id/{org}/{user}) and /services/oauth2/userinfo: the
 * caller's user, org and URLs as Salesforce describes them.
 */
#include "identity.h"

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
#include "sfid.h"
#include "util.h"
/* ----- identity and userinfo ------------------------------------------------ */

static void
text_error(http_resp *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = CT_TEXT;
    sb_clear(&resp->body);
    sb_puts(&resp->body, text);
}

/* The token's session, or a 403 Missing_OAuth_Token / Bad_OAuth_Token. */
static int
identity_session(lf_server *srv, http_req *req, http_resp *resp, bool allow_query, lf_session *s,
                 user_info *u)
{
    char token[AUTH_TOKEN_MAX];
    if (auth_request_token(req, allow_query, token) != 0) {
        text_error(resp, 403, "Missing_OAuth_Token");
        return -1;
    }
    int rc = auth_lookup(srv->auth, token, s);
    OPENSSL_cleanse(token, sizeof token);
    if (rc != 0) {
        text_error(resp, 403, "Bad_OAuth_Token");
        return -1;
    }
    if (login_user_by_id(srv->st, s->user_id, u) != 0 || !u->active) {
        text_error(resp, 404, "Inactive");
        return -1;
    }
    return 0;
}

static void
json_field(sb *b, const char *name, const char *value, bool null_if_empty)
{
    sb_json_str(b, name);
    sb_putc(b, ':');
    if (null_if_empty && (value == NULL || *value == '\0'))
        sb_puts(b, "null");
    else
        sb_json_str(b, value ? value : "");
    sb_putc(b, ',');
}

/* "name":"<url>", with the URL built from fmt (values are escaped as JSON). */
static void json_url(sb *b, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
json_url(sb *b, const char *name, const char *fmt, ...)
{
    sb url = SB_INIT;
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&url, fmt, ap);
    va_end(ap);
    sb_json_str(b, name);
    sb_putc(b, ':');
    sb_json_str(b, sb_str(&url));
    sb_free(&url);
}

/* "photos":{...},"urls":{...}, with {version} as Salesforce writes it unless ver is given. */
static void
identity_urls(sb *b, lf_server *srv, const char *org15, const char *user_id, const char *ver)
{
    const char *base = srv->base_url;
    sb_puts(b, "\"photos\":{");
    json_url(b, "picture", "%s/profilephoto/005/F", base);
    sb_putc(b, ',');
    json_url(b, "thumbnail", "%s/profilephoto/005/T", base);
    sb_puts(b, "},\"urls\":{");
    json_url(b, "enterprise", "%s/services/Soap/c/%s/%s", base, ver, org15);
    sb_putc(b, ',');
    json_url(b, "metadata", "%s/services/Soap/m/%s/%s", base, ver, org15);
    sb_putc(b, ',');
    json_url(b, "partner", "%s/services/Soap/u/%s/%s", base, ver, org15);
    sb_putc(b, ',');
    json_url(b, "rest", "%s/services/data/v%s/", base, ver);
    sb_putc(b, ',');
    json_url(b, "sobjects", "%s/services/data/v%s/sobjects/", base, ver);
    sb_putc(b, ',');
    json_url(b, "search", "%s/services/data/v%s/search/", base, ver);
    sb_putc(b, ',');
    json_url(b, "query", "%s/services/data/v%s/query/", base, ver);
    sb_putc(b, ',');
    json_url(b, "recent", "%s/services/data/v%s/recent/", base, ver);
    sb_putc(b, ',');
    json_url(b, "tooling_soap", "%s/services/Soap/T/%s/%s", base, ver, org15);
    sb_putc(b, ',');
    json_url(b, "tooling_rest", "%s/services/data/v%s/tooling/", base, ver);
    sb_putc(b, ',');
    json_url(b, "profile", "%s/%s", base, user_id);
    sb_putc(b, ',');
    json_url(b, "custom_domain", "%s", base);
    sb_puts(b, "},");
}

static const char *
identity_version(http_req *req, http_resp *resp)
{
    const char *v = http_query(req, "version");
    if (v == NULL || *v == '\0')
        return "{version}";
    if (!login_valid_version(v)) {
        text_error(resp, 406, "Invalid_Version");
        return NULL;
    }
    return v;
}

static void
nick_name(const char *username, char *out, size_t sz)
{
    const char *at = strchr(username, '@');
    size_t n = at ? (size_t)(at - username) : strlen(username);
    snprintf(out, sz, "%.*s", (int)n, username);
}

void
auth_handle_identity(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    lf_session s;
    user_info u;
    if (identity_session(srv, req, resp, true, &s, &u) != 0)
        return;
    const char *ver = identity_version(req, resp);
    if (ver == NULL)
        return;
    char org18[19], org15[16], want_org[19], want_user[19];
    login_org_ids(srv->st, org18, org15);
    if (req->nseg < 2 || sfid_normalize(req->seg[0], want_org) != 0 ||
        strcmp(want_org, org18) != 0) {
        text_error(resp, 403, "Wrong_Org");
        return;
    }
    if (sfid_normalize(req->seg[1], want_user) != 0 || strcmp(want_user, s.user_id) != 0) {
        text_error(resp, 404, "Bad_Id");
        return;
    }
    const char *format = http_query(req, "format");
    if (format && *format && strcmp(format, "json") != 0) {
        text_error(resp, 406, "Bad_Format");
        return;
    }

    char id_url[512], name[300], nick[128], modified[32];
    snprintf(id_url, sizeof id_url, "%s/id/%s/%s", srv->base_url, org18, u.id);
    login_full_name(&u, name, sizeof name);
    nick_name(u.username, nick, sizeof nick);
    util_fmt_datetime(auth_started_ms(srv->auth), modified);

    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 200;
    resp->content_type = CT_JSON;
    sb_putc(b, '{');
    json_field(b, "id", id_url, false);
    sb_puts(b, "\"asserted_user\":true,");
    json_field(b, "user_id", u.id, false);
    json_field(b, "organization_id", org18, false);
    json_field(b, "username", u.username, false);
    json_field(b, "nick_name", nick, false);
    json_field(b, "display_name", name, false);
    json_field(b, "email", u.email, true);
    sb_puts(b, "\"email_verified\":true,");
    json_field(b, "first_name", u.first, true);
    json_field(b, "last_name", u.last, true);
    sb_puts(b, "\"timezone\":\"GMT\",");
    identity_urls(b, srv, org15, u.id, ver);
    sb_puts(b, "\"addr_street\":null,\"addr_city\":null,\"addr_state\":null,"
               "\"addr_country\":null,\"addr_zip\":null,\"mobile_phone\":null,"
               "\"mobile_phone_verified\":false,\"is_lightning_login_user\":false,"
               "\"status\":{\"created_date\":null,\"body\":null},");
    sb_puts(b, "\"active\":true,\"user_type\":\"STANDARD\",\"language\":\"en_US\","
               "\"locale\":\"en_US\",\"utcOffset\":0,");
    json_field(b, "last_modified_date", modified, false);
    sb_puts(b, "\"is_app_installed\":true}");
}

void
auth_handle_userinfo(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    lf_session s;
    user_info u;
    if (identity_session(srv, req, resp, false, &s, &u) != 0)
        return;
    const char *ver = identity_version(req, resp);
    if (ver == NULL)
        return;
    char org18[19], org15[16], id_url[512], name[300], nick[128], updated[32], pic[300];
    login_org_ids(srv->st, org18, org15);
    snprintf(id_url, sizeof id_url, "%s/id/%s/%s", srv->base_url, org18, u.id);
    login_full_name(&u, name, sizeof name);
    nick_name(u.username, nick, sizeof nick);
    util_fmt_datetime_z(auth_started_ms(srv->auth), updated);
    snprintf(pic, sizeof pic, "%s/profilephoto/005/F", srv->base_url);

    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 200;
    resp->content_type = CT_JSON;
    sb_putc(b, '{');
    json_field(b, "sub", id_url, false);
    json_field(b, "user_id", u.id, false);
    json_field(b, "organization_id", org18, false);
    json_field(b, "preferred_username", u.username, false);
    json_field(b, "nickname", nick, false);
    json_field(b, "name", name, false);
    json_field(b, "email", u.email, true);
    sb_puts(b, "\"email_verified\":true,");
    json_field(b, "given_name", u.first, true);
    json_field(b, "family_name", u.last, true);
    sb_puts(b, "\"zoneinfo\":\"GMT\",");
    identity_urls(b, srv, org15, u.id, ver);
    json_url(b, "profile", "%s/%s", srv->base_url, u.id);
    sb_putc(b, ',');
    json_field(b, "picture", pic, false);
    sb_puts(b, "\"address\":{},\"is_salesforce_integration_user\":false,\"active\":true,"
               "\"user_type\":\"STANDARD\",\"language\":\"en_US\",\"locale\":\"en_US\","
               "\"utcOffset\":0,");
    json_field(b, "updated_at", updated, false);
    sb_puts(b, "\"is_app_installed\":true}");
}
