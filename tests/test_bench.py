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
    out = capsys.readouterr().out
    assert "nanoGPT" in out
    # which kind of CPU it ran on, in the JSON and beside the table
    cpu = result["cpu"]
    assert {"model", "vendor", "isa", "avx2", "avx512", "avx512_bf16", "amx", "native_bf16", "bf16_forced"} <= set(cpu)
    forced = os.environ.get("NANONORM_CPU_BF16")  # unset: the probes decide
    assert cpu["native_bf16"] == (forced == "native" if forced else (cpu["avx512_bf16"] or cpu["amx"]))
    assert cpu["model"] in out and bench.describe_cpu(cpu) in out
    if not forced:
        assert ("no native bf16" in out) != cpu["native_bf16"]


def test_cpu_peak_sizes_down_emulated_bf16_and_describes_the_cpu(monkeypatch):
    monkeypatch.setenv("NANONORM_CPU_BF16", "native")  # ignored here: the peak is the CPU's own
    for native, n_bf16 in ((False, 512), (True, 2048)):
        monkeypatch.setattr(bench, "cpu_probes_native_bf16", lambda: native)
        assert bench.peak_matmul_size(torch.bfloat16) == n_bf16  # 2048^3 emulated bf16 takes minutes
        assert bench.peak_matmul_size(torch.float32) == 2048
    base = dict(model="Some CPU", vendor="Vendor", isa="AVX2", avx2=True, avx512=False)
    plain = bench.describe_cpu({**base, "avx512_bf16": False, "amx": False, "native_bf16": False})
    assert "Some CPU" in plain and "AVX2 (no AVX-512)" in plain and "no native bf16" in plain
    amx = bench.describe_cpu({**base, "avx512": True, "avx512_bf16": True, "amx": True, "native_bf16": True})
    assert "AVX-512" in amx and "native bf16 (AVX512-BF16 + AMX)" in amx and "no native" not in amx
    forced = bench.describe_cpu({**base, "avx512_bf16": False, "amx": False, "native_bf16": True, "bf16_forced": "native"})
    assert "native bf16 forced by NANONORM_CPU_BF16=native (this CPU: bf16 emulated)" in forced


@pytest.mark.parametrize("cpu_bf16, dtype", [("emulated", "float32"), ("native", "bfloat16")])
def test_bench_infer_compares_ln_with_its_converted_forms(tmp_path, capsys, monkeypatch, cpu_bf16, dtype):
    """Both kinds of CPU on any CPU (NANONORM_CPU_BF16): dtype=auto picks float32 where bf16 is emulated and
    bf16 autocast where it is native, and the converted models' logits agree to that dtype's precision."""
    monkeypatch.setenv("NANONORM_CPU_BF16", cpu_bf16)
    result = run_bench(tmp_path, "--compare=infer", "--gen_tokens=4")  # --dtype=auto
    assert result["default_dtype"] == dtype
    rows = result["rows"]
    assert [r["name"] for r in rows] == ["ln", "rms (converted)", "crms (converted)"]
    for r in rows:
        assert r["rounds"] == 2 and r["fwd_ms"] > 0 and r["gen_ms"] > 0
        assert r["fwd_tokens_per_s"] == pytest.approx(2 * 16 / (r["fwd_ms"] / 1000))
        assert r["gen_tokens_per_s"] == pytest.approx(4 / (r["gen_ms"] / 1000))
        # the converted models compute the same function: the same logits up to rounding (|logits| < 0.4
        # here: float32 differs by ~1e-7, bf16 by ~2e-3; losing ln_f's gain and bias would give ~5e-2), and
        # in float32 the same greedy text (bf16 rounding may break a near tie differently)
        if dtype == "float32":
            assert r["max_logit_diff"] < 1e-4 and r["same_tokens"] == 1.0, r
        else:
            assert r["max_logit_diff"] < 1e-2, r
    assert rows[0]["fwd_ratio"] == rows[0]["gen_ratio"] == 1.0
    out = capsys.readouterr().out
    assert "forward" in out and "generation" in out and "crms (converted)" in out


def test_bench_gpu_suite_runs_tiny_on_cpu(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the suite's train.py run prepares python_docs into ./data
    out = tmp_path / "suite.json"
    result = bench.main(["--suite=gpu", "--threads=1", "--run_seconds=2", f"--json={out}"])
    saved = json.loads(out.read_text())
    assert saved["suite"] == "gpu" and saved["judged"] is False  # GPU targets are not judged on CPU
    parts = saved["parts"]
    assert [r["name"] for r in parts["gpt2_124m"]["rows"]] == ["ln adamw", "crms adamw", "ln muon"]
    gpt2 = parts["gpt2_124m"]
    assert 0 < gpt2["muon_opt_share"] < 1 and gpt2["crms_ln_ratio"] > 0
    # Muon's share of the preset's optimizer step: one optimizer step per 32 micro-batches
    muon = gpt2["rows"][2]
    opt_ms = muon["opt_share"] * muon["ms_per_step"]
    assert gpt2["accumulation_steps"] == 32
    assert gpt2["muon_opt_share_preset_step"] == pytest.approx(opt_ms / (32 * (muon["ms_per_step"] - opt_ms) + opt_ms))
    llama = parts["llama_130m"]
    assert llama["run_tokens"] == 20000 * 512 * 256 and llama["projected_hours"] > 0
    # the preset's bf16 weights are what is timed and projected, beside float32 weights: half the state bytes
    assert llama["weight_dtype"] == "bfloat16"
    assert [r["name"] for r in llama["rows"]] == ["llama-130m (bfloat16 weights)", "llama-130m (float32 weights)"]
    bf16, fp32 = llama["rows"]
    assert abs(bf16["state_mb"] / fp32["state_mb"] - 0.5) < 1e-3  # (Adam's step counters stay float32)
    assert llama["tokens_per_s"] == bf16["tokens_per_s"]
    run = parts["run_130m"]
    assert run["falls"] and run["last_loss"] < 0.9 * run["first_loss"], run
    assert result["parts"]["run_130m"]["iters"] == run["iters"]
    assert run["iters"] == max(20, int(2 * 1000 / llama["ms_per_micro_step"]))  # --run_seconds=2 of steps
    assert "not judged" in capsys.readouterr().out


def test_bench_refuses_bad_options_in_one_line(capsys):
    for bad, word in (("--compare=speed", "compare"), ("--steps=0", "steps"), ("--nrom=ln", "norm"),
                      ("--suite=tpu", "suite"), ("--suite=gpu --compare=norm", "compare"),
                      ("--compare=infer --norm_pos=post", "norm_pos"), ("--suite=gpu --run_seconds=-5", "run_seconds")):
        with pytest.raises(SystemExit) as exit_info:
            bench.main(bad.split())
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and word in err, err
