"""
The ablation studies: what each study trains at each scale (launch.train_command makes a run's train.py command).

    plan(study, scale, depths, overrides) -> [Run], one per depth (depth study), seed and variant, each with
    train.py arguments {**scale base, **study settings, **variant, **papers_code, n_layer, seed, **overrides}
    (later keys win: a --set override always does)

Studies: norm (ln vs rms vs rms+zero_mean vs crms, Jiang et al. 2023), depth (pre/post/mix/LNS/sandwich/peri/
deepnorm: Curse of Depth, Mix-LN) and optim (adamw, muon, muon+ss, muon+ss+emb_proj: OSP). Scales: cpu (a
6 x 128 char-level model, minutes on 2 CPU cores), cpu_deep and gpu_short (depth study only: 24 layers,
Pre-LN/LNS/Mix-LN/Post-LN, two seeds each, one whole seed first), and the papers' sizes 71m, 130m, 250m, 350m, 1b
(config/llama-<size>.py; the depth study's c4 runs at the preset's depth carry the published C4 perplexity,
PAPER_SCALES, to write beside ours; study/hardware.py plans their GPUs and memory for the dry run).

The dry run's size of a gpu_short run (projection): tokens = max_iters x batch_size x gradient_accumulation_steps
x block_size; FLOPs = tokens x model.flops_per_token; seconds at GPU_SHORT_MFU. The papers' sizes get
study/hardware.py's plan instead (H100-hours at the size class's MFU, memory per GPU).
ablate.py runs the plans; findings.py plans its table from the same settings and variants.
"""

import itertools
from dataclasses import dataclass, field

from study.launch import train_args


STUDIES = ("norm", "depth", "optim", "findings")
SCALES = ("cpu", "cpu_deep", "gpu_short", "71m", "130m", "250m", "350m", "1b")

# CPU preset: a char-level model small enough that each whole study fits the time in its comment on
# 2 (shared) CPU cores; float32 so that the norm study's differences are float32 rounding only.
CPU_BASE = dict(dataset="corpus_char", n_layer=6, n_head=4, n_embd=128, block_size=64, batch_size=16,
                dropout=0.0, learning_rate=2e-3, min_lr=2e-4, muon_lr=0.02, warmup_iters=30, lr_schedule="cosine",
                eval_interval=50, eval_iters=8, log_interval=10, dtype="float32", device="cpu", compile=False,
                always_save_checkpoint=True, seed=1337)
# the depth and optim papers train LLaMA-style models; the untied head matters here: with a tied head,
# Post-LN and DeepNorm stall at the unigram loss on this CPU preset (their early-block gradients vanish)
LLAMA = dict(norm="rms", pos_emb="rope", mlp="swiglu", bias=False, tie_embeddings=False)
CPU_STUDY = {
    "norm": dict(max_iters=400),                                     # 4 runs, ~6-8 min
    "depth": dict(max_iters=200, **LLAMA),                           # 7 variants x depths 6, 12: ~17-20 min
    "optim": dict(max_iters=400, muon_momentum_warmup=50, **LLAMA),  # 4 runs, ~8 min
}
# cpu_deep (depth study only): deep and narrow enough for the curse of depth to show on one CPU thread
# (issue 11, item 5): 24 layers x 64 wide, 800 steps, two seeds of the four configurations the papers compare;
# quick_metrics every 100 steps tracks the removable-block share and the stream growth over training.
# Batch 12 x 64 characters keeps a run at ~4 minutes on one AVX2 thread (8 runs: ~32 minutes).
DEEP_BASE = dict(CPU_BASE, **LLAMA, n_layer=24, n_head=4, n_embd=64, block_size=64, batch_size=12, max_iters=800,
                 warmup_iters=80, eval_interval=100, eval_iters=4, analyze_interval=100)
DEEP_VARIANTS = ("pre", "pre_lns", "mix", "post")
DEEP_SEEDS = (1337, 1338)
# gpu_short (depth study only, issue 19): Pre-LN, LNS, Mix-LN and Post-LN, 2 seeds, 24 layers x 512 wide, that fit
# a short loan of one H100/H200 in <= 8 minutes, start-up and analysis included. The arithmetic, from the H200
# figure of the 130M LLaMA preset (659k tokens/s bf16 compiled = 659k x 686 MFLOP/token = 452 TFLOP/s, 46% MFU):
#   24 x 512 with the char vocabulary: 6 x 24 x 12 x 512^2 + attention = ~0.53 GFLOP/token;
#   not compiled (torch.compile of a 24-block model costs ~1 min per variant, more than a 30 s run saves), so
#   planned at 25% MFU: 989e12 x 0.25 / 0.53e9 = ~470k tokens/s;
#   480 steps x 32 x 512 = 7.9M tokens (about one pass over the books' 7.9M training characters): ~17 s a run;
#   + ~25 s a run for the Python/CUDA start-up, evaluations, checkpoint and analysis;
#   8 runs x ~42 s = ~5.6 minutes, leaving 2.4 minutes of margin for a slower eager step.
# --dry_run prints this projection from each run's FLOPs (model.flops_per_token).
GPU_SHORT_BASE = dict(CPU_BASE, **LLAMA, n_layer=24, n_head=8, n_embd=512, block_size=512, batch_size=32,
                      max_iters=480, learning_rate=1e-3, min_lr=1e-4, warmup_iters=48, eval_interval=80, eval_iters=10,
                      log_interval=20, analyze_interval=160, dtype="bfloat16", device="cuda", compile=False,
                      always_save_checkpoint=False)
GPU_SHORT_MFU = 0.25          # eager bf16, see above
GPU_SHORT_PEAK_FLOPS = 989e12  # H100 SXM / H200 dense bf16
GPU_SHORT_OVERHEAD_S = 25      # per run: start-up, evaluations, checkpoint, analysis
GPU_SHORT_BUDGET_MIN = 8
# 130M preset: the LLaMA-130M setup of the Curse-of-Depth / Mix-LN papers (config/llama-130m.py) on one GPU
BIG_CONFIG = "config/llama-130m.py"
BIG_BASE = dict(dataset="c4", always_save_checkpoint=True)  # the papers' data: prepare.py c4
BIG_STUDY = {"norm": {}, "depth": {}, "optim": {}}
# the papers' DeepNorm row ran their code's variant (alpha 2*sqrt(2), xavier gain (8L)^(1/4)): model.deepnorm_init
BIG_DEEPNORM = dict(deepnorm_variant="papers_code")
# Published C4 validation perplexity of the 130M depth-study runs (12 layers): Sun et al. 2025, "The Curse of
# Depth in Large Language Models", Table 1 (Mix-LN's paper reports the same setup); written beside ours.
PAPER_PPL_130M = {"post": 26.95, "deepnorm": 27.17, "mix": 26.07, "pre": 26.73, "pre_lns": 25.76}
PAPER_SOURCE = "Sun et al. 2025, The Curse of Depth in LLMs, Table 1 (C4 val ppl, LLaMA-130M)"
# Every size of the papers' tables (issue 26): scale -> (preset, its n_layer, published C4 val ppl, source).
# Rows without a number (sandwich, peri; LNS at 71M) have none published at that size.
SUN = "Sun et al. 2025, The Curse of Depth in LLMs, Table 1 (C4 val ppl, LLaMA-{})"
PAPER_SCALES = {
    "71m": ("config/llama-71m.py", 12, {"post": 35.18, "deepnorm": 34.87, "pre": 34.77, "mix": 33.12},
            "Li et al. 2025, Mix-LN, Table 1 (C4 val ppl, LLaMA-71M; as RESEARCH.md transcribes it); "
            "no LNS number is published at 71M"),
    "130m": (BIG_CONFIG, 12, PAPER_PPL_130M, PAPER_SOURCE),
    "250m": ("config/llama-250m.py", 24, {"post": 1409.79, "deepnorm": 22.77, "mix": 21.39, "pre": 21.92,
                                          "pre_lns": 20.35}, SUN.format("250M")),
    "350m": ("config/llama-350m.py", 24, {"post": 1368.33, "deepnorm": 1362.59, "mix": 1363.21, "pre": 19.58,
                                          "pre_lns": 18.20}, SUN.format("350M")),
    "1b": ("config/llama-1b.py", 24, {"post": 1390.75, "deepnorm": 1409.08, "mix": 1414.78, "pre": 17.02,
                                      "pre_lns": 15.71}, SUN.format("1B, 1.34B parameters")),
}
ANALYSIS = {"cpu": dict(batches=2, batch_size=8), "cpu_deep": dict(batches=2, batch_size=8),
            "gpu_short": dict(batches=4, batch_size=16), **{s: dict(batches=8, batch_size=16) for s in PAPER_SCALES}}
DEFAULT_DEPTHS = {"cpu": [6, 12], "cpu_deep": [24], "gpu_short": [24], **{s: [v[1]] for s, v in PAPER_SCALES.items()}}
EXACTNESS_TEST = "tests/test_model.py::test_pre_ln_rms_crms_train_identically"


@dataclass
class Run:
    name: str                 # folder name and table row
    args: dict                # train.py --key=value
    config_file: str | None = None
    group: str = ""           # runs compared on one plot (depth study: one group per depth)
    label: str = ""           # legend text
    extra: dict = field(default_factory=dict)


def variants(study):
    """(name, label, train.py args) of one study, before the depth suffix."""
    if study == "norm":
        return [("ln", "Pre-LN", dict(norm="ln", norm_pos="pre", zero_mean=False)),
                ("rms", "Pre-RMS (plain)", dict(norm="rms", norm_pos="pre", zero_mean=False)),
                ("rms_zm", "Pre-RMS + zero_mean", dict(norm="rms", norm_pos="pre", zero_mean=True)),
                ("crms", "Pre-CRMS", dict(norm="crms", norm_pos="pre"))]
    if study == "depth":
        # LayerNorm Scaling is used without GPT-2's scaled init (Sun et al. found the pair slightly worse)
        return [("pre", "Pre-LN", dict(norm_pos="pre", depth_scale=False)),
                ("post", "Post-LN", dict(norm_pos="post", depth_scale=False)),
                ("mix", "Mix-LN (0.25)", dict(norm_pos="mix", depth_scale=False)),
                ("pre_lns", "Pre-LN + LNS", dict(norm_pos="pre", depth_scale=True, scaled_init=False)),
                ("sandwich", "Sandwich-LN", dict(norm_pos="sandwich", depth_scale=False)),
                ("peri", "Peri-LN", dict(norm_pos="peri", depth_scale=False)),
                ("deepnorm", "DeepNorm", dict(norm_pos="deepnorm", depth_scale=False))]
    if study == "optim":
        return [("adamw", "AdamW", dict(optimizer="adamw")),
                ("muon", "Muon", dict(optimizer="muon")),
                ("muon_ss", "Muon + SSNorm", dict(optimizer="muon", norm="ss")),
                ("muon_ss_ep", "Muon + SSNorm + EmbProj", dict(optimizer="muon", norm="ss", emb_proj=True))]
    raise SystemExit(f"bad study '{study}': choose from {', '.join(STUDIES)}")


def plan(study, scale, depths, overrides):
    """The runs of a study at a scale; overrides (--set) are applied to every run last."""
    names = variants(study)
    seeds = [None]
    if scale == "cpu":
        config_file, base = None, {**CPU_BASE, **CPU_STUDY[study]}
    elif scale in ("cpu_deep", "gpu_short"):
        if study != "depth":
            raise SystemExit(f"bad scale '{scale}' for the {study} study: it is for the depth study only "
                             f"(choose cpu or one of the papers' sizes: {', '.join(PAPER_SCALES)})")
        config_file, seeds = None, DEEP_SEEDS
        base = dict(DEEP_BASE) if scale == "cpu_deep" else dict(GPU_SHORT_BASE)
        names = [v for v in names if v[0] in DEEP_VARIANTS]
    elif scale in PAPER_SCALES:
        config_file, base = PAPER_SCALES[scale][0], {**BIG_BASE, **BIG_STUDY[study]}
    else:
        raise SystemExit(f"bad scale '{scale}': choose from {', '.join(SCALES)}")
    runs = []
    for L in (depths or DEFAULT_DEPTHS[scale]) if study == "depth" else [None]:
        for seed, (name, label, args) in itertools.product(seeds, names):  # seed outer: one whole seed first
            papers_code = BIG_DEEPNORM if scale in PAPER_SCALES and args.get("norm_pos") == "deepnorm" else {}
            a = {**base, **args, **papers_code, **({"n_layer": L} if L else {}), **({"seed": seed} if seed else {}),
                 **overrides}
            suffix = (f"_L{L}" if L else "") + (f"_s{seed}" if seed else "")
            extra = {"config": name + (f"_L{L}" if L else "")} if seed else {}
            _, layers, published, _ = PAPER_SCALES.get(scale, (None, None, {}, None))
            if study == "depth" and name in published and a.get("n_layer") == layers \
                    and a.get("dataset") == "c4":  # the paper's number only where the setup is the paper's
                extra = {"paper_val_ppl": published[name]}
            runs.append(Run(name + suffix, a, config_file, group=f"L{L}" if L else "", label=label, extra=extra))
    return runs


def projection(run):
    """Tokens, FLOPs per token (PaLM appendix B, as GPT.flops_per_token) and total FLOPs of a run, from its
    config: tokens = max_iters x batch_size x gradient_accumulation_steps x block_size. The vocabulary is the
    prepared dataset's, else the T5 tokenizer's 32,000 for c4 (as train.py would read from its meta.json)."""
    import torch

    import prepare
    import train
    from model import GPT, GPTConfig
    cfg = train.parse_config(train_args(run), GPTConfig, train.OptimConfig, train.TrainConfig)
    tc = train.split_config(cfg, train.TrainConfig)
    try:
        cfg["vocab_size"] = prepare.load_meta(tc.data_dir, tc.dataset)["vocab_size"]
    except (OSError, ValueError):
        if tc.dataset == "c4":
            cfg["vocab_size"] = prepare.T5_VOCAB
        elif tc.dataset in ("corpus_char", "python_docs") or tc.dataset.endswith("_char"):
            cfg["vocab_size"] = 256  # not prepared yet: a char vocabulary is at most a few hundred symbols
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = GPT(train.split_config(cfg, GPTConfig))
    tokens = tc.max_iters * tc.batch_size * tc.gradient_accumulation_steps * model.config.block_size
    per_token = model.flops_per_token()
    return {"tokens": tokens, "flops_per_token": per_token, "flops": tokens * per_token}
