"""
What a run was trained with, and whether a finished run can be reused; where a study writes, and what it ran on.

train.py records in <run>/run.json what the run was trained with: the resolved config, the dataset (name,
sha256 of meta.json, shard sizes) and the code (git commit; sha256 of the training code). planned_record is
the record this plan would give; record_diff compares the two:

    config:  every key equal, except NOT_COMPARED (where a run is written or read from, how it was started)
    dataset: the same name and the same contents (meta.json sha256 and shard sizes)
    code:    the same sha256 of the training code (the commit is only named)

decide: no ckpt.pt -> new; a record that differs -> retrain or refuse (--on_mismatch), naming the differing
keys (`max_iters 5 != 400`: the run's, then the plan's); a record that matches -> reuse when the `done` marker
is there, else resume. A retrained run's old folder is set aside as <run>.previous.

For the results.md header and folders: folder_suffix (a study with --set overrides, or on another dataset than
its own, writes to suffixed folders), ensure_dataset/resolve_dataset (the dataset the runs train on, prepared on
first use), git_commit, machine, dataset_line and data_passes: passes = max over the runs of max_iters x
batch_size x gradient_accumulation_steps x block_size / the dataset's training tokens.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from study.studies import fmt


# --------------------------------------------------------------------------------------------
# run records: a run folder is reused only when it was trained with what the plan asks for

# config keys that do not change what is trained: where it is written or read from (the dataset's contents
# are compared by their fingerprint instead), how it was started (a resumed run continues the same training)
NOT_COMPARED = ("out_dir", "data_dir", "init_from", "wandb_log", "wandb_project", "wandb_run_name")


def planned_record(run):
    """The run.json that train.py would write for this run (train.run_record on the resolved config)."""
    import train
    from model import GPTConfig
    argv = ([run.config_file] if run.config_file else []) + [f"--{k}={fmt(v)}" for k, v in run.args.items()]
    try:
        cfg = train.parse_config(argv, GPTConfig, train.OptimConfig, train.TrainConfig)
    except ValueError as e:  # configurator's one-line ConfigError: a bad --set key or value
        raise SystemExit(f"error: {e}") from None
    return train.run_record(cfg)


def read_record(out_dir):
    """out_dir/run.json (train.py writes it at the start of a run), or None."""
    path = os.path.join(out_dir, "run.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def _short(v):
    text = json.dumps(v) if isinstance(v, (dict, list)) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def record_diff(recorded, planned):
    """'' when the run's record matches the plan, else one line: 'key <run's> != <planned>; ...'."""
    if recorded is None:
        return "no run.json (trained before run records were kept, or not by train.py)"
    diffs = []
    rc, pc = recorded.get("config", {}), planned["config"]
    for key in sorted((set(rc) | set(pc)) - set(NOT_COMPARED) - {"dataset"}):  # the dataset: by its fingerprint
        if rc.get(key) != pc.get(key):
            diffs.append(f"{key} {_short(rc.get(key))} != {_short(pc.get(key))}")
    rd, pd = recorded.get("dataset", {}), planned["dataset"]
    if rd.get("name") != pd["name"]:
        diffs.append(f"dataset {rd.get('name')} != {pd['name']}")
    elif (rd.get("meta_sha256"), rd.get("shards")) != (pd["meta_sha256"], pd["shards"]):
        fp = lambda d: hashlib.sha256(json.dumps([d.get("meta_sha256"), d.get("shards")]).encode()).hexdigest()[:8]  # noqa: E731
        diffs.append(f"dataset {pd['name']} contents {fp(rd)} != {fp(pd)} (meta.json or shard sizes)")
    rk, pk = recorded.get("code", {}), planned["code"]
    if rk.get("source_sha256") != pk["source_sha256"]:
        name = lambda k: f"{(k.get('source_sha256') or '?')[:8]} (commit {(k.get('commit') or 'none')[:7]}" \
            f"{', dirty' if k.get('dirty') else ''})"  # noqa: E731
        diffs.append(f"code {name(rk)} != {name(pk)}")
    return "; ".join(diffs)


@dataclass
class Decision:
    """What happens to one planned run: new | reuse | resume | retrain | refuse (diff says why)."""
    action: str
    diff: str = ""
    source: str = ""  # reuse of another study's identical run: its folder (linked into this study's)

    def describe(self):
        return {"new": "new", "reuse": "done, reused" + (f" from {self.source}" if self.source else ""),
                "resume": "interrupted, would resume from its ckpt.pt",
                "retrain": f"would retrain: {self.diff}", "refuse": f"would refuse: {self.diff}"}[self.action]


def decide(run, out_dir, planned, on_mismatch):
    """Compare a run folder with the plan: a finished run whose run.json matches is reused, an interrupted one
    resumed; a mismatch is retrained or refused (--on_mismatch); a folder without ckpt.pt is trained anew."""
    if not os.path.exists(os.path.join(out_dir, "ckpt.pt")):
        return Decision("new")
    diff = record_diff(read_record(out_dir), planned)
    if diff:
        return Decision(on_mismatch, diff)
    return Decision("reuse" if os.path.exists(os.path.join(out_dir, "done")) else "resume")


def set_aside(out_dir):
    """Move a run folder that is to be retrained to <out_dir>.previous (replacing an older one): a retrain
    never mixes two trainings in one folder, and the last one stays readable until the next retrain."""
    old = out_dir.rstrip("/") + ".previous"
    if os.path.islink(old):  # a link to another study's run: only the link goes
        os.remove(old)
    elif os.path.exists(old):
        shutil.rmtree(old)
    os.replace(out_dir, old)
    return old


# --------------------------------------------------------------------------------------------
# where a study writes, what it ran on

def folder_suffix(overrides, own_dataset, dataset):
    """'' for a study as shipped; else a suffix from its --set overrides (sorted, 'max_iters5-eval_iters1') and,
    when it trains on a dataset other than its own (the offline python_docs fallback), that dataset's name: a
    quick try never writes into the folders the repository ships."""
    parts = [f"{k}{v}" for k, v in sorted(overrides.items())]
    if dataset != own_dataset and "dataset" not in overrides:
        parts.append(dataset)
    suffix = re.sub(r"[^A-Za-z0-9_.=+-]", "_", "-".join(parts))
    if len(suffix) > 60:  # keep folder names readable; the hash keeps different overrides apart
        suffix = suffix[:51] + "-" + hashlib.sha256(suffix.encode()).hexdigest()[:8]
    return suffix


AUTO_PREPARED = r"(python_docs|shakespeare_char|shakespeare)(?:_(char|gpt2|t5))?"  # prepare.ensure_prepared's


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


def resolve_dataset(args, dry_run):
    """(the dataset the runs train on, a note for the dry run or None). A real run prepares it: corpus_char from
    the books or, offline, python_docs instead (ensure_dataset); python_docs and shakespeare on first use; any
    other missing dataset stops the study before a run starts, with the prepare.py command. A dry run prepares
    nothing and says what the real run would do."""
    import prepare
    name, data_dir = args.get("dataset"), args.get("data_dir", "data")
    folder = os.path.join(data_dir, name)
    if prepare.list_shards(folder, "train"):
        return name, None
    if name == "corpus_char":
        if dry_run:
            return name, (f"dataset {name} is not prepared in {folder}: the real run prepares it from the books "
                          f"(a download) or, offline, trains on python_docs and then writes to folders suffixed "
                          f"'python_docs'")
        return ensure_dataset(args), None
    if re.fullmatch(AUTO_PREPARED, name):
        if dry_run:
            return name, f"dataset {name} is not prepared in {folder}: the real run prepares it first (offline)"
        prepare.ensure_prepared(name, data_dir)
        return name, None
    message = (f"dataset '{name}' is not prepared in {folder}: run `{prepare.prepare_command(name, data_dir)}` "
               f"first")
    if dry_run:
        return name, f"error: {message} (the real run stops before starting any run)"
    raise SystemExit(f"error: {message} (no run was started)")


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
