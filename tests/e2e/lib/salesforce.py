"""A small Salesforce REST client (urllib) for the tests' side of the org.

It logs in with the OAuth password grant, creates, updates, deletes and
queries records, and calls localforce's /admin API (add fields, load many
records, faults, session expiry). It speaks API version 59.0 by default, while
sfbridge speaks 60.0: fault rules limited to /services/data/v60.0/* hit
sfbridge and leave the tests' own requests alone.
"""
import json
import urllib.error
import urllib.parse
import urllib.request

TEST_API_VERSION = "59.0"


class SfError(Exception):
    def __init__(self, method, url, status, body):
        self.status = status
        self.body = body
        super().__init__(f"{method} {url} -> {status}: {body[:2000] if isinstance(body, str) else body}")

    @property
    def error_code(self):
        try:
            data = json.loads(self.body)
            if isinstance(data, list) and data:
                return data[0].get("errorCode")
            if isinstance(data, dict):
                return data.get("error") or data.get("errorCode")
        except (ValueError, AttributeError):
            pass
        return None


class SfClient:
    def __init__(self, base_url, client_id, client_secret, username, password,
                 api_version=TEST_API_VERSION, timeout=120):
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.password = password
        self.api_version = api_version
        self.timeout = timeout
        self.token = None
        self.instance_url = None
        self.identity_url = None

    # -- plumbing ----------------------------------------------------------
    def _http(self, method, url, body=None, headers=None):
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            if isinstance(body, (bytes, str)):
                data = body.encode() if isinstance(body, str) else body
            else:
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers or {}), err.read().decode("utf-8", "replace")

    def login(self):
        form = urllib.parse.urlencode({
            "grant_type": "password", "client_id": self.client_id, "client_secret": self.client_secret,
            "username": self.username, "password": self.password,
        })
        url = self.base_url + "/services/oauth2/token"
        status, _, text = self._http("POST", url, form,
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise SfError("POST", url, status, text)
        tok = json.loads(text)
        self.token = tok["access_token"]
        self.instance_url = tok.get("instance_url", self.base_url).rstrip("/")
        self.identity_url = tok.get("id")
        return tok

    @property
    def org_id(self):
        """The org's 18-character id, from the identity URL."""
        if not self.identity_url:
            self.login()
        return self.identity_url.rstrip("/").split("/")[-2]

    def request(self, method, path, body=None, headers=None, expect=(200, 201, 204)):
        """A REST call under /services/data/vNN.N (path relative to it, or absolute
        from /services/...). Logs in again once on INVALID_SESSION_ID. Returns
        the parsed JSON body (None when empty)."""
        if self.token is None:
            self.login()
        if path.startswith("/services/"):
            url = self.instance_url + path
        else:
            url = f"{self.instance_url}/services/data/v{self.api_version}/{path.lstrip('/')}"
        for attempt in (1, 2):
            hdrs = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
            hdrs.update(headers or {})
            status, _, text = self._http(method, url, body, hdrs)
            if status == 401 and attempt == 1:
                self.login()
                continue
            break
        if status not in expect:
            raise SfError(method, url, status, text)
        return json.loads(text) if text.strip() else None

    # -- streaming ---------------------------------------------------------
    def cometd_subscribe_error(self, channel, replay_id):
        """Handshake over CometD and subscribe to channel from replay_id; the
        server's error text when it refuses the subscription, else None. The
        client disconnects either way."""
        if self.token is None:
            self.login()
        url = f"{self.instance_url}/cometd/{self.api_version}"
        hdrs = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

        def post(msg):
            status, _, text = self._http("POST", url, [msg], hdrs)
            if status != 200:
                raise SfError("POST", url, status, text)
            return json.loads(text)[0]
        hs = post({"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]})
        if not hs.get("successful"):
            raise SfError("POST", url, 200, json.dumps(hs))
        cid = hs["clientId"]
        try:
            sub = post({"channel": "/meta/subscribe", "clientId": cid, "subscription": channel,
                        "ext": {"replay": {channel: replay_id}}})
            return None if sub.get("successful") else str(sub.get("error"))
        finally:
            post({"channel": "/meta/disconnect", "clientId": cid})

    # -- records -----------------------------------------------------------
    def describe(self, obj):
        return self.request("GET", f"sobjects/{obj}/describe")

    def field_types(self, obj):
        """{field name: describe type}."""
        return {f["name"]: f["type"] for f in self.describe(obj)["fields"]}

    def create(self, obj, fields):
        res = self.request("POST", f"sobjects/{obj}", fields)
        return res["id"]

    def update(self, obj, rec_id, fields):
        self.request("PATCH", f"sobjects/{obj}/{rec_id}", fields)

    def delete(self, obj, rec_id):
        self.request("DELETE", f"sobjects/{obj}/{rec_id}")

    def get(self, obj, rec_id, fields=None):
        path = f"sobjects/{obj}/{rec_id}"
        if fields:
            path += "?fields=" + ",".join(fields)
        return _strip(self.request("GET", path))

    def _query(self, resource, soql):
        res = self.request("GET", f"{resource}?q=" + urllib.parse.quote(soql))
        records = [_strip(r) for r in res["records"]]
        while not res.get("done", True):
            res = self.request("GET", res["nextRecordsUrl"])
            records.extend(_strip(r) for r in res["records"])
        return records

    def query(self, soql):
        """Every record the query returns (live records only), all pages."""
        return self._query("query", soql)

    def query_all(self, soql):
        """Same with queryAll: deleted records too."""
        return self._query("queryAll", soql)

    def count(self, obj, where=None):
        soql = f"SELECT COUNT() FROM {obj}" + (f" WHERE {where}" if where else "")
        return self.request("GET", "query?q=" + urllib.parse.quote(soql))["totalSize"]

    def ids(self, obj, where=None):
        soql = f"SELECT Id FROM {obj}" + (f" WHERE {where}" if where else "") + " ORDER BY Id"
        return [r["Id"] for r in self.query(soql)]

    # Collections: up to 200 records per request, all or none.
    def create_many(self, obj, records):
        ids = []
        for chunk in _chunks(records, 200):
            body = {"allOrNone": True,
                    "records": [{"attributes": {"type": obj}, **r} for r in chunk]}
            for res in self.request("POST", "composite/sobjects", body):
                if not res.get("success"):
                    raise AssertionError(f"create_many failed: {res}")
                ids.append(res["id"])
        return ids

    def update_many(self, obj, records):
        """records: dicts with Id and the fields to change."""
        for chunk in _chunks(records, 200):
            body = {"allOrNone": True,
                    "records": [{"attributes": {"type": obj}, **r} for r in chunk]}
            for res in self.request("PATCH", "composite/sobjects", body):
                if not res.get("success"):
                    raise AssertionError(f"update_many failed: {res}")

    def delete_many(self, ids):
        for chunk in _chunks(list(ids), 200):
            res = self.request("DELETE", "composite/sobjects?allOrNone=true&ids=" + ",".join(chunk))
            for r in res:
                if not r.get("success"):
                    raise AssertionError(f"delete_many failed: {r}")

    def bulk_query_jobs(self):
        """The Bulk API 2.0 query jobs of the org (GET jobs/query)."""
        res = self.request("GET", "jobs/query")
        return res.get("records", []) if isinstance(res, dict) else []

    def bulk_ingest_jobs(self):
        """The Bulk API 2.0 ingest jobs of the org (GET jobs/ingest)."""
        res = self.request("GET", "jobs/ingest")
        return res.get("records", []) if isinstance(res, dict) else []

    # -- localforce's /admin API (no session needed) -------------------------
    def admin(self, method, path, body=None, expect=(200, 201, 204)):
        url = self.base_url + "/admin/" + path.lstrip("/")
        status, _, text = self._http(method, url, body)
        if status not in expect:
            raise SfError(method, url, status, text)
        return json.loads(text) if text.strip() else None

    def health(self):
        return self.admin("GET", "health")

    def add_field(self, obj, name, ftype, **options):
        return self.admin("POST", f"objects/{obj}/fields", {"name": name, "type": ftype, **options})

    def add_object(self, name, **definition):
        return self.admin("POST", "objects", {"name": name, **definition})

    def undelete(self, obj, *ids):
        """Restore records from the recycle bin (localforce admin); the per-id results."""
        return self.admin("POST", f"objects/{obj}/undelete", {"ids": list(ids)})

    def load_records(self, obj, records, batch=10000, committed_ms_ago=None):
        """Insert many records fast (one transaction per batch); returns how many.
        committed_ms_ago: stamped that long ago, as a transaction that committed late."""
        n = 0
        q = f"?committed_ms_ago={committed_ms_ago}" if committed_ms_ago is not None else ""
        for chunk in _chunks(list(records), batch):
            n += self.admin("POST", f"objects/{obj}/records{q}", chunk)["loaded"]
        return n

    def set_faults(self, rules, **extra):
        """Replace the fault rules (see docs/localforce.md, /admin/faults)."""
        return self.admin("PUT", "faults", {"rules": rules, **extra})

    def fault_state(self):
        """{"parked": n, "delayed": n, "api_budget_remaining": n or None}."""
        return self.admin("GET", "faults")["state"]

    def clear_faults(self, release="run"):
        return self.admin("DELETE", "faults" + ("?release=drop" if release == "drop" else ""))

    def expire_sessions(self):
        """Every session issued so far is refused from now on (ours too: we log in again)."""
        self.admin("POST", "sessions/expire")


def _strip(rec):
    if isinstance(rec, dict):
        return {k: v for k, v in rec.items() if k != "attributes"}
    return rec


def _chunks(seq, n):
    seq = list(seq)
    for i in range(0, len(seq), n):
        yield seq[i:i + n]
