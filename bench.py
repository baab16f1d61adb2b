"""
Benchmark one training step of nanonorm: forward (+ loss) under autocast, backward, gradient clipping
and the optimizer step, exactly as train.py runs them, on random tokens (no data loading cost).

    python bench.py                                 # the default model at nanoGPT's shakespeare-char shape
    python bench.py --compare=norm                  # ln vs rms vs rms+zero_mean vs crms, ratio to ln
    python bench.py --compare=optim                 # adamw vs muon vs auon: optimizer time and its share
    python bench.py --compare=pos                   # every norm_pos, ratio to pre
    python bench.py --compare=dtype                 # nanoGPT-equivalent fp32 model vs our default dtype
    python bench.py --compare=infer --batch_size=8  # inference: Pre-LN vs its converted rms and compact crms
    python bench.py --compare=graphs                # torch.compile graph breaks of every norm x norm_pos
    python bench.py --suite=gpu                     # the GPU check: 124M MFU, crms/ln, Muon share, 130M run
    python bench.py --compare=norm --n_embd=768 --n_head=12 --batch_size=8    # a wider shape
    python bench.py --compare=optim --json=optim.json --threads=1 --profile
    python bench.py --help                          # every key: model.GPTConfig, optim.OptimConfig, BenchConfig

Default shape: nanoGPT's shakespeare-char "baby GPT" (6 layers, 6 heads, 384 wide, block 256, batch 16,
vocabulary 65 padded to 128). Any model or optimizer key of train.py can be overridden.

Timing: every compared config is built once (same seed), warmed up, then measured round-robin: `rounds`
rounds of `steps` steps each, so slow drift (other processes, thermal) hits every config alike.
The table reports medians over all measured steps:
    ms/step   forward + backward + clip + optimizer step + zero_grad
    tok/s     batch_size * block_size / step time
    MFU       flops_per_token * tok/s / peak: the GPU's bf16 peak (model.peak_flops_for), or on CPU the
              matmul peak measured here for the dtype in use (printed above the table)
    fwd/bwd/opt ms and opt%   the phases (opt = clip + step + zero_grad) and the optimizer's share
    ratio     step time over the first row's (ln, adamw, pre, or the nanoGPT-equivalent fp32 model):
              the median over rounds of the ratio of the two configs' medians within the same round
    cpu ms    CPU time of this process per step, and its ratio: on a CPU shared with other jobs this
              barely moves when they steal cycles (wall time does), so compare configs with it there;
              with N threads it counts N cores (spin-waits included)
    state MB  parameters + optimizer state (exact byte count)
    peak MB   peak memory of a step above what was resident before it (activations, gradients,
              temporaries): CUDA max_memory_allocated; CPU peak RSS (resource.getrusage, with the
              high-water mark reset through /proc/self/clear_refs between configs where Linux allows it)
On CPU the header names the processor and whether it has native bf16 (AVX512-BF16/AMX): without it bf16
matmuls are emulated, ~25x slower than float32, and dtype=auto trains in float32.
--compare=infer times inference instead (model.eval(), no gradients): the forward pass of batch_size x
block_size tokens and greedy generation of gen_tokens new tokens from a 1-token prompt (batch 1, the full
context recomputed per token, as model.generate does), for a random-init Pre-LN model, its
convert_to_rms and its convert_to_crms (compact) forms; medians over rounds, ratios to the Pre-LN model,
and the largest logit difference to it (1-D parameters are perturbed first, so the folding is not trivial).
--json=PATH writes the same numbers (plus the machine and config) for scripts.
On a CPU shared with other jobs, --threads=1 gives steadier numbers: with torch's default of all cores,
every small op waits for the slowest thread, and a core taken by another process can slow a step 5x.
"""

import ctypes
import functools
import gc
import json
import os
import platform
import resource
import runpy
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace

import torch

torch.set_flush_denormal(True)  # denormals are ~100x slower on x86; before torch starts worker threads

from configurator import ConfigError, config_field, parse_config, split_config  # noqa: E402
from train import autocast_context, param_dtype, resolve_device, resolve_dtype  # noqa: E402  (train.py's device and dtype rules)
from convert import convert_to_crms, convert_to_rms  # noqa: E402
from model import (GPT, GPTConfig, NORM_POSITIONS, padded_vocab,  # noqa: E402
                   peak_flops_for)
from norms import NORM_TYPES  # noqa: E402
from optim import (CPU_BF16_SWITCH, OptimConfig, build_optimizers, check_config as check_optim_config,  # noqa: E402
                   cpu_has_native_bf16, cpu_probes_native_bf16)

COMPARES = ("none", "norm", "optim", "pos", "dtype", "infer", "graphs")
SUITES = ("none", "gpu")
REPO = os.path.dirname(os.path.abspath(__file__))


@dataclass
class BenchModelConfig(GPTConfig):
    """model.GPTConfig, with the shakespeare-char vocabulary as bench.py's default"""
    vocab_size: int = config_field(65, "vocabulary size (65 = shakespeare-char, padded to 128; 50257 = GPT-2 BPE)")


@dataclass
class BenchConfig:
    """What bench.py measures and how (bench.py)"""
    compare: str = config_field("none", "none: one row; norm | optim | pos | dtype: training steps side by side; "
                                "infer: forward and generation of Pre-LN vs its converted rms and crms; "
                                "graphs: torch.compile graph breaks of every norm x norm_pos", COMPARES)
    suite: str = config_field("none", "gpu: GPT-2 124M MFU, crms/ln, Muon's share, LLaMA-130M tok/s and a short "
                              "130M run, with their targets (<= 10 min on one H100); on CPU a tiny shape, seconds",
                              SUITES)
    run_seconds: int = config_field(0, "suite=gpu: seconds of steps in its 130M training run (0 = 150 on GPU, about "
                                    "3 minutes with compilation and evaluation; 3 on CPU)")
    gen_tokens: int = config_field(64, "compare=infer: new tokens generated (greedy, batch 1, 1-token prompt)")
    batch_size: int = config_field(16, "sequences per step")
    warmup: int = config_field(2, "untimed steps per config first (compilation, allocator, lazy optimizer state)")
    steps: int = config_field(2, "measured steps per config in each round")
    rounds: int = config_field(5, "round-robin rounds over the compared configs (cancels drift between them)")
    device: str = config_field("auto", "auto = cuda, else mps, else cpu", ("auto", "cpu", "cuda", "mps"))
    dtype: str = config_field("auto", "auto = train.py's choice: bfloat16 autocast on CUDA and on CPUs with "
                              "AVX512-BF16/AMX, else float32", ("auto", "float32", "bfloat16", "float16"))
    compile: bool | None = config_field(None, "torch.compile the model (None = as train.py: on CUDA only; the warm-up "
                                      "steps absorb the compilation)")
    threads: int = config_field(0, "CPU threads for torch (0 = torch's default, all cores)")
    json: str = config_field("", "also write the results to this JSON file")
    profile: bool = config_field(False, "after timing, print torch.profiler's top ops for one step of each config")
    seed: int = config_field(1337, "seed of the model init and the random tokens")


def check_bench_config(bc):
    for key in ("batch_size", "steps", "rounds", "gen_tokens"):
        if getattr(bc, key) < 1:
            raise ValueError(f"bad value {getattr(bc, key)!r} for {key}: must be >= 1")
    for key in ("warmup", "threads", "run_seconds"):
        if getattr(bc, key) < 0:
            raise ValueError(f"bad value {getattr(bc, key)!r} for {key}: must be >= 0")




# ----------------------------------------------------------------------------------------------
# the CPU: what kind it is and its matmul peak

def cpu_info():
    """Model name, vendor and the instruction sets that decide the CPU's speed per dtype."""
    info = {"model": platform.processor() or platform.machine() or "unknown", "vendor": "unknown"}
    try:  # Linux; elsewhere platform's names stand
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = (s.strip() for s in line.partition(":"))
                if key in ("model name", "vendor_id"):
                    info["model" if key == "model name" else "vendor"] = value
                if not line.strip():
                    break  # the first processor tells it all
    except OSError:
        pass

    def probe(name):  # torch's CPU feature probes (absent in older torch)
        return bool(getattr(torch.cpu, name, lambda: False)())
    info.update(isa=torch.backends.cpu.get_cpu_capability(), avx2=probe("_is_avx2_supported"),
                avx512=probe("_is_avx512_supported"), avx512_bf16=probe("_is_avx512_bf16_supported"),
                amx=probe("_is_amx_tile_supported"), native_bf16=cpu_has_native_bf16(),
                bf16_forced=os.environ.get(CPU_BF16_SWITCH) or None)  # native_bf16 follows the switch
    return info


def describe_cpu(info):
    """One line, e.g. 'AMD EPYC (AuthenticAMD), AVX2 (no AVX-512), no native bf16 (bf16 emulated)'."""
    simd = "AVX-512" if info["avx512"] else ("AVX2 (no AVX-512)" if info["avx2"] else info["isa"])
    units = [n for n, k in (("AVX512-BF16", "avx512_bf16"), ("AMX", "amx")) if info[k]]
    if info.get("bf16_forced"):  # the other kind's code paths on this CPU: its speeds are not that kind's
        own = f"native bf16 ({' + '.join(units)})" if units else "bf16 emulated"
        bf16 = (f"{'native' if info['native_bf16'] else 'emulated'} bf16 forced by "
                f"{CPU_BF16_SWITCH}={info['bf16_forced']} (this CPU: {own})")
    elif info["native_bf16"]:
        bf16 = f"native bf16 ({' + '.join(units)})"
    else:
        bf16 = "no native bf16 (no AVX512-BF16/AMX: bf16 emulated, dtype=auto trains in float32)"
    return f"{info['model']} ({info['vendor']}), {simd}, {bf16}"


def peak_matmul_size(dtype):
    """2048 where the CPU multiplies this dtype natively; 512 where it emulates it (bf16 without AVX512-BF16/AMX,
    fp16 without AMX-FP16: ~25x slower, so 2048^3 would take minutes with one thread). Asks the CPU itself,
    not NANONORM_CPU_BF16: the peak is this machine's, whichever code path it is told to take."""
    if dtype == torch.bfloat16 and not cpu_probes_native_bf16():
        return 512
    if dtype == torch.float16 and not getattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)():
        return 512
    return 2048


@functools.lru_cache(maxsize=None)
def measure_cpu_peak(dtype, threads, reps=3):
    """Best FLOP/s of an n x n x n matmul (n = peak_matmul_size) on this CPU with `threads` threads."""
    n = peak_matmul_size(dtype)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # first call: allocation and kernel selection
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * n ** 3 / best


def _timed(fn, device_type="cpu"):
    """Seconds fn() takes (waiting for the GPU on CUDA)."""
    if device_type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device_type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


# ----------------------------------------------------------------------------------------------
# memory

class MemoryMeter:
    """Peak memory of a stretch of steps above what was resident when it started (bytes)."""

    def __init__(self, device_type):
        self.device_type = device_type
        try:
            self.libc = ctypes.CDLL("libc.so.6")  # malloc_trim returns freed heap pages, so RSS drops
        except OSError:
            self.libc = None

    def start(self):
        if self.device_type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return
        gc.collect()
        if self.libc is not None:
            self.libc.malloc_trim(0)
        try:  # Linux: reset the high-water mark, so ru_maxrss is this stretch's peak, not the process's
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        self.base = self._maxrss()

    def stop(self):
        if self.device_type == "cuda":
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - self.base
        if self.device_type == "cpu":
            return max(0, self._maxrss() - self.base)
        return None  # mps: no peak counter

    @staticmethod
    def _maxrss():
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb if sys.platform == "darwin" else kb * 1024  # bytes on macOS, KiB on Linux


# ----------------------------------------------------------------------------------------------
# the compared configurations

@dataclass
class Variant:
    name: str
    model: GPTConfig
    optim: OptimConfig
    dtype: str  # float32 | bfloat16 | float16
    weight_dtype: str = "float32"  # train.py's weight_dtype: bfloat16 keeps weights, grads and moments in bf16


def nanogpt_config(c):
    """nanoGPT's architecture at c's shape: Pre-LN, GELU MLP 4d, biases, learned positions, tied head."""
    return replace(c, norm="ln", norm_pos="pre", zero_mean=False, depth_scale=False, mlp="gelu", mlp_hidden=0,
                   bias=True, tie_embeddings=True, pos_emb="learned", qk_norm=False, emb_proj=False,
                   scaled_init=False)


def make_variants(mode, mc, oc, dtype):
    """The rows of one comparison; the first row is the reference of the ratio column."""
    if mode == "norm":
        rows = [("ln", dict(norm="ln", zero_mean=False)), ("rms", dict(norm="rms", zero_mean=False)),
                ("rms+zero_mean", dict(norm="rms", zero_mean=True)), ("crms", dict(norm="crms", zero_mean=True))]
        return [Variant(name, replace(mc, **kw), oc, dtype) for name, kw in rows]
    if mode == "optim":
        return [Variant(o, mc, replace(oc, optimizer=o), dtype) for o in ("adamw", "muon", "auon")]
    if mode == "pos":
        return [Variant(p, replace(mc, norm_pos=p), oc, dtype) for p in NORM_POSITIONS]
    if mode == "dtype":
        short = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
        return [Variant("nanoGPT-equiv fp32", nanogpt_config(mc), replace(oc, optimizer="adamw"), "float32"),
                Variant(f"default {short[dtype]}" + (" autocast" if dtype != "float32" else ""), mc, oc, dtype)]
    return [Variant(f"{mc.norm} {mc.norm_pos} {oc.optimizer}", mc, oc, dtype)]


# ----------------------------------------------------------------------------------------------
# one config: model, optimizers, the timed step

class Runner:
    def __init__(self, v, bc, device):
        self.v, self.device = v, device
        self.device_type = device.split(":")[0]
        torch.manual_seed(bc.seed)
        self.model = GPT(v.model).to(device, param_dtype(v.dtype, v.weight_dtype))
        self.optimizers = build_optimizers(self.model, v.optim, self.device_type)
        self.forward = torch.compile(self.model) if bc.compile else self.model
        self.ctx = autocast_context(v.dtype, self.device_type)
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=(v.dtype == "float16"))
        self.step_count = 0
        self.times = {"step": [], "fwd": [], "bwd": [], "opt": [], "cpu": []}
        self.peak_bytes = []
        self.rounds = []  # per round: median step and CPU ms, for ratios paired within a round

    def clock(self):
        """A point in time: a CUDA event (no synchronization inside the step) or perf_counter."""
        if self.device_type == "cuda":
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        if self.device_type == "mps":
            torch.mps.synchronize()
        return time.perf_counter()

    @staticmethod
    def elapsed_ms(a, b):
        return a.elapsed_time(b) if isinstance(a, torch.cuda.Event) else (b - a) * 1000

    def step(self, batches, record):
        """One training step as train.py runs it; batches() yields (x, y) already on the device."""
        x, y = batches(self.step_count)
        c0 = time.process_time()
        t0 = self.clock()
        with self.ctx:
            _, loss = self.forward(x, y)
        t1 = self.clock()
        self.scaler.scale(loss).backward()
        t2 = self.clock()
        clip = self.v.optim.grad_clip
        if clip > 0:
            for opt in self.optimizers.optimizers:
                self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if self.scaler.is_enabled():
            for opt in self.optimizers.optimizers:
                self.scaler.step(opt)
            self.scaler.update()
        else:
            self.optimizers.step()
        self.optimizers.zero_grad(set_to_none=True)
        t3 = self.clock()
        if self.device_type == "cuda":
            t3.synchronize()
        cpu_ms = (time.process_time() - c0) * 1000
        self.step_count += 1
        if record:
            self.times["cpu"].append(cpu_ms)
            for key, (a, b) in (("step", (t0, t3)), ("fwd", (t0, t1)), ("bwd", (t1, t2)), ("opt", (t2, t3))):
                self.times[key].append(self.elapsed_ms(a, b))

    def state_bytes(self):
        """Parameters plus every optimizer state tensor (moments, momentum buffers)."""
        n = sum(p.numel() * p.element_size() for p in self.model.parameters())
        for opt in self.optimizers.optimizers:
            for state in opt.state.values():
                n += sum(t.numel() * t.element_size() for t in state.values() if torch.is_tensor(t))
        return n


def make_batches(bc, mc, device, n=4):
    """A small pool of random token batches; each step takes the next one (pinned, async copy on CUDA)."""
    g = torch.Generator().manual_seed(bc.seed)
    shape = (bc.batch_size, mc.block_size)
    pool = [(torch.randint(0, mc.vocab_size, shape, generator=g), torch.randint(0, mc.vocab_size, shape, generator=g))
            for _ in range(n)]
    if device.startswith("cuda"):
        pool = [(x.pin_memory(), y.pin_memory()) for x, y in pool]

    def batches(i):
        x, y = pool[i % n]
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    return batches


# ----------------------------------------------------------------------------------------------
# reports

def summarize(runner, bc, peak_for):
    v, t = runner.v, runner.times
    ms = statistics.median(t["step"])
    tok_s = bc.batch_size * v.model.block_size / (ms / 1000)
    peak = peak_for(v.dtype)
    mfu = runner.model.estimate_mfu(tok_s, peak_flops=peak) if peak else None
    opt_ms = statistics.median(t["opt"])
    peak_mem = [b for b in runner.peak_bytes if b is not None]
    return {
        "name": v.name, "ms_per_step": ms, "ms_min": min(t["step"]), "tokens_per_s": tok_s, "mfu": mfu,
        "cpu_ms_per_step": statistics.median(t["cpu"]),
        "fwd_ms": statistics.median(t["fwd"]), "bwd_ms": statistics.median(t["bwd"]), "opt_ms": opt_ms,
        "opt_share": opt_ms / ms, "state_mb": runner.state_bytes() / 2 ** 20,
        "peak_mb": max(peak_mem) / 2 ** 20 if peak_mem else None, "steps": len(t["step"]),
        "step_ms_all": t["step"], "dtype": v.dtype, "norm": v.model.norm, "norm_pos": v.model.norm_pos,
        "zero_mean": v.model.zero_mean, "optimizer": v.optim.optimizer,
    }


def format_table(rows):
    head = (f"{'config':<20} {'ms/step':>8} {'min':>7} {'tok/s':>7} {'MFU':>6} {'fwd ms':>7} {'bwd ms':>7} "
            f"{'opt ms':>7} {'opt%':>5} {'ratio':>6} {'cpu ms':>7} {'ratio':>6} {'state MB':>8} {'peak MB':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] is not None else f"{'-':>6}"
        peak = f"{r['peak_mb']:8.0f}" if r["peak_mb"] is not None else f"{'-':>8}"
        lines.append(f"{r['name']:<20} {r['ms_per_step']:8.1f} {r['ms_min']:7.1f} {r['tokens_per_s']:7.0f} {mfu} "
                     f"{r['fwd_ms']:7.1f} {r['bwd_ms']:7.1f} {r['opt_ms']:7.1f} {100 * r['opt_share']:4.0f}% "
                     f"{r['ratio']:6.3f} {r['cpu_ms_per_step']:7.0f} {r['cpu_ratio']:6.3f} {r['state_mb']:8.1f} {peak}")
    return "\n".join(lines)


def profile_step(runner, batches, sort_by):
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if runner.device_type == "cuda" else [])
    with profile(activities=acts) as prof:
        runner.step(batches, record=False)
    return prof.key_averages().table(sort_by=sort_by, row_limit=15)


# ----------------------------------------------------------------------------------------------
# torch.compile graph breaks

def count_graph_breaks(mc, bc, device, dtype):
    """One row per valid (norm, norm_pos), plus the zero_mean streams: dynamo graphs and graph breaks
    of the training forward (with its loss) under the run's autocast."""
    import torch._dynamo
    combos = [(n, p, n == "crms") for n in NORM_TYPES for p in NORM_POSITIONS]
    combos += [(n, "pre", True) for n in ("ln", "rms", "ss")]
    rows = []
    for norm, pos, zero_mean in combos:
        try:
            cfg = replace(mc, norm=norm, norm_pos=pos, zero_mean=zero_mean)
        except ValueError:
            continue  # a refused combination (crms and none are Pre-Norm only, depth_scale conflicts)
        name = f"{norm} {pos}" + (" zero_mean" if zero_mean and norm != "crms" else "")
        torch.manual_seed(bc.seed)
        model = GPT(cfg).to(device)
        x = torch.randint(0, cfg.vocab_size, (bc.batch_size, cfg.block_size), device=device)
        torch._dynamo.reset()
        with autocast_context(dtype, device.split(":")[0]):
            ex = torch._dynamo.explain(model)(x, x)
        reasons = sorted({str(getattr(b, "reason", b)).splitlines()[0] for b in ex.break_reasons})
        rows.append({"name": name, "norm": norm, "norm_pos": pos, "zero_mean": cfg.zero_mean,
                     "graphs": ex.graph_count, "graph_breaks": ex.graph_break_count, "reasons": reasons})
        print(f"{name:<22} graphs {ex.graph_count}  breaks {ex.graph_break_count}"
              + (f"  {'; '.join(reasons)}" if reasons else ""), flush=True)
    return rows


# ----------------------------------------------------------------------------------------------
# training steps side by side (every compare but infer and graphs)

def time_training(variants, mc, bc, device, cpu_peak=True):
    """Build, warm up and time the variants round-robin; returns (rows, peaks, runners, batches).
    cpu_peak=False skips measuring the CPU's matmul peak (no MFU on CPU)."""
    # peak FLOP/s for MFU: the GPU table, or this CPU's measured matmul peak per dtype
    peaks = {}
    if device != "cpu":
        gpu_peak = peak_flops_for(device)
        peaks = {name: gpu_peak for name in ("float32", "bfloat16", "float16")}
        print(f"GPU bf16 dense peak: {gpu_peak / 1e12:.0f} TFLOP/s" if gpu_peak else "GPU peak unknown: no MFU")
    elif cpu_peak:
        for name in sorted({v.dtype for v in variants}, reverse=True):
            peaks[name] = measure_cpu_peak(getattr(torch, name), torch.get_num_threads())
        print("CPU peak (measured n^3 matmul, best of 3): " + ", ".join(
            f"{k} {v / 1e9:.0f} GFLOP/s (n={peak_matmul_size(getattr(torch, k))})" for k, v in peaks.items()))

    runners = [Runner(v, bc, device) for v in variants]
    m0 = runners[0].model
    print(f"params: {m0.num_params() / 1e6:.2f}M, {m0.flops_per_token() / 1e6:.1f} MFLOP/token "
          f"(6 N + 12 L d T); {len(runners)} config(s), {bc.warmup} warm-up + {bc.rounds} rounds x {bc.steps} "
          f"measured steps each, interleaved", flush=True)
    batches = make_batches(bc, mc, device)
    meter = MemoryMeter(device)
    for r in runners:
        for _ in range(bc.warmup):
            r.step(batches, record=False)
    for rnd in range(bc.rounds):
        for r in runners:
            meter.start()
            for _ in range(bc.steps):
                r.step(batches, record=True)
            r.peak_bytes.append(meter.stop())
            r.rounds.append({k: statistics.median(r.times[k][-bc.steps:]) for k in ("step", "cpu")})
        print(f"  round {rnd + 1}/{bc.rounds}: " + ", ".join(f"{r.v.name} {r.rounds[-1]['step']:.0f}" for r in runners)
              + " ms", flush=True)

    if device == "cpu" and cpu_peak:  # other jobs may have slowed the first measurement: keep the best of both
        measure_cpu_peak.cache_clear()
        for name in peaks:
            peaks[name] = max(peaks[name], measure_cpu_peak(getattr(torch, name), torch.get_num_threads()))
        print("CPU peak after the run (best of both): "
              + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()))
    rows = [summarize(r, bc, peaks.get) for r in runners]
    for row, r in zip(rows, runners):  # ratio to the first config, paired round by round, then the median
        for key, name in (("step", "ratio"), ("cpu", "cpu_ratio")):
            row[name] = statistics.median(a[key] / b[key] for a, b in zip(r.rounds, runners[0].rounds))
    return rows, peaks, runners, batches


# ----------------------------------------------------------------------------------------------
# inference: a Pre-LN model vs its converted forms

def infer_models(mc, bc, device):
    """A random-init model of mc (Pre-LN by default), its convert_to_rms and its convert_to_crms forms."""
    torch.manual_seed(bc.seed)
    base = GPT(replace(mc, dropout=0.0))
    with torch.no_grad():  # random gains and biases, so that folding them into the weights is no identity
        for p in base.parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    models = [(mc.norm, base), ("rms (converted)", convert_to_rms(base)), ("crms (converted)", convert_to_crms(base))]
    return [(name, m.to(device).eval()) for name, m in models]


def time_inference(models, mc, bc, device, dtype):
    """Forward of batch_size x block_size tokens and greedy generation of gen_tokens, round-robin."""
    device_type = device.split(":")[0]
    x = torch.randint(0, mc.vocab_size, (bc.batch_size, mc.block_size),
                      generator=torch.Generator().manual_seed(bc.seed)).to(device)
    prompt = x[:1, :1]
    rows = []
    with torch.inference_mode(), autocast_context(dtype, device_type):
        for name, m in models:
            logits = m(x)[0][..., :mc.vocab_size].float()
            tokens = m.generate(prompt, bc.gen_tokens, temperature=0)
            if not rows:
                ref_logits, ref_tokens = logits, tokens
            rows.append({"name": name, "params": m.num_params(), "fwd": [], "gen": [],
                         "max_logit_diff": (logits - ref_logits).abs().max().item(),
                         "same_tokens": (tokens == ref_tokens).float().mean().item()})
            for _ in range(bc.warmup):
                m(x)
        for rnd in range(bc.rounds):
            for row, (_, m) in zip(rows, models):
                row["fwd"].append(statistics.median(_timed(lambda: m(x), device_type) for _ in range(bc.steps)))
                row["gen"].append(_timed(lambda: m.generate(prompt, bc.gen_tokens, temperature=0), device_type))
            print(f"  round {rnd + 1}/{bc.rounds}: " + ", ".join(
                f"{r['name']} {1000 * r['fwd'][-1]:.0f} + {1000 * r['gen'][-1]:.0f}" for r in rows)
                + " ms (forward + generation)", flush=True)
    for row in rows:
        fwd, gen = row.pop("fwd"), row.pop("gen")
        row.update(fwd_ms=1000 * statistics.median(fwd), gen_ms=1000 * statistics.median(gen),
                   fwd_ms_all=[1000 * t for t in fwd], gen_ms_all=[1000 * t for t in gen], rounds=len(fwd))
        row["fwd_tokens_per_s"] = bc.batch_size * mc.block_size / (row["fwd_ms"] / 1000)
        row["gen_tokens_per_s"] = bc.gen_tokens / (row["gen_ms"] / 1000)
        for key in ("fwd", "gen"):  # paired within rounds, as for training
            row[f"{key}_ratio"] = statistics.median(a / b for a, b in zip(row[f"{key}_ms_all"], rows[0][f"{key}_ms_all"]))
    return rows


def format_infer_table(rows, bc, mc):
    head = (f"{'config':<18} {'params':>9} {'fwd ms':>8} {'tok/s':>8} {'ratio':>6} {'gen ms':>8} {'tok/s':>7} "
            f"{'ratio':>6} {'max|dlogit|':>11} {'same tok':>8}")
    lines = [f"forward: {bc.batch_size} x {mc.block_size} tokens; generation: {bc.gen_tokens} new tokens, batch 1, "
             f"greedy; medians of {rows[0]['rounds']} rounds, ratios to {rows[0]['name']} paired within rounds",
             head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:<18} {r['params'] / 1e6:8.2f}M {r['fwd_ms']:8.1f} {r['fwd_tokens_per_s']:8.0f} "
                     f"{r['fwd_ratio']:6.3f} {r['gen_ms']:8.1f} {r['gen_tokens_per_s']:7.1f} {r['gen_ratio']:6.3f} "
                     f"{r['max_logit_diff']:11.2e} {100 * r['same_tokens']:7.0f}%")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# the GPU check: python bench.py --suite=gpu

GPU_TARGETS = {"mfu_124m": 0.45, "crms_ln_ratio_124m": 0.99, "muon_share_124m": 0.05}
TINY_SHAPE = dict(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=512, mlp_hidden=0)


def preset(name, cuda, **tiny):
    """The model and optimizer keys of config/NAME.py, with its micro-batch size; on CPU at a tiny shape."""
    keys = {k: v for k, v in runpy.run_path(os.path.join(REPO, "config", f"{name}.py")).items()
            if not k.startswith("_")}
    mc = BenchModelConfig(**{k: v for k, v in keys.items() if k in BenchModelConfig.__dataclass_fields__})
    oc = OptimConfig(**{k: v for k, v in keys.items() if k in OptimConfig.__dataclass_fields__})
    batch_size = keys.get("batch_size", 16)
    if not cuda:
        mc, batch_size = replace(mc, **{**TINY_SHAPE, **tiny}), 4
    return mc, oc, batch_size, keys


def loss_falls_run(seconds, step_ms, cuda):
    """train.py's main in-process: the LLaMA-130M preset (on CPU a tiny shape) for about `seconds` of steps
    on python_docs (offline, prepared into ./data on first use); returns its first and last logged losses."""
    import train
    iters = max(20, int(seconds * 1000 / step_ms))
    with tempfile.TemporaryDirectory() as out_dir:
        argv = [os.path.join(REPO, "config", "llama-130m.py"), "--dataset=python_docs", f"--out_dir={out_dir}",
                f"--max_iters={iters}", "--gradient_accumulation_steps=1", f"--warmup_iters={max(2, iters // 10)}",
                f"--eval_interval={iters}", "--eval_iters=4", f"--log_interval={max(1, iters // 20)}",
                "--save_checkpoint=False"]
        if not cuda:
            argv += [f"--{k}={v}" for k, v in TINY_SHAPE.items() if k not in ("vocab_size", "mlp_hidden")]
            argv += ["--batch_size=4", "--mlp_hidden=128", "--device=cpu", "--dtype=auto", "--compile=False",
                     "--weight_dtype=float32"]  # bf16 weights (the preset's) are emulated, slowly, on most CPUs
        t0 = time.perf_counter()
        train.main(argv)
        wall = time.perf_counter() - t0
        with open(os.path.join(out_dir, "log.jsonl")) as f:
            log = [json.loads(line) for line in f]
    losses = [row["loss"] for row in log if "loss" in row]
    val = [row["val_loss"] for row in log if "val_loss" in row]
    return {"iters": iters, "seconds": wall, "first_loss": losses[0], "last_loss": losses[-1],
            "val_loss": val[-1] if val else None, "argv": argv[1:], "falls": losses[-1] < 0.9 * losses[0]}


def run_gpu_suite(bc, device, dtype):
    """Each part prints its numbers and its target; returns the JSON result. On CPU the same parts run at
    a tiny shape for a few steps (so the suite is tested) and the GPU targets are not judged."""
    cuda = device == "cuda"
    t_start = time.perf_counter()
    out = {"parts": {}, "targets": GPU_TARGETS, "judged": cuda}
    if not cuda:
        bc = replace(bc, warmup=1, steps=1, rounds=2)
        print("suite=gpu on CPU: tiny shapes and a few steps, to test the suite; the GPU targets are not judged")

    def verdict(ok):
        return ("PASS" if ok else "FAIL") if cuda else "(not judged on CPU)"

    # 1. GPT-2 124M: MFU of the preset, crms/ln and Muon's share, timed side by side
    mc, oc, batch, keys = preset("gpt2-124m", cuda)
    bc124 = replace(bc, batch_size=batch)
    variants = [Variant("ln adamw", mc, oc, dtype),
                Variant("crms adamw", replace(mc, norm="crms", zero_mean=True), oc, dtype),
                Variant("ln muon", mc, replace(oc, optimizer="muon", muon_lr=0.02), dtype)]
    print(f"\n[1/3] GPT-2 124M preset ({mc.n_layer} x {mc.n_embd}, block {mc.block_size}, batch {batch}): MFU, "
          f"crms/ln, Muon's share")
    rows = time_training(variants, mc, bc124, device, cpu_peak=False)[0]  # on CPU: no MFU, seconds only
    print(format_table(rows))
    ln, crms, muon = rows
    # the preset's optimizer step follows gradient_accumulation_steps micro-batches: Muon's share of that step
    accum = keys.get("gradient_accumulation_steps", 1)
    opt_ms = muon["opt_share"] * muon["ms_per_step"]
    preset_share = opt_ms / (accum * (muon["ms_per_step"] - opt_ms) + opt_ms)
    part = {"mfu": ln["mfu"], "crms_ln_ratio": crms["ratio"], "muon_opt_share": muon["opt_share"],
            "muon_opt_share_preset_step": preset_share, "accumulation_steps": accum,
            "muon_ln_ratio": muon["ratio"], "rows": rows}
    out["parts"]["gpt2_124m"] = part
    mfu = f"{100 * ln['mfu']:.1f}%" if ln["mfu"] is not None else "unknown (no peak for this GPU)"
    print(f"MFU {mfu} (target >= 45%) {verdict(ln['mfu'] is not None and ln['mfu'] >= GPU_TARGETS['mfu_124m'])}")
    print(f"crms/ln step {crms['ratio']:.3f} (target <= 0.99) {verdict(crms['ratio'] <= GPU_TARGETS['crms_ln_ratio_124m'])}")
    print(f"Muon's share of one micro-batch step {100 * muon['opt_share']:.1f}%; of the preset's optimizer step "
          f"({accum} micro-batches, {accum * batch * mc.block_size:,} tokens) {100 * preset_share:.2f}% (target <= 5%) "
          f"{verdict(preset_share <= GPU_TARGETS['muon_share_124m'])}", flush=True)

    # 2. LLaMA-130M: tokens/s of a micro-batch step and the projected time of the preset's 20k-step run
    mc, oc, batch, keys = preset("llama-130m", cuda, mlp_hidden=128)
    print(f"\n[2/3] LLaMA-130M preset ({mc.n_layer} x {mc.n_embd}, block {mc.block_size}, micro-batch {batch})")
    weights = keys.get("weight_dtype", "float32")  # the preset's: bf16 weights and Adam state, as the papers
    variants = [Variant(f"llama-130m ({weights} weights)", mc, oc, dtype, weights)]
    if weights != "float32":
        variants.append(Variant("llama-130m (float32 weights)", mc, oc, dtype))
    rows = time_training(variants, mc, replace(bc, batch_size=batch), device, cpu_peak=False)[0]
    print(format_table(rows))
    run_tokens = keys["max_iters"] * keys["batch_size"] * keys.get("gradient_accumulation_steps", 1) * keys["block_size"]
    hours = run_tokens / rows[0]["tokens_per_s"] / 3600
    out["parts"]["llama_130m"] = {"tokens_per_s": rows[0]["tokens_per_s"], "ms_per_micro_step": rows[0]["ms_per_step"],
                                  "weight_dtype": weights, "run_tokens": run_tokens, "projected_hours": hours,
                                  "rows": rows}
    print(f"{rows[0]['tokens_per_s']:,.0f} tok/s with the preset's {weights} weights: the {keys['max_iters']:,}-step "
          f"run ({run_tokens / 1e9:.2f}B tokens) would take {hours:.1f} h here"
          + ("" if cuda else " (at the tiny CPU shape: meaningless, only tested)"), flush=True)

    # 3. a short LLaMA-130M training run through train.py: the loss must fall
    seconds = bc.run_seconds or (150 if cuda else 3)
    print(f"\n[3/3] LLaMA-130M preset through train.py for ~{seconds} s of steps on python_docs (char level)", flush=True)
    run = loss_falls_run(seconds, rows[0]["ms_per_step"], cuda)
    out["parts"]["run_130m"] = run
    print(f"loss {run['first_loss']:.3f} -> {run['last_loss']:.3f} in {run['iters']} steps, {run['seconds']:.0f} s "
          f"wall: {'PASS' if run['falls'] else 'FAIL'} (must fall by >= 10%)")
    out["seconds"] = time.perf_counter() - t_start
    print(f"\nsuite=gpu done in {out['seconds']:.0f} s")
    return out


# ----------------------------------------------------------------------------------------------

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = parse_config(argv, BenchModelConfig, OptimConfig, BenchConfig)
        bc = split_config(cfg, BenchConfig)
        oc = split_config(cfg, OptimConfig)
        check_bench_config(bc)
        check_optim_config(oc)
        mc = split_config(cfg, BenchModelConfig)
        device = resolve_device(bc.device)[0]
        dtype = resolve_dtype(bc.dtype, device)
        if bc.compile is None:
            bc.compile = device == "cuda"
        if bc.suite != "none" and bc.compare != "none":
            raise ValueError(f"bad value {bc.compare!r} for compare with suite={bc.suite}: choose from none")
        variants = make_variants(bc.compare, mc, oc, dtype)
        if bc.compare == "infer":
            models = infer_models(mc, bc, device)  # refuses models that do not convert, in one line
    except (ConfigError, ValueError) as e:
        print(f"bench.py: {e}", file=sys.stderr)
        raise SystemExit(2)
    if bc.threads:
        torch.set_num_threads(bc.threads)
    if device == "cuda":  # as train.py: TF32 for whatever runs in float32
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    tokens = bc.batch_size * mc.block_size
    where = f"{device} ({torch.get_num_threads()} threads)" if device == "cpu" else \
        (f"{device} ({torch.cuda.get_device_name()})" if device == "cuda" else device)
    print(f"bench: {where}, torch {torch.__version__}, default dtype {dtype}, compile {bc.compile}, "
          f"batch {bc.batch_size} x block {mc.block_size} = {tokens} tokens/step")
    result = {"device": where, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "compare": bc.compare, "suite": bc.suite, "default_dtype": dtype,
              "config": {k: v for k, v in cfg.items()}}
    if device == "cpu":
        result["cpu"] = cpu_info()
        print(f"CPU: {describe_cpu(result['cpu'])}")
    if bc.suite == "gpu":
        result.update(run_gpu_suite(bc, device, dtype))
        return _write_json(bc, result)
    print(f"shape: {mc.n_layer} layers x {mc.n_embd} wide x {mc.n_head} heads, vocab {mc.vocab_size} "
          f"(padded {padded_vocab(mc.vocab_size)})")

    if bc.compare == "graphs":
        result["rows"] = count_graph_breaks(mc, bc, device, dtype)
        print(f"total graph breaks: {sum(r['graph_breaks'] for r in result['rows'])} "
              f"over {len(result['rows'])} configurations")
        return _write_json(bc, result)

    if bc.compare == "infer":
        result["rows"] = time_inference(models, mc, bc, device, dtype)
        print()
        print(format_infer_table(result["rows"], bc, mc))
        if device == "cpu":
            print(f"on {describe_cpu(result['cpu'])}")
        return _write_json(bc, result)

    rows, peaks, runners, batches = time_training(variants, mc, bc, device)
    result["peak_flops"] = peaks
    print()
    if device == "cpu":
        print(f"on {describe_cpu(result['cpu'])}")
    print(format_table(rows))
    if bc.compare == "dtype":
        ours = rows[-1]
        on = f" on {describe_cpu(result['cpu'])}" if device == "cpu" else ""
        print(f"\n{ours['name']} vs nanoGPT-equivalent fp32 measured here{on}: {1 / ours['ratio']:.2f}x "
              f"({ours['tokens_per_s']:,.0f} vs {rows[0]['tokens_per_s']:,.0f} tok/s)")
    result["rows"] = rows
    if bc.profile:
        sort_by = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
        for r in runners:
            print(f"\nprofile of one step: {r.v.name}")
            print(profile_step(r, batches, sort_by))
    return _write_json(bc, result)


def _write_json(bc, result):
    if bc.json:
        with open(bc.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {bc.json}")
    return result


if __name__ == "__main__":
    main()
