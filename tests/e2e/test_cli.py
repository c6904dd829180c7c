"""sfbridge's command line: help, usage errors, configuration (docs/sfbridge.md)."""
import json
import os
import re

import pytest

from lib.sfbridge import Sfbridge

COMMANDS = ["init", "run", "status", "load", "poll", "drift", "reload", "pause", "resume", "mapping"]
MAPPING_COMMANDS = ["add", "edit", "list", "show", "remove", "export", "import"]

# Each command's help must mention these (its options, or its subcommands).
HELP_MENTIONS = {
    ("init",): [],
    ("run",): ["--once"],
    ("status",): ["--json", "--watch"],
    ("load",): [],
    ("poll",): [],
    ("drift",): [],
    ("reload",): [],
    ("pause",): [],
    ("resume",): [],
    ("mapping",): MAPPING_COMMANDS,
    ("mapping", "add"): ["--fields", "--all-fields", "--access", "--poll", "--upsert-field", "--index",
                         "--tombstones", "--accelerated"],
    ("mapping", "edit"): ["--add-fields", "--remove-fields", "--poll", "--access", "--upsert-field",
                          "--no-upsert-field", "--index", "--tombstones", "--no-tombstones"],
    ("mapping", "list"): [],
    ("mapping", "show"): ["--json"],
    ("mapping", "remove"): ["--drop-table"],
    ("mapping", "export"): ["--out"],
    ("mapping", "import"): [],
}


@pytest.fixture
def bare(tmp_path):
    """sfbridge with no configuration at all."""
    return Sfbridge(tmp_path / "bare")


def test_top_level_help_lists_every_command(bare):
    r = bare.run("--help", bare=True)
    text = r.stdout
    assert "usage" in text.lower(), text
    for cmd in COMMANDS:
        assert re.search(rf"\b{cmd}\b", text), f"sfbridge --help does not mention '{cmd}':\n{text}"
    for sub in MAPPING_COMMANDS:
        assert re.search(rf"mapping {sub}\b|\b{sub}\b", text), f"--help does not mention mapping {sub}"
    for opt in ("--config", "--schema", "--log-level"):
        assert opt in text, f"sfbridge --help does not mention {opt}:\n{text}"


@pytest.mark.parametrize("words", list(HELP_MENTIONS), ids=lambda w: "-".join(w))
def test_every_command_answers_help(bare, words):
    r = bare.run(*words, "--help", bare=True)
    text = r.stdout
    assert "usage" in text.lower(), f"sfbridge {' '.join(words)} --help printed no usage:\n{text}"
    assert " ".join(words) in text, f"the help does not name the command:\n{text}"
    for m in HELP_MENTIONS[words]:
        assert _mentions(text, m), f"sfbridge {' '.join(words)} --help does not mention {m}:\n{text}"


def _mentions(text, word):
    """word is in the help, also as "--[no-]tombstones" for --tombstones / --no-tombstones."""
    if word in text:
        return True
    if word.startswith("--"):
        base = word[5:] if word.startswith("--no-") else word[2:]
        return f"--[no-]{base}" in text
    return False


BAD_USAGE = [
    [],
    ["frobnicate"],
    ["--no-such-option", "status"],
    ["status", "--bogus"],
    ["status", "--watch", "often"],
    ["run", "--twice"],
    ["reload"],
    ["mapping"],
    ["mapping", "frobnicate"],
    ["mapping", "add"],
    ["mapping", "add", "Teacher__c", "--poll"],
    ["mapping", "add", "Teacher__c", "--poll", "soon"],
    ["mapping", "add", "Teacher__c", "--access", "sideways"],
    ["mapping", "add", "Teacher__c", "--fields", "Name", "--all-fields"],
    ["mapping", "edit"],
    ["mapping", "show"],
    ["mapping", "remove"],
    ["mapping", "import"],
    ["--log-level", "chatty", "status"],
]


@pytest.mark.parametrize("args", BAD_USAGE, ids=lambda a: " ".join(a) or "(nothing)")
def test_bad_usage_exits_2_and_changes_nothing(sfbridge, database, args):
    r = sfbridge.fails(*args, status=2)
    assert r.stderr.strip(), "a usage error must say what is wrong on stderr"
    assert not database.schema_exists("salesforce"), "a usage error changed the database"


def _config_text(sfbridge, **over):
    settings = {k: v for k, v in sfbridge.base_env.items()}
    settings.update(over)
    lines = ["# sfbridge test configuration", ""]
    lines += [f"{k} = {v}" for k, v in settings.items() if v is not None]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_config_file_readable_by_others_is_refused(sfbridge, database, tmp_path, mode):
    cfg = tmp_path / "sfbridge.conf"
    cfg.write_text(_config_text(sfbridge))
    os.chmod(cfg, mode)
    r = sfbridge.fails("--config", cfg, "init", bare=True)
    assert str(cfg) in r.stderr, f"the refusal does not name the file:\n{r.stderr}"
    r = sfbridge.fails("init", bare=True, env={"SFBRIDGE_CONFIG": cfg})
    assert str(cfg) in r.stderr
    assert not database.schema_exists("salesforce")


def test_config_file_with_mode_600_is_used(sfbridge, database, tmp_path):
    cfg = tmp_path / "sfbridge.conf"
    cfg.write_text(_config_text(sfbridge))
    os.chmod(cfg, 0o600)
    sfbridge.run("--config", cfg, "init", bare=True)
    assert database.table_exists("_sfbridge_connection")
    sfbridge.run("mapping", "list", bare=True, env={"SFBRIDGE_CONFIG": cfg})


def test_environment_wins_over_config_file(sfbridge, database, tmp_path):
    cfg = tmp_path / "sfbridge.conf"
    cfg.write_text(_config_text(sfbridge, SFBRIDGE_SCHEMA="from_file"))
    os.chmod(cfg, 0o600)
    sfbridge.run("--config", cfg, "init", env={"SFBRIDGE_SCHEMA": "from_env"})
    assert database.schema_exists("from_env")
    assert not database.schema_exists("from_file")


def test_config_file_errors_name_the_line(sfbridge, tmp_path):
    cfg = tmp_path / "bad.conf"
    cfg.write_text("# comment\nthis line has no equals sign\n")
    os.chmod(cfg, 0o600)
    r = sfbridge.fails("--config", cfg, "status", bare=True)
    assert f"{cfg}:2" in r.stderr, r.stderr
    r = sfbridge.fails("--config", tmp_path / "missing.conf", "status", bare=True)
    assert "missing.conf" in r.stderr


@pytest.mark.parametrize("args", [["status"], ["init"], ["mapping", "list"], ["run", "--once"]],
                         ids=lambda a: " ".join(a))
def test_missing_database_url_is_named(sfbridge, args):
    r = sfbridge.fails(*args, env={"DATABASE_URL": None})
    assert "DATABASE_URL" in r.stderr, r.stderr


@pytest.mark.parametrize("missing", ["SF_CLIENT_ID", "SF_CLIENT_SECRET"])
def test_missing_salesforce_settings_are_named(sfbridge, missing):
    r = sfbridge.fails("init", env={missing: None})
    assert missing in r.stderr, r.stderr


def test_missing_credentials_are_named(sfbridge):
    r = sfbridge.fails("init", env={"SF_USERNAME": None, "SF_PASSWORD": None, "SF_REFRESH_TOKEN": None})
    assert "SF_REFRESH_TOKEN" in r.stderr or "SF_USERNAME" in r.stderr, r.stderr


def test_bad_numeric_setting_is_named(sfbridge):
    r = sfbridge.fails("status", env={"SFBRIDGE_BULK_THRESHOLD": "lots"})
    assert "SFBRIDGE_BULK_THRESHOLD" in r.stderr, r.stderr


def test_wrong_password_fails_init_without_echoing_it(sfbridge):
    r = sfbridge.fails("init", env={"SF_PASSWORD": "not-the-Passw0rd-xyz"})
    assert r.stderr.strip()
    assert "not-the-Passw0rd-xyz" not in r.stdout + r.stderr


def test_unreachable_database_fails_cleanly(sfbridge, pg_cluster):
    from lib.pgcluster import free_port
    r = sfbridge.fails("status", env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"},
                       timeout=60)
    assert r.stderr.strip()


def test_init_creates_state_and_records_the_org(sfbridge, database, sf):
    sfbridge.init()
    for t in ("_sfbridge_connection", "_sfbridge_mapping", "_hcmeta"):
        assert database.table_exists(t), f"init did not create salesforce.{t}"
    row = json.dumps([r[0] for r in database.query(
        "SELECT row_to_json(c)::text FROM salesforce._sfbridge_connection c")])
    assert sf.org_id[:15] in row, f"the connection row does not hold the org id {sf.org_id}: {row}"
    sfbridge.init()  # idempotent
    assert database.scalar("SELECT count(*) FROM salesforce._sfbridge_connection") == 1


def test_schema_option_and_setting(sfbridge, database):
    sfbridge.run("--schema", "crm", "init")
    assert database.table_exists("_sfbridge_connection", schema="crm")
    sfbridge.run("init", env={"SFBRIDGE_SCHEMA": "crm2"})
    assert database.table_exists("_sfbridge_connection", schema="crm2")
    assert not database.schema_exists("salesforce")
    sfbridge.run("--schema", "crm", "mapping", "add", "Account", "--all-fields")
    assert database.table_exists("account", schema="crm")


def test_secrets_are_never_logged_or_stored(sfbridge, database, localforce, tmp_path):
    secrets = [localforce.password, localforce.client_secret]
    outputs = []
    for args in (["init"], ["mapping", "add", "Teacher__c", "--all-fields"], ["run", "--once"], ["status"],
                 ["status", "--json"], ["mapping", "export"], ["mapping", "show", "Teacher__c", "--json"]):
        r = sfbridge.run("--log-level", "debug", *args)
        outputs.append(r.stdout + r.stderr)
    sfbridge.run("mapping", "export", "--out", tmp_path / "export.json")
    outputs.append((tmp_path / "export.json").read_text())
    for secret in secrets:
        for out in outputs:
            assert secret not in out, "a secret appears in sfbridge's output"
    for (table,) in database.query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'salesforce' AND c.relkind = 'r'"):
        dump = " ".join(r[0] for r in database.query(f'SELECT row_to_json(t)::text FROM salesforce."{table}" t'))
        for secret in secrets:
            assert secret not in dump, f"a secret is stored in salesforce.{table}"
