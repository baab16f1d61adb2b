"""
A finished run's folder, read: log.jsonl (train.py's train rows {iter, loss, ms} and eval rows {iter, val_loss,
train_loss, ...}) and analysis.json (analyze.py's measures), and the numbers the results and findings tables
take from them:

    removable block: dropping it raises the val loss by less than DROP_THRESHOLD (1%)
    removable_shares(rel) = (share of all blocks, share of the blocks l >= L/2) that are removable, from
                            analyze.py's layer_drop rel; deep_half_removable(out_dir) is the second, of a run
    mean_spread(values) = (mean, max - min) over the finite values (the seeds of one configuration)
    mean_spread_text(mean, spread, digits) = "mean (spread)" as every table writes it
    max_loss_diff(a, b) = max |loss_a - loss_b| over the iterations both runs logged
"""

import json
import math
import os


def read_log(out_dir):
    rows = []
    path = os.path.join(out_dir, "log.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if "loss" in r], [r for r in rows if "val_loss" in r]


def read_analysis(out_dir):
    """The run's analysis.json (analyze.py's output), or None when the run has none."""
    path = os.path.join(out_dir, "analysis.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def max_loss_diff(a_dir, b_dir):
    """Largest |train loss difference| at equal logged iterations (and at equal eval iterations)."""
    (ta, ea), (tb, eb) = read_log(a_dir), read_log(b_dir)
    la, lb = {r["iter"]: r["loss"] for r in ta}, {r["iter"]: r["loss"] for r in tb}
    va, vb = {r["iter"]: r["val_loss"] for r in ea}, {r["iter"]: r["val_loss"] for r in eb}
    common = sorted(set(la) & set(lb))
    return {"train": max((abs(la[i] - lb[i]) for i in common), default=None), "iters": len(common),
            "val": max((abs(va[i] - vb[i]) for i in set(va) & set(vb)), default=None)}


DROP_THRESHOLD = 0.01  # a block is "removable" when dropping it raises the loss by less than 1% (analyze.py's share)


def mean_spread(values):
    """(mean, max - min) of the finite values, (None, None) when there are none."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    return sum(values) / len(values), max(values) - min(values)


def mean_spread_text(mean, spread, digits):
    """'mean (spread)' with `digits` decimals, or in scientific notation for digits='sci'; '-' without a mean."""
    if mean is None:
        return "-"
    if digits == "sci":
        return f"{mean:.2e} ({spread:.1e})"
    return f"{mean:.{digits}f} ({spread:.{digits}f})"


def removable_shares(rel):
    """(share of all blocks, share of the deeper half l >= L/2) whose removal raises the loss by < 1%; rel is
    analyze.py's layer_drop["rel"], one relative loss increase per block."""
    deep = rel[len(rel) // 2:]
    return (sum(r < DROP_THRESHOLD for r in rel) / len(rel), sum(r < DROP_THRESHOLD for r in deep) / len(deep))


def deep_half_removable(out_dir):
    """Share of the deeper half of the blocks (l >= L/2) whose removal costs < 1%: the papers' claim is about
    deep blocks. None without the run's analysis.json."""
    analysis = read_analysis(out_dir)
    return None if analysis is None else removable_shares(analysis["layer_drop"]["rel"])[1]
