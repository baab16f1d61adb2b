"""
The files of a training run: where its model comes from (ckpt.pt to resume: load_checkpoint; GPT-2 weights:
load_pretrained), what it keeps in out_dir (ckpt.pt, log.jsonl), the RNG states a checkpoint holds, and the
Ctrl-C/SIGTERM flag that triggers the last save. Writing and loading a checkpoint live here together, for
train.py, sample.py, analyze.py and convert.py.

A checkpoint is one torch.save'd dict of plain tensors, numbers and strings (torch.load(weights_only=True)
reads it): the model's state_dict and config, the optimizer state, the iteration, every RNG state, the
dataset name and its tokenizer (meta). It is written atomically: to `ckpt.pt.tmp<PID>` first, then
renamed over ckpt.pt, so a crash never leaves a half-written ckpt.pt. A process killed with kill -9 while
writing leaves its temporary behind; remove_stale_temporaries deletes those at the next start.
"""

import json
import os
import random
import re
import signal
import sys
from dataclasses import asdict, fields

import numpy as np
import torch

from model import GPT, GPTConfig, compact_crms_model


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
    save_atomically(ckpt, path)


def save_atomically(obj, path):
    """torch.save through a temporary file and a rename: a crash, kill or full disk never leaves half a
    checkpoint under the real name (and remove_stale_temporaries cleans up after a kill -9)."""
    tmp = temporary_path(path)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path, device="cpu"):
    """(model, checkpoint dict) from a ckpt.pt written by train.py or convert.py (or its out_dir)."""
    if os.path.isdir(path):
        path = os.path.join(path, "ckpt.pt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        config = dict(ckpt["model_config"])
        state = {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in ckpt["model"].items()}
    except Exception as err:  # a partial copy, a full disk, not a checkpoint at all
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0][:160]
        raise ValueError(f"damaged checkpoint {path} ({reason}): delete it or restore a good copy") from None
    compact = config.pop("compact", False) or ckpt.get("compact_crms", False)
    if compact:  # the inference model convert.py writes: (d-1)-dim stream, folded weights
        model = compact_crms_model(GPTConfig(**config))
    else:
        model = GPT(GPTConfig(**config))
    model.to(next(iter(state.values())).dtype)  # in the checkpoint's dtype: float64 resumes exactly
    model.load_state_dict(state)
    return model.to(device), ckpt


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


def read_checkpoint(path, device, hint):
    """load_checkpoint, every failure one line naming the file: a damaged file (load_checkpoint says
    so and what to do; hint adds what this command offers), or a readable one that does not fit model.py."""
    try:
        return load_checkpoint(path, device)
    except ValueError as e:
        if str(e).startswith("damaged checkpoint"):
            raise ValueError(f"{e}; {hint}") from None
        raise  # a configuration this code refuses: already one line
    except RuntimeError as e:  # load_state_dict: missing or unexpected weights
        lines = str(e).strip().splitlines()
        raise ValueError(f"checkpoint {path} does not fit this model.py: {' '.join(lines[:2])}") from None


def resume(path, cfg, meta, dataset, device, master):
    """(model, checkpoint) to continue from path; one-line ValueError if it is missing, damaged or was
    trained with another tokenizer. The checkpoint's architecture (and dtype) win over cfg."""
    if not os.path.exists(path):
        raise ValueError(f"init_from=resume but {path} does not exist (wrong --out_dir, or train from scratch first)")
    model, ckpt = read_checkpoint(path, device, "training from scratch needs --init_from=scratch")
    saved = ckpt["model_config"]
    user_set = {f.name for f in fields(model.config) if cfg[f.name] != f.default} - {"vocab_size"}
    ignored = [f"{k}={cfg[k]!r} (checkpoint: {saved[k]!r})" for k in sorted(user_set) if cfg[k] != saved.get(k, cfg[k])]
    if ignored and master:
        print(f"resume: model config comes from the checkpoint; ignored {', '.join(ignored)}")
    if ckpt.get("dataset") != dataset:
        tokenizer = lambda m: (m.get("tokenizer", "gpt2"), m.get("vocab_size"), m.get("chars"))  # noqa: E731
        if "meta" in ckpt and tokenizer(ckpt["meta"]) != tokenizer(meta):
            raise ValueError(f"checkpoint was trained on dataset {ckpt.get('dataset')!r}, whose tokenizer differs "
                             f"from {dataset!r}: pass --dataset={ckpt.get('dataset')}")
        if master:
            print(f"resume: checkpoint was trained on {ckpt.get('dataset')!r}, continuing on {dataset!r}")
    return model, ckpt


def pretrained(name, cfg, meta, dataset, master):
    """GPT-2 weights (a Hugging Face name or folder) cropped to cfg's block_size; ValueError if they do not fit."""
    if meta.get("tokenizer", "gpt2") != "gpt2":
        raise ValueError(f"init_from={name} needs a GPT-2-tokenized dataset; {dataset} is "
                         f"{meta.get('tokenizer')}-level (e.g. `python prepare.py shakespeare`)")
    if master:
        print(f"loading pretrained weights {name} ...")
    try:
        model = load_pretrained(name, dropout=cfg["dropout"])
    except OSError as e:  # offline, or a folder without a Hugging Face GPT-2
        raise ValueError(f"could not load {name}: {str(e).strip().splitlines()[0]}") from None
    if cfg["block_size"] > model.config.block_size:
        raise ValueError(f"bad value {cfg['block_size']} for block_size: {name} has only "
                         f"{model.config.block_size} positions")
    crop_block_size(model, cfg["block_size"])  # train (and later sample) with the shorter context
    return model


def load_pretrained(name_or_dir, dropout=0.0):
    """Hugging Face GPT-2 weights (gpt2, gpt2-medium, ... or a local save_pretrained folder) as our GPT."""
    try:
        from transformers import GPT2LMHeadModel
    except ImportError:
        raise SystemExit("GPT-2 weights need transformers: pip install transformers") from None
    hf = GPT2LMHeadModel.from_pretrained(name_or_dir)
    hc = hf.config
    model = GPT(GPTConfig(n_layer=hc.n_layer, n_head=hc.n_head, n_embd=hc.n_embd, block_size=hc.n_positions,
                          vocab_size=hc.vocab_size, norm_eps=hc.layer_norm_epsilon, mlp="gelu_tanh", dropout=dropout))
    ours = model.state_dict()
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    with torch.no_grad():
        for k, v in hf.state_dict().items():
            # skip the causal-mask buffers `h.N.attn.bias` / `.masked_bias` (NOT `attn.c_attn.bias`,
            # the QKV bias) and the head, which is tied to wte
            if k.endswith((".attn.bias", ".attn.masked_bias")) or k == "lm_head.weight":
                continue
            if k not in ours:
                raise ValueError(f"unexpected GPT-2 weight {k}")
            if k.endswith(conv1d):
                v = v.t()  # HF GPT-2 stores Conv1D weights as (in, out)
            ours[k][: v.shape[0]].copy_(v)  # wte: the padding rows keep their init; they are not classes
    return model


def crop_block_size(model, block_size):
    """Shorten the context of a (pretrained) model: keep the first block_size learned positions."""
    if block_size > model.config.block_size:
        raise ValueError(f"block_size {block_size} exceeds the model's {model.config.block_size} positions")
    model.config.block_size = block_size
    wpe = model.transformer.wpe
    if wpe is not None:
        wpe.weight = torch.nn.Parameter(wpe.weight[:block_size].detach().clone())
        wpe.num_embeddings = block_size


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


class RunLog:
    """Rank 0's console lines and log.jsonl rows (one JSON object per line), optionally also to wandb."""

    def __init__(self, tc, cfg, resume_iter, model, tokens_per_iter, world_size, device):
        self.path = os.path.join(tc.out_dir, "log.jsonl")
        self.model, self.tokens_per_iter, self.world_size, self.device = model, tokens_per_iter, world_size, device
        self.max_iters = tc.max_iters
        self.wandb_run = None
        if tc.wandb_log:
            import wandb  # train.py checked that it is installed
            self.wandb_run = wandb.init(project=tc.wandb_project, name=tc.wandb_run_name or tc.out_dir, config=cfg)
        rows = []
        if resume_iter is not None and os.path.exists(self.path):
            # keep the history up to the checkpoint; rows logged after it are redone by this run
            with open(self.path) as f:
                rows = [line for line in f if line.strip() and json.loads(line)["iter"] < resume_iter]
        with open(self.path, "w") as f:
            f.writelines(rows)

    def write(self, row):
        with open(self.path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        if self.wandb_run is not None:
            self.wandb_run.log(row, step=row["iter"])

    def train_row(self, it, losses, seconds, lr, grad_norm):
        """The mean loss of the len(losses) steps up to iteration it, which took seconds."""
        n = len(losses)
        row = {"iter": it, "loss": sum(losses) / n, "lr": lr, "tok_per_s": self.tokens_per_iter * n / seconds,
               "ms": 1000 * seconds / n}
        if grad_norm is not None:
            row["grad_norm"] = grad_norm.item()
        self.write(row)
        mfu = self.model.estimate_mfu(row["tok_per_s"] / self.world_size, device=self.device)
        eta = fmt_duration((self.max_iters - it - 1) * seconds / n)
        print(f"iter {it}: loss {row['loss']:.4f}, lr {lr:.2e}, {row['ms']:.1f} ms/iter, {row['tok_per_s']:,.0f} "
              f"tok/s" + (f", mfu {100 * mfu:.1f}%" if mfu is not None else "") + f", eta {eta}", flush=True)

    def eval_row(self, row, saved_path=None):
        self.write(row)
        print(f"eval iter {row['iter']}: train loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f}"
              + (f", saved {saved_path}" if saved_path else ""), flush=True)

    def finish(self):
        if self.wandb_run is not None:
            self.wandb_run.finish()


def fmt_duration(s):
    s = int(round(s))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")
