"""Tests of analyze.py (known answers on tiny models) and ablate.py (commands, resumability, tables)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import analyze  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402
import train  # noqa: E402

V = 40
TINY = dict(n_layer=3, n_head=2, n_embd=32, block_size=16, vocab_size=V)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """On a shared 2-core machine torch's second OpenMP thread waits on busy cores: 1 thread is far faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make(seed=0, **kw):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **kw}))


def batch(B=4, T=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)


def make_identity(model, l):
    """Zero the out-projections (weights and biases) of block l: in a pre-LN model it adds 0 to x."""
    with torch.no_grad():
        for proj in (model.transformer.h[l].attn.c_proj, model.transformer.h[l].mlp.c_proj):
            proj.weight.zero_()
            proj.bias.zero_()


# ---------------------------------------------------------------------------------------------
# angular distance

def test_angular_distance_known_values():
    a = torch.randn(5, 7, 16, dtype=torch.float64)
    assert analyze.angular_distance(a, a).abs().max() < 1e-6
    assert (analyze.angular_distance(a, -a) - 1).abs().max() < 1e-6
    assert (analyze.angular_distance(a, 3.0 * a)).abs().max() < 1e-6  # scale does not matter
    e0, e1 = torch.eye(2)
    assert abs(analyze.angular_distance(e0, e1).item() - 0.5) < 1e-12
    # float32 inputs are computed in float64: no arccos noise near cos = 1
    f = torch.randn(3, 64)
    assert analyze.angular_distance(f, f).max() < 1e-6


def test_angular_matrix_shape_and_mask():
    states = [torch.randn(2, 5, 8) for _ in range(4)]  # L = 3
    D = analyze.angular_distance_matrix(states, last_token=True)
    assert D.shape == (3, 3)
    assert math.isnan(D[1, 2]) and math.isnan(D[2, 1]) and not math.isnan(D[0, 2]) and not math.isnan(D[2, 0])
    want = analyze.angular_distance(states[1][:, -1], states[3][:, -1]).mean()
    assert abs(D[1, 1] - want) < 1e-12
    all_tok = analyze.angular_distance_matrix(states, last_token=False)
    assert abs(all_tok[0, 0] - analyze.angular_distance(states[0], states[1]).mean()) < 1e-12


# ---------------------------------------------------------------------------------------------
# layer drop and angular distance on an identity block

def test_identity_block_costs_nothing_and_does_not_move_the_stream():
    model = make()
    x, y = batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):  # memorize the batch, so that the real blocks clearly matter (> 1% each)
        loss = model(x, y)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    make_identity(model, 1)
    base, dropped = analyze.layer_drop(model, x, y)
    assert dropped[1] == base  # x + 0 == x exactly
    assert (dropped[0] - base) / base > 0.01 and (dropped[2] - base) / base > 0.01
    states = model.hidden_states(x)
    D = analyze.angular_distance_matrix(states, last_token=False)
    assert D[1, 0] < 1e-6  # x_1 -> x_2 through the identity block
    assert D[0, 0] > 1e-2 and D[2, 0] > 1e-2
    q = analyze.quick_metrics(model, x, y)
    assert q["drop_share_lt1pct"] == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------------------------
# kurtosis

def test_kurtosis_gaussian_is_zero_and_outliers_are_large():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 32, 1024, generator=g)
    k = analyze.excess_kurtosis(x)
    assert k.shape == (64, 32)
    assert abs(k.mean().item()) < 0.05
    heavy = x.clone()
    heavy[..., 7] = 100.0  # one huge outlier feature per token (the OSP picture)
    kh = analyze.excess_kurtosis(heavy).mean().item()
    assert kh > 500  # ~ d - 3 for a single dominating coordinate
    # mean shift and scale do not change it (central, normalized moments)
    assert abs(analyze.excess_kurtosis(3 * heavy + 5).mean().item() - kh) < 1e-6 * kh
    uniform = torch.rand(8, 4096, generator=g)
    assert abs(analyze.excess_kurtosis(uniform).mean().item() + 1.2) < 0.05  # uniform: -6/5
    assert analyze.kurtosis_profile([uniform]) == [0.0]  # OSP's relu
    assert analyze.kurtosis_profile([uniform], clamp=False)[0] < -1


# ---------------------------------------------------------------------------------------------
# residual growth

def test_residual_stats_on_a_constructed_stream():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(8, 16, 256, generator=g, dtype=torch.float64)
    base = (base - base.mean(-1, keepdim=True)) / base.std(-1, unbiased=False, keepdim=True)
    states = [math.sqrt(l + 1) * base for l in range(5)]  # variance grows linearly with depth
    rms, var = analyze.residual_stats(states)
    assert rms == pytest.approx([math.sqrt(l + 1) for l in range(5)], rel=1e-9)
    assert var == pytest.approx([l + 1.0 for l in range(5)], rel=1e-9)


def test_post_ln_states_have_unit_size_and_pre_ln_grows():
    x, _ = batch()
    post = make(norm_pos="post").eval()
    rms, var = analyze.residual_stats(post.hidden_states(x))
    assert var[1:] == pytest.approx([1.0] * 3, rel=1e-3)  # each block ends in LN (gain 1, bias 0)
    pre = make(norm_pos="pre").eval()
    with torch.no_grad():
        for b in pre.transformer.h:
            b.mlp.c_proj.weight.mul_(20)
    rms, _ = analyze.residual_stats(pre.hidden_states(x))
    assert all(b > a for a, b in zip(rms, rms[1:]))


# ---------------------------------------------------------------------------------------------
# gradient norms

@pytest.mark.parametrize("kw", [dict(), dict(norm="crms"), dict(norm_pos="mix", mix_ratio=0.34)])
def test_block_grad_norms_are_per_block_positive_and_leave_grad_alone(kw):
    model = make(**kw)
    x, y = batch()
    blocks, rest = analyze.block_grad_norms(model, x, y)
    assert len(blocks) == TINY["n_layer"] and all(b > 0 and math.isfinite(b) for b in blocks) and rest > 0
    assert all(p.grad is None for p in model.parameters())
    # matches a plain backward
    model(x, y)[1].backward()
    want = [math.sqrt(sum(p.grad.double().square().sum().item() for p in b.parameters()))
            for b in model.transformer.h]
    assert blocks == pytest.approx(want, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# quick_metrics and analyze_model on every kind of model

@pytest.mark.parametrize("kw", [dict(), dict(norm="crms"), dict(norm_pos="post"), dict(norm="ss", emb_proj=True)])
def test_quick_metrics_and_full_analysis(kw):
    model = make(**kw).train()
    x, y = batch()
    q = analyze.quick_metrics(model, x)  # train.py passes the inputs only
    assert model.training, "quick_metrics must restore the training mode"
    assert set(q) == {"kurtosis_mean", "kurtosis_raw_mean", "rms_growth", "drop_share_lt1pct", "drop_max_rel",
                      "ang_adjacent"}
    assert all(math.isfinite(v) for v in q.values()) and 0 <= q["drop_share_lt1pct"] <= 1
    r = analyze.analyze_model(model, [(x, y), batch(seed=2)])
    L = TINY["n_layer"]
    assert r["batches"] == 2 and len(r["rms"]) == L + 1 and len(r["grad_norm"]) == L
    assert len(r["angular_last"]) == L and r["angular_last"][L - 1][1] is None
    assert len(r["layer_drop"]["rel"]) == L and len(r["kurtosis"]) == L + 1
    json.dumps(r, allow_nan=False)  # strict JSON: no NaN


# ---------------------------------------------------------------------------------------------
# CLI on a checkpoint in train.py's format, with plots

def write_tiny_dataset(data_dir, name="tiny"):
    from data import write_shard
    folder = os.path.join(data_dir, name)
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    write_shard(os.path.join(folder, f"{name}_val_000000.bin"), rng.integers(0, V, 500).astype(np.uint16))
    write_shard(os.path.join(folder, f"{name}_train_000001.bin"), rng.integers(0, V, 2000).astype(np.uint16))
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump({"tokenizer": "char", "vocab_size": V, "train_tokens": 2000, "val_tokens": 500,
                   "chars": [chr(65 + i) for i in range(V)]}, f)


def write_ckpt(out_dir, data_dir, model):
    from dataclasses import asdict
    os.makedirs(out_dir, exist_ok=True)
    torch.save({"model": model.state_dict(), "model_config": asdict(model.config), "iter_num": 7,
                "config": {"dataset": "tiny", "data_dir": data_dir}, "dataset": "tiny"},
               os.path.join(out_dir, "ckpt.pt"))


def test_cli_writes_json_and_pngs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data_dir, out_dir = str(tmp_path / "data"), str(tmp_path / "out")
    write_tiny_dataset(data_dir)
    write_ckpt(out_dir, data_dir, make(n_layer=2))
    analyze.main([f"--out_dir={out_dir}", "--batches=2", "--batch_size=2"])
    r = json.load(open(os.path.join(out_dir, "analysis.json")))
    assert r["dataset"] == "tiny" and r["iter_num"] == 7 and r["batches"] == 2 and len(r["grad_norm"]) == 2
    for name in ("angular", "layerdrop", "rms", "gradnorm", "kurtosis"):
        path = os.path.join(out_dir, f"analysis_{name}.png")
        assert os.path.getsize(path) > 1000
    assert "layer drop" in capsys.readouterr().out


def test_cli_bad_input_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "analyze.py", f"--out_dir={tmp_path}"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no ckpt.pt" in out.stderr
    with pytest.raises(SystemExit):
        analyze.main(["--split=test"])


def test_block_axes_have_whole_number_ticks_for_a_2_layer_model(tmp_path, monkeypatch):
    """A 2-layer model's block axes once read -0.25, 0.25, 0.75: every block (or hidden-state) axis of the
    analysis plots ticks whole numbers only."""
    pytest.importorskip("matplotlib")
    plt = analyze.pyplot()
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figures plot_analysis draws
    x, y = batch()
    result = analyze.analyze_model(make(n_layer=2), [(x, y)])
    analyze.plot_analysis(result, str(tmp_path))
    block_axes = [axis for fig in figures for ax in fig.axes if ax.get_xlabel()
                  for axis in ((ax.xaxis, ax.yaxis) if "block entered" in ax.get_ylabel() else (ax.xaxis,))]
    assert len(block_axes) == 2 * 2 + 4  # two heatmaps (both axes) and four plots over blocks
    for axis in block_axes:
        lo, hi = sorted(axis.get_view_interval())
        ticks = [t for t in axis.get_ticklocs() if lo - 1e-9 <= t <= hi + 1e-9]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), (axis.get_label_text(), ticks)
    monkeypatch.undo()
    for fig in figures:
        plt.close(fig)


def write_log(run_dir, losses, val_every=10):
    """A train.py-style log.jsonl: training rows every iteration, an evaluation row every val_every."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "log.jsonl"), "w") as f:
        for it, loss in enumerate(losses):
            f.write(json.dumps({"iter": it, "loss": loss, "lr": 1e-3, "tok_per_s": 1.0, "ms": 5.0}) + "\n")
            if it % val_every == 0:
                f.write(json.dumps({"iter": it, "train_loss": loss, "val_loss": loss + 0.1}) + "\n")


def test_curves_command_plots_run_folders_side_by_side(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    a, b = str(tmp_path / "out-ln"), str(tmp_path / "out-rms")
    write_log(a, [3.0 - 0.05 * i for i in range(30)])
    write_log(b, [3.2 - 0.06 * i for i in range(25)])
    train, val = analyze.read_log(a)
    assert len(train) == 30 and val[:2] == [(0, 3.0 + 0.1), (10, (3.0 - 0.05 * 10) + 0.1)]
    out = str(tmp_path / "curves.png")
    analyze.main(["curves", a, b, f"--out={out}"])
    assert os.path.getsize(out) > 5000 and f"wrote {out}" in capsys.readouterr().out
    r = subprocess.run([sys.executable, "analyze.py", "curves", a, str(tmp_path / "empty")], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "empty" in r.stderr and "no log.jsonl" in r.stderr


# ---------------------------------------------------------------------------------------------
# ablate.py: run plans, dry run, resumability, tables (train.py replaced by a fake)

def test_ablate_plans_cover_the_studies():
    import ablate
    norm = ablate.plan("norm", "cpu", depths=None, overrides={})
    assert [r.name for r in norm] == ["ln", "rms", "rms_zm", "crms"]
    assert norm[3].args["norm"] == "crms" and norm[2].args["zero_mean"] is True
    depth = ablate.plan("depth", "cpu", depths=[2, 3], overrides={"max_iters": 5})
    assert len(depth) == 14 and {r.args["n_layer"] for r in depth} == {2, 3}
    assert all(r.args["max_iters"] == 5 for r in depth)
    lns = [r for r in depth if r.name == "pre_lns_L2"][0]
    assert lns.args["depth_scale"] is True and lns.args["norm_pos"] == "pre"
    optim_runs = ablate.plan("optim", "130m", depths=None, overrides={})
    assert [r.args.get("optimizer") for r in optim_runs] == ["adamw", "muon", "muon", "muon"]
    assert optim_runs[3].args["emb_proj"] is True and optim_runs[2].args["norm"] == "ss"
    assert all(r.config_file == "config/llama-130m.py" for r in optim_runs)
    with pytest.raises(SystemExit, match="choose from"):
        ablate.plan("width", "cpu", depths=None, overrides={})


def test_ablate_dry_run_prints_commands(tmp_path, capsys):
    import ablate
    ablate.main(["norm", "--scale=cpu", "--dry_run", f"--runs_dir={tmp_path}/runs", f"--results={tmp_path}/res",
                 "--set", "max_iters=3"])
    out = capsys.readouterr().out
    cmds = [line for line in out.splitlines() if "train.py" in line]
    assert len(cmds) == 4 and all("--max_iters=3" in c for c in cmds) and "--norm=crms" in cmds[3]
    assert not os.path.exists(tmp_path / "runs")


def test_ablate_runs_skips_finished_and_writes_tables(tmp_path, monkeypatch):
    """A fake trainer writes log.jsonl + a real tiny checkpoint; a second call must not retrain."""
    pytest.importorskip("matplotlib")
    import ablate
    from study import launch
    data_dir = str(tmp_path / "data")
    write_tiny_dataset(data_dir)
    calls = []

    def fake_train(cmd, log_path, env, prefix=""):
        args = dict(a[2:].split("=", 1) for a in cmd if a.startswith("--"))
        calls.append(args["out_dir"])
        # the run record train.py would write, so that a finished run is reused, not refused
        cfg = train.parse_config(cmd[2:], GPTConfig, train.OptimConfig, train.TrainConfig)
        os.makedirs(args["out_dir"], exist_ok=True)
        train.write_run_record(args["out_dir"], train.run_record(cfg))
        write_ckpt(args["out_dir"], data_dir, make(n_layer=2, norm=args.get("norm", "ln"),
                                                   zero_mean=args.get("zero_mean") == "True"))
        with open(os.path.join(args["out_dir"], "log.jsonl"), "w") as f:
            for it in range(0, 20, 10):
                f.write(json.dumps({"iter": it, "loss": 3.0 - it / 100, "lr": 1e-3, "tok_per_s": 1.0, "ms": 5.0}) + "\n")
            f.write(json.dumps({"iter": 20, "val_loss": 2.9, "train_loss": 2.8}) + "\n")
        return 0

    monkeypatch.setattr(launch, "run_train", fake_train)
    argv = ["norm", f"--runs_dir={tmp_path}/runs", f"--results={tmp_path}/res", "--analyze_batches=1",
            "--set", f"data_dir={data_dir}", "--set", "dataset=tiny", "--no_exactness_test"]
    ablate.main(argv)
    assert len(calls) == 4
    md = open(tmp_path / "res" / "results.md").read()
    assert "| crms |" in md and "max abs diff, train loss" in md
    summary = json.load(open(tmp_path / "res" / "summary.json"))
    assert summary["runs"]["ln"]["val_loss"] == 2.9
    assert os.path.exists(tmp_path / "res" / "loss_curves.png")
    ablate.main(argv)  # everything is done: nothing retrains
    assert len(calls) == 4
    os.remove(tmp_path / "runs" / "crms" / "done")  # an unfinished run is redone
    ablate.main(argv)
    assert len(calls) == 5 and calls[-1].endswith("crms")
