"""sfbridge as a service (issue 15): it tells systemd when it is ready, reloading and stopping
(Type=notify, $NOTIFY_SOCKET), SIGHUP reads the configuration again without stopping (bad
settings are refused and the old ones kept), SIGTERM stops with no warning."""
import os
import signal
import socket

import pytest

from lib.sfbridge import wait_daemon
from lib.wait import wait_for


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    yield s, path
    s.close()


def _messages(sock, got):
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except (socket.timeout, BlockingIOError):
        pass
    return got


def _config(tmp_path, sfbridge, **over):
    lines = [f"{k} = {v}" for k, v in {**sfbridge.base_env, **over}.items() if v is not None]
    cfg = tmp_path / "sfbridge.conf"
    cfg.write_text("\n".join(lines) + "\n")
    os.chmod(cfg, 0o600)
    return cfg


def test_notify_ready_reload_and_stop(sfbridge, notify_socket, tmp_path):
    sock, path = notify_socket
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    cfg = _config(tmp_path, sfbridge)
    sfbridge.start("--config", cfg, env={"NOTIFY_SOCKET": path})
    got = []
    wait_daemon(sfbridge, lambda: any("READY=1" in m for m in _messages(sock, got)), what="READY=1")
    # reload: a setting added to the file takes effect (the API starts), nothing stopped
    assert "management API on" not in sfbridge.log()
    _config(tmp_path, sfbridge, SFBRIDGE_HTTP="127.0.0.1:0")
    sfbridge.proc.send_signal(signal.SIGHUP)
    wait_daemon(sfbridge, lambda: "reloading the configuration (SIGHUP)" in sfbridge.log(),
                what="the reload")
    wait_daemon(sfbridge, lambda: sum("READY=1" in m for m in _messages(sock, got)) >= 2,
                what="READY=1 after the reload")
    assert any("RELOADING=1" in m for m in got), got
    wait_daemon(sfbridge, lambda: "management API on" in sfbridge.log(), what="the API after the reload")
    assert sfbridge.running()
    # a bad configuration is refused; the daemon goes on with the old one
    cfg.write_text("SFBRIDGE_BULK_THRESHOLD = lots\n")
    os.chmod(cfg, 0o600)
    sfbridge.proc.send_signal(signal.SIGHUP)
    wait_daemon(sfbridge, lambda: "configuration not reloaded (the current one stays)" in sfbridge.log(),
                what="the refusal")
    assert "SFBRIDGE_BULK_THRESHOLD must be a whole number" in sfbridge.log()
    assert sfbridge.running() and sfbridge.status_json()["health"]["status"] == "healthy"
    sfbridge.stop()  # SIGTERM, exit 0
    wait_for(lambda: any("STOPPING=1" in m for m in _messages(sock, got)), timeout=10, what="STOPPING=1")
    log = sfbridge.log(1000)
    tail = log[log.rfind("configuration not reloaded"):]
    assert " warn " not in tail and " error " not in tail, tail


def test_json_logs_one_object_per_line_and_repeats_counted(sfbridge, sf):
    """SFBRIDGE_LOG_FORMAT=json: every line one JSON object with stable keys; a Salesforce outage
    gives a few warnings per call site and a count of the rest, not one line per retry (issue 15)."""
    import json
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name", "--poll", "1")
    sfbridge.start(env={"SFBRIDGE_LOG_FORMAT": "json", "SFBRIDGE_BACKOFF_CAP_MS": "200"})
    wait_daemon(sfbridge, lambda: sfbridge.mapping_status("Account")["state"] == "DATA_SYNCED",
                what="the initial load")
    sf.set_faults([{"path": "/services/data/v60.0/*", "error_rate": 1.0, "status": 503}])
    # an outage long enough for many failed polls (each with its retries)
    wait_daemon(sfbridge, lambda: sfbridge.mapping_status("Account")["errors"] >= 12,
                what="a dozen failed polls", timeout=120)
    sf.clear_faults()
    sfbridge.stop()
    lines = [ln for ln in sfbridge.log(5000).splitlines() if ln.startswith("{")]
    recs = [json.loads(ln) for ln in lines]
    assert recs and all({"ts", "level", "msg"} <= set(r) for r in recs), lines[:5]
    assert any(r.get("object") == "Account" for r in recs)
    assert any(r.get("component") == "sfapi" for r in recs)
    warns = [r for r in recs if r["level"] == "warn"]
    by_msg = {}
    for r in warns:
        key = (r.get("component"), r.get("object"), "; retry " in r["msg"], " failed" in r["msg"])
        by_msg[key] = by_msg.get(key, 0) + 1
    assert max(by_msg.values()) <= 4, by_msg
    assert any(r.get("repeated") for r in warns), "the held-back warnings were not counted"
