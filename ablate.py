"""
Run a named ablation study as a sequence of train.py runs, analyze each run, and write the tables.

    python ablate.py norm  --scale=cpu                 # ln vs rms vs rms+zero_mean vs crms (Jiang et al. 2023)
    python ablate.py depth --scale=cpu --depths=6,12   # pre/post/mix/LNS/sandwich/peri/deepnorm (Curse of Depth, Mix-LN)
    python ablate.py optim --scale=cpu                 # adamw, muon, muon+ss, muon+ss+emb_proj (OSP)
    python ablate.py depth --scale=cpu_deep            # pre/LNS/mix/post, 24 x 64, 800 steps, 2 seeds (~32 min)
    python ablate.py depth --scale=130m --dry_run      # commands, tokens, FLOPs, H100 hours at 40% MFU

At --scale=cpu_deep (depth study only) every configuration runs with two seeds; results.md adds their mean and
spread (max - min) and, from train.py's --analyze_interval eval rows, the share of removable blocks and the
stream growth rms(x_L)/rms(x_0) over training (trajectories.png), plus the final per-layer profiles (profiles.png).

At --scale=130m the depth study writes the paper's C4 perplexity (Sun et al. 2025, Table 1) beside ours for
the runs that have one (12 layers on c4: pre, post, mix, pre_lns, deepnorm).

Each run is `python train.py [config file] --key=value ...` with out_dir runs_dir/<run> (default
ablations/<study>_<scale>/<run>). A run is finished when its folder holds ckpt.pt and a `done` marker
(written here after train.py exits 0): finished runs are skipped, an interrupted run with a ckpt.pt is
continued with --init_from=resume. Then analyze.py measures every run (angular distance, layer drop,
residual growth, per-block gradient norms, excess kurtosis) and results/<study>_<scale>/ gets
results.md (tables), summary.json and plots (loss curves of all runs on one axis; analysis plots side
by side).
Metrics: final val loss and perplexity exp(val loss); ms/iter = median of log.jsonl's train rows
(the first row, which holds start-up costs, is left out); the norm study also gives the largest
|train loss difference| between runs at equal logged iterations (ln, rms+zero_mean and crms are the
same function of the same parameters, so they differ only by float rounding; the float64 proof is
tests/test_model.py::test_pre_ln_rms_crms_train_identically, which is run and reported).
"""

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

STUDIES = ("norm", "depth", "optim")
SCALES = ("cpu", "cpu_deep", "130m")

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
# --dry_run projection: H100 SXM dense bf16 peak at a stated model FLOPs utilization
H100_PEAK_FLOPS = 989e12
DRY_RUN_MFU = 0.40
ANALYSIS = {"cpu": dict(batches=2, batch_size=8), "cpu_deep": dict(batches=2, batch_size=8),
            "130m": dict(batches=8, batch_size=16)}
DEFAULT_DEPTHS = {"cpu": [6, 12], "cpu_deep": [24], "130m": [12]}
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
    elif scale == "cpu_deep":
        if study != "depth":
            raise SystemExit(f"bad scale 'cpu_deep' for the {study} study: it is for the depth study only "
                             f"(choose cpu or 130m)")
        config_file, base, seeds = None, dict(DEEP_BASE), DEEP_SEEDS
        names = [v for v in names if v[0] in DEEP_VARIANTS]
    elif scale == "130m":
        config_file, base = BIG_CONFIG, {**BIG_BASE, **BIG_STUDY[study]}
    else:
        raise SystemExit(f"bad scale '{scale}': choose from {', '.join(SCALES)}")
    runs = []
    for L in (depths or DEFAULT_DEPTHS[scale]) if study == "depth" else [None]:
        for seed, (name, label, args) in itertools.product(seeds, names):  # seed outer: one whole seed first
            papers_code = BIG_DEEPNORM if scale == "130m" and args.get("norm_pos") == "deepnorm" else {}
            a = {**base, **args, **papers_code, **({"n_layer": L} if L else {}), **({"seed": seed} if seed else {}),
                 **overrides}
            suffix = (f"_L{L}" if L else "") + (f"_s{seed}" if seed else "")
            extra = {"config": name + (f"_L{L}" if L else "")} if seed else {}
            if scale == "130m" and study == "depth" and name in PAPER_PPL_130M and a.get("n_layer", 12) == 12 \
                    and a.get("dataset") == "c4":  # the paper's number only where the setup is the paper's
                extra = {"paper_val_ppl": PAPER_PPL_130M[name]}
            runs.append(Run(name + suffix, a, config_file, group=f"L{L}" if L else "", label=label, extra=extra))
    return runs


def fmt(v):
    return str(v)  # True/False/numbers/strings: all read back by configurator.py's literal parsing


def train_command(run, out_dir, resume=False):
    cmd = [sys.executable, "train.py"] + ([run.config_file] if run.config_file else [])
    cmd += [f"--{k}={fmt(v)}" for k, v in run.args.items()]
    cmd += [f"--out_dir={out_dir}"] + (["--init_from=resume"] if resume else [])
    return cmd


def projection(run):
    """Tokens, FLOPs per token (PaLM appendix B, as GPT.flops_per_token) and total FLOPs of a run, from its
    config: tokens = max_iters x batch_size x gradient_accumulation_steps x block_size. The vocabulary is the
    prepared dataset's, else the T5 tokenizer's 32,000 for c4 (as train.py would read from its meta.json)."""
    import torch

    import prepare
    import train
    from model import GPT, GPTConfig
    argv = ([run.config_file] if run.config_file else []) + [f"--{k}={fmt(v)}" for k, v in run.args.items()]
    cfg = train.parse_config(argv, GPTConfig, train.OptimConfig, train.TrainConfig)
    tc = train.split_config(cfg, train.TrainConfig)
    try:
        cfg["vocab_size"] = prepare.load_meta(tc.data_dir, tc.dataset)["vocab_size"]
    except (OSError, ValueError):
        if tc.dataset == "c4":
            cfg["vocab_size"] = prepare.T5_VOCAB
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = GPT(train.split_config(cfg, GPTConfig))
    tokens = tc.max_iters * tc.batch_size * tc.gradient_accumulation_steps * model.config.block_size
    per_token = model.flops_per_token()
    return {"tokens": tokens, "flops_per_token": per_token, "flops": tokens * per_token,
            "h100_hours": tokens * per_token / (H100_PEAK_FLOPS * DRY_RUN_MFU) / 3600}


def run_train(cmd, log_path, threads=None):
    """Run train.py, keep its whole output in log_path, echo eval/done/error lines. Returns the exit code."""
    env = thread_env(threads)
    with open(log_path, "a") as log, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                      text=True, bufsize=1, env=env) as p:
        for line in p.stdout:
            log.write(line)
            if line.startswith(("eval", "done", "error", "Traceback")) or "Error" in line:
                print("    " + line.rstrip(), flush=True)
        return p.wait()


def read_log(out_dir):
    rows = []
    path = os.path.join(out_dir, "log.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if "loss" in r], [r for r in rows if "val_loss" in r]


def ensure_dataset(args):
    """The CPU studies' corpus_char is prepared on first use: `prepare.py books --name corpus_char` (four
    public-domain books, downloaded once into data/_downloads and checked against their SHA-256). Without
    the books (offline, or a download that fails its checksum) the studies run on python_docs, said in one
    line. Local copies: run `python prepare.py books --input FOLDER --name corpus_char` first."""
    name, data_dir = args.get("dataset"), args.get("data_dir", "data")
    if name != "corpus_char" or os.path.isdir(os.path.join(data_dir, name)):
        return name
    import prepare
    print(f"preparing {os.path.join(data_dir, name)}: python prepare.py books --name {name} --data_dir {data_dir}",
          flush=True)
    try:
        return os.path.basename(prepare.prepare("books", name=name, data_dir=data_dir))
    except SystemExit as e:  # a download that failed its checksum: one line, then the offline data
        if not isinstance(e.code, str):
            raise
        print(f"{e.code}\nusing the offline python_docs dataset instead of {name}", flush=True)
        return os.path.basename(prepare.ensure_prepared("python_docs", data_dir))


# --------------------------------------------------------------------------------------------
# training and analysis of every run

def execute(runs, runs_dir, analysis=None, device="cpu", threads=None):
    """Train (or skip) and analyze every run; returns {name: record}."""
    records = {}
    for i, run in enumerate(runs):
        out_dir = os.path.join(runs_dir, run.name)
        done_path = os.path.join(out_dir, "done")
        finished = os.path.exists(done_path) and os.path.exists(os.path.join(out_dir, "ckpt.pt"))
        resume = not finished and os.path.exists(os.path.join(out_dir, "ckpt.pt"))
        cmd = train_command(run, out_dir, resume)
        shown = " ".join(cmd[1:])
        record = {"cmd": "python " + " ".join(train_command(run, out_dir)[1:])}
        if finished:
            with open(done_path) as f:
                marker = json.load(f)
            if marker.get("args") != {k: fmt(v) for k, v in run.args.items()}:
                raise SystemExit(f"{out_dir} was trained with other settings than this study now asks for; "
                                 f"delete it or pass another --runs_dir")
            print(f"[{i + 1}/{len(runs)}] {run.name}: done, skipped", flush=True)
            record["wall_s"] = marker.get("wall_s")
        else:
            os.makedirs(out_dir, exist_ok=True)
            print(f"[{i + 1}/{len(runs)}] {run.name}: python {shown}", flush=True)
            t0 = time.time()
            rc = run_train(cmd, os.path.join(out_dir, "train.log"), threads)
            wall = time.time() - t0
            if rc != 0:
                print(f"    {run.name} failed (exit {rc}); see {os.path.join(out_dir, 'train.log')}", flush=True)
                records[run.name] = {**record, "failed": rc, "wall_s": wall}
                continue
            if not os.path.exists(os.path.join(out_dir, "ckpt.pt")):
                raise SystemExit(f"train.py exited 0 but wrote no {out_dir}/ckpt.pt (save_checkpoint=False?)")
            with open(done_path + ".tmp", "w") as f:
                json.dump({"args": {k: fmt(v) for k, v in run.args.items()}, "cmd": record["cmd"],
                           "wall_s": wall}, f)
            os.replace(done_path + ".tmp", done_path)
            record["wall_s"] = wall
            print(f"    {run.name}: trained in {wall:.0f} s", flush=True)
        record["analysis"] = analyze_run(run, out_dir, analysis or ANALYSIS["cpu"], device)
        records[run.name] = record
    return records


def analyze_run(run, out_dir, analysis, device):
    """analysis.json of the run (recomputed when missing or older than ckpt.pt)."""
    import analyze
    path = os.path.join(out_dir, "analysis.json")
    ckpt = os.path.join(out_dir, "ckpt.pt")
    if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(ckpt):
        with open(path) as f:
            return json.load(f)
    t0 = time.time()
    r = analyze.analyze_checkpoint(out_dir, dataset=run.args.get("dataset"), data_dir=run.args.get("data_dir"),
                                   batches=analysis["batches"], batch_size=analysis["batch_size"], split="val",
                                   device=device, plots=True)
    print(f"    analyzed {run.name} in {time.time() - t0:.0f} s", flush=True)
    return r


def read_analysis(out_dir):
    """The run's analysis.json (analyze.py's output), or None when the run has none."""
    path = os.path.join(out_dir, "analysis.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------
# tables and plots

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


def max_loss_diff(a_dir, b_dir):
    """Largest |train loss difference| at equal logged iterations (and at equal eval iterations)."""
    (ta, ea), (tb, eb) = read_log(a_dir), read_log(b_dir)
    la, lb = {r["iter"]: r["loss"] for r in ta}, {r["iter"]: r["loss"] for r in tb}
    va, vb = {r["iter"]: r["val_loss"] for r in ea}, {r["iter"]: r["val_loss"] for r in eb}
    common = sorted(set(la) & set(lb))
    return {"train": max((abs(la[i] - lb[i]) for i in common), default=None), "iters": len(common),
            "val": max((abs(va[i] - vb[i]) for i in set(va) & set(vb)), default=None)}


def thread_env(threads):
    env = dict(os.environ)
    if threads:  # torch's intra-op threads; on a busy shared CPU one thread is many times faster than two
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def exactness_test(threads=None):
    """Run the float64 equivalence test of tests/test_model.py and return its one-line verdict."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", EXACTNESS_TEST],
                         capture_output=True, text=True, env=thread_env(threads))
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return {"test": EXACTNESS_TEST, "returncode": out.returncode, "summary": lines[-1] if lines else out.stderr[-200:]}


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

    if study == "norm":  # the three equivalent runs differ only by rounding: show |difference| to ln
        fig, ax = plt.subplots(figsize=(7, 4))
        tr_ln = {r["iter"]: r["loss"] for r in read_log(os.path.join(runs_dir, "ln"))[0]}
        for k, name in enumerate(("rms", "rms_zm", "crms")):
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
        if study == "optim" and max(max(res[r.name]["kurtosis_raw"]) for r in group) > 20:
            axes[2].set_yscale("symlog")
        for ax in axes:
            ax.legend(fontsize=7)
        save(fig, f"depth_curves{sfx}.png")
    return paths


# seeds of one configuration (cpu_deep): mean and spread, and the quick metrics over training

DROP_THRESHOLD = 0.01  # a block is "removable" when dropping it raises the loss by less than 1% (analyze.py's share)
TRACKED = ("val_loss", "drop_share_lt1pct", "rms_growth", "ang_adjacent", "drop_max_rel")  # eval-row keys


def by_config(runs):
    """{config: [runs]} for runs that carry a seed (extra["config"]), in plan order."""
    groups = {}
    for run in runs:
        if "config" in run.extra:
            groups.setdefault(run.extra["config"], []).append(run)
    return groups


def mean_spread(values):
    """(mean, max - min) of the finite values, (None, None) when there are none."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    return sum(values) / len(values), max(values) - min(values)


def trajectory(out_dir):
    """The eval rows that carry analyze.quick_metrics (train.py --analyze_interval): {key: [values]} by iter."""
    rows = [r for r in read_log(out_dir)[1] if "drop_share_lt1pct" in r]
    return {"iter": [r["iter"] for r in rows], **{k: [r.get(k) for r in rows] for k in TRACKED}}


def deep_half_removable(out_dir):
    """Share of the deeper half of the blocks (l >= L/2) whose removal costs < 1%: the papers' claim is about
    deep blocks. None without the run's analysis.json."""
    analysis = read_analysis(out_dir)
    if analysis is None:
        return None
    rel = analysis["layer_drop"]["rel"]
    deep = rel[len(rel) // 2:]
    return sum(r < DROP_THRESHOLD for r in deep) / len(deep)


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
        if entry["mean"] is None:
            return "-"
        return f"{entry['mean']:.{digits}f} ({entry['spread']:.{digits}f})"
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
        ax.legend(fontsize=8)
    paths.append(save_figure(plt, fig, os.path.join(results_dir, "profiles.png")))
    return paths


def write_results(study, scale, runs, records, runs_dir, results_dir, commands, wall, exact=None):
    os.makedirs(results_dir, exist_ok=True)
    metrics = {r.name: run_metrics(r, records.get(r.name, {"cmd": ""}), os.path.join(runs_dir, r.name))
               for r in runs}
    md = [f"# {study} study, scale {scale}", "",
          f"Command: `{commands}`  ",
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
    plots = []
    if by_config(runs):  # several seeds per configuration (cpu_deep): their mean, spread and trajectories
        seeds = seed_summary(runs, metrics, runs_dir)
        extra["by_config"] = seeds
        md += seed_tables(seeds, int(runs[0].args.get("n_layer", 0)))
        md += ["Removable share: blocks whose removal raises the loss by < 1% (final: the analysis batches; over "
               "training: one val batch of train.py's quick_metrics). rms x_L/x_0 over training uses the "
               "embedding output as reference (quick_metrics); the final x_L/x_1 leaves the embedding's scale out.", ""]
        plots = plot_seeds(seeds, runs_dir, results_dir)
    md += ["## plots", ""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})"
                              for p in plots + plot_study(runs, metrics, runs_dir, results_dir, study)]
    with open(os.path.join(results_dir, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    summary = {"study": study, "scale": scale, "command": commands, "wall_s": wall, "runs_dir": runs_dir,
               "runs": metrics, **extra}
    with open(os.path.join(results_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


# --------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        print(f"error: {message} (see python ablate.py --help)", file=sys.stderr)
        sys.exit(2)


def parse_sets(items):
    out = {}
    for item in items:
        if "=" not in item or not item.split("=", 1)[0]:
            raise SystemExit(f"bad value '{item}' for --set: use --set key=value (a train.py config key)")
        k, v = item.split("=", 1)
        out[k.lstrip("-")] = v
    return out


def parse_depths(text):
    try:
        depths = [int(d) for d in text.split(",") if d.strip()]
    except ValueError:
        raise SystemExit(f"bad value '{text}' for --depths: use comma-separated layer counts, e.g. 6,12") from None
    if not depths or min(depths) < 1:
        raise SystemExit(f"bad value '{text}' for --depths: use comma-separated layer counts >= 1, e.g. 6,12")
    return depths


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = _Parser(description="Run an ablation study (train.py runs + analyze.py) and write results/<study>_<scale>/.")
    ap.add_argument("study", choices=STUDIES, help="norm | depth | optim")
    ap.add_argument("--scale", default="cpu", choices=SCALES,
                    help="cpu (minutes on 2 cores), cpu_deep (depth: 24 layers, 2 seeds, ~32 min) or 130m (one GPU)")
    ap.add_argument("--depths", default=None,
                    help="depth study: comma-separated n_layer values (cpu: 6,12; cpu_deep: 24; 130m: 12)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="train.py override for every run (repeatable)")
    ap.add_argument("--runs_dir", default=None, help="run folders (default ablations/<study>_<scale>)")
    ap.add_argument("--results", default=None, help="results folder (default results/<study>_<scale>)")
    ap.add_argument("--only", default=None, help="comma-separated run names to train (the tables use all finished)")
    ap.add_argument("--analyze_batches", type=int, default=None, help="batches per analysis (cpu 2, 130m 8)")
    ap.add_argument("--analyze_batch_size", type=int, default=None, help="sequences per analysis batch (cpu 8, 130m 16)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="device for analysis")
    ap.add_argument("--threads", type=int, default=None,
                    help="OMP_NUM_THREADS for the runs (cpu default 1: far faster on a busy shared CPU; 0 = torch's choice)")
    ap.add_argument("--no_exactness_test", action="store_true", help="norm study: skip the float64 pytest")
    ap.add_argument("--dry_run", action="store_true", help="print the train.py commands and stop")
    args = ap.parse_args(argv)
    overrides = parse_sets(args.set)
    depths = parse_depths(args.depths) if args.depths else None
    if depths and args.study != "depth":
        ap.error(f"--depths is only for the depth study, not '{args.study}'")
    tag = f"{args.study}_{args.scale}"
    runs_dir = args.runs_dir or os.path.join("ablations", tag)
    results_dir = args.results or os.path.join("results", tag)
    runs = plan(args.study, args.scale, depths, overrides)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {r.name for r in runs}
        if unknown:
            ap.error(f"bad value '{sorted(unknown)[0]}' for --only: choose from {', '.join(r.name for r in runs)}")
    analysis = dict(ANALYSIS[args.scale])
    if args.analyze_batches:
        analysis["batches"] = args.analyze_batches
    if args.analyze_batch_size:
        analysis["batch_size"] = args.analyze_batch_size
    if args.dry_run:
        total = 0.0
        for run in runs:
            out_dir = os.path.join(runs_dir, run.name)
            done = os.path.exists(os.path.join(out_dir, "done"))
            print(("# done, would be skipped: " if done else "") + "python "
                  + " ".join(train_command(run, out_dir)[1:]))
            if args.scale == "130m":
                p = projection(run)
                total += 0 if done else p["h100_hours"]
                paper = run.extra.get("paper_val_ppl")
                print(f"#   {p['tokens']:,} tokens x {p['flops_per_token'] / 1e6:,.0f} MFLOP/token = {p['flops']:.3g} FLOPs:"
                      f" {p['h100_hours']:.3g} h on one H100 at {DRY_RUN_MFU:.0%} MFU"
                      + (f"; paper C4 val ppl {paper}" if paper else ""))
        if args.scale == "130m":
            print(f"# total: {total:.1f} H100-hours for the runs not done yet (H100 SXM bf16 peak "
                  f"{H100_PEAK_FLOPS / 1e12:.0f} TFLOP/s x {DRY_RUN_MFU:.0%} MFU); paper numbers: {PAPER_SOURCE}")
        return None
    dataset = ensure_dataset(runs[0].args)
    if dataset != runs[0].args.get("dataset"):
        for run in runs:
            run.args["dataset"] = dataset
    import analyze
    device = analyze.pick_device(args.device)
    t0 = time.time()
    todo = [r for r in runs if not args.only or r.name in wanted]
    threads = args.threads if args.threads is not None else (1 if args.scale.startswith("cpu") else 0)
    if threads:
        import torch
        torch.set_num_threads(threads)  # the analysis in this process, too
    records = execute(todo, runs_dir, analysis=analysis, device=device, threads=threads)
    # finished runs outside --only still belong in the tables
    rest = [r for r in runs if r not in todo and os.path.exists(os.path.join(runs_dir, r.name, "done"))]
    records.update(execute(rest, runs_dir, analysis=analysis, device=device, threads=threads))
    shown = [r for r in runs if r.name in records]
    exact = exactness_test(threads) if args.study == "norm" and not args.no_exactness_test else None
    command = "python ablate.py " + " ".join(argv)
    summary = write_results(args.study, args.scale, shown, records, runs_dir, results_dir, command,
                            time.time() - t0, exact)
    for name, m in summary["runs"].items():
        if "paper_val_ppl" in m:
            print(f"{name}: val ppl {f4(m.get('val_ppl'), 2)}, paper {m['paper_val_ppl']:.2f} ({PAPER_SOURCE})")
    failed = [n for n, m in summary["runs"].items() if m.get("failed")]
    print(f"wrote {results_dir}/results.md, summary.json and plots in {time.time() - t0:.0f} s"
          + (f"; FAILED runs: {', '.join(failed)}" if failed else ""))
    return summary


if __name__ == "__main__":
    main()
