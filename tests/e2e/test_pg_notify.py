"""Waiting for a NOTIFY (db/pg.c's pg_wait_notify, the writer's and the daemon's
wake-up): a notification libpq read along with an earlier statement's results
wakes the waiter at once. It used to wait in libpq's queue, unseen by select(),
until the wait timed out: a change committed while the writer ended a pass was
written 5 s later (the write bench's max), a control NOTIFY that arrived during
a daemon pass waited for the next poll."""
import subprocess

from lib.paths import sfbridge_bin


def test_a_notify_read_with_earlier_results_wakes_at_once(database):
    helper = sfbridge_bin().parent / "pgnotify_check"
    r = subprocess.run([str(helper), database.url], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("\nok ") + r.stdout.startswith("ok ") == 4, r.stdout
