"""
Provenance: what a study's results ran on, for the header of every results.md and findings.md. Kept apart from
the run records (records.py decides whether a run is reused; this only names things):

    git_commit()      the repository's commit, '(uncommitted changes)' when the working tree differs
    machine(...)      the CPU (model, AVX2/AVX-512/native bf16) and threads per run, or the GPU
    dataset_line(...) the dataset's name, source and meta.json sha256, and whether it is the study's own
    data_passes(...)  passes = max over the runs of max_iters x batch_size x gradient_accumulation_steps x
                      block_size / the dataset's training tokens (above PASSES_WARNING a run memorizes it)
    about(...)        the lines above, in the order results.md prints them
"""

import hashlib
import json
import os
import subprocess


def git_commit():
    """'<commit>' or '<commit> (uncommitted changes)' of the repository, or 'no git'."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, above study/
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "no git"
    if head.returncode:
        return "no git"
    return head.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")


def machine(threads, train_device):
    """One line: the CPU model, its vector/matrix features that decide the speed and dtype (AVX2, AVX-512,
    native bf16 = AVX512-BF16 or AMX), the threads per run; or the GPU when the runs train on one."""
    import platform
    cpu, flags = None, set()
    try:  # Linux; elsewhere the platform's processor name and no flags
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu is None:
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine()
    have = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    line = (f"{cpu}, {os.cpu_count()} logical CPUs, {'/'.join(have) or 'no AVX2/AVX-512 flags seen'}, native bf16 "
            f"{'yes' if {'avx512_bf16', 'amx_bf16'} & flags else 'no'}; {threads or 'torch default'} thread(s) per run")
    if str(train_device).startswith("cuda"):
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cuda requested, none visible"
        line = f"GPU {gpu}; host {line}"
    return line


PASSES_WARNING = 2.0  # more passes over the training split than this: the runs start to memorize it


def data_passes(planned, data_dir, name):
    """The most passes any planned run makes over the dataset's training split (tokens per run = max_iters x
    batch_size x gradient_accumulation_steps x block_size), with the split's size; (None, None) when unknown."""
    try:
        with open(os.path.join(data_dir, name, "meta.json")) as f:
            train_tokens = json.load(f).get("train_tokens")
    except (OSError, ValueError):
        return None, None
    if not train_tokens:
        return None, None
    c = [p["config"] for p in planned.values()]
    tokens = max(x["max_iters"] * x["batch_size"] * x["gradient_accumulation_steps"] * x["block_size"] for x in c)
    return tokens / train_tokens, train_tokens


def dataset_line(name, data_dir, own):
    """The dataset the runs trained on, with its source and fingerprint, and whether it is the study's own."""
    meta_path = os.path.join(data_dir, name, "meta.json")
    source, sha = "?", "?"
    if os.path.exists(meta_path):
        with open(meta_path, "rb") as f:
            raw = f.read()
        sha = hashlib.sha256(raw).hexdigest()[:12]
        source = json.loads(raw).get("source", "?")
    other = "" if name == own else f"; NOT the study's own dataset {own} (offline fallback or --set)"
    return f"Dataset: {name} (source {source}, meta.json sha256 {sha}){other}"


def about(threads, device, dataset, data_dir, own, passes=None, train_tokens=None):
    """The provenance lines under a results.md's command: commit, machine, dataset (with the passes over it)."""
    return [f"Commit: {git_commit()}", f"Machine: {machine(threads, device)}",
            dataset_line(dataset, data_dir, own)
            + ("" if passes is None else f"; a run reads up to {passes:.2f} passes over its {train_tokens:,} "
                                         f"training tokens")]


def trained_at(run_dirs):
    """'Runs trained at commit <c>[, <c2>] (<n> with uncommitted training code)': read from the runs' own run.json,
    which may differ from the commit that writes a table from them."""
    commits, sources, dirty = set(), set(), 0
    for d in run_dirs:
        path = os.path.join(d, "run.json")
        if not os.path.exists(path):
            commits.add("no run.json")
            continue
        with open(path) as f:
            code = json.load(f).get("code", {})
        commits.add((code.get("commit") or "no git")[:10])
        sources.add((code.get("source_sha256") or "?")[:10])
        dirty += bool(code.get("dirty"))
    return (f"Runs trained at commit {', '.join(sorted(commits)) or '-'}"
            + (f" ({dirty} with uncommitted training code)" if dirty else "")
            + (f", training code sha256 {', '.join(sorted(sources))}" if sources else "")
            + (" (the same code at every commit)" if len(sources) == 1 and len(commits) > 1 else ""))
