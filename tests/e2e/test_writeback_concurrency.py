"""Write-back with several collections in flight (issue 13, SFBRIDGE_WRITE_CONCURRENCY): they do
go out together, every row is written exactly once, upserts that share a unique identifier value
never travel together, and the limit halves when Salesforce pushes back. How fast is measured in
bench/ (bench/sfbridge-write-latency.sh), not here."""
import threading

from lib.wait import wait_for
from lib.writeback import App, map_rw

T = "teacher__c"
COMPOSITE = "/services/data/*/composite/*"


def _insert(database, n, prefix, key=None):
    with App(database) as app:
        app.execute(
            f"INSERT INTO salesforce.{T} (name, employee_number__c) "
            "SELECT %s || k, " + ("%s || k" if key is None else "%s") + " FROM generate_series(1, %s) k",
            (prefix, key if key is not None else prefix, n))


def _push_watching(sfbridge, sf, env):
    """`sfbridge push` while the most requests localforce held at once is noted."""
    most, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            most[0] = max(most[0], sf.fault_state()["delayed"])
            done.wait(0.02)

    t = threading.Thread(target=watch)
    t.start()
    try:
        r = sfbridge.run("push", env=env, check=False, timeout=300)
    finally:
        done.set()
        t.join()
    return r, most[0]


def test_collections_go_out_together_and_every_row_is_written_once(sfbridge, database, sf):
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c", "--fields", "Name,Employee_Number__c")
    sfbridge.run("load")
    before = sf.count("Teacher__c")
    _insert(database, 2000, "C-")  # ten collections
    sf.set_faults([{"path": COMPOSITE, "latency_ms": 400}])
    r, most = _push_watching(sfbridge, sf, {"SFBRIDGE_WRITE_CONCURRENCY": "4"})
    sf.clear_faults()
    assert r.returncode == 0, r.stderr
    assert most >= 2, f"at most {most} collection in flight at once"
    assert most <= 4, f"{most} in flight, more than SFBRIDGE_WRITE_CONCURRENCY=4"
    rows = database.query(f"SELECT sfid FROM salesforce.{T} WHERE name LIKE 'C-%'")
    assert len(rows) == 2000 and all(s for (s,) in rows)
    assert len({s for (s,) in rows}) == 2000
    assert sf.count("Teacher__c") == before + 2000


def test_one_at_a_time_when_so_configured(sfbridge, database, sf):
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c", "--fields", "Name,Employee_Number__c")
    sfbridge.run("load")
    _insert(database, 800, "S-")
    sf.set_faults([{"path": COMPOSITE, "latency_ms": 300}])
    r, most = _push_watching(sfbridge, sf, {"SFBRIDGE_WRITE_CONCURRENCY": "1"})
    sf.clear_faults()
    assert r.returncode == 0 and most == 1, (most, r.stderr)


def test_upserts_sharing_a_unique_identifier_never_travel_together(sfbridge, database, sf):
    """Two rows with one Employee_Number__c, 300 rows apart (two collections): sent at once,
    both upserts could create a record (or one fail on the duplicate); one after the other, the
    second updates the first's."""
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c", "--fields", "Name,Employee_Number__c", "--upsert-field", "Employee_Number__c")
    sfbridge.run("load")
    _insert(database, 1, "Twin A-", key="TWIN-1")
    _insert(database, 300, "U-")
    _insert(database, 1, "Twin B-", key="twin-1")  # the same to Salesforce: External IDs ignore case
    sf.set_faults([{"path": COMPOSITE, "latency_ms": 200}])
    r, most = _push_watching(sfbridge, sf, {"SFBRIDGE_WRITE_CONCURRENCY": "8"})
    sf.clear_faults()
    # localforce applies writes one at a time whatever arrives together, so the outcome alone
    # cannot show a race a real org would have: the collections must not have overlapped.
    assert most == 1, f"{most} collections of upserts sharing a key in flight at once"
    twins = sf.query("SELECT Id FROM Teacher__c WHERE Employee_Number__c = 'TWIN-1'")
    assert len(twins) == 1, twins
    # both rows are that one record to Salesforce; the table holds its sfid once: the later row
    # fails, naming the row that has it (the recording used to fail whole, the push exit 1)
    assert r.returncode == 0, r.stderr
    a = database.query_dicts(f"SELECT id, sfid, _hc_lastop FROM salesforce.{T} WHERE employee_number__c = 'TWIN-1'")[0]
    b = database.query_dicts(f"SELECT sfid, _hc_lastop, _hc_err FROM salesforce.{T} WHERE employee_number__c = 'twin-1'")[0]
    assert a["sfid"] == twins[0]["Id"] and a["_hc_lastop"] in ("INSERTED", "UPDATED"), a
    assert b["sfid"] is None and b["_hc_lastop"] == "FAILED", b
    assert "DUPLICATE_RECORD" in b["_hc_err"] and f"row {a['id']} of {T} already holds" in b["_hc_err"], b


def test_the_limit_halves_when_salesforce_pushes_back(sfbridge, database, sf):
    sfbridge.set(SFBRIDGE_BACKOFF_CAP_MS=10)  # the retries come at once
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c", "--fields", "Name,Employee_Number__c")
    sfbridge.run("load")
    before = sf.count("Teacher__c")
    _insert(database, 1600, "P-")
    sf.set_faults([{"path": COMPOSITE, "error_rate": 0.5, "status": 503}], seed=7)
    r = sfbridge.run("push", env={"SFBRIDGE_WRITE_CONCURRENCY": "8"}, check=False, timeout=300)
    assert r.returncode in (0, 1), r.stderr
    assert "collections in flight at most now (was 8)" in r.stderr, r.stderr
    sf.clear_faults()
    # the entries left waiting for a retry, until none is left
    wait_for(lambda: sfbridge.run("push", check=False, timeout=300).returncode == 0, timeout=120,
             what="every write done once Salesforce answers again")
    rows = database.query(f"SELECT sfid FROM salesforce.{T} WHERE name LIKE 'P-%'")
    assert all(s for (s,) in rows) and len({s for (s,) in rows}) == 1600
    assert sf.count("Teacher__c") == before + 1600
