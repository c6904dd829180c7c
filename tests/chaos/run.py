#!/usr/bin/env python3
"""The chaos convergence campaign, long form (issue 12). See tests/chaos/README.md.

  tests/chaos/run.py --kills 120 --mode both --policy all --seed 7

Runs one campaign per (mode, policy) pair, each in a fresh database and a fresh
localforce org, sharing the kills between them, and prints for each run its
summary, its problems with their evidence, and at the end

  chaos: K kills, L lost, D duplicated, V diverged, F failed

Exit status 0 when all four are 0. Binaries: $SFBRIDGE_BIN (default
build/sfbridge), $LOCALFORCE_BIN (default build/localforce).
"""
import argparse
import itertools
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from lib.chaos import CHAOS_ORG, MODES, POLICIES, Campaign, Report  # noqa: E402
from lib.localforce import Localforce  # noqa: E402
from lib.pgcluster import PgCluster  # noqa: E402
from lib.sfbridge import Sfbridge  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=100, help="kill -9s in all (shared between the runs)")
    ap.add_argument("--mode", choices=[*MODES, "both"], default="both")
    ap.add_argument("--policy", choices=[*POLICIES, "all"], default="all")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kill-every", type=float, nargs=2, default=(3.0, 7.0), metavar=("MIN", "MAX"),
                    help="seconds between kills (uniform)")
    ap.add_argument("--apps", type=int, default=2, help="app sessions writing in Postgres")
    ap.add_argument("--settle", type=int, default=120, help="seconds allowed to converge after the chaos")
    ap.add_argument("--max-kills-per-run", type=int, default=40,
                    help="a longer share is split into several runs (each with its own restarts)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, org database)")
    ap.add_argument("--problems", type=int, default=25, help="problems printed per run, with evidence")
    args = ap.parse_args()

    modes = MODES if args.mode == "both" else (args.mode,)
    policies = POLICIES if args.policy == "all" else (args.policy,)
    combos = list(itertools.product(modes, policies))
    per_combo = max(1, math.ceil(args.kills / len(combos)))
    runs = []
    for mode, policy in combos:
        left = per_combo
        while left > 0:
            n = min(left, args.max_kills_per_run)
            runs.append((mode, policy, n))
            left -= n

    work = Path(tempfile.mkdtemp(prefix="sfbridge-chaos-"))
    cluster = PgCluster()
    cluster.start()
    totals = {"kills": 0, "lost": 0, "duplicated": 0, "diverged": 0, "failed": 0}
    began = time.monotonic()
    try:
        for i, (mode, policy, kills) in enumerate(runs):
            seed = args.seed * 100 + i
            db = cluster.create_database()
            lf = Localforce(work / f"run{i}" / "localforce", org=CHAOS_ORG, db=work / f"run{i}" / "org.sqlite",
                            env={"LOCALFORCE_FAULTS_SEED": str(seed)})
            lf.start()
            sfb = Sfbridge(work / f"run{i}" / "sfbridge", db.url, lf)
            print(f"== run {i + 1}/{len(runs)}: {mode}, {policy}, {kills} kills, seed {seed}", flush=True)
            try:
                rep = Campaign(pg_cluster=cluster, db_url=db.url, lf=lf, sfbridge=sfb, mode=mode, policy=policy,
                               kills=kills, seed=seed, kill_every=tuple(args.kill_every), n_apps=args.apps,
                               settle_s=args.settle, log=lambda m: print(m, flush=True)).run()
            except Exception as exc:  # noqa: BLE001 - a run that could not finish is a failure
                rep = Report()
                rep.notes.append(f"the run did not finish: {exc!r}")
                rep.problems.append(__import__("lib.chaos", fromlist=["Problem"]).Problem(
                    "failed", "-", "-", f"the run did not finish: {exc!r}", sfb.log(80)))
            finally:
                sfb.cleanup()
                lf.stop()
                db.close()
            print(rep.text(args.problems), flush=True)
            totals["kills"] += rep.kills
            for k in ("lost", "duplicated", "diverged", "failed"):
                totals[k] += rep.count(k)
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}")
    print(f"\n{len(runs)} runs in {time.monotonic() - began:.0f} s")
    print(f"chaos: {totals['kills']} kills, {totals['lost']} lost, {totals['duplicated']} duplicated, "
          f"{totals['diverged']} diverged, {totals['failed']} failed")
    return 0 if all(totals[k] == 0 for k in ("lost", "duplicated", "diverged", "failed")) else 1


if __name__ == "__main__":
    sys.exit(main())
