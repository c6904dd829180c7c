"""localforce accepts what Salesforce accepts, as clients nobody here wrote send it.

Issue 14: simple-salesforce posts to `sobjects/Teacher__c/` (a trailing slash);
the Salesforce CLI keeps its instance URL with a trailing slash and so calls
`//services/data/...`, and its `sf data query` asks `query?q=...&columns=true`
for the query's column metadata; a custom object's record created without a Name
is named by its Id. Each test here failed against localforce before the fix.
"""
import json
import socket
import urllib.parse

import pytest

V = "59.0"


def call(sf, method, path, body=None, headers=None):
    """One raw request to path (sent exactly as written); (status, parsed JSON or text)."""
    if sf.token is None:
        sf.login()
    hdrs = {"Authorization": f"Bearer {sf.token}", "Accept": "application/json"}
    hdrs.update(headers or {})
    status, _, text = sf._http(method, sf.instance_url + path, body, hdrs)
    try:
        return status, json.loads(text) if text.strip() else None
    except ValueError:
        return status, text


def q(soql):
    return urllib.parse.quote(soql, safe="")


def raw_request(localforce, request_line, timeout=30):
    """Send one HTTP/1.1 request line by hand (urllib would tidy the path); the status,
    or None when the server closed the connection without answering."""
    host, port = localforce.url.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(f"{request_line}\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1."):
        return None
    return int(data.split(b" ", 2)[1])


# ----- trailing slashes --------------------------------------------------------------------


def test_trailing_slash_is_accepted_on_every_rest_path(sf):
    base = f"/services/data/v{V}"
    # simple-salesforce's create: POST sobjects/Teacher__c/
    st, created = call(sf, "POST", f"{base}/sobjects/Teacher__c/", {"First_Name__c": "Slash"})
    assert st == 201, created
    tid = created["id"]
    st, rec = call(sf, "GET", f"{base}/sobjects/Teacher__c/{tid}/")
    assert (st, rec["First_Name__c"]) == (200, "Slash"), rec
    st, body = call(sf, "PATCH", f"{base}/sobjects/Teacher__c/{tid}/", {"Years__c": 3})
    assert st == 204, body
    st, rec = call(sf, "GET", f"{base}/sobjects/Teacher__c/{tid}/?fields=Years__c")
    assert (st, rec["Years__c"]) == (200, 3), rec
    for path in (f"{base}/sobjects/Teacher__c/", f"{base}/sobjects/Teacher__c/describe/",
                 f"{base}/sobjects/", f"{base}/", f"{base}/limits/"):
        st, body = call(sf, "GET", path)
        assert st == 200, (path, body)
    soql = f"SELECT Id FROM Teacher__c WHERE Id = '{tid}'"
    st, res = call(sf, "GET", f"{base}/query/?q={q(soql)}")
    assert (st, res["totalSize"]) == (200, 1), res
    # upsert by external id, and a collection, with the slash too
    st, up = call(sf, "PATCH", f"{base}/sobjects/Teacher__c/Employee_Number__c/E-SLASH/",
                  {"First_Name__c": "Ext"})
    assert (st, up["created"]) == (201, True), up
    st, coll = call(sf, "POST", f"{base}/composite/sobjects/",
                    {"records": [{"attributes": {"type": "Teacher__c"}, "First_Name__c": "C"}]})
    assert st == 200 and coll[0]["success"], coll
    st, body = call(sf, "DELETE", f"{base}/sobjects/Teacher__c/{tid}/")
    assert st == 204, body
    # the versions list, which needs no session
    st, versions = call(sf, "GET", "/services/data/")
    assert st == 200 and any(v["version"] == V for v in versions), versions


def test_normalized_paths_still_refuse_unknown_paths_and_methods(sf):
    base = f"/services/data/v{V}"
    st, body = call(sf, "GET", f"{base}/sobjects/Teacher__c/a/b/c/d/")
    assert (st, body[0]["errorCode"]) == (404, "NOT_FOUND"), body
    st, body = call(sf, "PUT", f"{base}/sobjects/Teacher__c/", {"First_Name__c": "x"})
    assert (st, body[0]["errorCode"]) == (405, "METHOD_NOT_ALLOWED"), body
    st, body = call(sf, "GET", "/services/nothing//here/")
    assert st == 404, body


# ----- doubled slashes ---------------------------------------------------------------------


def test_doubled_slashes_are_collapsed_as_salesforce_does(localforce, sf):
    # The Salesforce CLI's instance URL ends in '/', so every call starts with '//'.
    st, res = call(sf, "GET", f"//services/data/v{V}/query?q={q('SELECT Id FROM Account')}")
    assert st == 200 and res["totalSize"] >= 1, res
    st, created = call(sf, "POST", f"//services/data/v{V}//sobjects///Teacher__c",
                       {"First_Name__c": "Doubled"})
    assert st == 201, created
    st, rec = call(sf, "GET", f"/services//data/v{V}/sobjects/Teacher__c//{created['id']}//")
    assert (st, rec["First_Name__c"]) == (200, "Doubled"), rec
    # logging in through the doubled path works too (sf org login uses the instance URL)
    form = urllib.parse.urlencode({
        "grant_type": "password", "client_id": localforce.client_id,
        "client_secret": localforce.client_secret,
        "username": localforce.username, "password": localforce.password})
    st, _, text = sf._http("POST", sf.instance_url + "//services/oauth2/token", form,
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200 and "access_token" in json.loads(text), text


@pytest.mark.parametrize("target", [
    "/", "//", "/" * 5000, "/services/data/v59.0/sobjects%2FAccount",
    "/%2F%2F%2F", "/services/" + "x/" * 3000, "/" + "a" * 100000,
    "/services/data/v59.0/sobjects/Account/" + "%2F" * 4000,
])
def test_odd_paths_are_answered_without_harm(localforce, target):
    status = raw_request(localforce, f"GET {target} HTTP/1.1")
    # 404 (or 401 where a route matches but no session is given), 414 from the HTTP
    # library for a path too long to read, or a closed connection: never a crash.
    assert status in (None, 401, 404, 414, 431), status
    assert raw_request(localforce, "GET /services/data/ HTTP/1.1") == 200


# ----- columns=true ------------------------------------------------------------------------


def cli_columns(meta):
    """The column names @salesforce/plugin-data's `sf data query` derives from columnMetadata
    (retrieveColumns / recursivelyFindColumns in src/commands/data/query.ts)."""
    def sub(c):
        kids = c["joinColumns"]
        return [f"{c['columnName']}.{'.'.join(sub(k))}" for k in kids] if kids else [c["columnName"]]
    out = []
    for c in meta["columnMetadata"]:
        assert isinstance(c["columnName"], str)
        if c["joinColumns"]:
            out += [f"{c['columnName']}.{s}" for k in c["joinColumns"] for s in sub(k)]
        elif c["aggregate"]:
            out.append(c["displayName"])
        else:
            out.append(c["columnName"])
    return out


def field_col(name, apex, *, custom=False, insertable=True, updatable=True, text=False,
              number=False, boolean=False):
    return {"aggregate": False, "apexType": apex, "booleanType": boolean, "columnName": name,
            "custom": custom, "displayName": name, "foreignKeyName": None,
            "insertable": insertable, "joinColumns": [], "numberType": number,
            "textType": text, "updatable": updatable}


def rel_col(name, fk, join, custom=False):
    return {"aggregate": False, "apexType": None, "booleanType": False, "columnName": name,
            "custom": custom, "displayName": name, "foreignKeyName": fk, "insertable": False,
            "joinColumns": join, "numberType": False, "textType": False, "updatable": False}


def test_columns_true_answers_the_column_metadata_the_cli_reads(sf):
    soql = ("SELECT Id, Name, Email__c, Active__c, Years__c, Salary__c, Hire_Date__c, "
            "School__r.Name, Owner.Name, School__r.Owner.Email FROM Teacher__c")
    st, meta = call(sf, "GET", f"/services/data/v{V}/query?q={q(soql)}&columns=true")
    assert st == 200, meta
    assert list(meta) == ["columnMetadata", "entityName", "groupBy", "idSelected", "keyPrefix"]
    assert meta["entityName"] == "Teacher__c"
    assert (meta["groupBy"], meta["idSelected"]) == (False, True)
    st, desc = call(sf, "GET", f"/services/data/v{V}/sobjects/Teacher__c/describe")
    assert meta["keyPrefix"] == desc["keyPrefix"]
    cols = meta["columnMetadata"]
    assert cols[0] == field_col("Id", "Id", insertable=False, updatable=False)
    assert cols[1] == field_col("Name", "String", text=True)
    assert cols[2] == field_col("Email__c", "String", custom=True, text=True)
    assert cols[3] == field_col("Active__c", "Boolean", custom=True, boolean=True)
    assert cols[4] == field_col("Years__c", "Integer", custom=True, number=True)
    assert cols[5] == field_col("Salary__c", "Decimal", custom=True, number=True)
    assert cols[6] == field_col("Hire_Date__c", "Date", custom=True)
    assert cols[7] == rel_col("School__r", "School__c", [
        field_col("Name", "String", text=True)], custom=True)
    assert cols[8] == rel_col("Owner", "OwnerId", [
        field_col("Name", "String", text=True, insertable=False, updatable=False)])
    owner = cols[9]["joinColumns"][0]
    assert (cols[9]["columnName"], owner["columnName"], owner["foreignKeyName"]) == \
        ("School__r", "Owner", "OwnerId")
    assert [c["columnName"] for c in owner["joinColumns"]] == ["Email"]
    assert cli_columns(meta) == ["Id", "Name", "Email__c", "Active__c", "Years__c", "Salary__c",
                                 "Hire_Date__c", "School__r.Name", "Owner.Name",
                                 "School__r.Owner.Email"]


def test_columns_true_without_id_count_queryall_and_errors(sf):
    st, meta = call(sf, "GET", f"/services/data/v{V}/query/?q={q('SELECT Name FROM Account')}&columns=true")
    assert st == 200 and meta["idSelected"] is False and meta["keyPrefix"] == "001", meta
    assert cli_columns(meta) == ["Name"]
    st, meta = call(sf, "GET", f"/services/data/v{V}/query?q={q('SELECT COUNT() FROM Account')}&columns=true")
    assert (st, meta["columnMetadata"], meta["entityName"]) == (200, [], "Account"), meta
    soql = q("SELECT Id, IsDeleted FROM Account")
    st, meta = call(sf, "GET", f"/services/data/v{V}/queryAll?q={soql}&columns=true")
    assert st == 200 and cli_columns(meta) == ["Id", "IsDeleted"], meta
    st, err = call(sf, "GET", f"/services/data/v{V}/query?q={q('SELECT Nope__c FROM Account')}&columns=true")
    assert (st, err[0]["errorCode"]) == (400, "INVALID_FIELD"), err
    # columns=false, or absent, is an ordinary query
    st, res = call(sf, "GET", f"/services/data/v{V}/query?q={q('SELECT Id FROM Account')}&columns=false")
    assert st == 200 and "records" in res, res


# ----- Name defaults to the Id ---------------------------------------------------------------


def test_custom_record_created_without_name_is_named_by_its_id(sf):
    base = f"/services/data/v{V}"
    st, created = call(sf, "POST", f"{base}/sobjects/Teacher__c", {"First_Name__c": "NoName"})
    assert st == 201, created
    tid = created["id"]
    st, rec = call(sf, "GET", f"{base}/sobjects/Teacher__c/{tid}?fields=Name")
    assert rec["Name"] == tid[:15], rec
    # a given Name is kept; null is the same as absent
    st, named = call(sf, "POST", f"{base}/sobjects/Teacher__c", {"Name": "Ada L", "First_Name__c": "A"})
    st, rec = call(sf, "GET", f"{base}/sobjects/Teacher__c/{named['id']}?fields=Name")
    assert rec["Name"] == "Ada L", rec
    st, nulled = call(sf, "POST", f"{base}/sobjects/Teacher__c", {"Name": None, "First_Name__c": "N"})
    st, rec = call(sf, "GET", f"{base}/sobjects/Teacher__c/{nulled['id']}?fields=Name")
    assert rec["Name"] == nulled["id"][:15], rec
    # every way of creating: upsert, collections, bulk admin load
    st, up = call(sf, "PATCH", f"{base}/sobjects/Teacher__c/Employee_Number__c/E-NONAME",
                  {"First_Name__c": "Up"})
    st, coll = call(sf, "POST", f"{base}/composite/sobjects",
                    {"records": [{"attributes": {"type": "Teacher__c"}, "First_Name__c": "C"}]})
    ids = [up["id"], coll[0]["id"]]
    soql = "SELECT Id, Name FROM Teacher__c WHERE Id IN (%s)" % ",".join(f"'{i}'" for i in ids)
    st, res = call(sf, "GET", f"{base}/query?q={q(soql)}")
    assert sorted((r["Id"][:15], r["Name"]) for r in res["records"]) == sorted((i[:15], i[:15]) for i in ids)
    # an update leaves the Name it was given
    st, _ = call(sf, "PATCH", f"{base}/sobjects/Teacher__c/{tid}", {"Years__c": 1})
    st, rec = call(sf, "GET", f"{base}/sobjects/Teacher__c/{tid}?fields=Name")
    assert rec["Name"] == tid[:15], rec


def test_only_custom_objects_are_named_by_their_id(sf):
    # Salesforce refuses an Account without a Name; localforce does when the org file
    # declares Name required, and otherwise leaves it null: never the Id.
    st, created = call(sf, "POST", f"/services/data/v{V}/sobjects/Account", {"Industry": "Education"})
    assert st == 201, created
    st, rec = call(sf, "GET", f"/services/data/v{V}/sobjects/Account/{created['id']}?fields=Name")
    assert rec["Name"] is None, rec


def test_a_required_name_is_still_defaulted_to_the_id_on_create(sf):
    # In Salesforce a custom object's Name is never nillable, yet an API create without it
    # succeeds, named by the Id. Updating it to null is refused.
    sf.add_object("Room__c", fields={"Name": {"type": "string", "length": 80, "required": True},
                                     "Floor__c": {"type": "int"}})
    base = f"/services/data/v{V}/sobjects/Room__c"
    st, created = call(sf, "POST", base, {"Floor__c": 2})
    assert st == 201, created
    st, rec = call(sf, "GET", f"{base}/{created['id']}?fields=Name")
    assert rec["Name"] == created["id"][:15], rec
    st, err = call(sf, "PATCH", f"{base}/{created['id']}", {"Name": None})
    assert (st, err[0]["errorCode"]) == (400, "REQUIRED_FIELD_MISSING"), err
