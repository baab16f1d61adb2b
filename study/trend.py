"""
The depth study's trend with training length: where do the papers' outcomes start to show?

    python ablate.py trend                            # the shipped trend: pre, pre_lns, mix, post x 3 seeds, cosine runs
                                                      # of 400-3200 steps, each variant at its best lr (results/findings)
    python ablate.py trend --dry_run                  # the train.py commands, the steps and the projected hours
    python ablate.py trend --schedule=wsd --check_wsd=800   # WSD branches + separate cosine runs at 800 steps
    python ablate.py trend --lr=2e-3                  # every variant at one lr (the papers' shared-lr protocol)

One run per variant and seed gives every length, through a warm-up-stable-decay (WSD) schedule
(Hu et al. 2024, MiniCPM): the learning rate is constant after warm-up, so the model at step 0.8 L of a long
run is the model at step 0.8 L of a run of length L. For each length L a branch copies the stable run's
checkpoint at 0.8 L and decays linearly to min_lr over the last 0.2 L steps (train.py --lr_schedule=wsd
--decay_frac=0.2 --max_iters=L --init_from=resume). Cost: 0.8 L_max + 0.2 (sum of L) steps instead of
sum of L. The stable run is extended segment by segment, so a longer length added later continues it.
The papers train cosine: --check_wsd=L trains separate cosine runs at one length beside the branches and
results.md says whether the ranking differs. It did (results/trend_wsd_check), so the default is
--schedule=cosine: a separate run per length, shortest first.

Every run's end (a cosine run, or a WSD branch) is measured as the depth study measures a run (analyze.py: blocks
whose removal raises the val loss by < 1%, all and deeper half, the stream growth rms(x_L)/rms(x_1)), its val loss
is its final evaluation over --final_eval_tokens held-out tokens, and each gap's paired evaluation error comes from
the per-sequence losses (study/heldout.py, kept as heldout.json); results/trend_<...>/
gets results.md, trend.json and trend.png (study/trend_report.py: the gaps to Pre-LN in loss and in %, each
seed's fitted crossover and their interval over seeds, what trained the runs, from run.json and the `done`
markers each segment writes: commit, wall time, machine).

A folder is continued or reused only when its run.json matches the plan (records.decide, as for every study;
each segment's own max_iters and decay_frac aside): one that differs, or has no run.json (nothing says what it
was trained with), stops the call naming why, or with --on_mismatch=retrain its chain is set aside and retrained.
A variant trained at another lr than the base's (--lr) gets its own folders (<variant>_lr<lr>_s<seed>).
"""

import argparse
import os
import shutil
import sys
import time

from study import heldout, launch, provenance, records, runlog, studies, trend_report
from study.trend_report import fit_crossover  # noqa: F401 (re-exported: trend.fit_crossover)

VARIANTS = ("pre", "pre_lns", "mix", "post")       # the four configurations of Sun et al. and Li et al.
BASE = {k: v for k, v in studies.DEEP_BASE.items() if k != "max_iters"}  # 24 x 64, block 64, batch 12, lr 2e-3,
BASE["lr_schedule"] = "wsd"                                               # float32, one thread
DECAY_FRAC = 0.2                                    # WSD: the last 20% of each length decays to min_lr
FINAL_EVAL_TOKENS = 131072                          # as the findings' table (study/findings.py)
BEST_LRS = "pre:4e-3,pre_lns:8e-3,mix:4e-3,post:2e-3"  # each variant's best lr in results/findings (24 x 64, 400 steps)
SEGMENT_KEYS = ("max_iters", "decay_frac")          # set by each segment of a chain: not compared on reuse


def variant_args(name):
    return next(args for v, _, args in studies.variants("depth") if v == name)


def branch_point(length):
    """The step where a run of this length starts to decay (train.py's wsd: max_iters - int(0.2 max_iters))."""
    return length - int(DECAY_FRAC * length)


def variant_base(base, variant, lrs):
    """The base arguments of one variant: its own lr from --lr (min_lr = lr / 10, as the findings' sweep), else
    the base's."""
    return dict(base, learning_rate=lrs[variant], min_lr=lrs[variant] / 10) if variant in lrs else base


def chain_name(variant, seed, base):
    """The folder of a variant and seed: <variant>_s<seed>, or <variant>_lr<lr>_s<seed> at another lr than BASE's
    (a variant's own best lr trains beside the shared-lr runs, not over them)."""
    lr = base["learning_rate"]
    return f"{variant}_s{seed}" if lr == BASE["learning_rate"] else f"{variant}_lr{lr:g}_s{seed}"


def segment_run(variant, seed, base, max_iters, decay_frac):
    """One segment of a chain as a study run: the variant's train.py arguments with the segment's length."""
    args = dict(base, **variant_args(variant), seed=seed, max_iters=max_iters, decay_frac=decay_frac)
    return studies.Run(f"{variant}_s{seed}", args)


def last_iter(out_dir):
    """The iteration of the run's last eval row (its checkpoint's), 0 when it has none."""
    rows = runlog.read_log(out_dir)[1] if os.path.exists(os.path.join(out_dir, "log.jsonl")) else []
    return rows[-1]["iter"] if rows else 0


def chain_steps(variant, seed, lengths, runs_dir, base):
    """(description, run, out_dir, copy_from, target step) in order for one variant and seed: stable segments,
    each followed by the branch that decays from it."""
    stable = os.path.join(runs_dir, chain_name(variant, seed, base), "stable")
    steps = []
    for length in sorted(lengths):
        b = branch_point(length)
        # the stable phase: constant lr after warm-up (decay_frac=0), resumed up to the branch point
        steps.append((f"stable to {b}", segment_run(variant, seed, base, b, 0.0), stable, None, b))
        branch = os.path.join(runs_dir, chain_name(variant, seed, base), f"L{length}")
        steps.append((f"decay {b}->{length}", segment_run(variant, seed, base, length, DECAY_FRAC), branch, stable,
                      length))
    return steps


def branch_finished(out_dir, length):
    """A branch trained to its length, with its `done` marker (checked against the plan by chain_decision)."""
    return os.path.exists(os.path.join(out_dir, "done")) and last_iter(out_dir) >= length


def chain_commands(variant, seed, lengths, runs_dir, base):
    """The train.py commands of one chain, as the dry run prints them (launch.train_command)."""
    return [launch.train_command(run, out_dir, resume=copy_from is not None or i > 0)
            for i, (_, run, out_dir, copy_from, _) in enumerate(chain_steps(variant, seed, lengths, runs_dir, base))]


def chain_decision(variant, seed, lengths, runs_dir, base, on_mismatch):
    """(out_dir, records.Decision) of the chain's first folder that is not reusable (refuse or retrain), or
    (None, None): records.decide on every trained folder, each segment's max_iters and decay_frac not compared."""
    for _, run, out_dir, _, _ in chain_steps(variant, seed, lengths, runs_dir, base):
        if not any(os.path.exists(os.path.join(out_dir, f)) for f in ("ckpt.pt", "done")):
            continue  # nothing trained there yet
        d = records.decide(out_dir, records.planned_record(run), on_mismatch, ignore=SEGMENT_KEYS)
        if d.action in ("refuse", "retrain"):
            return out_dir, d
    return None, None


def check_chain(variant, seed, lengths, runs_dir, base, on_mismatch):
    """None when every trained folder of the chain matches the plan; a refusal message (on_mismatch=refuse); or,
    with retrain, the chain's folder is set aside whole (its branches descend from its stable run) and None."""
    out_dir, d = chain_decision(variant, seed, lengths, runs_dir, base, on_mismatch)
    if d is not None and d.action == "refuse":
        return (f"{out_dir} was not trained as planned ({d.diff}): pass --on_mismatch=retrain, delete it or "
                f"pass --runs_dir")
    if d is not None:
        print(f"  {variant} seed {seed}: {out_dir} differs ({d.diff}); the chain moved to "
              f"{launch.set_aside(os.path.dirname(out_dir))} and is retrained", flush=True)
    return None


def run_chain(variant, seed, lengths, runs_dir, base, threads, on_mismatch="refuse", jobs=1):
    """Run what is missing of one chain; a step is done when its folder's last eval row is at its target. A
    folder without run.json, or trained with other settings or code than planned, is never continued or reused:
    the chain stops (or, with on_mismatch=retrain, is retrained whole). Each segment trained is added to its
    folder's `done` marker (mark_segment): wall time, machine, commit and the runs trained at once (jobs)."""
    failure = check_chain(variant, seed, lengths, runs_dir, base, on_mismatch)
    if failure:
        return failure
    steps = chain_steps(variant, seed, lengths, runs_dir, base)
    if all(branch_finished(out_dir, target) for _, _, out_dir, copy_from, target in steps if copy_from):
        return None  # every length is there: reused from its records (a fresh clone has no checkpoints)
    for what, run, out_dir, copy_from, target in steps:
        if last_iter(out_dir) >= target and os.path.exists(os.path.join(out_dir, "ckpt.pt")):
            continue
        resume = True
        if copy_from is not None:  # a branch starts as a copy of the stable run at its branch point
            if last_iter(copy_from) != branch_point(target):
                return (f"{variant} seed {seed}: the stable run {copy_from} is at step {last_iter(copy_from)}, "
                        f"past the branch point {branch_point(target)} of length {target}: delete it to rerun")
            shutil.rmtree(out_dir, ignore_errors=True)
            shutil.copytree(copy_from, out_dir, ignore=shutil.ignore_patterns("analysis*", "train.log", "done"))
        elif not os.path.exists(os.path.join(out_dir, "ckpt.pt")):
            resume = False  # the first segment starts from scratch
            os.makedirs(out_dir, exist_ok=True)
        before = 0 if copy_from is not None else last_iter(out_dir)  # a branch's earlier steps are the stable run's
        t0 = time.time()
        cmd = launch.train_command(run, out_dir, resume)
        code = launch.run_train(cmd, os.path.join(out_dir, "train.log"), launch.thread_env(threads), echo=False)
        wall = time.time() - t0
        print(f"  {variant} seed {seed}: {what} in {wall:.0f} s" + (f" FAILED ({code})" if code else ""), flush=True)
        if code:
            return f"{variant} seed {seed}: {what} failed, see {out_dir}/train.log"
        mark_segment(out_dir, cmd, target, wall, threads, base, jobs, before)
    return None


def mark_segment(out_dir, cmd, target, wall, threads, base, jobs, before=0):
    """The folder's `done` marker {cmd, wall_s, machine, segments}: this segment appended to the folder's earlier
    ones (a stable run is trained in segments), each {to, wall_s, machine, jobs, commit, dirty}. Steps trained
    before any marker was kept (`before` > 0 without one) are a segment with no wall time or machine recorded."""
    earlier = launch.read_done(out_dir).get("segments", []) if os.path.exists(os.path.join(out_dir, "done")) else []
    if before and not earlier:
        earlier = [{"to": before, "wall_s": None, "machine": None}]
    code = (records.read_record(out_dir) or {}).get("code", {})
    machine = provenance.machine(threads, base.get("device"))
    segments = earlier + [{"to": target, "wall_s": wall, "machine": machine, "jobs": jobs,
                           "commit": code.get("commit"), "dirty": code.get("dirty")}]
    launch.write_done(out_dir, launch.shown(cmd), sum(x["wall_s"] or 0 for x in segments), machine=machine,
                      segments=segments)


def cosine_run(variant, seed, base, length):
    """A separate run of one length from scratch with the papers' cosine schedule (to min_lr at max_iters)."""
    args = dict(base, **variant_args(variant), seed=seed, max_iters=length, lr_schedule="cosine")
    return studies.Run(f"{chain_name(variant, seed, base)}_L{length}", args)


def cosine_dir(runs_dir):
    return os.path.join(runs_dir, "cosine")


def train_cosine(runs, runs_dir, jobs, threads, on_mismatch="refuse"):
    """Train the separate cosine runs under <runs_dir>/cosine as any study's runs (records.decide, then
    launch.execute: reused, resumed, retrained or refused; `done` markers with wall time and machine). Returns
    the failures (one line each), [] when every run is there."""
    folder = cosine_dir(runs_dir)
    decisions = {r.name: records.decide(os.path.join(folder, r.name), records.planned_record(r), on_mismatch)
                 for r in runs}
    refused = [f"{os.path.join(folder, n)} was not trained as planned ({d.diff}): pass --on_mismatch=retrain, "
               f"delete it or pass --runs_dir" for n, d in decisions.items() if d.action == "refuse"]
    if refused:
        return refused
    done = launch.execute(runs, folder, decisions, launch.slots(jobs), threads, done_extra={"jobs": jobs})
    return [f"{n} failed ({r['reason']}), see {folder}/{n}/train.log" for n, r in done.items() if r.get("failed")]


def projected_thread_seconds(run):
    """The dry run's projection of one run's training time on one thread, by the findings' calibration of the
    24 x 64 model (study/findings.py FINDINGS_MS_PER_ITER, FINDINGS_CALIBRATION): its steps, evaluations and final
    held-out evaluation (findings.findings_thread_seconds), plus an analysis every analyze_interval steps
    (n_layer + 2 forward passes of a batch, ~1/3 step each)."""
    from study import findings
    a = run.args
    analyses = a["max_iters"] // a["analyze_interval"] + 1 if a.get("analyze_interval") else 0
    analysis_s = findings.FINDINGS_MS_PER_ITER["depth"] * analyses * (a["n_layer"] + 2) / 3 / 1000
    return findings.findings_thread_seconds(studies.Run(run.name, a, extra={"part": "depth"})) + analysis_s


def projection_calibration():
    from study import findings
    return findings.FINDINGS_CALIBRATION


def final_loss(out_dir):
    """The run's val loss at its end: its final evaluation over the held-out set (--final_eval_tokens), else its
    last periodic evaluation."""
    final = heldout.final_eval(out_dir)
    return final["final_val_loss"] if final else runlog.read_log(out_dir)[1][-1]["val_loss"]


def measure(out_dir, data_dir, threads):
    """The depth study's metrics of a run's end: analyze.py (cached in analysis.json, recomputed only when the
    checkpoint is newer) and the val loss, that of the final evaluation over the held-out set when the run had
    one (with its standard error), else of the last periodic evaluation. Returns (metrics, per-sequence held-out
    losses or None: study/heldout.py, kept in heldout.json)."""
    import torch
    torch.set_num_threads(threads or 1)
    a = runlog.read_analysis(out_dir)
    ckpt = os.path.join(out_dir, "ckpt.pt")
    if a is None or (os.path.exists(ckpt) and os.path.getmtime(os.path.join(out_dir, "analysis.json")) <
                     os.path.getmtime(ckpt)):
        import analyze
        a = analyze.analyze_checkpoint(out_dir, data_dir=data_dir, split="val", plots=False,
                                       **studies.ANALYSIS["cpu_deep"])
    removable_all, removable_deep_half = runlog.removable_shares(a["layer_drop"]["rel"])
    final = heldout.final_eval(out_dir)
    val = {"val_loss": final_loss(out_dir), "val_se": final["final_val_se"] if final else None}
    return ({**val, "removable_all": removable_all, "removable_deep_half": removable_deep_half,
             "stream_growth": a["summary"]["rms_growth_deep"]}, heldout.ensure(out_dir) if final else None)


def parse_ints(text, what):
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"bad value {text!r} for --{what}: a comma-separated list of integers")
    if not values or min(values) < 1:
        raise SystemExit(f"bad value {text!r} for --{what}: a comma-separated list of integers >= 1")
    return values


def parse_lrs(text):
    """--lr: '' (every variant at the base's lr), one lr for every variant ('1e-3'), or per variant
    ('pre:2e-3,pre_lns:1e-3'; the others at the base's lr) -> {variant: lr}."""
    bad = (f"bad value {text!r} for --lr: one lr, or variant:lr pairs separated by commas (variants "
           f"{', '.join(VARIANTS)})")
    if not text.strip():
        return {}
    items = [x.strip() for x in text.split(",") if x.strip()]
    pairs = [("*", items[0])] if len(items) == 1 and ":" not in items[0] else [x.partition(":")[::2] for x in items]
    try:
        lrs = {v.strip(): float(lr) for v, lr in pairs}
    except ValueError:
        raise SystemExit(bad)
    if any(v not in VARIANTS + ("*",) for v in lrs) or not all(0 < lr < 1 for lr in lrs.values()):
        raise SystemExit(bad)
    return {v: lrs["*"] for v in VARIANTS} if "*" in lrs else lrs


def main(argv=None):
    p = argparse.ArgumentParser(prog="ablate.py trend", description=__doc__.strip().splitlines()[0])
    p.add_argument("--lengths", default="400,800,1600,3200", help="training lengths in steps (comma-separated)")
    p.add_argument("--seeds", default="1337,1338,1339", help="seeds (comma-separated)")
    p.add_argument("--schedule", default="cosine", choices=["wsd", "cosine"],
                   help="cosine: a separate cosine run per length (the papers' schedule, sum of the lengths in steps; "
                        "default: the WSD check found a different ranking); wsd: one run per variant and seed, "
                        "branched per length")
    p.add_argument("--check_wsd", type=int, default=None, metavar="L",
                   help="with wsd: also train separate cosine runs of L steps (one of --lengths) and compare them "
                        "with the WSD branches in results.md")
    p.add_argument("--lr", default=BEST_LRS, help="per-variant learning rates (min_lr = lr/10; others at the base's "
                                                  f"{BASE['learning_rate']:g}); one value sets every variant; default: "
                                                  f"each variant's best lr in the findings' sweep, {BEST_LRS}")
    p.add_argument("--final_eval_tokens", type=int, default=FINAL_EVAL_TOKENS,
                   help="each run's final val loss over this many held-out tokens, with its standard error (train.py "
                        "--final_eval_tokens; 0: the last periodic evaluation, 4 batches)")
    p.add_argument("--jobs", type=int, default=2, help="chains run at once (each one thread)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--data_dir", default="data")
    p.add_argument("--results_dir", default=None, help="default results/trend_cpu_deep_cosine "
                                                         "(results/trend_cpu_deep with --schedule=wsd)")
    p.add_argument("--runs_dir", default=None, help="default <results_dir>/runs: the records ship there")
    p.add_argument("--on_mismatch", default="refuse", choices=["refuse", "retrain"],
                   help="a chain with a folder whose run.json is missing or differs from the plan: refuse (stop, "
                        "naming the keys) or retrain the chain (the old one is kept as <chain>.previous)")
    p.add_argument("--dry_run", action="store_true", help="print the commands and the steps they cost")
    a = p.parse_args(argv)
    lengths, seeds, lrs = parse_ints(a.lengths, "lengths"), parse_ints(a.seeds, "seeds"), parse_lrs(a.lr)
    if a.jobs < 1 or a.threads < 1:
        raise SystemExit(f"bad value for --jobs ({a.jobs}) or --threads ({a.threads}): must be >= 1")
    if a.final_eval_tokens < 0:
        raise SystemExit(f"bad value {a.final_eval_tokens} for --final_eval_tokens: a number of tokens >= 0")
    cosine = a.schedule == "cosine"
    if a.check_wsd is not None and (cosine or a.check_wsd not in lengths):
        raise SystemExit(f"bad value {a.check_wsd} for --check_wsd: one of --lengths ({a.lengths}), with "
                         f"--schedule=wsd")
    results_dir = a.results_dir or os.path.join("results", "trend_cpu_deep" + ("_cosine" if cosine else ""))
    a.runs_dir = a.runs_dir or os.path.join(results_dir, "runs")
    base = dict(BASE, data_dir=a.data_dir, final_eval_tokens=a.final_eval_tokens)
    base["dataset"] = records.ensure_dataset(base) if not a.dry_run else base["dataset"]
    bases = {v: variant_base(base, v, lrs) for v in VARIANTS}
    chains = [(v, s) for s in seeds for v in VARIANTS]
    cos_lengths = lengths if cosine else [a.check_wsd] if a.check_wsd else []
    # shortest first: a call cut short leaves every variant and seed at the lengths it finished
    cos_runs = [cosine_run(v, s, bases[v], L) for L in sorted(cos_lengths) for v, s in chains]
    steps = branch_point(max(lengths)) + sum(L - branch_point(L) for L in lengths)
    if cosine:
        print(f"{len(cos_runs)} separate cosine runs ({len(chains)} x {sum(lengths)} steps), lengths {lengths}, "
              f"seeds {seeds}")
    else:
        print(f"{len(chains)} chains x {steps} steps (separate runs: {sum(lengths)}), lengths {lengths}, seeds {seeds}"
              + (f"; --check_wsd: {len(cos_runs)} cosine runs of {a.check_wsd} steps" if cos_runs else ""))
    if lrs:
        print("learning rates: " + ", ".join(f"{v} {bases[v]['learning_rate']:g}" for v in VARIANTS) + " (--lr)")
    # what the dry run projects (a WSD chain as one run of its steps): thread-time, and wall time at --jobs
    projected = sum(map(projected_thread_seconds, cos_runs)) + sum(projected_thread_seconds(studies.Run(
        "chain", dict(segment_run(v, s, bases[v], max(lengths), DECAY_FRAC).args, max_iters=steps)))
        for v, s in (chains if not cosine else []))
    print(f"projected: {projected / 3600:.2f} thread-hours, ~{projected / 3600 / a.jobs:.2f} h wall with "
          f"--jobs={a.jobs} ({projection_calibration()})")
    if a.dry_run:
        if not cosine:
            for cmd in chain_commands(*chains[0], lengths, a.runs_dir, bases[chains[0][0]]):
                print("  " + launch.shown(cmd))
        for run in [cosine_run(chains[0][0], chains[0][1], bases[chains[0][0]], L) for L in cos_lengths]:
            print("  " + launch.shown(launch.train_command(run, os.path.join(cosine_dir(a.runs_dir), run.name))))
        for v, s in chains if not cosine else []:
            out_dir, d = chain_decision(v, s, lengths, a.runs_dir, bases[v], a.on_mismatch)
            if d is not None:
                print(f"# {v} seed {s}: {out_dir} {d.describe()}")
        return
    def folder(v, s, L, cos=cosine):
        return (os.path.join(cosine_dir(a.runs_dir), cosine_run(v, s, bases[v], L).name) if cos else
                os.path.join(a.runs_dir, chain_name(v, s, bases[v]), f"L{L}"))
    measured_folders = [folder(v, s, L) for v, s in chains for L in lengths]
    if a.check_wsd and not cosine:
        measured_folders += [folder(v, s, a.check_wsd, cos=True) for v, s in chains]
    there = sum(os.path.exists(os.path.join(f, "done")) for f in measured_folders)
    failures = [] if cosine else [f for f in launch.pool(chains, launch.slots(a.jobs), lambda c, slot: run_chain(
        *c, lengths, a.runs_dir, bases[c[0]], a.threads, a.on_mismatch, a.jobs)) if f]
    if cos_runs and not failures:
        failures += train_cosine(cos_runs, a.runs_dir, a.jobs, a.threads, a.on_mismatch)
    if failures:
        raise SystemExit("failed:\n" + "\n".join(failures))
    print(f"trend: reused {there} of {len(measured_folders)} runs, trained {len(measured_folders) - there}",
          flush=True)
    measured = {v: {L: {} for L in lengths} for v in VARIANTS}
    held = {v: {L: [] for L in lengths} for v in VARIANTS}  # per-sequence held-out losses, for the paired error
    for v, s in chains:
        for L in lengths:
            metrics, held_out = measure(folder(v, s, L), a.data_dir, a.threads)
            for k, x in metrics.items():
                measured[v][L].setdefault(k, []).append(x)
            held[v][L].append(held_out)
    check = None
    if a.check_wsd and not cosine:
        check = (a.check_wsd, {v: measured[v][a.check_wsd]["val_loss"] for v in VARIANTS},
                 {v: [final_loss(folder(v, s, a.check_wsd, cos=True)) for s in seeds] for v in VARIANTS})
    folders = [os.path.join(cosine_dir(a.runs_dir), r.name) for r in cos_runs]
    folders += [] if cosine else [os.path.join(a.runs_dir, chain_name(v, s, bases[v]), x) for v, s in chains
                                  for x in ["stable"] + [f"L{L}" for L in lengths]]
    plan = {v: (cosine_run(v, seeds[0], bases[v], max(lengths)) if cosine else
                segment_run(v, seeds[0], bases[v], max(lengths), DECAY_FRAC)).args for v in VARIANTS}
    command = "python ablate.py trend " + " ".join(argv if argv is not None else sys.argv[1:])
    header = trend_report.header_lines(command.strip(), plan, trend_report.training_record(folders),
                                       provenance.dataset_line(base["dataset"], a.data_dir, BASE["dataset"]),
                                       (projected, projection_calibration()))
    title = (f"depth trend with training length ({BASE['n_layer']} x {BASE['n_embd']}, "
             f"{'separate cosine runs' if cosine else 'WSD branches'})")
    trend_report.write_report(measured, lengths, seeds, BASE["batch_size"] * BASE["block_size"], results_dir, header,
                              title, check, held, a.final_eval_tokens)
