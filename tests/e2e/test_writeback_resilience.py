"""Write-back through a bad link, crashes and restarts: whatever happens,
Salesforce ends exactly equal to what the apps committed, every record once
(docs/sfbridge.md "Writing back to Salesforce"; issue 5 "Tests").

Several app sessions (lib/workload.py) run mixed transactions (inserts, updates
and deletes by id, some rolled back) on salesforce.teacher__c while `sfbridge
run` writes them back. Records are compared by Name, a key each workload sets
and Salesforce does not keep unique, so a duplicate insert would be seen.
Fault rules are limited to /services/data/v60.0/* (sfbridge's API version);
the tests' own client speaks 59.0 and is not disturbed. An app session that
gets any error (a deadlock with sfbridge's own writes included) fails the test:
sfbridge gives way to the apps' row locks rather than wait holding its own.
"""
import time

from lib import workload
from lib.sfbridge import wait_daemon
from lib.wait import WaitAbort, wait_for
from lib.workload import Workload, run_parallel
from lib.writeback import describe_entries, log_entries, map_rw, open_entries

SFB = "/services/data/v60.0/*"
# About a third of sfbridge's requests dropped or cut, all of them delayed a little.
FAULTS = [
    {"path": SFB, "latency_ms": 5, "jitter_ms": 120},
    {"path": SFB, "error_rate": 0.10, "status": 503},
    {"path": SFB, "error_rate": 0.05, "status": 500},
    {"path": SFB, "reset_rate": 0.15},   # answer cut after Salesforce committed
    {"path": SFB, "lock_rate": 0.05},
]
OFFLINE = [{"path": SFB, "offline": True}, {"path": "/services/oauth2/*", "offline": True}]

WRITES = 10_000      # statements in the big mixed test
OUTAGE_SECONDS = 60  # the "offline for a minute"


def _start(sfbridge, database, *map_args):
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c", "--poll", "2", *map_args)
    sfbridge.start()
    wait_daemon(sfbridge, lambda: database.count("teacher__c") == 5, timeout=60, what="the initial load")


def _sf_count(sf):
    return sf.count("Teacher__c", f"Name LIKE '{workload.KEY_PREFIX}%'")


def _history(database, problems):
    """The trigger-log history of the first few records named in the problems."""
    import re
    names = list(dict.fromkeys(re.findall(r"\b(WL[A-Z]-[0-9]+)\b", "\n".join(problems))))[:4]
    out = []
    for name in names:
        rows = database.query(
            "WITH r AS (SELECT record_id FROM salesforce._trigger_log WHERE values::hstore -> 'name' = %s"
            " UNION SELECT record_id FROM salesforce._trigger_log_archive WHERE values::hstore -> 'name' = %s)"
            " SELECT 'log', id, txid, record_id, action, state, sfid, sf_message, sfb_unknown, sfb_attempts, values"
            " FROM salesforce._trigger_log WHERE record_id IN (SELECT record_id FROM r)"
            " UNION ALL SELECT 'arch', id, txid, record_id, action, state, sfid, sf_message, sfb_unknown, sfb_attempts,"
            " values FROM salesforce._trigger_log_archive WHERE record_id IN (SELECT record_id FROM r) ORDER BY 2",
            (name, name))
        out.append(f"-- {name}:\n" + "\n".join(repr(r) for r in rows))
    return "\n".join(out)


def _wait_converged(sfbridge, sf, database, workloads, timeout=120):
    """Until Salesforce and Postgres hold exactly what the workloads committed and
    no trigger-log entry is open; the differences are in the failure message."""
    last = {"problems": ["(no comparison finished)"]}

    def check():
        if sfbridge.proc is not None and sfbridge.proc.poll() is not None:
            raise WaitAbort("the sfbridge daemon exited\n" + sfbridge.log())
        problems = workload.diff(sf, database, workloads)
        n_open = open_entries(database)
        if n_open:
            problems.append(f"{n_open} trigger-log entries still NEW or PENDING")
        last["problems"] = problems
        return not problems

    wait_for(check, timeout=timeout, what="Salesforce to equal what the apps committed", interval=0.5,
             max_interval=2.0, context=lambda: "\n".join(last["problems"]) + "\n" + _history(database, last["problems"])
             + "\n" + sfbridge.log(60))


def _assert_clean(sfbridge, database, workloads):
    failed = log_entries(database, "state = 'FAILED'")
    assert not failed, "entries FAILED:\n" + describe_entries(failed[:20])
    w = sfbridge.status_json()["writer"]
    assert w["pending"] == 0 and w["failed"] == 0, w
    committed = len(workload.expected_of(workloads))
    assert committed > 0 and sum(wl.ops for wl in workloads) > 0
    return committed


def test_mixed_writes_through_faults_and_an_outage(sfbridge, database, sf):
    _start(sfbridge, database)
    workloads = [Workload(database.url, p, seed) for p, seed in (("A", 1), ("B", 2), ("C", 3), ("D", 4))]
    per = WRITES // len(workloads)

    sf.set_faults(FAULTS, seed=20240501)
    run_parallel(workloads, per * 4 // 10)

    # Salesforce unreachable: requests hang; the apps go on writing
    sf.set_faults(OFFLINE)
    began = time.monotonic()
    # requests that passed the fault check before the outage may still be
    # waiting out their latency: they run, then the link is quiet
    wait_for(lambda: sf.fault_state()["delayed"] == 0, timeout=10, what="requests in flight to finish")
    seen = [_sf_count(sf)]

    def still():
        seen.append(_sf_count(sf))
        return seen[-1] == seen[-2]
    wait_for(still, timeout=10, what="the record count to stay still", interval=0.3)
    before = seen[-1]
    run_parallel(workloads, per * 4 // 10)
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - began)))  # the outage itself
    sfbridge.assert_running()
    assert _sf_count(sf) == before, "a write reached Salesforce while it was unreachable?"
    assert open_entries(database) > 0, "changes made during the outage must wait in the trigger log"

    # back, still faulty; the requests that hung are cut (nothing of them ran)
    sf.set_faults(FAULTS, release="drop", seed=777)
    run_parallel(workloads, per - 2 * (per * 4 // 10))
    sf.clear_faults()
    _wait_converged(sfbridge, sf, database, workloads, timeout=120)
    n = _assert_clean(sfbridge, database, workloads)
    assert sum(wl.ops for wl in workloads) == per * len(workloads)
    assert n > 1000, f"only {n} records committed: the workload is not doing what it should"
    sfbridge.stop()


def _wait_partly_written(sfbridge, database, what):
    """Poll fast until some, not all, of the workload's rows have their sfid."""
    def check():
        done = database.count("teacher__c", where=f"name LIKE '{workload.KEY_PREFIX}%%' AND sfid IS NOT NULL")
        return done if done > 0 and open_entries(database) > 0 else 0
    return wait_daemon(sfbridge, check, timeout=90, what=what, interval=0.02, max_interval=0.05)


def test_kill9_mid_batch_then_restart(sfbridge, database, sf):
    _start(sfbridge, database)
    workloads = [Workload(database.url, p, seed) for p, seed in (("K", 11), ("L", 12))]
    # every write answered late, so the kills land while batches are in flight
    # (localforce still runs the request after sfbridge died: its outcome is unknown)
    slow = [{"path": "/services/data/v60.0/composite/*", "latency_ms": 300},
            {"path": "/services/data/v60.0/jobs/*", "latency_ms": 300}]
    sf.set_faults(slow)
    run_parallel(workloads, 1500)
    for round_ in (1, 2):
        _wait_partly_written(sfbridge, database, f"part of the writes sent (round {round_})")
        sfbridge.kill9()
        run_parallel(workloads, 300)   # the apps go on while sfbridge is down
        sfbridge.start()
    sf.clear_faults()
    _wait_converged(sfbridge, sf, database, workloads, timeout=120)
    _assert_clean(sfbridge, database, workloads)
    sfbridge.stop()


def test_upsert_keyed_mapping_through_resets_and_a_kill(sfbridge, database, sf):
    _start(sfbridge, database, "--upsert-field", "Employee_Number__c")
    workloads = [Workload(database.url, p, seed, external_id="employee_number__c")
                 for p, seed in (("U", 21), ("V", 22))]
    sf.set_faults([{"path": "/services/data/v60.0/composite/*", "reset_rate": 0.35},
                   {"path": "/services/data/v60.0/composite/*", "latency_ms": 150},
                   {"path": SFB, "error_rate": 0.1, "status": 503}], seed=99)
    run_parallel(workloads, 1200)
    _wait_partly_written(sfbridge, database, "part of the writes sent")
    sfbridge.kill9()
    run_parallel(workloads, 300)
    sfbridge.start()
    sf.clear_faults()
    _wait_converged(sfbridge, sf, database, workloads, timeout=120)
    _assert_clean(sfbridge, database, workloads)
    sfbridge.stop()


def test_postgres_restart_while_writing(sfbridge, database, sf):
    _start(sfbridge, database)
    workloads = [Workload(database.url, p, seed) for p, seed in (("P", 31), ("Q", 32))]
    sf.set_faults([{"path": "/services/data/v60.0/composite/*", "latency_ms": 100}])
    run_parallel(workloads, 800)
    cluster = database.cluster
    r = cluster._run("pg_ctl", "-D", cluster.data, "-l", cluster.logfile, "-m", "fast", "-w", "-t", "60", "restart")
    assert r.returncode == 0, f"pg_ctl restart failed:\n{r.stdout}\n{r.stderr}\n{cluster.log_tail()}"
    database.close()
    run_parallel(workloads, 800)
    sf.clear_faults()
    _wait_converged(sfbridge, sf, database, workloads, timeout=120)
    sfbridge.assert_running()
    _assert_clean(sfbridge, database, workloads)
    sfbridge.stop()
