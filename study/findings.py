"""
The findings table: which of the papers' claims reproduce at CPU scale, as results/findings/findings.md and
findings.json.

    python ablate.py findings --jobs=2    # ablate.py trains and analyzes the runs, then calls write_findings

findings_plan: the norm and optim studies' cpu runs and the 24-layer depth rows (pre, pre_lns, mix, post) at
each of FINDINGS_LRS, each with FINDINGS_SEEDS. One row per claim (a depth claim: one per lr) with the paper's
figure, ours as mean (spread = max - min) over the seeds, and a verdict from claim_verdict for a claim
"lower < higher", each side measured once per seed:

    agrees                            max(lower) < min(higher)
    disagrees beyond the seed spread  min(lower) > max(higher)
    within the seed spread            otherwise: the seeds' ranges overlap (the sign of the mean difference is said)
    not testable at this scale        fewer than 2 finished seeds on a side, or a reason given with the row
"""

import itertools
import json
import math
import os

from study.results import table
from study.runlog import deep_half_removable, max_loss_diff, mean_spread, mean_spread_text, read_analysis, read_log
from study.studies import CPU_BASE, CPU_STUDY, DEEP_BASE, DEEP_VARIANTS, Run, variants


FINDINGS_SEEDS = (1337, 1338, 1339)
FINDINGS_LRS = (1e-3, 2e-3)  # the 24-layer loss ranking may flip with the lr: every depth verdict is given at both
# Lengths, for the budget of <= ~85 thread-minutes (the lead's 2 cores, --jobs=2, <= 45 minutes wall): the norm and
# optim runs are exactly the cpu studies' runs (6 x 128, 400 steps) with 3 seeds; the depth runs are cpu_deep's
# 24 x 64 model at 400 steps instead of 800 (24 runs: 2 lrs x 4 configurations x 3 seeds), without the
# quick_metrics trajectories (the claims use the final analysis). findings_thread_seconds projects the time.
FINDINGS_DEPTH = dict(DEEP_BASE, max_iters=400, warmup_iters=40, analyze_interval=0)
# ms per step on one thread (float32), measured 2026-12-02 on this project's 2-core Xeon (AVX-512, AMX): idle,
# 6 x 128 norm runs 82-90, optim runs (Muon) 112, 24 x 64 depth runs 150; with the machine busy (load 4.7) 128, 202
# and 208. The projection uses the busy figures, so that it is an upper bound on a CPU shared by two runs.
FINDINGS_MS_PER_ITER = {"norm": 130, "optim": 200, "depth": 210}
FINDINGS_RUN_OVERHEAD_S = 8  # python/torch start-up, the final checkpoint and the analysis of one run
FINDINGS_CALIBRATION = "ms/step norm 130, optim 200, depth 210 measured on one thread of a busy 2-core Xeon"


def findings_plan(overrides):
    """The runs of the findings table: the norm study (4 variants), the 24-layer depth rows (pre, pre_lns, mix,
    post) at each of FINDINGS_LRS, and the optim study (4 optimizers), each with FINDINGS_SEEDS."""
    parts = [("norm", {**CPU_BASE, **CPU_STUDY["norm"]}, variants("norm"), [None]),
             ("depth", FINDINGS_DEPTH, [v for v in variants("depth") if v[0] in DEEP_VARIANTS], FINDINGS_LRS),
             ("optim", {**CPU_BASE, **CPU_STUDY["optim"]}, variants("optim"), [None])]
    runs = []
    for part, base, names, lrs in parts:
        for lr, seed, (name, label, args) in itertools.product(lrs, FINDINGS_SEEDS, names):
            lr_args = {"learning_rate": lr, "min_lr": lr / 10} if lr else {}
            config = f"{part}_{name}" + (f"_lr{lr:g}" if lr else "")
            a = {**base, **args, **lr_args, "seed": seed, **overrides}
            runs.append(Run(f"{config}_s{seed}", a, group=part + (f"_lr{lr:g}" if lr else ""), label=label,
                            extra={"part": part, "variant": name, "lr": lr, "seed": seed, "config": config}))
    return runs


def shared_runs(run, suffix):
    """The folders where another study trained this findings run already: the norm and optim studies' own runs
    (seed 1337, ablations/<part>_cpu[_suffix]/<variant>) are the same trainings; records.decide reuses one when
    its run.json matches this run's plan."""
    if run.extra["part"] == "depth":
        return []
    return [os.path.join("ablations", f"{run.extra['part']}_cpu" + (f"_{suffix}" if suffix else ""),
                         run.extra["variant"])]


def findings_thread_seconds(run):
    """Projected seconds of one findings run on one thread: steps and evaluations (a forward pass ~ 1/3 step)."""
    a = {k: int(run.args[k]) for k in ("max_iters", "eval_interval", "eval_iters")}  # --set gives strings
    evals = a["max_iters"] // a["eval_interval"] + 1
    steps = a["max_iters"] + evals * 2 * a["eval_iters"] / 3
    return FINDINGS_MS_PER_ITER[run.extra["part"]] * steps / 1000 + FINDINGS_RUN_OVERHEAD_S


def _finite(values):
    return [v for v in values if v is not None and not math.isnan(v)]


def claim_verdict(lower, higher, min_seeds=2):
    """(verdict, why) for a claim 'lower < higher', each side measured once per seed. Agrees: every seed of
    `lower` is below every seed of `higher`; disagrees beyond the seed spread: every one above; otherwise the
    seeds' ranges overlap and the sign of the mean difference is only reported. Not testable without at least
    min_seeds finished runs per side."""
    lo, hi = _finite(lower), _finite(higher)
    if len(lo) < min_seeds or len(hi) < min_seeds:
        return "not testable at this scale", f"only {len(lo)} and {len(hi)} finished seeds (need {min_seeds} each)"
    if max(lo) < min(hi):
        return "agrees", ""
    if min(lo) > max(hi):
        return "disagrees beyond the seed spread", ""
    same = sum(lo) / len(lo) < sum(hi) / len(hi)
    return "within the seed spread", f"the means point {'the claimed' if same else 'the other'} way; the seeds overlap"


def iters_to_reach(out_dir, target):
    """First logged iteration whose train loss (mean over log_interval steps) is <= target; inf if none."""
    rows = read_log(out_dir)[0]
    return next((float(r["iter"]) for r in rows if r["loss"] <= target), math.inf)


def findings_metrics(runs, runs_dir):
    """{config: {seed: metrics}} of the finished runs: final val loss, train log, analysis summary."""
    out = {}
    for run in runs:
        out_dir = os.path.join(runs_dir, run.name)
        if not os.path.exists(os.path.join(out_dir, "done")):
            continue
        train_rows, eval_rows = read_log(out_dir)
        analysis = read_analysis(out_dir) or {}
        a = analysis.get("summary", {})
        out.setdefault(run.extra["config"], {})[run.extra["seed"]] = {
            "dir": out_dir, "val_loss": eval_rows[-1]["val_loss"] if eval_rows else None,
            "train_loss": train_rows[-1]["loss"] if train_rows else None,
            "rms_growth_deep": a.get("rms_growth_deep"), "grad_norm_cv": a.get("grad_norm_cv"),
            "kurtosis_mean": a.get("kurtosis_mean"),
            "deep_half_removable": deep_half_removable(out_dir) if analysis else None}
    return out


def _side(metrics, config, key):
    """One metric of a configuration, per seed in FINDINGS_SEEDS order (None where the seed is missing)."""
    by_seed = metrics.get(config, {})
    return [by_seed[s].get(key) if s in by_seed else None for s in FINDINGS_SEEDS]


def _paired(metrics, a, b, fn):
    """fn(metrics of a, metrics of b) per seed that both configurations finished."""
    ma, mb = metrics.get(a, {}), metrics.get(b, {})
    return [fn(ma[s], mb[s]) if s in ma and s in mb else None for s in FINDINGS_SEEDS]


# claim: (id, text, source and the paper's figure, part, lower config, higher config, what is measured)
DEPTH_CLAIMS = [
    ("stream_growth", "Pre-LN's stream grows with depth, and LNS bounds it",
     "Sun et al. 2025: Pre-LN output variance grows with depth; LNS keeps it bounded (variance-vs-layer figure)",
     "pre_lns", "pre", "rms_growth_deep", "rms(x_L)/rms(x_1) after training: LNS below Pre-LN"),
    ("removable", "Pre-LN's deep layers are near-identities that can be removed",
     "Sun et al. 2025: removing a deep Pre-LN block barely changes the loss; with LNS every block matters "
     "(layer-drop figure)",
     "pre_lns", "pre", "deep_half_removable", "share of the deeper-half blocks whose removal costs < 1% of the val "
     "loss: LNS below Pre-LN"),
    ("lns_loss", "LNS lowers the loss",
     "Sun et al. 2025, Table 1: C4 val ppl 25.76 (Pre-LN + LNS) vs 26.73 (Pre-LN), 130M; 20.35 vs 21.92, 250M",
     "pre_lns", "pre", "val_loss", "final val loss: LNS below Pre-LN"),
    ("mix_grad", "Mix-LN evens out per-layer gradient norms",
     "Li et al. 2025: Pre-LN shrinks deep layers' gradient norms, Post-LN early ones; Mix-LN's are more uniform",
     "mix", "pre", "grad_norm_cv", "coefficient of variation of the per-block gradient norms: Mix-LN below Pre-LN"),
    ("mix_loss", "Mix-LN lowers the loss against Pre-LN",
     "Li et al. 2025 / Sun et al. Table 1: C4 val ppl 26.07 (Mix-LN) vs 26.73 (Pre-LN), 130M; 21.39 vs 21.92, 250M",
     "mix", "pre", "val_loss", "final val loss: Mix-LN below Pre-LN"),
    ("post_depth", "Post-LN is worse at depth",
     "Sun et al. 2025, Table 1: Post-LN 1409.79 vs Pre-LN 21.92 C4 val ppl at 250M (24 layers); 26.95 vs 26.73 "
     "at 130M (12 layers)",
     "pre", "post", "val_loss", "final val loss: Pre-LN below Post-LN"),
]
KURTOSIS_OUTLIERS = 1.0  # AdamW's mean excess kurtosis below this: no outliers for OSP to remove


def findings_rows(metrics, exact=None):
    """One row per claim (and per lr for the depth claims): the measured sides, the verdict and why."""
    rows = []
    cmd = "python ablate.py findings --only={}"
    # Jiang et al.: ln, rms+zero_mean and crms are one function of the same parameters (differences: rounding)
    diff = lambda x, y: max_loss_diff(x["dir"], y["dir"])["train"]  # noqa: E731
    equiv = [max(v) if None not in v else None for v in zip(_paired(metrics, "norm_ln", "norm_rms_zm", diff),
                                                            _paired(metrics, "norm_ln", "norm_crms", diff))]
    plain = _paired(metrics, "norm_ln", "norm_rms", diff)
    verdict, why = claim_verdict([None if e is None else 10 * e for e in equiv], plain)
    if exact is not None and exact.get("returncode"):
        verdict, why = "disagrees beyond the seed spread", f"the float64 test fails: {exact['summary']}"
    rows.append(dict(id="exactness", claim="Pre-LN = Pre-RMS = Pre-CRMS exactly",
                     paper="Jiang et al. 2023: arithmetically equivalent in training and inference",
                     measure="max |train loss difference| to ln at equal logged steps (float32), of rms_zm and crms, "
                             "against 1/10 of plain RMSNorm's (another model)",
                     lower=equiv, higher=plain, lower_name="rms_zm/crms vs ln", higher_name="plain rms vs ln",
                     lr=None, verdict=verdict,
                     why="; ".join(w for w in (why, exact and f"float64 test: {exact['summary']}") if w),
                     command=cmd.format("norm"), digits="sci"))
    for lr in FINDINGS_LRS:
        for cid, claim, paper, lower, higher, key, measure in DEPTH_CLAIMS:
            lo = _side(metrics, f"depth_{lower}_lr{lr:g}", key)
            hi = _side(metrics, f"depth_{higher}_lr{lr:g}", key)
            verdict, why = claim_verdict(lo, hi)
            if cid == "stream_growth" and verdict == "agrees" and min(_finite(hi)) <= 1.0:
                verdict, why = "disagrees beyond the seed spread", "Pre-LN's stream does not grow (x_L/x_1 <= 1)"
            rows.append(dict(id=cid, claim=claim, paper=paper, measure=measure, lower=lo, higher=hi,
                             lower_name=lower, higher_name=higher, lr=lr, verdict=verdict, why=why,
                             command=cmd.format("depth"), digits=3))
    # Muon: iterations until its train loss first reaches AdamW's final one (same seed), against AdamW's own
    final = {s: m["train_loss"] for s, m in metrics.get("optim_adamw", {}).items() if m["train_loss"] is not None}
    reach = lambda cfg: [iters_to_reach(metrics[cfg][s]["dir"], final[s])  # noqa: E731
                         if s in final and s in metrics.get(cfg, {}) else None for s in FINDINGS_SEEDS]
    verdict, why = claim_verdict(reach("optim_muon"), reach("optim_adamw"))
    rows.append(dict(id="muon_sooner", claim="Muon reaches a loss sooner than AdamW",
                     paper="Keller Jordan's Muon / modded-nanogpt: AdamW's loss in fewer steps",
                     measure="first logged iteration (train loss, mean of 10 steps) at or below AdamW's final train "
                             "loss of the same seed",
                     lower=reach("optim_muon"), higher=reach("optim_adamw"), lower_name="muon", higher_name="adamw",
                     lr=None, verdict=verdict, why=why, command=cmd.format("optim"), digits=0))
    lo, hi = _side(metrics, "optim_muon_ss_ep", "kurtosis_mean"), _side(metrics, "optim_adamw", "kurtosis_mean")
    verdict, why = claim_verdict(lo, hi)
    if _finite(hi) and max(_finite(hi)) < KURTOSIS_OUTLIERS:
        verdict, why = "not testable at this scale", (f"AdamW's excess kurtosis is already below {KURTOSIS_OUTLIERS} "
                                                       f"(the paper's 1,818 needs a 1.4B model and 100B tokens): no "
                                                       f"outliers to remove")
    rows.append(dict(id="osp_kurtosis", claim="OSP lowers activation kurtosis",
                     paper="Outlier-Safe Pre-Training (1.4B, 100B tokens): excess kurtosis 1818.56 (Adam) -> 0.04 "
                           "(Muon + SSNorm + EmbProj)",
                     measure="mean excess kurtosis over the hidden states (relu'd, analyze.py): OSP below AdamW",
                     lower=lo, higher=hi, lower_name="muon_ss_ep", higher_name="adamw", lr=None,
                     verdict=verdict, why=why, command=cmd.format("optim"), digits=3))
    # does each depth verdict hold at every lr?
    for row in rows:
        if row["lr"] is not None:
            same = {r["verdict"] for r in rows if r["id"] == row["id"]}
            row["holds_at_all_lrs"] = ("-" if same == {"not testable at this scale"} else "yes" if len(same) == 1
                                       else "no: " + ", ".join(f"{r['verdict']} at lr {r['lr']:g}"
                                                               for r in rows if r["id"] == row["id"]))
    return rows


def _ms_text(values, digits):
    """'mean (spread)' of the finite values; seeds that never reached a target (inf) or are missing are counted."""
    mean, spread = mean_spread([v for v in values if v is not None and math.isfinite(v)])
    missing = sum(v is None for v in values)
    never = sum(v is not None and math.isinf(v) for v in values)
    text = mean_spread_text(mean, spread, digits)
    return text + (f", never reached in {never} seed(s)" if never else "") + \
        (f", {missing} seed(s) missing" if missing else "")


def write_findings(runs, runs_dir, results_dir, command, about, exact=None):
    """results_dir/findings.md and findings.json: one row per claim, computed from the logs and analyses of `runs`
    (the runs trained or reused as planned: never a folder whose record differs from the plan)."""
    metrics = findings_metrics(runs, runs_dir)
    rows = findings_rows(metrics, exact)
    os.makedirs(results_dir, exist_ok=True)
    table_rows = []
    for r in rows:
        ours = (f"{r['lower_name']} {_ms_text(r['lower'], r['digits'])} vs {r['higher_name']} "
                f"{_ms_text(r['higher'], r['digits'])}")
        table_rows.append([r["claim"], r["paper"], "-" if r["lr"] is None else f"{r['lr']:g}", ours,
                           r["verdict"] + (f" ({r['why']})" if r["why"] else ""), r.get("holds_at_all_lrs", "-"),
                           f"`{r['command']}`"])
    n_seeds = len(FINDINGS_SEEDS)
    md = ["# Findings: what reproduces at CPU scale", "",
          f"Command: `{command}` (regenerates this table; finished runs whose run.json matches are reused)  ",
          *[f"{line}  " for line in about], f"Run folders: `{runs_dir}`", "",
          table(["claim", "paper's figure", "lr", f"ours: mean (spread = max - min) over {n_seeds} seeds",
                 "verdict", "holds at both lrs", "command"], table_rows), "",
          "Verdicts are computed (findings.claim_verdict): **agrees** when every seed of the side the paper says is "
          "lower is below every seed of the other side; **disagrees beyond the seed spread** when every one is "
          "above; **within the seed spread** when the seeds' ranges overlap; **not testable at this scale** with "
          "the reason.", "",
          "What is measured:", ""]
    md += [f"- {r['claim']}: {r['measure']}." for r in rows if r["lr"] in (None, FINDINGS_LRS[0])]
    md += ["", "Lengths (as planned; --set overrides in the command above change them): the norm and optim rows are the cpu studies' runs (6 layers x 128, 400 steps, batch 16 x 64 "
           "characters, lr 2e-3) with seeds " + ", ".join(map(str, FINDINGS_SEEDS)) + "; the depth rows are "
           "cpu_deep's 24 x 64 model at 400 steps (cpu_deep trains 800) at lr " +
           " and ".join(f"{lr:g}" for lr in FINDINGS_LRS) + ", so that the 48 runs fit about 85 thread-minutes "
           "(2 runs at a time on 2 cores: <= 45 minutes). At this size and length a claim about 130M-1B models "
           "trained on billions of tokens can only be tested in direction, not in size.", ""]
    with open(os.path.join(results_dir, "findings.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    summary = {"command": command, "about": about, "runs_dir": runs_dir, "seeds": list(FINDINGS_SEEDS),
               "lrs": list(FINDINGS_LRS), "exactness_test": exact,
               "rows": [{k: v for k, v in r.items() if k != "digits"} for r in rows]}
    with open(os.path.join(results_dir, "findings.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    return summary
