"""
The findings table: which of the papers' claims reproduce at CPU scale, under the rules a reviewer of a
reproduction would ask for (results/findings/findings.md, findings.json, one lr-sweep plot per claim).

    python ablate.py findings --jobs=2    # trains what is missing, reuses what matches, writes the table

1. Each arm at its own best lr. Every arm of a loss claim (Pre-LN, LNS, Mix-LN, Post-LN; AdamW, Muon) is swept
   over >= 4 lrs a factor of 2 apart with SWEEP_SEEDS at the table's length; its best lr (verdict.best_lr) must
   not sit at an edge of the sweep, which is extended until it does not. Then the table's rows: each arm at its
   best lr with FINDINGS_SEEDS (the fair comparison) and every depth arm at the papers' shared lr PAPERS_LR (their
   protocol); the table gives the verdict under both and says where they differ.
2. Verdicts are paired 95% intervals over seeds (verdict.py), with each arm's failure rate, and losses compared
   without and with the failed runs.
3. The loss that decides a verdict is each run's final val loss over FINAL_EVAL_TOKENS held-out tokens
   (train.py --final_eval_tokens), with its standard error; the table checks SE <= 1/5 of the smallest loss
   difference it calls a verdict.
4. The runs live beside the table (results/findings/runs/); their small files ship with it (RECORD_FILES:
   run.json, log.jsonl, analysis.json, quant.json, done; never a checkpoint: .gitignore), so that the table
   regenerates from a fresh clone with every run reused and none trained.
"""

import json
import math
import os
import sys

from study.results import table
from study.runlog import deep_half_removable, max_loss_diff, read_analysis
from study.studies import CPU_BASE, CPU_STUDY, DEEP_BASE, Run, variants
from study.verdict import (FALSE_VERDICT_RATE, failure, finite, loss_with_failures, loss_without_failures,
                           paired_verdict)

FINDINGS_SEEDS = (1337, 1338, 1339, 1340, 1341)  # the table's rows: >= 5 seeds at each arm's best lr
SWEEP_SEEDS = FINDINGS_SEEDS[:2]                  # the lr sweep: >= 2 seeds per lr (reused by the table's rows)
NORM_SEEDS = FINDINGS_SEEDS[:3]                   # the exactness row: a rounding-size difference, 3 seeds show it
PAPERS_LR = 1e-3  # the LNS and Mix-LN papers' shared lr for LLaMA-71M/130M: their protocol, every arm at one lr
FINAL_EVAL_TOKENS = 131072  # the held-out tokens of each run's final val loss (train.py --final_eval_tokens)
# Lengths: the norm and optim arms are the cpu studies' 6 x 128 runs (400 steps); the depth arms are cpu_deep's
# 24 x 64 model at 400 steps (cpu_deep trains 800), without the quick_metrics trajectories.
FINDINGS_DEPTH = dict(DEEP_BASE, max_iters=400, warmup_iters=40, analyze_interval=0)
FINDINGS_NORM = {**CPU_BASE, **CPU_STUDY["norm"]}
FINDINGS_OPTIM = {**CPU_BASE, **CPU_STUDY["optim"]}
# the arms of the loss claims, each swept over >= 4 lrs a factor of 2 apart: (part, variant) -> (the lr it
# sweeps, the grid). A learning_rate sweep sets min_lr = lr / 10; Muon sweeps its matrices' lr (muon_lr) and keeps
# AdamW's lr for the embeddings, head and gains. A best lr at an edge of the grid extends it (sweep_extension).
SWEEP = {("depth", "pre"): ("learning_rate", (5e-4, 1e-3, 2e-3, 4e-3)),
         ("depth", "pre_lns"): ("learning_rate", (5e-4, 1e-3, 2e-3, 4e-3)),
         ("depth", "mix"): ("learning_rate", (5e-4, 1e-3, 2e-3, 4e-3)),
         ("depth", "post"): ("learning_rate", (5e-4, 1e-3, 2e-3, 4e-3)),
         ("optim", "adamw"): ("learning_rate", (1e-3, 2e-3, 4e-3, 8e-3)),
         ("optim", "muon"): ("muon_lr", (0.01, 0.02, 0.04, 0.08))}
OSP_ARM = ("optim", "muon_ss_ep")  # Muon + SSNorm + EmbProj, trained at Muon's best muon_lr
# ms per step on one thread (float32), measured 2026-12-02 on a 2-core Xeon (AVX-512, AMX): idle, 6 x 128 norm
# runs 82-90, optim runs (Muon) 112, 24 x 64 depth runs 150; busy (load 4.7) 128, 202 and 208. The projection uses
# the busy figures, an upper bound on a CPU shared by two runs.
FINDINGS_MS_PER_ITER = {"norm": 130, "optim": 200, "depth": 210}
FINDINGS_RUN_OVERHEAD_S = 8  # python/torch start-up, the final checkpoint and the analysis of one run
FINDINGS_CALIBRATION = "ms/step norm 130, optim 200, depth 210 measured on one thread of a busy 2-core Xeon"


def findings_run(part, variant, lr, seed, overrides):
    """One run of the findings study: an arm (part, variant) at one lr (None: the part's own lr) and seed."""
    base = {"norm": FINDINGS_NORM, "depth": FINDINGS_DEPTH, "optim": FINDINGS_OPTIM}[part]
    _, label, args = next(v for v in variants(part) if v[0] == variant)
    key = SWEEP[("optim", "muon") if (part, variant) == OSP_ARM else (part, variant)][0] if lr is not None else None
    lr_args = {} if key is None else {"muon_lr": lr} if key == "muon_lr" else {"learning_rate": lr, "min_lr": lr / 10}
    config = f"{part}_{variant}" + ("" if key is None else f"_{'m' if key == 'muon_lr' else ''}lr{lr:g}")
    a = {**base, **args, **lr_args, "seed": seed, "final_eval_tokens": FINAL_EVAL_TOKENS, **overrides}
    return Run(f"{config}_s{seed}", a, group=part, label=label,
               extra={"part": part, "variant": variant, "lr": lr, "lr_key": key, "seed": seed, "config": config})


def sweep_plan(overrides, extensions=None):
    """Stage 1: every swept arm at every lr of its grid (plus the extensions {(part, variant): [lr, ...]}) with
    SWEEP_SEEDS, and the norm study's 4 variants with NORM_SEEDS (the exactness row needs no lr)."""
    runs = []
    for (part, variant), (_, grid) in SWEEP.items():
        for lr in sorted(set(grid) | set((extensions or {}).get((part, variant), ()))):
            runs += [findings_run(part, variant, lr, seed, overrides) for seed in SWEEP_SEEDS]
    runs += [findings_run("norm", v[0], None, seed, overrides) for seed in NORM_SEEDS for v in variants("norm")]
    return runs


def findings_plan(overrides, best=None, extensions=None):
    """The whole study: stage 1 (sweep_plan) and, once each arm's best lr is known (best {(part, variant): lr}),
    stage 2: every swept arm at its best lr and every depth arm at PAPERS_LR with FINDINGS_SEEDS, and the OSP arm
    at Muon's best lr. Runs are named by arm, lr and seed, so one training serves every stage that plans it."""
    runs = sweep_plan(overrides, extensions)
    if best is not None:
        for (part, variant), lr in best.items():
            lrs = [lr] + ([PAPERS_LR] if part == "depth" and lr != PAPERS_LR else [])
            runs += [findings_run(part, variant, x, seed, overrides) for x in lrs for seed in FINDINGS_SEEDS]
        runs += [findings_run(*OSP_ARM, best[("optim", "muon")], seed, overrides) for seed in FINDINGS_SEEDS]
    unique = {}
    for r in runs:
        unique.setdefault(r.name, r)
    return list(unique.values())




def findings_thread_seconds(run):
    """Projected seconds of one findings run on one thread: steps, evaluations (a forward pass ~ 1/3 step) and the
    final held-out evaluation."""
    a = {k: int(run.args[k]) for k in ("max_iters", "eval_interval", "eval_iters", "batch_size", "block_size")}
    evals = a["max_iters"] // a["eval_interval"] + 1
    final = int(run.args.get("final_eval_tokens", 0)) / (a["batch_size"] * a["block_size"])
    steps = a["max_iters"] + (evals * 2 * a["eval_iters"] + final) / 3
    return FINDINGS_MS_PER_ITER[run.extra["part"]] * steps / 1000 + FINDINGS_RUN_OVERHEAD_S


# --------------------------------------------------------------------------------------------
# what the table reads from a run folder

RECORD_FILES = ("run.json", "log.jsonl", "analysis.json", "quant.json", "done")  # what ships; never ckpt.pt


def _json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def unigram_loss(data_dir, dataset):
    """Entropy in nats of the training split's token frequencies: the loss of a model that learned only them."""
    import numpy as np

    import data
    sampler = data.BatchSampler(data_dir, dataset, "train", 1, 1)
    counts = sum(np.bincount(np.asarray(s), minlength=65536)[:65536] for s in sampler.shards)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def train_time_to(rows, target):
    """(first logged iteration whose train loss is <= target, training seconds until then from the rows' ms per
    step; evaluations excluded); (inf, inf) if never."""
    seconds, last = 0.0, -1
    for r in rows:
        seconds += r["ms"] * (r["iter"] - last) / 1000
        last = r["iter"]
        if r["loss"] <= target:
            return float(r["iter"]), seconds
    return math.inf, math.inf


def run_metrics(out_dir):
    """The numbers of one finished run folder (None without its done marker)."""
    done = _json(os.path.join(out_dir, "done"))
    if done is None:
        return None
    rows = []
    if os.path.exists(os.path.join(out_dir, "log.jsonl")):
        with open(os.path.join(out_dir, "log.jsonl")) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    train_rows = [r for r in rows if "loss" in r]
    final = next((r for r in reversed(rows) if "final_val_loss" in r), {})
    analysis = (read_analysis(out_dir) or {}).get("summary", {})
    ms = sorted(r["ms"] for r in train_rows[1:]) or [None]
    return {"dir": out_dir, "outcome": done.get("outcome", "trained"), "reason": done.get("reason"),
            "wall_s": done.get("wall_s"), "ms_per_step": ms[len(ms) // 2], "train_rows": train_rows,
            "final_val_loss": final.get("final_val_loss"), "final_val_se": final.get("final_val_se"),
            "final_val_tokens": final.get("final_val_tokens"),
            "train_loss": train_rows[-1]["loss"] if train_rows else None,
            "rms_growth_deep": analysis.get("rms_growth_deep"), "grad_norm_cv": analysis.get("grad_norm_cv"),
            "kurtosis_mean": analysis.get("kurtosis_mean"),
            "deep_half_removable": deep_half_removable(out_dir) if analysis else None,
            **{k: v for k, v in (_json(os.path.join(out_dir, "quant.json")) or {}).items() if k.endswith("increase")}}


def collect(runs, runs_dir):
    """{config: {seed: metrics}} of the runs with a done marker."""
    out = {}
    for run in runs:
        m = run_metrics(os.path.join(runs_dir, run.name))
        if m is not None:
            out.setdefault(run.extra["config"], {})[run.extra["seed"]] = m
    return out


def config_name(part, variant, lr):
    return findings_run(part, variant, lr, 0, {}).extra["config"]


def choose_lrs(metrics, unigram, extensions):
    """({arm: best lr}, {arm: [lrs to add]}, {arm: sweep rows}) from the sweep's runs: an arm whose best lr is at
    an edge gets the next lr beyond it, unless it was extended MAX_EXTENSIONS times in that direction already."""
    from study.verdict import MAX_EXTENSIONS, best_lr
    best, more, sweep = {}, {}, {}
    for arm, (_, grid) in SWEEP.items():
        lrs = sorted(set(grid) | set(extensions.get(arm, ())))
        by_lr = {lr: [m for s, m in metrics.get(config_name(*arm, lr), {}).items() if s in SWEEP_SEEDS] for lr in lrs}
        if any(len(ms) < len(SWEEP_SEEDS) for ms in by_lr.values()):
            continue  # the sweep of this arm is not finished
        best[arm], beyond = best_lr(by_lr, unigram)
        n_side = sum((x < min(grid)) if beyond and beyond < best[arm] else (x > max(grid)) for x in lrs)
        if beyond is not None and n_side < MAX_EXTENSIONS:
            more[arm] = [beyond]
        sweep[arm] = {lr: [loss_with_failures(m, unigram) for m in ms] for lr, ms in by_lr.items()}
    return best, more, sweep


# --------------------------------------------------------------------------------------------
# the claims

# claim: (id, text, the paper's figure, lower arm, higher arm, metric, what is measured)
DEPTH_CLAIMS = [
    ("lns_loss", "LNS lowers the loss against Pre-LN",
     "Sun et al. 2025, Table 1: C4 val ppl 25.76 (Pre-LN + LNS) vs 26.73 (Pre-LN), 130M; 20.35 vs 21.92, 250M",
     "pre_lns", "pre", "val_loss", "final val loss: LNS below Pre-LN"),
    ("mix_loss", "Mix-LN lowers the loss against Pre-LN",
     "Li et al. 2025 / Sun et al. Table 1: C4 val ppl 26.07 (Mix-LN) vs 26.73 (Pre-LN), 130M; 21.39 vs 21.92, 250M",
     "mix", "pre", "val_loss", "final val loss: Mix-LN below Pre-LN"),
    ("post_depth", "Post-LN trains worse than Pre-LN at depth",
     "Sun et al. 2025, Table 1: Post-LN 1409.79 vs Pre-LN 21.92 C4 val ppl at 250M (24 layers); 26.95 vs 26.73 "
     "at 130M (12 layers)", "pre", "post", "val_loss", "final val loss: Pre-LN below Post-LN"),
    ("stream_growth", "LNS's residual stream grows less with depth than Pre-LN's",
     "Sun et al. 2025: Pre-LN output variance grows with depth; LNS keeps it smaller (variance-vs-layer figure)",
     "pre_lns", "pre", "rms_growth_deep", "rms(x_L)/rms(x_1) after training: LNS below Pre-LN"),
    ("removable", "Fewer of LNS's deep blocks are removable than Pre-LN's",
     "Sun et al. 2025: removing a deep Pre-LN block barely changes the loss; with LNS every block matters",
     "pre_lns", "pre", "deep_half_removable", "share of the deeper-half blocks whose removal costs < 1% of the "
     "val loss: LNS below Pre-LN"),
    ("mix_grad", "Mix-LN's per-block gradient norms are more even than Pre-LN's",
     "Li et al. 2025: Pre-LN shrinks deep layers' gradient norms, Post-LN early ones; Mix-LN's are more uniform",
     "mix", "pre", "grad_norm_cv", "coefficient of variation of the per-block gradient norms: Mix-LN below Pre-LN"),
]
KURTOSIS_OUTLIERS = 1.0  # AdamW's mean excess kurtosis below this: no outliers for OSP to remove


def _sides(metrics, a_cfg, b_cfg, key, unigram):
    """Per seed of FINDINGS_SEEDS: (a, b) with failed runs at the unigram loss (losses) or None (other metrics),
    (a, b) without the failed runs, and each side's failures."""
    out = {"with": ([], []), "without": ([], []), "failed": ([], []), "n": [0, 0], "se": []}
    for i, cfg in enumerate((a_cfg, b_cfg)):
        for s in FINDINGS_SEEDS:
            m = metrics.get(cfg, {}).get(s)
            if m is None:
                out["with"][i].append(None)
                out["without"][i].append(None)
                continue
            out["n"][i] += 1
            f = failure(m, unigram)
            if f:
                out["failed"][i].append(f"{s}: {f}")
            if key == "val_loss":
                out["with"][i].append(loss_with_failures(m, unigram))
                out["without"][i].append(loss_without_failures(m, unigram))
                if finite(m.get("final_val_se")):
                    out["se"].append(m["final_val_se"])
            else:
                value = None if f else m.get(key)
                out["with"][i].append(value)
                out["without"][i].append(value)
    return out


def claim_row(cid, claim, paper, measure, protocol, a_name, b_name, sides, digits=3):
    verdict, iv = paired_verdict(*sides["with"])
    verdict_wo, iv_wo = paired_verdict(*sides["without"])
    return dict(id=cid, claim=claim, paper=paper, measure=measure, protocol=protocol, a=a_name, b=b_name,
                a_values=sides["with"][0], b_values=sides["with"][1], verdict=verdict, interval=iv,
                verdict_without_failed=verdict_wo, interval_without_failed=iv_wo,
                failed=[list(x) for x in sides["failed"]], n=list(sides["n"]), se=sides["se"], digits=digits)


def findings_rows(metrics, best, unigram, exact=None):
    """One row per claim and protocol: the measured sides per seed, the paired verdict with and without failures."""
    rows = []
    # Jiang et al.: ln, rms+zero_mean and crms are one function of the same parameters (differences: rounding)
    diff = lambda x, y: max_loss_diff(x["dir"], y["dir"])["train"]  # noqa: E731
    norm = {v: metrics.get(f"norm_{v}", {}) for v in ("ln", "rms", "rms_zm", "crms")}
    seeds = [s for s in NORM_SEEDS if all(s in norm[v] for v in norm)]
    log10 = lambda v: math.log10(max(v, 1e-12))  # noqa: E731
    equiv = [log10(max(diff(norm["ln"][s], norm["rms_zm"][s]), diff(norm["ln"][s], norm["crms"][s]))) for s in seeds]
    plain = [log10(diff(norm["ln"][s], norm["rms"][s]) / 10) for s in seeds]
    row = claim_row("exactness", "Pre-LN = Pre-RMS = Pre-CRMS exactly",
                    "Jiang et al. 2023: arithmetically equivalent in training and inference",
                    "log10 of the max |train loss difference| to ln at equal logged steps (float32), of rms_zm and "
                    "crms, against log10 of 1/10 of plain RMSNorm's (another model)", "6 x 128, 400 steps, lr 2e-3",
                    "rms_zm/crms vs ln", "plain rms vs ln / 10",
                    {"with": (equiv, plain), "without": (equiv, plain), "failed": ([], []),
                     "n": [len(seeds)] * 2, "se": []}, digits=2)
    if exact is not None and exact.get("returncode"):
        row["verdict"] = "disagrees"
    row["why"] = exact and f"float64 test: {exact['summary']}"
    rows.append(row)
    protocols = [("best", "each arm at its best lr", best)]
    protocols.append(("papers", f"every arm at the papers' lr {PAPERS_LR:g}",
                      {arm: PAPERS_LR for arm in SWEEP if arm[0] == "depth"}))
    for key, title, lrs in protocols:
        for cid, claim, paper, lower, higher, metric, measure in DEPTH_CLAIMS:
            a, b = ("depth", lower), ("depth", higher)
            if a not in lrs or b not in lrs:
                continue
            where = f"24 x 64, 400 steps; {title}: {lower} {lrs[a]:g}, {higher} {lrs[b]:g}"
            sides = _sides(metrics, config_name(*a, lrs[a]), config_name(*b, lrs[b]), metric, unigram)
            rows.append(claim_row(cid, claim, paper, measure, where, lower, higher, sides))
            rows[-1]["protocol_key"] = key
    adamw, muon = ("optim", "adamw"), ("optim", "muon")
    if adamw in best and muon in best:
        a_cfg, m_cfg = config_name(*adamw, best[adamw]), config_name(*muon, best[muon])
        where = f"6 x 128, 400 steps; AdamW lr {best[adamw]:g}, Muon muon_lr {best[muon]:g} (each its best)"
        rows.append(claim_row("muon_loss", "Muon reaches a lower loss than AdamW in the same steps",
                              "Keller Jordan's Muon / modded-nanogpt", "final val loss: Muon below AdamW", where,
                              "muon", "adamw", _sides(metrics, m_cfg, a_cfg, "val_loss", unigram)))
        target = {s: m["train_loss"] for s, m in metrics.get(a_cfg, {}).items() if finite(m.get("train_loss"))}
        for i, unit in ((0, "steps"), (1, "seconds")):
            reach = [[train_time_to(metrics[c][s]["train_rows"], target[s])[i]
                      if s in target and s in metrics.get(c, {}) else None for s in FINDINGS_SEEDS]
                     for c in (m_cfg, a_cfg)]
            reach = [[v if v is None or math.isfinite(v) else None for v in side] for side in reach]
            rows.append(claim_row(f"muon_sooner_{unit}", f"Muon reaches AdamW's final loss sooner ({unit})",
                                  "Keller Jordan's Muon / modded-nanogpt: AdamW's loss in fewer steps",
                                  f"training {unit} until the train loss (mean of 10 steps) first reaches AdamW's "
                                  f"final one of the same seed" + (" (ms per step from log.jsonl, evaluations "
                                                                   "excluded; two runs shared 2 cores)" if i else ""),
                                  where, "muon", "adamw", {"with": tuple(reach), "without": tuple(reach),
                                                           "failed": ([], []), "n": [0, 0], "se": []}, digits=i and 1))
        o_cfg = config_name(*OSP_ARM, best[muon])
        where = f"6 x 128, 400 steps; AdamW lr {best[adamw]:g}, OSP (Muon + SSNorm + EmbProj) muon_lr {best[muon]:g}"
        for cid, metric, claim, measure in (
                ("osp_kurtosis", "kurtosis_mean", "OSP lowers activation kurtosis",
                 "mean excess kurtosis over the hidden states (relu'd, analyze.py): OSP below AdamW"),
                ("osp_w4", "w4_increase", "OSP loses less to 4-bit weights",
                 "relative val loss increase under 4-bit RTN weights per output channel: OSP below AdamW"),
                ("osp_w8a8", "w8a8_increase", "OSP loses less to 8-bit weights and activations",
                 "relative val loss increase under W8A8 (RTN, weights per channel, activations per token)")):
            rows.append(claim_row(cid, claim, "Outlier-Safe Pre-Training (1.4B, 100B tokens): excess kurtosis 1818.56"
                                  " (Adam) -> 0.04 (OSP); smaller loss under 4-bit and W8A8 quantization",
                                  measure, where, "osp", "adamw", _sides(metrics, o_cfg, a_cfg, metric, unigram)))
            hi = [v for v in rows[-1]["b_values"] if finite(v)]
            if cid == "osp_kurtosis" and hi and max(hi) < KURTOSIS_OUTLIERS:
                rows[-1]["verdict"] = "not testable"
                rows[-1]["why"] = (f"AdamW's excess kurtosis is below {KURTOSIS_OUTLIERS} (the paper's 1,818 needs "
                                   f"a 1.4B model and 100B tokens): no outliers to remove")
    return rows


# --------------------------------------------------------------------------------------------
# the table

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


def write_findings(rows, sweep, best, results_dir, command, about, unigram):
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
          f"0.1 of the unigram loss {unigram:.3f}) enters the verdict at the unigram loss; the last column gives the "
          "verdict over the seeds where both arms trained.  ",
          f"**Evaluation**: every final val loss is over {FINAL_EVAL_TOKENS:,} held-out tokens (train.py "
          f"--final_eval_tokens); its largest standard error is {_num(se, 4)}, the smallest loss difference called "
          f"a verdict {_num(smallest, 4)}" + ("" if se is None or smallest is None else
                                            f" ({'within' if se <= smallest / 5 else 'NOT within'} the rule SE <= 1/5 "
                                            f"of it: {smallest / max(se, 1e-12):.1f}x)") + ". "
          "Same-seed arms are scored on the same tokens, so the paired differences carry even less of it.", ""]
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
    md += [table(["arm", "lr (Muon: muon_lr)", "final val loss per seed", "mean"], sweep_rows), "",
           "What is measured:", ""]
    md += [f"- {r['claim']}: {r['measure']}." for r in rows if r.get("protocol_key") != "papers"]
    md += ["", "The runs behind this table: `runs/` beside it (run.json, log.jsonl, analysis.json, quant.json, done "
           "of each; no checkpoints). At 1-2M parameters and 0.3M tokens a claim about 130M-1B models trained on "
           "billions of tokens is tested in direction, not in size.", ""]
    with open(os.path.join(results_dir, "findings.md"), "w") as f:
        f.write("\n".join(md))
    summary = {"command": command, "about": about, "seeds": list(FINDINGS_SEEDS), "sweep_seeds": list(SWEEP_SEEDS),
               "unigram_loss": unigram, "final_eval_tokens": FINAL_EVAL_TOKENS,
               "best_lr": {"/".join(k): v for k, v in best.items()},
               "sweep": {"/".join(k): {f"{lr:g}": v for lr, v in by_lr.items()} for k, by_lr in sweep.items()},
               "rows": [{k: v for k, v in r.items() if k != "digits"} for r in rows]}
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


# --------------------------------------------------------------------------------------------
# the staged study: sweep, extend, the table's rows, analysis, the table

def findings_study(args, overrides, argv):
    """python ablate.py findings: train (or reuse) the sweep, extend it where a best lr sits at an edge, train the
    table's rows, analyze them and write the table. A run that diverges is recorded as such (its done marker says
    so) and counted as a failure, not retrained; any other failure stops the study."""
    import time

    import ablate
    from study import launch, records
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
        complete = len(best) == len(SWEEP)
        runs = findings_plan(overrides, best if complete else None, extensions)
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
        new = {arm: lrs for arm, lrs in more.items() if not set(lrs) <= set(extensions.get(arm, ()))}
        if new:
            for arm, lrs in new.items():
                print(f"findings: {arm[1]}'s best lr is at an edge of its sweep: adding lr {lrs[0]:g}", flush=True)
                extensions[arm] = sorted(set(extensions.get(arm, ())) | set(lrs))
            continue
        break
    print(f"findings: reused {len(runs) - trained} of {len(runs)} runs, trained {trained}", flush=True)
    table_runs = [r for r in runs if r.extra["seed"] not in SWEEP_SEEDS or r.extra["lr"] in (
        best.get((r.extra["part"], r.extra["variant"])), PAPERS_LR, None) or (r.extra["part"], r.extra["variant"])
        == OSP_ARM]
    if not args.no_analysis:
        analyze_table_runs(table_runs, runs_dir, args)
    exact = ablate.exactness_test(args.threads or 1) if not args.no_exactness_test else None
    metrics = collect(runs, runs_dir)
    rows = findings_rows(metrics, best, unigram, exact)
    about = provenance(runs, metrics, runs_dir, dataset, data_dir, args, trained, time.time() - t0)
    summary = write_findings(rows, sweep, best, results_dir, "python ablate.py " + " ".join(argv), about, unigram)
    if not args.no_plots:
        plot_sweeps(metrics, extensions, unigram, results_dir)
    print(f"wrote {results_dir}/findings.md: {len(rows)} rows from {len(runs)} runs", flush=True)
    return summary


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


def analyze_table_runs(runs, runs_dir, args):
    """analysis.json (depth and optim arms) and quant.json (AdamW and OSP) of the table's runs that trained; both
    are kept and reused (a fresh clone has them but no checkpoints)."""
    import torch

    import analyze
    from ablate import analyze_run
    from checkpoint import load_checkpoint
    from data import BatchSampler
    for run in runs:
        out_dir = os.path.join(runs_dir, run.name)
        if (_json(os.path.join(out_dir, "done")) or {}).get("outcome", "trained") != "trained":
            continue
        part = run.extra["part"]
        if part != "norm" and not os.path.exists(os.path.join(out_dir, "analysis.json")):
            analyze_run(run, out_dir, {"batches": 2, "batch_size": 8}, "cpu", plots=False)
        if (run.extra["variant"] in ("adamw", OSP_ARM[1]) and
                not os.path.exists(os.path.join(out_dir, "quant.json"))):
            model, _ = load_checkpoint(out_dir, "cpu")
            sampler = BatchSampler(run.args.get("data_dir", "data"), run.args["dataset"], "val", 16,
                                   model.config.block_size, seed=4243)
            with torch.no_grad():
                result = analyze.quantization_check(model, [sampler.batch(i) for i in range(QUANT_BATCHES)])
            with open(os.path.join(out_dir, "quant.json"), "w") as f:
                json.dump({**result, "batches": QUANT_BATCHES, "batch_size": 16}, f, indent=1)


QUANT_BATCHES = 32  # 32 x 16 x 64 = 32,768 held-out tokens for the quantized losses


def provenance(runs, metrics, runs_dir, dataset, data_dir, args, trained, wall):
    """The header lines: commit(s) that trained the runs, the machine, the dataset, training time and projection."""
    from study import provenance
    commits = sorted({(_json(os.path.join(runs_dir, r.name, "run.json")) or {}).get("code", {}).get("commit") or "?"
                      for r in runs})
    thread_s = sum(m["wall_s"] or 0 for by_seed in metrics.values() for m in by_seed.values())
    projected = sum(findings_thread_seconds(r) for r in runs)
    return [f"Runs trained at commit {', '.join(c[:10] for c in commits)}; this table written at "
            f"{provenance.git_commit()}",
            "Trained on: " + "; ".join(sorted({(_json(os.path.join(runs_dir, r.name, "done")) or {}).get("machine")
                                               or "machine not recorded" for r in runs})),
            provenance.dataset_line(dataset, data_dir, FINDINGS_NORM["dataset"]),
            f"Training: {len(runs)} runs, {thread_s / 60:.0f} thread-minutes measured (each run's wall time, "
            f"{args.jobs} at a time: ~{thread_s / 60 / max(args.jobs, 1):.0f} minutes wall); the dry run projects "
            f"{projected / 60:.0f} thread-minutes ({FINDINGS_CALIBRATION}); this invocation trained {trained} and "
            f"took {wall:.0f} s"]


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
