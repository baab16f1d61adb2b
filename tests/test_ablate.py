"""Tests for ablate.py's data preparation, the 130M study's paper numbers and dry run, and the cpu_deep study's
plan and seed tables (no training)."""
import io
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # tests/conftest.py does this too when present
    sys.path.insert(0, ROOT)

import pytest

import ablate
import prepare


def _no_network(url):
    raise OSError("[Errno -2] Name or service not known")


def test_cpu_corpus_offline_falls_back_to_python_docs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prepare, "_open_url", _no_network)
    data = str(tmp_path / "data")
    assert ablate.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "python_docs"
    out = capsys.readouterr().out
    assert "prepare.py books --name corpus_char" in out
    assert sum("instead of the books" in line for line in out.splitlines()) == 1
    assert sorted(os.listdir(data)) == ["python_docs"]


def test_cpu_corpus_bad_download_falls_back_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prepare, "_open_url", lambda url: io.BytesIO(b"<html>moved</html>"))
    data = str(tmp_path / "data")
    assert ablate.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "python_docs"
    out = capsys.readouterr().out
    assert "sha256" in out and "using the offline python_docs dataset instead of corpus_char" in out
    assert sorted(os.listdir(data)) == ["python_docs"]


def test_cpu_corpus_prepared_from_books(tmp_path, monkeypatch):
    """With the books reachable (a fake network serving two stand-in books), corpus_char is the books."""
    import hashlib
    books = [prepare.Book(n, n, f"https://example.org/{n}.txt", hashlib.sha256(n.encode() * 400).hexdigest())
             for n in ("alpha", "beta")]
    monkeypatch.setattr(prepare, "BOOKS", books)
    monkeypatch.setattr(prepare, "BOOK_BY_NAME", {b.name: b for b in books})
    monkeypatch.setattr(prepare, "_open_url", lambda url: io.BytesIO(url.rsplit("/", 1)[1][:-4].encode() * 400))
    data = str(tmp_path / "data")
    assert ablate.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "corpus_char"
    meta = prepare.load_meta(data, "corpus_char")
    assert meta["source"] == "books" and meta["chars"] == sorted(set("alphabeta\n"))
    monkeypatch.setattr(prepare, "_open_url", _no_network)  # prepared: no network needed any more
    assert ablate.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "corpus_char"


def test_130m_dry_run_prints_tokens_flops_hours_and_paper_numbers(tmp_path, capsys):
    ablate.main(["depth", "--scale=130m", "--dry_run", f"--runs_dir={tmp_path}/runs", "--set", "max_iters=2000"])
    out = capsys.readouterr().out.splitlines()
    cmds = [i for i, line in enumerate(out) if line.startswith("python train.py config/llama-130m.py")]
    assert len(cmds) == 7 and all("--dataset=c4" in out[i] and "--max_iters=2000" in out[i] for i in cmds)
    paper = {}
    for i in cmds:
        name = out[i].rsplit("/", 1)[1]
        proj = out[i + 1]
        tokens = int(proj.split()[1].replace(",", ""))
        assert tokens == 2000 * 64 * 8 * 256  # max_iters x batch x accumulation x block of the preset
        mflop = float(proj.split(" x ")[1].split()[0].replace(",", ""))
        assert 600 < mflop < 750  # 6 x ~110M matmul weights (with the 32,000-token T5 head) + attention
        hours = float(proj.split("FLOPs: ")[1].split()[0])
        assert hours == pytest.approx(tokens * mflop * 1e6 / (989e12 * 0.40) / 3600, rel=0.05)
        if "paper C4 val ppl" in proj:
            paper[name] = float(proj.rsplit(" ", 1)[1])
    assert paper == {"pre_L12": 26.73, "post_L12": 26.95, "mix_L12": 26.07, "pre_lns_L12": 25.76, "deepnorm_L12": 27.17}
    assert "Sun et al. 2025" in out[-1] and "40% MFU" in out[-1]
    assert not os.path.exists(tmp_path / "runs")


def test_paper_numbers_only_for_the_papers_setup_and_in_the_table():
    runs = ablate.plan("depth", "130m", [12, 24], {})
    at12 = {r.name: r.extra.get("paper_val_ppl") for r in runs}
    # the DeepNorm row runs as the papers' code built it; the CPU study keeps DeepNet's formulas
    assert {r.name: r.args.get("deepnorm_variant") for r in runs if "deepnorm" in r.name} == \
        {"deepnorm_L12": "papers_code", "deepnorm_L24": "papers_code"}
    assert all("deepnorm_variant" not in r.args for r in ablate.plan("depth", "cpu", [6], {}))
    assert at12["pre_L12"] == 26.73 and at12["pre_L24"] is None and at12["sandwich_L12"] is None
    other_data = ablate.plan("depth", "130m", None, {"dataset": "fineweb_edu"})
    assert all("paper_val_ppl" not in r.extra for r in other_data)
    assert all("paper_val_ppl" not in r.extra for r in ablate.plan("depth", "cpu", None, {}))
    runs = [r for r in ablate.plan("depth", "130m", None, {}) if r.name in ("pre_L12", "sandwich_L12")]
    metrics = {r.name: {**r.extra, "val_loss": 3.3, "val_ppl": 27.11} for r in runs}
    lines = ablate.main_table(runs, metrics, "depth").splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    pre = [c.strip() for c in lines[2].strip("|").split("|")]
    sandwich = [c.strip() for c in lines[3].strip("|").split("|")]
    k = header.index("paper val ppl")
    assert header[k - 1] == "val ppl" and pre[k - 1] == "27.11" and pre[k] == "26.73" and sandwich[k] == "-"


# --------------------------------------------------------------------------------------------
# cpu_deep: the 24-layer, two-seed depth study (issue 11, item 5)

def test_cpu_deep_plan_has_four_configs_two_seeds_24_layers_800_steps():
    runs = ablate.plan("depth", "cpu_deep", None, {})
    assert len(runs) == 8
    got = {(r.extra["config"], r.args["seed"]) for r in runs}
    assert got == {(c, s) for c in ("pre_L24", "pre_lns_L24", "mix_L24", "post_L24") for s in (1337, 1338)}
    assert len({r.name for r in runs}) == 8 and all(r.name == f"{r.extra['config']}_s{r.args['seed']}" for r in runs)
    assert [r.args["seed"] for r in runs[:4]] == [1337] * 4  # one whole seed first: a cut-short study has every config
    for r in runs:
        a = r.args
        assert a["n_layer"] == 24 and a["max_iters"] >= 800 and a["dataset"] == "corpus_char"
        assert a["analyze_interval"] > 0 and a["analyze_interval"] % a["eval_interval"] == 0
        assert a["max_iters"] // a["analyze_interval"] >= 4  # the trends need several points over training
        assert a["n_embd"] % a["n_head"] == 0 and a["norm"] == "rms" and a["tie_embeddings"] is False
    by = {r.extra["config"]: r.args for r in runs}
    assert by["pre_lns_L24"]["depth_scale"] is True and by["pre_lns_L24"]["norm_pos"] == "pre"
    assert by["pre_L24"]["depth_scale"] is False and by["mix_L24"]["norm_pos"] == "mix"
    assert by["post_L24"]["norm_pos"] == "post"
    # the other scales keep their plans: one run per variant and depth, no seed in the names
    cpu = ablate.plan("depth", "cpu", None, {})
    assert len(cpu) == 14 and all("config" not in r.extra and "_s" not in r.name and r.args["seed"] == 1337 for r in cpu)
    with pytest.raises(SystemExit, match="cpu_deep"):
        ablate.plan("norm", "cpu_deep", None, {})


def _fake_run(out_dir, L, val_loss, share, growth, seed_shift):
    """log.jsonl with quick_metrics eval rows and an analysis.json as analyze.py writes them."""
    import json
    os.makedirs(out_dir)
    with open(os.path.join(out_dir, "log.jsonl"), "w") as f:
        for it in (0, 100, 200):
            f.write(json.dumps({"iter": it + 9, "loss": 3.0 - it / 1000, "ms": 10.0}) + "\n")
            loss = val_loss + (200 - it) / 1000  # the last evaluation gives val_loss
            f.write(json.dumps({"iter": it, "train_loss": loss, "val_loss": loss, "drop_share_lt1pct": share * it / 200,
                                "rms_growth": 1 + growth * it / 200, "ang_adjacent": 0.1, "drop_max_rel": 0.5}) + "\n")
    rel = [0.5] + [0.005 + seed_shift] * (L - 1)
    rms = [0.1] + [1.0 + growth * l / L for l in range(1, L + 1)]
    analysis = {"angular_last": [[0.1 if l + n < L else None for n in range(L)] for l in range(L)],
                "layer_drop": {"rel": rel}, "rms": rms, "grad_norm": [1.0 + l for l in range(L)],
                "kurtosis_raw": [0.0] * (L + 1),
                "summary": {"drop_share_lt1pct": share, "drop_max_rel": 0.5, "ang_adjacent": 0.1,
                            "rms_growth_deep": rms[-1] / rms[1], "rms_growth": rms[-1] / rms[0],
                            "grad_norm_first_over_last": 1 / L, "grad_norm_cv": 0.3, "kurtosis_mean": 0.0,
                            "kurtosis_raw_mean": 0.0}}
    with open(os.path.join(out_dir, "analysis.json"), "w") as f:
        json.dump(analysis, f)
    return analysis


def test_cpu_deep_results_give_seed_mean_spread_and_trajectories(tmp_path):
    import json
    L = 4
    runs = ablate.plan("depth", "cpu_deep", [L], {})
    runs_dir, results_dir = str(tmp_path / "runs"), str(tmp_path / "results")
    configs = list(dict.fromkeys(r.extra["config"] for r in runs))
    records = {}
    for r in runs:
        k, s = configs.index(r.extra["config"]), [1337, 1338].index(r.args["seed"])
        a = _fake_run(os.path.join(runs_dir, r.name), L, val_loss=2.0 + 0.1 * k + 0.02 * s,
                      share=[0.25, 0.75][s] if k == 0 else 0.0, growth=float(k + 1), seed_shift=0.0)
        records[r.name] = {"cmd": f"python train.py {r.name}", "wall_s": 10.0, "analysis": a}
    summary = ablate.write_results("depth", "cpu_deep", runs, records, runs_dir, results_dir,
                                   "python ablate.py depth --scale=cpu_deep", 80.0)
    by = summary["by_config"]
    assert list(by) == configs and all(len(v["seeds"]) == 2 for v in by.values())
    first = by[configs[0]]["final"]
    assert first["val_loss"]["mean"] == pytest.approx(2.01) and first["val_loss"]["spread"] == pytest.approx(0.02)
    assert first["drop_share_lt1pct"]["mean"] == pytest.approx(0.5)
    assert first["drop_share_lt1pct"]["spread"] == pytest.approx(0.5)
    assert by[configs[1]]["final"]["drop_share_lt1pct"]["mean"] == 0.0
    assert first["deep_half_removable"]["values"] == [1.0, 1.0]  # rel = [0.5, 0.005, 0.005, 0.005]: blocks 2, 3
    traj = by[configs[0]]["trajectory"]
    assert traj["iter"] == [0, 100, 200] and traj["drop_share_lt1pct"] == pytest.approx([0.0, 0.25, 0.5])
    assert by[configs[2]]["trajectory"]["rms_growth"] == pytest.approx([1.0, 2.5, 4.0])
    md = open(os.path.join(results_dir, "results.md")).read()
    assert "## mean over seeds (spread = max - min)" in md
    row = next(line for line in md.splitlines() if line.startswith(f"| {configs[0]} |"))
    assert "2.0100 (0.0200)" in row and "0.50 (0.50)" in row and "2.0 of 4" in row
    assert "## over training: removable share" in md and "| 0 | 100 | 200 |" in md
    for png in ("trajectories.png", "profiles.png", "loss_curves.png"):
        assert os.path.getsize(os.path.join(results_dir, png)) > 1000 and f"]({png})" in md
    with open(os.path.join(results_dir, "summary.json")) as f:
        assert json.load(f)["by_config"][configs[0]]["final"]["val_loss"]["values"] == pytest.approx([2.0, 2.02])
