"""
A study for a Slurm cluster: `python ablate.py ... --emit=slurm` writes an sbatch array script, one task per run not
finished yet (records.decide's new, resume and retrain), each task running that run's exact command
(launch.train_command: python train.py ..., or torchrun over --gpus_per_run GPUs) and then writing the run's
`done` marker, as ablate.py does after a run it trains itself.

    sbatch ablations/<study>_<scale>/slurm.sbatch      # submit the array
    python ablate.py ... --emit=slurm                  # the same command again: collects

Running the same command again collects: the runs whose run.json matches the plan are reused, the tables are
written from them, the ones not finished are named (and a new script holds just those). Nothing trains on the
machine that runs ablate.py.

The resources are #SBATCH lines a user may edit before submitting, set from study/hardware.py's plan of each run
(on --gpus_per_run GPUs, an 80 GB H100). One array has one set of resources for all its tasks, so each line is the
largest over the runs, and the script's comment says which run sets it:
  --gpus-per-task  --gpus_per_run (none for a CPU plan);
  --cpus-per-task  8 per GPU (data loading is a memmap gather: a few threads; the rest for torch.compile);
  --mem            host memory, per GPU: HOST_BASE_GIB (Python, torch, the CUDA libraries, torch.compile's
                   workers: assumed, not measured) + 2 x the checkpoint (weights and optimizer state: a resume
                   loads it into host memory, and a save copies it there), rounded up to 8 GiB;
  --time           the plan's H100-hours / GPUs x TIME_MARGIN + TIME_OVERHEAD_H (start-up, compilation,
                   checkpoints), rounded up to 15 minutes; --time overrides it. A run stopped by the limit keeps
                   its last checkpoint, and the same ablate.py command then writes a script that resumes it;
  the GPU memory the plan needs per GPU (the largest run's, at the micro-batch that fits) is a comment: Slurm has
  no portable option for it (sites use --constraint or a --gres GPU type).
A CPU plan (the tests' tiny runs) gets its threads, 8G and 24:00:00 (or --time). --partition / --account when
given. Every task cds to the repository it was written from and appends its output to <run>/train.log.
"""

import json
import math
import os
import re
import shlex

from study.hardware import USABLE, fit_flags, smaller_micro_batch

TIME_FORMAT = r"(\d+-)?\d+(:\d{2}){0,2}"  # Slurm's minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]


def check_time(text):
    """A --time Slurm accepts; one-line error otherwise."""
    if not re.fullmatch(TIME_FORMAT, text):
        raise SystemExit(f"error: bad value '{text}' for --time: use Slurm's format, e.g. 04:00:00, 90 (minutes) "
                         f"or 1-12:00:00")
    return text


DEFAULT_TIME = "24:00:00"   # a CPU plan's, without --time
HOST_BASE_GIB = 32          # host memory per GPU process besides the checkpoint (assumed, see above)
TIME_MARGIN = 1.5           # on the plan's hours: its MFU is an estimate, an H100's; other GPUs are slower
TIME_OVERHEAD_H = 0.5       # start-up, compilation, checkpoint saves (assumed)


def slurm_time(hours):
    """Hours as Slurm's [D-]HH:MM:SS, rounded up to 15 minutes."""
    minutes = math.ceil(hours * 4 - 1e-9) * 15
    days, rest = divmod(minutes, 24 * 60)
    return (f"{days}-" if days else "") + f"{rest // 60:02d}:{rest % 60:02d}:00"


def task_hours(p):
    """A run's time limit from its plan (p["gpus"] GPUs with DDP, ideal scaling), in hours."""
    return p["gpu_hours"] / p["gpus"] * TIME_MARGIN + TIME_OVERHEAD_H


def host_gib(p):
    """Host memory of a task from its plan: per GPU process HOST_BASE_GIB + 2 x the checkpoint, rounded up to 8."""
    ckpt = p["memory"]["weights"] + p["memory"]["optimizer"]
    return p["gpus"] * 8 * math.ceil((HOST_BASE_GIB + 2 * ckpt) / 8)


def resources(gpus_per_task, threads, time=None, partition=None, account=None, plans=None):
    """(the #SBATCH lines with their comments, warnings to print). plans: [(run name, hardware.plan of the run on
    gpus_per_task GPUs)] for a GPU plan; None for a CPU plan (its threads, 8G, DEFAULT_TIME)."""
    where = ([f"#SBATCH --partition={partition}"] if partition else []) + \
        ([f"#SBATCH --account={account}"] if account else [])
    if not gpus_per_task or not plans:
        return ["# (no GPU: the runs train on the CPU)", f"#SBATCH --cpus-per-task={max(threads or 1, 1)}",
                "#SBATCH --mem=8G", f"#SBATCH --time={time or DEFAULT_TIME}"] + where, []
    k, n = gpus_per_task, len(plans)
    mem_name, mem = max(plans, key=lambda np_: np_[1]["memory"]["total"])
    time_name, longest = max(plans, key=lambda np_: np_[1]["gpu_hours"])
    host_name, host = max(plans, key=lambda np_: host_gib(np_[1]))
    planned = slurm_time(task_hours(longest))
    card = mem["card_gib"]
    lines = [f"# Resources from study/hardware.py's plan of each run on {k} GPU(s) of {card} GB (H100). One array has "
             f"one set of resources for all its tasks: each line is the largest over its {n} run(s).",
             f"#   GPU memory: {mem['memory']['total']:.1f} GiB per GPU ({mem_name}, micro-batch {mem['micro_batch']} x "
             f"{mem['accumulation']} accumulation): a card with >= {math.ceil(mem['memory']['total'] / USABLE)} GiB "
             f"(the plan fills at most {USABLE:.0%}); ask for one with your site's option (e.g. --constraint or "
             f"--gres=gpu:<type>:{k})",
             f"#   time: {longest['gpu_hours']:.3g} H100-hours ({time_name}) / {k} GPU(s) x {TIME_MARGIN} + "
             f"{TIME_OVERHEAD_H} h = {task_hours(longest):.3g} h -> {planned}"
             + (f"; --time={time} was given instead" if time else "")
             + ". A slower GPU than an H100 takes longer; a run stopped by the limit keeps its last checkpoint, and "
               "the same ablate.py command then writes a script that resumes it",
             f"#   host memory: {host_gib(host)} GiB ({host_name}): {HOST_BASE_GIB} GiB + "
             f"2 x its checkpoint ({host['memory']['weights'] + host['memory']['optimizer']:.1f} GiB) per GPU, "
             f"rounded up to 8 GiB",
             f"#SBATCH --gpus-per-task={k}", f"#SBATCH --cpus-per-task={8 * k}", f"#SBATCH --mem={host_gib(host)}G",
             f"#SBATCH --time={time or planned}"] + where
    warnings = []
    if time and task_hours(longest) > _hours(time):
        warnings.append(f"--time={time} is shorter than the plan's {planned} for {time_name}: it will stop before "
                        f"the end (and resume from its checkpoint when this command writes the next script)")
    if not all(p["fits"] for _, p in plans):
        warnings.append(f"{', '.join(name for name, p in plans if not p['fits'])} fit(s) no micro-batch on one {card} "
                        f"GB card: they need sharding (FSDP/ZeRO), which train.py does not have")
    elif any(p["micro_batch"] < p["preset_micro_batch"] for _, p in plans):
        micro, accum = smaller_micro_batch([p for _, p in plans])
        smaller = [name for name, p in plans if p["micro_batch"] < p["preset_micro_batch"]]
        warnings.append(f"{len(smaller)} run(s) do not fit one {card} GB card at the preset's micro-batch "
                        f"({', '.join(smaller)}): add {fit_flags(micro, accum)[0]} to the ablate.py command (the same "
                        f"global batch), or run them on larger cards")
    if task_hours(longest) > 48 and k == 1:
        warnings.append(f"{time_name} is planned at {planned} on one GPU: --gpus_per_run=k (torchrun, DDP) divides "
                        f"its time by up to k, and a shorter --time makes it resume over several tasks")
    lines += [f"# warning: {w}" for w in warnings]
    return lines, warnings


def _hours(text):
    """Slurm's --time text in hours (minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]])."""
    days, _, rest = text.rpartition("-")
    parts = [int(x) for x in rest.split(":")]
    if not days:  # minutes, minutes:seconds, hours:minutes:seconds
        h, m, sec = ([0] + parts if len(parts) == 2 else [0, parts[0], 0] if len(parts) == 1 else parts)
    else:  # days-hours, days-hours:minutes, days-hours:minutes:seconds
        h, m, sec = (parts + [0, 0])[:3]
    return int(days or 0) * 24 + h + m / 60 + sec / 3600


def script(tasks, *, repo, runs_dir, job_name, resource_lines, threads, command):
    """The sbatch array script: tasks = [(run name, out_dir, cmd as a list, the command its done marker names)];
    command: the ablate.py command that wrote it (to collect with)."""
    head = ["#!/bin/bash", f"# {len(tasks)} run(s) of `{command}`, one array task each.",
            f"# Submit: sbatch {os.path.join(runs_dir, 'slurm.sbatch')}",
            f"# Then collect: {command}   (reuses the finished runs, names the others, writes the tables)",
            f"#SBATCH --job-name={job_name}", f"#SBATCH --array=0-{len(tasks) - 1}", "#SBATCH --ntasks=1",
            *resource_lines, f"#SBATCH --output={os.path.join(os.path.abspath(runs_dir), 'slurm_%A_%a.out')}",
            "set -euo pipefail", f"cd {shlex.quote(os.path.abspath(repo))}"]
    if threads:
        head.append(f"export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}")
    head += ['task="${SLURM_ARRAY_TASK_ID:?set by sbatch --array (by hand: SLURM_ARRAY_TASK_ID=0 bash this script)}"',
             'case "$task" in']
    for i, (name, out_dir, cmd, marker_cmd) in enumerate(tasks):
        head += [f"  {i}) run={shlex.quote(name)}; out={shlex.quote(out_dir)}; "
                 f"done_cmd={shlex.quote(json.dumps(marker_cmd))}",
                 f"     cmd=({shlex.join(cmd)}) ;;"]
    head += [f'  *) echo "error: no task $task in this array (0-{len(tasks) - 1})" >&2; exit 2 ;;', "esac",
             'mkdir -p "$out"',
             'echo "$ ${cmd[*]}" >> "$out/train.log"',
             "start=$SECONDS",
             '"${cmd[@]}" >> "$out/train.log" 2>&1',
             '[ -f "$out/ckpt.pt" ] || { echo "error: $run: train.py exited 0 but wrote no ckpt.pt" >&2; exit 1; }',
             "# the run's done marker, as ablate.py writes it (launch.write_done): its command and wall time",
             'printf \'{"cmd": %s, "wall_s": %d, "slurm_job": "%s"}\\n\' "$done_cmd" "$((SECONDS - start))" '
             '"${SLURM_ARRAY_JOB_ID:-}_${task}" > "$out/done.tmp"',
             'mv "$out/done.tmp" "$out/done"',
             'echo "$run: trained in $((SECONDS - start)) s"']
    return "\n".join(head) + "\n"


def tasks_of(script_text):
    """[(run name, cmd as a list)] of a script written by script(), in task order (for tests and a reader)."""
    runs = re.findall(r"^  \d+\) run=(\S*); out=", script_text, flags=re.M)
    cmds = re.findall(r"^     cmd=\((.*)\) ;;$", script_text, flags=re.M)
    return [(shlex.split(r)[0], shlex.split(c)) for r, c in zip(runs, cmds)]


def write(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path
