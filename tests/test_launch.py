"""study/launch.py and study/slurm.py through ablate.py: the commands built (python train.py or torchrun), the
placement of runs on GPUs (from the commands and environments, no GPU needed), a real two-process torchrun run on
CPU (gloo) that trains as one process does, and the Slurm array script: bash -n, its commands equal the dry
run's, and its tasks run one by one then collected give the table ablate.py gives running the plan itself."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

import ablate
from study import hardware, launch, runlog, slurm, studies

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
    (["--gpus=0,1", "--gpus_per_run=2"], "pass --set batch_size=8 --set gradient_accumulation_steps=2 (the same"),
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
    two = common + [f"--runs_dir={tmp_path}/two", f"--results={tmp_path}/r2", "--gpus=0,1", "--gpus_per_run=2"]
    try:
        ablate.main(two)
    except SystemExit:
        # torch's gloo teardown race: a rank that finished training (its "done:" line written) can abort at
        # interpreter exit ("terminate called without an active exception"), seen once in a full CI run on a
        # busy 2-core box (2026-12-06) and never alone. Only that failure is retried, once; any other fails here.
        log = open(tmp_path / "two" / "ln" / "train.log").read()
        if "terminate called without an active exception" not in log.partition("done: 3 iterations")[2]:
            raise
        shutil.rmtree(tmp_path / "two")
        ablate.main(two)
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


def test_slurm_time_and_its_reading():
    assert [slurm.slurm_time(h) for h in (0.1, 1.01, 18.7, 23.9, 113.2)] == \
        ["00:15:00", "01:15:00", "18:45:00", "1-00:00:00", "4-17:15:00"]
    assert [slurm._hours(t) for t in ("90", "90:30", "04:00:00", "1-12", "1-12:30:00")] == \
        pytest.approx([1.5, 1.5 + 30 / 3600, 4, 36, 36.5])


def test_slurm_resources_come_from_the_plan_the_largest_over_the_runs():
    """--mem, --time and the GPU memory of an array from study/hardware.py's plan of each run: the largest over the
    runs (one array has one set of resources), each named; a run that fits only at a smaller micro-batch gets the
    --set that makes it fit; a CPU plan keeps its threads and 8G."""
    runs = [r for r in studies.plan("depth", "350m", None, {}) if r.name in ("pre_L24", "sandwich_L24")]
    plans = [(r.name, hardware.plan(r.args, r.config_file)) for r in runs]
    (_, pre), (_, sandwich) = plans
    lines, warnings = slurm.resources(1, 0, None, "gpu", None, plans)
    text = "\n".join(lines)
    assert sandwich["memory"]["total"] > pre["memory"]["total"] and warnings == []
    assert f"GPU memory: {sandwich['memory']['total']:.1f} GiB per GPU (sandwich_L24, micro-batch 128 x 4" in text
    assert "largest over its 2 run(s)" in text
    assert {"#SBATCH --gpus-per-task=1", "#SBATCH --cpus-per-task=8", "#SBATCH --partition=gpu"} <= set(lines)
    assert pre["gpu_hours"] == pytest.approx(12.1, abs=0.05)  # 12.1 H100-hours x 1.5 + 0.5 h = 18.7 h
    assert "#SBATCH --time=18:45:00" in lines
    ckpt = pre["memory"]["weights"] + pre["memory"]["optimizer"]  # 2.1 GiB: 32 + 2 x 2.1 -> 40G
    assert "#SBATCH --mem=40G" in lines and 32 + 2 * ckpt <= 40
    two = [(r.name, hardware.plan(r.args, r.config_file, gpus=2)) for r in runs]  # torchrun over 2 GPUs a task
    lines2, _ = slurm.resources(2, 0, None, plans=two)
    assert {"#SBATCH --gpus-per-task=2", "#SBATCH --cpus-per-task=16", "#SBATCH --mem=80G",
            f"#SBATCH --time={slurm.slurm_time(pre['gpu_hours'] / 2 * 1.5 + 0.5)}"} <= set(lines2)
    lines3, warnings3 = slurm.resources(1, 0, "10:00:00", plans=plans)  # a --time shorter than the plan: kept, said
    assert "#SBATCH --time=10:00:00" in lines3 and "shorter than the plan's 18:45:00 for pre_L24" in warnings3[0]

    big = [(r.name, hardware.plan({**r.args, "batch_size": 512, "gradient_accumulation_steps": 1}, r.config_file))
           for r in runs]
    micro = min(p["micro_batch"] for _, p in big)
    assert all(p["fits"] for _, p in big) and micro < 512  # the smallest any run needs
    lines4, warnings4 = slurm.resources(1, 0, None, plans=big)
    flags = f"add --set batch_size={micro} --set gradient_accumulation_steps={512 // micro}"
    assert any(flags in w for w in warnings4) and any(line.startswith("# warning: 2 run(s) do not fit") and flags in line
                                                      for line in lines4)
    assert slurm.resources(0, 2, None)[0] == ["# (no GPU: the runs train on the CPU)", "#SBATCH --cpus-per-task=2",
                                              "#SBATCH --mem=8G", "#SBATCH --time=24:00:00"]


def test_dry_run_shows_the_arrays_resources_and_a_gpu_plan_emits_them(tiny_dataset, tmp_path, in_root, capsys):
    """--emit=slurm --dry_run prints the #SBATCH lines (the papers' 130M: from the plan); a GPU plan's script (a
    tiny plan with device=cuda: nothing trains, so no GPU is needed) asks for --gpus_per_run GPUs, the plan's
    memory and time, runs torchrun, and passes bash -n."""
    ablate.main(["depth", "--scale=130m", "--dry_run", "--emit=slurm", f"--runs_dir={tmp_path}/big"])
    out = capsys.readouterr().out.splitlines()
    hours = max(hardware.plan(r.args, r.config_file)["gpu_hours"] for r in studies.plan("depth", "130m", None, {}))
    assert f"#SBATCH --time={slurm.slurm_time(hours * 1.5 + 0.5)}" in out and "#SBATCH --gpus-per-task=1" in out
    assert any(line.startswith("# --emit=slurm would write") and "7 array task(s)" in line for line in out)
    assert not os.path.exists(tmp_path / "big")

    data_dir, name = tiny_dataset
    argv = (["norm", "--only=ln,rms", "--emit=slurm", "--gpus_per_run=2", f"--runs_dir={tmp_path}/gpu",
             f"--results={tmp_path}/gpu_results"] + QUIET
            + _tiny(data_dir, name, device="cuda", gradient_accumulation_steps=2))
    assert ablate.main(argv) is None
    text = (tmp_path / "gpu" / "slurm.sbatch").read_text()
    runs = [r for r in studies.plan("norm", "cpu", None, ablate.parse_sets(argv[argv.index("--set"):][1::2]))
            if r.name in ("ln", "rms")]
    p = hardware.plan(runs[0].args, runs[0].config_file, gpus=2)
    assert "#SBATCH --gpus-per-task=2" in text and "#SBATCH --cpus-per-task=16" in text
    assert f"#SBATCH --mem={slurm.host_gib(p)}G" in text and "#SBATCH --time=00:30:00" in text  # 0.5 h + seconds
    assert "largest over its 2 run(s)" in text
    assert all(cmd[:3] == ["torchrun", "--standalone", "--nproc_per_node=2"] for _, cmd in slurm.tasks_of(text))
    assert subprocess.run(["bash", "-n", str(tmp_path / "gpu" / "slurm.sbatch")]).returncode == 0
