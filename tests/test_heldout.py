"""study/heldout.py: the per-sequence held-out losses agree with train.py's final evaluation, and the paired
evaluation error of a difference between arms is computed as its docstring says."""

import json
import math
import os
import subprocess
import sys

import pytest

from study import heldout

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _train(tiny_dataset, out_dir, *extra):
    data_dir, name = tiny_dataset
    args = ["--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=4", "--eval_iters=1",
            "--log_interval=1", "--dtype=float32", "--max_iters=6", "--eval_interval=3", f"--data_dir={data_dir}",
            f"--dataset={name}", f"--out_dir={out_dir}", *extra]
    p = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], env=ENV, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return str(out_dir)


@pytest.fixture(scope="module")
def run_dir(tiny_dataset, tmp_path_factory):
    return _train(tiny_dataset, tmp_path_factory.mktemp("heldout") / "run", "--final_eval_tokens=500")


def test_sequence_losses_give_train_pys_final_loss_and_error(run_dir):
    logged = heldout.final_eval(run_dir)
    got = heldout.sequence_losses(run_dir)
    m = len(got["loss"])
    assert m * got["tokens"] == logged["final_val_tokens"] == 512  # 500 tokens -> 4 batches of 4 x 32
    mean = sum(got["loss"]) / m
    se = math.sqrt(sum((v - mean) ** 2 for v in got["loss"]) / (m - 1) / m)
    assert mean == pytest.approx(logged["final_val_loss"], abs=1e-9)
    assert se == pytest.approx(logged["final_val_se"], rel=1e-6)


def test_ensure_writes_once_and_a_fresh_clone_reads_it_without_a_checkpoint(run_dir, tmp_path):
    first = heldout.ensure(run_dir)
    assert len(first["loss"]) == 16 and first["final_val_loss"] == heldout.final_eval(run_dir)["final_val_loss"]
    assert all(v == round(v, 5) for v in first["loss"])
    # records only (no ckpt.pt), as the repository ships them: read back, nothing recomputed
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("log.jsonl", heldout.FILE):
        (clone / name).write_bytes(open(os.path.join(run_dir, name), "rb").read())
    assert heldout.ensure(str(clone)) == first
    assert heldout.ensure(str(tmp_path)) is None  # neither file nor checkpoint


def test_ensure_refuses_a_log_that_disagrees(run_dir, tmp_path):
    """A logged final loss that is not the mean of the per-sequence losses stops, and nothing is written."""
    import shutil
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    os.remove(other / heldout.FILE) if (other / heldout.FILE).exists() else None
    rows = [json.loads(line) for line in open(other / "log.jsonl")]
    rows[-1]["final_val_loss"] += 0.01
    (other / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="logged"):
        heldout.ensure(str(other))
    assert not (other / heldout.FILE).exists()


def test_a_run_without_a_held_out_set_is_named(tiny_dataset, tmp_path):
    out = _train(tiny_dataset, tmp_path / "plain")
    with pytest.raises(ValueError, match="final_eval_tokens"):
        heldout.sequence_losses(out)


def test_paired_error_by_hand():
    """Two seeds per arm, three sequences: d = (mean of a's seeds) - (mean of b's seeds) per sequence."""
    a = [{"loss": [1.0, 2.0, 3.0]}, {"loss": [1.2, 2.2, 2.8]}]
    b = [{"loss": [0.9, 2.1, 2.6]}, {"loss": [1.1, 1.9, 3.0]}]
    d = [1.1 - 1.0, 2.1 - 2.0, 2.9 - 2.8]  # 0.1, 0.1, 0.1: the arms differ by the same amount on every sequence
    assert heldout.paired_se(a, b) == pytest.approx(0.0, abs=1e-12)
    b[0]["loss"][2] = 2.4  # sequence 2's difference becomes 0.2
    d = [0.1, 0.1, 0.2]
    mean = sum(d) / 3
    assert heldout.paired_se(a, b) == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in d) / 2 / 3))
    assert heldout.paired_se(a, b + [None]) is None
    with pytest.raises(ValueError, match="different held-out sets"):
        heldout.paired_se(a, [{"loss": [1.0, 2.0]}])
