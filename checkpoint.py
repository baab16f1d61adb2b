"""
Checkpoint I/O, RNG state and stop signals for train.py (and sample.py's checkpoint reading).

A checkpoint is one torch.save'd dict of plain tensors, numbers and strings (torch.load(weights_only=True)
reads it): the model's state_dict and config, the optimizer state, the iteration, every RNG state, the
dataset name and its tokenizer (meta). It is written atomically: to `ckpt.pt.tmp<PID>` first, then
renamed over ckpt.pt, so a crash never leaves a half-written ckpt.pt. A process killed with kill -9 while
writing leaves its temporary behind; remove_stale_temporaries deletes those at the next start.
"""

import os
import pickle
import random
import re
import signal
import sys
from dataclasses import asdict

import numpy as np
import torch

from model import load_checkpoint


def rng_state():
    """Every RNG a run may draw from, as plain tensors/lists (torch.load(weights_only=True) reads them)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": random.getstate(),
    }


def set_rng_state(state):
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def temporary_path(path):
    return f"{path}.tmp{os.getpid()}"  # one writer per process; remove_stale_temporaries knows this pattern


def save_checkpoint(path, model, optimizers, cfg, iter_num, best_val_loss, dataset, meta):
    """Atomic write: a half-written file never replaces a good checkpoint (crash, kill, full disk)."""
    ckpt = {
        "model": model.state_dict(),  # the plain GPT: no DDP `module.` or compile `_orig_mod.` prefixes
        "model_config": asdict(model.config),
        "config": cfg,
        "optimizer": optimizers.state_dict(),
        "iter_num": iter_num,
        "best_val_loss": best_val_loss,
        "rng": rng_state(),
        "dataset": dataset,
        "meta": meta,  # tokenizer description, so sample.py works without the data folder
    }
    tmp = temporary_path(path)
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def process_alive(pid):
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def remove_stale_temporaries(path):
    """Delete `path.tmp<PID>` files left by killed writers (PID no longer running, or our own PID: this
    process has written nothing yet). Returns the names removed."""
    folder, name = os.path.split(path)
    pattern = re.compile(re.escape(name) + r"\.tmp(\d+)")
    removed = []
    for entry in sorted(os.listdir(folder or ".")):
        match = pattern.fullmatch(entry)
        if match and (int(match.group(1)) == os.getpid() or not process_alive(int(match.group(1)))):
            os.remove(os.path.join(folder, entry))
            removed.append(entry)
    return removed


def read_checkpoint(path, device, advice):
    """model.load_checkpoint, with a damaged file (truncated copy, full disk) turned into one line that
    names it and says what to do (advice); other ValueErrors (a config this code refuses) pass through."""
    try:
        return load_checkpoint(path, device)
    except ValueError as e:
        if not str(e).startswith("damaged checkpoint"):
            raise
        reason = str(e)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:  # torch.load on a broken zip/pickle
        lines = str(e).strip().splitlines() or [type(e).__name__]
        if lines[0].startswith("Error(s) in loading state_dict"):  # readable, but not this model.py's GPT
            raise ValueError(f"checkpoint {path} does not fit this model.py: {' '.join(lines[:2])}") from None
        reason = f"damaged checkpoint {path}: {lines[0]}"
    raise ValueError(f"{reason}; {advice}")


class StopSignal:
    """Ctrl-C / SIGTERM only set a flag (`signum`); the training loop then saves the last completed
    iteration and exits. A second signal kills at once."""

    def __init__(self):
        self.signum = 0
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self.handle)

    def handle(self, signum, frame):
        self.signum = signum
        signal.signal(signum, signal.SIG_DFL)
        print(f"\n{signal.Signals(signum).name}: stopping after this iteration and saving a checkpoint "
              f"(again to abort)", file=sys.stderr, flush=True)
