"""
The trend's report (study/trend.py trains and measures; this writes results/trend_<...>/): results.md, trend.json
and trend.png, under the findings' rules.

    fit_crossover(tokens, gaps)   least squares gap = a + b log2(tokens); the tokens where the line reaches 0
                                  after the shortest length measured (None: it moves away from 0)
    seed_crossovers(tokens, gaps) each seed's gaps fitted alone; the 95% t-interval of the seeds' log10
                                  crossovers (verdict.mean_interval of their log10) and their min-max range, or
                                  "undetermined" when the seeds' slopes disagree in sign, a seed never crosses, or
                                  there are fewer than 2 seeds
    summarize(...)                the paired gaps to Pre-LN (val loss, and % of Pre-LN's loss, same seed) and the fits
    training_record(folders)      what trained the runs: run.json's commit, the `done` markers' wall time and
                                  machine ("not recorded" where a marker has none)
    wsd_check_lines(...)          the WSD branches beside separate cosine runs at one length: the difference per
                                  variant and whether the ranking is the same
"""

import json
import math
import os

from study import heldout, records, runlog, verdict

REF = "pre"  # the gaps are to Pre-LN's val loss, same seed


def fit_crossover(tokens, gaps):
    """Least-squares line gap = a + b log2(tokens); the tokens where it reaches zero after the shortest length
    measured (within the lengths measured, or ahead of them: an extrapolation), None when it moves away from 0 or
    is so flat that it reaches 0 only beyond 2^100 tokens."""
    x = [math.log2(t) for t in tokens]
    n = len(x)
    mx, my = sum(x) / n, sum(gaps) / n
    sxx = sum((xi - mx) ** 2 for xi in x)
    b = sum((xi - mx) * (yi - my) for xi, yi in zip(x, gaps)) / sxx if sxx else 0.0
    a = my - b * mx
    cross = 2 ** (-a / b) if b and min(x) < -a / b < 100 else None
    return a, b, cross


def seed_crossovers(tokens, per_seed):
    """per_seed: [gaps at each length] for each seed -> {per_seed: [{intercept, slope_per_doubling,
    crossover_tokens}], status: "determined" | "undetermined", reason, interval: [lo, hi] tokens or None (the 95%
    t-interval of the seeds' log10 crossovers), range: [min, max] tokens or None, n}."""
    fits = [fit_crossover(tokens, g) for g in per_seed]
    out = {"per_seed": [{"intercept": a, "slope_per_doubling": b, "crossover_tokens": c} for a, b, c in fits],
           "n": len(fits), "status": "undetermined", "reason": "", "interval": None, "range": None}
    slopes, crosses = [b for _, b, _ in fits], [c for _, _, c in fits]
    never = sum(c is None for c in crosses)
    if len(fits) < 2:
        out["reason"] = f"{len(fits)} seed: no interval"
    elif not (all(b > 0 for b in slopes) or all(b < 0 for b in slopes)):
        out["reason"] = "the seeds' fitted slopes disagree in sign"
    elif never:
        out["reason"] = f"{never} of {len(fits)} seeds never cross (the gap moves away from 0, or its line is flat)"
    if out["reason"]:
        return out
    iv = verdict.mean_interval([math.log10(c) for c in crosses])
    out.update(status="determined", interval=[10 ** iv["lo"], 10 ** iv["hi"]], range=[min(crosses), max(crosses)])
    return out


def summarize(measured, lengths, seeds, tokens_per_step):
    """{variant: {length: {metric: [per seed]}}} -> (gaps, gaps in % of Pre-LN's loss, crossover fits), each
    {variant: ...} for every variant but Pre-LN; gaps are paired by seed."""
    tokens = [L * tokens_per_step for L in lengths]
    gaps, pct, fits = {}, {}, {}
    for v in measured:
        if v == REF:
            continue
        ref = {L: measured[REF][L]["val_loss"] for L in lengths}
        gaps[v] = {L: [x - r for x, r in zip(measured[v][L]["val_loss"], ref[L])] for L in lengths}
        pct[v] = {L: [100 * (x - r) / r for x, r in zip(measured[v][L]["val_loss"], ref[L])] for L in lengths}
        fits[v] = seed_crossovers(tokens, [[gaps[v][L][i] for L in lengths] for i in range(len(seeds))])
    return gaps, pct, fits


def training_record(folders):
    """{commits, wall_s, segments, unrecorded, machines, jobs} over the run folders: the commit of each run.json
    (and of each segment a `done` marker lists), the sum of the wall times in the `done` markers (a stable run's
    marker lists its segments), the machines they name, and the most runs that trained at once."""
    commits, machines, wall, segments, unrecorded, jobs = set(), set(), 0.0, 0, 0, 1
    for d in folders:
        code = (records.read_record(d) or {}).get("code", {})
        commits.add(short_commit(code.get("commit"), code.get("dirty")))
        done = None
        if os.path.exists(os.path.join(d, "done")):
            with open(os.path.join(d, "done")) as f:
                done = json.load(f)
        for seg in (done.get("segments") or [done]) if done else [{}]:
            if seg.get("commit"):
                commits.add(short_commit(seg["commit"], seg.get("dirty")))
            machines.add(seg.get("machine") or "not recorded")
            if seg.get("wall_s") is None:
                unrecorded += 1
            else:
                wall, segments = wall + seg["wall_s"], segments + 1
            jobs = max(jobs, seg.get("jobs") or 1)
    return {"commits": sorted(commits), "wall_s": wall, "segments": segments, "unrecorded": unrecorded,
            "machines": sorted(machines), "jobs": jobs}


def short_commit(commit, dirty=False):
    if not commit:
        return "not recorded (no run.json)"
    return commit[:7] + (" with uncommitted training-code changes" if dirty else "")


def header_lines(command, plan, trained, dataset_line, projection=None):
    """results.md's header: the command, what trained the runs (commits, wall time, machines, and against it the
    dry run's projection: (thread-seconds, calibration) or None), the dataset and the schedule and learning rates
    the runs trained with (plan: {variant: train.py args})."""
    cfg = next(iter(plan.values()))
    lrs = {v: (args["learning_rate"], args["min_lr"]) for v, args in plan.items()}
    same = len(set(lrs.values())) == 1
    lr_text = (f"{cfg['learning_rate']:g} for every variant, min_lr {cfg['min_lr']:g}" if same else
               "; ".join(f"{v} {lr:g} (min_lr {m:g})" for v, (lr, m) in lrs.items()) + " (per variant, --lr)")
    if cfg["lr_schedule"] == "wsd":
        sched = (f"WSD (warm-up-stable-decay): constant lr after warm-up; each length L is a branch of the stable run "
                 f"at {1 - cfg.get('decay_frac', 0.2):g} L decaying linearly to min_lr over the last decay_frac = "
                 f"{cfg.get('decay_frac', 0.2):g} of L (the papers train cosine)")
    else:
        sched = "cosine to min_lr, one separate run from scratch per length (the papers' schedule)"
    wall = trained["wall_s"]
    wall_text = (f"{wall:,.0f} s ({wall / 3600:.2f} h) summed over {trained['segments']} training segments"
                 + (f" ({trained['unrecorded']} more have no wall time recorded)" if trained["unrecorded"] else "")
                 + (f"; thread-time: up to {trained['jobs']} runs trained in parallel, so the elapsed time was shorter"
                    if trained["jobs"] > 1 else ""))
    if projection and wall:
        seconds, calibration = projection
        wall_text += (f"; the dry run projected {seconds / 3600:.2f} h ({calibration}): measured "
                      f"{100 * (wall / seconds - 1):+.0f}%")
    return [f"Command: `{command}`  ",
            f"Runs trained at commit(s): {', '.join(trained['commits'])} (run.json).  ",
            f"Training wall time: {wall_text}.  ",
            "Trained on: " + "; ".join(trained["machines"]) + ".  ",
            f"{dataset_line}.  ",
            f"Learning rate (AdamW, peak): {lr_text}.  ",
            f"Schedule: {sched}; linear warm-up over {cfg['warmup_iters']} steps.  "]


def tokens_text(t, tokens_per_step):
    return f"{t / 1e6:.2f}M ({t / tokens_per_step:,.0f} steps)"


def crossover_lines(fits, tokens_per_step, max_tokens, seeds):
    lines = ["## crossover: where each seed's fitted gap to Pre-LN reaches 0", "",
             "| config | " + " | ".join(f"seed {s}: slope/doubling, crossover" for s in seeds)
             + " | 95% interval over seeds | range over seeds |", "|---|" + "---|" * (len(seeds) + 2)]
    for v, fit in fits.items():
        cells = []
        for f in fit["per_seed"]:
            c = f["crossover_tokens"]
            where = ("never" if c is None else tokens_text(c, tokens_per_step)
                     + (", extrapolated" if c > max_tokens else ", within the lengths"))
            cells.append(f"{f['slope_per_doubling']:+.4f}, {where}")
        if fit["status"] == "determined":
            iv, rng = fit["interval"], fit["range"]
            tail = [f"{iv[0] / 1e6:.3g}M - {iv[1] / 1e6:.3g}M tokens",
                    f"{rng[0] / 1e6:.3g}M - {rng[1] / 1e6:.3g}M ({fit['n']} seeds)"]
        else:
            tail = [f"undetermined: {fit['reason']}", "-"]
        lines.append(f"| {v} | " + " | ".join(cells + tail) + " |")
    return lines + ["", "Each seed's gaps (val loss - Pre-LN's, same seed) are fitted alone: gap = a + b log2(tokens), "
                    "least squares; its crossover is where the line reaches 0 after the shortest length (beyond the "
                    "longest one it is an extrapolation, not a measurement). The interval is the 95% t-interval "
                    "(t(0.975, n - 1), n seeds) of the seeds' log10 crossovers, given in tokens; the range is the "
                    "smallest and largest per-seed crossover. Undetermined: the seeds' slopes disagree in sign, a "
                    "seed's line never reaches 0 (it moves away from it, or only beyond 2^100 tokens), or fewer "
                    "than 2 seeds.", ""]


def wsd_check_lines(length, wsd, cosine):
    """The WSD stand-in checked at one length: wsd and cosine are {variant: [final val loss per seed]}."""
    lines = [f"## WSD branches vs separate cosine runs at {length} steps", "",
             "| config | WSD branch | cosine run | cosine - WSD: mean [95% t-interval] | gap to Pre-LN, WSD | "
             "gap to Pre-LN, cosine |", "|---|---|---|---|---|---|"]
    for v in wsd:
        iv = verdict.paired_interval(cosine[v], wsd[v])
        diff = (f"{iv['mean']:+.4f} [{iv['lo']:+.4f}, {iv['hi']:+.4f}] (n {iv['n']})" if iv["lo"] is not None
                else "-" if iv["mean"] is None else f"{iv['mean']:+.4f} (n {iv['n']}, no interval)")
        gap = lambda d: mean_spread_str([x - r for x, r in zip(d[v], d[REF])], 4)  # noqa: E731
        lines.append(f"| {v} | {mean_spread_str(wsd[v], 4)} | {mean_spread_str(cosine[v], 4)} | {diff} | "
                     f"{gap(wsd)} | {gap(cosine)} |")
    rank = {k: sorted(d, key=lambda v: runlog.mean_spread(d[v])[0]) for k, d in (("wsd", wsd), ("cosine", cosine))}
    same = rank["wsd"] == rank["cosine"]
    lines += ["", f"Ranking by mean val loss: WSD {' < '.join(rank['wsd'])}; cosine {' < '.join(rank['cosine'])}: "
              + ("the same, the WSD branches stand in for cosine runs at this length." if same else
                 "it differs: the WSD branches do not stand in for cosine runs here, and the trend trains cosine "
                 "(`--schedule=cosine`)."), ""]
    return lines, same


def mean_spread_str(values, digits):
    return runlog.mean_spread_text(*runlog.mean_spread(values), digits)


METRICS = [("val_loss", "val loss", 4), ("removable_all", "removable share, all blocks", 2),
           ("removable_deep_half", "removable share, deeper half", 2), ("stream_growth", "stream rms x_L/x_1", 2)]


def interval_str(iv, digits):
    """'mean [lo, hi]' of a t-interval (verdict.mean_interval, paired_interval), or the mean alone without one."""
    if iv["mean"] is None:
        return "-"
    if iv["lo"] is None:
        return f"{iv['mean']:+.{digits}f} (n {iv['n']})"
    return f"{iv['mean']:+.{digits}f} [{iv['lo']:+.{digits}f}, {iv['hi']:+.{digits}f}]"


def noise_lines(measured, held, lengths, final_eval_tokens):
    """The evaluation noise beside the gaps: each run's own standard error, and the paired error of each mean gap
    to Pre-LN (the same held-out sequences, study/heldout.py), against the gaps whose interval excludes 0.
    Returns (lines, {variant: {length: paired se}})."""
    if not final_eval_tokens:
        return (["## evaluation noise", "", "Each val loss is the last periodic evaluation (eval_iters batches; "
                 "--final_eval_tokens=0): its error is not measured.", ""], {})
    own = [se for v in measured for L in lengths for se in measured[v][L].get("val_se", []) if se is not None]
    if not own:
        return ["## evaluation noise", "", "The runs have no final evaluation over a held-out set: the error of "
                "their val loss is not measured.", ""], {}
    paired = {v: {L: heldout.paired_se(held[v][L], held[REF][L]) for L in lengths} for v in held if v != REF}
    lines = ["## evaluation noise", "",
             f"Each val loss is the run's final evaluation over {final_eval_tokens:,} held-out tokens (train.py "
             f"--final_eval_tokens; the same sequences for every run); the largest standard error of one run's loss "
             f"is {max(own):.4f}. A gap to Pre-LN compares two arms on the same sequences, so its evaluation error "
             "is the paired one (study/heldout.py: the spread over sequences of the per-sequence difference of the "
             "seeds' mean losses, / sqrt(sequences)):", "",
             "| config | " + " | ".join(f"{L} steps: paired se (|gap| / se)" for L in lengths) + " |",
             "|---|" + "---|" * len(lengths)]
    called, worst = [], None
    for v, by_length in paired.items():
        cells = []
        for L in lengths:
            se = by_length[L]
            iv = verdict.paired_interval(measured[v][L]["val_loss"], measured[REF][L]["val_loss"])
            if se is None or iv["mean"] is None:
                cells.append("-")
                continue
            ratio = abs(iv["mean"]) / se if se else math.inf
            cells.append(f"{se:.4f} ({ratio:.1f}x)")
            if iv["lo"] is not None and (iv["lo"] > 0 or iv["hi"] < 0):
                called.append(ratio)
                worst = min(worst, (ratio, v, L)) if worst else (ratio, v, L)
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    if worst:
        lines += ["", f"Of the {len(called)} gaps whose 95% interval excludes 0, the smallest is {worst[0]:.1f} times "
                  f"its paired evaluation error ({worst[1]}, {worst[2]} steps): "
                  + ("every such gap is at least 5 times its evaluation error." if worst[0] >= 5 else
                     "some are not 5 times their evaluation error; read those as weaker.")]
    return lines + [""], paired


def write_report(measured, lengths, seeds, tokens_per_step, results_dir, header, title, check=None, held=None,
                 final_eval_tokens=0):
    """results.md, trend.json and trend.png; header: header_lines(...); check: (length, wsd, cosine) or None;
    held: {variant: {length: [per-sequence held-out losses per seed]}} for the paired evaluation error."""
    gaps, pct, fits = summarize(measured, lengths, seeds, tokens_per_step)
    os.makedirs(results_dir, exist_ok=True)
    lines = [f"# {title}", "", *header, f"Seeds {', '.join(map(str, seeds))}; mean over seeds, spread (max - min) in "
             f"brackets; {tokens_per_step} tokens per step.", ""]
    cols = " | ".join(f"{L} steps ({L * tokens_per_step / 1e6:.2f}M tok)" for L in lengths)
    for key, name, digits in METRICS:
        lines += [f"## {name}", "", f"| config | {cols} |", "|---|" + "---|" * len(lengths)]
        lines += [f"| {v} | " + " | ".join(mean_spread_str(measured[v][L][key], digits) for L in lengths) + " |"
                  for v in measured] + [""]
    for what, table, digits in (("val-loss gap to Pre-LN", gaps, 4), ("gap in % of Pre-LN's val loss", pct, 2)):
        lines += [f"## {what} (same seed; negative = better than Pre-LN; mean [95% t-interval over seeds])", "",
                  f"| config | {cols} |", "|---|" + "---|" * len(lengths)]
        for v in table:
            cells = [verdict.mean_interval([x for x in table[v][L] if verdict.finite(x)]) for L in lengths]
            lines.append(f"| {v} | " + " | ".join(interval_str(iv, digits) for iv in cells) + " |")
        lines.append("")
    noise, paired = noise_lines(measured, held or {}, lengths, final_eval_tokens) if held else ([], {})
    lines += noise
    lines += crossover_lines(fits, tokens_per_step, max(lengths) * tokens_per_step, seeds)
    check_json = None
    if check:
        check_lines, same = wsd_check_lines(*check)
        lines += check_lines
        check_json = {"length": check[0], "wsd": check[1], "cosine": check[2], "same_ranking": same}
    with open(os.path.join(results_dir, "results.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(results_dir, "trend.json"), "w") as f:
        json.dump({"header": header, "seeds": seeds, "lengths": lengths, "tokens_per_step": tokens_per_step,
                   "measured": measured, "gaps": gaps, "gaps_pct": pct, "fits": fits, "wsd_check": check_json,
                   "final_eval_tokens": final_eval_tokens, "paired_eval_se": paired},
                  f, indent=1)
    plot(gaps, fits, lengths, seeds, tokens_per_step, results_dir)
    return fits


def plot(gaps, fits, lengths, seeds, tokens_per_step, results_dir):
    """trend.png: each seed's gaps (points) and its fitted line (dashed), one color per variant."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: trend.png skipped (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    tokens = [L * tokens_per_step for L in lengths]
    ends = [c for f in fits.values() for s in f["per_seed"] if (c := s["crossover_tokens"])]
    right = min(max([max(tokens)] + ends), 16 * max(tokens))  # a crossover ahead is drawn up to 16x the longest
    xs = [min(tokens) * (right / min(tokens)) ** (i / 40) for i in range(41)]
    for k, v in enumerate(gaps):
        color = f"C{k}"
        for i, (seed, f) in enumerate(zip(seeds, fits[v]["per_seed"])):
            ax.plot(tokens, [gaps[v][L][i] for L in lengths], "o", color=color, ms=4, alpha=0.8,
                    label=v if i == 0 else None)
            ax.plot(xs, [f["intercept"] + f["slope_per_doubling"] * math.log2(x) for x in xs], "--", color=color,
                    lw=0.9, alpha=0.8)
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("val loss - Pre-LN's (same seed)")
    ax.set_title("gap to Pre-LN over training length (points: seeds; dashed: each seed's fit)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(results_dir, "trend.png"), dpi=120)
    plt.close(fig)
    print(f"wrote {results_dir}/results.md, trend.json, trend.png")
