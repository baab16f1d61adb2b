"""
The plots a study's results.md links: the loss curves of every run of a group on one axis, the norm study's
|train loss difference| to Pre-LN, analyze.py's measures of each run side by side (angular distance
d(x_l, x_(l+n)) = arccos(cos)/pi, layer drop, stream rms, per-block gradient norm, excess kurtosis) and, with
several seeds per configuration, trajectories.png (over training) and profiles.png (per layer, after training).
"""

import math
import os

from study.runlog import DROP_THRESHOLD, read_analysis, read_log


def save_figure(plt, fig, path):
    """Lay out, write and close a figure; returns its path."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_study(runs, metrics, runs_dir, results_dir, study):
    import numpy as np

    import analyze
    plt = analyze.pyplot()
    paths = []
    groups = list(dict.fromkeys(r.group for r in runs))

    def save(fig, name):
        paths.append(save_figure(plt, fig, os.path.join(results_dir, name)))

    # loss curves: every run of a group on one axis (train rows as lines, evals as dots)
    fig, axes = plt.subplots(1, len(groups), figsize=(7 * len(groups), 4.5), squeeze=False)
    for ax, g in zip(axes[0], groups):
        for k, run in enumerate(r for r in runs if r.group == g):
            tr, ev = read_log(os.path.join(runs_dir, run.name))
            color = f"C{k}"
            style = "--" if study == "norm" and run.name in ("rms_zm", "crms") else "-"
            ax.plot([r["iter"] for r in tr], [r["loss"] for r in tr], style, color=color, label=run.label, lw=1.2)
            ax.plot([r["iter"] for r in ev], [r["val_loss"] for r in ev], "o", color=color, ms=3)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss (lines: train, dots: val)")
        ax.set_title(f"{study} study {g}".strip())
        ax.legend(fontsize=8)
        finals = [metrics[r.name].get("val_loss") for r in runs if r.group == g]
        finals = [v for v in finals if v is not None and math.isfinite(v)]
        if finals:  # zoom to the interesting part; the first steps from ~ln(vocab) dwarf the rest
            lo = min(finals)
            ax.set_ylim(lo - 0.1, lo + max(1.5, 3 * (max(finals) - lo)))
    save(fig, "loss_curves.png")

    shown = {r.name for r in runs}  # only this study's runs: never a folder left out for another record
    if study == "norm" and "ln" in shown:  # the three equivalent runs differ only by rounding: |difference| to ln
        fig, ax = plt.subplots(figsize=(7, 4))
        tr_ln = {r["iter"]: r["loss"] for r in read_log(os.path.join(runs_dir, "ln"))[0]}
        for k, name in enumerate(("rms", "rms_zm", "crms")):
            if name not in shown:
                continue
            tr = {r["iter"]: r["loss"] for r in read_log(os.path.join(runs_dir, name))[0]}
            its = sorted(set(tr) & set(tr_ln))
            diff = [abs(tr[i] - tr_ln[i]) or np.nan for i in its]
            ax.plot(its, diff, "o-", ms=3, color=f"C{k + 1}", label=f"|{name} - ln|")
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("|train loss difference| (float32)")
        ax.set_title("norm study: distance from Pre-LN (missing points: exactly 0)")
        ax.legend(fontsize=8)
        save(fig, "loss_diff_to_ln.png")

    for g in groups:
        group = [r for r in runs if r.group == g and "analysis" in metrics[r.name]]
        if not group:
            continue
        res = {r.name: read_analysis(os.path.join(runs_dir, r.name)) for r in group}
        sfx = f"_{g}" if g else ""
        n = len(group)
        # angular-distance heatmaps side by side, one colour scale
        vmax = max(v for r in res.values() for row in r["angular_last"] for v in row if v is not None)
        cols = min(n, 4)  # wrap long studies into rows of 4 panels
        rows = -(-n // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols + 1.5, 3.4 * rows), squeeze=False,
                                 sharey=True, gridspec_kw={"hspace": 0.45})
        flat = [ax for row in axes for ax in row]
        for k, (ax, run) in enumerate(zip(flat, group)):
            im = analyze.heatmap(ax, res[run.name]["angular_last"], run.label, vmax=vmax)
            if k % cols:
                ax.set_ylabel("")
        for ax in flat[n:]:
            ax.axis("off")
        fig.colorbar(im, ax=flat, shrink=0.8, label="angular distance, last token")
        fig.suptitle(f"angular distance d(x_l, x_(l+n)) = arccos(cos)/pi, last token {g}", fontsize=10, y=1.01)
        path = os.path.join(results_dir, f"angular{sfx}.png")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
        # layer drop bars side by side, shared y
        fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False, sharey=True)
        flat = [ax for row in axes for ax in row]
        for ax in flat[n:]:
            ax.axis("off")
        for ax, run in zip(flat, group):
            rel = [100 * v for v in res[run.name]["layer_drop"]["rel"]]
            ax.bar(range(len(rel)), rel, color=["tab:red" if v >= 1 else "tab:gray" for v in rel])
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
            ax.set_yscale("symlog", linthresh=1.0)  # block 0 often costs 50%, the rest ~1%: both readable
            ax.set_title(run.label, fontsize=9)
            ax.set_xlabel("removed block")
            analyze.block_axis(ax.xaxis)
        for row in axes:
            row[0].set_ylabel("loss increase (%, symlog)")
        fig.suptitle(f"layer drop {g} (dashed: 1%)", fontsize=10)
        save(fig, f"layerdrop{sfx}.png")
        # curves over depth: every run on one axis
        fig, axes = plt.subplots(1, 3, figsize=(16, 4))
        for k, run in enumerate(group):
            r = res[run.name]
            axes[0].plot(r["rms"], "o-", ms=3, color=f"C{k}", label=run.label)
            axes[1].plot(r["grad_norm"], "o-", ms=3, color=f"C{k}", label=run.label)
            axes[2].plot(r["kurtosis_raw"], "o-", ms=3, color=f"C{k}", label=run.label)
        axes[0].set(yscale="log", xlabel="hidden state l (0 = embedding output)", ylabel="rms(x_l)",
                    title=f"residual stream growth {g}")
        axes[1].set(yscale="log", xlabel="block l", ylabel="gradient norm", title=f"per-block gradient norm {g}")
        axes[2].set(xlabel="hidden state l (0 = embedding output)", ylabel="excess kurtosis (mean over tokens)",
                    title=f"activation excess kurtosis {g}")
        axes[2].axhline(0, color="k", lw=0.8, ls="--")
        for ax in axes:
            analyze.block_axis(ax.xaxis)
        if study == "optim" and max(max(res[r.name]["kurtosis_raw"]) for r in group) > 20:
            axes[2].set_yscale("symlog")
        for ax in axes:
            ax.legend(fontsize=7)
        save(fig, f"depth_curves{sfx}.png")
    return paths


def plot_seeds(summary, runs_dir, results_dir):
    """trajectories.png (share, growth and val loss over training) and profiles.png (final per-layer profiles)."""
    import analyze
    plt = analyze.pyplot()
    paths = []
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for k, (config, s) in enumerate(summary.items()):
        color = f"C{k}"
        for key, ax in zip(("drop_share_lt1pct", "rms_growth", "val_loss"), axes):
            for t in s["trajectory_per_seed"]:  # thin: each seed; thick: their mean
                ax.plot(t["iter"], t[key], "-", color=color, lw=0.7, alpha=0.5)
            ax.plot(s["trajectory"]["iter"], s["trajectory"][key], "o-", color=color, ms=3, lw=1.8, label=s["label"])
    axes[0].set(xlabel="iteration", ylabel="share of blocks", title="removable blocks (drop costs < 1% of the loss)")
    axes[1].set(xlabel="iteration", ylabel="rms(x_L) / rms(x_0)", yscale="log", title="residual stream growth")
    axes[2].set(xlabel="iteration", ylabel="val loss", title="val loss")
    finals = [v for s in summary.values() for v in s["final"]["val_loss"]["values"] if v is not None]
    if finals:  # the first evaluations, near ln(vocab), would flatten the rest
        axes[2].set_ylim(min(finals) - 0.1, min(finals) + 1.0)
    for ax in axes:
        ax.legend(fontsize=8)
    paths.append(save_figure(plt, fig, os.path.join(results_dir, "trajectories.png")))
    # final per-layer profiles, mean over seeds: stream rms, layer-drop cost, per-block gradient norm
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for k, (config, s) in enumerate(summary.items()):
        res = [a for a in (read_analysis(os.path.join(runs_dir, name)) for name in s["runs"]) if a is not None]
        if not res:
            continue
        mean = lambda rows: [sum(col) / len(col) for col in zip(*rows)]  # noqa: E731 (over seeds)
        axes[0].plot(mean([r["rms"] for r in res]), "o-", ms=3, color=f"C{k}", label=s["label"])
        axes[1].plot([100 * v for v in mean([r["layer_drop"]["rel"] for r in res])], "o-", ms=3, color=f"C{k}",
                     label=s["label"])
        axes[2].plot(mean([r["grad_norm"] for r in res]), "o-", ms=3, color=f"C{k}", label=s["label"])
    axes[0].set(xlabel="hidden state l (0 = embedding output)", ylabel="rms(x_l)", yscale="log",
                title="residual stream after training")
    axes[1].axhline(100 * DROP_THRESHOLD, color="k", lw=0.8, ls="--")
    axes[1].set(xlabel="removed block", ylabel="val loss increase (%, symlog)", title="layer drop (dashed: 1%)")
    axes[1].set_yscale("symlog", linthresh=1.0)
    axes[2].set(xlabel="block", ylabel="gradient norm", yscale="log", title="per-block gradient norm")
    for ax in axes:
        analyze.block_axis(ax.xaxis)
        ax.legend(fontsize=8)
    paths.append(save_figure(plt, fig, os.path.join(results_dir, "profiles.png")))
    return paths
