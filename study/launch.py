"""
How a study's train.py runs are built and launched: the one command builder and the one launcher, used by
ablate.py's studies, the trend (study/trend.py) and the Slurm script (study/slurm.py).

    train_args(run)      train.py's arguments: [config file] --key=value ... (also what records.planned_record and
                         studies.projection parse, so that the record compared is the command run)
    train_command(run, out_dir, resume=False, nproc=1)
        nproc 1:   python train.py ARGS --out_dir=OUT [--init_from=resume]
        nproc k:   torchrun --standalone --nproc_per_node=k train.py ARGS --out_dir=OUT [--init_from=resume]
                   (DDP over k GPUs; train.py splits gradient_accumulation_steps over the k ranks)
    shown(cmd)           the command as one shell line: what the dry run prints, the `done` marker keeps and the
                         Slurm script runs
    executable(cmd)      the same command for subprocess: python -> this Python, torchrun -> this Python's
                         torch.distributed.run
    slots(jobs, gpus, gpus_per_run)
                         where runs go: `jobs` slots on this machine (--jobs), or one slot per group of
                         gpus_per_run of the listed GPUs (--gpus=0,1,2,3 --gpus_per_run=2: "0,1" and "2,3"), each
                         with its CUDA_VISIBLE_DEVICES
    pool(items, slots, work)
                         work(item, slot) for every item, at most one item per slot at a time; the next item
                         starts when a slot frees (a thread per slot waits on its train.py process)
    run_train(cmd, log_path, env)
                         one train.py (or torchrun) process, its whole output appended to log_path
    set_aside(out_dir)   a run to retrain: its folder moves to <run>.previous first
    execute(...)         a study's runs: link another study's identical run, set aside a run to retrain, train or
                         resume in the pool, check the ckpt.pt, write the `done` marker {cmd, wall_s}
"""

import json
import os
import queue
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from study.provenance import machine


def fmt(v):
    return str(v)  # True/False/numbers/strings: all read back by configurator.py's literal parsing


def train_args(run):
    """train.py's arguments for a run (studies.Run): its config file, then --key=value for every argument."""
    return ([run.config_file] if run.config_file else []) + [f"--{k}={fmt(v)}" for k, v in run.args.items()]


def train_command(run, out_dir, resume=False, nproc=1):
    """The command that trains `run` into out_dir: python train.py ..., or torchrun over nproc processes."""
    head = ["python"] if nproc == 1 else ["torchrun", "--standalone", f"--nproc_per_node={nproc}"]
    return head + ["train.py"] + train_args(run) + [f"--out_dir={out_dir}"] + (["--init_from=resume"] if resume else [])


def shown(cmd):
    return shlex.join(cmd)


def executable(cmd):
    """The command for subprocess: 'python' is this Python, 'torchrun' is this Python's torch.distributed.run
    (the torchrun script of the same environment)."""
    head = {"python": [sys.executable], "torchrun": [sys.executable, "-m", "torch.distributed.run"]}
    return head.get(cmd[0], cmd[:1]) + cmd[1:]


def thread_env(threads):
    """OMP_NUM_THREADS / MKL_NUM_THREADS for a run (torch's intra-op threads; on a busy shared CPU one thread is
    many times faster than two); {} for torch's own choice."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}


# --------------------------------------------------------------------------------------------
# where runs go: slots on this machine or GPUs

@dataclass
class Slot:
    name: str                                  # "job 2" or "GPU 0,1": printed beside a run
    env: dict = field(default_factory=dict)    # CUDA_VISIBLE_DEVICES of a GPU slot
    nproc: int = 1                             # processes per run: torchrun over nproc GPUs when > 1


def parse_gpus(text, per_run):
    """--gpus=0,1,2,3 and --gpus_per_run=k -> the groups of k GPU indices, one run on each at a time."""
    if per_run < 1:
        raise SystemExit(f"error: bad value {per_run} for --gpus_per_run: must be >= 1")
    items = [g.strip() for g in text.split(",")]
    if not items or not all(g.isdigit() for g in items):
        raise SystemExit(f"error: bad value '{text}' for --gpus: use comma-separated GPU indices, e.g. 0,1,2,3")
    twice = sorted({g for g in items if items.count(g) > 1})
    if twice:
        raise SystemExit(f"error: bad value '{text}' for --gpus: GPU {twice[0]} is listed twice")
    if len(items) % per_run:
        raise SystemExit(f"error: bad value {per_run} for --gpus_per_run: the {len(items)} GPUs of --gpus={text} "
                         f"do not split into groups of {per_run} (choose a divisor of {len(items)})")
    return [items[i:i + per_run] for i in range(0, len(items), per_run)]


def slots(jobs=1, gpus=None, gpus_per_run=1):
    """`jobs` slots on this machine (no GPU placement), or one slot per group of gpus_per_run listed GPUs."""
    if gpus is None:
        return [Slot(f"job {i + 1}") for i in range(jobs)]
    return [Slot("GPU " + ",".join(g), {"CUDA_VISIBLE_DEVICES": ",".join(g)}, len(g))
            for g in parse_gpus(gpus, gpus_per_run)]


def pool(items, slots, work):
    """[work(item, slot) for item in items], at most one item on a slot at a time: each of len(slots) threads
    takes a free slot, runs one item on it and frees it, so the next item starts as soon as a run ends."""
    free = queue.Queue()
    for s in slots:
        free.put(s)

    def one(item):
        slot = free.get()  # never waits long: there are as many threads as slots
        try:
            return work(item, slot)
        finally:
            free.put(slot)

    if len(slots) == 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=len(slots)) as threads:  # they only wait on the train.py processes
        return list(threads.map(one, items))


# --------------------------------------------------------------------------------------------
# one run

def run_train(cmd, log_path, env, prefix="", echo=True):
    """Run train.py (or torchrun), append its whole output (after the command line) to log_path, echo its
    eval/done/error lines (with prefix: the run's name, when several runs share the console). Returns the exit
    code."""
    with open(log_path, "a") as log, subprocess.Popen(executable(cmd), stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True, bufsize=1,
                                                      env={**os.environ, **env}) as p:
        log.write(f"$ {shown(cmd)}\n")
        for line in p.stdout:
            log.write(line)
            if echo and (line.startswith(("eval", "done", "error", "Traceback")) or "Error" in line):
                print("    " + prefix + line.rstrip(), flush=True)
        return p.wait()


def last_line(path):
    """The last non-empty line of a file (a failed run's train.log: its one-line error), or ''."""
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1] if lines else ""


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


def write_done(out_dir, cmd_line, wall_s, **extra):
    """The `done` marker of a finished run: its command and training wall time (the Slurm script writes the same
    keys)."""
    path = os.path.join(out_dir, "done")
    with open(path + ".tmp", "w") as f:
        json.dump({"cmd": cmd_line, "wall_s": wall_s, **extra}, f)
    os.replace(path + ".tmp", path)


def read_done(out_dir):
    with open(os.path.join(out_dir, "done")) as f:
        return json.load(f)


def train_one(run, out_dir, decision, slot, threads, prefix="", done_extra=None):
    """Train (or resume) one run on a slot; returns its record {cmd, wall_s} or {cmd, failed: exit code, reason}.
    done_extra: more keys for the `done` marker (the trend's {"jobs": runs trained at once})."""
    cmd = train_command(run, out_dir, decision.action == "resume", slot.nproc)
    record = {"cmd": shown(train_command(run, out_dir, nproc=slot.nproc))}
    if decision.action == "retrain":
        print(f"    {run.name}: the old run moved to {set_aside(out_dir)} ({decision.diff})", flush=True)
    os.makedirs(out_dir, exist_ok=True)
    log_path = os.path.join(out_dir, "train.log")  # appended to: an earlier failed attempt's log stays above
    t0 = time.time()
    rc = run_train(cmd, log_path, {**thread_env(threads), **slot.env}, prefix)
    wall = time.time() - t0
    if rc != 0:
        return {**record, "failed": rc, "wall_s": wall, "reason": last_line(log_path) or f"exit {rc}"}
    if not os.path.exists(os.path.join(out_dir, "ckpt.pt")):
        return {**record, "failed": 1, "wall_s": wall,
                "reason": "train.py exited 0 but wrote no ckpt.pt (save_checkpoint=False?)"}
    write_done(out_dir, record["cmd"], wall, machine=machine(threads, run.args.get("device")), **(done_extra or {}))
    print(f"    {run.name}: trained in {wall:.0f} s" + (f" on {slot.name}" if slot.env else ""), flush=True)
    return {**record, "wall_s": wall}


def execute(runs, runs_dir, decisions, slots, threads=None, train=True, done_extra=None):
    """Train the runs that need it in the pool of slots (each run with `threads` threads); returns {name: record}
    in plan order. Reused runs get their wall time from the done marker. train=False trains nothing (--emit:
    the finished runs are collected, the others are left to the Slurm script)."""
    records, todo = {}, []
    for i, run in enumerate(runs):
        out_dir = os.path.join(runs_dir, run.name)
        decision = decisions[run.name]
        if decision.source and not os.path.exists(out_dir):  # another study's identical run: linked, not copied
            os.makedirs(runs_dir, exist_ok=True)
            os.symlink(os.path.relpath(os.path.abspath(decision.source), os.path.abspath(runs_dir)), out_dir)
        if decision.action == "reuse":
            print(f"[{i + 1}/{len(runs)}] {run.name}: {decision.describe()}", flush=True)
            records[run.name] = {"cmd": read_done(out_dir).get("cmd") or shown(train_command(run, out_dir)),
                                 "wall_s": read_done(out_dir).get("wall_s")}
        else:
            todo.append((i, run, out_dir, decision))

    def start(item, slot):
        i, run, out_dir, decision = item
        cmd = train_command(run, out_dir, decision.action == "resume", slot.nproc)
        where = f" on {slot.name}" if slot.env else ""
        print(f"[{i + 1}/{len(runs)}] {run.name} ({decision.action}{where}): {shown(cmd)}", flush=True)
        return run.name, train_one(run, out_dir, decision, slot, threads, prefix=f"{run.name}: " if len(slots) > 1
                                   else "", done_extra=done_extra)

    if train:
        records.update(pool(todo, slots, start))
    return {r.name: records[r.name] for r in runs if r.name in records}
