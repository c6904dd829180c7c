"""sfbridge's command line: help, usage errors, configuration (docs/sfbridge.md)."""
import json
import os
import re

import pytest

from lib.sfbridge import Sfbridge

COMMANDS = ["init", "run", "status", "load", "poll", "drift", "reload", "pause", "resume", "mapping",
            "errors", "notifications", "ack", "diagnose"]
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
    ("errors",): ["--hours", "--json"],
    ("notifications",): ["--all", "--hours", "--json"],
    ("ack",): ["--all"],
    ("diagnose",): ["--json"],
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
    ["status", "--log-level", "chatty"],
    ["status", "--watch"],
    ["status", "--watch", "--json"],
    ["stauts"],
    ["retry"],
    ["retry", "abc"],
    ["retry", "--all", "12"],
    ["mapping", "edit", "Teacher__c"],
    ["mapping", "add", "Teacher__c", "Student__c"],
    ["mapping", "add", "Teacher__c", "--read-only", "--access", "read_write"],
    ["pause", "Teacher__c", "Student__c"],
]


# The sentence each usage mistake gets (stderr), exit status 2.
USAGE_MESSAGES = [
    (["status", "--watch"], "--watch needs a value (SECONDS)"),
    (["status", "--watch", "0"], "--watch must be a whole number from 1 to 3600, not '0'"),
    (["stauts"], "unknown command 'stauts'; did you mean status?"),
    (["mapping", "ad", "Teacher__c"], "unknown mapping subcommand 'ad'; did you mean add?"),
    (["status", "--jsno"], "unknown option '--jsno'; did you mean --json?"),
    (["mapping", "add", "Teacher__c", "--pol", "60"], "unknown option '--pol'; did you mean --poll?"),
    (["retry", "abc"], "trigger log ids are whole numbers, not 'abc'"),
    (["mapping", "edit", "Teacher__c"], "nothing to change"),
    (["mapping", "add"], "name the Salesforce object"),
    (["reload", "A", "B"], "unexpected argument 'B'"),
]


@pytest.mark.parametrize("args,message", USAGE_MESSAGES, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_usage_mistakes_are_named(bare, args, message):
    r = bare.fails(*args, status=2, bare=True)
    assert message in r.stderr, r.stderr
    assert "usage: sfbridge" in r.stderr or "(try --help)" in r.stderr, r.stderr


def test_global_options_after_the_command(sfbridge, database):
    sfbridge.run("init", "--schema", "crm")
    assert database.schema_exists("crm")
    r = sfbridge.run("status", "--schema", "crm", "--json", check=False)
    assert json.loads(r.stdout)["connection"] is not None
    sfbridge.run("mapping", "add", "Account", "--fields", "Name", "--schema=crm")
    assert database.table_exists("account", schema="crm")


def test_command_failures_exit_1_and_say_why(sfbridge, database, tmp_path):
    sfbridge.init()
    r = sfbridge.fails("mapping", "import", tmp_path / "nonexistent.json", status=1)
    assert "cannot read" in r.stderr and "No such file" in r.stderr, r.stderr
    assert "line -1" not in r.stderr
    r = sfbridge.fails("retry", "999999", status=1)
    assert "no failed write with id 999999" in r.stderr, r.stderr
    assert "0 failed writes requeued" in r.stdout


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


@pytest.mark.parametrize("mode,why", [(0o644, "read by users other than its owner and group"),
                                      (0o604, "read by users other than its owner and group"),
                                      (0o660, "changed by its group"),
                                      (0o602, "changed by anyone")])
def test_config_file_others_can_read_or_change_is_refused(sfbridge, database, tmp_path, mode, why):
    cfg = tmp_path / "sfbridge.conf"
    cfg.write_text(_config_text(sfbridge))
    os.chmod(cfg, mode)
    r = sfbridge.fails("--config", cfg, "init", bare=True)
    assert str(cfg) in r.stderr, f"the refusal does not name the file:\n{r.stderr}"
    assert why in r.stderr and "chmod 600" in r.stderr, r.stderr
    r = sfbridge.fails("init", bare=True, env={"SFBRIDGE_CONFIG": cfg})
    assert str(cfg) in r.stderr
    assert not database.schema_exists("salesforce")


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400])
def test_config_file_for_owner_and_group_is_used(sfbridge, database, tmp_path, mode):
    """0640 (root:sfbridge) is the usual service layout."""
    cfg = tmp_path / "sfbridge.conf"
    cfg.write_text(_config_text(sfbridge))
    os.chmod(cfg, mode)
    sfbridge.run("--config", cfg, "init", bare=True)
    assert database.table_exists("_sfbridge_connection")
    sfbridge.run("mapping", "list", bare=True, env={"SFBRIDGE_CONFIG": cfg})


def test_config_file_comments_quotes_and_export(sfbridge, database, localforce, tmp_path):
    """A comment after a value is not part of it; `export NAME=value` lines (a shell's) work."""
    env = dict(sfbridge.base_env)
    password, secret = env.pop("SF_PASSWORD"), env.pop("SF_CLIENT_SECRET")
    lines = [f"{k} = {v}" for k, v in env.items() if v is not None]
    lines += [f"SF_PASSWORD = {password}   # the integration user's",
              f"export SF_CLIENT_SECRET='{secret}'  # quoted, then a comment",
              "export SFBRIDGE_SCHEMA=\"crm\"",
              "SFBRIDGE_LOG_LEVEL = warn#no space before the hash: part of the value"]
    cfg = tmp_path / "sfbridge.conf"
    cfg.write_text("\n".join(lines[:-1]) + "\n")
    os.chmod(cfg, 0o600)
    sfbridge.run("--config", cfg, "init", bare=True)
    assert database.table_exists("_sfbridge_connection", schema="crm")
    cfg.write_text("\n".join(lines) + "\n")
    r = sfbridge.fails("--config", cfg, "status", bare=True)
    assert "SFBRIDGE_LOG_LEVEL must be debug, info, warn or error" in r.stderr, r.stderr
    cfg.write_text("SF_PASSWORD = 'unclosed\n")
    r = sfbridge.fails("--config", cfg, "status", bare=True)
    assert f"{cfg}:1" in r.stderr and "closing quote" in r.stderr, r.stderr


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
    # status says "down" (2) when there is no database to look at
    r = sfbridge.fails(*args, env={"DATABASE_URL": None}, status=2 if args == ["status"] else 1)
    assert "DATABASE_URL" in r.stderr, r.stderr


@pytest.mark.parametrize("missing", ["SF_CLIENT_ID", "SF_CLIENT_SECRET"])
def test_missing_salesforce_settings_are_named(sfbridge, missing):
    r = sfbridge.fails("init", env={missing: None})
    assert missing in r.stderr, r.stderr


def test_missing_credentials_are_named(sfbridge):
    # (SF_CLIENT_ID and SF_CLIENT_SECRET alone are the client credentials flow: gone too)
    r = sfbridge.fails("init", env={"SF_USERNAME": None, "SF_PASSWORD": None, "SF_REFRESH_TOKEN": None,
                                    "SF_CLIENT_SECRET": None})
    assert "no Salesforce credentials" in r.stderr, r.stderr
    for name in ("SF_JWT_KEY_FILE", "SF_REFRESH_TOKEN", "SF_USERNAME", "SF_CLIENT_SECRET"):
        assert name in r.stderr, r.stderr


def test_only_the_missing_half_of_the_credentials_is_named(sfbridge):
    r = sfbridge.fails("init", env={"SF_PASSWORD": None})
    assert "SF_PASSWORD is not set" in r.stderr, r.stderr
    r = sfbridge.fails("init", env={"SF_USERNAME": None})
    assert "SF_USERNAME is not set" in r.stderr, r.stderr


def test_bad_numeric_setting_is_named(sfbridge):
    r = sfbridge.fails("status", env={"SFBRIDGE_BULK_THRESHOLD": "lots"})
    assert "SFBRIDGE_BULK_THRESHOLD" in r.stderr, r.stderr


@pytest.mark.parametrize("name,value,want", [
    ("SF_API_VERSION", "abc", "a version such as 60.0"),
    ("SF_API_VERSION", "v60.0", "a version such as 60.0"),
    ("SF_LOGIN_URL", "login.salesforce.com", "an https:// URL such as https://login.salesforce.com"),
    ("SFBRIDGE_CONFLICT_POLICY", "newest", "last_writer_wins, salesforce_wins or postgres_wins"),
])
def test_bad_text_setting_is_named(sfbridge, database, name, value, want):
    r = sfbridge.fails("init", env={name: value})
    assert f"{name} must be {want}, not '{value}'" in r.stderr, r.stderr
    assert not database.schema_exists("salesforce")


@pytest.mark.parametrize("url,want", [
    ("garbage", "DATABASE_URL is not a Postgres connection string"),
    ("mysql://root:hunter2@db/app", "DATABASE_URL is a mysql:// URL; sfbridge needs a Postgres one"),
    ("host=127.0.0.1 dbname", "DATABASE_URL is not a Postgres connection string"),
])
def test_database_url_that_is_not_postgres_is_named(sfbridge, url, want):
    r = sfbridge.fails("status", env={"DATABASE_URL": url}, status=2)
    assert want in r.stderr, r.stderr
    assert "/var/run/postgresql" not in r.stderr and "hunter2" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, f"one line, not libpq's several:\n{r.stderr}"


def test_wrong_password_fails_init_without_echoing_it(sfbridge, localforce):
    r = sfbridge.fails("init", env={"SF_PASSWORD": "not-the-Passw0rd-xyz"})
    assert "not-the-Passw0rd-xyz" not in r.stdout + r.stderr
    err = r.stderr
    assert "Salesforce refused the login of SF_USERNAME" in err, err
    assert "SF_PASSWORD" in err and "security token" in err, err


def test_wrong_client_secret_names_the_app_settings(sfbridge):
    r = sfbridge.fails("init", env={"SF_CLIENT_SECRET": "not-the-secret"})
    assert "Salesforce refused the connected app" in r.stderr, r.stderr
    assert "SF_CLIENT_ID" in r.stderr and "SF_CLIENT_SECRET" in r.stderr, r.stderr
    assert "not-the-secret" not in r.stdout + r.stderr


def test_commands_other_than_run_do_not_announce_the_login(sfbridge):
    """`logged in to ...` is a debug line; the daemon says which org it syncs."""
    sfbridge.init()
    r = sfbridge.run("mapping", "add", "Account", "--fields", "Name")
    assert "logged in" not in r.stderr, r.stderr
    r = sfbridge.run("run", "--once")
    assert "logged in" not in r.stderr, r.stderr


def test_unreachable_database_fails_cleanly(sfbridge, pg_cluster):
    from lib.pgcluster import free_port
    r = sfbridge.fails("status", env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"},
                       timeout=60, status=2)
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
        r = sfbridge.run("--log-level", "debug", *args, check=args[0] != "status")
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
