"""
The dry run's hardware plan of a train.py run: tokens, FLOPs, H100-hours, and the memory of one GPU.

    from study import hardware
    p = hardware.plan(run.args, run.config_file)      # one run: a dict (below)
    print("\n".join(hardware.describe(p)))             # its lines for ablate.py --dry_run
    print("\n".join(hardware.summary([p, ...])))       # the whole table

Time. tokens = max_iters x batch_size x gradient_accumulation_steps x block_size; FLOPs = tokens x
model.flops_per_token (PaLM appendix B: 6 x matmul weights + 12 L d T); evaluation adds eval_iters batches of
both splits every eval_interval steps, a forward only (1/3 of flops_per_token). GPU-hours = FLOPs / (H100 SXM
dense bf16 peak 989 TFLOP/s x MFU), the MFU of the model's size class (MFU_CLASSES: where each comes from).
Time on k GPUs with DDP is taken as GPU-hours / k (ideal scaling: not measured).

Memory of one GPU, in bytes (a: bytes of an activation in the compute dtype, 2 under bf16 autocast, 4 in
float32; w: bytes of a weight in the preset's weight_dtype; P parameters, B x T tokens of a micro-batch):
  weights w P, gradients w P, optimizer state AdamW 2 w P (two moments); Muon 1 w per hidden-matrix entry
  (momentum) + 2 w per other entry (AdamW), as optim.route_parameters splits them; with DDP (k > 1) also
  w P of gradient buckets (DistributedDataParallel's default copies the gradients into buckets);
  activations, the tensors autograd saves for backward in one eager forward (counted from model.py's code):
    per block, per token: 8 d bytes per norm (norms.py takes statistics in float32: the input's float32 copy
    and the normalised float32 product; 2 norms a Pre/Post/Mix/DeepNorm block, 4 with sandwich/peri,
    2 with reorder) + a (9 d + m): the attention's input, q k v (3 d, one buffer kept whole by the v view),
    q and k after RoPE (2 d), the SDPA output and its contiguous copy (2 d: flash/SDPA keeps no T x T
    matrix, only a float32 log-sum-exp, 4 bytes per head), the MLP's input (d) and m = 4 f for SwiGLU (the
    gate|up buffer 2 f, silu(gate) f, their product f; 2 f for gelu and relu2), f the MLP's hidden width;
    plus the token ids and targets (int64: 16 bytes), the final norm (8 d), the head's input (a d), the
    float32 log-softmax of the loss (4 V); under autocast with float32 weights also their bf16 copies
    (2 bytes per matmul weight, kept for backward);
  the loss's transients at the start of backward: (8 + a) V per token (the gradient of the log-softmax
    and of the float32 logits, and the logits' gradient in the compute dtype);
  a fixed CUDA_CONTEXT_GIB for the CUDA context and the cuBLAS/cuDNN workspaces (not measured here: ~0.5-1
    GiB is the usual size; it is outside torch.cuda.max_memory_allocated).
The activation count is for eager PyTorch; torch.compile (the presets' compile=True) fuses the norms and
usually saves less, so the plan is on the safe side there. tests/test_hardware.py checks the saved-tensor count
against autograd's own at small sizes on CPU; bench.py --suite=memory checks the peak against
torch.cuda.max_memory_allocated on a GPU.
A run fits a card when all of it is <= USABLE of the card's memory. Otherwise the plan takes the largest
smaller micro-batch that fits and divides the global batch over the GPUs (the global batch stays: more
accumulation); DDP does not lower the memory of a GPU (every rank holds the whole model, gradients and optimizer
state), so a run whose state alone does not fit needs sharding (FSDP/ZeRO), which train.py does not have.
The plan never changes a run's command: the micro-batch is part of the run's record, so the dry run prints the
`--set batch_size=M --set gradient_accumulation_steps=A` that runs the whole study at the micro-batch that fits
(summary, fit_flags), and a user passes it (the runs then go to folders suffixed with it).
"""

import math

GIB = 2 ** 30
H100_PEAK_FLOPS = 989e12   # H100 SXM dense bf16 (the same figure as the H200's)
CARD_GIB = 80              # H100 80GB
USABLE = 0.90              # the share a plan may fill: room for the caching allocator's fragmentation (assumed)
CUDA_CONTEXT_GIB = 1.0     # per process, outside the allocator (assumed, see above)
# (largest parameter count of the class, MFU, where it comes from)
MFU_CLASSES = (
    (200e6, 0.36, "measured: LLaMA-130M preset 35.9% MFU on an H200 (docs/gpu.md, commit aae0737; micro-batch "
                  "64 x 256, bf16 weights, compiled; the bench's vocabulary was 65, so the 32k head is not in it)"),
    (math.inf, 0.40, "extrapolated, not measured: GPT-2 124M measured 39.1-42.6% on an H200 (docs/gpu.md); "
                     "wider matmuls usually run closer to peak, nanochat reports 41-46% on H100 for d12-d18"),
)


def mfu_for(params):
    """(MFU, source) of the size class of a model with `params` parameters."""
    return next((mfu, source) for limit, mfu, source in MFU_CLASSES if params <= limit)


def build(args, config_file=None):
    """(GPTConfig-built model on the meta device, train config, optim config) of a train.py run: the same
    parsing as train.py; the vocabulary as studies.projection finds it (the T5 tokenizer's 32,000 for c4)."""
    import torch

    import train
    from model import GPT, GPTConfig
    argv = ([config_file] if config_file else []) + [f"--{k}={v}" for k, v in args.items()]
    cfg = train.parse_config(argv, GPTConfig, train.OptimConfig, train.TrainConfig)
    tc, oc = train.split_config(cfg, train.TrainConfig), train.split_config(cfg, train.OptimConfig)
    cfg["vocab_size"] = _vocab(tc)
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = GPT(train.split_config(cfg, GPTConfig))
    return model, tc, oc


def _vocab(tc):
    """The prepared dataset's vocabulary; before it is prepared, the T5 tokenizer's for c4, else a char one."""
    import prepare
    try:
        return prepare.load_meta(tc.data_dir, tc.dataset)["vocab_size"]
    except (OSError, ValueError):
        return prepare.T5_VOCAB if tc.dataset == "c4" else 256


def norms_per_block(norm_pos):
    return {"sandwich": 4, "peri": 4, "reorder": 2}.get(norm_pos, 2)


def saved_activation_bytes(c, tokens, a, mlp_hidden, autocast_weights=0):
    """Bytes autograd saves for backward in one forward of `tokens` positions (see the module docstring);
    c a GPTConfig, a the bytes of an activation, autocast_weights the matmul weights cast to bf16 (or 0)."""
    d, f, V = c.n_embd, mlp_hidden, c.vocab_size
    m = 4 * f if c.mlp == "swiglu" else 2 * f
    per_block = 8 * d * norms_per_block(c.norm_pos) + a * (9 * d + m) + 4 * c.n_head
    once = 16 + 8 * d + a * d + 4 * V
    return tokens * (c.n_layer * per_block + once) + 2 * autocast_weights


def state_bytes(model, w, optimizer, gpus):
    """(weights, gradients, optimizer state, DDP buckets) in bytes."""
    from optim import route_parameters
    params = sum(p.numel() for p in model.parameters())
    if optimizer in ("muon", "auon"):
        routes = route_parameters(model)
        matrices = sum(p.numel() for _, p in routes.get("hidden_matrix", []))
        opt = w * (matrices + 2 * (params - matrices))
    else:
        opt = 2 * w * params
    return w * params, w * params, opt, (w * params if gpus > 1 else 0)


def memory(model, tc, optimizer, micro_batch, gpus=1):
    """The memory of one GPU at a micro-batch, in bytes, by part."""
    import train
    c = model.config
    w = train.param_dtype(tc.dtype, tc.weight_dtype).itemsize
    a = 4 if tc.dtype in ("float32", "float64") else 2
    matmul = sum(m.weight.numel() for m in model.modules() if type(m).__name__ == "Linear")
    autocast_weights = matmul if (a == 2 and w == 4) else 0
    hidden = model.transformer.h[0].mlp.c_proj.in_features
    tokens = micro_batch * c.block_size
    weights, grads, opt, buckets = state_bytes(model, w, optimizer, gpus)
    parts = {"weights": weights, "gradients": grads, "optimizer": opt, "ddp_buckets": buckets,
             "activations": saved_activation_bytes(c, tokens, a, hidden, autocast_weights),
             "loss_transients": tokens * (8 + a) * c.vocab_size, "cuda_context": CUDA_CONTEXT_GIB * GIB}
    parts["total"] = sum(parts.values())
    return parts


def plan(args, config_file=None, gpus=1, card_gib=CARD_GIB):
    """The hardware plan of one run (train.py args and config file) on `gpus` GPUs with DDP."""
    model, tc, oc = build(args, config_file)
    c = model.config
    params = sum(p.numel() for p in model.parameters())
    per_token = model.flops_per_token()
    rows = tc.batch_size * tc.gradient_accumulation_steps  # the global batch, in sequences
    tokens = tc.max_iters * rows * c.block_size
    evals = (tc.max_iters // tc.eval_interval + 1) if tc.eval_interval else 0
    eval_tokens = evals * 2 * tc.eval_iters * tc.batch_size * c.block_size
    flops = tokens * per_token + eval_tokens * per_token / 3
    mfu, source = mfu_for(params)
    gpu_hours = flops / (H100_PEAK_FLOPS * mfu) / 3600
    budget = USABLE * card_gib * GIB
    at = lambda m: memory(model, tc, oc.optimizer, m, gpus)  # noqa: E731
    # the largest micro-batch <= the preset's that divides the global batch over the GPUs and fits
    micro = next((m for m in range(tc.batch_size, 0, -1) if rows % (m * gpus) == 0 and at(m)["total"] <= budget),
                 None)
    fits = micro is not None
    return {"params": params, "tokens": tokens, "eval_tokens": eval_tokens, "flops_per_token": per_token,
            "flops": flops, "mfu": mfu, "mfu_source": source, "gpu_hours": gpu_hours, "gpus": gpus,
            "card_gib": card_gib, "budget_gib": budget / GIB, "global_batch": rows, "preset_micro_batch": tc.batch_size,
            "preset_memory": {k: v / GIB for k, v in at(tc.batch_size).items()},
            "fits": fits, "micro_batch": micro if fits else None,
            "accumulation": rows // micro if fits else None,
            "memory": {k: v / GIB for k, v in at(micro or 1).items()}}


def fit_flags(micro_batch, accumulation):
    """The overrides that run a study at another micro-batch and accumulation: ablate.py's --set (the runs then go
    to folders suffixed with them, and their run records say so) and train.py's own flags."""
    return (f"--set batch_size={micro_batch} --set gradient_accumulation_steps={accumulation}",
            f"--batch_size={micro_batch} --gradient_accumulation_steps={accumulation}")


def hours(h):
    """Hours for a reader: two significant digits under 10, whole hours above."""
    return f"{h:.2g}" if h < 10 else f"{h:,.0f}"


def describe(p):
    """The plan as lines (no leading '#')."""
    pm, k = p["preset_memory"], p["gpus"]
    ddp = k if k > 1 else 8
    lines = [f"plan: {p['params'] / 1e6:,.1f}M parameters; {p['tokens']:,} tokens x {p['flops_per_token'] / 1e6:,.0f} "
             f"MFLOP/token + {p['eval_tokens'] / 1e9:.2f}B evaluated = {p['flops']:.3g} FLOPs: {hours(p['gpu_hours'])} "
             f"H100-hours at {p['mfu']:.0%} MFU (the size class's), {hours(p['gpu_hours'] / ddp)} h on {ddp} GPUs with DDP "
             f"(ideal scaling)",
             f"memory per GPU at micro-batch {p['preset_micro_batch']}"
             + (f" on {k} GPUs" if k > 1 else "") + f": {pm['total']:.1f} GiB = weights "
             f"{pm['weights']:.1f} + gradients {pm['gradients']:.1f} + optimizer {pm['optimizer']:.1f}"
             + (f" + DDP buckets {pm['ddp_buckets']:.1f}" if pm["ddp_buckets"] else "")
             + f" + activations {pm['activations']:.1f} + loss {pm['loss_transients']:.1f} + CUDA context "
               f"{pm['cuda_context']:.1f}"]
    if p["fits"] and p["micro_batch"] == p["preset_micro_batch"]:
        lines.append(f"fits one {p['card_gib']} GB card ({p['budget_gib']:.0f} GiB usable) as the preset: micro-batch "
                     f"{p['micro_batch']} x {p['accumulation']} accumulation = {p['global_batch']} sequences")
    elif p["fits"]:
        study_flags, train_flags = fit_flags(p["micro_batch"], p["accumulation"])
        lines.append(f"does not fit one {p['card_gib']} GB card at the preset's micro-batch"
                     + (f" over {k} GPUs" if k > 1 else "") + f"; fits at micro-batch {p['micro_batch']} x "
                     f"{p['accumulation']} accumulation (same {p['global_batch']} sequences, "
                     f"{p['memory']['total']:.1f} GiB): ablate.py {study_flags} (train.py {train_flags})")
    else:
        lines.append(f"does not fit one {p['card_gib']} GB card even at micro-batch 1: DDP keeps all of it on every "
                     f"GPU; it needs sharding (FSDP/ZeRO), which train.py does not have")
    return lines


def smaller_micro_batch(plans):
    """(micro-batch, accumulation) that fits every plan, when some do not fit at the preset's micro-batch (the
    smallest any of them needs: memory grows with the micro-batch, and the divisibility of the global batch is the
    same for all the runs of a study); None when every plan fits as it is, or one fits at no micro-batch."""
    if not plans or not all(p["fits"] for p in plans):
        return None
    smaller = [p for p in plans if p["micro_batch"] < p["preset_micro_batch"]]
    if not smaller:
        return None
    micro = min(p["micro_batch"] for p in smaller)
    return micro, smaller[0]["global_batch"] // micro


def summary(plans):
    """The whole table's lines: GPU-hours, the largest memory, and the one --set that makes every run fit."""
    if not plans:
        return []
    hours = sum(p["gpu_hours"] for p in plans)
    worst = max(p["preset_memory"]["total"] for p in plans)
    fit = sum(p["fits"] and p["micro_batch"] == p["preset_micro_batch"] for p in plans)
    lines = [f"plan of the table: {len(plans)} run(s) to train, {hours:,.1f} H100-hours ({hours / 8:,.1f} h on a node "
             f"of 8), largest memory {worst:.1f} GiB per GPU; {fit} of {len(plans)} fit one {plans[0]['card_gib']} GB "
             f"card at the preset's micro-batch; MFU: {'; '.join(sorted({p['mfu_source'] for p in plans}))}"]
    smaller = smaller_micro_batch(plans)
    if smaller:
        lines.append(f"to fit them all on one {plans[0]['card_gib']} GB card, add {fit_flags(*smaller)[0]} to this "
                     f"command (the same global batch of {plans[0]['global_batch']} sequences; the runs then go to "
                     f"folders suffixed with it)")
    elif not all(p["fits"] for p in plans):
        lines.append(f"{sum(not p['fits'] for p in plans)} run(s) fit no micro-batch on one {plans[0]['card_gib']} GB "
                     f"card: they need sharding (FSDP/ZeRO), which train.py does not have")
    return lines
