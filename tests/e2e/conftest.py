"""Fixtures of the sfbridge end-to-end tests.

  pg_cluster        (session)  a private Postgres 15 cluster, stopped at the end
  database          (function) a fresh database in it (database.url is DATABASE_URL)
  new_database      (function) factory: more fresh databases
  localforce        (function) a localforce server with tests/e2e/fixtures/school-org.json
  localforce_factory(function) factory: localforce with extra args / env (faults ...)
  sf                (function) SfClient logged in to `localforce` (API 59.0)
  sfbridge          (function) Sfbridge for `database` + `localforce`
  sfbridge_factory  (function) factory: Sfbridge for another database / overrides

Binaries: $SFBRIDGE_BIN (default build/sfbridge), $LOCALFORCE_BIN (default
build/localforce). When a test fails, the tail of the daemon's output, the
last CLI runs and localforce's log are printed with the failure.
"""
import atexit
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib.localforce import Localforce  # noqa: E402
from lib.pgcluster import PgCluster  # noqa: E402
from lib.sfbridge import Sfbridge  # noqa: E402


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, "rep_call", None)
    setup = getattr(request.node, "rep_setup", None)
    return (rep is not None and rep.failed) or (setup is not None and setup.failed)


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = PgCluster()
    atexit.register(cluster.stop)  # also when the session is interrupted
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def new_database(pg_cluster):
    made = []

    def make():
        db = pg_cluster.create_database()
        made.append(db)
        return db

    yield make
    for db in made:
        db.close()
        try:
            pg_cluster.drop_database(db.name)
        except Exception:  # noqa: BLE001 - a database left behind is harmless
            pass


@pytest.fixture
def database(new_database):
    return new_database()


@pytest.fixture
def localforce_factory(tmp_path, request):
    started = []

    def make(args=(), env=None, org=None, db=None):
        kw = {"args": args, "env": env}
        if org is not None:
            kw["org"] = org
        if db is not None:
            kw["db"] = db
        lf = Localforce(tmp_path / f"localforce-{len(started) + 1}", **kw)
        started.append(lf)
        return lf.start()

    yield make
    bad = []
    for lf in started:
        if _failed(request):
            print(lf.log())
        rc = lf.stop()
        if rc not in (0, None):
            bad.append(f"localforce exited {rc} on SIGTERM\n{lf.log()}")
    if bad:
        pytest.fail("\n".join(bad))


@pytest.fixture
def localforce(localforce_factory):
    return localforce_factory()


@pytest.fixture
def sf(localforce):
    client = localforce.client()
    client.login()
    return client


@pytest.fixture
def sfbridge_factory(tmp_path, request, new_database, localforce_factory):
    # (depends on the database and localforce factories so that its teardown, which
    # kills a daemon left running, comes before theirs)
    made = []

    def make(database_url, localforce, overrides=None, name=None):
        sfb = Sfbridge(tmp_path / (name or f"sfbridge-{len(made) + 1}"), database_url, localforce, overrides)
        made.append(sfb)
        return sfb

    yield make
    for sfb in made:
        if _failed(request):
            if sfb.proc is not None or sfb._log_path:
                print(sfb.log())
            if sfb.history:
                print("--- last sfbridge commands ---\n" + sfb.recent_output(3))
        sfb.cleanup()


@pytest.fixture
def sfbridge(sfbridge_factory, database, localforce):
    return sfbridge_factory(database.url, localforce, name="sfbridge")
