"""study/hardware.py, the dry run's hardware plan: its activation count against what autograd saves (CPU, small
sizes), its time and memory arithmetic for the papers' presets, and the plan in ablate.py's dry run."""
import contextlib
import os

import pytest
import torch

import ablate
from model import GPT, GPTConfig
from study import hardware, memory_check

# measured at commit time: planned / saved within 0.5% at every size, placement and precision below
TOLERANCE = 0.05


@pytest.mark.parametrize("d,L,H,T,B,V", [(64, 2, 4, 32, 4, 512), (128, 4, 4, 64, 4, 1000), (192, 3, 6, 128, 2, 2048)])
@pytest.mark.parametrize("norm_pos,depth_scale", [("pre", False), ("pre", True), ("post", False), ("mix", False),
                                                  ("sandwich", False)])
def test_activation_formula_matches_what_autograd_saves(d, L, H, T, B, V, norm_pos, depth_scale):
    for autocast, weights in ((False, torch.float32), (True, torch.bfloat16), (True, torch.float32)):
        torch.manual_seed(0)
        c = GPTConfig(n_layer=L, n_head=H, n_embd=d, block_size=T, vocab_size=V, norm="rms", mlp="swiglu",
                      pos_emb="rope", bias=False, tie_embeddings=False, norm_pos=norm_pos, depth_scale=depth_scale)
        model = GPT(c).to(weights)
        x, y = (torch.randint(0, V, (B, T)) for _ in range(2))
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        loss, saved = memory_check.saved_bytes(model, x, y, ctx)
        loss.backward()
        a = 2 if autocast else 4
        matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
        planned = hardware.saved_activation_bytes(c, B * T, a, model.transformer.h[0].mlp.c_proj.in_features,
                                                  matmul if autocast and weights == torch.float32 else 0)
        assert planned == pytest.approx(saved, rel=TOLERANCE), (autocast, weights)


def test_memory_check_runs_on_cpu_at_a_tiny_shape(tmp_path):
    out = tmp_path / "mem.json"
    results = memory_check.main(["--device=cpu", "--tiny", "--presets=130m", f"--json={out}"])
    assert out.exists() and results[0]["peak_measured"] is None  # the peak is a GPU measurement
    assert results[0]["saved_ratio"] == pytest.approx(1.0, rel=TOLERANCE)
    with pytest.raises(SystemExit, match="bad value '2b' for --presets"):
        memory_check.main(["--device=cpu", "--tiny", "--presets=2b"])


@pytest.mark.parametrize("size", ["71m", "130m", "250m", "350m", "1b"])
def test_plan_of_each_preset(size):
    p = hardware.plan({}, f"config/llama-{size}.py")
    assert p["global_batch"] == 512 and p["fits"] and p["micro_batch"] * p["accumulation"] == 512
    assert p["gpu_hours"] == pytest.approx(p["flops"] / (989e12 * p["mfu"]) / 3600)
    assert p["mfu"] == (0.36 if p["params"] < 200e6 else 0.40)
    m = p["preset_memory"]
    assert m["total"] == pytest.approx(sum(v for k, v in m.items() if k != "total"))
    # bf16 weights, gradients and two bf16 Adam moments: 8 bytes a parameter
    assert (m["weights"] + m["gradients"] + m["optimizer"]) * 2 ** 30 == pytest.approx(8 * p["params"])
    assert any("H100-hours" in line for line in hardware.describe(p))


def test_plan_lowers_the_micro_batch_keeps_the_global_batch_and_says_when_nothing_fits():
    p = hardware.plan({"batch_size": 512, "gradient_accumulation_steps": 1}, "config/llama-1b.py")
    assert p["fits"] and p["micro_batch"] < 512 and p["micro_batch"] * p["accumulation"] == 512
    assert p["memory"]["total"] <= p["budget_gib"] < p["preset_memory"]["total"]
    assert "--gradient_accumulation_steps=" in hardware.describe(p)[-1]
    flags = f"--set batch_size={p['micro_batch']} --set gradient_accumulation_steps={p['accumulation']}"
    assert flags in hardware.describe(p)[-1]  # ablate.py's form: the whole study at the micro-batch that fits
    assert hardware.smaller_micro_batch([p]) == (p["micro_batch"], p["accumulation"])
    assert flags in hardware.summary([p])[-1] and hardware.summary([p])[-1].startswith("to fit them all")
    assert hardware.smaller_micro_batch([hardware.plan({}, "config/llama-1b.py")]) is None
    small = hardware.plan({}, "config/llama-1b.py", card_gib=8)  # 10 GiB of state: no micro-batch fits
    assert not small["fits"] and "FSDP" in hardware.describe(small)[-1]
    ddp = hardware.plan({}, "config/llama-1b.py", gpus=8)  # DDP adds gradient buckets, lowers nothing else
    assert ddp["preset_memory"]["ddp_buckets"] == pytest.approx(ddp["preset_memory"]["gradients"])
    muon = hardware.plan({"optimizer": "muon"}, "config/llama-130m.py")
    assert muon["preset_memory"]["optimizer"] < hardware.plan({}, "config/llama-130m.py")["preset_memory"]["optimizer"]


@pytest.mark.parametrize("scale,layers,pre,lns", [("71m", 12, 34.77, None), ("250m", 24, 21.92, 20.35),
                                                  ("350m", 24, 19.58, 18.20), ("1b", 24, 17.02, 15.71)])
def test_paper_sizes_dry_run_with_published_numbers_and_the_plan(tmp_path, capsys, scale, layers, pre, lns):
    ablate.main(["depth", f"--scale={scale}", "--dry_run", f"--runs_dir={tmp_path}/runs"])
    out = capsys.readouterr().out.splitlines()
    cmds = [i for i, line in enumerate(out) if line.startswith(f"python train.py config/llama-{scale}.py")]
    assert len(cmds) == 7 and all(f"--n_layer={layers}" in out[i] for i in cmds)
    rows = {out[i].rsplit("/", 1)[1]: out[i + 1] for i in cmds}
    assert rows[f"pre_L{layers}"].endswith(f"paper C4 val ppl {pre}")
    lns_row = rows[f"pre_lns_L{layers}"]
    assert lns_row.endswith(f"paper C4 val ppl {lns}") if lns else "no published number" in lns_row
    assert "no published number" in rows[f"sandwich_L{layers}"]
    assert sum("memory per GPU" in line for line in out) == 7 and any("plan of the table" in line for line in out)
    assert ("Mix-LN" if scale == "71m" else "Sun et al. 2025") in out[-1]
    assert not os.path.exists(tmp_path / "runs")
