"""
Per-sequence held-out losses of a finished run, and the evaluation error of a paired difference between arms.

train.py --final_eval_tokens gives each run's val loss over one fixed held-out set (the batches of a sampler
seeded train.FINAL_EVAL_SEED, the same sequences for every run) and its standard error over sequences. That error
is each arm's own; a verdict compares two arms ON THE SAME SEQUENCES, so their errors largely cancel. With
l_a[s, i] the loss of arm a's seed-s run on sequence i (m sequences of equal length), the verdict's mean
difference over seeds is the mean over sequences of

    d_i = mean_s l_a[s, i] - mean_s l_b[s, i],     and its evaluation error is   se_paired = std_i(d_i) / sqrt(m)

(the sequences are the independent units; the seeds' spread is the verdict's own interval, this is what the
finite held-out set adds on top).

The per-sequence losses come from the run's checkpoint, by the loop of train.evaluate_held_out (which returns
only the totals; tests/test_heldout.py checks that the two agree), and are kept in the run's records as
heldout.json (rounded to 1e-5), so a fresh clone, which has no checkpoints, computes the paired error too.
"""

import json
import math
import os

FILE = "heldout.json"


def sequence_losses(out_dir, device="cpu"):
    """{"loss": [mean token loss of each held-out sequence], "tokens": tokens scored per sequence} of the run's
    checkpoint, on the held-out set its final evaluation used (its config's final_eval_tokens, batch_size)."""
    import torch
    import torch.nn.functional as F

    import data
    import train
    from checkpoint import load_checkpoint
    model, ckpt = load_checkpoint(out_dir, device)
    cfg = ckpt["config"]
    if not cfg.get("final_eval_tokens"):
        raise ValueError(f"{out_dir} was trained without --final_eval_tokens: it has no held-out set")
    block_size = model.config.block_size
    sampler = data.BatchSampler(cfg.get("data_dir", "data"), ckpt.get("dataset") or cfg["dataset"], "val",
                                cfg["batch_size"], block_size, seed=train.FINAL_EVAL_SEED)
    ctx = train.autocast_context(cfg.get("dtype", "float32"), torch.device(device).type)
    model.eval()
    losses, counts = [], []
    with torch.no_grad():
        for k in range(-(-cfg["final_eval_tokens"] // (cfg["batch_size"] * block_size))):
            x, y = train.get_batch(sampler, k, device)
            with ctx:
                logits, _ = model(x, y)
            token_loss = F.cross_entropy(logits.float().transpose(1, 2), y, ignore_index=-1, reduction="none")
            n = (y != -1).sum(1)
            losses += (token_loss.double().sum(1) / n).tolist()
            counts += n.tolist()
    if len(set(counts)) != 1:
        raise ValueError(f"{out_dir}: held-out sequences of unequal length ({min(counts)}..{max(counts)} tokens); "
                         f"the paired error here assumes equal ones")
    return {"loss": losses, "tokens": counts[0]}


def final_eval(out_dir):
    """The run's final evaluation row of log.jsonl ({final_val_loss, final_val_se, final_val_tokens}), or None."""
    path = os.path.join(out_dir, "log.jsonl")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return next((r for r in reversed(rows) if "final_val_loss" in r), None)


def read(out_dir):
    """The run's per-sequence losses from heldout.json, or None."""
    path = os.path.join(out_dir, FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def ensure(out_dir):
    """heldout.json of a finished run: read, or computed from its checkpoint when missing or older than it.
    The mean of the per-sequence losses must be the final val loss train.py logged (to 1e-5): else the two
    loops disagree, and nothing is written. None when the run has neither the file nor a checkpoint."""
    ckpt = os.path.join(out_dir, "ckpt.pt")
    path = os.path.join(out_dir, FILE)
    if not os.path.exists(ckpt) or (os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(ckpt)):
        return read(out_dir)
    got, logged = sequence_losses(out_dir), final_eval(out_dir)
    mean = sum(got["loss"]) / len(got["loss"])
    if logged is None or abs(mean - logged["final_val_loss"]) > 1e-5:
        raise ValueError(f"{out_dir}: the held-out losses average {mean:.6f}, but train.py logged "
                         f"{logged and logged['final_val_loss']}: not written")
    result = {"loss": [round(v, 5) for v in got["loss"]], "tokens": got["tokens"],
              "final_val_loss": logged["final_val_loss"]}
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, separators=(",", ":"))
    os.replace(path + ".tmp", path)
    return result


def paired_se(runs_a, runs_b):
    """The evaluation error of mean(loss of arm a) - mean(loss of arm b) over seeds, from the per-sequence losses
    of each arm's runs (lists of heldout dicts, one per seed, on the same sequences): std_i(d_i) / sqrt(m), see
    the module docstring. None when a run has no per-sequence losses."""
    if not runs_a or not runs_b or any(r is None for r in runs_a + runs_b):
        return None
    m = len(runs_a[0]["loss"])
    if any(len(r["loss"]) != m for r in runs_a + runs_b) or m < 2:
        raise ValueError("the runs were evaluated on different held-out sets: no paired error")
    d = [sum(r["loss"][i] for r in runs_a) / len(runs_a) - sum(r["loss"][i] for r in runs_b) / len(runs_b)
         for i in range(m)]
    mean = sum(d) / m
    return math.sqrt(sum((x - mean) ** 2 for x in d) / (m - 1) / m)
