"""`sfbridge diagnose [OBJECT]` (issue 15): Heroku Connect's diagnose checks and more, each GREEN,
YELLOW or RED with a reason and a fix; exit 0 / 1 / 2 by the worst."""
import json
from pathlib import Path

import pytest

DREAM_ORG = Path(__file__).resolve().parents[2] / "examples" / "dream-org.json"


@pytest.fixture
def dream(new_database, sfbridge_factory, localforce_factory):
    lf = localforce_factory(org=DREAM_ORG)
    sfb = sfbridge_factory(new_database().url, lf, name="dream")
    sfb.init()
    return sfb


def _checks(sfb, *args, status):
    r = sfb.run("diagnose", *args, "--json", check=False)
    assert r.returncode == status, r
    return {(c["object"], c["check"]): c for c in json.loads(r.stdout)}


def test_a_healthy_read_only_mapping_is_green(dream):
    dream.add("Account", "--fields", "Name")
    dream.once()
    c = _checks(dream, "Account", status=0)
    assert c[("connection", "salesforce")]["status"] == "GREEN"
    assert c[("connection", "postgres privileges")]["status"] == "GREEN"
    assert c[("connection", "trigger log")]["status"] == "GREEN"
    assert c[("Account", "state")]["status"] == "GREEN"
    assert c[("Account", "unique identifier")]["status"] == "GREEN"
    assert all(x["status"] == "GREEN" for x in c.values()), c
    text = dream.run("diagnose", "Account").stdout
    assert "GREEN" in text and "Account" in text


def test_read_write_without_unique_identifier_or_required_fields(dream):
    dream.run("mapping", "add", "Teacher__c", "--fields", "Name,Subject__c", "--access", "read_write")
    c = _checks(dream, "Teacher__c", status=2)
    u = c[("Teacher__c", "unique identifier")]
    assert u["status"] == "YELLOW" and "Read-write mappings require a unique identifier" in u["reason"]
    assert "--upsert-field" in u["fix"] and "Email__c" in u["fix"], u
    req = c[("Teacher__c", "required fields")]
    assert req["status"] == "RED" and "First_Name__c" in req["reason"] and "Last_Name__c" in req["reason"]
    assert req["fix"] == "sfbridge mapping edit Teacher__c --add-fields First_Name__c,Last_Name__c", req
    dream.run("mapping", "edit", "Teacher__c", "--add-fields", "First_Name__c,Last_Name__c,Email__c",
              "--upsert-field", "Email__c")
    c = _checks(dream, "Teacher__c", status=0)
    assert c[("Teacher__c", "required fields")]["status"] == "GREEN"


def test_budget_spent_and_unknown_object(dream):
    dream.add("Account", "--fields", "Name")
    dream.once()
    dream.run("mapping", "edit", "Account", "--max-daily-api-calls", "1")
    c = _checks(dream, status=2)
    b = c[("Account", "daily API budget")]
    assert b["status"] == "RED" and "--max-daily-api-calls" in b["fix"], b
    r = dream.fails("diagnose", "Nope__c")
    assert "Nope__c is not mapped" in r.stderr
