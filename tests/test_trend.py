"""study/trend.py (`python ablate.py trend`): a WSD branch of the stable run is the run of that length, the crossover fit, the branch guard;
study/trend_report.py: each seed's crossover and their interval (or "undetermined"), gaps in %, the header that
names what trained the runs, the WSD-vs-cosine check; the cosine schedule and per-variant lrs."""
import json
import math
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import CORPUS_DIR, needs_corpus
from study import launch, provenance, trend, trend_report, verdict

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
    # each folder's `done` marker lists the segments trained into it (the branch: its decay only), with the
    # machine and the commit; results.md's wall time is their sum
    stable, decay = (launch.read_done(str(tmp_path / "runs" / "pre_s7" / d)) for d in ("stable", "L10"))
    assert [s["to"] for s in stable["segments"]] == [8] and [s["to"] for s in decay["segments"]] == [10]
    assert decay["machine"] == stable["machine"] == provenance.machine(1, "cpu") and decay["segments"][0]["jobs"] == 1
    rec = trend_report.training_record([str(tmp_path / "runs" / "pre_s7" / d) for d in ("stable", "L10")])
    assert rec["segments"] == 2 and rec["unrecorded"] == 0 and rec["jobs"] == 1
    assert rec["wall_s"] == pytest.approx(stable["wall_s"] + decay["wall_s"]) and len(rec["commits"]) == 1
    # a stable run continued from steps trained before markers were kept: those steps count as unrecorded
    stable_dir = str(tmp_path / "runs" / "pre_s7" / "stable")
    os.remove(os.path.join(stable_dir, "done"))
    trend.mark_segment(stable_dir, ["python", "train.py"], 12, 3.0, 1, base, 2, before=8)
    assert [(s["to"], s["wall_s"]) for s in launch.read_done(stable_dir)["segments"]] == [(8, None), (12, 3.0)]
    assert trend_report.training_record([stable_dir])["unrecorded"] == 1


def test_branch_refused_when_the_stable_run_moved_past_it(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    base = tiny_base(tiny_dataset)
    runs = str(tmp_path / "runs")
    assert trend.run_chain("pre", 7, [10], runs, base, threads=1) is None
    for name in ("ckpt.pt", "done"):  # the branch is to be redone ...
        os.remove(os.path.join(runs, "pre_s7", "L10", name))
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
    """`python ablate.py trend` reaches the trend's own flags (its --dry_run prints the commands); by default it
    plans the shipped trend: separate cosine runs, each variant at the findings' best lr, records under
    results/trend_cpu_deep_cosine/runs."""
    out = subprocess.run([sys.executable, "ablate.py", "trend", "--dry_run", "--lengths=400", "--seeds=1"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "4 separate cosine runs (4 x 400 steps)" in out.stdout and "--max_iters=400" in out.stdout
    assert "pre 0.004, pre_lns 0.008, mix 0.004, post 0.002" in out.stdout and "projected: " in out.stdout
    assert "--out_dir=results/trend_cpu_deep_cosine/runs/cosine/pre_lr0.004_s1_L400" in out.stdout
    out = subprocess.run([sys.executable, "ablate.py", "trend", "--dry_run", "--lengths=400", "--seeds=1",
                          "--schedule=wsd", "--lr=2e-3"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "4 chains x 400 steps" in out.stdout, out.stderr


def test_a_folder_trained_otherwise_is_refused(tiny_dataset, tmp_path, monkeypatch):
    """Never continue or reuse a run trained with other settings: the chain stops, naming the key."""
    monkeypatch.chdir(ROOT)
    base = tiny_base(tiny_dataset)
    runs = str(tmp_path / "runs")
    assert trend.run_chain("pre", 7, [10], runs, base, threads=1) is None
    assert trend.run_chain("pre", 7, [10], runs, base, threads=1) is None  # the same plan: reused
    failure = trend.run_chain("pre", 7, [10], runs, dict(base, warmup_iters=3), threads=1)
    assert failure and "warmup_iters 2 != 3" in failure
    # another lr (--lr) is not a mismatch but another chain, in its own folder beside the shared-lr one
    assert trend.chain_name("pre", 7, dict(base, learning_rate=0.001)) == "pre_lr0.001_s7"


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


# ---- study/trend_report.py: each seed's crossover, its interval over seeds, "undetermined"

TOKENS = [1e5, 2e5, 4e5]


def test_crossover_per_seed_and_interval():
    """Each seed fitted alone; the interval is the 95% t-interval of the seeds' log10 crossovers."""
    fit = trend_report.seed_crossovers(TOKENS, [[0.3, 0.2, 0.1], [0.2, 0.1, 0.0], [0.4, 0.3, 0.2]])
    crosses = [f["crossover_tokens"] for f in fit["per_seed"]]
    assert crosses == [pytest.approx(8e5), pytest.approx(4e5), pytest.approx(1.6e6)]  # the 2nd: at the last length
    assert [f["slope_per_doubling"] for f in fit["per_seed"]] == [pytest.approx(-0.1)] * 3
    logs = [math.log10(c) for c in crosses]
    mean, sd = sum(logs) / 3, math.sqrt(sum((x - sum(logs) / 3) ** 2 for x in logs) / 2)
    half = verdict.t975(2) * sd / math.sqrt(3)
    assert fit["status"] == "determined" and fit["n"] == 3
    assert fit["interval"] == [pytest.approx(10 ** (mean - half)), pytest.approx(10 ** (mean + half))]
    assert fit["range"] == [pytest.approx(4e5), pytest.approx(1.6e6)]
    # a line that crossed within the lengths measured crosses too (from above, between 1e5 and 4e5 tokens)
    assert trend.fit_crossover(TOKENS, [0.1, 0.0, -0.1])[2] == pytest.approx(2e5)


def test_crossover_undetermined():
    """Slopes of opposite sign, a seed whose line moves away from 0, or one seed: no interval is given."""
    disagree = trend_report.seed_crossovers(TOKENS, [[0.3, 0.2, 0.1], [0.1, 0.2, 0.3]])
    assert disagree["status"] == "undetermined" and "disagree in sign" in disagree["reason"]
    assert disagree["interval"] is None and disagree["per_seed"][0]["crossover_tokens"] == pytest.approx(8e5)
    never = trend_report.seed_crossovers(TOKENS, [[-0.3, -0.2, -0.1], [0.1, 0.2, 0.3]])  # both slopes +0.1
    assert never["status"] == "undetermined" and never["reason"].startswith("1 of 2 seeds never cross")
    assert never["per_seed"][1]["crossover_tokens"] is None
    one = trend_report.seed_crossovers(TOKENS, [[0.3, 0.2, 0.1]])
    assert one["status"] == "undetermined" and one["interval"] is None


def made_up(losses):
    """{variant: {length: {metric: [per seed]}}} from {variant: [[loss per seed] per length]}."""
    return {v: {L: {"val_loss": per_seed, "removable_all": [0.5] * len(per_seed),
                    "removable_deep_half": [0.5] * len(per_seed), "stream_growth": [2.0] * len(per_seed)}
                for L, per_seed in zip((100, 200, 400), rows)} for v, rows in losses.items()}


MEASURED = made_up({"pre": [[2.0, 2.5], [1.8, 2.0], [1.6, 1.6]],
                    "post": [[1.9, 2.4], [1.75, 1.95], [1.6, 1.58]],      # closing from below: crosses
                    "mix": [[2.1, 2.5], [1.85, 2.05], [1.6, 1.7]]})       # slopes disagree: undetermined


def test_gaps_in_percent_of_pre_ln():
    gaps, pct, fits = trend_report.summarize(MEASURED, [100, 200, 400], [1, 2], tokens_per_step=1000)
    assert gaps["post"][100] == [pytest.approx(-0.1), pytest.approx(-0.1)]
    assert pct["post"][100] == [pytest.approx(-5.0), pytest.approx(-4.0)]  # -0.1 / 2.0, -0.1 / 2.5
    assert pct["mix"][400] == [0.0, pytest.approx(100 * 0.1 / 1.6)]
    assert trend.fit_crossover(TOKENS, [0.1, 0.1 - 1e-15, 0.1])[2] is None  # flat: 0 only beyond 2^100 tokens
    assert fits["post"]["status"] == "determined" and fits["mix"]["status"] == "undetermined"


def test_header_names_what_trained_the_runs(tmp_path, tiny_dataset):
    """lr (per variant with --lr), schedule with decay_frac, warm-up, min_lr, the dataset's hash, the commits of
    run.json and the segments, the wall time (thread-time when runs trained at once), the machines."""
    data_dir, name = tiny_dataset
    a, b, c = (tmp_path / x for x in ("a", "b", "c"))
    for d, commit, done in ((a, "a" * 40, {"wall_s": 10, "machine": "box 1",
                                           "segments": [{"wall_s": 10, "machine": "box 1", "jobs": 2,
                                                         "commit": "c" * 40}]}),
                            (b, "b" * 40, {"cmd": "python train.py", "wall_s": 5.0, "machine": "box 2"}),
                            (c, "b" * 40, None)):
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"code": {"commit": commit, "dirty": False}}))
        if done:
            (d / "done").write_text(json.dumps(done))
    lrs = trend.parse_lrs("pre_lns:1e-3")
    plan = {v: trend.segment_run(v, 1, trend.variant_base(trend.BASE, v, lrs), 400, trend.DECAY_FRAC).args
            for v in trend.VARIANTS}
    rec = trend_report.training_record([str(a), str(b), str(c)])
    text = "\n".join(trend_report.header_lines("python ablate.py trend", plan, rec,
                                                provenance.dataset_line(name, data_dir, "corpus_char")))
    assert "Runs trained at commit(s): aaaaaaa, bbbbbbb, ccccccc" in text
    assert "15 s (0.00 h) summed over 2 training segments (1 more have no wall time recorded); thread-time" in text
    assert "Trained on: box 1; box 2; not recorded" in text
    assert "pre 0.002 (min_lr 0.0002); pre_lns 0.001 (min_lr 0.0001); mix 0.002" in text
    assert "decay_frac = 0.2" in text and "warm-up over 80 steps" in text
    assert f"Dataset: {name}" in text and "meta.json sha256 " in text and "sha256 ?" not in text
    cosine = {v: trend.cosine_run(v, 1, trend.BASE, 400).args for v in trend.VARIANTS}
    text = "\n".join(trend_report.header_lines("c", cosine, rec, "Dataset: x"))
    assert "Schedule: cosine to min_lr, one separate run" in text and "0.002 for every variant, min_lr 0.0002" in text
    # the dry run's projection beside the measured time: 15 s measured against 12 s projected is +25%
    text = "\n".join(trend_report.header_lines("c", cosine, rec, "Dataset: x", (12.0, "calibrated somewhere")))
    assert "the dry run projected 0.00 h (calibrated somewhere): measured +25%" in text


def test_projection_counts_steps_evaluations_and_analyses():
    """A run's projected thread-seconds: (steps + (evaluations x 2 x eval_iters + final eval batches) / 3) x the
    24 x 64 calibration, + its analyses (n_layer + 2 forward passes / 3 each) + the start-up overhead."""
    from study import findings
    run = trend.cosine_run("pre", 1, dict(trend.BASE, final_eval_tokens=768 * 10), 400)
    a = run.args
    ms = findings.FINDINGS_MS_PER_ITER["depth"]
    evals, analyses = 400 // a["eval_interval"] + 1, 400 // a["analyze_interval"] + 1
    steps = 400 + (evals * 2 * a["eval_iters"] + 10) / 3 + analyses * (a["n_layer"] + 2) / 3
    assert trend.projected_thread_seconds(run) == pytest.approx(ms * steps / 1000 + findings.FINDINGS_RUN_OVERHEAD_S)


def test_report_and_the_wsd_check(tmp_path):
    """results.md gives each seed's crossover, the interval or "undetermined", the % gaps; the WSD check says
    whether the ranking differs from the cosine runs' (then the trend trains cosine)."""
    wsd = {"pre": [1.6, 1.6], "post": [1.6, 1.58], "mix": [1.7, 1.7]}
    lines, same = trend_report.wsd_check_lines(400, wsd, {"pre": [1.55, 1.56], "post": [1.57, 1.59],
                                                          "mix": [1.65, 1.66]})
    assert not same and "it differs" in "\n".join(lines) and "--schedule=cosine" in "\n".join(lines)
    assert "| pre | 1.6000 (0.0000) | 1.5550 (0.0100) | -0.0450 [" in "\n".join(lines)
    assert trend_report.wsd_check_lines(400, wsd, wsd)[1]
    trend_report.write_report(MEASURED, [100, 200, 400], [1, 2], 1000, str(tmp_path), ["Command: `x`"], "t",
                              check=(400, wsd, wsd))
    md = (tmp_path / "results.md").read_text()
    # -5.0 and -4.0 %: mean -4.5, half-width t(0.975, 1) x 0.7071 / sqrt(2) = 6.353
    assert "## gap in % of Pre-LN's val loss" in md and "| post | -4.50 [-10.85, +1.85] |" in md
    assert "| mix | " in md and "undetermined: the seeds' fitted slopes disagree in sign" in md
    assert "95% t-interval" in md and "the same, the WSD branches stand in" in md
    saved = json.loads((tmp_path / "trend.json").read_text())
    assert saved["fits"]["post"]["status"] == "determined" and saved["wsd_check"]["same_ranking"]


def test_noise_section_gives_the_paired_evaluation_error_of_each_gap():
    """Two seeds, four held-out sequences: d_i = post's mean over seeds - Pre-LN's = -0.09, -0.09, -0.04, -0.14,
    sd 0.0408, paired se 0.0408 / sqrt(4) = 0.0204; the gap (-0.1 on both seeds, so its interval excludes 0) is
    4.9 times that, short of 5."""
    measured = {"pre": {100: {"val_loss": [2.0, 2.0], "val_se": [0.03, 0.02]}},
                "post": {100: {"val_loss": [1.9, 1.9], "val_se": [0.02, 0.02]}}}
    held = {"pre": {100: [{"loss": [2.1, 1.9, 2.0, 2.0]}] * 2},
            "post": {100: [{"loss": [2.0, 1.8, 1.95, 1.85]}, {"loss": [2.02, 1.82, 1.97, 1.87]}]}}
    lines, paired = trend_report.noise_lines(measured, held, [100], 4096)
    text = "\n".join(lines)
    assert paired["post"][100] == pytest.approx(math.sqrt((0.05 ** 2 * 2) / 3) / 2)
    assert "| post | 0.0204 (4.9x) |" in text and "largest standard error of one run's loss is 0.0300" in text
    assert "smallest is 4.9 times its paired evaluation error (post, 100 steps)" in text and "weaker" in text
    no_eval = "\n".join(trend_report.noise_lines(measured, held, [100], 0)[0])
    assert "not measured" in no_eval


# ---- the cosine schedule and per-variant learning rates

def test_lr_per_variant():
    assert trend.parse_lrs("") == {} and trend.parse_lrs("1e-3") == {v: 1e-3 for v in trend.VARIANTS}
    assert trend.parse_lrs("pre:2e-3, pre_lns:1e-3") == {"pre": 2e-3, "pre_lns": 1e-3}
    for bad in ("pres:1e-3", "pre:x", "pre:0"):
        with pytest.raises(SystemExit, match="bad value .* for --lr"):
            trend.parse_lrs(bad)
    base = trend.variant_base(trend.BASE, "pre_lns", {"pre_lns": 1e-3})
    assert (base["learning_rate"], base["min_lr"]) == (1e-3, 1e-4) and trend.variant_base(trend.BASE, "pre", {}) == \
        trend.BASE


def test_cosine_commands():
    """--schedule=cosine: a separate run from scratch per length, lr_schedule cosine, under <runs_dir>/cosine,
    at the variant's own lr; --check_wsd must be one of the lengths."""
    out = subprocess.run([sys.executable, "ablate.py", "trend", "--dry_run", "--schedule=cosine", "--lengths=40,80",
                          "--seeds=1", "--lr=pre:1e-3", "--runs_dir=R"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cmds = [line.split() for line in out.stdout.splitlines() if line.strip().startswith("python train.py")]
    assert "8 separate cosine runs (4 x 120 steps)" in out.stdout and len(cmds) == 2
    for cmd, length in zip(cmds, (40, 80)):
        assert {"--lr_schedule=cosine", f"--max_iters={length}", "--learning_rate=0.001", "--min_lr=0.0001",
                f"--out_dir=R/cosine/pre_lr0.001_s1_L{length}"} <= set(cmd)
        assert not any(x.startswith(("--init_from", "--decay_frac")) for x in cmd)
    out = subprocess.run([sys.executable, "ablate.py", "trend", "--dry_run", "--lengths=40", "--check_wsd=80"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and "bad value 80 for --check_wsd" in out.stderr


def test_cosine_run_trains_and_is_reused(tiny_dataset, tmp_path, monkeypatch):
    """A tiny cosine run through train_cosine (records.decide + launch.execute): trained once with its `done`
    marker (wall time, machine, jobs), then reused."""
    monkeypatch.chdir(ROOT)
    run = trend.cosine_run("pre", 7, tiny_base(tiny_dataset), 6)
    assert trend.train_cosine([run], str(tmp_path), jobs=1, threads=1) == []
    out_dir = os.path.join(tmp_path, "cosine", "pre_s7_L6")
    done = launch.read_done(out_dir)
    assert done["jobs"] == 1 and done["machine"] and done["wall_s"] > 0 and "--lr_schedule=cosine" in done["cmd"]
    mtime = os.path.getmtime(os.path.join(out_dir, "ckpt.pt"))
    assert trend.train_cosine([run], str(tmp_path), jobs=1, threads=1) == []
    assert os.path.getmtime(os.path.join(out_dir, "ckpt.pt")) == mtime  # reused, not trained again


# ---- the shipped trend tables regenerate from the run records that ship with them, training nothing

SHIPPED_TRENDS = sorted(d for d in os.listdir(os.path.join(ROOT, "results")) if d.startswith("trend_")
                        and os.path.isdir(os.path.join(ROOT, "results", d, "runs"))
                        and os.path.exists(os.path.join(ROOT, "results", d, "results.md")))


def tracked_files(folder):
    """The files git tracks under folder (what a fresh clone has), or None outside a git checkout."""
    p = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True)
    return p.stdout.split() if p.returncode == 0 else None


@needs_corpus
@pytest.mark.parametrize("name", SHIPPED_TRENDS)
def test_shipped_trend_regenerates_from_its_records(name, tmp_path):
    """results/trend_*/ with its runs/ (run.json, log.jsonl, done, analysis.json, heldout.json; no checkpoint): the
    command its results.md names, run word for word in a copy of what git tracks (a fresh clone), reuses every run
    and writes the same results.md, word for word."""
    import prepare
    if not os.path.exists(os.path.join(ROOT, "data", "corpus_char", "meta.json")):
        prepare.prepare("books", name="corpus_char", data_dir=os.path.join(ROOT, "data"), inputs=[CORPUS_DIR])
    files = tracked_files(os.path.join("results", name, "runs"))
    if files is None:
        pytest.skip("not a git checkout: what ships is what git tracks")
    assert sum(os.path.getsize(os.path.join(ROOT, f)) for f in files) < 5e6  # the evidence, not the weights
    clone = tmp_path / "clone"
    for path in files:
        assert os.path.basename(path) in ("run.json", "log.jsonl", "done", "analysis.json", "heldout.json"), path
        os.makedirs(clone / os.path.dirname(path), exist_ok=True)
        shutil.copy(os.path.join(ROOT, path), clone / path)
    os.symlink(os.path.join(ROOT, "data"), clone / "data")  # the dataset a user's first run prepares
    with open(os.path.join(ROOT, "results", name, "results.md")) as f:
        shipped = f.read()
    command = re.search(r"^Command: `python ablate.py (trend[^`]*)`", shipped, re.M).group(1).split()
    p = subprocess.run([sys.executable, os.path.join(ROOT, "ablate.py"), *command], cwd=clone, capture_output=True,
                       text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    n = int(re.search(r"trend: reused (\d+) of \1 runs, trained 0", p.stdout).group(1))
    assert n >= 1
    assert (clone / "results" / name / "results.md").read_text() == shipped
