"""
Run a named ablation study as a sequence of train.py runs, analyze each run, and write the tables.

    python ablate.py norm  --scale=cpu                 # ln vs rms vs rms+zero_mean vs crms (Jiang et al. 2023)
    python ablate.py depth --scale=cpu --depths=6,12   # pre/post/mix/LNS/sandwich/peri/deepnorm (Curse of Depth, Mix-LN)
    python ablate.py optim --scale=cpu                 # adamw, muon, muon+ss, muon+ss+emb_proj (OSP)
    python ablate.py depth --scale=cpu_deep            # pre/LNS/mix/post, 24 x 64, 800 steps, 2 seeds (~32 min)
    python ablate.py depth --scale=gpu_short --dry_run # pre/LNS/mix/post, 24 x 512, 2 seeds: <= 8 min on one H100/H200
    python ablate.py depth --scale=1b --dry_run        # 71m/130m/250m/350m/1b: commands, tokens, FLOPs, H100-hours,
                                                       # memory per GPU (study/hardware.py's plan)
    python ablate.py findings --jobs=2                 # which of the papers' claims reproduce: lr sweeps, each arm at
                                                       # its best lr and at the papers' lr, 5 seeds (CPU)
    python ablate.py trend --dry_run                   # the depth study over training length (study/trend.py)
    python ablate.py kurtosis --jobs=2                 # the OSP row's search: the smallest CPU setting where AdamW's
                                                       # excess kurtosis exceeds 3 (study/kurtosis_search.py)
    python ablate.py depth --scale=130m --gpus=0,1,2,3                  # one run per GPU, the next when one frees
    python ablate.py depth --scale=130m --gpus=0,1,2,3 --gpus_per_run=2 # each run: torchrun over 2 of them (DDP)
    python ablate.py depth --scale=130m --emit=slurm --partition=gpu    # an sbatch array; run again to collect
    python ablate.py depth --scale=130m --emit=slurm --dry_run          # + the array's #SBATCH lines, from the plan

This file is the runner: the command line, the analysis of the runs and the dry run. The rest of a study is in
the folder study/, in the order a run goes through it:

    studies.py   the studies and scales: settings, variants, plan(study, scale) -> runs
    records.py   what a run was trained with (run.json) and whether a finished run is reused (records.decide,
                 the one rule); the dataset and the folders
    launch.py    a run's train.py or torchrun command, and the one launcher: --jobs slots or --gpus, a pool
    slurm.py     --emit=slurm: the sbatch array script
    provenance.py  the commit, machine and dataset that results.md names
    runlog.py    a finished run's log.jsonl and analysis.json, read: removable blocks, mean and spread over seeds
    results.py   results.md and summary.json: the tables, the seeds' mean and spread
    plots.py     the PNGs results.md links
    analysis.py  analyze.py's measures of each finished run, the float64 exactness test
    findings.py, findings_study.py, findings_table.py, verdict.py
                 the findings table: the lr sweep and each arm's best lr, the claims, paired 95% intervals
    hardware.py  the dry run's GPU-hours and memory per GPU for the papers' sizes
    trend.py     the depth study over training length (`python ablate.py trend`, its own flags)
    kurtosis_search.py, kurtosis_report.py
                 AdamW's excess kurtosis along four axes, then OSP where it exceeds 3 (`python ablate.py kurtosis`)

Each run is `python train.py [config file] --key=value ...` (with --gpus_per_run=k: `torchrun --standalone
--nproc_per_node=k train.py ...`) with out_dir runs_dir/<run> (default ablations/<study>_<scale>/<run>). A finished
run (its `done` marker; its ckpt.pt may be gone, as in shipped records) is reused only when the record train.py wrote in <run>/run.json (config, dataset,
code) matches the plan (a folder without run.json is never reused); otherwise the study stops before
training anything, naming the differing keys (`max_iters 5 != 400`: the run's, then the plan's), or retrains it
with --on_mismatch=retrain. An interrupted run whose record matches is resumed. --dry_run prints the same
decision per run and what the runs would cost (gpu_short: minutes on one H100/H200; the papers' sizes:
study/hardware.py's plan of tokens, FLOPs, H100-hours and memory per GPU, with the --set that makes a run fit one
80 GB card when its preset's micro-batch does not; with --emit=slurm also the #SBATCH lines it would write;
thread-minutes for findings).

A study with --set overrides, or one that trains on another dataset than its own (offline, corpus_char falls back
to python_docs), writes to folders suffixed with the overrides and that dataset (results/norm_cpu_max_iters5/),
so a quick try never overwrites the results the repository ships. A study with a failed run exits non-zero and
names each failed run with the last line of its train.log; a dataset that is missing and cannot be prepared here
stops the study before any run starts, with the prepare.py command.

Then analyze.py measures every run (angular distance, layer drop, residual growth, per-block gradient norms,
excess kurtosis) and results/<study>_<scale>/ gets results.md, summary.json and plots; the norm study also runs
the float64 exactness test (tests/test_model.py::test_pre_ln_rms_crms_train_identically) and reports it.
"""

import argparse
import importlib.util
import os
import sys
import time

import torch

# this process analyzes trained models (analyze.py, the held-out losses): a matmul fed denormals runs ~170x slower
# on x86, and the flag reaches torch's worker threads only when set before they start
torch.set_flush_denormal(True)

from study import hardware, launch, provenance, slurm
from study.analysis import analyze_runs, exactness_test
from study.findings_study import findings_study
from study.records import decide, folder_suffix, planned_record, resolve_dataset
from study.results import f4, write_results
from study.studies import (ANALYSIS, GPU_SHORT_BUDGET_MIN, GPU_SHORT_MFU, GPU_SHORT_OVERHEAD_S, GPU_SHORT_PEAK_FLOPS,
                           PAPER_SCALES, SCALES, STUDIES, Run, plan, projection)


# --------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        print(f"error: {message} (see python ablate.py --help)", file=sys.stderr)
        sys.exit(2)


def parse_sets(items):
    out = {}
    for item in items:
        if "=" not in item or not item.split("=", 1)[0]:
            raise SystemExit(f"bad value '{item}' for --set: use --set key=value (a train.py config key)")
        k, v = item.split("=", 1)
        out[k.lstrip("-")] = v
    return out


def parse_depths(text):
    try:
        depths = [int(d) for d in text.split(",") if d.strip()]
    except ValueError:
        raise SystemExit(f"bad value '{text}' for --depths: use comma-separated layer counts, e.g. 6,12") from None
    if not depths or min(depths) < 1:
        raise SystemExit(f"bad value '{text}' for --depths: use comma-separated layer counts >= 1, e.g. 6,12")
    return depths


# --------------------------------------------------------------------------------------------

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["trend"]:  # the depth study over training length: its own flags (study/trend.py)
        from study import trend
        return trend.main(argv[1:])
    if argv[:1] == ["kurtosis"]:  # the OSP row's search for outliers: its own flags (study/kurtosis_search.py)
        from study import kurtosis_search
        return kurtosis_search.main(argv[1:])
    ap = _Parser(description="Run an ablation study (train.py runs + analyze.py) and write results/<study>_<scale>/.")
    ap.add_argument("study", choices=STUDIES, help="norm | depth | optim | findings (the claims table, CPU); "
                                                   "`python ablate.py trend --help`: the trend's own flags")
    ap.add_argument("--scale", default="cpu", choices=SCALES,
                    help="cpu (minutes on 2 cores), cpu_deep (depth: 24 layers, 2 seeds, ~32 min), gpu_short (depth: "
                         "<= 8 min on one H100/H200), or the papers' sizes 71m, 130m, 250m, 350m, 1b "
                         "(config/llama-<size>.py)")
    ap.add_argument("--depths", default=None,
                    help="depth study: comma-separated n_layer values (cpu: 6,12; cpu_deep, gpu_short: 24; "
                         "71m, 130m: 12; 250m, 350m, 1b: 24)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="train.py override for every run (repeatable); results and runs then go to folders "
                         "suffixed with the overrides")
    ap.add_argument("--runs_dir", default=None, help="run folders (default ablations/<study>_<scale>[_<suffix>])")
    ap.add_argument("--results", default=None, help="results folder (default results/<study>_<scale>[_<suffix>])")
    ap.add_argument("--only", default=None, help="comma-separated run names (or name prefixes) to train "
                                                 "(the tables use all finished)")
    ap.add_argument("--on_mismatch", default="refuse", choices=["refuse", "retrain"],
                    help="a finished run whose run.json differs from the plan: refuse (stop before training, naming "
                         "the differing keys) or retrain it (the old folder is kept as <run>.previous)")
    ap.add_argument("--jobs", type=int, default=1, help="train.py processes at once (each with --threads threads)")
    ap.add_argument("--gpus", default=None, metavar="0,1,2,3",
                    help="GPUs to place the runs on: up to one run per GPU (or per --gpus_per_run GPUs) at a time, "
                         "each with its CUDA_VISIBLE_DEVICES; the next run starts when a GPU frees")
    ap.add_argument("--gpus_per_run", type=int, default=1,
                    help="GPUs per run: each run is `torchrun --standalone --nproc_per_node=k train.py ...` (DDP) on "
                         "k of --gpus (with --emit=slurm: k GPUs per array task)")
    ap.add_argument("--emit", default=None, choices=["slurm"],
                    help="train nothing here: write an sbatch array script with one task per run not finished "
                         "(<runs_dir>/slurm.sbatch); the finished runs are collected into the tables, so the same "
                         "command after the array ran collects it")
    ap.add_argument("--partition", default=None, help="--emit=slurm: the #SBATCH --partition line")
    ap.add_argument("--account", default=None, help="--emit=slurm: the #SBATCH --account line")
    ap.add_argument("--time", default=None, help="--emit=slurm: the #SBATCH --time line (default: the longest run's "
                                                 "planned hours x 1.5 + 0.5 h; a CPU plan 24:00:00)")
    ap.add_argument("--analyze_batches", type=int, default=None, help="batches per analysis (cpu 2, 130m 8)")
    ap.add_argument("--analyze_batch_size", type=int, default=None, help="sequences per analysis batch (cpu 8, 130m 16)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="device for analysis")
    ap.add_argument("--threads", type=int, default=None,
                    help="OMP_NUM_THREADS for the runs (cpu default 1: far faster on a busy shared CPU; 0 = torch's choice)")
    ap.add_argument("--no_exactness_test", action="store_true", help="norm study: skip the float64 pytest")
    ap.add_argument("--no_plots", action="store_true", help="write the tables and JSON only (no matplotlib needed)")
    ap.add_argument("--no_analysis", action="store_true",
                    help="skip analyze.py (layer drop, stream growth, gradient norms, kurtosis): loss tables only")
    ap.add_argument("--dry_run", action="store_true",
                    help="print, per run, what would happen (new / done, reused / would retrain / would refuse) and "
                         "its train.py command, then stop")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"bad value {args.jobs} for --jobs: must be >= 1")
    if args.gpus_per_run < 1:
        ap.error(f"bad value {args.gpus_per_run} for --gpus_per_run: must be >= 1")
    if args.gpus is not None and args.jobs != 1:
        ap.error(f"bad value {args.jobs} for --jobs with --gpus: --gpus runs one run per GPU group at a time; "
                 f"leave --jobs out")
    if args.gpus is not None and args.emit:
        ap.error(f"--gpus={args.gpus} places runs on this machine; with --emit={args.emit} Slurm places them: "
                 f"use --gpus_per_run only")
    if args.gpus_per_run > 1 and args.gpus is None and not args.emit:
        ap.error(f"--gpus_per_run={args.gpus_per_run} needs the GPUs to run on: --gpus=0,1,... or --emit=slurm")
    for flag in ("partition", "account", "time"):
        if getattr(args, flag) is not None and not args.emit:
            ap.error(f"--{flag} is for --emit=slurm only")
    slot_pool = launch.slots(args.jobs, args.gpus, args.gpus_per_run)  # one-line errors for a bad --gpus
    time_limit = slurm.check_time(args.time) if args.time is not None else None  # None: from the plan
    overrides = parse_sets(args.set)
    depths = parse_depths(args.depths) if args.depths else None
    if depths and args.study != "depth":
        ap.error(f"--depths is only for the depth study, not '{args.study}'")
    if args.study == "findings":
        if args.scale != "cpu":
            ap.error(f"bad value '{args.scale}' for --scale with findings: the findings study runs at cpu scale only")
        if args.only:
            ap.error("--only is not for the findings study: it trains what its sweep and table need")
        return findings_study(args, overrides, argv)
    else:
        runs = plan(args.study, args.scale, depths, overrides)
    wanted = None
    if args.only:  # a run's name, or a prefix of names (findings: --only=depth) when no run has that name
        names = {r.name for r in runs}
        picked = {w: {w} if w in names else {n for n in names if n.startswith(w + "_")} for w in args.only.split(",")}
        wanted = set().union(*picked.values())
        unknown = [w for w, got in picked.items() if not got]
        if unknown:
            ap.error(f"bad value '{unknown[0]}' for --only: choose from {', '.join(r.name for r in runs)}")
    if not args.no_plots and not args.dry_run and importlib.util.find_spec("matplotlib") is None:
        raise SystemExit("error: the plots need matplotlib: pip install matplotlib, or pass --no_plots "
                         "(tables and JSON only); no run was started")
    analysis = dict(ANALYSIS[args.scale])
    if args.analyze_batches:
        analysis["batches"] = args.analyze_batches
    if args.analyze_batch_size:
        analysis["batch_size"] = args.analyze_batch_size

    # the dataset first: a missing one stops the study before any run starts
    own = plan(args.study, args.scale, depths, {})[0].args["dataset"]
    dataset, note = resolve_dataset(runs[0].args, args.dry_run)
    if dataset != runs[0].args.get("dataset"):
        for run in runs:
            run.args["dataset"] = dataset
    base_tag = f"{args.study}_{args.scale}"
    suffix = folder_suffix(overrides, own, dataset)
    tag = base_tag + (f"_{suffix}" if suffix else "")
    runs_dir = args.runs_dir or os.path.join("ablations", tag)
    results_dir = args.results or os.path.join("results", tag)

    # what happens to every run: compared with its run.json before anything is trained
    planned = {r.name: planned_record(r) for r in runs}
    nproc = args.gpus_per_run
    for r in runs:  # train.py splits a step's micro-batches over the ranks
        accum = planned[r.name]["config"]["gradient_accumulation_steps"]
        if accum % nproc:
            rows = accum * planned[r.name]["config"]["batch_size"]
            micro = next(m for m in range(rows // nproc, 0, -1) if rows % (m * nproc) == 0 and
                         m <= planned[r.name]["config"]["batch_size"]) if rows >= nproc else None
            fix = (f"pass {hardware.fit_flags(micro, rows // micro)[0]} (the same global batch) or " if micro else "")
            ap.error(f"bad value {nproc} for --gpus_per_run: run {r.name} has gradient_accumulation_steps={accum}, "
                     f"which {nproc} ranks cannot share: {fix}choose a --gpus_per_run that divides {accum}")
    passes, train_tokens = provenance.data_passes(planned, runs[0].args.get("data_dir", "data"), dataset)
    if passes is not None and passes > provenance.PASSES_WARNING:
        line = (f"note: a run reads {passes:.1f} passes over {dataset}'s {train_tokens:,} training tokens: expect it "
                f"to memorize them (a larger dataset, or fewer --set max_iters)")
        if args.dry_run:
            note = f"{note}\n# {line}" if note else line
        else:
            print(line, flush=True)
    decisions = {r.name: decide(os.path.join(runs_dir, r.name), planned[r.name], args.on_mismatch) for r in runs}
    todo = [r for r in runs if wanted is None or r.name in wanted]
    rest = [r for r in runs if r not in todo and decisions[r.name].action == "reuse"]
    for r in runs:  # outside --only: a finished run that no longer matches stays out of the tables, said here
        if r not in todo and decisions[r.name].action in ("refuse", "retrain"):
            print(f"# {r.name} (not in --only) is left out of the tables: {decisions[r.name].diff}")
    if args.dry_run:
        if note and dataset == "corpus_char":
            # the real run's folders depend on whether the books can be downloaded: show the offline case too
            other_dir = args.runs_dir or os.path.join("ablations",
                                                      f"{base_tag}_{folder_suffix(overrides, own, 'python_docs')}")
            offline = {r.name: planned_record(Run(r.name, {**r.args, "dataset": "python_docs"}, r.config_file))
                       for r in todo}
            other = [decide(os.path.join(other_dir, r.name), offline[r.name], args.on_mismatch) for r in todo]
            counts = {a: sum(d.action == a for d in other) for a in ("new", "reuse", "resume", "retrain", "refuse")}
            note += (f"\n# offline (python_docs) the runs would be in {other_dir}: "
                     + ", ".join(f"{n} {a}" for a, n in counts.items() if n))
            offline_passes, offline_tokens = provenance.data_passes(offline, runs[0].args.get("data_dir", "data"),
                                                                    "python_docs")
            if offline_passes is not None and offline_passes > provenance.PASSES_WARNING:
                note += (f"; a run would read {offline_passes:.1f} passes over python_docs's {offline_tokens:,} "
                         f"training tokens: expect it to memorize them")
        return dry_run(args, runs, todo, decisions, runs_dir, results_dir, note, slot_pool)
    refused = [r for r in todo if decisions[r.name].action == "refuse"]
    if refused:
        for r in refused:
            print(f"refused {os.path.join(runs_dir, r.name)}: {decisions[r.name].diff}", file=sys.stderr)
        raise SystemExit(f"error: {len(refused)} run(s) were trained with other settings than this study asks for "
                         f"(run's != planned above); pass --on_mismatch=retrain, delete them, or pass another "
                         f"--runs_dir; no run was started")

    import analyze
    device = analyze.pick_device(args.device)
    t0 = time.time()
    threads = run_threads(args)
    if threads:
        import torch
        torch.set_num_threads(threads)  # the analysis in this process, too
    print(f"runs in {runs_dir}, results in {results_dir}", flush=True)
    script = None
    if args.emit:
        script = emit_slurm(args, argv, todo, decisions, runs_dir, threads, time_limit,
                            job_name="nanonorm_" + os.path.basename(os.path.normpath(runs_dir)))
    records = launch.execute(todo + rest, runs_dir, decisions, slot_pool, threads=threads, train=not args.emit)
    if not args.no_analysis:
        analyze_runs(runs, runs_dir, records, analysis, device, plots=not args.no_plots)
    failed = {n: rec for n, rec in records.items() if rec.get("failed")}
    finished = [r for r in runs if r.name in records and not records[r.name].get("failed")]
    command = "python ablate.py " + " ".join(argv)
    about = provenance.about(threads, runs[0].args.get("device"), dataset, runs[0].args.get("data_dir", "data"), own,
                             passes, train_tokens)
    if args.gpus is not None:
        about[1] += f"; runs placed on GPUs {' | '.join(s.env['CUDA_VISIBLE_DEVICES'] for s in slot_pool)}"
    if args.emit:
        about[1] = f"{about[1]} (the machine that collected the runs: they trained as Slurm array tasks)"
    summary = None
    if finished:
        shown = [r for r in runs if r.name in records]
        exact = exactness_test(threads) if args.study == "norm" and not args.no_exactness_test else None
        summary = write_results(args.study, args.scale, shown, records, runs_dir, results_dir, command,
                                time.time() - t0, exact, about=about, plots=not args.no_plots)
        for name, m in summary["runs"].items():
            if "paper_val_ppl" in m:
                print(f"{name}: val ppl {f4(m.get('val_ppl'), 2)}, paper {m['paper_val_ppl']:.2f} "
                      f"({PAPER_SCALES[args.scale][3]})")
    if summary is not None:
        print(f"wrote {results_dir} in {time.time() - t0:.0f} s", flush=True)
    if args.emit and script:
        print(f"submit: sbatch {script}; then run this command again to collect the runs", flush=True)
    if failed:
        for name, rec in failed.items():
            print(f"FAILED {name}: {rec['reason']}", file=sys.stderr)
        raise SystemExit(f"error: {len(failed)} of {len(todo + rest)} runs failed ({', '.join(failed)}); "
                         + (f"the tables in {results_dir} mark them" if summary is not None
                            else "no results were written"))
    return summary


def emit_slurm(args, argv, todo, decisions, runs_dir, threads, time_limit, job_name):
    """--emit=slurm: <runs_dir>/slurm.sbatch with one array task per run not finished (a run to retrain is set aside
    first, as a real run would); returns its path, or None when every run is finished."""
    tasks = []
    for run in todo:
        d = decisions[run.name]
        if d.action not in ("new", "resume", "retrain"):
            continue
        out_dir = os.path.join(runs_dir, run.name)
        if d.action == "retrain":
            print(f"    {run.name}: the old run moved to {launch.set_aside(out_dir)} ({d.diff})", flush=True)
        cmd = launch.train_command(run, out_dir, d.action == "resume", args.gpus_per_run)
        tasks.append((run.name, out_dir, cmd, launch.shown(launch.train_command(run, out_dir,
                                                                                nproc=args.gpus_per_run))))
    if not tasks:
        print("every run is finished: no Slurm script written", flush=True)
        return None
    lines, warnings = slurm_resources(args, [r for r in todo if r.name in {t[0] for t in tasks}], threads,
                                      time_limit)
    for w in warnings:
        print(f"warning: {w}", flush=True)
    command = "python ablate.py " + " ".join(argv)
    path = slurm.write(os.path.join(runs_dir, "slurm.sbatch"),
                       slurm.script(tasks, repo=os.path.dirname(os.path.abspath(__file__)), runs_dir=runs_dir,
                                    job_name=job_name, resource_lines=lines, threads=threads, command=command))
    print(f"wrote {path}: {len(tasks)} array task(s), not finished yet: {', '.join(t[0] for t in tasks)}", flush=True)
    return path


def run_threads(args):
    """OMP_NUM_THREADS of the runs: --threads, else 1 at the CPU scales and torch's own choice (0) otherwise."""
    return args.threads if args.threads is not None else (0 if args.scale not in ("cpu", "cpu_deep") else 1)


def slurm_resources(args, runs, threads, time_limit):
    """The Slurm array's #SBATCH lines and warnings (slurm.resources): from study/hardware.py's plan of each run on
    --gpus_per_run GPUs, the largest over the runs; a CPU plan asks for no GPU and gets its threads."""
    if not runs or planned_record(runs[0])["config"].get("device", "auto") == "cpu":
        return slurm.resources(0, threads, time_limit, args.partition, args.account)
    plans = [(r.name, hardware.plan(r.args, r.config_file, gpus=args.gpus_per_run)) for r in runs]
    return slurm.resources(args.gpus_per_run, threads, time_limit, args.partition, args.account, plans)


def dry_run(args, runs, todo, decisions, runs_dir, results_dir, note, slot_pool):
    """Print per run what the real run would do with it and its exact command (with projections)."""
    if note:
        print(f"# {note}")
    print(f"# runs in {runs_dir}, results in {results_dir}")
    if args.gpus is not None:
        print(f"# placed on GPUs {' | '.join(s.env['CUDA_VISIBLE_DEVICES'] for s in slot_pool)}: one run per "
              f"{'GPU' if args.gpus_per_run == 1 else f'{args.gpus_per_run} GPUs'} at a time, the next when one frees")
    minutes, plans = 0.0, []
    for run in todo:
        out_dir = os.path.join(runs_dir, run.name)
        decision = decisions[run.name]
        print(f"# {run.name}: {decision.describe()}")
        print(launch.shown(launch.train_command(run, out_dir, decision.action == "resume", args.gpus_per_run)))
        busy = decision.action in ("new", "retrain", "resume")
        if args.scale in PAPER_SCALES:  # tokens, FLOPs, GPU-hours at the size's MFU, memory per GPU
            hw = hardware.plan(run.args, run.config_file, gpus=args.gpus_per_run)
            plans += [hw] if busy else []
            paper = run.extra.get("paper_val_ppl")
            lines = hardware.describe(hw)
            lines[0] += (f"; paper C4 val ppl {paper}" if paper else "; no published number for this row (size, "
                         "depth, data)" if args.study == "depth" else "")
            print("\n".join("#   " + line for line in lines))
        elif args.scale == "gpu_short":
            p = projection(run)
            s = p["flops"] / (GPU_SHORT_PEAK_FLOPS * GPU_SHORT_MFU) + GPU_SHORT_OVERHEAD_S
            minutes += s / 60 if busy else 0
            print(f"#   {p['tokens']:,} tokens x {p['flops_per_token'] / 1e6:,.0f} MFLOP/token: {s:.0f} s "
                  f"({GPU_SHORT_MFU:.0%} MFU eager bf16 + {GPU_SHORT_OVERHEAD_S} s start-up/eval/analysis)")
    refused = [r.name for r in todo if decisions[r.name].action == "refuse"]
    if refused:
        print(f"# the real run would stop before training: {len(refused)} run(s) refused "
              f"({', '.join(refused)}); --on_mismatch=retrain retrains them")
    if args.scale == "gpu_short":
        print(f"# projected: {minutes:.1f} minutes on one H100/H200 for the runs to train (budget "
              f"{GPU_SHORT_BUDGET_MIN} min; not compiled: compile=False)")
    if args.emit:
        busy_runs = [r for r in todo if decisions[r.name].action in ("new", "retrain", "resume")]
        lines, _ = slurm_resources(args, busy_runs, run_threads(args), slurm.check_time(args.time) if args.time
                                   else None)
        print(f"# --emit=slurm would write {os.path.join(runs_dir, 'slurm.sbatch')}: {len(busy_runs)} array task(s), "
              f"these resources:" if busy_runs else "# --emit=slurm: every run is finished, no script to write")
        if busy_runs:
            print("\n".join(lines))
    if args.scale in PAPER_SCALES:
        print("\n".join("# " + line for line in hardware.summary(plans)))
        print(f"# paper numbers: {PAPER_SCALES[args.scale][3]}")
    return None


if __name__ == "__main__":
    main()
