"""study/kurtosis_search.py (`python ablate.py kurtosis`): the grid changes one axis at a time, the report from
hand-made records (the answer, the smallest setting, each axis's direction, a diverged run), one tiny run trained
and reused, one-line errors for bad flags, the dry run, and the shipped results regenerated from their records."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import CORPUS_DIR, ROOT, gpt2_bpe_loads, needs_corpus
from study import kurtosis_report as kr
from study import kurtosis_search as ks
from study import verdict
from study.findings import findings_run

SHIPPED = os.path.join(ROOT, "results", "kurtosis_search")
CLAIMED = {"lr": {"learning_rate", "min_lr"}, "longer": {"max_iters"}, "wider": {"n_embd", "n_head"},
           "gpt2": {"dataset"}}


def test_each_axis_changes_only_what_it_claims():
    runs = ks.grid_runs()
    base = next(r for r in runs if r.extra["axis"] == "base")
    # the base is the findings' AdamW arm at its best lr, with the kurtosis logged along training
    assert base.args == {**findings_run("optim", "adamw", 2e-3, 1337, {}).args, "analyze_interval": 50,
                         "data_dir": "data"}
    assert (base.args["n_layer"], base.args["n_embd"], base.args["dataset"], base.args["max_iters"]) == \
        (6, 128, "corpus_char", 400)
    assert {r.extra["axis"] for r in runs} == {"base", *CLAIMED}
    for r in runs:
        changed = {k for k in set(r.args) | set(base.args) if r.args.get(k) != base.args.get(k) and k != "seed"}
        assert changed == (set() if r.extra["axis"] == "base" else CLAIMED[r.extra["axis"]]), (r.name, changed)
        assert r.args["analyze_interval"] % r.args["eval_interval"] == 0
        assert r.args["n_embd"] // r.args["n_head"] == 32  # the head size stays the base's
        if r.extra["axis"] == "lr":
            assert r.args["min_lr"] == pytest.approx(r.args["learning_rate"] / 10) and r.args["learning_rate"] > 2e-3
    assert sorted(r.args["learning_rate"] for r in runs if r.extra["axis"] == "lr" and r.args["seed"] == 1337) == \
        [8e-3, 1.6e-2, 3.2e-2]
    assert [r.name for r in ks.grid_runs((1, 2), repeat_seeds=())][::9] == ["adamw_base_s1", "adamw_base_s2"]
    # the repeat seeds train the base and the lr axis again, nothing else; a seed already in the grid is not repeated
    repeats = [r for r in runs if r.extra["seed"] != 1337]
    assert len(runs) == 9 + 4 * 9 + 4 and {r.extra["seed"] for r in repeats} == set(ks.REPEAT_SEEDS)
    assert {r.extra["axis"] for r in repeats} == {"base", "lr", "longer"}
    assert sorted(r.extra["seed"] for r in repeats if r.extra["axis"] == "longer") == list(ks.REPEAT_SEEDS[:4])
    assert {r.extra["setting"] for r in repeats if r.extra["axis"] == "longer"} == {"steps6400"}
    assert len(ks.grid_runs((1337,), repeat_seeds=(1337, 1338))) == 9 + 4 + 1
    for r in repeats:  # the same plan as the first seed's run of its setting, but for the seed
        twin = next(t for t in runs if t.extra["setting"] == r.extra["setting"] and t.extra["seed"] == 1337)
        assert {**r.args, "seed": 1337} == twin.args and r.name == twin.name.replace("s1337", f"s{r.extra['seed']}")


def test_osp_runs_are_the_adamw_command_with_the_osp_switches():
    """At OUTLIER_SETTING the OSP arm is AdamW's run of the same seed with --optimizer=muon --norm=ss
    --emb_proj=True (and its own muon_lr): nothing else differs; both get quant.json, the other grid runs do not."""
    runs, osp = ks.grid_runs(), ks.osp_runs()
    adamw = {r.extra["seed"]: r for r in runs if r.extra["setting"] == ks.OUTLIER_SETTING}
    assert sorted(adamw) == [1337, *ks.REPEAT_SEEDS] and len(osp) == 2 * len(adamw)
    for r in osp:
        twin = adamw[r.extra["seed"]]
        changed = {k for k in set(r.args) | set(twin.args) if r.args.get(k) != twin.args.get(k)}
        assert changed == {"optimizer", "norm", "emb_proj"} | ({"muon_lr"} if r.args["muon_lr"] != 0.02 else set())
        assert (r.args["optimizer"], r.args["norm"], r.args["emb_proj"]) == ("muon", "ss", True)
        assert r.args["muon_lr"] in (0.02, 0.16) and r.args["learning_rate"] == twin.args["learning_rate"] == 1.6e-2
    assert {r.name for r in runs + osp if ks.needs_quant(r)} == {r.name for r in osp} | {r.name for r in adamw.values()}
    assert len({r.name for r in runs + osp}) == len(runs + osp)


def test_a_reused_run_without_quant_and_checkpoint_is_refused(tmp_path):
    """An OSP-comparison run that finished but has neither quant.json nor ckpt.pt cannot be quantized: one line,
    nothing trained."""
    run = ks.osp_runs((1337,))[0]
    out_dir = tmp_path / "runs" / run.name
    os.makedirs(out_dir)
    (out_dir / "run.json").write_text(json.dumps(ks.records.planned_record(run)))
    (out_dir / "done").write_text(json.dumps({"wall_s": 1.0}))
    with pytest.raises(SystemExit, match=r"1 finished run\(s\) have no quant.json and no checkpoint"):
        ks.train([run], str(tmp_path / "runs"), jobs=1, threads=1, on_mismatch="refuse")
    (out_dir / "quant.json").write_text("{}")
    assert ks.train([run], str(tmp_path / "runs"), jobs=1, threads=1, on_mismatch="refuse") == 0


def write_records(out_dir, end, along, outcome="trained", wall=60.0, quant=None):
    """A hand-made run folder: done marker, log.jsonl (train rows, eval rows with kurtosis, the final row) and,
    for a trained run, analysis.json's summary (and quant.json when given)."""
    os.makedirs(out_dir)
    if quant is not None and outcome == "trained":
        with open(os.path.join(out_dir, "quant.json"), "w") as f:
            json.dump({"w4_increase": quant[0], "w8a8_increase": quant[1]}, f)
    with open(os.path.join(out_dir, "done"), "w") as f:
        json.dump({"cmd": "python train.py", "wall_s": wall, "machine": "test CPU", "jobs": 2, "outcome": outcome,
                   **({"reason": "non-finite loss"} if outcome != "trained" else {})}, f)
    rows = [{"iter": i, "loss": 3.0, "ms": 100.0 + i} for i in range(0, along[-1][0] + 1, 10)]
    rows += [{"iter": i, "val_loss": 2.5, "train_loss": 2.5, "kurtosis_mean": k} for i, k in along]
    if outcome == "trained":
        rows.append({"iter": along[-1][0], "final_val_loss": 2.25, "final_val_se": 0.01})
        with open(os.path.join(out_dir, "analysis.json"), "w") as f:
            json.dump({"summary": {"kurtosis_mean": end, "kurtosis_max": 2 * end, "kurtosis_raw_mean": end - 1}}, f)
    with open(os.path.join(out_dir, "log.jsonl"), "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))


def report(rows, tmp_path, plan, osp_rows=()):
    """kurtosis_report.write_report as the search calls it, into tmp_path/out."""
    return kr.write_report(rows, str(tmp_path / "out"), "python ablate.py kurtosis --jobs=2",
                           ks.about_lines(plan, str(tmp_path / "runs"), str(tmp_path / "no_data")), ks.SEEDS,
                           osp_rows, outlier_setting=ks.OUTLIER_SETTING,
                           projected_s=sum(ks.thread_seconds(r) for r in plan), calibration=ks.MS_CALIBRATION,
                           analyze_interval=ks.ANALYZE_INTERVAL)


def report_from(tmp_path, ends, repeat_seeds=(), diverged=("adamw_lr0.032_s1337",)):
    """ends: {setting: end kurtosis}, or {setting: {seed: end kurtosis}} for settings with several seeds."""
    runs, runs_dir = ks.grid_runs(repeat_seeds=repeat_seeds), tmp_path / "runs"
    for r in runs:
        steps = r.args["max_iters"]
        if r.name in diverged:  # diverged at step 150: no analysis, its trajectory until then
            write_records(runs_dir / r.name, None, [(0, 0.0), (50, 0.5), (100, 4.0)], outcome="diverged")
            continue
        k = ends[r.extra["setting"]]
        k = k[r.extra["seed"]] if isinstance(k, dict) else k
        write_records(runs_dir / r.name, k, [(i, k * i / steps) for i in range(0, steps + 1, 50)])
    rows = [ks.measure(r, str(runs_dir), str(tmp_path / "no_data")) for r in runs]
    summary = report(rows, tmp_path, runs)
    return summary, (tmp_path / "out" / "results.md").read_text()


def test_report_none_above_three(tmp_path):
    ends = {"base": 0.1, "lr0.008": 2.0, "lr0.016": 2.5, "steps1600": 0.08, "steps6400": 0.06, "embd256": 0.2,
            "embd512": 0.3, "gpt2": 1.0}
    summary, md = report_from(tmp_path, ends)
    assert summary["above"] == [] and summary["smallest"] is None and summary["runs_above"] == []
    assert ("**None in this grid exceeds 3** (a setting's mean end kurtosis over its seeds). The largest is lr "
            "1.6e-2's, end kurtosis 2.500 (seed 1337; 1 seed: the spread over seeds is not measured). Single runs "
            "above 3 at the end: 0 of 9.") in md
    assert "## Over seeds" not in md  # one seed per setting: no table of seeds
    assert ("Along training (quick_metrics, one val batch) the largest logged value is 4.000 (adamw_lr0.032_s1337 "
            "at step 100): above 3.") in md
    assert "- lr: base 0.100 -> lr 8e-3 2.000 -> lr 1.6e-2 2.500 -> lr 3.2e-2 - (diverged after step 100): rises" in md
    assert "- longer: base 0.100 -> 1600 steps 0.080 -> 6400 steps 0.060: falls at every step of the axis." in md
    assert "- wider: base 0.100 -> n_embd 256, n_head 8 (head size 32) 0.200 -> n_embd 512, n_head 16 (head size " \
           "32) 0.300: rises at every step of the axis." in md
    assert "step 400 0.020, step 800 0.040, step 1200 0.060, step 1600 0.080" in md
    # the grid table: sizes from the config (GPT-2's 50,257-token embedding and head), the diverged run
    grid = {line.split(" | ")[0][2:]: line for line in md.splitlines() if line.startswith("| adamw_")}
    assert "| GPT-2 BPE (50,257) | 14.16M | 409,600 |" in grid["adamw_gpt2_s1337"]
    assert "| 1600 | 0.002 | 128 x 4 | char (256) |" in grid["adamw_steps1600_s1337"]
    assert "| diverged after step 100 | - | - | - | - | 4.000 (step 100) | no | 60 |" in grid["adamw_lr0.032_s1337"]
    # the trajectory: every 100th step, a run that stopped or ended earlier left blank
    traj = [line for line in md.splitlines() if line.startswith("| 1600 |")]
    assert traj == ["| 1600 | - | - | - | - | 0.080 | 0.015 | - | - | - |"]
    assert "Training: 9 runs, 9.0 thread-minutes measured" in md and "no run.json" in md
    projected = sum(ks.thread_seconds(r) for r in ks.grid_runs(repeat_seeds=()))
    assert f"the dry run projects {projected / 60:.1f} thread-minutes" in md
    assert f"measured {100 * (9 * 60 / projected - 1):+.0f}%" in md
    saved = json.loads((tmp_path / "out" / "kurtosis.json").read_text())
    assert saved["runs"][0]["along"][:2] == [[0, 0.0], [50, 0.0125]] and saved["target"] == 3.0


def test_report_names_the_smallest_setting_above_three(tmp_path):
    ends = {"base": 0.1, "lr0.008": 2.0, "lr0.016": 3.5, "steps1600": 0.05, "steps6400": 0.07, "embd256": 0.2,
            "embd512": 0.3, "gpt2": 4.0}
    summary, md = report_from(tmp_path, ends)
    assert summary["above"] == ["lr0.016", "gpt2"]
    assert summary["smallest"] == "lr0.016"  # the base's FLOPs; GPT-2's head costs 6x
    assert "The smallest setting that exceeds it (fewest training FLOPs, " in md
    assert ("lr 1.6e-2, end kurtosis 3.500 (seed 1337; 1 seed: the spread over seeds is not measured), 0.500 above "
            "it on average. Single runs above 3 at the end: 2 of 9 (adamw_lr0.016_s1337, adamw_gpt2_s1337).") in md


@pytest.mark.parametrize("lr32, shown", [({1337: 3.4, 1338: 3.2, 1339: 3.3, 1340: 3.5, 1341: 3.3}, True),
                                         ({1337: 3.4, 1338: 2.2, 1339: 3.9, 1340: 3.1, 1341: 2.8}, False)])
def test_report_over_seeds(tmp_path, lr32, shown):
    """The base and the lr axis with 5 seeds: a setting counts by its mean; the crossing holds over seeds only when
    the mean's 95% t-interval lies above 3; a failed repeat run is counted, not averaged away."""
    repeat = (1338, 1339, 1340, 1341)
    seeds = (1337,) + repeat
    ends = {"base": dict.fromkeys(seeds, 0.1), "lr0.008": dict(zip(seeds, (1.0, 2.0, 3.0, 2.0, 1.0))),
            "lr0.016": dict.fromkeys(seeds, 2.5), "lr0.032": lr32, "steps1600": 0.08, "steps6400": 0.1, "embd256": 0.2, "embd512": 0.3,
            "gpt2": 1.0}
    summary, md = report_from(tmp_path, ends, repeat_seeds=repeat, diverged=("adamw_lr0.016_s1339",))
    assert summary["above"] == ["lr0.032"] and summary["smallest"] == "lr0.032"
    iv = verdict.mean_interval(list(lr32.values()))
    assert iv["n"] == 5 and (iv["lo"] > 3) == shown
    assert (f"lr 3.2e-2, end kurtosis {iv['mean']:.3f} [95% t-interval {iv['lo']:.3f}, {iv['hi']:.3f}] over 5 seeds, "
            f"above 3 in {sum(v > 3 for v in lr32.values())} of 5 runs, {iv['mean'] - 3:.3f} above it on average.") in md
    assert ("The interval lies above 3: the crossing holds over seeds." if shown else
            "The interval includes 3: the crossing is not shown over seeds.") in md
    assert "- lr: base 0.100 -> lr 8e-3 1.800 -> lr 1.6e-2 2.500 (1 of 5 runs failed) -> lr 3.2e-2 " in md
    rows = {line.split(" | ")[0][2:]: line for line in md.split("## Over seeds", 1)[1].split("##", 1)[0].splitlines()
            if line.startswith("| ")}
    assert set(rows) == {"setting", "base", "lr 8e-3", "lr 1.6e-2", "lr 3.2e-2", "6400 steps"}  # not one-seed ones
    assert "| 0.016 | 5 | 2.500, 2.500, -, 2.500, 2.500 | 2.500 [2.500, 2.500] | 0 of 5 | 1 |" in rows["lr 1.6e-2"]
    # the trajectory table: the first seed's runs only (all 29 are in kurtosis.json)
    header = next(line for line in md.split("## Kurtosis along training", 1)[1].splitlines() if line.startswith("| step"))
    assert header.count("_s1337") == 9 and "_s1338" not in header
    assert len(json.loads((tmp_path / "out" / "kurtosis.json").read_text())["runs"]) == 29


def test_report_osp_where_adamw_has_outliers(tmp_path):
    """The OSP section: each arm over the seeds, then OSP - AdamW paired by seed with its verdict; a diverged OSP run
    counts as failed and leaves its pair out."""
    repeat = (1338, 1339, 1340, 1341)
    runs, osp = ks.grid_runs(repeat_seeds=repeat), ks.osp_runs((1337,) + repeat)
    runs_dir = tmp_path / "runs"
    ends = {"base": 0.1, "lr0.008": 2.0, "lr0.016": 4.0, "lr0.032": 2.5, "steps1600": 0.08, "steps6400": 0.1,
            "embd256": 0.2, "embd512": 0.3, "gpt2": 1.0}
    for r in runs + osp:
        j, steps = r.extra["seed"] - 1337, r.args["max_iters"]
        if r.name == "osp_lr0.016_mlr0.16_s1338":
            write_records(runs_dir / r.name, None, [(0, 0.0), (50, 9.0)], outcome="diverged")
            continue
        if r.extra["axis"] == "osp":  # OSP: kurtosis far lower, 0.2 points more lost to W4, 0.1 less to W8A8
            k, quant = 0.5 + 0.01 * j, (0.012 + 0.001 * j, 0.001)
        else:
            k = ends[r.extra["setting"]] + (0.1 * j if r.extra["setting"] == "lr0.016" else 0)
            quant = (0.01 + 0.001 * j, 0.002) if ks.needs_quant(r) else None
        write_records(runs_dir / r.name, k, [(i, k * i / steps) for i in range(0, steps + 1, 50)], quant=quant)
    rows = [ks.measure(r, str(runs_dir), str(tmp_path / "no_data")) for r in runs]
    osp_rows = [ks.measure(r, str(runs_dir), str(tmp_path / "no_data")) for r in osp]
    report(rows, tmp_path, runs + osp, osp_rows)
    md = (tmp_path / "out" / "results.md").read_text()
    section = md.split("## OSP where AdamW has outliers", 1)[1].split("\n## ", 1)[0]
    assert "Training: 39 runs" in md and "1337, 1338, 1339, 1340, 1341" in section
    arms = {line.split(" | ")[0][2:]: line for line in section.splitlines() if line.startswith("| ")}
    assert "| 5 | 0 | 2.2500 | 4.200 [" in arms["AdamW, lr 1.6e-2"] and "| 5 of 5 | 1.200% | 0.200% |" in \
        arms["AdamW, lr 1.6e-2"]
    assert "| 5 | 1 | 2.2500 | 0.522 [" in arms["OSP: lr 1.6e-2, muon_lr 0.16 (both 8x their best)"]
    claims = [line for line in section.splitlines() if line.startswith("| OSP ")]
    assert claims[0].startswith("| OSP lowers the end kurtosis | OSP: lr 1.6e-2, muon_lr 0.02 (Muon's best) | -3.680 [")
    assert claims[0].endswith("(n=5) | **agrees** |")
    assert "| +0.200% [+0.200%, +0.200%] (n=5) | **disagrees** |" in claims[1]
    assert "| -0.100% [-0.100%, -0.100%] (n=5) | **agrees** |" in claims[2]
    assert all("(n=4)" in c for c in claims[3:]) and len(claims) == 6  # the diverged seed has no pair
    assert "The search's answer above is" not in section  # lr 1.6e-2 is the answer here
    saved = json.loads((tmp_path / "out" / "kurtosis.json").read_text())
    assert len(saved["osp_runs"]) == 10 and saved["osp_runs"][0]["w4_increase"] == pytest.approx(0.012)


def test_a_tiny_run_trains_is_measured_and_reused(tiny_dataset, tmp_path, monkeypatch):
    """One grid run shrunk to 4 steps on the tiny dataset: trained with its done marker, analyzed at its end,
    its kurtosis logged along training, then reused (nothing trained the second time)."""
    monkeypatch.chdir(ROOT)
    data_dir, name = tiny_dataset
    run = ks.grid_runs(data_dir=data_dir)[0]
    run.args.update(dataset=name, n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=4, max_iters=4,
                    warmup_iters=2, eval_interval=2, eval_iters=1, log_interval=1, analyze_interval=2,
                    final_eval_tokens=256)
    runs_dir = str(tmp_path / "runs")
    assert ks.train([run], runs_dir, jobs=1, threads=1, on_mismatch="refuse") == 1
    ks.analyze_ends([run], runs_dir, threads=1)
    row = ks.measure(run, runs_dir, data_dir)
    assert [i for i, _ in row["along"]] == [0, 2, 4] and row["kurtosis_end"] is not None
    assert row["jobs"] == 1 and row["wall_s"] > 0 and row["final_val_loss"] is not None
    assert ks.train([run], runs_dir, jobs=1, threads=1, on_mismatch="refuse") == 0
    run.args["learning_rate"] = 1e-3  # another plan for the same folder: refused, naming the key
    with pytest.raises(SystemExit, match="learning_rate 0.002 != 0.001"):
        ks.train([run], runs_dir, jobs=1, threads=1, on_mismatch="refuse")


@pytest.mark.parametrize("argv, says", [(["--jobs=0"], "bad value 0 for --jobs: must be >= 1"),
                                        (["--seeds=a,b"], "bad value 'a,b' for --seeds"),
                                        (["--repeat_seeds=-1"], "bad value '-1' for --repeat_seeds"),
                                        (["--bogus"], "unrecognized arguments: --bogus"),
                                        (["--on_mismatch=keep"], "invalid choice: 'keep'")])
def test_bad_flags_are_one_line(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        ks.main(argv)
    text = e.value.code if isinstance(e.value.code, str) else capsys.readouterr().err
    assert says in text and len(text.strip().splitlines()) == 1 and text.startswith("error:")


def test_ablate_dispatches_kurtosis():
    p = subprocess.run([sys.executable, "ablate.py", "kurtosis", "--jobs=0"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        "error: bad value 0 for --jobs: must be >= 1 (see python ablate.py kurtosis --help)"]


def test_dry_run_prints_the_commands_and_thread_minutes(tmp_path, capsys):
    ks.main(["--dry_run", f"--runs_dir={tmp_path / 'runs'}", f"--data_dir={tmp_path / 'data'}"])
    out = capsys.readouterr().out
    commands = [line for line in out.splitlines() if line.startswith("python train.py")]
    assert len(commands) == 9 + 4 * 9 + 4 + 2 * 10 and all("--analyze_interval=50" in c for c in commands)
    assert sum("--optimizer=adamw" in c for c in commands) == 49
    assert sum(all(f in c for f in ("--optimizer=muon", "--norm=ss", "--emb_proj=True")) for c in commands) == 20
    assert "--dataset=corpus_gpt2" in out and "prepare.py books --tokenizer=gpt2" in out
    projected = sum(ks.thread_seconds(r) for r in ks.grid_runs() + ks.osp_runs()) / 60
    assert f"# projected: {projected:.1f} thread-minutes for the runs to train" in out
    assert not (tmp_path / "runs").exists()  # a dry run trains and writes nothing


# ---- the shipped results regenerate from the run records that ship with them, training nothing

def tracked(folder):
    p = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True)
    return p.stdout.split() if p.returncode == 0 else None


@needs_corpus
def test_shipped_results_regenerate_from_their_records(tmp_path):
    """results/kurtosis_search/runs/ (run.json, log.jsonl, analysis.json, done; no checkpoint): `python ablate.py
    kurtosis` pointed at a copy reuses every run and writes the same results.md and kurtosis.json, word for word.
    The datasets are the books' corpus_char and corpus_gpt2, made here from NANONORM_CORPUS when missing (the
    GPT-2 one needs tiktoken's files: TIKTOKEN_CACHE_DIR)."""
    import prepare
    files = tracked("results/kurtosis_search/runs")
    if not files:
        pytest.skip("no shipped kurtosis_search records (or not a git checkout)")
    data = os.path.join(ROOT, "data")
    if not os.path.exists(os.path.join(data, ks.CHAR, "meta.json")):
        prepare.prepare("books", name=ks.CHAR, data_dir=data, inputs=[CORPUS_DIR])
    if not os.path.exists(os.path.join(data, ks.GPT2, "meta.json")):
        if not gpt2_bpe_loads():
            pytest.skip("corpus_gpt2 is not prepared and tiktoken cannot load its gpt2 files (TIKTOKEN_CACHE_DIR)")
        prepare.prepare("books", tokenizer="gpt2", name=ks.GPT2, data_dir=data, inputs=[CORPUS_DIR])
    assert sum(os.path.getsize(os.path.join(ROOT, f)) for f in files) < 5e6  # the evidence, not the weights
    for path in files:
        assert os.path.basename(path) in ks.RECORD_FILES, path
        os.makedirs(tmp_path / os.path.dirname(path), exist_ok=True)
        shutil.copy(os.path.join(ROOT, path), tmp_path / path)
    runs, out = tmp_path / "results" / "kurtosis_search" / "runs", tmp_path / "out"
    p = subprocess.run([sys.executable, "ablate.py", "kurtosis", f"--runs_dir={runs}", f"--results_dir={out}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    n = len(os.listdir(runs))
    assert f"kurtosis: reused {n} of {n} runs, trained 0" in p.stdout, p.stdout[-2000:]
    for name in ("results.md", "kurtosis.json"):
        with open(os.path.join(SHIPPED, name)) as f:
            assert (out / name).read_text() == f.read(), name
