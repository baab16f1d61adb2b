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

The resources are #SBATCH lines a user edits before submitting: GPUs per task (--gpus_per_run; none for a CPU
plan), CPUs (8 per GPU, or the threads of a CPU run), memory, time (--time), and --partition / --account when
given. Every task cds to the repository it was written from and appends its output to <run>/train.log.
"""

import json
import os
import re
import shlex

TIME_FORMAT = r"(\d+-)?\d+(:\d{2}){0,2}"  # Slurm's minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]


def check_time(text):
    """A --time Slurm accepts; one-line error otherwise."""
    if not re.fullmatch(TIME_FORMAT, text):
        raise SystemExit(f"error: bad value '{text}' for --time: use Slurm's format, e.g. 04:00:00, 90 (minutes) "
                         f"or 1-12:00:00")
    return text


def resources(gpus_per_task, threads, time, partition=None, account=None):
    """The #SBATCH resource lines (an editable starting point: cpus 8 per GPU, memory 64G per GPU; a CPU plan
    gets its threads and 8G)."""
    cpus = 8 * gpus_per_task if gpus_per_task else max(threads or 1, 1)
    mem = f"{64 * gpus_per_task}G" if gpus_per_task else "8G"
    lines = [f"#SBATCH --gpus-per-task={gpus_per_task}" if gpus_per_task else "# (no GPU: the runs train on the CPU)",
             f"#SBATCH --cpus-per-task={cpus}", f"#SBATCH --mem={mem}", f"#SBATCH --time={time}"]
    lines += [f"#SBATCH --partition={partition}"] if partition else []
    lines += [f"#SBATCH --account={account}"] if account else []
    return lines


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
