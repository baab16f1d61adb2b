"""Tests for ablate.py: data preparation, the 130M study's paper numbers and dry run, the cpu_deep study's plan and
seed tables; run records (reuse, refusal, retraining), suffixed folders, failed runs, --jobs, the findings
verdicts and the gpu_short study (tiny 2-step runs on the tiny dataset)."""
import io
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # tests/conftest.py does this too when present
    sys.path.insert(0, ROOT)

import pytest

import ablate
import prepare
from study import analysis, records, results, runlog, studies


def _no_network(url):
    raise OSError("[Errno -2] Name or service not known")


def test_cpu_corpus_offline_falls_back_to_python_docs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prepare, "_open_url", _no_network)
    data = str(tmp_path / "data")
    assert records.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "python_docs"
    out = capsys.readouterr().out
    assert "prepare.py books --name corpus_char" in out
    assert sum("instead of the books" in line for line in out.splitlines()) == 1
    assert sorted(os.listdir(data)) == ["python_docs"]


def test_cpu_corpus_bad_download_falls_back_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prepare, "_open_url", lambda url: io.BytesIO(b"<html>moved</html>"))
    data = str(tmp_path / "data")
    assert records.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "python_docs"
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
    assert records.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "corpus_char"
    meta = prepare.load_meta(data, "corpus_char")
    assert meta["source"] == "books" and meta["chars"] == sorted(set("alphabeta\n"))
    monkeypatch.setattr(prepare, "_open_url", _no_network)  # prepared: no network needed any more
    assert records.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "corpus_char"


def test_130m_dry_run_prints_tokens_flops_hours_and_paper_numbers(tmp_path, capsys):
    ablate.main(["depth", "--scale=130m", "--dry_run", f"--runs_dir={tmp_path}/runs", "--set", "max_iters=2000"])
    out = capsys.readouterr().out.splitlines()
    cmds = [i for i, line in enumerate(out) if line.startswith("python train.py config/llama-130m.py")]
    assert len(cmds) == 7 and all("--dataset=c4" in out[i] and "--max_iters=2000" in out[i] for i in cmds)
    paper = {}
    for i in cmds:  # one line of time per run: study/hardware.py's plan (the old 40%-MFU line is gone)
        name = out[i].rsplit("/", 1)[1]
        proj = out[i + 1]
        assert proj.startswith("#   plan: 134.1M parameters; ")
        tokens = int(proj.split("; ")[1].split()[0].replace(",", ""))
        assert tokens == 2000 * 64 * 8 * 256  # max_iters x batch x accumulation x block of the preset
        mflop = float(proj.split(" x ")[1].split()[0].replace(",", ""))
        assert 600 < mflop < 750  # 6 x ~110M matmul weights (with the 32,000-token T5 head) + attention
        flops = float(proj.split(" FLOPs: ")[0].rsplit(" ", 1)[1])
        assert flops > tokens * mflop * 1e6  # + the evaluations' forwards
        hours = float(proj.split("FLOPs: ")[1].split()[0])
        assert "H100-hours at 36% MFU" in proj  # the <= 200M size class's measured MFU
        assert hours == pytest.approx(flops / (989e12 * 0.36) / 3600, rel=0.06)
        if "paper C4 val ppl" in proj:
            paper[name] = float(proj.rsplit(" ", 1)[1])
    assert paper == {"pre_L12": 26.73, "post_L12": 26.95, "mix_L12": 26.07, "pre_lns_L12": 25.76, "deepnorm_L12": 27.17}
    assert sum("H100" in line for line in out) == 7 + 1 and not any(" h on one H100" in line for line in out)
    assert out[-2].startswith("# plan of the table: 7 run(s) to train, ") and "H100-hours" in out[-2]
    assert "Sun et al. 2025" in out[-1]
    assert not os.path.exists(tmp_path / "runs")


def test_paper_numbers_only_for_the_papers_setup_and_in_the_table():
    runs = studies.plan("depth", "130m", [12, 24], {})
    at12 = {r.name: r.extra.get("paper_val_ppl") for r in runs}
    # the DeepNorm row runs as the papers' code built it; the CPU study keeps DeepNet's formulas
    assert {r.name: r.args.get("deepnorm_variant") for r in runs if "deepnorm" in r.name} == \
        {"deepnorm_L12": "papers_code", "deepnorm_L24": "papers_code"}
    assert all("deepnorm_variant" not in r.args for r in studies.plan("depth", "cpu", [6], {}))
    assert at12["pre_L12"] == 26.73 and at12["pre_L24"] is None and at12["sandwich_L12"] is None
    other_data = studies.plan("depth", "130m", None, {"dataset": "fineweb_edu"})
    assert all("paper_val_ppl" not in r.extra for r in other_data)
    assert all("paper_val_ppl" not in r.extra for r in studies.plan("depth", "cpu", None, {}))
    runs = [r for r in studies.plan("depth", "130m", None, {}) if r.name in ("pre_L12", "sandwich_L12")]
    metrics = {r.name: {**r.extra, "val_loss": 3.3, "val_ppl": 27.11} for r in runs}
    lines = results.main_table(runs, metrics, "depth").splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    pre = [c.strip() for c in lines[2].strip("|").split("|")]
    sandwich = [c.strip() for c in lines[3].strip("|").split("|")]
    k = header.index("paper val ppl")
    assert header[k - 1] == "val ppl" and pre[k - 1] == "27.11" and pre[k] == "26.73" and sandwich[k] == "-"


# --------------------------------------------------------------------------------------------
# cpu_deep: the 24-layer, two-seed depth study (issue 11, item 5)

def test_cpu_deep_plan_has_four_configs_two_seeds_24_layers_800_steps():
    runs = studies.plan("depth", "cpu_deep", None, {})
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
    cpu = studies.plan("depth", "cpu", None, {})
    assert len(cpu) == 14 and all("config" not in r.extra and "_s" not in r.name and r.args["seed"] == 1337 for r in cpu)
    with pytest.raises(SystemExit, match="cpu_deep"):
        studies.plan("norm", "cpu_deep", None, {})


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
    runs = studies.plan("depth", "cpu_deep", [L], {})
    runs_dir, results_dir = str(tmp_path / "runs"), str(tmp_path / "results")
    configs = list(dict.fromkeys(r.extra["config"] for r in runs))
    records = {}
    for r in runs:
        k, s = configs.index(r.extra["config"]), [1337, 1338].index(r.args["seed"])
        a = _fake_run(os.path.join(runs_dir, r.name), L, val_loss=2.0 + 0.1 * k + 0.02 * s,
                      share=[0.25, 0.75][s] if k == 0 else 0.0, growth=float(k + 1), seed_shift=0.0)
        records[r.name] = {"cmd": f"python train.py {r.name}", "wall_s": 10.0, "analysis": a}
    summary = results.write_results("depth", "cpu_deep", runs, records, runs_dir, results_dir,
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


# --------------------------------------------------------------------------------------------
# run records, suffixed folders, failures, --jobs, findings, gpu_short (issue 18, issue 19 item 2): tiny runs

def _tiny(data_dir, name, **extra):
    """--set overrides that make every run of a study a ~2 s, 2-step run on the tiny dataset."""
    sets = {**dict(data_dir=data_dir, dataset=name, max_iters=2, eval_interval=2, eval_iters=1, log_interval=1,
                   n_layer=1, n_embd=32, n_head=2, block_size=16, batch_size=2, warmup_iters=0), **extra}
    return [a for k, v in sets.items() if v is not None for a in ("--set", f"{k}={v}")]  # None: keep the plan's


QUIET = ["--no_exactness_test", "--no_plots", "--analyze_batches=1", "--analyze_batch_size=2"]


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # train.py is run as `python train.py`
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def trained_ln(tiny_dataset, tmp_path_factory):
    """One finished tiny Pre-LN run of the norm study: (runs_dir, argv that trained it)."""
    data_dir, name = tiny_dataset
    base = tmp_path_factory.mktemp("study")
    argv = ["norm", "--only=ln", f"--runs_dir={base}/runs", f"--results={base}/results"] + QUIET + _tiny(data_dir, name)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        ablate.main(argv)
    finally:
        os.chdir(cwd)
    return str(base / "runs"), argv


def test_run_record_is_written_and_a_matching_run_reused(trained_ln, tiny_dataset, in_root, capsys):
    import json
    runs_dir, argv = trained_ln
    data_dir, name = tiny_dataset
    with open(os.path.join(runs_dir, "ln", "run.json")) as f:
        rec = json.load(f)
    assert rec["config"]["max_iters"] == 2 and rec["config"]["norm"] == "ln" and rec["config"]["n_embd"] == 32
    assert rec["dataset"]["name"] == name and len(rec["dataset"]["meta_sha256"]) == 64
    assert sorted(rec["dataset"]["shards"]) == sorted(f for f in os.listdir(os.path.join(data_dir, name))
                                                      if f.endswith(".bin"))
    assert len(rec["code"]["source_sha256"]) == 64 and "train.py" in rec["code"]["files"]
    assert "ablate.py" not in rec["code"]["files"]  # tools around training do not invalidate runs
    ckpt = os.path.join(runs_dir, "ln", "ckpt.pt")
    before = os.path.getmtime(ckpt)
    capsys.readouterr()
    ablate.main(argv)
    assert "ln: done, reused" in capsys.readouterr().out and os.path.getmtime(ckpt) == before
    ablate.main(argv + ["--dry_run"])
    assert "# ln: done, reused" in capsys.readouterr().out


def test_changed_set_is_refused_naming_the_key_and_the_dry_run_says_the_same(trained_ln, in_root, capsys):
    runs_dir, argv = trained_ln
    changed = argv + ["--set", "max_iters=3"]
    capsys.readouterr()
    ablate.main(changed + ["--dry_run"])
    assert "# ln: would refuse: max_iters 2 != 3" in capsys.readouterr().out
    before = os.path.getmtime(os.path.join(runs_dir, "ln", "ckpt.pt"))
    with pytest.raises(SystemExit, match="no run was started"):
        ablate.main(changed)
    err = capsys.readouterr().err
    assert "ln: max_iters 2 != 3" in err and "max_iters" in err.splitlines()[0]
    assert os.path.getmtime(os.path.join(runs_dir, "ln", "ckpt.pt")) == before


def test_changed_code_or_dataset_is_named_in_the_difference(trained_ln, in_root):
    import json
    runs_dir, argv = trained_ln
    run = next(r for r in studies.plan("norm", "cpu", None, ablate.parse_sets(argv[argv.index("--set"):][1::2]))
               if r.name == "ln")
    planned = records.planned_record(run)
    with open(os.path.join(runs_dir, "ln", "run.json")) as f:
        recorded = json.load(f)
    assert records.record_diff(recorded, planned) == ""
    other_code = {**recorded, "code": {**recorded["code"], "source_sha256": "0" * 64, "commit": "abcdef0123"}}
    code = records.record_diff(other_code, planned)  # ', dirty' follows the commit while training code is uncommitted
    assert code.startswith("code 00000000 (commit abcdef0") and f" != {planned['code']['source_sha256'][:8]} (" in code
    other_data = {**recorded, "dataset": {**recorded["dataset"], "shards": {"x_train_000001.bin": 1}}}
    assert "contents" in records.record_diff(other_data, planned)
    renamed = {**recorded, "dataset": {**recorded["dataset"], "name": "python_docs"}}
    assert records.record_diff(renamed, planned) == f"dataset python_docs != {planned['dataset']['name']}"
    assert records.record_diff(None, planned).startswith("no run.json")
    assert records.decide(os.path.join(runs_dir, "ln"), planned, "refuse").action == "reuse"


def test_on_mismatch_retrain_retrains_and_keeps_the_old_run(tiny_dataset, tmp_path, in_root, capsys):
    data_dir, name = tiny_dataset
    argv = ["norm", "--only=ln", f"--runs_dir={tmp_path}/runs", f"--results={tmp_path}/results"] + QUIET
    ablate.main(argv + _tiny(data_dir, name))
    retrain = argv + _tiny(data_dir, name, max_iters=3) + ["--on_mismatch=retrain"]
    capsys.readouterr()
    ablate.main(retrain + ["--dry_run"])
    assert "# ln: would retrain: max_iters 2 != 3" in capsys.readouterr().out
    ablate.main(retrain)
    _, evals = runlog.read_log(str(tmp_path / "runs" / "ln"))
    assert evals[-1]["iter"] == 3
    assert runlog.read_log(str(tmp_path / "runs" / "ln.previous"))[1][-1]["iter"] == 2  # the old run, kept aside


def test_set_writes_to_suffixed_folders_and_leaves_the_shipped_ones_untouched(tiny_dataset, tmp_path, monkeypatch,
                                                                             capsys):
    """In a copy of the repository layout (links), a study with --set writes results/<study>_<scale>_<suffix>."""
    data_dir, name = tiny_dataset
    for fn in os.listdir(ROOT):
        if fn.endswith(".py") or fn == "config":
            os.symlink(os.path.join(ROOT, fn), tmp_path / fn)
    shipped = tmp_path / "results" / "norm_cpu"
    shipped.mkdir(parents=True)
    (shipped / "results.md").write_text("shipped")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ablate.main(["norm", "--only=ln"] + QUIET + _tiny(data_dir, name))
    assert os.listdir(shipped) == ["results.md"] and (shipped / "results.md").read_text() == "shipped"
    assert not os.path.exists(tmp_path / "ablations" / "norm_cpu")
    [folder] = [d for d in os.listdir(tmp_path / "results") if d != "norm_cpu"]
    assert folder.startswith("norm_cpu_") and len(folder) > len("norm_cpu_")  # the suffix: folder_suffix's test
    assert os.path.exists(tmp_path / "ablations" / folder / "ln" / "run.json")
    md = (tmp_path / "results" / folder / "results.md").read_text()
    assert "Command: `python ablate.py norm --only=ln" in md and "--set max_iters=2" in md
    assert "Commit: " in md and "Machine: " in md and "thread(s) per run" in md
    assert f"Dataset: {name} " in md and "NOT the study's own dataset corpus_char" in md
    assert "a run reads up to 0.00 passes over its" in md  # 2 steps x 2 x 16 tokens of ~36k


def test_folder_suffix_from_overrides_and_fallback_dataset():
    assert records.folder_suffix({}, "corpus_char", "corpus_char") == ""
    assert records.folder_suffix({"max_iters": "5", "eval_iters": "1"}, "corpus_char", "corpus_char") == \
        "eval_iters1-max_iters5"
    assert records.folder_suffix({}, "corpus_char", "python_docs") == "python_docs"
    assert records.folder_suffix({"out": "a/b"}, "c4", "c4") == "outa_b"
    long = records.folder_suffix({f"k{i}": "v" * 10 for i in range(10)}, "c4", "c4")
    assert len(long) == 60 and long != records.folder_suffix({f"k{i}": "w" * 10 for i in range(10)}, "c4", "c4")


def test_a_failed_run_fails_the_study_naming_it_with_its_reason(tiny_dataset, tmp_path, in_root, capsys):
    data_dir, name = tiny_dataset
    argv = ["norm", "--only=ln,rms", f"--runs_dir={tmp_path}/runs", f"--results={tmp_path}/results"] + QUIET
    with pytest.raises(SystemExit) as e:
        ablate.main(argv + _tiny(data_dir, name, n_head=3))  # 32 is not divisible by 3: train.py exits 2
    assert "2 of 2 runs failed (ln, rms)" in str(e.value.code) and "no results were written" in str(e.value.code)
    err = capsys.readouterr().err
    assert "FAILED ln: error: n_embd=32 is not divisible by n_head=3" in err and "FAILED rms:" in err
    assert not os.path.exists(tmp_path / "results")


def test_130m_without_data_fails_before_any_run_with_the_prepare_command(tmp_path, in_root, capsys):
    with pytest.raises(SystemExit) as e:
        ablate.main(["depth", "--scale=130m", f"--set=data_dir={tmp_path}/data", f"--runs_dir={tmp_path}/runs",
                     f"--results={tmp_path}/results"])
    assert f"python prepare.py c4 --data_dir {tmp_path}/data" in str(e.value.code)
    assert "no run was started" in str(e.value.code)
    assert not os.path.exists(tmp_path / "runs") and not os.path.exists(tmp_path / "results")
    ablate.main(["depth", "--scale=130m", f"--set=data_dir={tmp_path}/data", f"--runs_dir={tmp_path}/runs",
                 "--dry_run"])
    assert "python prepare.py c4" in capsys.readouterr().out.splitlines()[0]


def test_a_dataset_prepare_py_refuses_is_refused_by_the_dry_run_too(tmp_path, in_root, capsys):
    """shakespeare_t5 looks like an auto-prepared name but prepare.py has no t5 form of that source: the dry run
    must say what the real run does (stop, with the prepare.py command), from prepare.auto_prepared's rule."""
    argv = ["norm", "--only=ln", f"--runs_dir={tmp_path}/runs", f"--results={tmp_path}/results", "--set",
            "dataset=shakespeare_t5", "--set", f"data_dir={tmp_path}/data"] + QUIET
    ablate.main(argv + ["--dry_run"])
    out = capsys.readouterr().out
    assert "error: dataset 'shakespeare_t5' is not prepared" in out and "prepares it first" not in out
    with pytest.raises(SystemExit) as e:
        ablate.main(argv)
    assert "dataset 'shakespeare_t5' is not prepared" in str(e.value.code) and "no run was started" in str(e.value.code)
    assert not os.path.exists(tmp_path / "runs")
    assert "prepares it first" in records.resolve_dataset({"dataset": "shakespeare_char",
                                                           "data_dir": str(tmp_path / "data")}, True)[1]


def test_missing_matplotlib_names_the_no_plots_flag(tmp_path, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "matplotlib" else real(n, *a))
    with pytest.raises(SystemExit, match="--no_plots"):
        ablate.main(["norm", f"--runs_dir={tmp_path}/runs"])
    assert not os.path.exists(tmp_path / "runs")
    # the flag it names exists (it is accepted and stops nothing on its own)
    ablate.main(["norm", "--no_plots", "--dry_run", f"--runs_dir={tmp_path}/runs"])


def test_jobs_2_gives_the_same_losses_as_jobs_1(tiny_dataset, tmp_path, in_root):
    data_dir, name = tiny_dataset
    losses = {}
    for jobs in (1, 2):
        runs_dir = tmp_path / f"runs{jobs}"
        ablate.main(["norm", "--only=ln,rms", f"--jobs={jobs}", f"--runs_dir={runs_dir}",
                     f"--results={tmp_path}/results{jobs}"] + QUIET + _tiny(data_dir, name))
        losses[jobs] = {run: runlog.read_log(str(runs_dir / run)) for run in ("ln", "rms")}
    for run in ("ln", "rms"):
        assert [r["loss"] for r in losses[1][run][0]] == [r["loss"] for r in losses[2][run][0]]
        assert [r["val_loss"] for r in losses[1][run][1]] == [r["val_loss"] for r in losses[2][run][1]]
    assert losses[1]["ln"][0] != losses[1]["rms"][0]  # two different runs, not one run twice


# findings: tests/test_findings.py


# gpu_short: the depth study for a short GPU loan

def test_gpu_short_plan_and_projection_fit_8_minutes(tiny_dataset, tmp_path, capsys):
    runs = studies.plan("depth", "gpu_short", None, {})
    assert len(runs) == 8 and {r.extra["config"] for r in runs} == {f"{v}_L24" for v in studies.DEEP_VARIANTS}
    assert all(r.args["device"] == "cuda" and r.args["n_layer"] == 24 for r in runs)
    ablate.main(["depth", "--scale=gpu_short", "--dry_run", f"--runs_dir={tmp_path}/runs"])
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("# projected:") and 2 < float(last.split()[2]) <= 8
    # on a small dataset the dry run warns that the runs would memorize it (7.9M tokens a run)
    data_dir, name = tiny_dataset
    ablate.main(["depth", "--scale=gpu_short", "--dry_run", f"--runs_dir={tmp_path}/runs", "--set", f"dataset={name}",
                 "--set", f"data_dir={data_dir}"])
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("# note: a run reads ") and f"passes over {name}'s" in first


def test_gpu_short_tiny_cpu_form_runs(tiny_dataset, tmp_path, in_root):
    data_dir, name = tiny_dataset
    summary = ablate.main(["depth", "--scale=gpu_short", "--depths=2", "--jobs=2", f"--runs_dir={tmp_path}/runs",
                           f"--results={tmp_path}/results"] + QUIET
                          + _tiny(data_dir, name, device="cpu", dtype="float32", analyze_interval=2, n_layer=None))
    assert len(summary["runs"]) == 8 and not any(m.get("failed") for m in summary["runs"].values())
    assert set(summary["by_config"]) == {f"{v}_L2" for v in studies.DEEP_VARIANTS}
    assert all(len(c["seeds"]) == 2 for c in summary["by_config"].values())


def test_a_failing_analysis_names_the_flag_that_skips_it(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("no val shard")
    monkeypatch.setattr(analysis, "analyze_run", broken)
    run = studies.plan("norm", "cpu", None, {})[0]
    with pytest.raises(SystemExit) as e:
        analysis.analyze_runs([run], "runs", {run.name: {"cmd": ""}}, studies.ANALYSIS["cpu"], "cpu")
    message = str(e.value.code)
    assert "analyzing ln failed (ValueError: no val shard)" in message and "--no_analysis" in message
    assert len(message.splitlines()) == 1
    # the flags it names exist (argparse would exit 2 on an unknown one)
    assert ablate.main(["norm", "--no_analysis", "--no_plots", "--dry_run", "--runs_dir=/nonexistent/runs"]) is None


