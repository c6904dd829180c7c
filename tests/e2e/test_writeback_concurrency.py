"""Write-back with several collections in flight (issue 13, SFBRIDGE_WRITE_CONCURRENCY): they do
go out together, every row is written exactly once, upserts that share a unique identifier value
never travel together, and the limit halves when Salesforce pushes back. How fast is measured in
bench/ (bench/sfbridge-write-latency.sh), not here."""
import threading

from lib.wait import wait_for
from lib.sfbridge import wait_daemon
from lib.writeback import App, api_usage, map_rw

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


def test_collections_are_recorded_side_by_side(sfbridge, database, sf):
    """Each collection's outcome is recorded as it comes back, on a connection of the
    writer's pool (SFBRIDGE_WRITE_CONNECTIONS, 2), and a row an app holds locked is left
    for last, to the writer's own connection, which waits for the app: the other rows of
    every collection are recorded meanwhile. (They were recorded one after the other on
    the writer's one connection: the first such row held up every collection behind it.)"""
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c", "--fields", "Name,Employee_Number__c")
    sfbridge.run("load")
    before = sf.count("Teacher__c")
    _insert(database, 2000, "R-")  # ten collections of 200, in row order
    ids = [i for (i,) in database.query(f"SELECT id FROM salesforce.{T} WHERE name LIKE 'R-%' ORDER BY id")]
    locked = ids[0:1800:200]  # one row in each of the first nine collections
    result = {}
    with App(database) as app:
        with app.transaction():
            app.execute(f"SELECT id FROM salesforce.{T} WHERE id = ANY(%s) FOR UPDATE", (locked,))
            push = threading.Thread(target=lambda: result.update(
                r=sfbridge.run("push", env={"SFBRIDGE_WRITE_CONCURRENCY": "10"}, check=False, timeout=300)))
            push.start()  # (should an assertion fail, leaving the block lets the push end)
            wait_for(lambda: database.count(T, where="name LIKE 'R-%%' AND sfid IS NOT NULL") == 1991,
                     timeout=60, what="every row but the nine an app holds to get its sfid")
            # the nine wait for the app, one after the other, on the writer's own connection
            wait_for(lambda: database.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%%_hc_lastop%%'") == 1, timeout=30,
                what="the writer to wait for the first row the app holds")
    push.join(timeout=120)
    assert result["r"].returncode == 0, result["r"].stderr
    rows = database.query(f"SELECT sfid, _hc_lastop FROM salesforce.{T} WHERE name LIKE 'R-%'")
    assert len(rows) == 2000 and all(s for (s, _) in rows), "every row got its sfid once the app let go"
    assert {op for (_, op) in rows} == {"INSERTED"}, {op for (_, op) in rows}
    assert len({s for (s, _) in rows}) == 2000
    assert sf.count("Teacher__c") == before + 2000
    assert not database.scalar("SELECT count(*) FROM salesforce._trigger_log WHERE state IN ('NEW', 'PENDING')")


def _upserts_synced(database, sf, prefix, n, before):
    rows = database.query(f"SELECT sfid FROM salesforce.{T} WHERE name LIKE %s", (prefix + "%",))
    assert len(rows) == n and all(s for (s,) in rows) and len({s for (s,) in rows}) == n
    assert sf.count("Teacher__c") == before + n


def _map_upserts(sfbridge, *args):
    map_rw(sfbridge, "Teacher__c", "--fields", "Name,Employee_Number__c", "--upsert-field",
           "Employee_Number__c", *args)


def test_upserts_go_by_collections_while_the_org_has_requests_to_spare(sfbridge, database, sf):
    """2,500 upserts (more than SFBRIDGE_BULK_WRITE_MIN) with the org's daily requests
    nowhere near half spent: collections side by side, which take a round trip where
    a Bulk job takes seven, not a job."""
    sfbridge.init()
    _map_upserts(sfbridge)
    sfbridge.run("load")
    before = sf.count("Teacher__c")
    _insert(database, 2500, "K-")
    sfbridge.run("push", timeout=300)
    assert sf.bulk_ingest_jobs() == []
    _upserts_synced(database, sf, "K-", 2500, before)


def test_upserts_go_by_a_bulk_job_when_so_configured(sfbridge, database, sf):
    """SFBRIDGE_BULK_WRITE_USAGE=0: upserts from SFBRIDGE_BULK_WRITE_MIN on go by a
    Bulk API 2.0 ingest job whatever the org's usage, as Heroku Connect sends them."""
    sfbridge.set(SFBRIDGE_BULK_WRITE_USAGE=0, SFBRIDGE_BULK_WRITE_MIN=100)
    sfbridge.init()
    _map_upserts(sfbridge)
    sfbridge.run("load")
    before = sf.count("Teacher__c")
    _insert(database, 300, "J-")
    sfbridge.run("push", timeout=300)
    jobs = sf.bulk_ingest_jobs()
    assert len(jobs) == 1 and jobs[0]["operation"] == "upsert", jobs
    assert jobs[0]["externalIdFieldName"] == "Employee_Number__c", jobs
    _upserts_synced(database, sf, "J-", 300, before)


def _spend_half_the_allowance(sf, *rules):
    """Requests made until 150 (enough left for a test: a job polls), then as many left
    today as were made: half the org's allowance spent (with the fault rules given too)."""
    while api_usage(sf) < 150:
        sf.count("Teacher__c")
    sf.set_faults([{"api_budget": api_usage(sf)}, *rules])


def _written_by_one_bulk_job(sfbridge, database, sf, prefix, n, before, check=None):
    """The n rows named prefix... get their sfid, by exactly one Bulk upsert job (and
    check() holds then, with the faults still on); then the daemon stops, the faults go,
    and Salesforce holds the rows."""
    wait_daemon(sfbridge, lambda: database.count(T, where=f"name LIKE '{prefix}%%' AND sfid IS NOT NULL") == n,
                timeout=60, what=f"the {n} upserts to be written")
    assert check is None or check()
    jobs = sf.bulk_ingest_jobs()
    assert len(jobs) == 1 and jobs[0]["operation"] == "upsert", jobs
    sfbridge.stop()
    sf.clear_faults()
    _upserts_synced(database, sf, prefix, n, before)


def _daemon_with_upserts_mapped(sfbridge, database, sf, poll):
    """The daemon running, Teacher__c mapped for upserts (polled every `poll` s,
    SFBRIDGE_BULK_WRITE_MIN=100) and loaded; Salesforce's count of its records."""
    sfbridge.set(SFBRIDGE_BULK_WRITE_MIN=100)
    sfbridge.init()
    _map_upserts(sfbridge, "--poll", str(poll))
    sfbridge.start()
    wait_daemon(sfbridge, lambda: database.count(T) == 5, timeout=60, what="the initial load")
    return sf.count("Teacher__c")


def test_upserts_go_by_a_bulk_job_once_the_org_has_used_half_its_requests(sfbridge, database, sf):
    """The writer learns the org's usage from its answers (Sforce-Limit-Info): once half of
    the daily requests are spent (SFBRIDGE_BULK_WRITE_USAGE, 50), upserts from
    SFBRIDGE_BULK_WRITE_MIN on go by a Bulk job, seven requests for up to 10,000 records
    instead of one per 200."""
    before = _daemon_with_upserts_mapped(sfbridge, database, sf, poll=60)
    _spend_half_the_allowance(sf)
    _insert(database, 1, "H-first ")  # its answer tells the writer the usage
    wait_daemon(sfbridge, lambda: database.count(T, where="name LIKE 'H-first %%' AND sfid IS NOT NULL") == 1,
                timeout=30, what="the first upsert to be written")
    assert sf.bulk_ingest_jobs() == []
    _insert(database, 300, "H-")
    _written_by_one_bulk_job(sfbridge, database, sf, "H-", 301, before)


def test_the_writer_chooses_by_the_usage_a_poll_heard_and_spends_no_request_to_learn_it(
        sfbridge, database, sf):
    """The org's usage is what the latest answer to any of the process's clients told
    (Sforce-Limit-Info): a writer that has sent nothing yet knows it from the poller's
    answers, so an org past half its requests gets a Bulk job from the writer's first
    claim on. No request is spent (and no round trip waited) to learn it: /limits never
    answers here, and nothing waits on it."""
    before = _daemon_with_upserts_mapped(sfbridge, database, sf, poll=1)
    _spend_half_the_allowance(sf, {"offline": True, "path": "/services/data/*/limits"})
    spent = api_usage(sf)
    wait_daemon(sfbridge, lambda: api_usage(sf) > spent, timeout=30, what="a poll after the spending")
    _insert(database, 300, "L-")
    _written_by_one_bulk_job(sfbridge, database, sf, "L-", 300, before,
                             check=lambda: sf.fault_state()["parked"] == 0)
