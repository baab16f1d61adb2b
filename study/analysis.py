"""
The analysis step of a study: analyze.py's measures of every finished run (analysis.json, reused unless the
run's ckpt.pt is newer), and the float64 exactness test the norm study and the findings table report.
"""

import json
import os
import re
import subprocess
import sys
import time

from study import launch
from study.studies import EXACTNESS_TEST

# --------------------------------------------------------------------------------------------

def analyze_runs(runs, runs_dir, records, analysis, device, plots=True):
    """analysis.json of every finished run (the failed ones have none)."""
    for run in runs:
        record = records.get(run.name)
        if record is not None and not record.get("failed"):
            try:
                record["analysis"] = analyze_run(run, os.path.join(runs_dir, run.name), analysis, device, plots)
            except (Exception, SystemExit) as e:  # one line; the trained runs stay and are reused next time
                raise SystemExit(f"error: analyzing {run.name} failed ({type(e).__name__}: {e}); the trained runs are "
                                 f"kept (reused next time); pass --no_analysis to write the tables without it"
                                 + ("" if not plots else ", or --no_plots to skip only its plots")) from None


def analyze_run(run, out_dir, analysis, device, plots=True):
    """analysis.json of the run (recomputed when missing or older than ckpt.pt; shipped run records have no
    ckpt.pt: their analysis.json is used)."""
    import analyze
    path = os.path.join(out_dir, "analysis.json")
    ckpt = os.path.join(out_dir, "ckpt.pt")
    if os.path.exists(path) and (not os.path.exists(ckpt) or os.path.getmtime(path) >= os.path.getmtime(ckpt)):
        with open(path) as f:
            return json.load(f)
    t0 = time.time()
    r = analyze.analyze_checkpoint(out_dir, dataset=run.args.get("dataset"), data_dir=run.args.get("data_dir"),
                                   batches=analysis["batches"], batch_size=analysis["batch_size"], split="val",
                                   device=device, plots=plots)
    print(f"    analyzed {run.name} in {time.time() - t0:.0f} s", flush=True)
    return r


def exactness_test(threads=None):
    """Run the float64 equivalence test of tests/test_model.py and return its one-line verdict."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", EXACTNESS_TEST],
                         capture_output=True, text=True, env={**os.environ, **launch.thread_env(threads)})
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    summary = re.sub(r" in [0-9.]+s.*$", "", lines[-1].strip("= ")) if lines else out.stderr[-200:]  # no timing
    return {"test": EXACTNESS_TEST, "returncode": out.returncode, "summary": summary}
