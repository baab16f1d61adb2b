"""
The findings table written: findings.md (the claims with their paired intervals and verdicts under both
protocols, where the protocols differ, the rule and its false-verdict rate, the evaluation noise against the
smallest difference called, the lr sweep) and findings.json, and one lr-sweep plot per loss claim.
"""

import json
import os

from study.findings import (FINAL_EVAL_TOKENS, FINDINGS_SEEDS, PAPERS_LR, SWEEP, SWEEP_SEEDS, config_name,
                            loss_with_failures)
from study.results import table
from study.verdict import FALSE_VERDICT_RATE, STALL_MARGIN, finite


def _num(v, digits):
    if v is None:
        return "-"
    return f"{v:.{digits}f}" if isinstance(digits, int) else f"{v:.2e}"


def _side_text(values, digits):
    vals = [v for v in values if finite(v)]
    mean = sum(vals) / len(vals) if vals else None
    return f"{_num(mean, digits)} ({len(vals)} seeds)"


def _interval_text(iv, digits):
    if iv["lo"] is None:
        return f"{_num(iv['mean'], digits)} (n={iv['n']}: no interval)"
    return f"{_num(iv['mean'], digits)} [{_num(iv['lo'], digits)}, {_num(iv['hi'], digits)}] (n={iv['n']})"


def noise_check(rows):
    """(largest standard error of a final val loss in a loss row with a verdict, smallest |mean difference| of such a
    row): the evaluation noise must be at most 1/5 of the smallest difference called a verdict."""
    called = [r for r in rows if r["se"] and r["verdict"] in ("agrees", "disagrees")]
    se = max((max(r["se"]) for r in rows if r["se"]), default=None)
    smallest = min((abs(r["interval"]["mean"]) for r in called), default=None)
    return se, smallest


def needs_paired_error(row):
    """A loss verdict whose runs' own standard error is above 1/5 of its difference: only the paired evaluation
    error (the same held-out tokens for both arms, study/heldout.py) can show that the noise is small enough."""
    return bool(row["se"]) and row["verdict"] in ("agrees", "disagrees") and \
        5 * max(row["se"]) > abs(row["interval"]["mean"])


def paired_error_lines(rows, recheck):
    """One line per verdict that needs_paired_error: its paired evaluation error from the runs' heldout.json, or
    from the copies retrained by findings_study.recheck_evaluation (recheck {(claim id, protocol): result})."""
    lines = []
    for r in filter(needs_paired_error, rows):
        mean = r["interval"]["mean"]
        got = (recheck or {}).get((r["id"], r.get("protocol_key")))
        pse = r.get("paired_se") if r.get("paired_se") is not None else got and got["paired_se"]
        line = f"- {r['claim']} ({r['protocol']}): difference {mean:+.4f}; "
        if pse is None:
            lines.append(line + "paired evaluation error not measured (its runs have no per-sequence losses).")
            continue
        ratio = abs(mean) / max(pse, 1e-12)
        line += (f"paired evaluation error {pse:.4f}, {ratio:.1f}x below it: "
                 f"{'within' if ratio >= 5 else 'NOT within'} the rule")
        if r.get("paired_se") is None and got:
            iv = got["interval"]
            line += (f". Measured on copies of its {got['runs']} runs retrained on {got['machine']} "
                     f"(`{got['folder']}`; its runs predate per-sequence records): their final val losses differ from "
                     f"the table's by at most {got['max_reproduction_diff']:.1e} (another CPU's float rounding), and "
                     f"their own difference is {_interval_text(iv, 4)}, **{got['verdict']}**")
        lines.append(line + ".")
    return lines


def write_findings(rows, sweep, best, results_dir, command, about, unigram, metrics=None, recheck=None):
    """results_dir/findings.md and findings.json from the claim rows and the lr sweep."""
    os.makedirs(results_dir, exist_ok=True)
    table_rows = []
    for r in rows:
        d = r["digits"]
        fails = " / ".join(f"{len(f)}/{n}" + (f" ({', '.join(f)})" if f else "") for f, n in zip(r["failed"], r["n"]))
        without = ("same (no failed run)" if not any(r["failed"]) else
                   f"{r['verdict_without_failed']}: {_interval_text(r['interval_without_failed'], d)}")
        table_rows.append([r["claim"], r["paper"], r["protocol"],
                           f"{r['a']} {_side_text(r['a_values'], d)} vs {r['b']} {_side_text(r['b_values'], d)}",
                           _interval_text(r["interval"], d), f"**{r['verdict']}**" + (f" ({r['why']})" if r.get("why")
                                                                                      else ""),
                           fails if r["se"] else "-", without if r["se"] else "-"])
    differ = []
    for cid in {r["id"] for r in rows if r.get("protocol_key")}:
        pair = {r["protocol_key"]: r for r in rows if r["id"] == cid and r.get("protocol_key")}
        if len(pair) == 2 and pair["best"]["verdict"] != pair["papers"]["verdict"]:
            differ.append(f"- {pair['best']['claim']}: **{pair['best']['verdict']}** with each arm at its best lr, "
                          f"**{pair['papers']['verdict']}** with every arm at {PAPERS_LR:g}.")
    se, smallest = noise_check(rows)
    n_verdicts = sum(r["verdict"] != "not testable" for r in rows)
    md = ["# Findings: what reproduces at CPU scale", "",
          f"Command: `{command}` (regenerates this table: runs whose run.json matches are reused, none retrained)  ",
          *[f"{line}  " for line in about], "",
          table(["claim", "paper's figure", "model, length, lr", "ours: mean over seeds (A vs B)",
                 "paired difference A - B: mean [95% interval]", "verdict", "failed runs A / B",
                 "verdict without the failed runs"], table_rows), "",
          "**The rule** (verdict.py): for a claim \"A < B\", the per-seed differences d = A - B of runs with the same "
          "seed (the same data order) give the mean and its 95% t-interval; **agrees** when the interval lies below "
          "0, **disagrees** when above, else **no difference detected** (the interval says how large an effect could "
          "have been missed). Under no effect a verdict is false in 5% of comparisons (2.5% each way): among the "
          f"{n_verdicts} verdicts above, {FALSE_VERDICT_RATE * n_verdicts:.1f} false ones are expected by chance.  ",
          f"**Failed runs** count: a run that diverged (non-finite loss) or stalled (final val loss within "
          f"{STALL_MARGIN} of the unigram loss {unigram:.3f}) enters the verdict at the unigram loss; the last column gives the "
          "verdict over the seeds where both arms trained.  ",
          f"**Evaluation**: every final val loss is over {FINAL_EVAL_TOKENS:,} held-out tokens (train.py "
          f"--final_eval_tokens); its largest standard error is {_num(se, 4)}, the smallest loss difference called "
          f"a verdict {_num(smallest, 4)}" + ("" if se is None or smallest is None else
                                            f" ({'within' if se <= smallest / 5 else 'NOT within'} the rule SE <= 1/5 "
                                            f"of it: {smallest / max(se, 1e-12):.1f}x)") + ". "
          "Every run is scored on the same held-out tokens, so a difference between arms carries the paired "
          "evaluation error (study/heldout.py), smaller than one run's"
          + (":" if any(map(needs_paired_error, rows)) else "."),
          *paired_error_lines(rows, recheck), ""]
    if differ:
        md += ["## Where the two protocols differ", "", *differ, ""]
    else:
        md += ["## Where the two protocols differ", "", "Nowhere: every depth claim gets the same verdict with each arm "
               f"at its best lr and with every arm at {PAPERS_LR:g}.", ""]
    md += ["## The lr sweep behind each arm's best lr", "",
           f"Final val loss per seed ({', '.join(map(str, SWEEP_SEEDS))}; a failed run at the unigram loss), "
           "mean; the best lr is the lowest mean and is never at an edge of the lrs tried (the sweep was extended "
           "when it was). Plots: " + ", ".join(f"[{p}]({p})" for p in SWEEP_PLOTS) + ".", ""]
    sweep_rows = []
    for arm, by_lr in sweep.items():
        for lr, losses in sorted(by_lr.items()):
            mean = sum(losses) / len(losses)
            sweep_rows.append([f"{arm[0]} {arm[1]}", f"{lr:g}" + (" (best)" if lr == best.get(arm) else ""),
                               ", ".join(f"{v:.4f}" for v in losses), f"{mean:.4f}"])
    md += [table(["arm", "lr (Muon: muon_lr)", "final val loss per seed", "mean"], sweep_rows), ""]
    md += kurtosis_grid(metrics or {})
    md += ["What is measured:", ""]
    md += [f"- {r['claim']}: {r['measure']}." for r in rows if r.get("protocol_key") != "papers"]
    md += ["", "The runs behind this table: `runs/` beside it (run.json, log.jsonl, analysis.json, quant.json, "
           "heldout.json where kept, done of each; no checkpoints)" + ("; the retrained copies of the evaluation "
                                                                       "check: `recheck/runs/`" if recheck else "")
           + ". At 1-2M parameters and 0.3M tokens a claim about 130M-1B models trained on "
           "billions of tokens is tested in direction, not in size.", ""]
    with open(os.path.join(results_dir, "findings.md"), "w") as f:
        f.write("\n".join(md))
    summary = {"command": command, "about": about, "seeds": list(FINDINGS_SEEDS), "sweep_seeds": list(SWEEP_SEEDS),
               "unigram_loss": unigram, "final_eval_tokens": FINAL_EVAL_TOKENS,
               "best_lr": {"/".join(k): v for k, v in best.items()},
               "sweep": {"/".join(k): {f"{lr:g}": v for lr, v in by_lr.items()} for k, by_lr in sweep.items()},
               "rows": [{k: v for k, v in r.items() if k != "digits"} for r in rows],
               "recheck": {f"{k[0]}/{k[1]}": v for k, v in (recheck or {}).items()}}
    with open(os.path.join(results_dir, "findings.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    return summary


SWEEP_PLOTS = ("sweep_lns.png", "sweep_mix.png", "sweep_post.png", "sweep_muon.png")


def plot_sweeps(metrics, extensions, unigram, results_dir):
    """One plot per loss claim: final val loss against lr, one line per arm, the seeds' range as bars."""
    from analyze import pyplot
    plt = pyplot()
    arms = {"sweep_lns.png": ["pre", "pre_lns"], "sweep_mix.png": ["pre", "mix"], "sweep_post.png": ["pre", "post"],
            "sweep_muon.png": ["adamw", "muon"]}
    for path, names in arms.items():
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for name in names:
            arm = ("optim" if name in ("adamw", "muon") else "depth", name)
            lrs = sorted(set(SWEEP[arm][1]) | set(extensions.get(arm, ())))
            pts = [(lr, [loss_with_failures(m, unigram) for s, m in metrics.get(config_name(*arm, lr), {}).items()
                         if s in SWEEP_SEEDS]) for lr in lrs]
            pts = [(lr, v) for lr, v in pts if v]
            mean = [sum(v) / len(v) for _, v in pts]
            err = [[m - min(v) for m, (_, v) in zip(mean, pts)], [max(v) - m for m, (_, v) in zip(mean, pts)]]
            ax.errorbar([lr for lr, _ in pts], mean, yerr=err, marker="o", capsize=3,
                        label=name + (" (muon_lr)" if name == "muon" else ""))
        ax.set_xscale("log")
        ax.set_xlabel("lr")
        ax.set_ylabel("final val loss")
        ax.set_title(f"{' vs '.join(names)}: {len(SWEEP_SEEDS)} seeds, range as bars", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(results_dir, path), dpi=90)
        plt.close(fig)


KURTOSIS_TARGET = 3.0  # OSP's outliers: an AdamW model whose mean excess kurtosis exceeds this has them to remove


def kurtosis_grid(metrics):
    """The OSP row's search: every trained configuration's mean excess kurtosis (analyze.py, relu'd as OSP does),
    and whether any AdamW model exceeds KURTOSIS_TARGET."""
    rows, adamw = [], []
    for config, by_seed in sorted(metrics.items()):
        values = [m["kurtosis_mean"] for m in by_seed.values() if finite(m.get("kurtosis_mean"))]
        if not values:
            continue
        optimizer = "Muon" if "muon" in config else "AdamW"
        rows.append([config, optimizer, f"{sum(values) / len(values):.3f}", f"{max(values):.3f}", len(values)])
        if optimizer == "AdamW":
            adamw.append((max(values), config))
    if not rows:
        return []
    top = max(adamw) if adamw else (None, None)
    return ["## Searching for outliers (the OSP row)", "",
            f"Mean excess kurtosis of the hidden states after training, every trained configuration (24 x 64 depth "
            f"arms and 6 x 128 optimizer arms at every lr of the sweep). The largest AdamW value is "
            f"{_num(top[0], 3)} ({top[1]}): " + ("above" if top[0] is not None and top[0] > KURTOSIS_TARGET else
                                                 "not above") + f" the {KURTOSIS_TARGET:g} where OSP's outliers begin."
            " Not searched here (CPU time): wider models, longer runs, the GPT-2 tokenizer.", "",
            table(["configuration", "optimizer", "kurtosis: mean over seeds", "max", "seeds"], rows), ""]
