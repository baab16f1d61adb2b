"""
The study runner's parts: what `python ablate.py` (the entry point, at the top level) uses to plan, train, check
and report a study. The top level holds the trainer (norms, model, optim, train, data, configurator, checkpoint,
prepare, sample) and the tools a student runs (analyze, convert, bench, exercises, ablate); this folder holds:

    studies.py   the studies and scales: settings, variants, plan(study, scale) -> runs, the train.py command
    records.py   what a run was trained with (run.json) and whether a finished run is reused
    runlog.py    a finished run's log.jsonl and analysis.json, read: removable blocks, mean and spread over seeds
    results.py   results.md and summary.json: the tables, the seeds' mean and spread
    plots.py     the PNGs results.md links
    findings.py  the findings table: the papers' claims, ours over seeds, a computed verdict per claim
    trend.py     the depth study over training length (`python ablate.py trend ...`)
    trend_report.py  the trend's results.md, trend.json, trend.png: per-seed crossovers, what trained the runs

Its modules import the trainer's modules by their top-level names (`import train`): they run with the repository
root on sys.path, as ablate.py and the tests do.
"""
