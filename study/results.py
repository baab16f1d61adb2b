"""
A study's results: results/<study>_<scale>/results.md (the command, commit, machine, dataset and tables) and
summary.json, from the finished runs' folders; plots.py draws the PNGs it links.

Metrics of a run (run_metrics): final val loss and perplexity exp(val loss); final train loss; ms/iter = median
of log.jsonl's train rows (the first row, which holds start-up costs, is left out); analyze.py's summary
(removable share, stream growth, per-block gradient norms, excess kurtosis). The norm study also gives the largest
|train loss difference| between runs at equal logged iterations (ln, rms+zero_mean and crms are the same function
of the same parameters, so they differ only by float rounding; the float64 proof is
tests/test_model.py::test_pre_ln_rms_crms_train_identically, which ablate.py runs and this table reports).

With several seeds per configuration (cpu_deep, gpu_short): the final numbers as mean (spread = max - min) over
the seeds, and, from train.py's --analyze_interval eval rows, the removable share and the stream growth
rms(x_L)/rms(x_0) over training, averaged over the seeds that reached each evaluation.
"""

import json
import math
import os
import statistics

from study.plots import plot_seeds, plot_study
from study.provenance import trained_at
from study.runlog import deep_half_removable, max_loss_diff, mean_spread, mean_spread_text, read_log
from study.studies import PAPER_SOURCE


def run_metrics(run, record, out_dir):
    train_rows, eval_rows = read_log(out_dir)
    m = {"label": run.label, "group": run.group, "cmd": record["cmd"], "wall_s": record.get("wall_s"), **run.extra}
    if record.get("failed"):
        m["failed"] = record["failed"]
    if eval_rows:
        last = eval_rows[-1]
        m.update(iter=last["iter"], val_loss=last["val_loss"], train_loss_eval=last["train_loss"],
                 val_ppl=math.exp(min(last["val_loss"], 50)))
    if train_rows:
        m["train_loss"] = train_rows[-1]["loss"]
        ms = [r["ms"] for r in train_rows[1:]] or [train_rows[0]["ms"]]
        m["ms_per_iter"] = statistics.median(ms)
    if "analysis" in record:
        m["analysis"] = record["analysis"]["summary"]
    return m


def f4(v, digits=4):
    return "-" if v is None else f"{v:.{digits}f}"


def sci(v):
    return "-" if v is None else f"{v:.2e}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main_table(runs, metrics, study):
    header = ["run", "setting", "final train loss", "final val loss", "val ppl", "ms/iter", "wall s",
              "drop <1% share", "max drop %", "adjacent ang. dist", "rms x_L/x_1", "grad norm first/last", "grad norm CV",
              "excess kurtosis"]
    paper = any("paper_val_ppl" in metrics[r.name] for r in runs)
    if paper:
        header.insert(5, "paper val ppl")
    rows = []
    for run in runs:
        m = metrics[run.name]
        a = m.get("analysis", {})
        if m.get("failed"):
            rows.append([run.name, run.label, f"failed (exit {m['failed']})"] + ["-"] * (len(header) - 3))
            continue
        rows.append([run.name, run.label, f4(m.get("train_loss")), f4(m.get("val_loss")), f4(m.get("val_ppl"), 2),
                     f4(m.get("ms_per_iter"), 1), f4(m.get("wall_s"), 0),
                     f4(a.get("drop_share_lt1pct"), 2), f4(None if "drop_max_rel" not in a else 100 * a["drop_max_rel"], 1),
                     f4(a.get("ang_adjacent"), 3), f4(a.get("rms_growth_deep"), 2),
                     f4(a.get("grad_norm_first_over_last"), 2), f4(a.get("grad_norm_cv"), 2),
                     f"{f4(a.get('kurtosis_mean'), 2)} (raw {f4(a.get('kurtosis_raw_mean'), 2)})"])
        if paper:
            rows[-1].insert(5, f4(m.get("paper_val_ppl"), 2))
    return table(header, rows)


# seeds of one configuration (cpu_deep): mean and spread, and the quick metrics over training

TRACKED = ("val_loss", "drop_share_lt1pct", "rms_growth", "ang_adjacent", "drop_max_rel")  # eval-row keys


def by_config(runs):
    """{config: [runs]} for runs that carry a seed (extra["config"]), in plan order."""
    groups = {}
    for run in runs:
        if "config" in run.extra:
            groups.setdefault(run.extra["config"], []).append(run)
    return groups


def trajectory(out_dir):
    """The eval rows that carry analyze.quick_metrics (train.py --analyze_interval): {key: [values]} by iter."""
    rows = [r for r in read_log(out_dir)[1] if "drop_share_lt1pct" in r]
    return {"iter": [r["iter"] for r in rows], **{k: [r.get(k) for r in rows] for k in TRACKED}}


def seed_summary(runs, metrics, runs_dir):
    """Per configuration: the seeds' final numbers (mean and spread) and their mean trajectory."""
    out = {}
    for config, group in by_config(runs).items():
        ms = [metrics[r.name] for r in group]
        a = [m.get("analysis", {}) for m in ms]
        final = {
            "val_loss": [m.get("val_loss") for m in ms],
            "drop_share_lt1pct": [x.get("drop_share_lt1pct") for x in a],
            "rms_growth_deep": [x.get("rms_growth_deep") for x in a],
            "rms_growth": [x.get("rms_growth") for x in a],
            "ang_adjacent": [x.get("ang_adjacent") for x in a],
            "grad_norm_first_over_last": [x.get("grad_norm_first_over_last") for x in a],
            "grad_norm_cv": [x.get("grad_norm_cv") for x in a],
            "deep_half_removable": [deep_half_removable(os.path.join(runs_dir, r.name)) for r in group],
        }
        trajs = [trajectory(os.path.join(runs_dir, r.name)) for r in group]
        iters = sorted(set().union(*(t["iter"] for t in trajs)))
        mean_traj = {"iter": iters}
        for k in TRACKED:  # mean over the seeds that reached each evaluation
            mean_traj[k] = [mean_spread([t[k][t["iter"].index(i)] for t in trajs if i in t["iter"]])[0]
                            for i in iters]
        out[config] = {"label": group[0].label, "seeds": [r.args.get("seed") for r in group],
                       "runs": [r.name for r in group],
                       "final": {k: dict(zip(("mean", "spread"), mean_spread(v)), values=v) for k, v in final.items()},
                       "trajectory": mean_traj, "trajectory_per_seed": trajs}
    return out


def seed_tables(summary, n_layer):
    """Markdown: final numbers as mean (spread = max - min over seeds), then the share and growth over training."""
    def ms(entry, digits):
        return mean_spread_text(entry["mean"], entry["spread"], digits)
    rows = []
    for config, s in summary.items():
        f = s["final"]
        share = f["drop_share_lt1pct"]
        blocks = "-" if share["mean"] is None else f"{share['mean'] * n_layer:.1f} of {n_layer}"
        rows.append([config, s["label"], len(s["seeds"]), ms(f["val_loss"], 4), ms(share, 2), blocks,
                     ms(f["deep_half_removable"], 2),
                     ms(f["rms_growth_deep"], 2), ms(f["rms_growth"], 2), ms(f["ang_adjacent"], 3),
                     ms(f["grad_norm_first_over_last"], 2), ms(f["grad_norm_cv"], 2)])
    md = ["## mean over seeds (spread = max - min)", "",
          table(["config", "setting", "seeds", "final val loss", "removable share (drop < 1%)", "removable blocks",
                 "removable share, deeper half", "rms x_L/x_1", "rms x_L/x_0", "adjacent ang. dist", "grad norm first/last", "grad norm CV"], rows), ""]
    iters = sorted(set().union(*(s["trajectory"]["iter"] for s in summary.values()))) if summary else []
    for key, title, digits in (("drop_share_lt1pct", "removable share (drop < 1%, one val batch)", 2),
                               ("rms_growth", "stream growth rms(x_L)/rms(x_0) (one val batch)", 2),
                               ("val_loss", "val loss", 3)):
        rows = []
        for config, s in summary.items():
            t = s["trajectory"]
            by_iter = dict(zip(t["iter"], t[key]))
            rows.append([config] + [f4(by_iter.get(i), digits) for i in iters])
        md += [f"## over training: {title}, mean over seeds", "", table(["config"] + [str(i) for i in iters], rows), ""]
    return md


def write_results(study, scale, runs, records, runs_dir, results_dir, commands, wall, exact=None, about=None,
                  plots=True):
    """results.md (tables; about: provenance lines under the command), summary.json and, with plots, the PNGs."""
    os.makedirs(results_dir, exist_ok=True)
    metrics = {r.name: run_metrics(r, records.get(r.name, {"cmd": ""}), os.path.join(runs_dir, r.name))
               for r in runs}
    md = [f"# {study} study, scale {scale}", "",
          f"Command: `{commands}`  ",
          *[f"{line}  " for line in (about or [])],
          f"{trained_at([os.path.join(runs_dir, r.name) for r in runs])}  ",
          f"Training wall time: {sum((m.get('wall_s') or 0) for m in metrics.values()):.0f} s summed over the runs "
          f"(each run's own time, kept in its `done` marker; runs skipped here were trained earlier); "
          f"this invocation took {wall:.0f} s.  ",
          f"Run folders: `{runs_dir}`; per-run analysis: `<run>/analysis.json`, `<run>/analysis_*.png`.", ""]
    extra = {}
    groups = list(dict.fromkeys(r.group for r in runs))
    for g in groups:
        group = [r for r in runs if r.group == g]
        if g:
            md += [f"## depth {g[1:]}", ""]
        md += [main_table(group, metrics, study), ""]
    if any("paper_val_ppl" in m for m in metrics.values()):
        md += [f"paper val ppl: {PAPER_SOURCE}; the same model, data (C4 en, T5 tokenizer) and schedule.", ""]
    md += ["Columns: final train loss = mean of the last log_interval steps; val loss from the last evaluation; "
           "ms/iter = median step time (shared CPU: noisy); drop <1% share = share of blocks whose removal raises "
           "the val loss by <1%; max drop = the costliest single block; adjacent ang. dist = mean "
           "arccos(cos(x_l, x_(l+1)))/pi over all tokens; rms x_L/x_1 = growth of the residual stream from the first block's output to the last (x_0, the embedding, has its own arbitrary scale; x_L/x_0 is in summary.json); grad norm first/last and CV (std/mean over blocks) = per-block gradient norms on the analysis batches (Mix-LN: low CV = uniform); excess kurtosis = OSP's "
           "relu'd mean over x_0..x_L (raw: without the relu).", ""]
    if study == "norm":
        done = {r.name for r in runs if "val_loss" in metrics[r.name]}
        pairs = [("ln", "rms_zm"), ("ln", "crms"), ("rms_zm", "crms"), ("ln", "rms")]
        rows = []
        for a, b in pairs:
            if a in done and b in done:
                d = max_loss_diff(os.path.join(runs_dir, a), os.path.join(runs_dir, b))
                extra[f"{a}_vs_{b}"] = d
                rows.append([f"{a} vs {b}", sci(d["train"]), d["iters"], sci(d["val"]),
                             "yes" if b != "rms" else "no (plain RMSNorm is another model)"])
        md += ["## equivalence: max |train loss difference| per logged iteration", "",
               table(["pair", "max abs diff, train loss", "logged iters", "max abs diff, val loss",
                      "equivalent in exact arithmetic"], rows), ""]
        if "ln" in done:
            base = metrics["ln"].get("ms_per_iter")
            md += ["Step time relative to Pre-LN: " + ", ".join(
                f"{r.name} {100 * (metrics[r.name]['ms_per_iter'] / base - 1):+.1f}%"
                for r in runs if r.name != "ln" and metrics[r.name].get("ms_per_iter") and base) +
                " (training form: rms+zero_mean and crms centre/compress the weights inside forward, "
                "which costs time; the inference speed-up of the paper needs convert.py's baked weights).", ""]
        if exact is not None:
            extra["exactness_test"] = exact
            md += [f"Exactness proof in float64: `pytest {exact['test']}` -> {exact['summary']} "
                   f"(exit {exact['returncode']}); it trains ln, rms+zero_mean and crms for 50 steps with AdamW "
                   "and Muon and requires |loss difference| <= 1e-9 at every step.", ""]
    pngs = []
    if by_config(runs):  # several seeds per configuration (cpu_deep): their mean, spread and trajectories
        seeds = seed_summary(runs, metrics, runs_dir)
        extra["by_config"] = seeds
        md += seed_tables(seeds, int(runs[0].args.get("n_layer", 0)))
        md += ["Removable share: blocks whose removal raises the loss by < 1% (final: the analysis batches; over "
               "training: one val batch of train.py's quick_metrics). rms x_L/x_0 over training uses the "
               "embedding output as reference (quick_metrics); the final x_L/x_1 leaves the embedding's scale out.", ""]
        if plots:
            pngs = plot_seeds(seeds, runs_dir, results_dir)
    if plots:
        md += ["## plots", ""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})"
                                  for p in pngs + plot_study(runs, metrics, runs_dir, results_dir, study)]
    with open(os.path.join(results_dir, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    summary = {"study": study, "scale": scale, "command": commands, "about": about or [], "wall_s": wall,
               "runs_dir": runs_dir, "runs": metrics, **extra}
    with open(os.path.join(results_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary
