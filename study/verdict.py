"""
The rules a study's verdicts follow: paired intervals over seeds, failed runs, and each arm's best lr.

Paired verdict on a claim "A < B" (A is the side the paper says is lower), each side trained once per seed with the
same seed (the same data order):
    d_s = A_s - B_s over the n seeds where both sides have a value
    mean d +- t(0.975, n - 1) * sd(d) / sqrt(n)            (the 95% t-interval of the mean difference)
    agrees: the interval lies below 0; disagrees: above 0; otherwise "no difference detected", with the interval,
    which says how large an effect the study could have missed.
Under no effect (and roughly normal d) a 95% interval excludes 0 in 5% of comparisons, 2.5% in each direction:
among K claims about 0.05 K false verdicts are expected. With n < 2 pairs there is no interval: "not testable".

A run that fails to train is part of the finding, never dropped silently:
    diverged  train.py stopped on a non-finite loss (its done marker says so)
    stalled   its final val loss is within STALL_MARGIN of the unigram loss (it learned only letter frequencies)
Losses are compared "without" the failed runs (seeds where both sides trained) and "with" them (a failed run counted
at the unigram loss, the loss of a model that learned nothing more), and each arm's failure rate is given.

Best lr of an arm: the lr with the lowest mean final val loss over its sweep seeds, a failed run counted at the
unigram loss; when the best lr is the grid's smallest or largest, the grid is extended by a factor of 2 beyond
it (up to MAX_EXTENSIONS times), so that the best is never at an edge of what was tried.
"""

import math

STALL_MARGIN = 0.1   # nats: a final val loss above unigram - 0.1 learned next to nothing beyond the unigram
MAX_EXTENSIONS = 3   # grid extensions per arm and direction before the best lr is reported "at the edge"
# two-sided 95% quantiles of Student's t, t(0.975, df); df > 30 uses the normal 1.96 (within 4%)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 25: 2.060, 30: 2.042}
FALSE_VERDICT_RATE = 0.05  # per comparison under no effect: 2.5% "agrees" + 2.5% "disagrees"


def t975(df):
    """t(0.975, df), the nearest tabulated df at or below (conservative between table rows)."""
    return T975[max(k for k in T975 if k <= df)] if df <= 30 else 1.96


def finite(v):
    return v is not None and math.isfinite(v)


def mean_interval(values):
    """{n, mean, lo, hi}: the mean of the values and its 95% t-interval (lo, hi None: n < 2)."""
    n = len(values)
    if n < 2:
        return {"n": n, "mean": values[0] if values else None, "lo": None, "hi": None}
    mean = sum(values) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "lo": mean - half, "hi": mean + half}


def paired_interval(a, b):
    """{n, mean, lo, hi, diffs} of d = a_s - b_s over the positions where both are finite (None: n < 2)."""
    d = [x - y for x, y in zip(a, b) if finite(x) and finite(y)]
    return {**mean_interval(d), "diffs": d}


def paired_verdict(a, b):
    """(verdict, interval) for the claim "a < b" (see the module docstring)."""
    iv = paired_interval(a, b)
    if iv["lo"] is None:
        return "not testable", iv
    if iv["hi"] < 0:
        return "agrees", iv
    if iv["lo"] > 0:
        return "disagrees", iv
    return "no difference detected", iv


def failure(run_metrics, unigram):
    """'diverged', 'stalled' or None for one run's metrics ({"outcome", "final_val_loss"})."""
    if run_metrics.get("outcome") == "diverged":
        return "diverged"
    loss = run_metrics.get("final_val_loss")
    if loss is None or not math.isfinite(loss):
        return "diverged"
    return "stalled" if loss > unigram - STALL_MARGIN else None


def loss_with_failures(run_metrics, unigram):
    """The final val loss, a failed run counted at the unigram loss."""
    return unigram if failure(run_metrics, unigram) else run_metrics["final_val_loss"]


def loss_without_failures(run_metrics, unigram):
    """The final val loss of a run that trained, None for a failed one."""
    return None if failure(run_metrics, unigram) else run_metrics["final_val_loss"]


def best_lr(by_lr, unigram):
    """(best lr, extension or None) from {lr: [run metrics of each sweep seed]}: the lowest mean loss, failed runs at
    the unigram loss; the extension is the lr to try next when the best is at an edge of the grid."""
    means = {lr: sum(loss_with_failures(m, unigram) for m in ms) / len(ms) for lr, ms in by_lr.items() if ms}
    best = min(means, key=means.get)
    grid = sorted(means)
    if best == grid[0]:
        return best, best / 2
    if best == grid[-1]:
        return best, best * 2
    return best, None
