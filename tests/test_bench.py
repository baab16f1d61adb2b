"""Tests of bench.py: it runs end to end on a tiny model, its JSON has the rows and keys scripts read,
and bad options are refused with one line. In-process (bench.main) so torch is imported only once."""

import json
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import bench  # noqa: E402

TINY = ["--n_layer=1", "--n_head=2", "--n_embd=32", "--block_size=16", "--batch_size=2",
        "--warmup=1", "--steps=1", "--rounds=2", "--threads=1"]
ROW_KEYS = {"name", "ms_per_step", "ms_min", "tokens_per_s", "mfu", "cpu_ms_per_step", "fwd_ms", "bwd_ms",
            "opt_ms", "opt_share", "ratio", "state_mb", "peak_mb", "steps", "dtype", "norm", "optimizer"}


@pytest.fixture(autouse=True)
def keep_thread_count():
    n = torch.get_num_threads()  # --threads=1 changes torch's global setting; give it back
    yield
    torch.set_num_threads(n)


def run_bench(tmp_path, *args):
    out = tmp_path / "bench.json"
    returned = bench.main([*TINY, *args, f"--json={out}"])
    result = json.loads(out.read_text())
    assert [r["name"] for r in result["rows"]] == [r["name"] for r in returned["rows"]]
    return result


@pytest.mark.parametrize("compare, names", [
    ("norm", ["ln", "rms", "rms+zero_mean", "crms"]),
    ("optim", ["adamw", "muon", "auon"]),
])
def test_bench_json_has_one_row_per_config(tmp_path, capsys, compare, names):
    result = run_bench(tmp_path, f"--compare={compare}")
    stdout = capsys.readouterr().out
    assert result["compare"] == compare and result["device"].startswith("cpu")
    rows = result["rows"]
    assert [r["name"] for r in rows] == names
    for r in rows:
        assert ROW_KEYS <= set(r), ROW_KEYS - set(r)
        assert r["steps"] == 2  # rounds x steps measured steps
        assert r["ms_per_step"] > 0 and r["tokens_per_s"] == pytest.approx(2 * 16 / (r["ms_per_step"] / 1000))
        assert 0 < r["opt_share"] < 1 and r["state_mb"] > 0
        assert 0 < r["mfu"] < 1  # against the CPU peak measured in the same run
    assert rows[0]["ratio"] == 1.0
    if compare == "norm":
        assert [r["norm"] for r in rows] == ["ln", "rms", "rms", "crms"]
        assert [r["zero_mean"] for r in rows] == [False, False, True, True]
    else:
        assert [r["optimizer"] for r in rows] == names
        # Muon/AuON keep one momentum buffer where AdamW keeps two moments: less optimizer state
        assert rows[1]["state_mb"] < rows[0]["state_mb"]
    for name in names:  # the printed table has a line per config
        assert any(line.startswith(name + " ") for line in stdout.splitlines())


def test_bench_dtype_compares_nanogpt_fp32_with_the_default(tmp_path, capsys):
    result = run_bench(tmp_path, "--compare=dtype", "--dtype=bfloat16", "--norm=crms")
    first, second = result["rows"]
    assert first["dtype"] == "float32" and first["norm"] == "ln" and first["optimizer"] == "adamw"
    assert second["dtype"] == "bfloat16" and second["norm"] == "crms"
    assert set(result["peak_flops"]) == {"float32", "bfloat16"}
    assert "nanoGPT" in capsys.readouterr().out


def test_bench_refuses_bad_options_in_one_line(capsys):
    for bad, word in ("--compare=speed", "compare"), ("--steps=0", "steps"), ("--nrom=ln", "norm"):
        with pytest.raises(SystemExit) as exit_info:
            bench.main([bad])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and word in err, err
