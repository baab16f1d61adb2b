"""The findings study's rules: the paired verdict and its error rate, failed runs, the best lr and its grid
extension, and the quantization check (hand-worked cases)."""

import json
import math
import os
import random
import shutil
import subprocess
import sys

import pytest
import torch

import analyze
from conftest import CORPUS_DIR, ROOT, needs_corpus
from study.verdict import best_lr, failure, loss_with_failures, paired_interval, paired_verdict, t975


def test_paired_interval_by_hand():
    # d = (-0.1, -0.2, -0.3): mean -0.2, sd 0.1, half-width t(0.975, 2) * 0.1 / sqrt(3) = 4.303 * 0.057735
    iv = paired_interval([1.0, 2.0, 3.0], [1.1, 2.2, 3.3])
    half = 4.303 * 0.1 / math.sqrt(3)
    assert iv["n"] == 3 and iv["mean"] == pytest.approx(-0.2)
    assert iv["lo"] == pytest.approx(-0.2 - half) and iv["hi"] == pytest.approx(-0.2 + half)
    assert paired_verdict([1.0, 2.0, 3.0], [1.1, 2.2, 3.3])[0] == "no difference detected"  # hi = +0.048
    assert paired_verdict([1.0, 2.0, 3.0], [1.2, 2.21, 3.22])[0] == "agrees"
    assert paired_verdict([1.2, 2.21, 3.22], [1.0, 2.0, 3.0])[0] == "disagrees"


def test_pairs_need_both_sides_and_two_seeds():
    assert paired_interval([1.0, None, 3.0], [2.0, 2.0, float("nan")])["n"] == 1
    assert paired_verdict([1.0, None], [2.0, 2.0])[0] == "not testable"
    assert t975(4) == 2.776 and t975(22) == 2.086 and t975(100) == 1.96  # between rows: the lower df (wider)


def test_false_verdict_rate_under_no_effect_is_about_five_percent():
    # two equal arms, 5 seeds each: the rule must call a difference in ~5% of studies (2.5% each way)
    rng = random.Random(0)
    calls = {"agrees": 0, "disagrees": 0}
    trials = 4000
    for _ in range(trials):
        a = [rng.gauss(2.2, 0.02) for _ in range(5)]
        b = [rng.gauss(2.2, 0.02) for _ in range(5)]
        v, _ = paired_verdict(a, b)
        calls[v] = calls.get(v, 0) + 1
    assert 0.035 < (calls["agrees"] + calls["disagrees"]) / trials < 0.065, calls
    assert 0.01 < calls["agrees"] / trials < 0.04, calls


def test_failed_runs_count_at_the_unigram_loss():
    unigram = 3.17
    assert failure({"outcome": "diverged"}, unigram) == "diverged"
    assert failure({"final_val_loss": 3.10}, unigram) == "stalled"
    assert failure({"final_val_loss": float("nan")}, unigram) == "diverged"
    assert failure({"final_val_loss": 2.2}, unigram) is None
    assert loss_with_failures({"final_val_loss": 3.10}, unigram) == unigram


def test_best_lr_and_the_edge_extension():
    m = lambda *losses: [{"final_val_loss": v} for v in losses]  # noqa: E731
    assert best_lr({1e-3: m(2.3, 2.31), 2e-3: m(2.2, 2.21), 4e-3: m(2.25, 2.26)}, 3.17) == (2e-3, None)
    assert best_lr({1e-3: m(2.3, 2.31), 2e-3: m(2.2, 2.21), 4e-3: m(2.1, 2.1)}, 3.17) == (4e-3, 8e-3)
    assert best_lr({1e-3: m(2.0, 2.0), 2e-3: m(2.2, 2.21), 4e-3: m(2.1, 2.1)}, 3.17) == (1e-3, 5e-4)
    # a diverged seed makes an lr count at the unigram loss: the edge lr that diverges is not the best
    diverged = [{"final_val_loss": 2.0}, {"outcome": "diverged"}]
    assert best_lr({1e-3: m(2.3, 2.31), 2e-3: m(2.2, 2.21), 4e-3: diverged}, 3.17) == (2e-3, None)


def test_quantize_rtn_by_hand():
    # 4 bits: q_max = 7; row 0's scale is 1/7: 1 -> 7, -0.45 -> -3.15 -> -3, 0.26 -> 1.82 -> 2, 0 -> 0
    w = torch.tensor([[1.0, -0.45, 0.26, 0.0], [0.0, 0.0, 0.0, 0.0], [-2.0, 0.5, 0.1, 1.0]], dtype=torch.float64)
    q = analyze.quantize_rtn(w, 4)
    assert torch.allclose(q[0], torch.tensor([7, -3, 2, 0], dtype=torch.float64) / 7)
    assert torch.equal(q[1], torch.zeros(4, dtype=torch.float64))  # an all-zero row stays zero
    # row 2: scale 2/7: -2 -> -7, 0.5 -> 1.75 -> 2, 0.1 -> 0.35 -> 0, 1 -> 3.5 -> 4 (round half to even)
    assert torch.allclose(q[2], torch.tensor([-7, 2, 0, 4], dtype=torch.float64) * 2 / 7)
    assert torch.equal(analyze.quantize_rtn(q, 4), q)  # quantized values are fixed points


def test_quantization_check_on_a_tiny_model():
    from model import GPT, GPTConfig
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=64, norm="rms", pos_emb="rope",
                          mlp="swiglu", bias=False, tie_embeddings=False)).double()
    x = torch.randint(0, 64, (4, 16))
    batches = [(x, torch.roll(x, -1, 1))]
    r = analyze.quantization_check(model, batches)
    assert r["loss"] == pytest.approx(model(*batches[0])[1].item())
    assert r["w4_increase"] != 0 and abs(r["w8a8_increase"]) < abs(r["w4_increase"])  # 8 bits lose less than 4
    # 16-bit weights and activations are nearly exact; 2-bit ones are not: the hooks do quantize the inputs
    near = abs(analyze.quantized_loss(model, batches, 16, 16) - r["loss"])
    assert near < 1e-4 and abs(analyze.quantized_loss(model, batches, 16, 2) - r["loss"]) > 10 * near
    assert next(model.parameters()).dtype == torch.float64 and model.training  # the model itself is untouched


# ---------------------------------------------------------------------------------------------------
# the shipped table regenerates from the run records that ship with it, training nothing

SHIPPED = os.path.join(ROOT, "results", "findings")


@needs_corpus
def test_shipped_findings_regenerate_from_their_records(tmp_path):
    """A fresh clone has results/findings/runs/*/{run.json, log.jsonl, analysis.json, quant.json, done} and no
    checkpoint: `python ablate.py findings` must reuse every run and write the same findings.md, word for word.
    The dataset is the books' corpus_char, made here from NANONORM_CORPUS as a user's download would make it."""
    import prepare
    if not os.path.exists(os.path.join(ROOT, "data", "corpus_char", "meta.json")):
        prepare.prepare("books", name="corpus_char", data_dir=os.path.join(ROOT, "data"), inputs=[CORPUS_DIR])
    from study.findings import RECORD_FILES
    runs = tmp_path / "runs"  # what a fresh clone has: the record files, no checkpoint (a local checkout may have them)
    shutil.copytree(os.path.join(SHIPPED, "runs"), runs,
                    ignore=lambda folder, names: [n for n in names if n not in RECORD_FILES
                                                  and not os.path.isdir(os.path.join(folder, n))])
    if os.path.isdir(os.path.join(SHIPPED, "recheck", "runs")):  # the evaluation check's copies ship too
        shutil.copytree(os.path.join(SHIPPED, "recheck", "runs"), tmp_path / "recheck" / "runs",
                        ignore=lambda folder, names: [n for n in names if n not in RECORD_FILES
                                                      and not os.path.isdir(os.path.join(folder, n))])
    assert not list(runs.glob("*/ckpt.pt")) and not list(tmp_path.glob("recheck/runs/*/ckpt.pt"))
    p = subprocess.run([sys.executable, "ablate.py", "findings", f"--runs_dir={runs}", f"--results={tmp_path}",
                        "--no_plots"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    n = len(os.listdir(runs))
    assert f"reused {n} of {n} runs, trained 0" in p.stdout and "retraining" not in p.stdout, p.stdout[-2000:]
    with open(os.path.join(SHIPPED, "findings.md")) as f:
        shipped = f.read()
    assert (tmp_path / "findings.md").read_text() == shipped


def test_shipped_records_are_small_and_complete():
    """What ships is the evidence, not the weights: every run folder has its record files, none a checkpoint,
    and the whole folder stays under 5 MB."""
    from study.findings import RECORD_FILES
    tracked = subprocess.run(["git", "ls-files", "results/findings/runs", "results/findings/recheck/runs"], cwd=ROOT,
                             capture_output=True, text=True)
    if tracked.returncode:
        pytest.skip("not a git checkout: what ships is what git tracks")
    by_run = {}
    for path in tracked.stdout.split():
        by_run.setdefault(os.path.dirname(path), set()).add(os.path.basename(path))
    folders = [os.path.join(SHIPPED, "runs", n) for n in os.listdir(os.path.join(SHIPPED, "runs"))]
    if os.path.isdir(os.path.join(SHIPPED, "recheck", "runs")):
        folders += [os.path.join(SHIPPED, "recheck", "runs", n) for n in os.listdir(os.path.join(SHIPPED, "recheck", "runs"))]
    assert len(by_run) == len(folders)  # every run folder ships
    total = 0
    for d, names in by_run.items():
        assert {"run.json", "log.jsonl", "done"} <= names and names <= set(RECORD_FILES), (d, names)
        total += sum(os.path.getsize(os.path.join(ROOT, d, f)) for f in names)
    assert total < 5e6, total


# ---------------------------------------------------------------------------------------------------
# the plan: a sweep per arm, then each arm at its settled best lr and the depth arms at the papers' lr

def test_findings_plan_sweeps_every_arm_and_plans_the_table_from_the_best_lrs():
    from study import findings
    sweep = findings.sweep_plan({})
    for arm, (key, grid) in findings.SWEEP.items():
        assert len(grid) >= 4 and all(b == pytest.approx(2 * a) for a, b in zip(grid, grid[1:])), arm
        runs = [r for r in sweep if (r.extra["part"], r.extra["variant"]) == arm]
        assert {(r.extra["lr"], r.args["seed"]) for r in runs} == {(lr, s) for lr in grid for s in findings.SWEEP_SEEDS}
        for r in runs:
            if key == "learning_rate":
                assert r.args["learning_rate"] == r.extra["lr"] and r.args["min_lr"] == pytest.approx(r.extra["lr"] / 10)
            else:
                assert r.args["muon_lr"] == r.extra["lr"] and r.args["optimizer"] == "muon"
            assert r.args["final_eval_tokens"] == findings.FINAL_EVAL_TOKENS
    assert len(findings.SWEEP_SEEDS) >= 2 and len(findings.FINDINGS_SEEDS) >= 5
    # an extension adds its lr to that arm only; the papers' lr rows need no sweep
    plan = findings.findings_plan({}, None, {("depth", "post"): [2.5e-4]})
    names = {r.name for r in plan}
    assert "depth_post_lr0.00025_s1337" in names and "depth_pre_lr0.00025_s1337" not in names
    assert {f"depth_{v}_lr0.001_s{s}" for v in ("pre", "mix") for s in findings.FINDINGS_SEEDS} <= names
    # a settled best lr brings its 5 seeds, Muon's brings the OSP arm at the same muon_lr
    best = {("depth", "mix"): 2e-3, ("optim", "muon"): 0.04}
    names = {r.name for r in findings.findings_plan({}, best)}
    assert {f"depth_mix_lr0.002_s{s}" for s in findings.FINDINGS_SEEDS} <= names
    assert {f"optim_muon_ss_ep_mlr0.04_s{s}" for s in findings.FINDINGS_SEEDS} <= names
    assert len(names) == len(findings.findings_plan({}, best))  # one training per name


def _m(loss, **extra):
    return {"dir": None, "outcome": "trained", "final_val_loss": loss, "final_val_se": 0.002, "train_rows": [],
            **extra}


def test_findings_rows_give_both_protocols_and_count_failed_runs():
    from study import findings
    S = findings.FINDINGS_SEEDS
    unigram = 3.17
    m = {}
    for lr, pre, post in ((4e-3, 2.15, 2.10), (1e-3, 2.30, 2.35)):  # Post-LN better at its best, worse at 1e-3
        m[f"depth_pre_lr{lr:g}"] = {s: _m(pre + 0.001 * i, rms_growth_deep=3.0) for i, s in enumerate(S)}
        m[f"depth_post_lr{lr:g}"] = {s: _m(post + 0.002 * i) for i, s in enumerate(S)}
    m["depth_post_lr0.004"][S[4]] = {"dir": None, "outcome": "diverged", "final_val_loss": None, "train_rows": []}
    best = {("depth", "pre"): 4e-3, ("depth", "post"): 4e-3}
    rows = findings.findings_rows(m, best, unigram)
    by = {(r["id"], r.get("protocol_key")): r for r in rows}
    fair, papers = by[("post_depth", "best")], by[("post_depth", "papers")]
    assert papers["verdict"] == "agrees" and papers["interval"]["n"] == 5  # Pre-LN below Post-LN at 1e-3
    assert fair["failed"] == [[], [f"{S[4]}: diverged"]] and fair["b_values"][4] == unigram
    assert fair["verdict"] == "no difference detected"  # the diverged seed (at the unigram loss) widens it
    assert fair["verdict_without_failed"] == "disagrees" and fair["interval_without_failed"]["n"] == 4
    assert "pre 0.004, post 0.004" in fair["protocol"] and "papers' lr 0.001" in papers["protocol"]
    assert by[("exactness", None)]["verdict"] == "not testable"


def test_a_verdict_near_the_evaluation_noise_gets_its_paired_error(tmp_path):
    """A loss verdict whose runs' own SE is above 1/5 of the difference needs the paired evaluation error: from the
    runs' heldout.json when kept (the same sequences for both arms), else from retrained copies (the recheck)."""
    from study import findings, findings_table, heldout
    S = findings.FINDINGS_SEEDS
    m = {}
    for cfg, base in (("depth_pre_lr0.001", 2.30), ("depth_mix_lr0.001", 2.29)):  # difference -0.01, SE 0.002
        m[cfg] = {}
        for i, s in enumerate(S):
            d = tmp_path / f"{cfg}_s{s}"
            d.mkdir()
            shift = base + 0.0001 * i
            (d / heldout.FILE).write_text(json.dumps({"loss": [shift + 0.5, shift - 0.5, shift + 0.2, shift - 0.2]}))
            m[cfg][s] = _m(base + 0.0001 * i, dir=str(d))
    rows = findings.findings_rows(m, {}, 3.17)
    row = next(r for r in rows if r["id"] == "mix_loss" and r.get("protocol_key") == "papers")
    assert row["verdict"] == "agrees" and findings_table.needs_paired_error(row)  # 5 x 0.002 > 0.01
    # mix is 0.01 below pre on every sequence: the paired error is 0 (to rounding), far below the difference
    assert row["paired_se"] == pytest.approx(0.0, abs=1e-9)
    lines = findings_table.paired_error_lines(rows, None)
    assert len(lines) == 1 and "difference -0.0100; paired evaluation error 0.0000" in lines[0] and "within" in lines[0]
    # without per-sequence losses: the recheck's copies say it, with how far they are from the table's runs
    row["paired_se"] = None
    iv = {"n": 5, "mean": -0.011, "lo": -0.014, "hi": -0.008}
    recheck = {("mix_loss", "papers"): {"paired_se": 0.004, "runs": 10, "machine": "Some CPU", "interval": iv,
                                         "verdict": "agrees", "folder": "recheck/runs", "max_reproduction_diff": 2e-4}}
    line = findings_table.paired_error_lines(rows, recheck)[0]
    assert "paired evaluation error 0.0040, 2.5x below it: NOT within the rule" in line
    assert "copies of its 10 runs retrained on Some CPU" in line and "at most 2.0e-04" in line
    assert "-0.0110 [-0.0140, -0.0080] (n=5), **agrees**" in line
    assert "not measured" in findings_table.paired_error_lines(rows, {})[0]


def test_a_diverged_run_is_recorded_as_a_failed_run_and_any_other_failure_stops(tmp_path):
    from study import findings_study
    (tmp_path / "a").mkdir()
    findings_study.record_divergences({"a": {"cmd": "x", "failed": 1, "wall_s": 3.0,
                                             "reason": "error: non-finite loss (nan) at iter 7; stopping"},
                                       "b": {"cmd": "y", "wall_s": 2.0}}, str(tmp_path))
    import json
    done = json.loads((tmp_path / "a" / "done").read_text())
    assert done["outcome"] == "diverged" and done["wall_s"] == 3.0 and "non-finite" in done["reason"]
    with pytest.raises(SystemExit, match="c failed: Traceback"):
        findings_study.record_divergences({"c": {"cmd": "z", "failed": 1, "reason": "Traceback"}}, str(tmp_path))


def test_findings_dry_run_lists_the_sweep_and_projects_its_time(tmp_path, capsys):
    import ablate
    ablate.main(["findings", "--dry_run", "--jobs=2", f"--runs_dir={tmp_path}/runs"])
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("# depth_pre_lr") and line.endswith(": new") for line in out) >= 8
    proj = next(line for line in out if line.startswith("# projected:"))
    assert float(proj.split()[2]) > 0 and "--jobs=2" in proj
    with pytest.raises(SystemExit):
        ablate.main(["findings", "--only=norm", "--dry_run"])
