"""
The staged findings study (python ablate.py findings): train or reuse the lr sweep, extend it where an arm's best
lr sits at an edge, train the table's rows (each arm at its best lr with 5 seeds, the depth arms also at the
papers' shared lr), analyze them (analysis.json, quant.json, heldout.json), write the table
(study/findings_table.py). A run that diverges is kept as a failed run (its done marker says so), never retrained
or dropped. A loss verdict whose evaluation noise the records cannot bound (one run's standard error above 1/5 of
the difference, no per-sequence losses kept) has its runs retrained as copies to measure the paired error
(recheck_evaluation, results/findings/recheck/runs/).
"""

import json
import math
import os
import sys
import time

from study.findings import (FINDINGS_CALIBRATION, FINDINGS_NORM, FINDINGS_SEEDS, OSP_ARM, PAPERS_LR, SWEEP, _json, choose_lrs, collect, findings_plan, findings_rows,
                            findings_thread_seconds, unigram_loss)
from study.findings_table import plot_sweeps, write_findings


def findings_study(args, overrides, argv):
    """python ablate.py findings: train (or reuse) the sweep, extend it where a best lr sits at an edge, train the
    table's rows, analyze them and write the table. A run that diverges is recorded as such (its done marker says
    so) and counted as a failure, not retrained; any other failure stops the study."""
    import torch

    from study import launch, records
    from study.analysis import exactness_test
    # the analysis in this process (analysis.json, heldout.json) on the runs' thread count: on a CPU the training
    # runs keep busy, a second thread spin-waits for its descheduled peer (a 40x slower evaluation, measured)
    torch.set_num_threads(args.threads or 1)
    t0 = time.time()
    own = FINDINGS_NORM["dataset"]
    dataset, note = records.resolve_dataset({**FINDINGS_NORM, **overrides}, args.dry_run)
    if dataset != own:
        overrides = {**overrides, "dataset": dataset}
    suffix = records.folder_suffix({k: v for k, v in overrides.items() if k != "dataset"}, own, dataset)
    results_dir = args.results or os.path.join("results", "findings" + (f"_{suffix}" if suffix else ""))
    runs_dir = args.runs_dir or os.path.join(results_dir, "runs")
    data_dir = overrides.get("data_dir", "data")
    extensions, trained = {}, 0
    unigram = unigram_loss(data_dir, dataset) if not note else None
    while True:
        metrics = collect(findings_plan(overrides, None, extensions), runs_dir) if unigram else {}
        best, more, sweep = choose_lrs(metrics, unigram, extensions) if unigram else ({}, {}, {})
        new = {arm: lrs for arm, lrs in more.items() if not set(lrs) <= set(extensions.get(arm, ()))}
        for arm, lrs in new.items():
            print(f"findings: {arm[1]}'s best lr is at an edge of its sweep: adding lr {lrs[0]:g}", flush=True)
            extensions[arm] = sorted(set(extensions.get(arm, ())) | set(lrs))
        complete = len(best) == len(SWEEP)
        runs = findings_plan(overrides, best, extensions)
        planned = {r.name: records.planned_record(r) for r in runs}
        decisions = {r.name: records.decide(os.path.join(runs_dir, r.name), planned[r.name], args.on_mismatch)
                     for r in runs}
        todo = [r for r in runs if decisions[r.name].action != "reuse"]
        if args.dry_run:
            return findings_dry_run(args, runs, todo, decisions, runs_dir, results_dir, note, complete)
        refused = [r for r in todo if decisions[r.name].action == "refuse"]
        if refused:
            for r in refused:
                print(f"refused {os.path.join(runs_dir, r.name)}: {decisions[r.name].diff}", file=sys.stderr)
            raise SystemExit(f"error: {len(refused)} run(s) were trained with other settings than this study asks "
                             f"for; pass --on_mismatch=retrain, delete them, or pass another --runs_dir; nothing "
                             f"more was trained")
        if todo:
            print(f"findings: {len(runs) - len(todo)} of {len(runs)} planned runs reused, training {len(todo)}"
                  + ("" if complete else " (the lr sweep; the table's rows follow from its best lrs)"), flush=True)
            result = launch.execute(todo, runs_dir, decisions, launch.slots(jobs=args.jobs), threads=args.threads or 1)
            trained += len(todo)
            record_divergences(result, runs_dir)
            continue
        if unigram is None:
            unigram = unigram_loss(data_dir, dataset)
            continue
        if new or not complete:
            continue
        break
    print(f"findings: reused {len(runs) - trained} of {len(runs)} runs, trained {trained}", flush=True)
    if not args.no_analysis:  # every run, the sweep's too: the kurtosis grid searches all of them (OSP row)
        analyze_trained_runs(runs, runs_dir)
    exact = exactness_test(args.threads or 1) if not args.no_exactness_test else None
    metrics = collect(runs, runs_dir)
    rows = findings_rows(metrics, best, unigram, exact)
    if keep_sequence_losses(rows, metrics):  # runs trained now: their heldout.json, for the paired error
        rows = findings_rows(metrics, best, unigram, exact)
    recheck = recheck_evaluation(rows, runs, runs_dir, results_dir, args)
    about = provenance(runs, metrics, runs_dir, dataset, data_dir, args)
    # the table's text depends on the runs only (regenerated from the same records it is the same, tested): the
    # command that makes it, not the paths or job count of this invocation, which are said here instead
    command = "python ablate.py findings --jobs=2" + "".join(f" --set {k}={v}" for k, v in overrides.items()
                                                             if k not in ("dataset", "data_dir"))
    summary = write_findings(rows, sweep, best, results_dir, command, about, unigram, metrics, recheck)
    if not args.no_plots:
        plot_sweeps(metrics, extensions, unigram, results_dir)
    from study import provenance as prov
    print(f"wrote {results_dir}/findings.md: {len(rows)} rows from {len(runs)} runs ({trained} trained now) in "
          f"{time.time() - t0:.0f} s at {prov.git_commit()}", flush=True)
    return summary


def keep_sequence_losses(rows, metrics):
    """heldout.json (study/heldout.py) of every run behind a loss row that still has its checkpoint and lacks it;
    returns how many were written."""
    from study import heldout
    written = 0
    for r in rows:
        for config in (r.get("configs") or ()) if r["se"] else ():
            for m in metrics.get(config, {}).values():
                final = heldout.final_eval(m["dir"])
                if final and math.isfinite(final["final_val_loss"]) and heldout.read(m["dir"]) is None \
                        and os.path.exists(os.path.join(m["dir"], "ckpt.pt")):
                    heldout.ensure(m["dir"])
                    written += 1
    return written


def recheck_evaluation(rows, runs, runs_dir, results_dir, args):
    """{(claim id, protocol): result} for each loss verdict whose evaluation noise its records cannot bound: one
    run's standard error is above 1/5 of the difference (findings_table.needs_paired_error) and its runs have no
    per-sequence losses (trained before heldout.json was kept, their checkpoints gone). Its runs are retrained as
    copies under results_dir/recheck/runs (reused when there, as any run), whose per-sequence losses give the
    paired evaluation error; the result also says how far the copies' final losses are from the table's (another
    machine rounds differently) and the copies' own difference and verdict."""
    from study import heldout, launch, records
    from study.findings_table import needs_paired_error
    from study.verdict import paired_verdict
    folder = os.path.join(results_dir, "recheck", "runs")
    by_name = {r.name: r for r in runs}
    out = {}
    for row in rows:
        if not needs_paired_error(row) or row.get("paired_se") is not None:
            continue
        names = [[f"{c}_s{s}" for s in FINDINGS_SEEDS if f"{c}_s{s}" in by_name] for c in row["configs"]]
        copies = [by_name[n] for side in names for n in side]
        decisions = {r.name: records.decide(os.path.join(folder, r.name), records.planned_record(r), args.on_mismatch)
                     for r in copies}
        refused = [n for n, d in decisions.items() if d.action == "refuse"]
        if refused:
            raise SystemExit(f"error: {os.path.join(folder, refused[0])} was not trained as planned "
                             f"({decisions[refused[0]].diff}): pass --on_mismatch=retrain or delete it")
        todo = [r for r in copies if decisions[r.name].action != "reuse"]
        if todo:
            print(f"findings: {row['claim']} ({row['protocol']}): one run's standard error is above 1/5 of the "
                  f"difference and its runs have no per-sequence losses: retraining {len(todo)} copies in {folder}",
                  flush=True)
            result = launch.execute(todo, folder, decisions, launch.slots(jobs=args.jobs), threads=args.threads or 1)
            failed = [n for n, r in result.items() if r.get("failed")]
            if failed:
                raise SystemExit(f"error: the copy {failed[0]} failed, see {folder}/{failed[0]}/train.log")
        held = [[heldout.ensure(os.path.join(folder, n)) for n in side] for side in names]
        final = lambda d, n: heldout.final_eval(os.path.join(d, n))["final_val_loss"]  # noqa: E731
        verdict, iv = paired_verdict(*[[final(folder, n) for n in side] for side in names])
        out[(row["id"], row.get("protocol_key"))] = {
            "paired_se": heldout.paired_se(*held), "runs": len(copies), "verdict": verdict, "interval": iv,
            "machine": launch.read_done(os.path.join(folder, names[0][0])).get("machine"),
            "folder": os.path.relpath(folder, results_dir),
            "max_reproduction_diff": max(abs(final(folder, n) - final(runs_dir, n)) for side in names for n in side)}
    return out


def record_divergences(result, runs_dir):
    """A run that stopped on a non-finite loss failed to train: that is its outcome (a done marker says so), kept
    and counted; any other failure stops the study with the run's last log line."""
    from study import launch, provenance
    others = {}
    for name, rec in result.items():
        if not rec.get("failed"):
            continue
        if "non-finite" in rec.get("reason", ""):
            launch.write_done(os.path.join(runs_dir, name), rec["cmd"], rec.get("wall_s"), outcome="diverged",
                              reason=rec["reason"], machine=provenance.machine(1, "cpu"))
            print(f"    {name}: diverged ({rec['reason']}); counted as a failed run", flush=True)
        else:
            others[name] = rec["reason"]
    if others:
        raise SystemExit("error: " + "; ".join(f"{n} failed: {r}" for n, r in others.items()))


def analyze_trained_runs(runs, runs_dir):
    """analysis.json (depth and optim arms) and quant.json (AdamW and OSP) of the runs that trained; both are kept
    and reused (a fresh clone has them but no checkpoints)."""
    from study.analysis import analyze_run
    for run in runs:
        out_dir = os.path.join(runs_dir, run.name)
        if (_json(os.path.join(out_dir, "done")) or {}).get("outcome", "trained") != "trained":
            continue
        part = run.extra["part"]
        if part != "norm" and not os.path.exists(os.path.join(out_dir, "analysis.json")):
            analyze_run(run, out_dir, {"batches": 2, "batch_size": 8}, "cpu", plots=False)
        if run.extra["variant"] in ("adamw", OSP_ARM[1]):
            write_quant(run, out_dir)


QUANT_BATCHES = 32  # 32 x 16 x 64 = 32,768 held-out tokens for the quantized losses


def write_quant(run, out_dir):
    """quant.json of a trained run, from its checkpoint: analyze.quantization_check (the loss and its increase under
    W4 and W8A8) on QUANT_BATCHES fixed val batches of 16. Kept and reused: nothing to do when it exists."""
    import torch

    import analyze
    from checkpoint import load_checkpoint
    from data import BatchSampler
    if os.path.exists(os.path.join(out_dir, "quant.json")):
        return
    model, _ = load_checkpoint(out_dir, "cpu")
    sampler = BatchSampler(run.args.get("data_dir", "data"), run.args["dataset"], "val", 16,
                           model.config.block_size, seed=4243)
    with torch.no_grad():
        result = analyze.quantization_check(model, [sampler.batch(i) for i in range(QUANT_BATCHES)])
    with open(os.path.join(out_dir, "quant.json"), "w") as f:
        json.dump({**result, "batches": QUANT_BATCHES, "batch_size": 16}, f, indent=1)


def provenance(runs, metrics, runs_dir, dataset, data_dir, args):
    """The header lines, from the run records alone: the commit(s) that trained the runs, the machine(s) (their done
    markers), the dataset, the measured training time and the dry run's projection of it."""
    from study import provenance
    machines = sorted({(_json(os.path.join(runs_dir, r.name, "done")) or {}).get("machine") or "machine not recorded"
                       for r in runs})
    thread_s = sum(m["wall_s"] or 0 for by_seed in metrics.values() for m in by_seed.values())
    projected = sum(findings_thread_seconds(r) for r in runs)
    return [f"{provenance.trained_at([os.path.join(runs_dir, r.name) for r in runs])} on: {'; '.join(machines)}",
            provenance.dataset_line(dataset, data_dir, FINDINGS_NORM["dataset"]),
            f"Training: {len(runs)} runs, {thread_s / 60:.0f} thread-minutes measured (the runs' own wall times; two "
            f"at a time on 2 cores: ~{thread_s / 120:.0f} minutes wall); the dry run projects {projected / 60:.0f} "
            f"thread-minutes, {100 * (projected / max(thread_s, 1) - 1):+.0f}% ({FINDINGS_CALIBRATION})"]


def findings_dry_run(args, runs, todo, decisions, runs_dir, results_dir, note, complete):
    """What the real run would do now: the decision and command per run, and the projected time."""
    from study.launch import shown, train_command
    if note:
        print(f"# {note}")
    print(f"# runs in {runs_dir}, results in {results_dir}")
    seconds = 0.0
    for run in runs:
        d = decisions[run.name]
        print(f"# {run.name}: {d.describe()}")
        if run in todo:
            print(shown(train_command(run, os.path.join(runs_dir, run.name))))
            seconds += findings_thread_seconds(run) if d.action in ("new", "retrain", "resume") else 0
    if not complete:
        n = len(SWEEP) * len(FINDINGS_SEEDS) + len([a for a in SWEEP if a[0] == "depth"]) * len(FINDINGS_SEEDS) \
            + len(FINDINGS_SEEDS)
        print(f"# then the table's rows, planned from the sweep's best lrs: up to {n} runs more (fewer where a best "
              f"lr is the papers' {PAPERS_LR:g} or the sweep's runs serve), and grid extensions where a best lr "
              f"sits at an edge")
    print(f"# projected: {seconds / 60:.0f} thread-minutes for the runs listed, {seconds / 60 / args.jobs:.0f} "
          f"minutes wall with --jobs={args.jobs} ({FINDINGS_CALIBRATION})")
