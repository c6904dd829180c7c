"""A bad catalog row stops its mapping, not the daemon (docs/sfbridge.md, States).

With `sfbridge run` going, a mapping row whose `fields` is no longer a list of
fields (here `'{}'`) must put that mapping in BAD_CONFIG with the reason shown
by `status`, while the daemon keeps running and the other mappings keep
syncing."""
from lib.compare import wait_pg_equals_sf
from lib.sfbridge import wait_daemon


def test_bad_fields_row_stops_only_its_mapping(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--all-fields", "--poll", "1")
    sfbridge.add("Account", "--all-fields", "--poll", "1")
    sfbridge.start()
    wait_pg_equals_sf(sf, database, "Teacher__c", timeout=60, context=sfbridge.log)
    wait_pg_equals_sf(sf, database, "Account", timeout=60, context=sfbridge.log)

    database.execute("UPDATE salesforce._sfbridge_mapping SET fields = '{}' WHERE object_name = 'Teacher__c'")
    database.execute("NOTIFY sfbridge_control, 'salesforce'")
    wait_daemon(sfbridge, lambda: sfbridge.mapping_state("Teacher__c") == "BAD_CONFIG", timeout=30,
                what="Teacher__c to reach BAD_CONFIG")
    entry = sfbridge.mapping_status("Teacher__c")
    assert entry.get("last_error") and "fields" in entry["last_error"], entry
    text = sfbridge.run("status", check=False).stdout
    line = next((ln for ln in text.splitlines() if ln.startswith("Teacher__c")), "")
    assert "BAD_CONFIG" in line and "fields" in line, text
    assert "daemon:     running" in text, text
    sfbridge.assert_running()

    # the other mapping still syncs
    sf.create_many("Account", [{"Name": f"After Bad Row {i}"} for i in range(3)])
    wait_pg_equals_sf(sf, database, "Account", timeout=30, context=sfbridge.log)
    sfbridge.assert_running()
    assert sfbridge.mapping_state("Teacher__c") == "BAD_CONFIG"

    sfbridge.stop()
    assert "sfbridge stopped" in sfbridge.log(), sfbridge.log()
    assert "daemon:     not running" in sfbridge.run("status", check=False).stdout


def test_fatal_error_stops_cleanly(sfbridge, database, sf):
    """A failure the daemon cannot go on after (its catalog table gone) stops
    `run` through its one exit: threads joined, heartbeat cleared, reason logged."""
    sfbridge.init()
    sfbridge.add("Account", "--all-fields", "--poll", "1")
    sfbridge.start()
    wait_pg_equals_sf(sf, database, "Account", timeout=60, context=sfbridge.log)
    wait_daemon(sfbridge, lambda: "daemon:     running" in sfbridge.run("status", check=False).stdout, timeout=30,
                what="status to say running")

    database.execute("ALTER TABLE salesforce._sfbridge_mapping RENAME TO _sfbridge_mapping_aside")
    database.execute("NOTIFY sfbridge_control, 'salesforce'")
    proc = sfbridge.proc
    rc = proc.wait(60)
    assert rc is not None and 0 < rc < 128, \
        f"run must fail (not crash) on a fatal error, exited {rc}\n" + sfbridge.log()
    log = sfbridge.log(400)
    assert "Sanitizer" not in log, log
    assert "sfbridge stopped: " in log and "_sfbridge_mapping" in log.split("sfbridge stopped: ")[-1], log
    database.execute("ALTER TABLE salesforce._sfbridge_mapping_aside RENAME TO _sfbridge_mapping")
    text = sfbridge.run("status", check=False).stdout
    assert "daemon:     not running" in text, text
    sfbridge.proc = None
