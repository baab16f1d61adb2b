"""
The OSP row made testable, or shown not to be at CPU scale: the smallest CPU setting where an AdamW model's mean
excess kurtosis exceeds 3 (issue 24, item 7).

    python ablate.py kurtosis --jobs=2     # trains what is missing, reuses what matches, writes the report
    python ablate.py kurtosis --dry_run    # the train.py commands, the decision per run, the thread-minutes
    python ablate.py kurtosis --calibrate  # the CPU ms per training step of each model shape (the projection's)

The grid starts from the findings' AdamW arm at its best lr (study/findings.py FINDINGS_OPTIM: 6 x 128 LLaMA-style,
char-level corpus_char, 400 steps, lr 2e-3, min_lr lr / 10) and changes one axis at a time, the others at the base:

    lr       8e-3, 1.6e-2, 3.2e-2  (the findings' sweep reached 8e-3; its kurtosis rose with lr)
    longer   1600, 6400 steps      (the cosine schedule stretched to the new length; warm-up 30 steps as the base)
    wider    n_embd 256, 512       (n_head 8, 16: the head size stays 32)
    gpt2     the GPT-2 tokenizer   (data/corpus_gpt2: the same books, 50,257 tokens; the head is 6x the char
                                    model's matmuls, so its run has the base's 400 steps, no more)

The base and the lr axis (400 steps of the 6 x 128 model, under a minute each) are trained again with the
REPEAT_SEEDS, 10 seeds in all, so that the crossing at the lr axis's end is an interval over seeds, not one run; the
6400-step run (11 minutes) with the first 4 of them, 5 seeds; the other settings have the first seed only. A setting
counts as above KURTOSIS_TARGET when the mean of its end kurtosis over its seeds is; it is shown above when the 95%
t-interval of that mean (study.verdict.mean_interval) lies above it.

Every run is findings.findings_run("optim", "adamw", lr, seed, axis) with analyze_interval=50: train.py adds
analyze.quick_metrics' kurtosis_mean (OSP's relu'd per-state excess kurtosis, averaged over the embedding output and
every block output, on one val batch) to every 50th eval row of log.jsonl, so the kurtosis is logged along
training. Each run's end is then measured as the findings' table measures it (analysis.json by
study.analysis.analyze_run, 2 val batches of 8, as findings_study.analyze_trained_runs), so that its end value
compares with the findings' kurtosis grid. The question asked of each setting: is its end value (the mean over its
seeds) above KURTOSIS_TARGET (3)? The smallest setting that is: the one with the fewest training FLOPs (tokens x
model.flops_per_token), ties in grid order.

Then OSP where AdamW has outliers: at OUTLIER_SETTING (lr 1.6e-2, where the search found AdamW's mean end kurtosis
above 3 over 10 seeds), the OSP arm (Muon + SSNorm + EmbProj: the same train.py command with --optimizer=muon
--norm=ss --emb_proj=True) is trained with the same seeds, at muon_lr 0.02 (Muon's best in the findings' sweep) and
at 0.16 (8x, as the AdamW lr is 8x its best). Each OSP run and each AdamW run of that setting gets quant.json
(findings_study.write_quant: the val loss increase under 4-bit weights and under W8A8), and the section compares
OSP with AdamW by paired differences over the seeds (verdict.paired_verdict): end kurtosis, W4 and W8A8 increase.

The report (results.md, kurtosis.json) is study/kurtosis_report.py's, from the rows measure() reads out of each run
folder. Runs go to results/kurtosis_search/runs/<run>/; records.decide reuses a finished run whose run.json matches the
plan, with or without its checkpoint, so that the shipped records (run.json, log.jsonl, analysis.json, quant.json, done)
regenerate results.md and kurtosis.json word for word with nothing trained. A run that diverges (a non-finite
loss) is kept as such (findings_study.record_divergences), not retrained.
"""

import argparse
import os
import sys
import time

from study import heldout, kurtosis_report, launch, provenance, records, runlog, studies
from study.findings import OSP_ARM, _json, findings_run
from study.findings_table import KURTOSIS_TARGET

SEEDS = (1337,)            # every setting (the findings' first seed); --seeds changes them
REPEAT_SEEDS = tuple(range(1338, 1347))  # the base and the lr axis again: 10 seeds where the crossing is
REPEATED_AXES = ("base", "lr")
LONG_SETTING, LONG_REPEATS = "steps6400", 4  # the longest run again with the first 4 repeat seeds (11 minutes each)
BASE_LR = 2e-3             # the AdamW arm's best lr in the findings (FINDINGS_OPTIM's)
ANALYZE_INTERVAL = 50      # quick_metrics' kurtosis in every eval row (train.py's eval_interval is 50)
CHAR, GPT2 = "corpus_char", "corpus_gpt2"
TOKENIZERS = {CHAR: "char", GPT2: "GPT-2 BPE"}
GPT2_PREPARE = "TIKTOKEN_CACHE_DIR=... python prepare.py books --tokenizer=gpt2 --name corpus_gpt2"
# (name, axis, what differs from the base, lr, train.py overrides): the base first, then one axis at a time
GRID = (("base", "base", "none (6 x 128, char, lr 2e-3, 400 steps)", BASE_LR, {}),
        ("lr0.008", "lr", "lr 8e-3", 8e-3, {}),
        ("lr0.016", "lr", "lr 1.6e-2", 1.6e-2, {}),
        ("lr0.032", "lr", "lr 3.2e-2", 3.2e-2, {}),
        ("steps1600", "longer", "1600 steps", BASE_LR, {"max_iters": 1600}),
        ("steps6400", "longer", "6400 steps", BASE_LR, {"max_iters": 6400}),
        ("embd256", "wider", "n_embd 256, n_head 8 (head size 32)", BASE_LR, {"n_embd": 256, "n_head": 8}),
        ("embd512", "wider", "n_embd 512, n_head 16 (head size 32)", BASE_LR, {"n_embd": 512, "n_head": 16}),
        ("gpt2", "gpt2", "GPT-2 tokenizer (corpus_gpt2)", BASE_LR, {"dataset": GPT2}))
AXES = ("lr", "longer", "wider", "gpt2")
OUTLIER_SETTING = "lr0.016"  # the search's answer over 10 seeds (results.md); OSP is tested there
# (name, what, lr of the AdamW-trained tensors (embeddings, head, gains), Muon's lr of the matrices)
OSP_GRID = (("osp_lr0.016", "OSP: lr 1.6e-2, muon_lr 0.02 (Muon's best)", 1.6e-2, 0.02),
            ("osp_lr0.016_mlr0.16", "OSP: lr 1.6e-2, muon_lr 0.16 (both 8x their best)", 1.6e-2, 0.16))
RECORD_FILES = ("run.json", "log.jsonl", "analysis.json", "quant.json", "done")  # what ships; never ckpt.pt
ANALYSIS = {"batches": 2, "batch_size": 8}  # as findings_study.analyze_trained_runs
# Projected ms per training step on one thread, by (n_embd, dataset): the process CPU time of one AdamW step
# (forward, backward, clipping, step), median of 6 after 2 warm-up steps, measured by
# `python ablate.py kurtosis --calibrate` on 2026-12-06 on a 2-core Xeon (AVX-512, AMX), float32, one thread,
# while another study held both cores (CPU time, not wall: a run's wall ms/step on a shared CPU is larger).
# The rest of a run (evaluations, quick_metrics, the final held-out evaluation) is counted in step units.
# The OSP arm's Muon step: 97-110 ms beside AdamW's 83-85 on the same idle CPU (x1.18), scaled to the busy 124.
# n_embd 512: 881 ms on an idle CPU where the base took 103 (x8.55), scaled to the busy 124.
MS_PER_STEP = {(128, CHAR, "adamw"): 124, (256, CHAR, "adamw"): 350, (512, CHAR, "adamw"): 1060,
               (128, GPT2, "adamw"): 1127, (128, CHAR, "muon"): 146}
RUN_OVERHEAD_S = 3  # python/torch start-up and checkpoints: a 1-step run with 1-batch evaluations took 2.0 s idle
MS_CALIBRATION = ("CPU ms/step 6 x 128 char 124 (OSP's Muon 146), 6 x 256 char 350, 6 x 512 char 1060, 6 x 128 GPT-2 "
                  "1127, measured by --calibrate on one thread of a 2-core Xeon")


def grid_runs(seeds=SEEDS, data_dir="data", repeat_seeds=REPEAT_SEEDS):
    """The grid: one findings AdamW run per setting and seed, named adamw_<setting>_s<seed>; the repeat seeds train
    the base and the lr axis only (REPEATED_AXES), the first LONG_REPEATS of them also LONG_SETTING."""
    runs = []
    plan = [(seed, GRID) for seed in seeds]
    plan += [(seed, [g for g in GRID if g[1] in REPEATED_AXES or (g[0] == LONG_SETTING and i < LONG_REPEATS)])
             for i, seed in enumerate(repeat_seeds) if seed not in seeds]
    for seed, grid in plan:
        for name, axis, what, lr, overrides in grid:
            r = findings_run("optim", "adamw", lr, seed, {**overrides, "analyze_interval": ANALYZE_INTERVAL,
                                                          "data_dir": data_dir})
            runs.append(studies.Run(f"adamw_{name}_s{seed}", r.args, group=axis, label=what,
                                    extra={"setting": name, "axis": axis, "what": what, "lr": lr, "seed": seed}))
    return runs


def osp_runs(seeds=(SEEDS[0],) + REPEAT_SEEDS, data_dir="data"):
    """The OSP arm at OUTLIER_SETTING's lr, one run per OSP_GRID entry and seed: the findings' OSP arm
    (findings.OSP_ARM) with the AdamW lr of that setting and its own muon_lr, named <name>_s<seed>."""
    runs = []
    for seed in seeds:
        for name, what, lr, muon_lr in OSP_GRID:
            r = findings_run(*OSP_ARM, muon_lr, seed, {"learning_rate": lr, "min_lr": lr / 10,
                                                       "analyze_interval": ANALYZE_INTERVAL, "data_dir": data_dir})
            runs.append(studies.Run(f"{name}_s{seed}", r.args, group="osp", label=what,
                                    extra={"setting": name, "axis": "osp", "what": what, "lr": lr,
                                           "muon_lr": muon_lr, "seed": seed}))
    return runs


def needs_quant(run):
    """The runs whose quant.json the OSP comparison reads: every OSP run and AdamW's at OUTLIER_SETTING."""
    return run.extra["axis"] == "osp" or run.extra["setting"] == OUTLIER_SETTING


def shape(run):
    """(n_embd, dataset, optimizer): what sets a run's ms per step (MS_PER_STEP)."""
    return run.args["n_embd"], run.args["dataset"], run.args["optimizer"]


def thread_seconds(run):
    """Projected seconds of one run on one thread: its steps, evaluations (a forward pass ~ 1/3 step), quick_metrics
    (n_layer + 2 forward passes of one batch), the final held-out evaluation and RUN_OVERHEAD_S."""
    a = run.args
    evals = a["max_iters"] // a["eval_interval"] + 1
    tokens_per_batch = a["batch_size"] * a["block_size"]
    forwards = evals * 2 * a["eval_iters"] + a.get("final_eval_tokens", 0) / tokens_per_batch
    forwards += (a["max_iters"] // ANALYZE_INTERVAL + 1) * (a["n_layer"] + 2)
    ms = MS_PER_STEP.get(shape(run), max(MS_PER_STEP.values()))
    return ms * (a["max_iters"] + forwards / 3) / 1000 + RUN_OVERHEAD_S


def model_size(run, data_dir):
    """(parameters, vocabulary, training tokens, training FLOPs) of a run, from its config on the meta device:
    tokens = max_iters x batch_size x block_size, FLOPs = tokens x model.flops_per_token (studies.projection)."""
    import torch

    import prepare
    import train
    from model import GPT, GPTConfig
    cfg = train.parse_config(launch.train_args(run), GPTConfig, train.OptimConfig, train.TrainConfig)
    try:
        cfg["vocab_size"] = prepare.load_meta(data_dir, run.args["dataset"])["vocab_size"]
    except (OSError, ValueError):
        if run.args["dataset"] != GPT2:  # GPT2's default 50257 is the GPT-2 vocabulary; a char one is < 256
            cfg["vocab_size"] = 256
    with torch.device("meta"):
        model = GPT(train.split_config(cfg, GPTConfig))
    tokens = run.args["max_iters"] * run.args["batch_size"] * run.args["block_size"]
    return model.num_params(), cfg["vocab_size"], tokens, tokens * model.flops_per_token()


def calibrate(runs, steps=8):
    """{setting: CPU ms per training step} of each model shape of the grid (one run per shape(): n_embd, dataset,
    optimizer): the process time of forward, backward, clipping and the optimizer step on the run's own batches,
    median of the steps after 2 warm-up ones. Needs the datasets prepared."""
    import torch

    import data
    import train
    from model import GPT, GPTConfig
    from optim import build_optimizers
    torch.set_num_threads(1)
    out, seen = {}, set()
    for run in runs:
        if shape(run) in seen:
            continue
        seen.add(shape(run))
        cfg = train.parse_config(launch.train_args(run), GPTConfig, train.OptimConfig, train.TrainConfig)
        cfg["vocab_size"] = data.load_meta(run.args["data_dir"], run.args["dataset"])["vocab_size"]
        torch.manual_seed(run.args["seed"])
        model = GPT(train.split_config(cfg, GPTConfig))
        opt = build_optimizers(model, train.split_config(cfg, train.OptimConfig), "cpu")
        sampler = data.BatchSampler(run.args["data_dir"], run.args["dataset"], "train", run.args["batch_size"],
                                    run.args["block_size"], seed=run.args["seed"])
        times = []
        for i in range(steps):
            x, y = sampler.batch(i)
            t = time.process_time()
            _, loss = model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            opt.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.process_time() - t)
        rest = sorted(times[2:])
        out[run.extra["setting"]] = 1000 * rest[len(rest) // 2]
        print(f"{run.extra['setting']} ({', '.join(map(str, shape(run)))}): {out[run.extra['setting']]:.0f} ms per "
              f"step (CPU time, one thread; projected {MS_PER_STEP.get(shape(run), '-')})", flush=True)
    return out


# --------------------------------------------------------------------------------------------
# the data, the runs

def ensure_datasets(data_dir):
    """corpus_char is prepared on first use (records.ensure_dataset, the books); corpus_gpt2 must be prepared
    (tiktoken's GPT-2 files). A missing one stops the search before any run starts."""
    got = records.ensure_dataset({"dataset": CHAR, "data_dir": data_dir})
    if got != CHAR:
        raise SystemExit(f"error: the kurtosis search trains on {CHAR}, not {got}: run `python prepare.py books "
                         f"--input FOLDER --name {CHAR}` with the four books first (no run was started)")
    import prepare
    if not prepare.list_shards(os.path.join(data_dir, GPT2), "train"):
        raise SystemExit(f"error: dataset '{GPT2}' is not prepared in {os.path.join(data_dir, GPT2)}: run "
                         f"`{GPT2_PREPARE} --data_dir {data_dir}` first (no run was started)")


def train(runs, runs_dir, jobs, threads, on_mismatch):
    """Decide every run (records.decide), stop on a refusal, train the rest in the pool, longest first (two slots
    finish together), record divergences. Returns the number of runs trained."""
    from study.findings_study import record_divergences
    decisions = {r.name: records.decide(os.path.join(runs_dir, r.name), records.planned_record(r), on_mismatch)
                 for r in runs}
    refused = [f"{os.path.join(runs_dir, n)}: {d.diff}" for n, d in decisions.items() if d.action == "refuse"]
    if refused:
        raise SystemExit(f"error: {len(refused)} run(s) were trained with other settings than planned "
                         f"({'; '.join(refused)}): pass --on_mismatch=retrain, delete them or pass --runs_dir")
    no_quant = [os.path.join(runs_dir, r.name) for r in runs if needs_quant(r) and decisions[r.name].action == "reuse"
                and launch.read_done(os.path.join(runs_dir, r.name)).get("outcome", "trained") == "trained"
                and not any(os.path.exists(os.path.join(runs_dir, r.name, f)) for f in ("quant.json", "ckpt.pt"))]
    if no_quant:
        raise SystemExit(f"error: {len(no_quant)} finished run(s) have no quant.json and no checkpoint to compute it "
                         f"from ({', '.join(no_quant)}): delete them to retrain them (no run was started)")
    todo = sorted((r for r in runs if decisions[r.name].action != "reuse"), key=thread_seconds, reverse=True)
    if todo:
        result = launch.execute(todo, runs_dir, decisions, launch.slots(jobs), threads, done_extra={"jobs": jobs})
        record_divergences(result, runs_dir)
    return len(todo)


def analyze_ends(runs, runs_dir, threads):
    """analysis.json of every run that trained to its end (the findings' measure of a run's end), and quant.json
    of those the OSP comparison reads (needs_quant)."""
    import torch

    from study.analysis import analyze_run
    from study.findings_study import write_quant
    torch.set_num_threads(threads or 1)
    for run in runs:
        out_dir = os.path.join(runs_dir, run.name)
        if launch.read_done(out_dir).get("outcome", "trained") == "trained":
            analyze_run(run, out_dir, ANALYSIS, "cpu", plots=False)
            if needs_quant(run):
                write_quant(run, out_dir)


# --------------------------------------------------------------------------------------------
# what the report reads from a run folder

def measure(run, runs_dir, data_dir):
    """One run's row of the report, from its records: setting, size, outcome, val loss, kurtosis along training
    (log.jsonl's eval rows) and at the end (analysis.json), wall time and ms per step."""
    out_dir = os.path.join(runs_dir, run.name)
    done = launch.read_done(out_dir)
    train_rows, eval_rows = runlog.read_log(out_dir)
    final = heldout.final_eval(out_dir) or {}
    summary = (runlog.read_analysis(out_dir) or {}).get("summary", {})
    quant = _json(os.path.join(out_dir, "quant.json")) or {}
    along = [[r["iter"], r["kurtosis_mean"]] for r in eval_rows if "kurtosis_mean" in r]
    ms = sorted(r["ms"] for r in train_rows[1:])
    params, vocab, tokens, flops = model_size(run, data_dir)
    a = run.args
    return {"run": run.name, **run.extra, "steps": a["max_iters"], "n_embd": a["n_embd"], "n_head": a["n_head"],
            "dataset": a["dataset"], "tokenizer": TOKENIZERS.get(a["dataset"], a["dataset"]), "vocab": vocab,
            "params": params, "tokens": tokens, "flops": flops, "outcome": done.get("outcome", "trained"),
            "reason": done.get("reason"), "last_iter": eval_rows[-1]["iter"] if eval_rows else None,
            "final_val_loss": final.get("final_val_loss"),
            "kurtosis_end": summary.get("kurtosis_mean"), "kurtosis_end_max": summary.get("kurtosis_max"),
            "kurtosis_end_raw": summary.get("kurtosis_raw_mean"), "along": along,
            "along_max": max(along, key=lambda p: p[1]) if along else None,
            "wall_s": done.get("wall_s"), "ms_per_step": ms[len(ms) // 2] if ms else None,
            "machine": done.get("machine"), "jobs": done.get("jobs"),
            "w4_increase": quant.get("w4_increase"), "w8a8_increase": quant.get("w8a8_increase")}


def about_lines(runs, runs_dir, data_dir):
    """The header: the commit(s) and machine(s) that trained the runs (run.json, `done`), the two datasets."""
    folders = [os.path.join(runs_dir, r.name) for r in runs]
    machines = sorted({launch.read_done(d).get("machine") or "machine not recorded" for d in folders})
    return [f"{provenance.trained_at(folders)} on: {'; '.join(machines)}", "",
            provenance.dataset_line(CHAR, data_dir, CHAR), "",
            provenance.dataset_line(GPT2, data_dir, GPT2) + " (the gpt2 run)", ""]


# --------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        print(f"error: {message} (see python ablate.py kurtosis --help)", file=sys.stderr)
        sys.exit(2)


def parse_seeds(text, flag="--seeds"):
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0:
        raise SystemExit(f"error: bad value {text!r} for {flag}: comma-separated integers >= 0, e.g. 1337,1338"
                         + (", or none" if flag == "--repeat_seeds" else ""))
    return seeds


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = _Parser(prog="ablate.py kurtosis", description=__doc__.strip().splitlines()[0])
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="seeds, comma-separated (default 1337)")
    p.add_argument("--repeat_seeds", default=",".join(map(str, REPEAT_SEEDS)),
                   help="more seeds for the base and the lr axis only, comma-separated, or none "
                        f"(default {','.join(map(str, REPEAT_SEEDS))})")
    p.add_argument("--jobs", type=int, default=2, help="train.py processes at once (each one thread)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--data_dir", default="data")
    p.add_argument("--runs_dir", default=None, help="default <results_dir>/runs")
    p.add_argument("--results_dir", default=os.path.join("results", "kurtosis_search"))
    p.add_argument("--on_mismatch", default="refuse", choices=["refuse", "retrain"],
                   help="a run whose run.json differs from the plan: refuse (stop, naming the keys) or retrain it")
    p.add_argument("--dry_run", action="store_true", help="print the commands and the projected thread-minutes")
    p.add_argument("--calibrate", action="store_true",
                   help="measure the CPU ms per training step of each model shape (MS_PER_STEP), train nothing")
    a = p.parse_args(argv)
    if a.jobs < 1:
        p.error(f"bad value {a.jobs} for --jobs: must be >= 1")
    if a.threads < 1:
        p.error(f"bad value {a.threads} for --threads: must be >= 1")
    seeds = parse_seeds(a.seeds)
    repeat_seeds = () if a.repeat_seeds == "none" else parse_seeds(a.repeat_seeds, "--repeat_seeds")
    runs_dir = a.runs_dir or os.path.join(a.results_dir, "runs")
    runs = grid_runs(seeds, a.data_dir, repeat_seeds)
    osp = osp_runs(tuple(dict.fromkeys(seeds + repeat_seeds)), a.data_dir)  # the seeds of OUTLIER_SETTING's runs
    if a.dry_run:
        return dry_run(runs + osp, runs_dir, a)
    if a.calibrate:
        ensure_datasets(a.data_dir)
        return calibrate(runs + osp)
    t0 = time.time()
    ensure_datasets(a.data_dir)
    trained = train(runs + osp, runs_dir, a.jobs, a.threads, a.on_mismatch)
    print(f"kurtosis: reused {len(runs + osp) - trained} of {len(runs + osp)} runs, trained {trained}", flush=True)
    analyze_ends(runs + osp, runs_dir, a.threads)
    rows = [measure(r, runs_dir, a.data_dir) for r in runs]
    osp_rows = [measure(r, runs_dir, a.data_dir) for r in osp]
    # the report's text depends on the runs only: the command that makes it, not this call's paths or jobs
    command = ("python ablate.py kurtosis --jobs=2" + ("" if seeds == SEEDS else f" --seeds={a.seeds}")
               + ("" if repeat_seeds == REPEAT_SEEDS else f" --repeat_seeds={a.repeat_seeds}"))
    summary = kurtosis_report.write_report(
        rows, a.results_dir, command, about_lines(runs + osp, runs_dir, a.data_dir), seeds, osp_rows,
        outlier_setting=OUTLIER_SETTING, projected_s=sum(thread_seconds(r) for r in runs + osp),
        calibration=MS_CALIBRATION, analyze_interval=ANALYZE_INTERVAL)
    print(f"wrote {a.results_dir}/results.md: {len(rows) + len(osp_rows)} runs ({trained} trained now), above "
          f"{KURTOSIS_TARGET:g} (mean over seeds): {', '.join(summary['above']) or 'none'}; {time.time() - t0:.0f} s",
          flush=True)
    return summary


def dry_run(runs, runs_dir, a):
    """What the real call would do: each run's decision and command, and the projected thread-minutes."""
    import prepare
    for name in (CHAR, GPT2):
        if not prepare.list_shards(os.path.join(a.data_dir, name), "train"):
            how = (f"`{GPT2_PREPARE} --data_dir {a.data_dir}`" if name == GPT2 else
                   "the real call prepares it from the books (a download)")
            print(f"# dataset {name} is not prepared in {os.path.join(a.data_dir, name)}: {how}")
    print(f"# runs in {runs_dir}, results in {a.results_dir}")
    seconds = 0.0
    for run in runs:
        d = records.decide(os.path.join(runs_dir, run.name), records.planned_record(run), a.on_mismatch)
        s = thread_seconds(run)
        print(f"# {run.name} ({run.extra['what']}): {d.describe()}; projected {s / 60:.1f} thread-minutes")
        if d.action != "reuse":
            print(launch.shown(launch.train_command(run, os.path.join(runs_dir, run.name),
                                                    d.action == "resume")))
            seconds += s if d.action != "refuse" else 0
    print(f"# projected: {seconds / 60:.1f} thread-minutes for the runs to train, ~{seconds / 60 / a.jobs:.1f} "
          f"minutes wall with --jobs={a.jobs} on an otherwise idle CPU ({MS_CALIBRATION})")
