"""study/launch.py and study/slurm.py through ablate.py: the commands built (python train.py or torchrun), the
placement of runs on GPUs (from the commands and environments, no GPU needed), a real two-process torchrun run on
CPU (gloo) that trains as one process does, and the Slurm array script: bash -n, its commands equal the dry
run's, and its tasks run one by one then collected give the table ablate.py gives running the plan itself."""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

import ablate
from study import launch, runlog, slurm, studies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = ["--no_exactness_test", "--no_plots", "--analyze_batches=1", "--analyze_batch_size=2"]


def _tiny(data_dir, name, **extra):
    """--set overrides that make every run of a study a ~2 s, 2-step run on the tiny dataset."""
    sets = {**dict(data_dir=data_dir, dataset=name, max_iters=2, eval_interval=2, eval_iters=1, log_interval=1,
                   n_layer=1, n_embd=32, n_head=2, block_size=16, batch_size=2, warmup_iters=0), **extra}
    return [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # train.py is run as `python train.py`
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_commands_one_process_and_torchrun():
    run = studies.Run("ln", {"n_layer": 2, "compile": False}, "config/llama-130m.py")
    assert launch.train_command(run, "out/ln") == ["python", "train.py", "config/llama-130m.py", "--n_layer=2",
                                                   "--compile=False", "--out_dir=out/ln"]
    cmd = launch.train_command(run, "out/ln", resume=True, nproc=4)
    assert cmd[:4] == ["torchrun", "--standalone", "--nproc_per_node=4", "train.py"]
    assert cmd[-1] == "--init_from=resume"
    assert launch.executable(cmd)[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert launch.shown(launch.train_command(studies.Run("x", {"wandb_run_name": "a b"}), "o")) == \
        "python train.py '--wandb_run_name=a b' --out_dir=o"


def test_gpu_groups_and_their_one_line_errors():
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in launch.slots(gpus="0,1,2,3")] == ["0", "1", "2", "3"]
    two = launch.slots(gpus="4,5,6,7", gpus_per_run=2)
    assert [(s.env["CUDA_VISIBLE_DEVICES"], s.nproc) for s in two] == [("4,5", 2), ("6,7", 2)]
    assert [s.env for s in launch.slots(jobs=3)] == [{}, {}, {}]
    for gpus, k, words in (("0,x", 1, "'0,x' for --gpus"), ("0,0", 1, "GPU 0 is listed twice"),
                           ("0,1,2", 2, "bad value 2 for --gpus_per_run"), ("0,1", 0, "bad value 0 for --gpus_per_run")):
        with pytest.raises(SystemExit) as e:
            launch.parse_gpus(gpus, k)
        assert words in e.value.code and "\n" not in e.value.code


@pytest.mark.parametrize("argv, words", [
    (["--gpus=0,1", "--jobs=2"], "bad value 2 for --jobs with --gpus"),
    (["--gpus_per_run=2"], "needs the GPUs to run on"),
    (["--gpus=0,1", "--emit=slurm"], "Slurm places them"),
    (["--partition=gpu"], "--partition is for --emit=slurm only"),
    (["--gpus=0,1", "--gpus_per_run=2"], "gradient_accumulation_steps=1"),  # 2 ranks cannot share 1 micro-batch
    (["--emit=slurm", "--time=4h"], "bad value '4h' for --time"),
    (["--emit=lsf"], "invalid choice: 'lsf'"),
])
def test_bad_placement_flags_are_one_line_errors(argv, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        ablate.main(["norm", "--dry_run", f"--runs_dir={tmp_path}/runs"] + argv)
    message = (e.value.code if isinstance(e.value.code, str) else "") + capsys.readouterr().err
    assert words in message and len(message.strip().splitlines()) == 1, message
    assert not os.path.exists(tmp_path / "runs")


def test_runs_are_placed_one_per_gpu_and_the_next_starts_when_one_frees(tiny_dataset, tmp_path, in_root,
                                                                        monkeypatch, capsys):
    """4 runs on 3 GPUs: each run gets one GPU in CUDA_VISIBLE_DEVICES, never two runs on a GPU at once, and the
    fourth starts only after one of the first three ended (placement read from the commands and environments)."""
    seen, lock = [], threading.Lock()

    def fake_train(cmd, log_path, env, prefix="", echo=True):
        start = time.time()
        time.sleep(0.3)
        with lock:
            seen.append((env.get("CUDA_VISIBLE_DEVICES"), start, time.time(), cmd))
        return 1  # nothing is trained: the study then stops naming the failed runs

    monkeypatch.setattr(launch, "run_train", fake_train)
    data_dir, name = tiny_dataset
    argv = ["norm", "--gpus=0,1,2", f"--runs_dir={tmp_path}/runs", "--no_analysis"] + QUIET + _tiny(data_dir, name)
    with pytest.raises(SystemExit, match="4 of 4 runs failed"):
        ablate.main(argv)
    assert len(seen) == 4 and {s[0] for s in seen} == {"0", "1", "2"}
    for gpu in "012":  # at most one run per GPU at a time
        spans = sorted((a, b) for g, a, b, _ in seen if g == gpu)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))
    first_end = min(b for _, _, b, _ in seen)
    assert sorted(a for _, a, _, _ in seen)[3] >= first_end  # the fourth waited for a free GPU
    assert all(c[:2] == ["python", "train.py"] for *_, c in seen)

    seen.clear()  # --gpus_per_run=2: torchrun over each pair
    with pytest.raises(SystemExit):
        ablate.main(argv[:1] + ["--gpus=0,1,2,3", "--gpus_per_run=2"] + argv[2:]
                    + ["--set", "gradient_accumulation_steps=2"])
    assert sorted({s[0] for s in seen}) == ["0,1", "2,3"]
    assert all(c[:4] == ["torchrun", "--standalone", "--nproc_per_node=2", "train.py"] for *_, c in seen)
    ablate.main(argv[:1] + ["--gpus=0,1,2,3", "--gpus_per_run=2", "--dry_run"] + argv[2:]
                + ["--set", "gradient_accumulation_steps=2"])
    out = capsys.readouterr().out
    assert "# placed on GPUs 0,1 | 2,3: one run per 2 GPUs at a time" in out
    assert sum(line.startswith("torchrun --standalone --nproc_per_node=2 train.py") for line in out.splitlines()) == 4


def test_torchrun_over_two_processes_trains_as_one_process(tiny_dataset, tmp_path, in_root):
    """The --gpus_per_run path for real, on CPU: torchrun with 2 gloo ranks (1 micro-batch each) trains the losses
    of one process with 2 micro-batches."""
    import torch
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    data_dir, name = tiny_dataset
    common = ["norm", "--only=ln", "--no_analysis"] + QUIET + _tiny(data_dir, name, gradient_accumulation_steps=2,
                                                                     max_iters=3)
    ablate.main(common + [f"--runs_dir={tmp_path}/one", f"--results={tmp_path}/r1"])
    ablate.main(common + [f"--runs_dir={tmp_path}/two", f"--results={tmp_path}/r2", "--gpus=0,1",
                          "--gpus_per_run=2"])
    assert "2 rank(s) x 1 micro-batches" in open(tmp_path / "two" / "ln" / "train.log").read()
    (t1, e1), (t2, e2) = runlog.read_log(str(tmp_path / "one" / "ln")), runlog.read_log(str(tmp_path / "two" / "ln"))
    assert [r["iter"] for r in t1] == [r["iter"] for r in t2] == [0, 1, 2]
    assert [r["loss"] for r in t1] == pytest.approx([r["loss"] for r in t2], abs=1e-6)
    assert [r["val_loss"] for r in e1] == pytest.approx([r["val_loss"] for r in e2], abs=1e-6)
    assert json.load(open(tmp_path / "two" / "ln" / "done"))["cmd"].startswith("torchrun --standalone")


def _table_rows(results_dir):
    """results.md's table rows without the timing columns (ms/iter, wall s), which differ between two trainings."""
    rows = []
    for line in open(os.path.join(results_dir, "results.md")):
        if line.startswith("| "):
            cells = line.split(" | ")
            rows.append(" | ".join(c for i, c in enumerate(cells) if not (len(cells) > 10 and i in (5, 6))))
    return rows


def test_slurm_array_tasks_run_one_by_one_give_the_table_of_a_local_run(tiny_dataset, tmp_path, in_root, capsys):
    data_dir, name = tiny_dataset
    plan = ["norm", "--only=ln,rms"] + QUIET + _tiny(data_dir, name)
    emit = plan + [f"--runs_dir={tmp_path}/slurm", f"--results={tmp_path}/slurm_results", "--emit=slurm",
                   "--partition=debug", "--account=lab", "--time=00:10:00"]
    assert ablate.main(emit) is None  # nothing finished yet: a script, no tables, nothing trained
    script = tmp_path / "slurm" / "slurm.sbatch"
    text = script.read_text()
    assert "#SBATCH --array=0-1" in text and "#SBATCH --partition=debug" in text and "#SBATCH --account=lab" in text
    assert "#SBATCH --time=00:10:00" in text and "--gpus-per-task" not in text  # a CPU plan asks for no GPU
    assert not os.path.exists(tmp_path / "slurm" / "ln" / "ckpt.pt")
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    capsys.readouterr()
    ablate.main(plan + [f"--runs_dir={tmp_path}/slurm", "--dry_run"])
    dry = [line for line in capsys.readouterr().out.splitlines() if line.startswith("python train.py")]
    assert [launch.shown(cmd) for _, cmd in slurm.tasks_of(text)] == dry and len(dry) == 2

    # the array's tasks, one by one, as Slurm would run them ('python' on PATH is this Python)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python")
    for task in range(2):
        env = {**os.environ, "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_JOB_ID": "77",
               "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        p = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
    done = json.load(open(tmp_path / "slurm" / "ln" / "done"))
    assert done["slurm_job"] == "77_0" and done["cmd"] == dry[0] and done["wall_s"] >= 0
    bad = subprocess.run(["bash", str(script)], env={**os.environ, "SLURM_ARRAY_TASK_ID": "5"}, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "no task 5" in bad.stderr

    collected = ablate.main(emit)  # the same command again collects: both reused, the table written
    out = capsys.readouterr().out
    assert "every run is finished: no Slurm script written" in out and out.count("done, reused") == 2
    local = ablate.main(plan + [f"--runs_dir={tmp_path}/local", f"--results={tmp_path}/local_results"])
    assert _table_rows(tmp_path / "slurm_results") == _table_rows(tmp_path / "local_results")
    assert len(_table_rows(tmp_path / "local_results")) >= 4
    for run in ("ln", "rms"):
        assert collected["runs"][run]["val_loss"] == local["runs"][run]["val_loss"]

    os.remove(tmp_path / "slurm" / "rms" / "done")  # an unfinished run: named, and in a new script of its own
    ablate.main(emit)
    out = capsys.readouterr().out
    assert "1 array task(s), not finished yet: rms" in out
    assert [n for n, _ in slurm.tasks_of(script.read_text())] == ["rms"]
    assert "--init_from=resume" in slurm.tasks_of(script.read_text())[0][1]
