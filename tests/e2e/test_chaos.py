"""The chaos convergence suite, short form (issue 12; the engine is lib/chaos.py,
the long form tests/chaos/run.py).

Both read-write mappings (Teacher__c upserted by Email__c, Contact without an
External ID), accelerated; apps writing in Postgres and a person in Salesforce
writing through REST at the same time (sfbridge's user is its own:
SFBRIDGE_DEDICATED_USER=1); localforce's faults cycling; a handful of
kill -9s of sfbridge, one immediate Postgres restart and one localforce
restart; then a record-by-record comparison: nothing lost, duplicated or
diverged, no FAILED entry. About two minutes.
"""
import os

from lib.chaos import CHAOS_ORG, Campaign

KILLS = int(os.environ.get("SFBRIDGE_CHAOS_KILLS", "5"))
SEED = int(os.environ.get("SFBRIDGE_CHAOS_SEED", "12"))


def test_chaos_short(pg_cluster, database, localforce_factory, sfbridge_factory, tmp_path):
    lf = localforce_factory(org=CHAOS_ORG, db=tmp_path / "org.sqlite",
                            env={"LOCALFORCE_FAULTS_SEED": str(SEED)})
    sfb = sfbridge_factory(database.url, lf, name="sfbridge")
    campaign = Campaign(pg_cluster=pg_cluster, db_url=database.url, lf=lf, sfbridge=sfb, mode="accelerated",
                        policy="last_writer_wins", kills=KILLS, seed=SEED, kill_every=(4.0, 9.0), settle_s=60)
    report = campaign.run()
    print(report.text())
    assert report.ok, report.text()
