"""
Train a GPT (model.py) with AdamW/Muon/AuON (optim.py) on llm.c token shards (prepare.py).

    python train.py                                    # CPU preset on python_docs, a few minutes on 2 cores
    python train.py config/shakespeare_char.py --max_iters=1000
    torchrun --standalone --nproc_per_node=8 train.py config/gpt2-124m.py
    python train.py --init_from=resume --out_dir=out   # continue exactly where ckpt.pt stopped

nanoGPT's train.py, read top-down, with its known complaints fixed: checkpoints carry no `_orig_mod.`
prefixes and hold every RNG state (a resumed run reproduces the uninterrupted one bit for bit on CPU),
the data position is the iteration number (data.BatchSampler is stateless), Ctrl-C/SIGTERM save a
checkpoint, a non-finite loss stops the run without overwriting the last good checkpoint, config typos
are refused (configurator.py), evaluation is averaged over all ranks, and MFU uses the real GPU peak.

Learning rate: lr(it) = base_lr * m(it) for every optimizer group, with the multiplier
    warm-up     m = (it + 1) / (warmup_iters + 1)                               for it < warmup_iters
    cosine      m = r + (1 - r) * (1 + cos(pi * p)) / 2,  p = (it - warmup) / (lr_decay_iters - warmup)
    wsd         m = 1, then linear to r over the last decay_frac * max_iters iterations
    constant    m = 1
where r = min_lr / learning_rate (min_lr is an absolute AdamW lr; Muon groups get the same ratio).
Gradient accumulation: gradient_accumulation_steps is the GLOBAL number of micro-batches per step;
each of world_size ranks runs gradient_accumulation_steps / world_size of them, and micro-batch
`micro` of rank `rank` at iteration `it` is batch index (it * accum + micro) * world_size + rank,
so 2 ranks x accum 1 see exactly the batches of 1 rank x accum 2.
Tokens per step = batch_size * block_size * gradient_accumulation_steps.
main() reads top-down: setup, the training loop (one optimizer step on one screen), the end; its helpers
follow it. Resuming, GPT-2 weights, checkpoint and log files, RNG state and signals: checkpoint.py.
"""

import importlib.util
import math
import os
import random
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch

# Denormal floats are ~100x slower on x86 CPUs and appear in small late-training gradients and Adam
# moments. Set before torch starts its worker threads so every thread inherits the flag.
torch.set_flush_denormal(True)

import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

import data  # noqa: E402
import prepare  # noqa: E402
from checkpoint import (RunLog, StopSignal, fmt_duration, pretrained, remove_stale_temporaries, resume,  # noqa: E402
                        save_checkpoint, set_rng_state)
from configurator import ConfigError, config_field, parse_config, split_config  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402
from optim import OptimConfig, build_optimizers, check_config as check_optim_config, cpu_has_native_bf16  # noqa: E402

PRETRAINED = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
EVAL_SEED = 4242  # fixed, so runs with different --seed are compared on the same eval batches
FINAL_EVAL_SEED = 4243  # the held-out set of final_eval_tokens, apart from the periodic evaluations' batches


@dataclass
class TrainConfig:
    """Training loop, data, schedule, device and logging (train.py)"""
    # I/O and data. The defaults (with GPTConfig's and OptimConfig's) are the CPU preset: `python train.py`
    # trains a 6x384 char-level model on the Python reference docs (300 steps of 8 x 256 characters,
    # float32 on a 2-core AVX2 CPU: 6m24s, val loss 4.75 -> 2.24; bf16 autocast where the CPU has it natively).
    out_dir: str = config_field("out", "folder for ckpt.pt and log.jsonl")
    dataset: str = config_field("python_docs", "dataset name: data_dir/NAME (python_docs and shakespeare* are prepared on first use)")
    data_dir: str = config_field("data", "parent folder of the datasets")
    init_from: str = config_field("scratch", "scratch | resume (out_dir/ckpt.pt) | gpt2 | gpt2-medium | gpt2-large | "
                                     "gpt2-xl | a local Hugging Face GPT-2 folder")
    # evaluation, logging, checkpoints
    eval_interval: int = config_field(50, "evaluate (and maybe checkpoint) every this many iterations, and at the end")
    eval_iters: int = config_field(8, "batches per split for each evaluation (fixed batches, shared by all ranks)")
    final_eval_tokens: int = config_field(0, "at the end, the val loss and its standard error over this many held-out "
                                          "tokens (fixed batches, rounded up to whole batches; 0 = off): the "
                                          "number a study compares, with evaluation noise well below its effects")
    log_interval: int = config_field(10, "console line and log.jsonl row every this many iterations")
    always_save_checkpoint: bool = config_field(False, "checkpoint at every evaluation, not only when val loss improves")
    save_checkpoint: bool = config_field(True, "write out_dir/ckpt.pt at all (False: throwaway runs, benchmarks)")
    analyze_interval: int = config_field(0, "add analyze.quick_metrics to the eval rows every this many iterations "
                                    "(0 = off; a multiple of eval_interval)")
    wandb_log: bool = config_field(False, "also log to Weights & Biases (pip install wandb)")
    wandb_project: str = config_field("nanonorm", "wandb project")
    wandb_run_name: str = config_field("", "wandb run name ('' = out_dir)")
    # batch and length of training
    batch_size: int = config_field(8, "sequences per micro-batch per rank")
    gradient_accumulation_steps: int = config_field(1, "micro-batches per optimizer step, all ranks together "
                                               "(must be divisible by the number of ranks)")
    max_iters: int = config_field(300, "optimizer steps in total")
    # learning-rate schedule (the peak lrs are OptimConfig's learning_rate and muon_lr)
    lr_schedule: str = config_field("cosine", "lr multiplier after warm-up", ("cosine", "wsd", "constant"))
    warmup_iters: int = config_field(30, "linear lr warm-up steps")
    lr_decay_iters: int | None = config_field(None, "cosine: step at which lr reaches min_lr (None = max_iters)")
    min_lr: float | None = config_field(None, "final lr of cosine/wsd as an absolute AdamW lr; Muon groups get the same "
                                      "ratio min_lr/learning_rate (None = learning_rate / 10)")
    decay_frac: float = config_field(0.2, "wsd: fraction of max_iters at the end spent decaying linearly to min_lr")
    # system
    device: str = config_field("auto", "auto = cuda, else mps, else cpu", ("auto", "cpu", "cuda", "mps"))
    dtype: str = config_field("auto", "auto = bfloat16 autocast where supported (CUDA, CPUs with AVX512-BF16/AMX), "
                              "else float32; float16 uses a GradScaler; float64 converts the model (exactness tests)",
                      ("auto", "float32", "bfloat16", "float16", "float64"))
    weight_dtype: str = config_field("float32", "dtype of the weights, gradients and optimizer state: float32 (mixed "
                                     "precision with dtype=bfloat16) or bfloat16 (all in bf16, as the LNS/Mix-LN "
                                     "papers' code: model.to(bfloat16)); dtype=float64 keeps float64",
                                     ("float32", "bfloat16"))
    compile: bool | None = config_field(None, "torch.compile the model (None = True on CUDA, False elsewhere: "
                                      "on CPU compiling takes longer than a short run saves)")
    seed: int = config_field(1337, "seed for the init, dropout and the training batches")


def main(argv=None):
    t_start = time.time()
    # ---- set-up: config, distributed, data, model, optimizers, batches. Every problem found here is one line
    # on stderr and exit 2, before anything is trained or written over (the one error boundary of set-up).
    try:
        # config: defaults < config files < --key=value
        cfg = parse_config(sys.argv[1:] if argv is None else argv, GPTConfig, OptimConfig, TrainConfig)
        tc, oc = split_config(cfg, TrainConfig), split_config(cfg, OptimConfig)
        check_train_config(tc)
        check_optim_config(oc)
        ddp, rank, local_rank, world_size, device_type, device = setup_distributed(tc)
        master = rank == 0
        dtype = resolve_dtype(tc.dtype, device_type)
        accum = tc.gradient_accumulation_steps // world_size  # micro-batches per rank per step
        use_compile = tc.compile if tc.compile is not None else device_type == "cuda"
        torch.manual_seed(tc.seed + rank)  # init is broadcast from rank 0 by DDP; dropout differs per rank
        random.seed(tc.seed + rank)
        np.random.seed(tc.seed + rank)

        # data: rank 0 prepares a missing dataset (offline sources) while the others wait
        meta = load_dataset(tc, master, ddp)

        # model and optimizers: from scratch, from out_dir/ckpt.pt, or from GPT-2 weights
        os.makedirs(tc.out_dir, exist_ok=True)
        if master:  # what this run is trained with: ablate.py reuses a run only when its record matches the plan
            write_run_record(tc.out_dir, run_record(cfg))
        ckpt_path = os.path.join(tc.out_dir, "ckpt.pt")
        if master and (removed := remove_stale_temporaries(ckpt_path)):
            print(f"removed {', '.join(removed)} from {tc.out_dir}: unfinished checkpoint writes of killed runs")
        if tc.init_from == "scratch":
            cfg["vocab_size"] = meta["vocab_size"]  # the dataset's vocabulary, padded to 64 by the model
            model, ckpt = GPT(split_config(cfg, GPTConfig)), None
        elif tc.init_from == "resume":  # the checkpoint's architecture and dtype win over the command line
            model, ckpt = resume(ckpt_path, cfg, meta, tc.dataset, device, master)
        else:
            model, ckpt = pretrained(tc.init_from, cfg, meta, tc.dataset, master), None
        if meta["vocab_size"] > model.config.vocab_size:
            raise ValueError(f"dataset {tc.dataset} has {meta['vocab_size']} tokens but the model only "
                             f"{model.config.vocab_size}")
        cfg.update(asdict(model.config))
        weights = param_dtype(dtype, tc.weight_dtype)
        if ckpt is not None and master and (saved := next(model.parameters()).dtype) != weights:
            print(f"resume: the checkpoint's weights are {saved}; continuing in {weights} (--weight_dtype, --dtype)")
        model.to(device=device, dtype=weights)  # no-op for a checkpoint saved in this dtype
        optimizers = build_optimizers(model, oc, device_type)
        if ckpt is not None:
            optimizers.load_state_dict(ckpt["optimizer"])  # moments; hyper-parameters stay this run's config

        # batches: the training batches follow --seed; the eval batches are fixed (EVAL_SEED)
        block_size = model.config.block_size
        train_sampler = data.BatchSampler(tc.data_dir, tc.dataset, "train", tc.batch_size, block_size, seed=tc.seed)
        eval_samplers = {split: data.BatchSampler(tc.data_dir, tc.dataset, split, tc.batch_size, block_size,
                                                  seed=EVAL_SEED) for split in ("train", "val")}
    except (ConfigError, ValueError, OSError) as e:  # a bad value, dataset, architecture or checkpoint
        fail(e, code=2)

    iter_num, best_val_loss = (ckpt["iter_num"], ckpt["best_val_loss"]) if ckpt else (0, float("inf"))
    tokens_per_iter = tc.batch_size * block_size * tc.gradient_accumulation_steps
    # float16 overflows without loss scaling; bf16 and fp32 do not need it (enabled=False is a no-op)
    scaler = torch.amp.GradScaler(device_type, enabled=(dtype == "float16"))
    raw_model = model  # the plain GPT: checkpoints, gradient clipping, MFU
    if use_compile:
        model = torch.compile(model)  # compiles at the first forward: the first iterations are slow
    eval_model = model  # evaluation skips DDP's gradient machinery
    if ddp:
        model = DDP(model, device_ids=[local_rank] if device_type == "cuda" else None)
    ctx = autocast_context(dtype, device_type)

    # ---- logging (rank 0); the RNGs are restored last so dropout continues where the checkpoint left it
    run_log = None
    analyze = importlib.import_module("analyze") if master and tc.analyze_interval else None  # only when asked
    if master:
        run_log = RunLog(tc, cfg, iter_num if ckpt else None, raw_model, tokens_per_iter, world_size, device)
        print(f"device {device}, dtype {dtype} (weights {str(weights).removeprefix('torch.')}), compile {use_compile}, "
              f"{world_size} rank(s) x {accum} micro-batches x {tc.batch_size} x {block_size} tokens = "
              f"{tokens_per_iter:,} tokens/step")
        print(f"model: {raw_model.num_params() / 1e6:.2f}M parameters (without position embeddings)")
        print(optimizers.describe())
    if ckpt is not None:
        set_rng_state(ckpt["rng"])
        if ddp and rank:  # only rank 0's stream is saved; keep the other ranks' dropout distinct
            torch.manual_seed(tc.seed + rank + iter_num)
        del ckpt  # free the optimizer-state copy
    stop = StopSignal()  # Ctrl-C / SIGTERM: finish the iteration, end the loop, save it at the end of main
    start_iter = last_saved_iter = iter_num
    min_ratio = min_lr_ratio(tc, oc)
    step_losses, grad_norm, val_loss, stopping, t_last = [], None, None, False, time.time()

    # ---- the training loop: at every eval_interval-th iteration (and the last) evaluate and maybe checkpoint;
    # otherwise one optimizer step. A stop request ends the loop; the end of main saves and exits.
    x, y = get_batch(train_sampler, iter_num * accum * world_size + rank, device)
    while True:
        optimizers.set_lr_multiplier(lr_multiplier(iter_num, tc, min_ratio))
        optimizers.set_muon_momentum(iter_num)

        if (iter_num % tc.eval_interval == 0 or iter_num >= tc.max_iters) and not stopping:
            losses = evaluate(eval_model, eval_samplers, tc.eval_iters, ctx, device, rank, world_size)
            val_loss = losses["val"]
            if not math.isfinite(val_loss):
                fail(f"non-finite val loss ({val_loss}) at iter {iter_num}; stopping, {ckpt_path} "
                     f"(iter {last_saved_iter}) is kept. Lower learning_rate or keep grad_clip > 0")
            row = {"iter": iter_num, "val_loss": val_loss, "train_loss": losses["train"]}
            if analyze is not None and (iter_num % tc.analyze_interval == 0 or iter_num >= tc.max_iters):
                row.update(analyze.quick_metrics(raw_model, *get_batch(eval_samplers["val"], 0, device)))
            improved, best_val_loss = val_loss < best_val_loss, min(best_val_loss, val_loss)
            # a checkpoint when val improved (or always), never of the start: nothing is trained yet
            saved = (tc.save_checkpoint and (improved or tc.always_save_checkpoint) and iter_num > start_iter)
            if saved:
                if master:
                    save(ckpt_path, raw_model, optimizers, cfg, iter_num, best_val_loss, tc.dataset, meta,
                         last_saved_iter)
                last_saved_iter = iter_num
            if master:
                run_log.eval_row(row, ckpt_path if saved else None)
            t_last = time.time()  # keep evaluation out of ms/iter
        if iter_num >= tc.max_iters or stopping:
            break

        # forward and backward over accum micro-batches: the step's gradient is their mean
        step_loss = 0.0
        for micro in range(accum):
            # DDP all-reduces the gradients in the backward of the last micro-batch only
            with model.no_sync() if ddp and micro < accum - 1 else nullcontext():
                with ctx:
                    _, loss = model(x, y)
                    loss = loss / accum
                # fetch the next micro-batch now: on CUDA its copy overlaps the backward pass
                x, y = get_batch(train_sampler, (iter_num * accum + micro + 1) * world_size + rank, device)
                scaler.scale(loss).backward()
            step_loss = step_loss + loss.detach()
        # clip the global gradient norm, step every optimizer, free the gradients
        if oc.grad_clip > 0:
            for opt in optimizers.optimizers:
                scaler.unscale_(opt)  # float16: clip the true gradients, not the scaled ones
            grad_norm = torch.nn.utils.clip_grad_norm_(raw_model.parameters(), oc.grad_clip)
        for opt in optimizers.optimizers:
            scaler.step(opt)  # opt.step(); float16: skipped when the gradients overflowed
        scaler.update()
        optimizers.zero_grad(set_to_none=True)  # frees the gradient memory until the next backward
        step_losses.append(step_loss)
        iter_num += 1

        # a log row every log_interval steps, before each evaluation, and when a stop is asked for: the step
        # losses stay on the device until here (one sync per row), and no iteration is saved unchecked
        if (iter_num % tc.log_interval == 0 or iter_num % tc.eval_interval == 0 or iter_num >= tc.max_iters
                or iter_num == start_iter + 1 or (stop.signum and not ddp)):
            values, stopping = gather_step_losses(step_losses, bool(stop.signum), ddp, world_size, device)
            for i, v in enumerate(values):
                if not math.isfinite(v):
                    kept = (f"the last good checkpoint {ckpt_path} (iter {last_saved_iter}) is kept"
                            if last_saved_iter != start_iter or tc.init_from == "resume" else "no checkpoint was written")
                    fail(f"non-finite loss ({v}) at iter {iter_num - len(values) + i}; stopping, {kept}. Lower "
                         f"learning_rate, keep grad_clip > 0, or use bfloat16/float32 instead of float16")
            if master:
                lr = oc.learning_rate * lr_multiplier(iter_num - 1, tc, min_ratio)
                run_log.train_row(iter_num - 1, values, time.time() - t_last, lr, grad_norm)
            step_losses, t_last = [], time.time()

    # ---- the end (of training, or a stop request): save the last iteration, evaluate the held-out set, say so
    saved = tc.save_checkpoint and iter_num != last_saved_iter
    if saved:
        if master:
            save(ckpt_path, raw_model, optimizers, cfg, iter_num, best_val_loss, tc.dataset, meta, last_saved_iter)
        last_saved_iter = iter_num
    if tc.final_eval_tokens and not stopping:
        final = evaluate_held_out(eval_model, tc, block_size, ctx, device, rank, world_size)
        if master:
            run_log.write({"iter": iter_num, **final})
            print(f"final val loss {final['final_val_loss']:.4f} +- {final['final_val_se']:.4f} (standard error) "
                  f"on {final['final_val_tokens']:,} held-out tokens", flush=True)
    if master:
        if stopping and tc.save_checkpoint:
            what = f"saved {ckpt_path} at iter {iter_num}" if saved else f"{ckpt_path} is at iter {last_saved_iter}"
            print(f"interrupted: {what}; continue with --init_from=resume --out_dir={tc.out_dir}", flush=True)
        elif stopping:
            print(f"interrupted at iter {iter_num} (save_checkpoint=False: nothing was saved)", flush=True)
        else:
            print(f"done: {iter_num - start_iter} iterations in {fmt_duration(time.time() - t_start)}, "
                  f"val loss {val_loss:.4f} (best {best_val_loss:.4f})")
            if tc.save_checkpoint and os.path.exists(ckpt_path):
                print(f"checkpoint: {ckpt_path}")
                print(f"try it: python sample.py --out_dir={tc.out_dir}")
        run_log.finish()
    if ddp:  # wait until every rank is done (rank 0 saves last): gloo aborts a rank torn down under a busy peer
        dist.barrier()
        dist.destroy_process_group()
    if stopping:
        sys.exit(128 + (stop.signum or signal.SIGTERM))  # DDP: the signal may have reached another rank only


# -----------------------------------------------------------------------------
# helpers of main(), in the order it calls them

def fail(msg, code=1):
    """Stop with one line on stderr (set-up problems exit 2, problems during training 1)."""
    print(f"error: {msg}", file=sys.stderr, flush=True)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    sys.exit(code)


def check_train_config(tc):
    """One-line ValueError for the first bad TrainConfig value (types and choices: configurator)."""
    at_least = {"eval_interval": 1, "eval_iters": 1, "log_interval": 1, "batch_size": 1,
                "gradient_accumulation_steps": 1, "max_iters": 0, "warmup_iters": 0, "analyze_interval": 0,
                "final_eval_tokens": 0}
    for key, low in at_least.items():
        if getattr(tc, key) < low:
            raise ValueError(f"bad value {getattr(tc, key)} for {key}: must be >= {low}")
    if tc.lr_decay_iters is not None and tc.lr_decay_iters <= tc.warmup_iters and tc.lr_schedule == "cosine":
        raise ValueError(f"bad value {tc.lr_decay_iters} for lr_decay_iters: must exceed warmup_iters={tc.warmup_iters}")
    if tc.min_lr is not None and not (tc.min_lr >= 0 and math.isfinite(tc.min_lr)):
        raise ValueError(f"bad value {tc.min_lr} for min_lr: must be a finite number >= 0 (or None)")
    if not 0.0 <= tc.decay_frac <= 1.0:
        raise ValueError(f"bad value {tc.decay_frac} for decay_frac: must be in [0, 1]")
    if tc.analyze_interval % tc.eval_interval:
        raise ValueError(f"bad value {tc.analyze_interval} for analyze_interval: must be 0 or a multiple of "
                         f"eval_interval={tc.eval_interval} (metrics are taken at evaluations)")
    if tc.weight_dtype == "bfloat16" and tc.dtype in ("float16", "float64"):
        raise ValueError(f"bad value {tc.dtype!r} for dtype with weight_dtype='bfloat16': choose from auto, "
                         f"float32, bfloat16 (or keep weight_dtype='float32')")
    if tc.wandb_log and importlib.util.find_spec("wandb") is None:
        raise ValueError("wandb_log=True but wandb is not installed: pip install wandb (or drop --wandb_log)")
    if tc.init_from not in ("scratch", "resume") + PRETRAINED and not os.path.isdir(tc.init_from):
        raise ValueError(f"bad value {tc.init_from!r} for init_from: choose from scratch, resume, "
                         f"{', '.join(PRETRAINED)} or an existing Hugging Face GPT-2 folder")


def setup_distributed(tc):
    """(ddp, rank, local_rank, world_size, device_type, device). torchrun sets RANK, LOCAL_RANK and WORLD_SIZE;
    then each rank joins the process group (NCCL on GPUs, gloo on CPU) on its own device."""
    ddp = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank, local_rank = int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    device_type, device = resolve_device(tc.device, local_rank)
    if tc.gradient_accumulation_steps % world_size:
        raise ValueError(f"bad value {tc.gradient_accumulation_steps} for gradient_accumulation_steps: must be "
                         f"divisible by the {world_size} ranks (it is the global number of micro-batches per step)")
    if device_type == "cuda":  # TF32 matmuls for the float32 parts (~free accuracy-wise, much faster)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if ddp:
        if device_type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return ddp, rank, local_rank, world_size, device_type, device


def load_dataset(tc, master, ddp):
    """The dataset's meta.json; rank 0 first prepares a missing dataset that needs no download decision
    (prepare.ensure_prepared) while the other ranks wait. Its one-line refusals become ValueErrors."""
    try:
        if master:
            prepare.ensure_prepared(tc.dataset, tc.data_dir)
    except SystemExit as e:
        if isinstance(e.code, str):
            raise ValueError(e.code) from None
        raise
    finally:
        if ddp:
            dist.barrier()
    return data.load_meta(tc.data_dir, tc.dataset)


# device and precision

def resolve_device(name, local_rank=0):
    """(device_type, device string) for auto|cpu|cuda|mps; one-line ValueError when unavailable."""
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    name = next(n for n in available if available[n]) if name == "auto" else name
    if not available[name]:
        raise ValueError(f"bad value {name!r} for device: {name} is not available here (choose from auto, cpu)")
    return name, (f"cuda:{local_rank}" if name == "cuda" else name)


def resolve_dtype(name, device_type):
    """The dtype name to run in; auto = bfloat16 where it is fast (CUDA with bf16, CPUs with AVX512-BF16
    or AMX; NANONORM_CPU_BF16=native|emulated decides on any CPU: optim.cpu_has_native_bf16), float16 on
    older CUDA GPUs, else float32."""
    if name == "auto" and device_type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if name == "auto":
        return "bfloat16" if device_type == "cpu" and cpu_has_native_bf16() else "float32"
    if name == "float64" and device_type == "mps":
        raise ValueError("bad value 'float64' for dtype on mps: MPS has no float64 (choose from auto, float32, "
                         "bfloat16, float16)")
    return name


def autocast_context(dtype, device_type):
    """Mixed precision for bf16/fp16 (weights stay float32); plain execution for float32/float64."""
    if dtype in ("bfloat16", "float16"):
        return torch.autocast(device_type=device_type, dtype=getattr(torch, dtype))
    return nullcontext()


def param_dtype(dtype, weight_dtype="float32"):
    """The weights' dtype, which the gradients and optimizer state follow: float64 for exactness runs,
    else weight_dtype (bfloat16 halves the memory of weights and moments but rounds every update)."""
    return torch.float64 if dtype == "float64" else getattr(torch, weight_dtype)


# batches, evaluation, schedule

def get_batch(sampler, index, device):
    x, y = sampler.batch(index)
    if str(device).startswith("cuda"):  # pinned host memory lets the copy overlap the GPU work
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


@torch.no_grad()
def evaluate(model, samplers, eval_iters, ctx, device, rank=0, world_size=1):
    """Mean loss per split over the same eval_iters batches a single process would use: rank r does
    batches r, r + world_size, ..., and the sums are all-reduced."""
    model.eval()
    out = {}
    acc = torch.float32 if str(device) == "mps" else torch.float64
    for split, sampler in samplers.items():
        total = torch.zeros(2, device=device, dtype=acc)  # (sum of losses, count)
        for k in range(rank, eval_iters, world_size):
            x, y = get_batch(sampler, k, device)
            with ctx:
                _, loss = model(x, y)
            total[0] += loss.to(acc)
            total[1] += 1
        if world_size > 1:
            dist.all_reduce(total)
        out[split] = (total[0] / total[1]).item()
    model.train()
    return out


def gather_step_losses(step_losses, stop_requested, ddp, world_size, device):
    """(the losses of the steps since the last log row as floats, whether to stop). DDP: the losses are
    averaged over the ranks and a stop request to any rank stops them all, in one all-reduce."""
    losses = torch.stack(step_losses) if step_losses else torch.zeros(0, device=device)
    if ddp:
        buf = torch.cat([losses, torch.tensor([float(stop_requested)], device=device, dtype=losses.dtype)])
        dist.all_reduce(buf)
        losses, stop_requested = buf[:-1] / world_size, bool(buf[-1].item() > 0)
    return losses.tolist(), stop_requested


def save(ckpt_path, model, optimizers, cfg, iter_num, best_val_loss, dataset, meta, last_saved_iter):
    """Checkpoint iteration iter_num, unless a weight is non-finite: then stop and keep the last good file."""
    if not all(p.isfinite().all() for p in model.parameters()):
        fail(f"non-finite parameters after iter {iter_num - 1}; not saving, {ckpt_path} (iter {last_saved_iter}) "
             f"is kept. Lower learning_rate or keep grad_clip > 0")
    save_checkpoint(ckpt_path, model, optimizers, cfg, iter_num, best_val_loss, dataset, meta)


@torch.no_grad()
def evaluate_held_out(model, tc, block_size, ctx, device, rank=0, world_size=1):
    """The val loss over a fixed held-out set of >= final_eval_tokens tokens (the batches of a sampler seeded
    apart from the periodic evaluations'), with its standard error. Sequence i has loss sum s_i over n_i
    scored tokens; loss = sum(s) / sum(n) and, treating sequences as the independent units,
        se = sqrt(sum_i (s_i - loss * n_i)^2 / (m (m - 1))) / mean(n)      (m sequences)
    which for equal n_i is std(sequence means) / sqrt(m). Ranks split the batches and all-reduce the sums."""
    sampler = data.BatchSampler(tc.data_dir, tc.dataset, "val", tc.batch_size, block_size, seed=FINAL_EVAL_SEED)
    batches = -(-tc.final_eval_tokens // (tc.batch_size * block_size))
    acc = torch.float32 if str(device) == "mps" else torch.float64  # MPS has no float64
    model.eval()
    sums, counts = [], []
    for k in range(rank, batches, world_size):
        x, y = get_batch(sampler, k, device)
        with ctx:
            logits, _ = model(x, y)
        token_loss = F.cross_entropy(logits.float().transpose(1, 2), y, ignore_index=-1, reduction="none")
        sums.append(token_loss.to(acc).sum(1))
        counts.append((y != -1).sum(1).to(acc))
    s, n = torch.cat(sums), torch.cat(counts)
    model.train()
    totals = torch.stack([s.sum(), n.sum(), torch.tensor(float(len(s)), dtype=s.dtype, device=s.device)])
    if world_size > 1:
        dist.all_reduce(totals)
    loss, m = (totals[0] / totals[1]).item(), int(totals[2].item())
    spread = ((s - loss * n) ** 2).sum()
    if world_size > 1:
        dist.all_reduce(spread)
    se = (spread / (m * (m - 1))).sqrt().item() / (totals[1].item() / m) if m > 1 else float("nan")
    return {"final_val_loss": loss, "final_val_se": se, "final_val_tokens": int(totals[1].item())}


def lr_multiplier(it, tc, min_ratio):
    """Multiplier of every group's base lr at iteration it (see the module docstring)."""
    if it < tc.warmup_iters:
        return (it + 1) / (tc.warmup_iters + 1)
    if tc.lr_schedule == "constant":
        return 1.0
    if tc.lr_schedule == "wsd":
        decay_start = tc.max_iters - int(tc.decay_frac * tc.max_iters)
        if it < decay_start or decay_start == tc.max_iters:  # decay_frac=0: no decay, constant after warm-up
            return 1.0
        progress = min((it - decay_start + 1) / (tc.max_iters - decay_start), 1.0)  # the last step reaches min
        return 1.0 - progress * (1.0 - min_ratio)
    decay_iters = tc.lr_decay_iters if tc.lr_decay_iters is not None else tc.max_iters
    if it >= decay_iters:
        return min_ratio
    progress = (it - tc.warmup_iters) / max(decay_iters - tc.warmup_iters, 1)
    return min_ratio + 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - min_ratio)


def min_lr_ratio(tc, oc):
    """r = min_lr / learning_rate, 0.1 when min_lr is None."""
    return 0.1 if tc.min_lr is None else (tc.min_lr / oc.learning_rate if oc.learning_rate > 0 else 0.0)


# run record: out_dir/run.json

# the files whose code decides what a run computes: train.py and what it imports, except analyze.py, whose
# --analyze_interval metrics only describe the model (tests/test_layout.py checks that this list is complete)
TRAINING_CODE = ("checkpoint.py", "configurator.py", "data.py", "model.py", "norms.py", "optim.py", "prepare.py",
                 "train.py")


def run_record(cfg):
    """What a run is trained with, as ablate.py compares it: the resolved config (defaults < config files <
    --key=value), the dataset (name, sha256 of meta.json, shard sizes) and the code (git commit when there is
    one, and a sha256 over TRAINING_CODE, so that a README, analysis or study-script commit does not
    invalidate runs)."""
    import hashlib
    import json
    import subprocess
    dataset = cfg["dataset"]
    folder = os.path.join(cfg["data_dir"], dataset)
    meta_sha = None
    if os.path.exists(os.path.join(folder, "meta.json")):
        with open(os.path.join(folder, "meta.json"), "rb") as f:
            meta_sha = hashlib.sha256(f.read()).hexdigest()
    shards = {fn: os.path.getsize(os.path.join(folder, fn))
              for fn in sorted(os.listdir(folder)) if fn.endswith(".bin")} if os.path.isdir(folder) else {}
    root = os.path.dirname(os.path.abspath(__file__))
    files = sorted(TRAINING_CODE)
    source = hashlib.sha256()
    for fn in files:
        with open(os.path.join(root, fn), "rb") as f:
            source.update(fn.encode() + b"\0" + f.read() + b"\0")

    def git(*args):
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None
    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", *files)) if commit else None
    return {"config": json.loads(json.dumps(cfg, default=str)),
            "dataset": {"name": dataset, "meta_sha256": meta_sha, "shards": shards},
            "code": {"commit": commit, "dirty": dirty, "source_sha256": source.hexdigest(), "files": files}}


def write_run_record(out_dir, record):
    """out_dir/run.json, written atomically (a killed run never leaves half a record)."""
    import json
    path = os.path.join(out_dir, "run.json")
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
