"""Accelerated sync (issue 6): changes stream in through Change Data Capture.

Mappings use --poll 3600, so within a test only the stream can deliver a change;
every wait is on a condition."""
import pytest

from lib.compare import assert_pg_equals_sf
from lib.sfbridge import wait_daemon
from lib.wait import wait_for


def _by_name(sf, obj="Teacher__c"):
    return {r["Name"]: r["Id"] for r in sf.query(f"SELECT Id, Name FROM {obj}")}


def _stream(sfbridge, obj="Teacher__c"):
    return sfbridge.mapping_status(obj).get("stream") or {}


def _start_streaming(sfbridge, *args):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--accelerated", "--poll", "3600", *args)
    sfbridge.start()
    wait_daemon(sfbridge, lambda: _stream(sfbridge).get("state") == "CONNECTED", timeout=60,
                what="the stream to connect")


def _last_poll(sfbridge):
    return sfbridge.mapping_status("Teacher__c").get("last_poll_at")


def test_changes_arrive_through_the_stream_without_a_poll(sfbridge, database, sf):
    _start_streaming(sfbridge)
    polled = _last_poll(sfbridge)
    names = _by_name(sf)
    sf.update("Teacher__c", names["Maria Gonzalez"], {"Years__c": 31})
    new = sf.create("Teacher__c", {"Name": "Streamed In", "Employee_Number__c": "ST-1"})
    sf.delete("Teacher__c", names["Kwame Mensah"])

    def arrived():
        rows = database.rows_by_sfid("teacher__c")
        return (rows.get(names["Maria Gonzalez"], {}).get("years__c") == 31 and new in rows
                and names["Kwame Mensah"] not in rows)
    wait_daemon(sfbridge, arrived, timeout=30, what="the three changes through the stream")
    assert _last_poll(sfbridge) == polled, "a poll ran: the changes must come through the stream"
    st = _stream(sfbridge)
    assert st.get("state") == "CONNECTED" and st.get("events", 0) >= 3, st
    assert_pg_equals_sf(sf, database, "Teacher__c")
    sfbridge.stop()


def test_an_undelete_arrives_through_the_stream(sfbridge, database, sf):
    _start_streaming(sfbridge)
    polled = _last_poll(sfbridge)
    kwame = _by_name(sf)["Kwame Mensah"]
    sf.delete("Teacher__c", kwame)
    wait_daemon(sfbridge, lambda: kwame not in database.rows_by_sfid("teacher__c"), timeout=30,
                what="the delete through the stream")
    assert sf.undelete("Teacher__c", kwame)[0]["success"] is True
    wait_daemon(sfbridge, lambda: kwame in database.rows_by_sfid("teacher__c"), timeout=30,
                what="the undelete through the stream")
    assert database.rows_by_sfid("teacher__c")[kwame]["name"] == "Kwame Mensah"
    assert _last_poll(sfbridge) == polled, "a poll ran: the undelete must come through the stream"
    refused = sf.undelete("Teacher__c", kwame)[0]
    assert refused["success"] is False and refused["errors"][0]["statusCode"] == "UNDELETE_FAILED"
    assert_pg_equals_sf(sf, database, "Teacher__c")
    sfbridge.stop()


def test_restart_catches_up_from_the_replay_id(sfbridge, database, sf):
    _start_streaming(sfbridge)
    sf.create("Teacher__c", {"Name": "Before Kill", "Employee_Number__c": "ST-2"})
    wait_daemon(sfbridge, lambda: database.count("teacher__c", where="name = 'Before Kill'") == 1,
                timeout=30, what="the first change")
    replay = _stream(sfbridge).get("replay_id")
    assert replay and replay > 0
    sfbridge.kill9()
    for k in range(20):
        sf.create("Teacher__c", {"Name": f"While Down {k}", "Employee_Number__c": f"ST-D{k}"})
    sfbridge.start()
    wait_daemon(sfbridge, lambda: database.count("teacher__c", where="name LIKE 'While Down %%'") == 20,
                timeout=60, what="the changes made while sfbridge was down")
    st = _stream(sfbridge)
    assert st.get("fallbacks", 0) == 0, f"the replay id should have been enough: {st}"
    assert st.get("replay_id", 0) > replay
    assert_pg_equals_sf(sf, database, "Teacher__c")
    sfbridge.stop()


def test_a_write_from_postgres_is_not_written_twice(sfbridge, database, sf):
    _start_streaming(sfbridge, "--access", "read_write")
    names = _by_name(sf)
    maria = names["Maria Gonzalez"]
    database.execute("UPDATE salesforce.teacher__c SET years__c = 44 WHERE sfid = %s", (maria,))
    wait_daemon(sfbridge, lambda: sf.get("Teacher__c", maria, ["Years__c"])["Years__c"] == 44, timeout=30,
                what="the write to reach Salesforce")
    # its change event comes back through the stream: it must not cause another write
    wait_daemon(sfbridge, lambda: _stream(sfbridge).get("events", 0) >= 1, timeout=30,
                what="the echo event to be applied")
    stamp = sf.get("Teacher__c", maria, ["SystemModstamp"])["SystemModstamp"]
    entries = database.query("SELECT count(*) FROM salesforce._trigger_log")[0][0] + \
        database.query("SELECT count(*) FROM salesforce._trigger_log_archive")[0][0]
    assert entries == 1, f"{entries} trigger-log entries: the echo was captured as a change"
    # one more event round trip (a change elsewhere) proves the stream moved past the echo
    sf.create("Teacher__c", {"Name": "After Echo", "Employee_Number__c": "ST-3"})
    wait_daemon(sfbridge, lambda: database.count("teacher__c", where="name = 'After Echo'") == 1, timeout=30,
                what="a later change")
    assert sf.get("Teacher__c", maria, ["SystemModstamp"])["SystemModstamp"] == stamp, \
        "Salesforce's record was written again"
    sfbridge.stop()


def _wait_fallback(sfbridge, n):
    wait_daemon(sfbridge, lambda: _stream(sfbridge).get("fallbacks", 0) >= n, timeout=60,
                what=f"{n} fallback poll(s)")


def test_a_gap_event_falls_back_to_a_windowed_poll(sfbridge_factory, database, localforce_factory):
    lf = localforce_factory(args=["--cdc-gap-events"])
    sf = lf.client()
    sf.login()
    sfb = sfbridge_factory(database.url, lf, name="sfbridge")
    _start_streaming(sfb)
    names = _by_name(sf)
    sf.update("Teacher__c", names["Maria Gonzalez"], {"Years__c": 9})
    _wait_fallback(sfb, 1)
    wait_daemon(sfb, lambda: database.rows_by_sfid("teacher__c")[names["Maria Gonzalez"]]["years__c"] == 9,
                timeout=30, what="the change after the GAP event")
    assert_pg_equals_sf(sf, database, "Teacher__c")
    sfb.stop()


def test_an_expired_replay_id_falls_back_to_a_windowed_poll(sfbridge_factory, database, localforce_factory):
    """Events kept for 2 s: sfbridge, down while changes are made, comes back
    after they expired; the server refuses its replay id, it polls the window
    and streams again."""
    lf = localforce_factory(args=["--cdc-retention", "2"])
    sf = lf.client()
    sf.login()
    sfb = sfbridge_factory(database.url, lf, name="sfbridge")
    _start_streaming(sfb)
    sf.create("Teacher__c", {"Name": "Before Stop", "Employee_Number__c": "ST-E0"})
    wait_daemon(sfb, lambda: database.count("teacher__c", where="name = 'Before Stop'") == 1, timeout=30,
                what="the first change through the stream")
    replay = _stream(sfb).get("replay_id")
    assert replay and replay > 0
    sfb.stop()
    names = _by_name(sf)
    sf.update("Teacher__c", names["Maria Gonzalez"], {"Years__c": 77})
    sf.delete("Teacher__c", names["Kwame Mensah"])
    for k in range(5):
        sf.create("Teacher__c", {"Name": f"Expired {k}", "Employee_Number__c": f"ST-E{k + 1}"})
    channel = "/data/Teacher__ChangeEvent"
    refusal = wait_for(lambda: sf.cometd_subscribe_error(channel, replay), timeout=30, interval=0.5,
                       what="the events after sfbridge's replay id to expire")
    assert "replayId" in refusal, refusal
    sfb.start()
    _wait_fallback(sfb, 1)

    def caught_up():
        rows = database.rows_by_sfid("teacher__c")
        return (database.count("teacher__c", where="name LIKE 'Expired %%'") == 5
                and rows.get(names["Maria Gonzalez"], {}).get("years__c") == 77
                and names["Kwame Mensah"] not in rows)
    wait_daemon(sfb, caught_up, timeout=60, what="the window's changes through the fallback poll")
    assert_pg_equals_sf(sf, database, "Teacher__c")
    # streaming again: a new change arrives without waiting for a poll
    sf.create("Teacher__c", {"Name": "After Expiry", "Employee_Number__c": "ST-E9"})
    wait_daemon(sfb, lambda: database.count("teacher__c", where="name = 'After Expiry'") == 1, timeout=30,
                what="a change through the stream after the fallback")
    assert _stream(sfb).get("state") == "CONNECTED"
    sfb.stop()


@pytest.mark.parametrize("stop", ["edit", "remove"])
def test_an_object_without_cdc_streams_through_a_pushtopic_removed_after(stop, sfbridge, database, sf):
    """Salesforce refuses the CDC channel of an object not selected for Change
    Data Capture: sfbridge creates a PushTopic sfb_<table>, streams through it,
    and deletes it when the mapping stops streaming."""
    sf.add_object("Room__c", label="Room", change_data_capture=False,
                  fields={"Capacity__c": {"type": "double", "precision": 5, "scale": 0}})
    sf.create("Room__c", {"Name": "Lab 1", "Capacity__c": 24})
    sfbridge.init()
    sfbridge.add("Room__c", "--accelerated", "--poll", "3600")
    sfbridge.start()
    wait_daemon(sfbridge, lambda: (sfbridge.mapping_status("Room__c").get("stream") or {}).get("state")
                == "CONNECTED", timeout=60, what="the stream to connect")
    assert (sfbridge.mapping_status("Room__c").get("stream") or {}).get("channel") == "/topic/sfb_room__c"
    topics = sf.query("SELECT Id, Name, Query FROM PushTopic WHERE Name = 'sfb_room__c'")
    assert len(topics) == 1 and "Room__c" in topics[0]["Query"], topics
    lab = sf.create("Room__c", {"Name": "Lab 2", "Capacity__c": 30})
    wait_daemon(sfbridge, lambda: lab in database.rows_by_sfid("room__c"), timeout=30,
                what="a new record through the PushTopic")
    sf.update("Room__c", lab, {"Capacity__c": 32})
    wait_daemon(sfbridge, lambda: database.rows_by_sfid("room__c")[lab]["capacity__c"] == 32, timeout=30,
                what="an update through the PushTopic")
    assert_pg_equals_sf(sf, database, "Room__c")
    if stop == "edit":
        sfbridge.run("mapping", "edit", "Room__c", "--no-accelerated")
    else:
        sfbridge.run("mapping", "remove", "Room__c")
    assert sf.query("SELECT Id FROM PushTopic WHERE Name = 'sfb_room__c'") == [], \
        "the PushTopic must go when the mapping stops streaming"
    sfbridge.stop()


def test_a_silent_stream_gets_a_windowed_poll(sfbridge_factory, database, localforce_factory):
    """No event for SFBRIDGE_STREAM_SILENCE_MS: sfbridge polls the window in
    case the stream lost one without a sign, and goes on streaming."""
    lf = localforce_factory(env={"LOCALFORCE_COMETD_TIMEOUT_MS": "300"})
    sf = lf.client()
    sf.login()
    sfb = sfbridge_factory(database.url, lf, name="sfbridge")
    sfb.set(SFBRIDGE_STREAM_SILENCE_MS=1500)
    _start_streaming(sfb)
    _wait_fallback(sfb, 2)
    assert _stream(sfb).get("state") == "CONNECTED"
    sf.create("Teacher__c", {"Name": "After Silence", "Employee_Number__c": "ST-S1"})
    wait_daemon(sfb, lambda: database.count("teacher__c", where="name = 'After Silence'") == 1, timeout=30,
                what="a change through the stream after the silence polls")
    assert_pg_equals_sf(sf, database, "Teacher__c")
    sfb.stop()
