"""
What a run was trained with, and whether a finished run can be reused (the one rule, `decide`); where a study
writes and the dataset it trains on. Provenance for the results' headers (commit, machine, dataset line) is
study/provenance.py; building and launching the commands is study/launch.py.

train.py records in <run>/run.json what the run was trained with: the resolved config, the dataset (name,
sha256 of meta.json, shard sizes) and the code (git commit; sha256 of the training code). planned_record is
the record this plan would give; record_diff compares the two:

    config:  every key equal, except NOT_COMPARED (where a run is written or read from, how it was started)
    dataset: the same name and the same contents (meta.json sha256 and shard sizes)
    code:    the same sha256 of the training code (the commit is only named)

decide, the one reuse rule (ablate.py's studies, the findings' runs shared with the norm and optim studies, the
trend's segments):
    no ckpt.pt                       -> new (or reused from an identical finished run elsewhere, when given)
    no run.json, or one that differs -> retrain or refuse (--on_mismatch), naming the differing keys
                                        (`max_iters 5 != 400`: the run's, then the plan's); a folder without
                                        run.json is never reused: nothing says what it was trained with
    a record that matches            -> reuse when finished (the `done` marker), else resume
A retrained run's old folder is set aside as <run>.previous (launch.set_aside).

Folders and data: folder_suffix (a study with --set overrides, or on another dataset than its own, writes to
suffixed folders), ensure_dataset/resolve_dataset (the dataset the runs train on, prepared on first use by
prepare.py's own rule, prepare.auto_prepared).
"""

import hashlib
import json
import os
import re
from dataclasses import dataclass

from study.launch import train_args


# --------------------------------------------------------------------------------------------
# run records: a run folder is reused only when it was trained with what the plan asks for

# config keys that do not change what is trained: where it is written or read from (the dataset's contents
# are compared by their fingerprint instead), how it was started (a resumed run continues the same training)
NOT_COMPARED = ("out_dir", "data_dir", "init_from", "wandb_log", "wandb_project", "wandb_run_name")


def planned_record(run):
    """The run.json that train.py would write for this run (train.run_record on the resolved config)."""
    import train
    from model import GPTConfig
    try:
        cfg = train.parse_config(train_args(run), GPTConfig, train.OptimConfig, train.TrainConfig)
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


def record_diff(recorded, planned, ignore=()):
    """'' when the run's record matches the plan, else one line: 'key <run's> != <planned>; ...'. A folder
    without a record differs: nothing says what it was trained with. `ignore`: config keys not compared besides
    NOT_COMPARED (the trend's segments of one run each set their own max_iters and decay_frac)."""
    if recorded is None:
        return "no run.json (trained before run records were kept, or not by train.py): nothing says what it was " \
               "trained with"
    diffs = []
    rc, pc = recorded.get("config", {}), planned["config"]
    for key in sorted((set(rc) | set(pc)) - set(NOT_COMPARED) - set(ignore) - {"dataset"}):  # the dataset: by its fingerprint
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


def decide(out_dir, planned, on_mismatch, elsewhere=(), ignore=(), finished=None):
    """The one rule for whether a run folder is reused (ablate.py's studies, the findings and the trend all ask
    it). A finished run (default: its `done` marker is there) whose run.json matches the plan is reused, with or
    without its ckpt.pt (shipped run records carry none); an unfinished one with a ckpt.pt is resumed; a folder
    whose run.json is missing or differs from the plan is retrained or refused (on_mismatch), naming why. A
    folder with neither is trained anew, unless one of the `elsewhere` folders (another study's identical run)
    is reused from there."""
    if finished is None:
        finished = os.path.exists(os.path.join(out_dir, "done"))
    if not finished and not os.path.exists(os.path.join(out_dir, "ckpt.pt")):
        for other in elsewhere:
            if decide(other, planned, "refuse", ignore=ignore).action == "reuse":
                return Decision("reuse", source=other)
        return Decision("new")
    diff = record_diff(read_record(out_dir), planned, ignore)
    if diff:
        return Decision(on_mismatch, diff)
    return Decision("reuse" if finished else "resume")


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
    if prepare.auto_prepared(name) is not None:  # prepare.py's own rule (shakespeare_t5: no, it has no t5 form)
        if dry_run:
            return name, f"dataset {name} is not prepared in {folder}: the real run prepares it first (offline)"
        prepare.ensure_prepared(name, data_dir)
        return name, None
    message = (f"dataset '{name}' is not prepared in {folder}: run `{prepare.prepare_command(name, data_dir)}` "
               f"first")
    if dry_run:
        return name, f"error: {message} (the real run stops before starting any run)"
    raise SystemExit(f"error: {message} (no run was started)")
