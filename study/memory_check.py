"""
Checks study/hardware.py's memory model against what PyTorch measures, for presets or a small shape.

    python -m study.memory_check                                   # 130m and 1b presets on the GPU
    python -m study.memory_check --presets=71m,130m,250m,350m,1b --micro_batch=8 --json=mem.json
    python -m study.memory_check --device=cpu --tiny               # the same code at a tiny shape (the tests)

For each preset: the real model in the preset's weight dtype, fused AdamW (as train.py), eager (no
torch.compile: the plan counts eager PyTorch) and bf16 autocast. One optimizer step first (so the optimizer
state exists), then the peak is reset and two accumulated micro-batches and a step are measured:
  saved   bytes autograd saves for backward in one forward (saved_tensors_hooks, one count per storage,
          parameters and buffers left out), against hardware.saved_activation_bytes: exact on any device;
  peak    torch.cuda.max_memory_allocated over the measured step, against the plan's total less its CUDA
          context (which the allocator does not see); GPU only.
Prints one line per preset with both ratios (planned / measured); --json writes them.
"""

import argparse
import contextlib
import json
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import train  # noqa: E402
from model import GPT  # noqa: E402
from optim import build_optimizers  # noqa: E402
from study import hardware  # noqa: E402

TINY = dict(n_layer=2, n_head=4, n_embd=64, mlp_hidden=160, block_size=32, vocab_size=512)


def saved_bytes(model, x, y, ctx):
    """(loss, bytes autograd saves for backward in one forward), each storage once, parameters and buffers
    (and their views) not counted."""
    own = {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in own:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), ctx:
        _, loss = model(x, y)
    return loss, sum(seen.values())


def check(size, device, micro_batch=None, tiny=False):
    """One preset's planned and measured memory (bytes) and their ratios."""
    args = dict(TINY, batch_size=micro_batch or 4, gradient_accumulation_steps=2) if tiny else \
        ({"batch_size": micro_batch} if micro_batch else {})
    args["dataset"] = "c4"
    config_file = os.path.join(ROOT, "config", f"llama-{size}.py")
    meta_model, tc, oc = hardware.build(args, config_file)
    if device == "cpu":
        tc.weight_dtype = "float32"  # bf16 weights are emulated (slowly) on most CPUs
    planned = hardware.memory(meta_model, tc, oc.optimizer, tc.batch_size)
    torch.manual_seed(0)
    model = GPT(meta_model.config).to(device=device, dtype=train.param_dtype(tc.dtype, tc.weight_dtype))
    optimizer = build_optimizers(model, oc, device)
    ctx = torch.autocast(device, dtype=torch.bfloat16) if tc.dtype == "bfloat16" else contextlib.nullcontext()
    shape = (tc.batch_size, meta_model.config.block_size)
    x, y = (torch.randint(0, meta_model.config.vocab_size, shape, device=device) for _ in range(2))
    with ctx:
        model(x, y)[1].backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(2):  # two micro-batches: the second backward adds into existing gradients
        loss, saved = saved_bytes(model, x, y, ctx)
        loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated() if cuda else None
    without_context = planned["total"] - planned["cuda_context"]
    return {"preset": size, "device": torch.cuda.get_device_name() if cuda else "cpu", "micro_batch": tc.batch_size,
            "weight_dtype": tc.weight_dtype, "saved_measured": saved, "saved_planned": planned["activations"],
            "saved_ratio": planned["activations"] / saved, "peak_measured": peak, "peak_planned": without_context,
            "peak_ratio": without_context / peak if peak else None}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check study/hardware.py's memory model against PyTorch.")
    ap.add_argument("--presets", default="130m,1b", help="comma-separated sizes of config/llama-<size>.py")
    ap.add_argument("--micro_batch", type=int, default=None, help="micro-batch (default: the preset's)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tiny", action="store_true", help="a tiny shape of each preset (for CPU tests)")
    ap.add_argument("--json", default=None, help="write the results to this file")
    args = ap.parse_args(argv)
    results = []
    for size in args.presets.split(","):
        if not os.path.exists(os.path.join(ROOT, "config", f"llama-{size}.py")):
            raise SystemExit(f"bad value '{size}' for --presets: no config/llama-{size}.py")
        r = check(size, args.device, args.micro_batch, args.tiny)
        results.append(r)
        peak = (f"; peak {r['peak_measured'] / 2**30:.2f} GiB measured, {r['peak_planned'] / 2**30:.2f} planned "
                f"(ratio {r['peak_ratio']:.3f})" if r["peak_measured"] else "; peak: GPU only")
        print(f"{size} on {r['device']}, micro-batch {r['micro_batch']}, {r['weight_dtype']} weights: saved "
              f"{r['saved_measured'] / 2**30:.3f} GiB measured, {r['saved_planned'] / 2**30:.3f} planned "
              f"(ratio {r['saved_ratio']:.3f}){peak}", flush=True)
        if args.device == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
