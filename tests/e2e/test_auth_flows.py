"""Issue 14: the ways Salesforce admins connect, against localforce.

- JWT bearer flow (SF_JWT_KEY_FILE + SF_CLIENT_ID + SF_USERNAME): a login syncs a mapping; a wrong
  key, an expired assertion and an unknown client are refused with Salesforce's own errors, the
  connection goes NEED_AUTHENTICATION with one message naming the setting, and localforce sees one
  login attempt (no retry loop).
- Client credentials flow (SF_CLIENT_ID + SF_CLIENT_SECRET, no user): syncs; at
  login.salesforce.com it is refused before any request (Salesforce wants the My Domain URL).
- localforce over HTTPS (--tls-self-signed DIR): sfbridge trusts it through SF_CA_FILE and syncs;
  without SF_CA_FILE the certificate is refused with a message naming the setting.
- `sfbridge auth`: the web-server flow with PKCE against localforce's authorize page (a plain HTML
  form, posted as a browser posts it); the refresh token it stores is what `sfbridge run` logs in
  with.
"""
import html.parser
import json
import os
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from lib.paths import SCHOOL_ORG
from lib.sfbridge import wait_daemon

OTHER_USER = "other@school.test"


def _keypair(dirpath, name):
    """An RSA key (0600) and its self-signed certificate, as `openssl req -x509` makes them."""
    key, crt = dirpath / f"{name}.key", dirpath / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-sha256", "-nodes", "-days", "30", "-newkey", "rsa:2048",
                    "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={name}"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return key, crt


@pytest.fixture
def jwt_org(tmp_path):
    """The school org with a JWT certificate on its connected app (by file name, relative to the
    org file), its integration user pre-authorized, and a second user who is not."""
    keys = tmp_path / "keys"
    keys.mkdir()
    key, crt = _keypair(keys, "sfbridge")
    wrong_key, _ = _keypair(keys, "other")
    org = json.loads(SCHOOL_ORG.read_text())
    app = org["connected_apps"][0]
    app["jwt_cert"] = "keys/sfbridge.crt"
    app["preauthorized_users"] = [app["run_as"]]
    org["users"].append({"username": OTHER_USER, "password": "other-Pa55word"})
    path = tmp_path / "jwt-org.json"
    path.write_text(json.dumps(org))
    return {"org": path, "key": key, "wrong_key": wrong_key, "cert": crt}


def _jwt_settings(key):
    return {"SF_JWT_KEY_FILE": str(key), "SF_PASSWORD": None, "SF_CLIENT_SECRET": None}


def _sfbridge(sfbridge_factory, database, lf, settings):
    """An Sfbridge whose runs have settings (None removes the variable)."""
    sfb = sfbridge_factory(database.url, lf)
    sfb.set(**settings)
    return sfb


def _jwt_failures(lf):
    return sum(len(re.findall(r"jwt bearer login failed", p.read_text(errors="replace")))
               for p in lf.workdir.glob("localforce.err*"))


def _syncs_teachers(sfb, database, sf):
    sfb.init()
    sfb.add("Teacher__c", "--fields", "Name,Email__c")
    sfb.once()
    want = {r["Id"] for r in sf.query("SELECT Id FROM Teacher__c")}
    assert want, "the org has no teachers to sync"
    assert set(database.rows_by_sfid("teacher__c")) == want


def test_jwt_bearer_login_syncs_a_mapping(localforce_factory, sfbridge_factory, database, jwt_org):
    lf = localforce_factory(org=jwt_org["org"])
    sf = lf.client()
    sf.login()
    sfb = _sfbridge(sfbridge_factory, database, lf, _jwt_settings(jwt_org["key"]))
    _syncs_teachers(sfb, database, sf)
    assert _jwt_failures(lf) == 0
    assert "jwt-bearer grant" in lf.log(400), lf.log(400)


@pytest.mark.parametrize("case,env,lf_env,error,setting", [
    ("wrong key", {"SF_JWT_KEY_FILE": "wrong_key"}, {}, "invalid_grant: invalid assertion",
     "SF_JWT_KEY_FILE"),
    ("expired assertion", {}, {"LOCALFORCE_CLOCK_OFFSET_S": "600"},
     "invalid_grant: expired authorization code", "clock"),
    ("unknown client", {"SF_CLIENT_ID": "no-such-consumer-key"}, {},
     "invalid_client_id: client identifier invalid", "SF_CLIENT_ID"),
    ("user not pre-authorized", {"SF_USERNAME": OTHER_USER}, {},
     "invalid_grant: user hasn't approved this consumer", "SF_USERNAME"),
])
def test_a_refused_jwt_login_is_tried_once(localforce_factory, sfbridge_factory, database, jwt_org,
                                           case, env, lf_env, error, setting):
    lf = localforce_factory(org=jwt_org["org"], env=lf_env)
    sfb = sfbridge_factory(database.url, lf)
    sfb.init()                                  # with the password: the mapping exists
    sfb.add("Teacher__c", "--fields", "Name", "--poll", "3600")
    settings = _jwt_settings(jwt_org["key"])
    settings.update({k: (str(jwt_org[v]) if v in jwt_org else v) for k, v in env.items()})
    sfb.start(env=settings)
    wait_daemon(sfb, lambda: sfb.connection_state() == "NEED_AUTHENTICATION", timeout=30,
                what=f"NEED_AUTHENTICATION after a JWT login with {case}")
    time.sleep(12)                              # a retry loop would have tried again by now
    sfb.assert_running()
    assert _jwt_failures(lf) == 1, f"{_jwt_failures(lf)} JWT logins for one refusal\n{lf.log()}"
    conn = sfb.status_json()["connection"]
    assert error in conn["last_error"], conn
    assert setting in conn["last_error"], conn
    log = sfb.log(400)
    for secret in (jwt_org["key"].read_text().splitlines()[1], "eyJhbGciOiJSUzI1NiJ9"):
        assert secret not in log, f"a secret in the daemon's log:\n{log}"
    sfb.stop()


def test_client_credentials_flow_syncs(localforce, sfbridge_factory, database, sf):
    sfb = _sfbridge(sfbridge_factory, database, localforce, {"SF_USERNAME": None, "SF_PASSWORD": None})
    _syncs_teachers(sfb, database, sf)
    assert "client_credentials grant" in localforce.log(400)


def test_client_credentials_at_login_salesforce_com_is_refused_without_a_request(sfbridge):
    r = sfbridge.fails("init", env={"SF_USERNAME": None, "SF_PASSWORD": None,
                                    "SF_LOGIN_URL": "https://login.salesforce.com"})
    assert "My Domain" in r.stderr and "SF_LOGIN_URL" in r.stderr, r.stderr


def test_a_jwt_key_others_can_read_is_not_used(localforce_factory, sfbridge_factory, database, jwt_org):
    lf = localforce_factory(org=jwt_org["org"])
    os.chmod(jwt_org["key"], 0o644)
    sfb = _sfbridge(sfbridge_factory, database, lf, _jwt_settings(jwt_org["key"]))
    r = sfb.fails("init")
    assert "SF_JWT_KEY_FILE" in r.stderr and "chmod 600" in r.stderr, r.stderr
    assert _jwt_failures(lf) == 0


def test_https_with_sf_ca_file_syncs(localforce_factory, sfbridge_factory, database, tmp_path,
                                     monkeypatch):
    tls = tmp_path / "tls"
    lf = localforce_factory(args=["--tls-self-signed", str(tls)])
    assert lf.url.startswith("https://127.0.0.1:"), lf.url
    assert (tls / "localforce.key").stat().st_mode & 0o777 == 0o600
    ctx = ssl.create_default_context(cafile=str(tls / "localforce.crt"))   # the test's own client
    monkeypatch.setattr(urllib.request, "_opener",
                        urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx)))
    sf = lf.client()
    sf.login()
    assert sf.instance_url.startswith("https://"), sf.instance_url
    sfb = sfbridge_factory(database.url, lf, overrides={"SF_CA_FILE": str(tls / "localforce.crt")})
    _syncs_teachers(sfb, database, sf)
    # the pair is made once: a second localforce on the same folder serves the same certificate
    crt = (tls / "localforce.crt").read_text()
    lf2 = localforce_factory(args=["--tls-self-signed", str(tls)])
    assert (tls / "localforce.crt").read_text() == crt and lf2.url.startswith("https://")


def test_https_without_sf_ca_file_is_refused_clearly(localforce_factory, sfbridge_factory, database,
                                                     tmp_path):
    lf = localforce_factory(args=["--tls-self-signed", str(tmp_path / "tls")])
    sfb = sfbridge_factory(database.url, lf)
    r = sfb.fails("init")
    assert "certificate" in r.stderr and "SF_CA_FILE" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) <= 3, r.stderr



# -- sfbridge auth: the web-server flow with PKCE, driven as a browser drives localforce's page --
class _Form(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.action, self.fields = None, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def _read_authorize_url(proc, timeout=30):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        m = re.match(r"\s+(https?://\S+/services/oauth2/authorize\?\S+)", line)
        if m:
            return m.group(1)
    raise AssertionError("sfbridge auth printed no authorize URL:\n" + "".join(seen))


def test_sfbridge_auth_stores_a_refresh_token_that_run_uses(localforce, sfbridge_factory, database, sf,
                                                            tmp_path):
    creds = tmp_path / "private" / "credentials"
    sfb = _sfbridge(sfbridge_factory, database, localforce,
                    {"SFBRIDGE_CREDENTIALS": str(creds), "SF_USERNAME": None, "SF_PASSWORD": None})
    proc = subprocess.Popen([str(sfb.binary), "auth", "--port", "0", "--timeout", "60"], env=sfb.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _read_authorize_url(proc)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43, url
        callback = q["redirect_uri"][0]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", callback), callback
        # an answer with another state is not taken
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(callback + "?code=forged&state=other")
        assert bad.value.code == 400
        # the browser: the login page, then its form posted with the user's password
        form = _Form()
        form.feed(urllib.request.urlopen(url).read().decode())
        assert form.action == "/services/oauth2/authorize" and "code_challenge" in form.fields, form.fields
        form.fields.update(username=localforce.username, password=localforce.password)
        page = urllib.request.urlopen(localforce.url + form.action,
                                      urllib.parse.urlencode(form.fields).encode()).read().decode()
        assert "sfbridge is authorized" in page, page
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert str(creds) in out, out
    assert creds.stat().st_mode & 0o777 == 0o600
    token = re.search(r"^SF_REFRESH_TOKEN = (\S+)$", creds.read_text(), re.M).group(1)
    assert token not in out + err
    # sfbridge logs in with the stored token: no password anywhere
    _syncs_teachers(sfb, database, sf)
    log = localforce.log(400)
    assert "refresh_token grant" in log and "authorization_code grant" in log, log
    assert token not in sfb.log(400) + sfb.recent_output(5)
