"""study/trend.py (`python ablate.py trend`): a WSD branch of the stable run is the run of that length, the crossover fit, the branch guard."""
import json
import os
import subprocess
import sys

import pytest

from study import launch, trend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_base(tiny_dataset):
    data_dir, name = tiny_dataset
    return dict(trend.BASE, dataset=name, data_dir=data_dir, n_layer=2, n_head=2, n_embd=32, block_size=16,
                batch_size=4, warmup_iters=2, eval_interval=4, eval_iters=1, log_interval=1, analyze_interval=4)


def train_losses(out_dir):
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return {r["iter"]: r["loss"] for r in map(json.loads, f) if "loss" in r}


def test_branch_equals_a_run_of_that_length(tiny_dataset, tmp_path, monkeypatch):
    """Stable phase to 0.8 L, then decay over 0.2 L (resumed from the stable run's checkpoint) trains exactly
    the run that a single wsd schedule of length L trains: the premise of measuring every length from one run."""
    monkeypatch.chdir(ROOT)  # train.py is run as `python train.py`
    base = tiny_base(tiny_dataset)
    assert trend.run_chain("pre", 7, [10], str(tmp_path / "runs"), base, threads=1) is None
    branch = train_losses(tmp_path / "runs" / "pre_s7" / "L10")
    cmd = launch.train_command(trend.segment_run("pre", 7, base, 10, 0.2), str(tmp_path / "single"))
    subprocess.run(launch.executable(cmd), check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    single = train_losses(tmp_path / "single")
    assert sorted(branch) == list(range(10)) and branch == single
    # the stable run stopped at the branch point, where the decay starts
    assert trend.branch_point(10) == 8 and trend.last_iter(str(tmp_path / "runs" / "pre_s7" / "stable")) == 8


def test_branch_refused_when_the_stable_run_moved_past_it(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    base = tiny_base(tiny_dataset)
    runs = str(tmp_path / "runs")
    assert trend.run_chain("pre", 7, [10], runs, base, threads=1) is None
    os.remove(os.path.join(runs, "pre_s7", "L10", "ckpt.pt"))  # the branch is to be redone ...
    stable = os.path.join(runs, "pre_s7", "stable")
    subprocess.run(launch.executable(launch.train_command(trend.segment_run("pre", 7, base, 12, 0.0), stable, True)),
                   check=True, capture_output=True)  # ... but the stable run went on to 12
    failure = trend.run_chain("pre", 7, [10], runs, base, threads=1)
    assert failure and "past the branch point 8" in failure


def test_fit_crossover():
    tokens = [1e5, 2e5, 4e5]
    a, b, cross = trend.fit_crossover(tokens, [0.3, 0.2, 0.1])  # -0.1 per doubling: 0 one doubling later
    assert b == pytest.approx(-0.1) and cross == pytest.approx(8e5)
    assert trend.fit_crossover(tokens, [0.1, 0.2, 0.3])[2] is None  # moving away from 0: no crossover ahead
    assert trend.fit_crossover(tokens, [-0.3, -0.2, -0.1])[2] == pytest.approx(8e5)  # from below


def test_bad_lengths_are_one_line_errors():
    out = subprocess.run([sys.executable, "ablate.py", "trend", "--lengths=400,x"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode != 0 and out.stderr.strip() == ("bad value '400,x' for --lengths: a comma-separated "
                                                          "list of integers")


def test_ablate_trend_is_the_entry_point():
    """`python ablate.py trend` reaches the trend's own flags (its --dry_run prints the chain's commands)."""
    out = subprocess.run([sys.executable, "ablate.py", "trend", "--dry_run", "--lengths=400", "--seeds=1"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "4 chains x 400 steps" in out.stdout and "--max_iters=400" in out.stdout


def test_a_folder_trained_otherwise_is_refused(tiny_dataset, tmp_path, monkeypatch):
    """Never continue or reuse a run trained with other settings: the chain stops, naming the key."""
    monkeypatch.chdir(ROOT)
    base = tiny_base(tiny_dataset)
    runs = str(tmp_path / "runs")
    assert trend.run_chain("pre", 7, [10], runs, base, threads=1) is None
    assert trend.run_chain("pre", 7, [10], runs, base, threads=1) is None  # the same plan: reused
    failure = trend.run_chain("pre", 7, [10], runs, dict(base, learning_rate=0.003), threads=1)
    assert failure and "learning_rate 0.002 != 0.003" in failure


def test_a_folder_without_run_json_is_never_reused(tiny_dataset, tmp_path, monkeypatch):
    """records.decide is the trend's rule too: no run.json means nothing says what the folder was trained with, so
    the chain stops naming it, or with on_mismatch=retrain is set aside whole and trained again."""
    monkeypatch.chdir(ROOT)
    base = tiny_base(tiny_dataset)
    runs = str(tmp_path / "runs")
    assert trend.run_chain("pre", 7, [10], runs, base, threads=1) is None
    os.remove(os.path.join(runs, "pre_s7", "L10", "run.json"))
    failure = trend.run_chain("pre", 7, [10], runs, base, threads=1)
    assert failure and "no run.json" in failure and "--on_mismatch=retrain" in failure
    assert trend.run_chain("pre", 7, [10], runs, base, threads=1, on_mismatch="retrain") is None
    assert os.path.exists(os.path.join(runs, "pre_s7.previous", "L10", "ckpt.pt"))  # the old chain, kept
    assert os.path.exists(os.path.join(runs, "pre_s7", "L10", "run.json"))
