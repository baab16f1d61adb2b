"""
The kurtosis search's report (`python ablate.py kurtosis`, study/kurtosis_search.py): results.md and kurtosis.json
from the rows kurtosis_search.measure reads out of each run folder, nothing else (no run is trained here).

    a setting over its seeds    mean end kurtosis and its 95% t-interval (verdict.mean_interval); "above 3" when the
                                mean is, "holds over seeds" when the interval lies above 3
    the answer                  the setting above 3 with the fewest training FLOPs (ties in grid order)
    OSP where AdamW has         OSP - AdamW paired by seed (verdict.paired_verdict): end kurtosis, the val loss
    outliers                    increase under 4-bit weights and under W8A8 (quant.json)
"""

import json
import os

from study import verdict
from study.findings_table import KURTOSIS_TARGET
from study.results import table

SHOWN_EVERY = 100          # results.md's trajectory table: every 100th step (kurtosis.json has every 50th)
OSP_PAPER = ("OSP (Outlier-Safe Pre-Training), 1.4B parameters, 100B tokens: excess kurtosis 1818.56 with Adam, "
             "0.04 with OSP")


def above(row):
    return row["kurtosis_end"] is not None and row["kurtosis_end"] > KURTOSIS_TARGET


def settings(rows):
    """Each setting over its seeds, in grid order: its runs, the end kurtosis of those that trained, their mean and
    95% t-interval (verdict.mean_interval: lo, hi None below 2 values), how many are above the target, how many
    failed (diverged), and the final val losses."""
    out = []
    for name in dict.fromkeys(r["setting"] for r in rows):  # grid order: the first seed's runs come first
        mine = [r for r in rows if r["setting"] == name]
        values = [r["kurtosis_end"] for r in mine if r["kurtosis_end"] is not None]
        out.append({"setting": name, "axis": mine[0]["axis"], "what": mine[0]["what"], "lr": mine[0]["lr"],
                    "flops": mine[0]["flops"],
                    "runs": [r["run"] for r in mine], "seeds": [r["seed"] for r in mine], "values": values,
                    **verdict.mean_interval(values), "above": sum(above(r) for r in mine),
                    "failed": [r for r in mine if r["outcome"] != "trained"],
                    "val_losses": [r["final_val_loss"] for r in mine if r["final_val_loss"] is not None]})
    return out


def answer(rows):
    """(the settings whose mean end kurtosis is above the target, the smallest of them: fewest training FLOPs,
    ties in grid order, or None)."""
    hits = [s for s in settings(rows) if s["mean"] is not None and s["mean"] > KURTOSIS_TARGET]
    return hits, min(hits, key=lambda s: s["flops"]) if hits else None


def over_seeds(s):
    """A setting's end kurtosis as words: one run's value, or the mean, its interval and how many runs are above."""
    if s["n"] < 2:
        one = f"end kurtosis {_k(s['mean'])}"
        return one + (f" (seed {s['seeds'][0]}; 1 seed: the spread over seeds is not measured)" if s["n"] else "")
    failed = f", {len(s['failed'])} of {len(s['runs'])} runs failed to train" if s["failed"] else ""
    return (f"end kurtosis {_k(s['mean'])} [95% t-interval {_k(s['lo'])}, {_k(s['hi'])}] over {s['n']} seeds, "
            f"above {KURTOSIS_TARGET:g} in {s['above']} of {len(s['runs'])} runs{failed}")


def direction(values):
    """'rises', 'falls' or 'not monotonic' (or 'one value') for a sequence of numbers along an axis."""
    pairs = list(zip(values, values[1:]))
    if not pairs:
        return "one value"
    if all(b > a for a, b in pairs):
        return "rises at every step of the axis"
    if all(b < a for a, b in pairs):
        return "falls at every step of the axis"
    return "not monotonic"


def _k(x):
    return "-" if x is None else f"{x:.3f}"


def axis_lines(rows):
    """One line per axis: the base's end kurtosis, then each setting's (the mean over its seeds), and their
    direction (what was measured)."""
    sets = settings(rows)
    base = next((s for s in sets if s["axis"] == "base"), None)
    lines = []
    for axis in dict.fromkeys(s["axis"] for s in sets if s is not base):
        chain = ([base] if base else []) + [s for s in sets if s["axis"] == axis]
        text = []
        for s in chain:
            failed = ("" if not s["failed"] else f" ({s['failed'][0]['outcome']} after step "
                      f"{s['failed'][0]['last_iter']})" if len(s["runs"]) == 1 else
                      f" ({len(s['failed'])} of {len(s['runs'])} runs failed)")
            text.append(f"{s['what'] if s is not base else 'base'} {_k(s['mean'])}{failed}")
        values = [s["mean"] for s in chain if s["mean"] is not None]
        lines.append(f"- {axis}: " + " -> ".join(text) + f": {direction(values)}.")
    longer = next((r for r in rows if r["setting"] == "steps1600"), None)
    if longer and longer["along"]:
        marks = [p for p in longer["along"] if p[0] in (400, 800, 1200, 1600)]
        lines.append("- along the 1600-step run's training (quick_metrics, one val batch): "
                     + ", ".join(f"step {i} {_k(k)}" for i, k in marks) + ".")
    return lines


OSP_CLAIMS = (("kurtosis_end", "OSP lowers the end kurtosis", "end kurtosis"),
              ("w4_increase", "OSP loses less to 4-bit weights (RTN per output channel)", "W4 increase"),
              ("w8a8_increase", "OSP loses less to 8-bit weights and activations (W8A8)", "W8A8 increase"))


def _pct(x, sign=""):
    return "-" if x is None else f"{100 * x:{sign}.3f}%"


def osp_lines(rows, osp_rows, smallest, outlier_setting):
    """The section "OSP where AdamW has outliers": each arm over the seeds (loss, kurtosis, quantization), then the
    paired differences OSP - AdamW (same seed) with their 95% t-intervals and verdicts on the OSP claims."""
    adamw = {r["seed"]: r for r in rows if r["setting"] == outlier_setting}
    if not osp_rows or not adamw:
        return []
    seeds = sorted(adamw)
    arms = [(f"AdamW, {adamw[seeds[0]]['what']}", list(adamw.values()))]
    osp_settings = {r["setting"]: r["what"] for r in osp_rows}  # in plan order
    arms += [(what, [r for r in osp_rows if r["setting"] == name]) for name, what in osp_settings.items()]

    def mean(mine, key):  # over the runs that have the value (a failed run has none)
        return verdict.mean_interval([r[key] for r in mine if r[key] is not None])["mean"]

    arm_rows = []
    for label, mine in arms:
        k = verdict.mean_interval([r["kurtosis_end"] for r in mine if r["kurtosis_end"] is not None])
        loss = mean(mine, "final_val_loss")
        arm_rows.append([label, len(mine), sum(r["outcome"] != "trained" for r in mine),
                         "-" if loss is None else f"{loss:.4f}", f"{_k(k['mean'])} [{_k(k['lo'])}, {_k(k['hi'])}]",
                         f"{sum(above(r) for r in mine)} of {len(mine)}", _pct(mean(mine, "w4_increase")),
                         _pct(mean(mine, "w8a8_increase"))])
    claim_rows = []
    for label, mine in arms[1:]:
        by_seed = {r["seed"]: r for r in mine}
        for metric, claim, name in OSP_CLAIMS:
            osp = [by_seed[s][metric] if s in by_seed else None for s in seeds]
            said, iv = verdict.paired_verdict(osp, [adamw[s][metric] for s in seeds])
            show = _k if metric == "kurtosis_end" else lambda x: _pct(x, "+")
            claim_rows.append([claim, label, f"{show(iv['mean'])} [{show(iv['lo'])}, {show(iv['hi'])}] "
                                             f"(n={iv['n']})", f"**{said}**"])
    a = verdict.mean_interval([r["kurtosis_end"] for r in adamw.values() if r["kurtosis_end"] is not None])
    lines = ["## OSP where AdamW has outliers", "",
             f"At {adamw[seeds[0]]['what']} AdamW's mean end kurtosis is {_k(a['mean'])} over {a['n']} seeds. The OSP "
             f"arm (Muon + SSNorm + EmbProj: the same train.py command with --optimizer=muon --norm=ss "
             f"--emb_proj=True) is trained with the same seeds ({', '.join(map(str, seeds))}; the same seed is the "
             f"same data order), its AdamW-trained tensors (embeddings, head, gains) at the same lr, its matrices by "
             f"Muon at muon_lr 0.02 (Muon's best in the findings' sweep) and at 0.16 (8x, as 1.6e-2 is 8x AdamW's "
             f"best). Quantization (quant.json, analyze.quantization_check on 32 val batches of 16 x 64, 32,768 "
             f"tokens): the relative val loss increase under 4-bit round-to-nearest weights per output channel (W4) "
             f"and under 8-bit weights and activations (W8A8).", ""]
    if smallest and smallest["setting"] != outlier_setting:
        lines += [f"(The search's answer above is {smallest['what']}, not this setting: OUTLIER_SETTING in "
                  f"study/kurtosis_search.py should follow it.)", ""]
    lines += [table(["arm", "runs", "failed", "final val loss", "end kurtosis [95% interval]",
                     f"> {KURTOSIS_TARGET:g}", "W4 increase", "W8A8 increase"], arm_rows), "",
              "Paired differences OSP - AdamW over the seeds where both trained, mean [95% t-interval] (verdict.py's "
              "rule: agrees when the interval lies below 0, disagrees above, otherwise no difference detected):", "",
              table(["claim", "OSP arm", "OSP - AdamW", "verdict"], claim_rows), ""]
    return lines


def write_report(rows, results_dir, command, about, seeds, osp_rows=(), *, outlier_setting, projected_s, calibration,
                 analyze_interval):
    """results.md and kurtosis.json: the grid searched, the kurtosis along training and at the end, the answer, OSP
    at outlier_setting. projected_s: the dry run's thread-seconds for every run (calibration: its ms/step, in
    words); analyze_interval: the steps between the kurtosis rows of log.jsonl."""
    hits, smallest = answer(rows)
    sets = settings(rows)
    top = max((s for s in sets if s["mean"] is not None), key=lambda s: s["mean"], default=None)
    runs_above = [r["run"] for r in rows if above(r)]
    if smallest:
        shown = smallest["lo"] is not None and smallest["lo"] > KURTOSIS_TARGET
        answer_text = (f"**Above {KURTOSIS_TARGET:g} (a setting's mean end kurtosis over its seeds): "
                   f"{', '.join(s['what'] for s in hits)}.** The smallest setting that exceeds it (fewest training "
                   f"FLOPs, {smallest['flops']:.2e}): {smallest['what']}, {over_seeds(smallest)}, "
                   f"{smallest['mean'] - KURTOSIS_TARGET:.3f} above it on average."
                   + ("" if smallest["n"] < 2 else
                      f" The interval lies above {KURTOSIS_TARGET:g}: the crossing holds over seeds." if shown else
                      f" The interval includes {KURTOSIS_TARGET:g}: the crossing is not shown over seeds."))
    else:
        answer_text = (f"**None in this grid exceeds {KURTOSIS_TARGET:g}** (a setting's mean end kurtosis over its "
                   f"seeds). The largest is " + (f"{top['what']}'s, {over_seeds(top)}." if top else "-."))
    answer_text += (f" Single runs above {KURTOSIS_TARGET:g} at the end: {len(runs_above)} of {len(rows)}"
                + (f" ({', '.join(runs_above)})." if runs_above else "."))
    peak = max((r for r in rows if r["along_max"]), key=lambda r: r["along_max"][1], default=None)
    if peak:
        k, step = peak["along_max"][1], peak["along_max"][0]
        answer_text += (f" Along training (quick_metrics, one val batch) the largest logged value is {_k(k)} "
                    f"({peak['run']} at step {step}): {'above' if k > KURTOSIS_TARGET else 'not above'} "
                    f"{KURTOSIS_TARGET:g}.")
    grid_rows = [[r["run"], r["axis"], r["what"], r["steps"], f"{r['lr']:g}", f"{r['n_embd']} x {r['n_head']}",
                  f"{r['tokenizer']} ({r['vocab']:,})", f"{r['params'] / 1e6:.2f}M", f"{r['tokens']:,}",
                  f"{r['flops']:.2e}", r["outcome"] if r["outcome"] == "trained" else
                  f"{r['outcome']} after step {r['last_iter']}",
                  "-" if r["final_val_loss"] is None else f"{r['final_val_loss']:.4f}", _k(r["kurtosis_end"]),
                  _k(r["kurtosis_end_max"]), _k(r["kurtosis_end_raw"]),
                  "-" if not r["along_max"] else f"{_k(r['along_max'][1])} (step {r['along_max'][0]})",
                  "yes" if above(r) else "no", "-" if r["wall_s"] is None else f"{r['wall_s']:.0f}",
                  "-" if r["ms_per_step"] is None else f"{r['ms_per_step']:.0f}"] for r in rows]
    first = [r for r in rows if r["seed"] == seeds[0]]  # the trajectory table: the first seed's runs
    steps = sorted({p[0] for r in first for p in r["along"] if p[0] % SHOWN_EVERY == 0})
    along = {r["run"]: dict((i, k) for i, k in r["along"]) for r in first}
    traj = [[s] + [_k(along[r["run"]].get(s)) for r in first] for s in steps]
    repeated = [s for s in sets if len(s["runs"]) > 1]
    seed_rows = [[s["what"] if s["setting"] != "base" else "base", f"{s['lr']:g}", len(s["runs"]),
                  ", ".join(_k(r["kurtosis_end"]) for r in rows if r["setting"] == s["setting"]),
                  f"{_k(s['mean'])} [{_k(s['lo'])}, {_k(s['hi'])}]", f"{s['above']} of {len(s['runs'])}",
                  len(s["failed"]), "-" if not s["val_losses"] else
                  f"{sum(s['val_losses']) / len(s['val_losses']):.4f} ({min(s['val_losses']):.4f}-"
                  f"{max(s['val_losses']):.4f})"] for s in repeated]
    everything = list(rows) + list(osp_rows)
    thread_s = sum(r["wall_s"] or 0 for r in everything)
    md = [f"# Searching for outliers: AdamW's excess kurtosis along four axes (the OSP row)", "",
          f"Command: `{command}`", "", *about,
          f"Training: {len(everything)} runs, {thread_s / 60:.1f} thread-minutes measured (the `done` markers' wall "
          f"times, up to {max((r['jobs'] or 1) for r in everything)} runs at a time on a shared CPU; ms/step per run "
          f"below); the dry run projects {projected_s / 60:.1f} thread-minutes on an idle CPU ({calibration}): "
          f"measured {100 * (thread_s / projected_s - 1):+.0f}%", "",
          f"The question (issue 24, item 7): the smallest CPU setting where an AdamW model's mean excess kurtosis "
          f"exceeds {KURTOSIS_TARGET:g}, where OSP's outliers begin. The paper's scale: {OSP_PAPER}. The findings' "
          f"kurtosis grid (results/findings/findings.md) found none above {KURTOSIS_TARGET:g} at 400 steps.", "",
          answer_text, "",
          "Along each axis (end kurtosis, analyze.py; a setting with several seeds gives their mean):", "",
          *axis_lines(rows), "",
          *([] if not repeated else [
              "## Over seeds", "",
              f"The settings trained with several seeds (seeds "
              f"{', '.join(map(str, sorted({x for s in repeated for x in s['seeds']})))}; "
              f"the same seed is the same initialization and data order across settings): the end kurtosis of each "
              f"run, their mean with its 95% t-interval over seeds, and the final val loss (mean, min-max).", "",
              table(["setting", "lr", "runs", "end kurtosis per seed", "mean [95% interval]",
                     f"> {KURTOSIS_TARGET:g}", "failed", "final val loss"], seed_rows), ""]),
          *osp_lines(rows, osp_rows, smallest, outlier_setting),
          "## The grid searched", "",
          "The base is the findings' AdamW arm at its best lr (6 layers x 128, 4 heads, LLaMA-style: RMSNorm, RoPE, "
          "SwiGLU, untied head; batch 16 x 64 tokens, cosine to lr/10 after 30 warm-up steps, float32, one thread); "
          "each run changes one axis. Kurtosis at the end: analyze.py on 2 val batches of 8 (analysis.json), the "
          "findings' measure: OSP's relu'd excess kurtosis per hidden state (embedding output and every block "
          "output), mean and max over the states; raw: the mean without the relu. Along training: the largest "
          "quick_metrics value in log.jsonl (one val batch, every 50 steps).", "",
          table(["run", "axis", "what differs from the base", "steps", "lr", "width x heads", "tokenizer (vocab)",
                 "parameters", "tokens", "training FLOPs", "outcome", "final val loss", "kurtosis at the end",
                 "max over states", "raw mean", "along training: max", f"> {KURTOSIS_TARGET:g}", "wall s",
                 "ms/step"], grid_rows), "",
          f"## Kurtosis along training", "",
          f"quick_metrics' kurtosis_mean (train.py --analyze_interval={analyze_interval}: one val batch of 16 x 64, "
          f"the relu per state) every {SHOWN_EVERY} steps, seed {seeds[0]}; every {analyze_interval} steps and "
          f"every run in kurtosis.json.", "",
          table(["step"] + [r["run"] for r in first], traj), "",
          "At 1-14M parameters and at most 1.6M training tokens, this grid says where the kurtosis of a small "
          "AdamW model starts to grow on CPU, not what it is at OSP's 1.4B parameters and 100B tokens.", ""]
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "results.md"), "w") as f:
        f.write("\n".join(md))
    summary = {"command": command, "target": KURTOSIS_TARGET, "paper": OSP_PAPER, "above": [s["setting"] for s in hits],
               "smallest": smallest["setting"] if smallest else None, "runs_above": runs_above,
               "settings": [{k: v for k, v in s.items() if k != "failed"} | {"failed": len(s["failed"])}
                            for s in sets],
               "runs": rows, "osp_runs": list(osp_rows)}
    with open(os.path.join(results_dir, "kurtosis.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary
