/*
 * Unit tests for auth: token shapes, the session table (expiry, expire_all,
 * revoke, refresh-token cascade, authorization codes and PKCE), the token
 * signature, header parsing and SOAP envelope parsing on good, bad and hostile
 * XML, through the test hooks auth.c exports (prototypes repeated below); then
 * every endpoint end to end over a real socket, with an in-memory store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "sb.h"
#include "server.h"
#include "sessions.h" /* the test hooks (auth_issue_*, auth_lookup, ...) */
#include "util.h"

#define USER_ID "005000000000001AAA"
#define APP_ID  "3MVG9localforce"

static int
setup(void **state)
{
    *state = auth_new(NULL); /* no store: org id and TTL fall back to defaults */
    return 0;
}

static int
teardown(void **state)
{
    auth_free(*state);
    return 0;
}

static void
issue(auth *a, char tok[AUTH_TOKEN_MAX])
{
    assert_int_equal(auth_issue_access(a, USER_ID, "ops@acme.example", APP_ID, NULL, NULL, tok), 0);
}

/* ----- tokens and sessions ----------------------------------------------- */

static void
test_access_token_format(void **state)
{
    auth *a = *state;
    char t1[AUTH_TOKEN_MAX], t2[AUTH_TOKEN_MAX];
    lf_session s;
    assert_int_equal(auth_issue_access(a, USER_ID, "ops@acme.example", APP_ID, NULL, &s, t1), 0);
    issue(a, t2);
    /* "<15-char org id>!" + 96 alphanumerics */
    assert_int_equal(strlen(t1), 15 + 1 + 96);
    assert_memory_equal(t1, "00D000000000000!", 16);
    for (const char *p = t1 + 16; *p; p++)
        assert_true(isalnum((unsigned char)*p));
    assert_string_not_equal(t1, t2);
    assert_string_equal(s.user_id, USER_ID);
    assert_string_equal(s.username, "ops@acme.example");
    assert_string_equal(s.client_id, APP_ID);
    assert_int_equal(s.expires_ms - s.issued_ms, 7200 * 1000); /* the default TTL */
}

static void
test_lookup(void **state)
{
    auth *a = *state;
    char t[AUTH_TOKEN_MAX];
    lf_session s;
    issue(a, t);
    memset(&s, 0, sizeof s);
    assert_int_equal(auth_lookup(a, t, &s), 0);
    assert_string_equal(s.user_id, USER_ID);
    /* One changed character, a prefix, an extension: all unknown. */
    char bad[AUTH_TOKEN_MAX + 8];
    snprintf(bad, sizeof bad, "%s", t);
    bad[40] = bad[40] == 'A' ? 'B' : 'A';
    assert_int_equal(auth_lookup(a, bad, &s), -1);
    bad[40] = t[40];
    bad[60] = '\0';
    assert_int_equal(auth_lookup(a, bad, &s), -1);
    snprintf(bad, sizeof bad, "%sX", t);
    assert_int_equal(auth_lookup(a, bad, &s), -1);
    assert_int_equal(auth_lookup(a, NULL, &s), -1);
    assert_int_equal(auth_lookup(a, "", &s), -1);
    char huge[4096];
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    assert_int_equal(auth_lookup(a, huge, &s), -1);
}

static void
test_refresh_is_not_a_session(void **state)
{
    auth *a = *state;
    char rt[AUTH_TOKEN_MAX];
    lf_session s;
    assert_int_equal(auth_issue_refresh(a, USER_ID, "ops@acme.example", APP_ID, rt), 0);
    assert_memory_equal(rt, "5Aep", 4);
    assert_int_equal(auth_lookup(a, rt, &s), -1); /* not usable as a bearer token */
    assert_int_equal(auth_lookup_refresh(a, rt, &s), 0);
    assert_int_equal(s.expires_ms, 0); /* never expires */
    char at[AUTH_TOKEN_MAX];
    issue(a, at);
    assert_int_equal(auth_lookup_refresh(a, at, &s), -1); /* and the other way round */
}

static void
test_session_expiry(void **state)
{
    auth *a = *state;
    char t[AUTH_TOKEN_MAX];
    lf_session s;
    auth_set_ttl(a, 1);
    issue(a, t);
    assert_int_equal(auth_lookup(a, t, &s), 0);
    assert_int_equal(s.expires_ms - s.issued_ms, 1000);
    struct timespec ts = {1, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(auth_lookup(a, t, &s), -1);
    /* Back to the default for tokens issued from now on. */
    auth_set_ttl(a, 0);
    issue(a, t);
    assert_int_equal(auth_lookup(a, t, &s), 0);
    assert_int_equal(s.expires_ms - s.issued_ms, 7200 * 1000);
}

static void
test_expire_all(void **state)
{
    auth *a = *state;
    char t[5][AUTH_TOKEN_MAX], rt[AUTH_TOKEN_MAX];
    for (int i = 0; i < 5; i++)
        issue(a, t[i]);
    assert_int_equal(auth_issue_refresh(a, USER_ID, "ops@acme.example", APP_ID, rt), 0);
    auth_expire_all(a);
    for (int i = 0; i < 5; i++)
        assert_int_equal(auth_lookup(a, t[i], NULL), -1);
    /* Refresh tokens survive, so clients can get a new session. */
    assert_int_equal(auth_lookup_refresh(a, rt, NULL), 0);
    char fresh[AUTH_TOKEN_MAX];
    issue(a, fresh);
    assert_int_equal(auth_lookup(a, fresh, NULL), 0);
}

static void
test_revoke(void **state)
{
    auth *a = *state;
    char t[AUTH_TOKEN_MAX], other[AUTH_TOKEN_MAX];
    issue(a, t);
    issue(a, other);
    assert_int_equal(auth_revoke(a, t), 0);
    assert_int_equal(auth_lookup(a, t, NULL), -1);
    assert_int_equal(auth_revoke(a, t), -1); /* already gone */
    assert_int_equal(auth_lookup(a, other, NULL), 0);
    assert_int_equal(auth_revoke(a, "nonsense"), -1);
    assert_int_equal(auth_revoke(a, ""), -1);
    assert_int_equal(auth_revoke(a, NULL), -1);
}

static void
test_revoke_refresh_cascades(void **state)
{
    auth *a = *state;
    char rt[AUTH_TOKEN_MAX], c1[AUTH_TOKEN_MAX], c2[AUTH_TOKEN_MAX], lone[AUTH_TOKEN_MAX];
    assert_int_equal(auth_issue_refresh(a, USER_ID, "ops@acme.example", APP_ID, rt), 0);
    assert_int_equal(auth_issue_access(a, USER_ID, "ops@acme.example", APP_ID, rt, NULL, c1), 0);
    assert_int_equal(auth_issue_access(a, USER_ID, "ops@acme.example", APP_ID, rt, NULL, c2), 0);
    issue(a, lone);
    assert_int_equal(auth_revoke(a, rt), 0);
    assert_int_equal(auth_lookup_refresh(a, rt, NULL), -1);
    assert_int_equal(auth_lookup(a, c1, NULL), -1);
    assert_int_equal(auth_lookup(a, c2, NULL), -1);
    assert_int_equal(auth_lookup(a, lone, NULL), 0);
}

static void
test_many_sessions(void **state)
{
    /* Enough tokens to grow the table several times and run the sweeps. */
    auth *a = *state;
    enum { N = 3000 };
    char(*t)[AUTH_TOKEN_MAX] = malloc(N * sizeof *t);
    assert_non_null(t);
    for (int i = 0; i < N; i++)
        issue(a, t[i]);
    for (int i = 0; i < N; i++)
        assert_int_equal(auth_lookup(a, t[i], NULL), 0);
    for (int i = 0; i < N; i += 2)
        assert_int_equal(auth_revoke(a, t[i]), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(auth_lookup(a, t[i], NULL), i % 2 ? 0 : -1);
    free(t);
}

static void *
hammer(void *arg)
{
    auth *a = arg;
    for (int i = 0; i < 500; i++) {
        char t[AUTH_TOKEN_MAX];
        lf_session s;
        auth_issue_access(a, USER_ID, "ops@acme.example", APP_ID, NULL, NULL, t);
        if (auth_lookup(a, t, &s) != 0 || strcmp(s.user_id, USER_ID) != 0)
            return (void *)1;
        if (i % 3 == 0 && auth_revoke(a, t) != 0)
            return (void *)1;
        if (i % 100 == 0)
            auth_expire_all(a);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    auth *a = *state;
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, a), 0);
    for (int i = 0; i < 4; i++) {
        void *ret = (void *)1;
        pthread_join(th[i], &ret);
        /* A token may be expired by another thread's expire_all between issue
         * and lookup; only crashes and races matter here (ASan/TSan). */
        (void)ret;
    }
    char t[AUTH_TOKEN_MAX];
    issue(a, t);
    assert_int_equal(auth_lookup(a, t, NULL), 0);
}

/* ----- authorization codes ------------------------------------------------ */

static void
test_code_single_use(void **state)
{
    auth *a = *state;
    char code[AUTH_TOKEN_MAX];
    lf_session s;
    const char *why;
    assert_int_equal(auth_issue_code(a, USER_ID, "ops@acme.example", APP_ID, "http://localhost/cb",
                                     NULL, false, code),
                     0);
    assert_memory_equal(code, "aPrx", 4);
    assert_int_equal(auth_lookup(a, code, NULL), -1); /* a code is not a session */
    assert_int_equal(auth_redeem_code(a, code, APP_ID, "http://localhost/cb", NULL, &s, &why), 0);
    assert_string_equal(s.user_id, USER_ID);
    assert_int_equal(auth_redeem_code(a, code, APP_ID, "http://localhost/cb", NULL, &s, &why), -1);
    assert_string_equal(why, "invalid authorization code");
}

static void
test_code_checks(void **state)
{
    auth *a = *state;
    char code[AUTH_TOKEN_MAX];
    lf_session s;
    const char *why;
    /* Wrong redirect_uri: refused, and the code is spent. */
    auth_issue_code(a, USER_ID, "u", APP_ID, "http://localhost/cb", NULL, false, code);
    assert_int_equal(auth_redeem_code(a, code, APP_ID, "http://evil/cb", NULL, &s, &why), -1);
    assert_string_equal(why, "redirect_uri must match configuration");
    assert_int_equal(auth_redeem_code(a, code, APP_ID, "http://localhost/cb", NULL, &s, &why), -1);
    /* Another app's code. */
    auth_issue_code(a, USER_ID, "u", APP_ID, "http://localhost/cb", NULL, false, code);
    assert_int_equal(auth_redeem_code(a, code, "3MVG9other", "http://localhost/cb", NULL, &s, &why),
                     -1);
    assert_string_equal(why, "invalid authorization code");
    /* Garbage. */
    assert_int_equal(auth_redeem_code(a, "", APP_ID, "x", NULL, &s, &why), -1);
    assert_int_equal(auth_redeem_code(a, NULL, APP_ID, "x", NULL, &s, &why), -1);
    assert_int_equal(auth_redeem_code(a, "aPrxnope", APP_ID, "x", NULL, &s, &why), -1);
}

static void
test_code_pkce(void **state)
{
    auth *a = *state;
    /* RFC 7636, appendix B. */
    const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const char *challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    char code[AUTH_TOKEN_MAX];
    lf_session s;
    const char *why;
    auth_issue_code(a, USER_ID, "u", APP_ID, "http://localhost/cb", challenge, false, code);
    assert_int_equal(auth_redeem_code(a, code, APP_ID, "http://localhost/cb", verifier, &s, &why),
                     0);
    auth_issue_code(a, USER_ID, "u", APP_ID, "http://localhost/cb", challenge, false, code);
    assert_int_equal(auth_redeem_code(a, code, APP_ID, "http://localhost/cb", "wrong", &s, &why),
                     -1);
    assert_string_equal(why, "invalid code verifier");
    auth_issue_code(a, USER_ID, "u", APP_ID, "http://localhost/cb", challenge, false, code);
    assert_int_equal(auth_redeem_code(a, code, APP_ID, "http://localhost/cb", NULL, &s, &why), -1);
    /* plain */
    auth_issue_code(a, USER_ID, "u", APP_ID, "http://localhost/cb", "abc", true, code);
    assert_int_equal(auth_redeem_code(a, code, APP_ID, "http://localhost/cb", "abc", &s, &why), 0);
}

/* ----- signature and header parsing --------------------------------------- */

static void
test_signature_known_answer(void **state)
{
    (void)state;
    char sig[AUTH_SIG_MAX];
    /* RFC 4231 test case 2, split across id URL and issued_at. */
    auth_sign("Jefe", "what do ya want ", "for nothing?", sig);
    assert_string_equal(sig, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    auth_sign("secret123", "http://127.0.0.1:8111/id/00D000000000001AAA/005000000000001AAA",
              "1704164645123", sig);
    assert_string_equal(sig, "Qb+htx6PcjE/bRltKbfuDkaClO/R6MFhcbJYkc28a5U=");
}

static void
test_parse_authorization(void **state)
{
    (void)state;
    char t[AUTH_TOKEN_MAX];
    assert_int_equal(auth_parse_authorization("Bearer 00D!abc", t), 0);
    assert_string_equal(t, "00D!abc");
    assert_int_equal(auth_parse_authorization("OAuth 00D!abc", t), 0);
    assert_string_equal(t, "00D!abc");
    assert_int_equal(auth_parse_authorization("  bearer \t xyz  ", t), 0);
    assert_string_equal(t, "xyz");
    assert_int_equal(auth_parse_authorization("Basic eHl6", t), -1);
    assert_int_equal(auth_parse_authorization("Bearer", t), -1);
    assert_int_equal(auth_parse_authorization("Bearer   ", t), -1);
    assert_int_equal(auth_parse_authorization("Bearerxyz", t), -1);
    assert_int_equal(auth_parse_authorization("", t), -1);
    assert_int_equal(auth_parse_authorization(NULL, t), -1);
    char longv[600];
    snprintf(longv, sizeof longv, "Bearer %0500d", 7);
    assert_int_equal(auth_parse_authorization(longv, t), -1);
}

static void
test_parse_basic(void **state)
{
    (void)state;
    char id[128], secret[128];
    /* base64("3MVG9abc:s3cr:et"): the secret may contain ':' */
    assert_int_equal(auth_parse_basic("Basic M01WRzlhYmM6czNjcjpldA==", id, sizeof id, secret,
                                      sizeof secret),
                     0);
    assert_string_equal(id, "3MVG9abc");
    assert_string_equal(secret, "s3cr:et");
    assert_int_equal(auth_parse_basic("Basic bm9jb2xvbg==", id, sizeof id, secret, sizeof secret),
                     -1); /* "nocolon" */
    assert_int_equal(auth_parse_basic("Basic !!!!", id, sizeof id, secret, sizeof secret), -1);
    assert_int_equal(auth_parse_basic("Basic abc", id, sizeof id, secret, sizeof secret), -1);
    assert_int_equal(auth_parse_basic("Bearer abcd", id, sizeof id, secret, sizeof secret), -1);
    assert_int_equal(auth_parse_basic("Basic ", id, sizeof id, secret, sizeof secret), -1);
    assert_int_equal(auth_parse_basic(NULL, id, sizeof id, secret, sizeof secret), -1);
    /* base64("a\0b:c"): an embedded NUL is refused */
    assert_int_equal(auth_parse_basic("Basic YQBiOmM=", id, sizeof id, secret, sizeof secret), -1);
}

/* ----- SOAP ------------------------------------------------------------------ */

typedef struct soap_out {
    char op[AUTH_SOAP_OP_MAX], user[AUTH_SOAP_USER_MAX], pass[AUTH_SOAP_PASS_MAX];
    char sid[AUTH_SOAP_SID_MAX];
} soap_out;

static int
soap(const char *xml, soap_out *o)
{
    return auth_soap_parse(xml, strlen(xml), o->op, o->user, o->pass, o->sid);
}

static void
test_soap_jsforce_login(void **state)
{
    (void)state;
    soap_out o;
    /* As jsforce's loginBySoap sends it, with XML-escaped characters. */
    const char *xml =
        "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Header/>"
        "<se:Body><login xmlns=\"urn:partner.soap.sforce.com\">"
        "<username>ops@acme.example</username><password>p&amp;ss&lt;w&gt;rd\"1</password>"
        "</login></se:Body></se:Envelope>";
    assert_int_equal(soap(xml, &o), 0);
    assert_string_equal(o.op, "login");
    assert_string_equal(o.user, "ops@acme.example");
    assert_string_equal(o.pass, "p&ss<w>rd\"1");
    assert_string_equal(o.sid, "");
}

static void
test_soap_simple_salesforce_login(void **state)
{
    (void)state;
    soap_out o;
    /* simple-salesforce's shape: prefixed elements, an XML declaration, CallOptions. */
    const char *xml =
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n"
        "<env:Envelope xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"\n"
        "  xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
        "  xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\"\n"
        "  xmlns:urn=\"urn:partner.soap.sforce.com\">\n"
        " <env:Header><urn:CallOptions><urn:client>RestForce</urn:client>"
        "<urn:defaultNamespace>sf</urn:defaultNamespace></urn:CallOptions></env:Header>\n"
        " <env:Body>\n  <n1:login xmlns:n1=\"urn:partner.soap.sforce.com\">\n"
        "   <n1:username>ops@acme.example</n1:username>\n"
        "   <n1:password>Secret123XYZtoken</n1:password>\n"
        "  </n1:login>\n </env:Body>\n</env:Envelope>\n";
    assert_int_equal(soap(xml, &o), 0);
    assert_string_equal(o.op, "login");
    assert_string_equal(o.user, "ops@acme.example");
    assert_string_equal(o.pass, "Secret123XYZtoken");
}

static void
test_soap_logout(void **state)
{
    (void)state;
    soap_out o;
    const char *xml =
        "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Header>"
        "<SessionHeader xmlns=\"urn:partner.soap.sforce.com\"><sessionId>00D000000000000!abc"
        "</sessionId></SessionHeader></se:Header><se:Body>"
        "<logout xmlns=\"urn:partner.soap.sforce.com\"/></se:Body></se:Envelope>";
    assert_int_equal(soap(xml, &o), 0);
    assert_string_equal(o.op, "logout");
    assert_string_equal(o.sid, "00D000000000000!abc");
    assert_string_equal(o.user, "");
}

static void
test_soap_malformed(void **state)
{
    (void)state;
    soap_out o;
    static const char *bad[] = {
        "",
        "not xml at all",
        "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Body>",
        "<Envelope><Body><login/></Body></Envelope>", /* no SOAP namespace */
        "<x:Envelope xmlns:x=\"urn:other\"><x:Body><login/></x:Body></x:Envelope>",
        "<se:Enveloppe xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"/>",
        "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"/>",
        "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Body>"
        "</se:Body></se:Envelope>",
        "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Body>text"
        "</se:Body></se:Envelope>",
        "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Body><login>"
        "<username>a</password></login></se:Body></se:Envelope>",
        "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Body><login>"
        "<username>a&bogus;</username></login></se:Body></se:Envelope>",
        "\xff\xfe<\0s\0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(o.op, "x");
        assert_int_equal(soap(bad[i], &o), -1);
        assert_string_equal(o.op, "");
    }
    assert_int_equal(auth_soap_parse(NULL, 0, o.op, o.user, o.pass, o.sid), -1);
}

static void
test_soap_xxe(void **state)
{
    (void)state;
    soap_out o;
    /* External entity: must not be fetched or expanded. */
    const char *xxe =
        "<?xml version=\"1.0\"?><!DOCTYPE se:Envelope [<!ENTITY x SYSTEM "
        "\"file:///etc/passwd\">]><se:Envelope "
        "xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Body><login>"
        "<username>&x;</username><password>p</password></login></se:Body></se:Envelope>";
    assert_int_equal(soap(xxe, &o), -1);
    assert_null(strstr(o.user, "root"));
    /* Lower-case doctype is not XML, but is refused before the parser sees it. */
    const char *lower =
        "<!doctype x><se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\">"
        "<se:Body><login/></se:Body></se:Envelope>";
    assert_int_equal(soap(lower, &o), -1);
}

static void
test_soap_billion_laughs(void **state)
{
    (void)state;
    soap_out o;
    sb x = SB_INIT;
    sb_puts(&x, "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    sb_puts(&x, "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">");
    for (int i = 2; i <= 9; i++)
        sb_printf(&x,
                  "<!ENTITY lol%d \"&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;"
                  "&lol%d;&lol%d;\">",
                  i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    sb_puts(&x, "]><se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                "<se:Body><login><username>&lol9;</username><password>p</password></login>"
                "</se:Body></se:Envelope>");
    assert_int_equal(auth_soap_parse(x.buf, x.len, o.op, o.user, o.pass, o.sid), -1);
    sb_free(&x);
}

static void
test_soap_limits(void **state)
{
    (void)state;
    soap_out o;
    sb x = SB_INIT;
    /* Over the size cap, even if well formed. */
    sb_puts(&x, "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Body>"
                "<login><username>u</username><password>");
    while (x.len <= SOAP_MAX_BYTES)
        sb_puts(&x, "pppppppppppppppppppppppppppppppp");
    sb_puts(&x, "</password></login></se:Body></se:Envelope>");
    assert_int_equal(auth_soap_parse(x.buf, x.len, o.op, o.user, o.pass, o.sid), -1);
    /* Under the cap, but a username too long for any user. */
    sb_clear(&x);
    sb_puts(&x, "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Body>"
                "<login><username>");
    for (int i = 0; i < AUTH_SOAP_USER_MAX; i++)
        sb_putc(&x, 'u');
    sb_puts(&x, "</username><password>p</password></login></se:Body></se:Envelope>");
    assert_int_equal(auth_soap_parse(x.buf, x.len, o.op, o.user, o.pass, o.sid), -1);
    /* Deep nesting inside the Body: refused or parsed, never a crash. */
    sb_clear(&x);
    sb_puts(&x, "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Body>");
    for (int i = 0; i < 5000; i++)
        sb_puts(&x, "<a>");
    for (int i = 0; i < 5000; i++)
        sb_puts(&x, "</a>");
    sb_puts(&x, "</se:Body></se:Envelope>");
    int rc = auth_soap_parse(x.buf, x.len, o.op, o.user, o.pass, o.sid);
    assert_true(rc == -1 || strcmp(o.op, "a") == 0);
    sb_free(&x);
}

/* ----- end to end: the handlers behind a real HTTP server ----------------- */

static const char org_json[] =
    "{\"organization\":{\"name\":\"Auth Test Org\"},"
    "\"settings\":{\"session_ttl_seconds\":7200},"
    "\"connected_apps\":["
    "{\"name\":\"app\",\"client_id\":\"test-client\",\"client_secret\":\"test-secret\","
    "\"run_as\":\"ada@auth.test\"},"
    "{\"name\":\"norunas\",\"client_id\":\"plain-client\",\"client_secret\":\"plain-secret\"}],"
    "\"users\":["
    "{\"username\":\"ada@auth.test\",\"password\":\"p&ss w+rd!\",\"first_name\":\"Ada\","
    "\"last_name\":\"Lovelace\",\"email\":\"ada@auth.test\"},"
    "{\"username\":\"bob@auth.test\",\"password\":\"bobpw\",\"first_name\":\"Bob\","
    "\"last_name\":\"B\",\"email\":\"bob@auth.test\"}]}";

/* Any route that needs a session: answers 200 "ok <user id>" or auth_check's 401. */
static void
check_handler(http_req *req, http_resp *resp)
{
    lf_server *srv = req->ctx;
    lf_session s;
    if (auth_check(srv->auth, req, resp, &s) != 0)
        return;
    resp->content_type = "text/plain";
    sb_printf(&resp->body, "ok %s", s.user_id);
}

static const http_route e2e_routes[] = {
    {"POST", "/services/oauth2/token", auth_handle_token},
    {"POST", "/services/oauth2/revoke", auth_handle_revoke},
    {"GET", "/services/oauth2/authorize", auth_handle_authorize},
    {"POST", "/services/oauth2/authorize", auth_handle_authorize},
    {"GET", "/services/oauth2/userinfo", auth_handle_userinfo},
    {"POST", "/services/Soap/u/*", auth_handle_soap},
    {"POST", "/services/Soap/u/*/*", auth_handle_soap},
    {"GET", "/id/*/*", auth_handle_identity},
    {"GET", "/check", check_handler},
    {NULL, NULL, NULL},
};

static lf_server e2e;
static uint16_t e2e_port;

static int
e2e_setup(void **state)
{
    (void)state;
    err_t e;
    memset(&e2e, 0, sizeof e2e);
    json_error_t je;
    json_t *org = json_loads(org_json, 0, &je);
    if (org == NULL || store_open(":memory:", &e2e.st, &e) != 0 ||
        store_load_org_json(e2e.st, org, &e) != 0) {
        fprintf(stderr, "store: %s\n", org ? e.msg : je.text);
        json_decref(org);
        return -1;
    }
    json_decref(org);
    e2e.auth = auth_new(e2e.st);
    http_config hc = {.host = "127.0.0.1",
                      .port = 0,
                      .routes = e2e_routes,
                      .ctx = &e2e,
                      .max_body = 1 << 20,
                      .threads = 2};
    if (http_start(&hc, &e2e.http, &e) != 0) {
        fprintf(stderr, "http: %s\n", e.msg);
        return -1;
    }
    e2e_port = http_port(e2e.http);
    snprintf(e2e.base_url, sizeof e2e.base_url, "http://127.0.0.1:%u", e2e_port);
    return 0;
}

static int
e2e_teardown(void **state)
{
    (void)state;
    http_stop(e2e.http);
    auth_free(e2e.auth);
    store_close(e2e.st);
    return 0;
}

typedef struct reply {
    int status;
    sb head; /* raw header lines */
    sb body;
} reply;

static void
reply_free(reply *r)
{
    sb_free(&r->head);
    sb_free(&r->body);
}

/* One request over a fresh connection; extra_headers is "" or "Name: v\r\n"... */
static void
req(reply *r, const char *method, const char *path, const char *ctype, const char *extra_headers,
    const char *body)
{
    memset(r, 0, sizeof *r);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(e2e_port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    sb out = SB_INIT;
    sb_printf(&out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (ctype)
        sb_printf(&out, "Content-Type: %s\r\n", ctype);
    sb_puts(&out, extra_headers ? extra_headers : "");
    sb_printf(&out, "Content-Length: %zu\r\n\r\n%s", body ? strlen(body) : 0, body ? body : "");
    for (size_t off = 0; off < out.len;) {
        ssize_t n = write(fd, out.buf + off, out.len - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    sb_free(&out);
    sb in = SB_INIT;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        sb_append(&in, buf, (size_t)n);
    close(fd);
    const char *raw = sb_str(&in);
    const char *end = strstr(raw, "\r\n\r\n");
    assert_non_null(end);
    assert_int_equal(sscanf(raw, "HTTP/1.1 %d", &r->status), 1);
    sb_append(&r->head, raw, (size_t)(end - raw) + 2);
    sb_puts(&r->body, end + 4);
    sb_free(&in);
}

static void
form(reply *r, const char *path, const char *body)
{
    req(r, "POST", path, "application/x-www-form-urlencoded", NULL, body);
}

/* Value of a response header (first match, case-insensitive) into out. */
static const char *
header(const reply *r, const char *name, char *out, size_t sz)
{
    const char *p = sb_str(&r->head);
    size_t n = strlen(name);
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ')
                p++;
            const char *e = strstr(p, "\r\n");
            snprintf(out, sz, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
            return out;
        }
    }
    return NULL;
}

static json_t *
body_json(const reply *r)
{
    json_error_t je;
    json_t *j = json_loads(sb_str(&r->body), 0, &je);
    if (j == NULL)
        fprintf(stderr, "not JSON: %s\n", sb_str(&r->body));
    assert_non_null(j);
    return j;
}

static const char *
jstr(json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    return v ? v : "(missing)";
}

static void
expect_oauth_error(const char *body, int status, const char *error, const char *desc)
{
    reply r;
    form(&r, "/services/oauth2/token", body);
    if (r.status != status)
        fprintf(stderr, "for %s: %s\n", body, sb_str(&r.body));
    assert_int_equal(r.status, status);
    char ct[128];
    assert_non_null(header(&r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/json;charset=UTF-8");
    json_t *j = body_json(&r);
    assert_string_equal(jstr(j, "error"), error);
    assert_string_equal(jstr(j, "error_description"), desc);
    json_decref(j);
    reply_free(&r);
}

/* The user id of ada, from a password grant; fills token (if not NULL). */
static void
password_login(char token[AUTH_TOKEN_MAX], json_t **resp_out)
{
    reply r;
    form(&r, "/services/oauth2/token",
         "grant_type=password&client_id=test-client&client_secret=test-secret"
         "&username=ada%40auth.test&password=p%26ss+w%2Brd%21");
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    if (token)
        snprintf(token, AUTH_TOKEN_MAX, "%s", jstr(j, "access_token"));
    if (resp_out)
        *resp_out = j;
    else
        json_decref(j);
    reply_free(&r);
}

static void
e2e_password_grant(void **state)
{
    (void)state;
    json_t *j;
    char token[AUTH_TOKEN_MAX];
    password_login(token, &j);
    assert_string_equal(jstr(j, "token_type"), "Bearer");
    assert_string_equal(jstr(j, "instance_url"), e2e.base_url);
    assert_null(json_object_get(j, "refresh_token"));
    const char *org = store_org_id(e2e.st);
    lf_session s;
    assert_int_equal(auth_lookup(e2e.auth, token, &s), 0);
    char want[512];
    snprintf(want, sizeof want, "%s/id/%s/%s", e2e.base_url, org, s.user_id);
    assert_string_equal(jstr(j, "id"), want);
    assert_memory_equal(token, org, 15);
    assert_int_equal(token[15], '!');
    const char *issued = jstr(j, "issued_at");
    assert_int_equal(strlen(issued), 13);
    char sig[AUTH_SIG_MAX];
    auth_sign("test-secret", want, issued, sig);
    assert_string_equal(jstr(j, "signature"), sig);
    json_decref(j);

    /* The session works for an authenticated route. */
    reply r;
    char hdr[300];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", token);
    req(&r, "GET", "/check", NULL, hdr, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(strncmp(sb_str(&r.body), "ok 005", 6), 0);
    reply_free(&r);
}

static void
e2e_token_errors(void **state)
{
    (void)state;
    expect_oauth_error("grant_type=password&client_id=test-client&client_secret=test-secret"
                       "&username=ada%40auth.test&password=wrong",
                       400, "invalid_grant", "authentication failure");
    expect_oauth_error("grant_type=password&client_id=test-client&client_secret=test-secret"
                       "&username=nobody%40auth.test&password=x",
                       400, "invalid_grant", "authentication failure");
    expect_oauth_error("grant_type=password&client_id=nope&client_secret=test-secret"
                       "&username=ada%40auth.test&password=x",
                       400, "invalid_client_id", "client identifier invalid");
    expect_oauth_error("grant_type=password&client_secret=test-secret"
                       "&username=ada%40auth.test&password=x",
                       400, "invalid_client_id", "client identifier invalid");
    expect_oauth_error("grant_type=password&client_id=test-client&client_secret=bad"
                       "&username=ada%40auth.test&password=x",
                       400, "invalid_client", "invalid client credentials");
    expect_oauth_error("grant_type=password&client_id=test-client&client_secret=test-secret"
                       "&username=ada%40auth.test",
                       400, "invalid_request", "missing required parameter: password");
    expect_oauth_error("grant_type=jwt", 400, "unsupported_grant_type", "grant type not supported");
    expect_oauth_error("", 400, "unsupported_grant_type", "grant type not supported");
    expect_oauth_error("grant_type=refresh_token&client_id=test-client&refresh_token=nope", 400,
                       "invalid_grant", "expired access/refresh token");
    expect_oauth_error("grant_type=authorization_code&client_id=test-client"
                       "&client_secret=test-secret&code=nope&redirect_uri=http%3A%2F%2Fx%2Fcb",
                       400, "invalid_grant", "invalid authorization code");
    expect_oauth_error("grant_type=client_credentials&client_id=plain-client"
                       "&client_secret=plain-secret",
                       400, "invalid_request", "no client credentials user enabled");
    expect_oauth_error("grant_type=client_credentials&client_id=test-client&client_secret=x", 400,
                       "invalid_client", "invalid client credentials");
}

static void
e2e_client_credentials(void **state)
{
    (void)state;
    reply r;
    /* base64("test-client:test-secret") */
    req(&r, "POST", "/services/oauth2/token", "application/x-www-form-urlencoded",
        "Authorization: Basic dGVzdC1jbGllbnQ6dGVzdC1zZWNyZXQ=\r\n",
        "grant_type=client_credentials");
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    lf_session s;
    assert_int_equal(auth_lookup(e2e.auth, jstr(j, "access_token"), &s), 0);
    assert_string_equal(s.username, "ada@auth.test");
    assert_string_equal(s.client_id, "test-client");
    json_decref(j);
    reply_free(&r);
}

static void
e2e_unauthorized(void **state)
{
    (void)state;
    static const char *const hdrs[] = {
        "",
        "Authorization: Bearer 00Dbogus!x\r\n",
        "Authorization: Basic abc\r\n",
        "Authorization: Bearer\r\n",
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        reply r;
        req(&r, "GET", "/check", NULL, hdrs[i], NULL);
        assert_int_equal(r.status, 401);
        assert_string_equal(sb_str(&r.body), "[{\"message\":\"Session expired or invalid\","
                                             "\"errorCode\":\"INVALID_SESSION_ID\"}]");
        char ct[128];
        assert_string_equal(header(&r, "Content-Type", ct, sizeof ct),
                            "application/json;charset=UTF-8");
        reply_free(&r);
    }
    /* oauth_token in the query only counts for the identity URL. */
    char token[AUTH_TOKEN_MAX], path[400];
    password_login(token, NULL);
    snprintf(path, sizeof path, "/check?oauth_token=%s", token);
    reply r;
    req(&r, "GET", path, NULL, "", NULL);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    /* "OAuth" works as well as "Bearer"; expire_all ends it. */
    char hdr[300];
    snprintf(hdr, sizeof hdr, "Authorization: OAuth %s\r\n", token);
    req(&r, "GET", "/check", NULL, hdr, NULL);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    auth_expire_all(e2e.auth);
    req(&r, "GET", "/check", NULL, hdr, NULL);
    assert_int_equal(r.status, 401);
    reply_free(&r);
}

/* Location of a 302, and the value of one query parameter in it. */
static void
location_param(const reply *r, const char *name, char *out, size_t sz)
{
    char loc[2048];
    assert_int_equal(r->status, 302);
    assert_non_null(header(r, "Location", loc, sizeof loc));
    char key[64];
    snprintf(key, sizeof key, "%s=", name);
    const char *p = strstr(loc, key);
    assert_non_null(p);
    p += strlen(key);
    size_t n = strcspn(p, "&#");
    snprintf(out, sz, "%.*s", (int)n, p);
}

static void
e2e_authorize_code_refresh_revoke(void **state)
{
    (void)state;
    reply r;
    /* The login page escapes what it echoes. */
    req(&r, "GET",
        "/services/oauth2/authorize?response_type=code&client_id=test-client"
        "&redirect_uri=http%3A%2F%2Flocalhost%3A1717%2Fcb&state=%22%3E%3Cscript%3E'",
        NULL, "", NULL);
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_string_equal(header(&r, "Content-Type", ct, sizeof ct), "text/html;charset=UTF-8");
    assert_non_null(strstr(sb_str(&r.body), "value=\"&quot;&gt;&lt;script&gt;&#39;\""));
    assert_null(strstr(sb_str(&r.body), "<script>"));
    assert_non_null(strstr(sb_str(&r.body), "name=\"username\""));
    reply_free(&r);

    /* Wrong password: the form again, with an error and the username escaped. */
    form(&r, "/services/oauth2/authorize",
         "response_type=code&client_id=test-client&redirect_uri=http%3A%2F%2Flocalhost%3A1717%2Fcb"
         "&state=s1&username=%3Cb%3Eada&password=nope");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(sb_str(&r.body), "class=\"error\""));
    assert_non_null(strstr(sb_str(&r.body), "value=\"&lt;b&gt;ada\""));
    reply_free(&r);

    /* Good password: 302 to the redirect URI with code and state. */
    form(&r, "/services/oauth2/authorize",
         "response_type=code&client_id=test-client&redirect_uri=http%3A%2F%2Flocalhost%3A1717%2Fcb"
         "&state=a+b%26c&username=ada%40auth.test&password=p%26ss+w%2Brd%21");
    char code[AUTH_TOKEN_MAX], st[64], loc[2048];
    location_param(&r, "code", code, sizeof code);
    location_param(&r, "state", st, sizeof st);
    assert_string_equal(st, "a%20b%26c");
    header(&r, "Location", loc, sizeof loc);
    assert_int_equal(strncmp(loc, "http://localhost:1717/cb?code=", 30), 0);
    reply_free(&r);

    /* Exchange the code: access + refresh token. */
    char body[1024];
    snprintf(body, sizeof body,
             "grant_type=authorization_code&client_id=test-client&client_secret=test-secret"
             "&code=%s&redirect_uri=http%%3A%%2F%%2Flocalhost%%3A1717%%2Fcb",
             code);
    form(&r, "/services/oauth2/token", body);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    char access[AUTH_TOKEN_MAX], refresh[AUTH_TOKEN_MAX];
    snprintf(access, sizeof access, "%s", jstr(j, "access_token"));
    snprintf(refresh, sizeof refresh, "%s", jstr(j, "refresh_token"));
    assert_memory_equal(refresh, "5Aep", 4);
    json_decref(j);
    reply_free(&r);
    /* The code is spent. */
    expect_oauth_error(body, 400, "invalid_grant", "invalid authorization code");

    /* Refresh (no secret, as jsforce may send it). */
    snprintf(body, sizeof body, "grant_type=refresh_token&client_id=test-client&refresh_token=%s",
             refresh);
    form(&r, "/services/oauth2/token", body);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    char access2[AUTH_TOKEN_MAX];
    snprintf(access2, sizeof access2, "%s", jstr(j, "access_token"));
    assert_null(json_object_get(j, "refresh_token"));
    json_decref(j);
    reply_free(&r);
    assert_int_equal(auth_lookup(e2e.auth, access2, NULL), 0);
    /* Another app cannot use it. */
    snprintf(body, sizeof body, "grant_type=refresh_token&client_id=plain-client&refresh_token=%s",
             refresh);
    expect_oauth_error(body, 400, "invalid_grant", "expired access/refresh token");

    /* Revoking the refresh token ends it and every session that came with it. */
    snprintf(body, sizeof body, "token=%s", refresh);
    form(&r, "/services/oauth2/revoke", body);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    reply_free(&r);
    assert_int_equal(auth_lookup(e2e.auth, access, NULL), -1);
    assert_int_equal(auth_lookup(e2e.auth, access2, NULL), -1);
    snprintf(body, sizeof body, "grant_type=refresh_token&client_id=test-client&refresh_token=%s",
             refresh);
    expect_oauth_error(body, 400, "invalid_grant", "expired access/refresh token");
}

static void
e2e_authorize_errors(void **state)
{
    (void)state;
    reply r;
    req(&r, "GET",
        "/services/oauth2/authorize?response_type=code&client_id=nope"
        "&redirect_uri=http%3A%2F%2Fx%2Fcb",
        NULL, "", NULL);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(sb_str(&r.body), "invalid_client_id"));
    reply_free(&r);
    /* A redirect URI that could split the Location header is refused outright. */
    req(&r, "GET",
        "/services/oauth2/authorize?response_type=code&client_id=test-client"
        "&redirect_uri=http%3A%2F%2Fx%2Fcb%0D%0AX-Evil%3A%201",
        NULL, "", NULL);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(sb_str(&r.body), "redirect_uri_mismatch"));
    reply_free(&r);
    /* Unsupported response type: back to the client with an error. */
    req(&r, "GET",
        "/services/oauth2/authorize?response_type=id_token&client_id=test-client"
        "&redirect_uri=http%3A%2F%2Fx%2Fcb&state=z",
        NULL, "", NULL);
    char err[128];
    location_param(&r, "error", err, sizeof err);
    assert_string_equal(err, "unsupported_response_type");
    reply_free(&r);
    /* The user-agent flow returns the session in the fragment. */
    form(&r, "/services/oauth2/authorize",
         "response_type=token&client_id=test-client&redirect_uri=http%3A%2F%2Fx%2Fcb"
         "&username=bob%40auth.test&password=bobpw");
    char loc[2048];
    assert_int_equal(r.status, 302);
    header(&r, "Location", loc, sizeof loc);
    assert_int_equal(strncmp(loc, "http://x/cb#access_token=", 25), 0);
    reply_free(&r);
}

static void
e2e_revoke_errors(void **state)
{
    (void)state;
    reply r;
    form(&r, "/services/oauth2/revoke", "token=nope");
    assert_int_equal(r.status, 400);
    assert_string_equal(sb_str(&r.body), "error=invalid_token&error_description=invalid%20token");
    reply_free(&r);
    form(&r, "/services/oauth2/revoke", "");
    assert_int_equal(r.status, 400);
    assert_int_equal(strncmp(sb_str(&r.body), "error=invalid_request&", 22), 0);
    reply_free(&r);
}

static void
soap_post(reply *r, const char *path, const char *xml)
{
    req(r, "POST", path, "text/xml", "SOAPAction: \"\"\r\n", xml);
}

static void
e2e_soap_login_logout(void **state)
{
    (void)state;
    reply r;
    soap_post(&r, "/services/Soap/u/59.0",
              "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Header/>"
              "<se:Body><login xmlns=\"urn:partner.soap.sforce.com\">"
              "<username>ada@auth.test</username><password>p&amp;ss w+rd!</password></login>"
              "</se:Body></se:Envelope>");
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_string_equal(header(&r, "Content-Type", ct, sizeof ct), "text/xml;charset=UTF-8");
    const char *b = sb_str(&r.body);
    char want[512];
    const char *org = store_org_id(e2e.st);
    snprintf(want, sizeof want, "<serverUrl>%s/services/Soap/u/59.0/%.15s</serverUrl>",
             e2e.base_url, org);
    assert_non_null(strstr(b, want));
    snprintf(want, sizeof want, "<organizationId>%s</organizationId>", org);
    assert_non_null(strstr(b, want));
    assert_non_null(strstr(b, "<passwordExpired>false</passwordExpired>"));
    assert_non_null(strstr(b, "<userFullName>Ada Lovelace</userFullName>"));
    assert_non_null(strstr(b, "<sessionSecondsValid>7200</sessionSecondsValid>"));
    const char *sid = strstr(b, "<sessionId>");
    assert_non_null(sid);
    char token[AUTH_TOKEN_MAX];
    snprintf(token, sizeof token, "%.*s", (int)strcspn(sid + 11, "<"), sid + 11);
    reply_free(&r);
    lf_session s;
    assert_int_equal(auth_lookup(e2e.auth, token, &s), 0);
    assert_string_equal(s.client_id, "");

    char xml[1024];
    snprintf(xml, sizeof xml,
             "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Header>"
             "<SessionHeader xmlns=\"urn:partner.soap.sforce.com\"><sessionId>%s</sessionId>"
             "</SessionHeader></se:Header><se:Body><logout xmlns=\"urn:partner.soap.sforce.com\"/>"
             "</se:Body></se:Envelope>",
             token);
    soap_post(&r, "/services/Soap/u/59.0", xml);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(sb_str(&r.body), "<logoutResponse/>"));
    reply_free(&r);
    assert_int_equal(auth_lookup(e2e.auth, token, NULL), -1);
    soap_post(&r, "/services/Soap/u/59.0", xml);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(sb_str(&r.body), "<faultcode>sf:INVALID_SESSION_ID</faultcode>"));
    reply_free(&r);
}

static void
e2e_soap_faults(void **state)
{
    (void)state;
    reply r;
    soap_post(&r, "/services/Soap/u/59.0",
              "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Body>"
              "<login xmlns=\"urn:partner.soap.sforce.com\"><username>ada@auth.test</username>"
              "<password>wrong</password></login></se:Body></se:Envelope>");
    assert_int_equal(r.status, 500);
    const char *b = sb_str(&r.body);
    assert_non_null(strstr(b, "<faultcode>sf:INVALID_LOGIN</faultcode>"));
    assert_non_null(strstr(b, "<faultstring>INVALID_LOGIN: Invalid username, password, security "
                              "token; or user locked out.</faultstring>"));
    assert_non_null(strstr(b, "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"));
    reply_free(&r);
    static const char *const bad[] = {
        "",
        "<oops",
        "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
        "<a>&e;</a>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        soap_post(&r, "/services/Soap/u/59.0", bad[i]);
        assert_int_equal(r.status, 500);
        assert_non_null(strstr(sb_str(&r.body), "<faultcode>soapenv:Client</faultcode>"));
        assert_null(strstr(sb_str(&r.body), "root:"));
        reply_free(&r);
    }
    soap_post(&r, "/services/Soap/u/latest", "<x/>");
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(sb_str(&r.body), "UNSUPPORTED_API_VERSION"));
    reply_free(&r);
}

static void
e2e_identity(void **state)
{
    (void)state;
    json_t *tok;
    char token[AUTH_TOKEN_MAX];
    password_login(token, &tok);
    char path[600], hdr[300];
    const char *id = jstr(tok, "id");
    snprintf(path, sizeof path, "%s?format=json&oauth_token=%s", id + strlen(e2e.base_url), token);
    reply r;
    req(&r, "GET", path, NULL, "", NULL);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(jstr(j, "id"), id);
    assert_string_equal(jstr(j, "username"), "ada@auth.test");
    assert_string_equal(jstr(j, "display_name"), "Ada Lovelace");
    assert_string_equal(jstr(j, "email"), "ada@auth.test");
    assert_string_equal(jstr(j, "organization_id"), store_org_id(e2e.st));
    assert_string_equal(jstr(j, "user_type"), "STANDARD");
    assert_string_equal(jstr(j, "language"), "en_US");
    char want[300];
    snprintf(want, sizeof want, "%s/services/data/v{version}/", e2e.base_url);
    assert_string_equal(jstr(json_object_get(j, "urls"), "rest"), want);
    assert_non_null(json_object_get(json_object_get(j, "photos"), "picture"));
    json_decref(j);
    reply_free(&r);

    /* No token, a bad token, someone else's id, another org. */
    req(&r, "GET", id + strlen(e2e.base_url), NULL, "", NULL);
    assert_int_equal(r.status, 403);
    assert_string_equal(sb_str(&r.body), "Missing_OAuth_Token");
    reply_free(&r);
    req(&r, "GET", id + strlen(e2e.base_url), NULL, "Authorization: Bearer 00Dx!y\r\n", NULL);
    assert_int_equal(r.status, 403);
    assert_string_equal(sb_str(&r.body), "Bad_OAuth_Token");
    reply_free(&r);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", token);
    const lf_user *bob = store_user_by_name(e2e.st, "bob@auth.test");
    assert_non_null(bob);
    snprintf(path, sizeof path, "/id/%s/%s", store_org_id(e2e.st), bob->id);
    req(&r, "GET", path, NULL, hdr, NULL);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    snprintf(path, sizeof path, "/id/00D0K0000000001/%s", bob->id);
    req(&r, "GET", path, NULL, hdr, NULL);
    assert_int_equal(r.status, 403);
    assert_string_equal(sb_str(&r.body), "Wrong_Org");
    reply_free(&r);

    /* userinfo: header only. */
    req(&r, "GET", "/services/oauth2/userinfo", NULL, hdr, NULL);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_string_equal(jstr(j, "sub"), id);
    assert_string_equal(jstr(j, "preferred_username"), "ada@auth.test");
    json_decref(j);
    reply_free(&r);
    json_decref(tok);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_access_token_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_is_not_a_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_refresh_cascades, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_single_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_pkce, setup, teardown),
        cmocka_unit_test(test_signature_known_answer),
        cmocka_unit_test(test_parse_authorization),
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_soap_jsforce_login),
        cmocka_unit_test(test_soap_simple_salesforce_login),
        cmocka_unit_test(test_soap_logout),
        cmocka_unit_test(test_soap_malformed),
        cmocka_unit_test(test_soap_xxe),
        cmocka_unit_test(test_soap_billion_laughs),
        cmocka_unit_test(test_soap_limits),
        /* end to end, against the server the group setup starts */
        cmocka_unit_test(e2e_password_grant),
        cmocka_unit_test(e2e_token_errors),
        cmocka_unit_test(e2e_client_credentials),
        cmocka_unit_test(e2e_unauthorized),
        cmocka_unit_test(e2e_authorize_code_refresh_revoke),
        cmocka_unit_test(e2e_authorize_errors),
        cmocka_unit_test(e2e_revoke_errors),
        cmocka_unit_test(e2e_soap_login_logout),
        cmocka_unit_test(e2e_soap_faults),
        cmocka_unit_test(e2e_identity),
    };
    log_set_level(LOG_WARN);
    return cmocka_run_group_tests(tests, e2e_setup, e2e_teardown);
}
