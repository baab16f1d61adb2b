"""
The depth study's trend with training length: where do the papers' outcomes start to show?

    python ablate.py trend                            # 24 x 64 CPU model: pre, pre_lns, mix, post x 2 seeds
    python ablate.py trend --lengths=400,800,1600,3200 --seeds=1337,1338 --jobs=2
    python ablate.py trend --dry_run                  # the train.py commands and the steps they cost

One run per variant and seed gives every length, through a warm-up-stable-decay (WSD) schedule
(Hu et al. 2024, MiniCPM): the learning rate is constant after warm-up, so the model at step 0.8 L of a long
run is the model at step 0.8 L of a run of length L. For each length L a branch copies the stable run's
checkpoint at 0.8 L and decays linearly to min_lr over the last 0.2 L steps (train.py --lr_schedule=wsd
--decay_frac=0.2 --max_iters=L --init_from=resume). Cost: 0.8 L_max + 0.2 (sum of L) steps instead of
sum of L. The stable run is extended segment by segment, so a longer length added later continues it.

Every branch end is measured as the depth study measures a run (analyze.py: val loss, blocks whose removal
raises the val loss by < 1%, all and deeper half, the stream growth rms(x_L)/rms(x_1)); results/trend_<...>/
gets results.md, trend.json and trend.png (each variant's val-loss gap to Pre-LN against tokens seen,
mean and seed spread), with a straight-line fit of the gap against log2(tokens) and where it crosses zero.

A folder is continued or reused only when its run.json matches the plan (records.decide, as for every study;
each segment's own max_iters and decay_frac aside): one that differs, or has no run.json (nothing says what it
was trained with), stops the call naming why, or with --on_mismatch=retrain its chain is set aside and retrained.
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

from study import launch, provenance, records, runlog, studies

VARIANTS = ("pre", "pre_lns", "mix", "post")       # the four configurations of Sun et al. and Li et al.
BASE = {k: v for k, v in studies.DEEP_BASE.items() if k != "max_iters"}  # 24 x 64, block 64, batch 12, lr 2e-3,
BASE["lr_schedule"] = "wsd"                                               # float32, one thread
DECAY_FRAC = 0.2                                    # WSD: the last 20% of each length decays to min_lr
SEGMENT_KEYS = ("max_iters", "decay_frac")          # set by each segment of a chain: not compared on reuse


def variant_args(name):
    return next(args for v, _, args in studies.variants("depth") if v == name)


def branch_point(length):
    """The step where a run of this length starts to decay (train.py's wsd: max_iters - int(0.2 max_iters))."""
    return length - int(DECAY_FRAC * length)


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
    stable = os.path.join(runs_dir, f"{variant}_s{seed}", "stable")
    steps = []
    for length in sorted(lengths):
        b = branch_point(length)
        # the stable phase: constant lr after warm-up (decay_frac=0), resumed up to the branch point
        steps.append((f"stable to {b}", segment_run(variant, seed, base, b, 0.0), stable, None, b))
        branch = os.path.join(runs_dir, f"{variant}_s{seed}", f"L{length}")
        steps.append((f"decay {b}->{length}", segment_run(variant, seed, base, length, DECAY_FRAC), branch, stable,
                      length))
    return steps


def chain_commands(variant, seed, lengths, runs_dir, base):
    """The train.py commands of one chain, as the dry run prints them (launch.train_command)."""
    return [launch.train_command(run, out_dir, resume=copy_from is not None or i > 0)
            for i, (_, run, out_dir, copy_from, _) in enumerate(chain_steps(variant, seed, lengths, runs_dir, base))]


def chain_decision(variant, seed, lengths, runs_dir, base, on_mismatch):
    """(out_dir, records.Decision) of the chain's first folder that is not reusable (refuse or retrain), or
    (None, None): records.decide on every trained folder, each segment's max_iters and decay_frac not compared."""
    for _, run, out_dir, _, _ in chain_steps(variant, seed, lengths, runs_dir, base):
        if not os.path.exists(os.path.join(out_dir, "ckpt.pt")):
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


def run_chain(variant, seed, lengths, runs_dir, base, threads, on_mismatch="refuse"):
    """Run what is missing of one chain; a step is done when its folder's last eval row is at its target. A
    folder without run.json, or trained with other settings or code than planned, is never continued or reused:
    the chain stops (or, with on_mismatch=retrain, is retrained whole)."""
    failure = check_chain(variant, seed, lengths, runs_dir, base, on_mismatch)
    if failure:
        return failure
    for what, run, out_dir, copy_from, target in chain_steps(variant, seed, lengths, runs_dir, base):
        if last_iter(out_dir) >= target and os.path.exists(os.path.join(out_dir, "ckpt.pt")):
            continue
        resume = True
        if copy_from is not None:  # a branch starts as a copy of the stable run at its branch point
            if last_iter(copy_from) != branch_point(target):
                return (f"{variant} seed {seed}: the stable run {copy_from} is at step {last_iter(copy_from)}, "
                        f"past the branch point {branch_point(target)} of length {target}: delete it to rerun")
            shutil.rmtree(out_dir, ignore_errors=True)
            shutil.copytree(copy_from, out_dir, ignore=shutil.ignore_patterns("analysis*", "train.log"))
        elif not os.path.exists(os.path.join(out_dir, "ckpt.pt")):
            resume = False  # the first segment starts from scratch
            os.makedirs(out_dir, exist_ok=True)
        t0 = time.time()
        code = launch.run_train(launch.train_command(run, out_dir, resume), os.path.join(out_dir, "train.log"),
                                launch.thread_env(threads), echo=False)
        print(f"  {variant} seed {seed}: {what} in {time.time() - t0:.0f} s" + (f" FAILED ({code})" if code else ""),
              flush=True)
        if code:
            return f"{variant} seed {seed}: {what} failed, see {out_dir}/train.log"
    return None


def measure(out_dir, data_dir, threads):
    """analyze.py on a branch end (cached in its analysis.json): the depth study's metrics."""
    import analyze
    import torch
    torch.set_num_threads(threads or 1)
    a = runlog.read_analysis(out_dir)
    if a is None or os.path.getmtime(os.path.join(out_dir, "analysis.json")) < os.path.getmtime(
            os.path.join(out_dir, "ckpt.pt")):
        a = analyze.analyze_checkpoint(out_dir, data_dir=data_dir, split="val", plots=False,
                                       **studies.ANALYSIS["cpu_deep"])
    removable_all, removable_deep_half = runlog.removable_shares(a["layer_drop"]["rel"])
    return {"val_loss": runlog.read_log(out_dir)[1][-1]["val_loss"], "removable_all": removable_all,
            "removable_deep_half": removable_deep_half, "stream_growth": a["summary"]["rms_growth_deep"]}


def fit_crossover(tokens, gaps):
    """Least-squares line gap = a + b log2(tokens); the tokens where it crosses zero (None if it does not ahead)."""
    x = [math.log2(t) for t in tokens]
    n = len(x)
    mx, my = sum(x) / n, sum(gaps) / n
    sxx = sum((xi - mx) ** 2 for xi in x)
    b = sum((xi - mx) * (yi - my) for xi, yi in zip(x, gaps)) / sxx if sxx else 0.0
    a = my - b * mx
    cross = 2 ** (-a / b) if b and -a / b > max(x) and (a + b * max(x)) * b < 0 else None
    return a, b, cross


def mean_spread_str(values, digits):
    return runlog.mean_spread_text(*runlog.mean_spread(values), digits)


def summarize(measured, lengths, seeds, tokens_per_step):
    """{variant: {length: {metric: [per seed]}}} -> rows, the paired gaps to Pre-LN and the fitted trend."""
    gaps, fits = {}, {}
    for v in VARIANTS:
        if v == "pre":
            continue
        gaps[v] = {L: [measured[v][L]["val_loss"][i] - measured["pre"][L]["val_loss"][i] for i in range(len(seeds))]
                   for L in lengths}
        tokens = [L * tokens_per_step for L in lengths]
        a, b, cross = fit_crossover(tokens, [runlog.mean_spread(gaps[v][L])[0] for L in lengths])
        fits[v] = {"intercept": a, "slope_per_doubling": b, "crossover_tokens": cross}
    return gaps, fits


def write_report(measured, gaps, fits, lengths, seeds, tokens_per_step, results_dir, command, wall, about,
                 trained_at):
    """results.md (about: provenance.about's lines), trend.json and trend.png."""
    os.makedirs(results_dir, exist_ok=True)
    lines = [f"# depth trend with training length ({BASE['n_layer']} x {BASE['n_embd']}, WSD)", "",
             f"Command: `{command}`  ", *[f"{line}  " for line in about],
             f"Runs trained at: {trained_at}; wall time of this invocation {wall:.0f} s.  ",
             f"Seeds {', '.join(map(str, seeds))}; mean over seeds, spread (max - min) in brackets; "
             f"{tokens_per_step} tokens per step.", ""]
    metrics = [("val_loss", "val loss", 4), ("removable_all", "removable share, all blocks", 2),
               ("removable_deep_half", "removable share, deeper half", 2), ("stream_growth", "stream rms x_L/x_1", 2)]
    for key, title, digits in metrics:
        lines += [f"## {title}", "", "| config | " + " | ".join(f"{L} steps ({L * tokens_per_step / 1e6:.2f}M tok)"
                                                                for L in lengths) + " |",
                  "|---|" + "---|" * len(lengths)]
        for v in VARIANTS:
            lines.append(f"| {v} | " + " | ".join(mean_spread_str(measured[v][L][key], digits) for L in lengths) + " |")
        lines.append("")
    lines += ["## val-loss gap to Pre-LN (same seed; negative = better than Pre-LN)", "",
              "| config | " + " | ".join(f"{L}" for L in lengths) + " | slope per doubling of tokens | "
              "fitted crossover |", "|---|" + "---|" * (len(lengths) + 2)]
    for v, fit in fits.items():
        cross = fit["crossover_tokens"]
        lines.append(f"| {v} | " + " | ".join(mean_spread_str(gaps[v][L], 4) for L in lengths)
                     + f" | {fit['slope_per_doubling']:+.4f} | "
                     + (f"{cross / 1e6:.1f}M tokens ({cross / tokens_per_step:,.0f} steps)" if cross else "none ahead")
                     + " |")
    lines += ["", "Fit: gap = a + b log2(tokens), least squares on the seed means; the crossover is where the line "
              "reaches 0 beyond the longest length measured (an extrapolation, not a measurement).", ""]
    with open(os.path.join(results_dir, "results.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(results_dir, "trend.json"), "w") as f:
        json.dump({"command": command, "seeds": seeds, "lengths": lengths, "tokens_per_step": tokens_per_step,
                   "measured": measured, "gaps": gaps, "fits": fits}, f, indent=1)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: trend.png skipped (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    tokens = [L * tokens_per_step for L in lengths]
    for v in gaps:
        means = [runlog.mean_spread(gaps[v][L])[0] for L in lengths]
        low = [m - min(gaps[v][L]) for m, L in zip(means, lengths)]
        high = [max(gaps[v][L]) - m for m, L in zip(means, lengths)]
        ax.errorbar(tokens, means, yerr=[low, high], marker="o", capsize=3, label=v)
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("val loss - Pre-LN's (same seed)")
    ax.set_title("gap to Pre-LN over training length (bars: seed range)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(results_dir, "trend.png"), dpi=120)
    print(f"wrote {results_dir}/results.md, trend.json, trend.png")


def trained_at(runs_dir, chains, lengths):
    """The commits the branch ends' run.json records name (train.py writes one per run), or say there is none."""
    commits = set()
    for v, s in chains:
        for L in lengths:
            record = records.read_record(os.path.join(runs_dir, f"{v}_s{s}", f"L{L}"))
            commits.add((record or {}).get("code", {}).get("commit") or "not recorded (no run.json)")
    return ", ".join(sorted(c[:7] if len(c) == 40 else c for c in commits))


def parse_ints(text, what):
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"bad value {text!r} for --{what}: a comma-separated list of integers")
    if not values or min(values) < 1:
        raise SystemExit(f"bad value {text!r} for --{what}: a comma-separated list of integers >= 1")
    return values


def main(argv=None):
    p = argparse.ArgumentParser(prog="ablate.py trend", description=__doc__.strip().splitlines()[0])
    p.add_argument("--lengths", default="400,800,1600,3200", help="training lengths in steps (comma-separated)")
    p.add_argument("--seeds", default="1337,1338", help="seeds (comma-separated)")
    p.add_argument("--jobs", type=int, default=2, help="chains run at once (each one thread)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--data_dir", default="data")
    p.add_argument("--runs_dir", default=os.path.join("ablations", "trend_cpu_deep"))
    p.add_argument("--results_dir", default=os.path.join("results", "trend_cpu_deep"))
    p.add_argument("--on_mismatch", default="refuse", choices=["refuse", "retrain"],
                   help="a chain with a folder whose run.json is missing or differs from the plan: refuse (stop, "
                        "naming the keys) or retrain the chain (the old one is kept as <chain>.previous)")
    p.add_argument("--dry_run", action="store_true", help="print the commands and the steps they cost")
    a = p.parse_args(argv)
    lengths, seeds = parse_ints(a.lengths, "lengths"), parse_ints(a.seeds, "seeds")
    if a.jobs < 1 or a.threads < 1:
        raise SystemExit(f"bad value for --jobs ({a.jobs}) or --threads ({a.threads}): must be >= 1")
    base = dict(BASE, data_dir=a.data_dir)
    base["dataset"] = records.ensure_dataset(base) if not a.dry_run else base["dataset"]
    chains = [(v, s) for s in seeds for v in VARIANTS]
    steps = branch_point(max(lengths)) + sum(L - branch_point(L) for L in lengths)
    print(f"{len(chains)} chains x {steps} steps (separate runs: {sum(lengths)}), lengths {lengths}, seeds {seeds}")
    if a.dry_run:
        for cmd in chain_commands(*chains[0], lengths, a.runs_dir, base):
            print("  " + launch.shown(cmd))
        for v, s in chains:
            out_dir, d = chain_decision(v, s, lengths, a.runs_dir, base, a.on_mismatch)
            if d is not None:
                print(f"# {v} seed {s}: {out_dir} {d.describe()}")
        return
    t0 = time.time()
    failures = [f for f in launch.pool(chains, launch.slots(a.jobs), lambda c, slot: run_chain(
        *c, lengths, a.runs_dir, base, a.threads, a.on_mismatch)) if f]
    if failures:
        raise SystemExit("failed:\n" + "\n".join(failures))
    measured = {v: {L: {} for L in lengths} for v in VARIANTS}
    for v, s in chains:
        for L in lengths:
            m = measure(os.path.join(a.runs_dir, f"{v}_s{s}", f"L{L}"), a.data_dir, a.threads)
            for k, x in m.items():
                measured[v][L].setdefault(k, []).append(x)
    tokens_per_step = BASE["batch_size"] * BASE["block_size"]
    gaps, fits = summarize(measured, lengths, seeds, tokens_per_step)
    command = "python ablate.py trend " + " ".join(argv if argv is not None else sys.argv[1:])
    about = provenance.about(a.threads, "cpu", base["dataset"], a.data_dir, BASE["dataset"])
    about[1] += f"; {a.jobs} runs at a time"  # the machine line
    write_report(measured, gaps, fits, lengths, seeds, tokens_per_step, a.results_dir, command.strip(),
                 time.time() - t0, about,
                 trained_at(a.runs_dir, chains, lengths))
