/*
 * soap: the SOAP login and logout jsforce falls back to: envelope parsing with
 * libxml2 (no DTDs, size limits) and Salesforce's loginResponse and faults.
 */
#include "soap.h"

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
#include "log.h"
/* ----- SOAP login / logout --------------------------------------------------- */

#define SOAP_ENV_NS   "http://schemas.xmlsoap.org/soap/envelope/"
#define SOAP12_ENV_NS "http://www.w3.org/2003/05/soap-envelope"

static bool
has_doctype(const char *xml, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++)
        if (xml[i] == '<' && xml[i + 1] == '!' &&
            (strncasecmp(xml + i + 2, "DOCTYPE", len - i - 2 < 7 ? len - i - 2 : 7) == 0 ||
             strncasecmp(xml + i + 2, "ENTITY", len - i - 2 < 6 ? len - i - 2 : 6) == 0))
            return true;
    return false;
}

static bool
is_elem(const xmlNode *n, const char *local)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0;
}

static xmlNode *
first_elem(xmlNode *n)
{
    for (; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE)
            return n;
    return NULL;
}

static xmlNode *
child_elem(xmlNode *parent, const char *local)
{
    for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
        if (is_elem(n, local))
            return n;
    return NULL;
}

/* Text of an element into out; "" if n is NULL. -1 if it does not fit. */
static int
elem_text(xmlNode *n, char *out, size_t sz)
{
    out[0] = '\0';
    if (n == NULL)
        return 0;
    xmlChar *c = xmlNodeGetContent(n);
    if (c == NULL)
        return 0;
    size_t len = strlen((const char *)c);
    int rc = -1;
    if (len < sz) {
        memcpy(out, c, len + 1);
        rc = 0;
    }
    OPENSSL_cleanse(c, len);
    xmlFree(c);
    return rc;
}

int
auth_soap_parse(const char *xml, size_t len, char op[AUTH_SOAP_OP_MAX],
                char username[AUTH_SOAP_USER_MAX], char password[AUTH_SOAP_PASS_MAX],
                char session_id[AUTH_SOAP_SID_MAX])
{
    op[0] = username[0] = password[0] = session_id[0] = '\0';
    if (xml == NULL || len == 0 || len > SOAP_MAX_BYTES || has_doctype(xml, len))
        return -1;
    xmlDoc *doc = xmlReadMemory(xml, (int)len, "soap.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL)
        return -1;
    int rc = -1;
    xmlNode *env = xmlDocGetRootElement(doc);
    if (doc->intSubset || doc->extSubset || !is_elem(env, "Envelope") || env->ns == NULL ||
        (strcmp((const char *)env->ns->href, SOAP_ENV_NS) != 0 &&
         strcmp((const char *)env->ns->href, SOAP12_ENV_NS) != 0))
        goto out;
    xmlNode *body = child_elem(env, "Body");
    xmlNode *call = body ? first_elem(body->children) : NULL;
    if (call == NULL || strlen((const char *)call->name) >= AUTH_SOAP_OP_MAX)
        goto out;
    login_copy(op, AUTH_SOAP_OP_MAX, (const char *)call->name);
    xmlNode *sh = child_elem(child_elem(env, "Header"), "SessionHeader");
    if (elem_text(child_elem(call, "username"), username, AUTH_SOAP_USER_MAX) != 0 ||
        elem_text(child_elem(call, "password"), password, AUTH_SOAP_PASS_MAX) != 0 ||
        elem_text(child_elem(sh, "sessionId"), session_id, AUTH_SOAP_SID_MAX) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        op[0] = username[0] = password[0] = session_id[0] = '\0';
    xmlFreeDoc(doc);
    return rc;
}

static void
soap_open(sb *b, bool fault)
{
    sb_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope "
               "xmlns:soapenv=\"" SOAP_ENV_NS "\" ");
    sb_puts(b, fault ? "xmlns:sf=\"urn:fault.partner.soap.sforce.com\" "
                     : "xmlns=\"urn:partner.soap.sforce.com\" ");
    sb_puts(b, "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>");
}

static void
soap_close(sb *b)
{
    sb_puts(b, "</soapenv:Body></soapenv:Envelope>");
}

/* A SOAP fault, HTTP 500. With exc_code, a detail element of type fault_type
 * carries sf:exceptionCode and sf:exceptionMessage. */
static void
soap_fault(http_resp *resp, const char *faultcode, const char *faultstring, const char *fault_type,
           const char *exc_code, const char *exc_msg)
{
    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 500;
    resp->content_type = CT_XML;
    soap_open(b, true);
    sb_puts(b, "<soapenv:Fault><faultcode>");
    sb_xml_str(b, faultcode);
    sb_puts(b, "</faultcode><faultstring>");
    sb_xml_str(b, faultstring);
    sb_puts(b, "</faultstring>");
    if (exc_code) {
        sb_printf(b, "<detail><sf:%s xsi:type=\"sf:%s\"><sf:exceptionCode>", fault_type,
                  fault_type);
        sb_xml_str(b, exc_code);
        sb_puts(b, "</sf:exceptionCode><sf:exceptionMessage>");
        sb_xml_str(b, exc_msg);
        sb_printf(b, "</sf:exceptionMessage></sf:%s></detail>", fault_type);
    }
    sb_puts(b, "</soapenv:Fault>");
    soap_close(b);
}

static void
xml_elem(sb *b, const char *name, const char *text)
{
    sb_printf(b, "<%s>", name);
    sb_xml_str(b, text);
    sb_printf(b, "</%s>", name);
}

static void
soap_login(lf_server *srv, http_resp *resp, const char *ver, const char *username,
           const char *password)
{
    user_info u;
    if (login_user(srv->st, username, password, &u) != 0) {
        log_info("auth: SOAP login failed for user '%s'", username);
        soap_fault(resp, "sf:INVALID_LOGIN",
                   "INVALID_LOGIN: Invalid username, password, security token; or user "
                   "locked out.",
                   "LoginFault", "INVALID_LOGIN",
                   "Invalid username, password, security token; or user locked out.");
        return;
    }
    char org18[19], org15[16], token[AUTH_TOKEN_MAX], name[300], ttl[24], url[512];
    char org_name[256];
    login_org_ids(srv->st, org18, org15);
    store_lock(srv->st);
    login_copy(org_name, sizeof org_name, store_org_name(srv->st));
    store_unlock(srv->st);
    lf_session s;
    auth_issue_access(srv->auth, u.id, u.username, "", NULL, &s, token);
    login_full_name(&u, name, sizeof name);
    snprintf(ttl, sizeof ttl, "%lld", (long long)((s.expires_ms - s.issued_ms) / 1000));

    sb *b = &resp->body;
    sb_clear(b);
    resp->status = 200;
    resp->content_type = CT_XML;
    soap_open(b, false);
    sb_puts(b, "<loginResponse><result>");
    snprintf(url, sizeof url, "%s/services/Soap/m/%s/%s", srv->base_url, ver, org15);
    xml_elem(b, "metadataServerUrl", url);
    sb_puts(b, "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>");
    snprintf(url, sizeof url, "%s/services/Soap/u/%s/%s", srv->base_url, ver, org15);
    xml_elem(b, "serverUrl", url);
    xml_elem(b, "sessionId", token);
    xml_elem(b, "userId", u.id);
    sb_puts(b, "<userInfo><accessibilityMode>false</accessibilityMode>"
               "<chatterExternal>false</chatterExternal><currencySymbol>$</currencySymbol>"
               "<orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"
               "<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"
               "<orgDefaultCurrencyLocale>en_US</orgDefaultCurrencyLocale>"
               "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>"
               "<orgHasPersonAccounts>false</orgHasPersonAccounts>");
    xml_elem(b, "organizationId", org18);
    sb_puts(b, "<organizationMultiCurrency>false</organizationMultiCurrency>");
    xml_elem(b, "organizationName", org_name);
    sb_puts(b, "<roleId xsi:nil=\"true\"/>");
    xml_elem(b, "sessionSecondsValid", ttl);
    sb_puts(b, "<userDefaultCurrencyIsoCode xsi:nil=\"true\"/>");
    xml_elem(b, "userEmail", u.email);
    xml_elem(b, "userFullName", name);
    xml_elem(b, "userId", u.id);
    sb_puts(b, "<userLanguage>en_US</userLanguage><userLocale>en_US</userLocale>");
    xml_elem(b, "userName", u.username);
    sb_puts(b, "<userTimeZone>GMT</userTimeZone><userType>Standard</userType>"
               "<userUiSkin>Theme3</userUiSkin></userInfo></result></loginResponse>");
    soap_close(b);
    log_info("auth: %s signed in (SOAP login)", u.username);
    OPENSSL_cleanse(token, sizeof token);
}

void
auth_handle_soap(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    const char *ver = req->nseg > 0 ? req->seg[0] : "59.0";
    if (!login_valid_version(ver)) {
        soap_fault(resp, "sf:UNSUPPORTED_API_VERSION",
                   "UNSUPPORTED_API_VERSION: Invalid Api version specified on URL",
                   "UnexpectedErrorFault", "UNSUPPORTED_API_VERSION",
                   "Invalid Api version specified on URL");
        return;
    }
    char op[AUTH_SOAP_OP_MAX], user[AUTH_SOAP_USER_MAX], pass[AUTH_SOAP_PASS_MAX];
    char sid[AUTH_SOAP_SID_MAX];
    if (req->body_len > SOAP_MAX_BYTES) {
        soap_fault(resp, "soapenv:Client", "Request too large", NULL, NULL, NULL);
        return;
    }
    if (auth_soap_parse(req->body, req->body_len, op, user, pass, sid) != 0) {
        soap_fault(resp, "soapenv:Client",
                   "Unable to parse the request: not a well-formed SOAP envelope", NULL, NULL,
                   NULL);
        return;
    }
    if (strcmp(op, "login") == 0) {
        soap_login(srv, resp, ver, user, pass);
    } else if (strcmp(op, "logout") == 0) {
        if (sid[0] == '\0' || auth_revoke(srv->auth, sid) != 0) {
            soap_fault(resp, "sf:INVALID_SESSION_ID",
                       "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: "
                       "Illegal Session",
                       "UnexpectedErrorFault", "INVALID_SESSION_ID",
                       "Invalid Session ID found in SessionHeader: Illegal Session");
        } else {
            login_log_token("SOAP logout of", sid);
            sb_clear(&resp->body);
            resp->status = 200;
            resp->content_type = CT_XML;
            soap_open(&resp->body, false);
            sb_puts(&resp->body, "<logoutResponse/>");
            soap_close(&resp->body);
        }
    } else {
        sb msg = SB_INIT;
        sb_printf(&msg,
                  "No operation available for request {urn:partner.soap.sforce.com}%s, "
                  "please check the WSDL for the service.",
                  op);
        soap_fault(resp, "soapenv:Client", sb_str(&msg), NULL, NULL, NULL);
        sb_free(&msg);
    }
    OPENSSL_cleanse(pass, sizeof pass);
    OPENSSL_cleanse(sid, sizeof sid);
}
