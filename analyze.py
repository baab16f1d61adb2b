"""
Look inside a trained GPT: the analysis tools of the depth and outlier papers, for any model.py GPT.

    python analyze.py --out_dir=out [--dataset=NAME] [--batches=4] [--batch_size=8] [--split=val]
        -> out_dir/analysis.json and out_dir/analysis_{angular,layerdrop,rms,gradnorm,kurtosis}.png
    python analyze.py curves out-ln out-rms [--out=curves.png]
        -> the train and val loss curves of the runs' log.jsonl, side by side (legend: the folder)
    python analyze.py hf MODEL [--text FILE | --dataset NAME] [--out_dir DIR] [--grad_norms]
        -> the same analysis of a Hugging Face causal LM (hub name or folder): section "Hugging Face causal LMs"

Hidden states x_0..x_L come from model.hidden_states(idx): x_l enters block l (x_0 = embedding
output), x_L leaves the last block (crms models give the decompressed d-dim stream).
  1. angular distance (The Curse of Depth, Sun et al. 2025; Gromov et al. 2024):
        d(l, n) = arccos(cos_sim(x_l, x_{l+n})) / pi   in [0, 1], for the last token and for all tokens,
     averaged over tokens and batches; a heatmap over (l, n). Near-0 rows = blocks that barely move x.
  2. layer drop: dP(l) = loss(model without block l) - loss(model)  (forward(..., skip_blocks=(l,)));
     share of blocks whose removal costs < 1% of the loss ("ineffective" deep layers).
  3. residual stream size after each block: rms(x_l) = sqrt(mean(x_l^2)) and the per-token variance
     over the hidden dim (Pre-LN grows with depth, LayerNorm Scaling keeps it bounded).
  4. per-block gradient norm (Mix-LN, Li et al. 2025): ||dLoss/dtheta_l|| over all parameters of block l.
  5. excess kurtosis (Outlier-Safe Pre-Training): per token over the hidden dim
        k = E[(x - mu)^4] / var^2 - 3    (central moments; 0 for a Gaussian, large with outlier features)
     averaged over tokens, then relu'd as OSP does, for x_0 (embedding output) and every block output;
     kurtosis_mean is the mean over those L+1 states (kurtosis_raw: the same without the relu, since
     small models are often light-tailed, k < 0, where the relu'd number is just 0).
  6. quantization (OSP's headline): the relative loss increase under 4-bit round-to-nearest weights per output
     channel (W4) and under 8-bit weights and per-token 8-bit activations (W8A8): quantization_check.
quick_metrics(model, x, y=None) gives cheap scalars of the same tools for train.py's eval rows.
"""

import argparse
import json
import math
import os
import sys
import time
import types

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------
# the measurements (pure functions of tensors or of a model and a batch)


def angular_distance(a, b, eps=1e-12):
    """arccos(cos_sim(a, b)) / pi over the last dim, in float64 (float32 arccos near 1 is too coarse)."""
    # exercise: angular_distance
    a, b = a.double(), b.double()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)
    return torch.arccos(cos.clamp(-1.0, 1.0)) / math.pi
    # end exercise


def angular_distance_matrix(states, last_token=True):
    """D[l][n-1] = mean angular distance between x_l and x_{l+n}, l = 0..L-1, n = 1..L (NaN where l+n > L)."""
    L = len(states) - 1
    pick = (lambda s: s[:, -1, :]) if last_token else (lambda s: s)
    D = torch.full((L, L), float("nan"), dtype=torch.float64)
    for l in range(L):
        for n in range(1, L - l + 1):
            D[l, n - 1] = angular_distance(pick(states[l]), pick(states[l + n])).mean()
    return D


def excess_kurtosis(x):
    """Per-token excess kurtosis over the last dim, central-moment form: E[(x-mu)^4]/var^2 - 3."""
    # exercise: excess_kurtosis
    x = x.double()
    c = x - x.mean(dim=-1, keepdim=True)
    var = c.square().mean(dim=-1)
    kurtosis = c.pow(4).mean(dim=-1) / var.square().clamp_min(1e-300) - 3.0
    return torch.where(var > 0, kurtosis, 0.0)  # a constant vector has no tails: 0, not the clamp's -3
    # end exercise


def kurtosis_profile(states, clamp=True):
    """OSP's number per hidden state: relu(mean over tokens of the per-token excess kurtosis).

    clamp=False keeps negative means (light-tailed states, common early in training) visible."""
    means = [excess_kurtosis(s).mean().item() for s in states]
    return [max(0.0, k) for k in means] if clamp else means


def residual_stats(states):
    """rms = sqrt(mean(x^2)) over all entries, var = per-token variance over the hidden dim, averaged."""
    rms = [s.double().square().mean().sqrt().item() for s in states]
    var = [s.double().var(dim=-1, unbiased=False).mean().item() for s in states]
    return rms, var


@torch.no_grad()
def layer_drop(model, x, y):
    """(base loss, [loss without block l for each l])."""
    base = model(x, y)[1].item()
    return base, [model(x, y, skip_blocks=(l,))[1].item() for l in range(len(model.transformer.h))]


def block_grad_norms(model, x, y):
    """Per block l: sqrt(sum of squared gradients of all its parameters) for the loss on (x, y).

    Uses torch.autograd.grad, so the parameters' .grad (a training run's accumulators) are left alone.
    Also returns the gradient norm of everything outside the blocks (embeddings, final norm, head).
    """
    blocks = list(model.transformer.h)
    groups = [[p for p in b.parameters() if p.requires_grad] for b in blocks]
    in_blocks = {id(p) for g in groups for p in g}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in in_blocks]
    flat = [p for g in groups for p in g] + rest
    with torch.enable_grad():
        loss = model(x, y)[1]
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
    norms, i = [], 0
    for g in groups + [rest]:
        sq = sum((gr.double().square().sum() for gr in grads[i:i + len(g)] if gr is not None),
                 torch.zeros((), dtype=torch.float64))
        norms.append(sq.sqrt().item())
        i += len(g)
    return norms[:-1], norms[-1]


# --------------------------------------------------------------------------------------------
# cheap scalars for train.py (eval rows of log.jsonl) and the full analysis over several batches


def _split_xy(x, y):
    """Without targets, predict x's own next tokens (train.py passes only the val inputs)."""
    if y is None:
        if x.shape[1] < 2:
            raise ValueError(f"quick_metrics needs at least 2 tokens per row without targets, got {x.shape[1]}")
        return x[:, :-1].contiguous(), x[:, 1:].contiguous()  # model.forward views the targets
    return x, y


def quick_metrics(model, x, y=None):
    """Cheap scalars on one batch: L+1 forward passes plus one hidden-state pass, no backward.

    kurtosis_mean       OSP excess kurtosis averaged over the embedding output and every block output
    kurtosis_raw_mean   the same without OSP's relu (negative: lighter tails than a Gaussian)
    rms_growth          rms(last block output) / rms(embedding output)
    drop_share_lt1pct   share of blocks whose removal raises the loss by less than 1%
    drop_max_rel        largest relative loss increase from removing one block
    ang_adjacent        mean angular distance between x_l and x_{l+1} (all tokens)
    """
    x, y = _split_xy(x, y)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            states = model.hidden_states(x)
            base, dropped = layer_drop(model, x, y)
    finally:
        model.train(was_training)
    rms, _ = residual_stats(states)
    rel = [(d - base) / base for d in dropped]
    kurt = kurtosis_profile(states, clamp=False)
    return {
        "kurtosis_mean": sum(max(0.0, k) for k in kurt) / len(kurt),
        "kurtosis_raw_mean": sum(kurt) / len(kurt),
        "rms_growth": rms[-1] / max(rms[0], 1e-30),
        "drop_share_lt1pct": sum(r < 0.01 for r in rel) / len(rel),
        "drop_max_rel": max(rel),
        "ang_adjacent": sum(angular_distance(states[l], states[l + 1]).mean().item()
                            for l in range(len(states) - 1)) / (len(states) - 1),
    }


# quantization (Outlier-Safe Pre-Training's headline: the loss a model loses to low-bit weights and activations)
#   round-to-nearest, symmetric, per output channel r of a weight W (out x in):
#       s_r = max_j |W_rj| / (2^(b-1) - 1),    Q(W)_rj = s_r * clamp(round(W_rj / s_r), -(2^(b-1) - 1), 2^(b-1) - 1)
#   W8A8 also quantizes the input x of every linear layer the same way, per token t: s_t = max_j |x_tj| / 127.
#   Every nn.Linear is quantized (the blocks' matrices and the head); embeddings and norm gains stay float
#   (a tied head shares its weight with the embedding, which is then quantized with it).

def quantize_rtn(x, bits):
    """Symmetric round-to-nearest to `bits` bits with one scale per row (the last dim is quantized)."""
    qmax = 2 ** (bits - 1) - 1
    scale = x.abs().amax(dim=-1, keepdim=True) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row stays zero
    return (x / scale).round().clamp(-qmax, qmax) * scale


@torch.no_grad()
def quantized_loss(model, batches, weight_bits, act_bits=None):
    """Mean loss over (x, y) batches of a copy of the model with every linear weight RTN-quantized to
    weight_bits (per output channel) and, with act_bits, every linear input quantized per token."""
    import copy
    q = copy.deepcopy(model).eval()
    for m in q.modules():
        if isinstance(m, torch.nn.Linear):
            m.weight.copy_(quantize_rtn(m.weight, weight_bits))
            if act_bits:
                m.register_forward_pre_hook(lambda mod, args: (quantize_rtn(args[0], act_bits), *args[1:]))
    losses = [q(x, y)[1].item() for x, y in batches]
    return sum(losses) / len(losses)


def quantization_check(model, batches):
    """The loss and its relative increase under 4-bit weights (W4, RTN per channel) and 8-bit weights and
    activations (W8A8): {"loss", "w4_loss", "w4_increase", "w8a8_loss", "w8a8_increase"}."""
    batches = list(batches)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        base = sum(model(x, y)[1].item() for x, y in batches) / len(batches)
    model.train(was_training)
    w4, w8a8 = quantized_loss(model, batches, 4), quantized_loss(model, batches, 8, 8)
    return {"loss": base, "w4_loss": w4, "w4_increase": (w4 - base) / base,
            "w8a8_loss": w8a8, "w8a8_increase": (w8a8 - base) / base}


def _nan_to_none(m):
    return [[None if math.isnan(v) else v for v in row] for row in m.tolist()]


def analyze_model(model, batches, grad_norms=True):
    """Every measurement, averaged over an iterable of (x, y) batches. Returns a JSON-ready dict.
    grad_norms=False leaves out the backward pass (grad_norm entries None): a big pretrained model's
    gradients double its memory."""
    was_training = model.training
    model.eval()
    acc, n = {}, 0

    def add(key, value):
        value = torch.as_tensor(value, dtype=torch.float64)
        acc[key] = value if key not in acc else acc[key] + value

    try:
        for x, y in batches:
            with torch.no_grad():
                states = model.hidden_states(x)
                base, dropped = layer_drop(model, x, y)
            add("angular_last", angular_distance_matrix(states, last_token=True))
            add("angular_all", angular_distance_matrix(states, last_token=False))
            add("loss", base)
            add("loss_without", dropped)
            rms, var = residual_stats(states)
            add("rms", rms)
            add("var", var)
            add("kurtosis_raw", kurtosis_profile(states, clamp=False))
            if grad_norms:
                blocks, rest = block_grad_norms(model, x, y)
                add("grad_norm", blocks)
                add("grad_norm_rest", rest)
            n += 1
            del states
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("analyze_model needs at least one batch")
    m = {k: v / n for k, v in acc.items()}
    L = len(m["loss_without"])
    base = m["loss"].item()
    delta = (m["loss_without"] - base).tolist()
    rel = [d / base for d in delta]
    ang_all, ang_last = m["angular_all"], m["angular_last"]
    rms = m["rms"].tolist()
    grad = m["grad_norm"].tolist() if grad_norms else None
    kurt = [max(0.0, k) for k in m["kurtosis_raw"].tolist()]  # OSP's relu, after averaging the batches
    out = {
        "batches": n,
        "loss": base,
        "angular_last": _nan_to_none(ang_last),
        "angular_all": _nan_to_none(ang_all),
        "angular_adjacent_last": ang_last[:, 0].tolist(),
        "angular_adjacent_all": ang_all[:, 0].tolist(),
        "layer_drop": {"loss_without": m["loss_without"].tolist(), "delta": delta, "rel": rel},
        "rms": rms,
        "var": m["var"].tolist(),
        "grad_norm": grad,
        "grad_norm_rest": m["grad_norm_rest"].item() if grad_norms else None,
        "kurtosis": kurt,
        "kurtosis_raw": m["kurtosis_raw"].tolist(),
    }
    out["summary"] = {
        "loss": base,
        "drop_share_lt1pct": sum(r < 0.01 for r in rel) / L,
        "drop_mean_rel": sum(rel) / L,
        "drop_max_rel": max(rel),
        "ang_adjacent": sum(out["angular_adjacent_all"]) / L,
        "ang_adjacent_last": sum(out["angular_adjacent_last"]) / L,
        "ang_first_to_last_last": ang_last[0, L - 1].item(),  # x_0 vs x_L, last token
        "rms_growth": rms[-1] / max(rms[0], 1e-30),
        "rms_growth_deep": rms[-1] / max(rms[1], 1e-30),  # x_L / x_1: leaves out the embedding's own scale
        "rms_last": rms[-1],
        "grad_norm_first_over_last": grad[0] / max(grad[-1], 1e-30) if grad else None,
        "grad_norm_cv": (torch.tensor(grad).std(unbiased=False) / torch.tensor(grad).mean()).item() if grad else None,
        "kurtosis_mean": sum(kurt) / len(kurt),
        "kurtosis_max": max(kurt),
        "kurtosis_raw_mean": m["kurtosis_raw"].mean().item(),
    }
    return out


# --------------------------------------------------------------------------------------------
# plots (matplotlib only when asked for)


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("plots need matplotlib: pip install matplotlib (analyze.py --no_plots writes only "
                         "analysis.json)") from None
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    return plt


def block_axis(axis):
    """Blocks and hidden states are counted in whole numbers: ticks only there (a 2-layer model's axis
    would otherwise read -0.25, 0.25, 0.75, ...). axis: ax.xaxis or ax.yaxis."""
    from matplotlib.ticker import MaxNLocator
    axis.set_major_locator(MaxNLocator(integer=True))


def heatmap(ax, matrix, title, vmax=None):
    """Angular-distance heatmap: rows l (block entered), columns n (blocks skipped ahead)."""
    import numpy as np
    m = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    L = m.shape[0]
    im = ax.imshow(m, origin="lower", aspect="auto", cmap="viridis", vmin=0,
                   vmax=vmax if vmax is not None else np.nanmax(m),
                   extent=(0.5, L + 0.5, -0.5, L - 0.5))
    ax.set_xlabel("n (blocks ahead)")
    ax.set_ylabel("l (block entered)")
    block_axis(ax.xaxis)
    block_axis(ax.yaxis)
    ax.set_title(title, fontsize=9)
    return im


def plot_analysis(result, out_dir, title=""):
    """Write analysis_{angular,layerdrop,rms,gradnorm,kurtosis}.png (gradnorm when measured); returns the paths."""
    plt = pyplot()
    L = len(result["layer_drop"]["rel"])
    paths = []

    def save(fig, name):
        path = os.path.join(out_dir, f"analysis_{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, what in zip(axes, ("angular_last", "angular_all"), ("last token", "all tokens")):
        im = heatmap(ax, result[key], f"{title} angular distance d(x_l, x_(l+n)), {what}")
        fig.colorbar(im, ax=ax)
    save(fig, "angular")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    rel = [100 * r for r in result["layer_drop"]["rel"]]
    ax.bar(range(L), rel, color=["tab:red" if r >= 1 else "tab:gray" for r in rel])
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="1% of the loss")
    ax.set_yscale("symlog", linthresh=1.0)  # linear below 1%, logarithmic above: small and big costs readable
    ax.set_xlabel("removed block l")
    block_axis(ax.xaxis)
    ax.set_ylabel("loss increase (%, symlog)")
    ax.set_title(f"{title} layer drop (base loss {result['loss']:.3f})", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, "layerdrop")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(L + 1), result["rms"], "o-", label="rms(x_l)")
    ax.plot(range(L + 1), [math.sqrt(v) for v in result["var"]], "s--", label="per-token std")
    ax.set_yscale("log")
    ax.set_xlabel("hidden state l (0 = embedding output)")
    block_axis(ax.xaxis)
    ax.set_ylabel("size of the residual stream")
    ax.set_title(f"{title} residual stream growth", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, "rms")

    if result["grad_norm"] is not None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(range(L), result["grad_norm"], "o-")
        ax.set_yscale("log")
        ax.set_xlabel("block l")
        block_axis(ax.xaxis)
        ax.set_ylabel("gradient norm of block parameters")
        ax.set_title(f"{title} per-block gradient norm", fontsize=9)
        save(fig, "gradnorm")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(L + 1), result["kurtosis_raw"], "o-", label="mean over tokens")
    ax.axhline(0.0, color="k", lw=0.8, ls="--", label="Gaussian (OSP clamps below 0)")
    ax.legend(fontsize=8)
    ax.set_xlabel("hidden state l (0 = embedding output)")
    block_axis(ax.xaxis)
    ax.set_ylabel("excess kurtosis")
    ax.set_title(f"{title} excess kurtosis (OSP mean {result['summary']['kurtosis_mean']:.2f}, "
                 f"raw {result['summary']['kurtosis_raw_mean']:.2f})", fontsize=9)
    save(fig, "kurtosis")
    return paths


# --------------------------------------------------------------------------------------------
# loss curves of several runs, side by side (train.py's log.jsonl)


def read_log(run_dir):
    """(train, val) of a run folder's log.jsonl, each a list of (iter, loss): train from the training rows
    (the mean loss since the previous row), val from the evaluation rows."""
    path = os.path.join(run_dir, "log.jsonl")
    train, val = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{path}: line {n} is not JSON (a damaged log)") from None
            if "loss" in row:
                train.append((row["iter"], row["loss"]))
            if "val_loss" in row:
                val.append((row["iter"], row["val_loss"]))
    return train, val


def plot_curves(run_dirs, out_path):
    """Train loss (left panel) and val loss (right) over iterations, one colour per run; returns out_path."""
    logs = {d: read_log(d) for d in run_dirs}  # read every log before drawing: a bad one fails first
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, (run_dir, splits) in enumerate(logs.items()):
        for ax, points, style in zip(axes, splits, ("-", "o-")):
            if points:
                iters, losses = zip(*points)
                ax.plot(iters, losses, style, ms=3, color=f"C{k}", label=os.path.normpath(run_dir))
    for ax, split in zip(axes, ("train", "val")):
        ax.set(xlabel="iteration", ylabel=f"{split} loss", title=f"{split} loss")
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def curves_main(argv):
    ap = _Parser(prog="analyze.py curves", description="Plot the train and val loss of run folders side by side")
    ap.add_argument("run_dirs", nargs="+", metavar="DIR", help="train.py out_dirs (each holds a log.jsonl)")
    ap.add_argument("--out", default="curves.png", help="PNG to write (default curves.png)")
    args = ap.parse_args(argv)
    for run_dir in args.run_dirs:
        if not os.path.isfile(os.path.join(run_dir, "log.jsonl")):
            ap.error(f"bad run folder '{run_dir}': no log.jsonl there (train.py writes one into its out_dir)")
    try:
        path = plot_curves(args.run_dirs, args.out)
    except ValueError as e:
        ap.error(str(e))
    print(f"wrote {path}")


# --------------------------------------------------------------------------------------------
# Hugging Face causal LMs: python analyze.py hf MODEL, the same measurements on a pretrained model
#
# HFModel makes a transformers model look like our GPT to analyze_model: forward(idx, targets, skip_blocks)
# -> (logits, loss), hidden_states(idx) -> [x_0, ..., x_L], transformer.h = its list of blocks. Hidden states
# come from hooks on the blocks (x_l = what block l receives, x_L = what the last block returns, before the
# final norm: transformers' own output_hidden_states applies the final norm to its last entry). Removing
# block l: a forward hook returns the block's input as its output, so the block is an identity; the model's
# masks, positions and layer indices stay as they are (use_cache=False: no cache to keep consistent).

# model_type (config.json) -> (where the list of blocks is, the norm, its placement). Checked in transformers
# 5.25 on random tiny models (the first six also in tests/test_hf.py).
HF_FAMILIES = {
    "gpt2": ("transformer.h", "LayerNorm", "Pre-LN"),
    "gpt_neox": ("gpt_neox.layers", "LayerNorm", "Pre-LN"),
    "llama": ("model.layers", "RMSNorm", "Pre-LN"),
    "mistral": ("model.layers", "RMSNorm", "Pre-LN"),
    "qwen2": ("model.layers", "RMSNorm", "Pre-LN"),
    "olmo2": ("model.layers", "RMSNorm", "reordered, x + N(f(x)) (OLMo 2), with QK-norm"),
    "qwen3": ("model.layers", "RMSNorm", "Pre-LN, with per-head QK-norm"),
    "olmo": ("model.layers", "LayerNorm without gain or bias", "Pre-LN"),
    "gemma": ("model.layers", "RMSNorm, gain (1 + g)", "Pre-LN"),
    "gemma2": ("model.layers", "RMSNorm, gain (1 + g)", "Sandwich, x + N(f(N(x)))"),
    "phi3": ("model.layers", "RMSNorm", "Pre-LN"),
    "smollm3": ("model.layers", "RMSNorm", "Pre-LN"),
    "granite": ("model.layers", "RMSNorm", "Pre-LN"),
    "starcoder2": ("model.layers", "LayerNorm", "Pre-LN"),
    "stablelm": ("model.layers", "LayerNorm", "Pre-LN"),
    "phi": ("model.layers", "LayerNorm", "Pre-LN, attention and MLP in parallel on one norm"),
    "gpt_neo": ("transformer.h", "LayerNorm", "Pre-LN"),
    "gpt_bigcode": ("transformer.h", "LayerNorm", "Pre-LN"),
    "opt": ("model.decoder.layers", "LayerNorm", "Pre-LN"),
}


def hf_norm_family(config):
    """One line: the norm and its placement for a transformers config (HF_FAMILIES plus the config's switches)."""
    _, norm, placement = HF_FAMILIES[config.model_type]
    if getattr(config, "use_parallel_residual", False):  # GPT-NeoX / Pythia, StableLM
        placement += ", attention and MLP in parallel"
    if config.model_type == "opt" and not getattr(config, "do_layer_norm_before", True):
        placement = "Post-LN"  # OPT-350m
    eps = next((getattr(config, k) for k in ("rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps")
                if getattr(config, k, None) is not None), None)
    return f"{norm} (eps {eps}), {placement}" if eps is not None else f"{norm}, {placement}"


def _block_input(args, kwargs):
    return args[0] if args else kwargs["hidden_states"]


def _block_output(output):
    return output[0] if isinstance(output, tuple) else output  # transformers 4.x blocks returned tuples


class HFModel(torch.nn.Module):
    """A transformers causal LM with our GPT's analysis interface (see the section comment above)."""

    def __init__(self, hf):
        super().__init__()
        self.hf = hf
        family = hf.config.model_type
        if family not in HF_FAMILIES:
            raise ValueError(f"bad model type {family!r}: analyze.py knows the blocks of "
                             f"{', '.join(HF_FAMILIES)} (add its block list to HF_FAMILIES)")
        self.transformer = types.SimpleNamespace(h=hf.get_submodule(HF_FAMILIES[family][0]))

    def forward(self, idx, targets=None, skip_blocks=()):
        def identity(module, args, kwargs, output):  # the removed block passes its input through
            x = _block_input(args, kwargs)
            return (x, *output[1:]) if isinstance(output, tuple) else x

        handles = [self.transformer.h[l].register_forward_hook(identity, with_kwargs=True) for l in skip_blocks]
        try:
            logits = self.hf(input_ids=idx, use_cache=False).logits
        finally:
            for h in handles:
                h.remove()
        loss = None
        if targets is not None:  # in float32 at least, as GPT.forward (float64 stays float64)
            wide = logits if logits.element_size() >= 4 else logits.float()
            loss = F.cross_entropy(wide.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def hidden_states(self, idx):
        blocks, states = self.transformer.h, []
        handles = [b.register_forward_pre_hook(lambda m, a, k: states.append(_block_input(a, k)), with_kwargs=True)
                   for b in blocks]
        handles.append(blocks[-1].register_forward_hook(lambda m, a, out: states.append(_block_output(out))))
        try:
            self.hf(input_ids=idx, use_cache=False)
        finally:
            for h in handles:
                h.remove()
        return states


def hf_load_error(name, err):
    """One line for why transformers could not load `name` (err and the errors it was raised from)."""
    chain, e = [], err
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    kinds = {type(e).__name__ for e in chain}
    text = " ".join(str(e) for e in chain).lower()
    if "GatedRepoError" in kinds or "gated repo" in text:
        return (f"model {name!r} is gated: accept its license on https://huggingface.co/{name}, log in "
                f"(hf auth login), then run again")
    if "trust_remote_code" in text or "custom code" in text:
        return f"model {name!r} needs its own code from the hub, which analyze.py does not run (no trust_remote_code)"
    if kinds & {"ConnectError", "ConnectionError", "gaierror", "LocalEntryNotFoundError", "OfflineModeIsEnabled"} \
            or "couldn't connect" in text or "offline" in text:
        return (f"cannot download {name!r}: no network (or HF_HUB_OFFLINE=1) and it is not in the Hugging Face "
                f"cache; run once online, or pass a local model folder")
    if kinds & {"RepositoryNotFoundError", "HFValidationError"} or "not a valid model identifier" in text:
        return f"no model {name!r}: not a local folder and not a model on the Hugging Face hub (e.g. gpt2)"
    first = (str(err).strip().splitlines() or [""])[0][:200]
    return f"cannot load {name!r}: {type(err).__name__}: {first}"


def hub_reachable(timeout=3.0):
    """A quick TCP connection to the hub (HF_ENDPOINT) so a machine without network gets its one line at
    once instead of after transformers' retries; False under HF_HUB_OFFLINE=1."""
    import socket
    from urllib.parse import urlparse
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return True
    except OSError:
        return False


def load_hf(name, dtype, device):
    """(HFModel, tokenizer) for a hub name or a local folder: from the local cache first, the hub second."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    looks_like_folder = name.startswith((".", "/", "~")) or os.sep in name.strip(os.sep).replace("/", "", 1)
    if looks_like_folder and not os.path.isdir(os.path.expanduser(name)):
        raise SystemExit(f"error: bad value {name!r} for MODEL: no such folder (give a model folder or a hub name "
                         f"such as gpt2)")
    name = os.path.expanduser(name)

    def load(local_only):
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
        hf = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, local_files_only=local_only)
        return hf, tokenizer

    try:
        try:
            hf, tokenizer = load(local_only=True)  # a local folder or a cached download: no network needed
        except OSError:
            if os.path.isdir(name) or not hub_reachable():
                raise
            hf, tokenizer = load(local_only=False)
    except Exception as err:  # OSError, the hub's errors, an unknown architecture: one line, not the chain
        raise SystemExit(f"error: {hf_load_error(name, err)}") from None
    try:
        return HFModel(hf.to(device).eval()), tokenizer
    except ValueError as err:  # a model type without an entry in HF_FAMILIES
        raise SystemExit(f"error: {err}") from None


def text_batches(ids, batches, batch_size, block_size):
    """Consecutive rows of block_size + 1 tokens -> [(x, y)] with y = x shifted by one (at most `batches`)."""
    rows = len(ids) // (block_size + 1)
    if rows < 1:
        raise SystemExit(f"error: the text has {len(ids)} tokens; --block_size={block_size} needs at least "
                         f"{block_size + 1} (give a longer --text or a smaller --block_size)")
    rows = min(rows, batches * batch_size)
    t = torch.tensor(ids[:rows * (block_size + 1)], dtype=torch.long).view(rows, block_size + 1)
    return [(t[i:i + batch_size, :-1], t[i:i + batch_size, 1:]) for i in range(0, rows, batch_size)]


def dataset_text(dataset, data_dir, n_tokens):
    """The first n_tokens of a prepared dataset's val split, decoded back to text (for the model's tokenizer)."""
    from data import list_shards, load_meta, read_shard
    from prepare import ensure_prepared, get_tokenizer
    folder = ensure_prepared(dataset, data_dir)
    _, decode = get_tokenizer(load_meta(data_dir, dataset))
    ids = []
    for path in list_shards(folder, "val") or list_shards(folder, "train"):
        ids.extend(read_shard(path)[:n_tokens - len(ids)].tolist())
        if len(ids) >= n_tokens:
            break
    return decode(ids)


def peak_memory_line(device):
    """Peak resident memory of this process (and peak CUDA memory on a GPU), in GiB."""
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_gib = rss / 2**30 if sys.platform == "darwin" else rss / 2**20  # bytes on macOS, KiB on Linux
    line = f"peak memory {rss_gib:.2f} GiB (process)"
    if str(device).startswith("cuda"):
        line += f", {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (GPU)"
    return line


HF_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


def hf_main(argv):
    start = time.perf_counter()
    ap = _Parser(prog="analyze.py hf",
                 description="Angular distance, layer drop, residual growth and excess kurtosis of a Hugging Face "
                             "causal LM (a hub name or a local folder) -> OUT_DIR/analysis.json and analysis_*.png")
    ap.add_argument("model", metavar="MODEL",
                    help="hub name (gpt2, EleutherAI/pythia-160m, Qwen/Qwen2.5-0.5B) or a model folder")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--text", default=None, help="a UTF-8 text file to analyze on")
    src.add_argument("--dataset", default="python_docs", help="a prepared dataset's val text (default python_docs, "
                                                               "made offline on first use)")
    ap.add_argument("--data_dir", default="data", help="parent folder of datasets")
    ap.add_argument("--out_dir", default=None, help="where to write (default analysis-hf/NAME)")
    ap.add_argument("--batches", type=int, default=2, help="batches to average over")
    ap.add_argument("--batch_size", type=int, default=4, help="sequences per batch")
    ap.add_argument("--block_size", type=int, default=128, help="tokens per sequence")
    ap.add_argument("--dtype", default="auto", choices=["auto", *HF_DTYPES],
                    help="auto: bfloat16 on a GPU, float32 on the CPU")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    ap.add_argument("--grad_norms", action="store_true", help="also per-block gradient norms (a backward pass: "
                                                              "about twice the memory)")
    ap.add_argument("--no_plots", action="store_true", help="write only analysis.json")
    args = ap.parse_args(argv)
    for key in ("batches", "batch_size", "block_size"):
        if getattr(args, key) < 1:
            ap.error(f"bad value {getattr(args, key)} for --{key}: must be >= 1")
    if args.text is not None and not os.path.isfile(args.text):
        ap.error(f"bad value '{args.text}' for --text: no such file")
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise SystemExit("error: analyze.py hf needs the optional package transformers: "
                         "pip install transformers") from None
    device = pick_device(args.device)
    dtype = HF_DTYPES.get(args.dtype) or (torch.bfloat16 if device == "cuda" else torch.float32)
    model, tokenizer = load_hf(args.model, dtype, device)
    config = model.hf.config
    family = hf_norm_family(config)
    L = len(model.transformer.h)
    print(f"{args.model}: {config.model_type}, {L} blocks, {model.hf.num_parameters() / 1e6:.1f}M parameters; "
          f"{family}; {dtype} on {device} (loaded in {time.perf_counter() - start:.1f}s)")
    max_len = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if max_len and args.block_size > max_len:
        ap.error(f"bad value {args.block_size} for --block_size: {args.model} takes at most {max_len} positions")
    need = args.batches * args.batch_size * (args.block_size + 1)
    if args.text is not None:
        with open(args.text, encoding="utf-8", errors="replace") as f:
            text = f.read()
    else:
        text = dataset_text(args.dataset, args.data_dir, 8 * need)  # 8x: any tokenizer has fewer tokens
    tokenizer.model_max_length = 10**12  # one long text, cut into rows below: no length warning
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    data = [(x.to(device), y.to(device)) for x, y in text_batches(ids, args.batches, args.batch_size, args.block_size)]
    result = analyze_model(model, data, grad_norms=args.grad_norms)
    out_dir = args.out_dir or os.path.join("analysis-hf", os.path.basename(os.path.normpath(args.model)))
    os.makedirs(out_dir, exist_ok=True)
    result = {"model": args.model, "model_type": config.model_type, "norm": family, "dtype": str(dtype),
              "device": device, "text": args.text or f"{args.dataset} (val)", "rows": sum(len(x) for x, _ in data),
              "block_size": args.block_size, **result}
    with open(os.path.join(out_dir, "analysis.json"), "w") as f:
        json.dump(result, f, indent=1)
    if not args.no_plots:
        result["plots"] = plot_analysis(result, out_dir, f"{os.path.basename(os.path.normpath(args.model))} L={L}:")
    print_summary(result, "loss", f"{result['rows']} sequences x {args.block_size} tokens", out_dir)
    print(f"took {time.perf_counter() - start:.1f}s; {peak_memory_line(device)}")


# --------------------------------------------------------------------------------------------
# checkpoint + dataset -> analysis.json (+ PNGs)


def pick_device(name):
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bad value 'cuda' for device: CUDA is not available here (choose auto or cpu)")
    return name


def analyze_checkpoint(out_dir, dataset=None, data_dir=None, batches=4, batch_size=8, split="val",
                       seed=1337, device="cpu", plots=True):
    """Load out_dir/ckpt.pt, analyze `batches` batches of `split`, write analysis.json (+ PNGs)."""
    from checkpoint import load_checkpoint
    from data import BatchSampler
    from prepare import ensure_prepared

    if batches < 1 or batch_size < 1:
        raise ValueError(f"batches and batch_size must be >= 1, got {batches} and {batch_size}")
    model, ckpt = load_checkpoint(out_dir, device)
    if next(model.parameters()).dtype in (torch.float16, torch.bfloat16):
        model = model.float()  # half-precision statistics (x^4, arccos) are too coarse
    cfg = ckpt.get("config", {})
    dataset = dataset or ckpt.get("dataset") or cfg.get("dataset")
    data_dir = data_dir or cfg.get("data_dir", "data")
    if not dataset:
        raise SystemExit(f"the checkpoint in {out_dir} names no dataset: pass --dataset=NAME")
    ensure_prepared(dataset, data_dir)
    sampler = BatchSampler(data_dir, dataset, split, batch_size, model.config.block_size, seed=seed)
    data = ((x.to(device), y.to(device)) for x, y in (sampler.batch(i) for i in range(batches)))
    result = analyze_model(model, data)
    result = {"checkpoint": os.path.join(out_dir, "ckpt.pt"), "iter_num": ckpt.get("iter_num"),
              "dataset": dataset, "split": split, "batch_size": batch_size,
              "block_size": model.config.block_size, "model_config": ckpt.get("model_config"), **result}
    with open(os.path.join(out_dir, "analysis.json"), "w") as f:
        json.dump(result, f, indent=1)
    if plots:
        c = model.config
        title = f"{c.norm}/{c.norm_pos}{'+LNS' if c.depth_scale else ''} L={c.n_layer}:"
        result["plots"] = plot_analysis(result, out_dir, title)
    return result


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        print(f"error: {message} (see python {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["curves"]:
        return curves_main(argv[1:])
    if argv[:1] == ["hf"]:
        return hf_main(argv[1:])
    ap = _Parser(prog="analyze.py",
                 description="Angular distance, layer drop, residual growth, per-block gradient norms and "
                             "excess kurtosis of a checkpoint -> out_dir/analysis.json and analysis_*.png",
                 epilog="Loss curves of runs side by side: python analyze.py curves DIR [DIR ...] [--out=curves.png]; "
                        "a Hugging Face model: python analyze.py hf MODEL [--text FILE | --dataset NAME] (--help)")
    ap.add_argument("--out_dir", default="out", help="folder with ckpt.pt (results are written there)")
    ap.add_argument("--dataset", default=None, help="dataset name (default: the checkpoint's)")
    ap.add_argument("--data_dir", default=None, help="parent folder of datasets (default: the checkpoint's)")
    ap.add_argument("--batches", type=int, default=4, help="batches to average over")
    ap.add_argument("--batch_size", type=int, default=8, help="sequences per batch")
    ap.add_argument("--split", default="val", choices=["train", "val"], help="data split")
    ap.add_argument("--seed", type=int, default=1337, help="seed of the batch sampler")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    ap.add_argument("--no_plots", action="store_true", help="write only analysis.json")
    args = ap.parse_args(argv)
    for key in ("batches", "batch_size"):
        if getattr(args, key) < 1:
            ap.error(f"bad value {getattr(args, key)} for --{key}: must be >= 1")
    if not os.path.exists(os.path.join(args.out_dir, "ckpt.pt")):
        ap.error(f"bad value '{args.out_dir}' for --out_dir: no ckpt.pt there")
    r = analyze_checkpoint(args.out_dir, args.dataset, args.data_dir, args.batches, args.batch_size, args.split,
                           args.seed, pick_device(args.device), plots=not args.no_plots)
    print_summary(r, f"{r['split']} loss", f"{r['batches']} x {r['batch_size']} sequences", args.out_dir)


def print_summary(r, label, what, out_dir):
    """The summary lines both commands print (an analyze_model result, `what` it was measured on)."""
    s = r["summary"]
    print(f"{label} {s['loss']:.4f} over {what}")
    print(f"layer drop: {100 * s['drop_share_lt1pct']:.0f}% of blocks cost < 1% of the loss when removed "
          f"(max {100 * s['drop_max_rel']:.1f}%)")
    print(f"angular distance of adjacent states: {s['ang_adjacent']:.3f} (all tokens), "
          f"{s['ang_adjacent_last']:.3f} (last token)")
    grad = s["grad_norm_first_over_last"]
    print(f"residual rms growth x_L/x_0: {s['rms_growth']:.2f}; "
          + (f"gradient norm first/last block: {grad:.2f}; " if grad is not None else "")
          + f"excess kurtosis mean {s['kurtosis_mean']:.2f} (max {s['kurtosis_max']:.2f})")
    print(f"wrote {os.path.join(out_dir, 'analysis.json')}"
          + (f" and {len(r['plots'])} analysis_*.png" if "plots" in r else ""))

if __name__ == "__main__":
    main()
