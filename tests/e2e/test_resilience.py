"""Crashes, faults and drift: whatever happens on the way, Postgres ends
exactly equal to Salesforce (docs/sfbridge.md, issue 4 "Tests").

Fault rules are limited to /services/data/v60.0/* (sfbridge's API version);
the tests' own client speaks 59.0 and is not disturbed.
"""
import time

from lib import data
from lib.compare import assert_pg_equals_sf, wait_pg_equals_sf
from lib.sfbridge import wait_daemon

SFB = "/services/data/v60.0/*"


def _count(database, where=None):
    return database.count("teacher__c", where=where)


def _wait_partial(sfbridge, database, lo, hi, where=None, timeout=120, what="a partly synced table"):
    """Poll fast until the table holds more than lo and fewer than hi matching rows."""
    def check():
        n = _count(database, where)
        return n if lo < n < hi else 0
    return wait_daemon(sfbridge, check, timeout=timeout, what=what, interval=0.02, max_interval=0.02)


def test_kill9_during_initial_load_then_restart(sfbridge, database, sf):
    n = 50_000
    sf.load_records("Teacher__c", data.teachers(n), batch=10_000)
    total = n + 5
    # pages of 5,000 rows (Bulk results / REST query), each answered after a delay, so
    # the load takes several seconds and the kill lands in the middle of it
    sfbridge.set(SFBRIDGE_BULK_PAGE=5000)
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sf.set_faults([{"path": "/services/data/v60.0/jobs/query/*/results", "latency_ms": 300},
                   {"path": "/services/data/v60.0/query/*", "latency_ms": 300},
                   {"path": "/services/data/v60.0/queryAll/*", "latency_ms": 300}])
    sfbridge.start()
    # a Bulk load fills its shadow table (test_initial_load.py): the catalog tells how far
    wait_daemon(sfbridge, lambda: 0 < (database.scalar("SELECT load_done FROM salesforce._sfbridge_mapping")
                                       or 0) < total, what="a load midway", interval=0.02, max_interval=0.02)
    sfbridge.kill9()
    sf.clear_faults()
    sfbridge.once(timeout=600)
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == total
    assert sfbridge.mapping_state("Teacher__c") == "DATA_SYNCED"


def test_sigterm_during_initial_load_exits_0_then_resumes(sfbridge, database, sf):
    n = 8000
    sf.load_records("Teacher__c", data.teachers(n))
    sfbridge.set(SFBRIDGE_REST_BATCH=500)
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sf.set_faults([{"path": "/services/data/v60.0/query*", "latency_ms": 300}])
    sfbridge.start()
    _wait_partial(sfbridge, database, 0, n + 5, timeout=60, what="a partly loaded table")
    sfbridge.stop(timeout=30)
    sf.clear_faults()
    sfbridge.once()
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == n + 5


def test_kill9_during_incremental_sync_then_restart(sfbridge, database, sf):
    sf.load_records("Teacher__c", data.teachers(3000))
    sfbridge.init()
    sfbridge.add("Teacher__c", "--all-fields", "--poll", "1")
    sfbridge.once()
    assert_pg_equals_sf(sf, database, "Teacher__c")

    ids = sf.ids("Teacher__c", "Employee_Number__c LIKE 'G-%'")
    sf.update_many("Teacher__c", [{"Id": rid, "Name": f"changed {k}", "Years__c": 99, "Active__c": True}
                                  for k, rid in enumerate(ids)])
    sf.create_many("Teacher__c", data.teachers(1000, prefix="C"))
    sf.delete_many(ids[:500])
    # small pages, each answered late, so applying the changes takes seconds; no drift
    # check (it would repair the deletions before the poll runs)
    sfbridge.set(SFBRIDGE_REST_BATCH=200, SFBRIDGE_DRIFT_SECONDS=0)
    sf.set_faults([{"path": "/services/data/v60.0/query*", "latency_ms": 200}])
    sfbridge.start()
    _wait_partial(sfbridge, database, 0, 2000, where="name LIKE 'changed %'", what="part of the changes applied")
    sfbridge.kill9()
    sf.clear_faults()
    sfbridge.once()
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == 3000 + 5 + 1000 - 500


def test_faults_delay_the_sync_but_change_nothing(sfbridge, database, sf):
    sf.load_records("Teacher__c", data.teachers(300))
    sfbridge.init()
    sfbridge.add("Teacher__c", "--all-fields", "--poll", "1")
    sfbridge.add("Account", "--all-fields", "--poll", "1")

    # 1. errors and cut connections while loading and polling
    sf.set_faults([{"path": SFB, "error_rate": 0.25, "status": 503},
                   {"path": SFB, "error_rate": 0.1, "status": 500},
                   {"path": SFB, "reset_rate": 0.2}], seed=4242)
    sfbridge.start()
    new = sf.create_many("Teacher__c", data.teachers(40, prefix="F"))
    sf.update_many("Teacher__c", [{"Id": rid, "Years__c": 1} for rid in new[:20]])
    sf.delete_many(new[20:25])
    sf.create("Account", {"Name": "Faulty School", "External_Id__c": "F-1"})
    wait_pg_equals_sf(sf, database, "Teacher__c", timeout=120, context=sfbridge.log)
    wait_pg_equals_sf(sf, database, "Account", timeout=60, context=sfbridge.log)

    # 2. Salesforce unreachable for a while: requests hang, then are dropped
    sf.set_faults([{"path": SFB, "offline": True}, {"path": "/services/oauth2/*", "offline": True}])
    during = sf.create("Teacher__c", {"Name": "Made While Offline", "Employee_Number__c": "OFF-1"})
    time.sleep(4)  # the outage itself (not a wait for a condition)
    assert during not in dict(database.query("SELECT sfid, id FROM salesforce.teacher__c")), \
        "a change synced while Salesforce was unreachable?"
    sfbridge.assert_running()
    sf.clear_faults(release="drop")
    wait_pg_equals_sf(sf, database, "Teacher__c", timeout=90, context=sfbridge.log)

    # 3. every session expires: sfbridge logs in again
    sf.expire_sessions()
    sf.update("Teacher__c", during, {"Name": "After Expiry"})
    wait_pg_equals_sf(sf, database, "Teacher__c", timeout=60, context=sfbridge.log)
    assert_pg_equals_sf(sf, database, "Account")
    sfbridge.stop()


def test_faults_during_a_bulk_load(sfbridge, database, sf):
    sf.load_records("Teacher__c", data.teachers(600))
    sfbridge.set(SFBRIDGE_BULK_THRESHOLD=10, SFBRIDGE_BULK_PAGE=100)
    sfbridge.init()
    sfbridge.add("Teacher__c", "--all-fields", "--poll", "1")
    sf.set_faults([{"path": "/services/data/v60.0/jobs/*", "reset_rate": 0.3},
                   {"path": "/services/data/v60.0/jobs/*", "error_rate": 0.2, "status": 503}], seed=7)
    sfbridge.start()
    wait_pg_equals_sf(sf, database, "Teacher__c", timeout=120, context=sfbridge.log)
    sf.clear_faults()
    sfbridge.stop()


def _damage(database, sf):
    """Change the table behind sfbridge's back: a row gone, a row stale, a ghost row."""
    names = {r["Name"]: r["Id"] for r in sf.query("SELECT Id, Name FROM Teacher__c")}
    database.execute("DELETE FROM salesforce.teacher__c WHERE sfid = %s", (names["Maria Gonzalez"],))
    database.execute("UPDATE salesforce.teacher__c SET name = 'stale', years__c = -1, "
                     "systemmodstamp = '2001-01-01' WHERE sfid = %s", (names["Kwame Mensah"],))
    # a record Salesforce does not have (a delete the polls missed), older than the watermark
    database.execute("INSERT INTO salesforce.teacher__c (sfid, name, systemmodstamp, isdeleted) "
                     "VALUES ('a010K0000099999ZZZ', 'ghost', '2001-01-01', false)")


def test_drift_command_repairs_differences(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.once()
    _damage(database, sf)
    sfbridge.run("drift")
    assert_pg_equals_sf(sf, database, "Teacher__c")
    repairs = [r for r in database.query_dicts("SELECT * FROM salesforce._sfbridge_mapping "
                                               "WHERE object_name = 'Teacher__c'")]
    counters = {k: v for k, v in repairs[0].items() if "repair" in k}
    assert counters and max(counters.values()) >= 3, f"the repairs must be counted: {repairs[0]}"


def test_daemon_drift_check_repairs_by_itself(sfbridge, database, sf):
    sfbridge.set(SFBRIDGE_DRIFT_SECONDS=2)
    sfbridge.init()
    sfbridge.add("Teacher__c", "--all-fields", "--poll", "1")
    sfbridge.start()
    wait_pg_equals_sf(sf, database, "Teacher__c", timeout=60, context=sfbridge.log)
    _damage(database, sf)
    wait_pg_equals_sf(sf, database, "Teacher__c", timeout=60, context=sfbridge.log)
    sfbridge.stop()
