"""
The token data train.py reads: llm.c shards on disk, each dataset's meta.json, and BatchSampler, which
draws the batches. prepare.py writes these files (sources, tokenizers, downloads); this module only reads
them, and writes single shards.

Shard format (llm.c's, so the pre-tokenized FineWeb shards of llm.c / modded-nanogpt drop in unchanged):
  header  256 int32 = [20240520 (magic), 1 (version), ntokens, 0, ...]
  body    ntokens uint16 token ids
Layout: data/NAME/NAME_val_000000.bin, data/NAME/NAME_train_000001.bin, ... + data/NAME/meta.json.
meta.json "layout" says what a batch is (BatchSampler follows it):
  stream     documents joined into one token stream; a batch is random windows of block_size+1 tokens.
  documents  one document per row of row_length tokens, padded with meta["pad"] (c4's default, the LNS /
             Mix-LN papers' data); an epoch reads every row once, and targets at padding are -1.
"""
import json
import os
import re
import tempfile

import numpy as np

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
GPT2_EOT = 50256  # llm.c's shards are GPT-2 tokens: what a folder of shards without meta.json holds
GPT2_VOCAB = 50257
LAYOUTS = ("documents", "stream")
SHARD_RE = re.compile(r"^(.*)_(train|val)_(\d+)\.bin$")
UMASK = os.umask(0o022)
os.umask(UMASK)  # read once: temp files get the mode a plain open() would give


# ----------------------------------------------------------------------------------------------
# reading: batches, meta.json, shards

class BatchSampler:
    """Stateless random sampler over all shards of a split (exactly resumable: batch(index) depends only on
    seed, split and index, so the data position is just the batch index).

    The dataset's meta.json "layout" decides what a sample is:
    stream (the default): B windows of block_size+1 tokens, drawn with np.random.default_rng([seed, split_id,
    index]). The shard is chosen with probability
    proportional to its number of windows (so every window of the split is equally likely), then a
    uniform start inside it; y is x shifted by one token.
    documents (prepare.py c4, the LNS / Mix-LN papers' layout): every row once per epoch, as the papers' single
    pass over shuffled C4: batch(index) takes rows index*B ... index*B + B - 1 of an order permuted by
    np.random.default_rng([seed, split_id, epoch]), so it is still stateless and exactly resumable, and an eval
    of n batches reads n*B distinct rows. x = row[:block_size]; y[t] = row[t+1], as the papers' model shifts its
    labels; the last position of a full row predicts nothing, and targets that are padding are -1, which
    the loss ignores (the papers' labels = -100 at pad).
    Shards are memmapped and the gather is one vectorised fancy-index per shard.
    """

    def __init__(self, data_dir, name, split, batch_size, block_size, seed=1337):
        if split not in ("train", "val"):
            raise ValueError(f"bad split '{split}': choose from train, val")
        if batch_size < 1 or block_size < 1:
            raise ValueError(f"batch_size and block_size must be >= 1, got {batch_size} and {block_size}")
        self.split, self.batch_size, self.block_size, self.seed = split, int(batch_size), int(block_size), int(seed)
        self.split_id = 0 if split == "train" else 1
        folder = os.path.join(data_dir, name)
        paths = list_shards(folder, split)
        if not paths:
            raise FileNotFoundError(f"no {split} shards (*_{split}_*.bin) in {folder}; "
                                    f"prepare it with `python prepare.py ...` (see prepare.py --help)")
        meta = load_meta(data_dir, name) if os.path.exists(os.path.join(folder, "meta.json")) else {}
        self.layout = meta.get("layout", "stream")
        if self.layout not in LAYOUTS:
            raise ValueError(f"{folder}/meta.json: bad layout '{self.layout}': choose from {', '.join(LAYOUTS)}")
        self.shards = [read_shard(p) for p in paths]
        self.paths = paths
        self.num_tokens = int(sum(len(s) for s in self.shards))
        if self.layout == "documents":
            self._init_rows(folder, meta)
            return
        self.row_length = self.pad = None
        T1 = self.block_size + 1
        # number of window starts per shard; shards shorter than a window are never drawn
        self.windows = np.array([max(len(s) - T1 + 1, 0) for s in self.shards], dtype=np.int64)
        if self.windows.sum() == 0:
            raise ValueError(f"{split} split of {folder} has no shard with block_size+1={T1} tokens "
                             f"(largest shard: {max(len(s) for s in self.shards)} tokens); lower block_size")
        self.p = self.windows / self.windows.sum()

    def _init_rows(self, folder, meta):
        if not all(isinstance(meta.get(k), int) for k in ("row_length", "pad")):
            raise ValueError(f"{folder}/meta.json is damaged (documents layout without integer row_length and pad); "
                             f"re-create the dataset with prepare.py --overwrite")
        self.row_length, self.pad = meta["row_length"], meta["pad"]
        R = self.row_length
        # a shorter block_size keeps the first block_size positions of each row (the rest is not seen);
        # a longer one would need tokens the rows do not have
        if self.block_size > R:
            raise ValueError(f"block_size {self.block_size} exceeds the row_length {R} of {folder} (one document "
                             f"per row): use block_size <= {R}, or re-prepare with --row_length={self.block_size}")
        for path, shard in zip(self.paths, self.shards):
            if len(shard) % R:
                raise ValueError(f"{path}: {len(shard)} tokens is not a whole number of {R}-token rows; "
                                 f"the dataset is damaged, re-create it with prepare.py --overwrite")
        rows = np.array([len(s) // R for s in self.shards], dtype=np.int64)
        self.first_row = np.concatenate([[0], np.cumsum(rows)])  # global row index where each shard starts
        self.num_rows = int(self.first_row[-1])
        if self.num_rows == 0:
            raise ValueError(f"{self.split} split of {folder} has no rows")
        self._epoch, self._order = None, None  # the permutation of the epoch last read

    def row_order(self, epoch):
        """The order in which epoch `epoch` reads the rows: a permutation of 0 .. num_rows-1."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = np.random.default_rng([self.seed, self.split_id, int(epoch)]).permutation(self.num_rows)
        return self._order

    def batch(self, index):
        """(x, y) int64 CPU tensors of shape (B, T); y is the next token of each position (-1: no target)."""
        import torch
        if index < 0:
            raise ValueError(f"batch index must be >= 0, got {index}")
        if self.layout == "documents":
            return self._rows_batch(int(index))
        rng = np.random.default_rng([self.seed, self.split_id, int(index)])
        B, T1 = self.batch_size, self.block_size + 1
        which = rng.choice(len(self.shards), size=B, p=self.p) if len(self.shards) > 1 else np.zeros(B, np.int64)
        starts = rng.integers(0, self.windows[which])
        buf = np.empty((B, T1), dtype=np.int64)
        offs = np.arange(T1)
        for k in np.unique(which):
            rows = np.flatnonzero(which == k)
            buf[rows] = self.shards[k][starts[rows, None] + offs]
        t = torch.from_numpy(buf)
        return t[:, :-1].contiguous(), t[:, 1:].contiguous()

    def _rows_batch(self, index):
        import torch
        B, T, R = self.batch_size, self.block_size, self.row_length
        position = np.arange(index * B, (index + 1) * B)  # places in the endless sequence of epochs
        epoch, place = np.divmod(position, self.num_rows)
        rows = np.empty(B, dtype=np.int64)
        for e in np.unique(epoch):  # a batch spans two epochs at most (or more, for a split under B rows)
            rows[epoch == e] = self.row_order(e)[place[epoch == e]]
        which = np.searchsorted(self.first_row, rows, side="right") - 1
        starts = (rows - self.first_row[which]) * R
        n = min(T + 1, R)  # a full row has no token after its last position: that target stays -1
        buf = np.full((B, T + 1), -1, dtype=np.int64)
        offs = np.arange(n)
        for k in np.unique(which):
            sel = np.flatnonzero(which == k)
            buf[sel, :n] = self.shards[k][starts[sel, None] + offs]
        x, y = buf[:, :-1], buf[:, 1:].copy()
        y[y == self.pad] = -1  # padding is not a target (x keeps the pad ids: they only feed ignored positions)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)


def load_meta(data_dir, name, recreate=None):
    """meta.json of data_dir/name (what prepare.py wrote: tokenizer, vocab_size, layout, ...); for llm.c
    drop-ins without one, assume GPT-2 (vocab 50257). recreate: the command that re-creates the dataset, for
    the message about a damaged meta.json (prepare.ensure_prepared knows the exact one)."""
    folder = os.path.join(data_dir, name)
    path = os.path.join(folder, "meta.json")
    recreate = recreate or f"python prepare.py SOURCE --name {name} --data_dir {data_dir} --overwrite"
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                meta = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:  # a partial copy, a hand edit gone wrong
            raise ValueError(f"{path} is damaged ({e}); re-create the dataset: `{recreate}`") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("vocab_size"), int):
            raise ValueError(f"{path} is damaged (no integer vocab_size); re-create the dataset: `{recreate}`")
        return meta
    if list_shards(folder, "train") or list_shards(folder, "val"):
        return {"tokenizer": "gpt2", "vocab_size": GPT2_VOCAB, "eot": GPT2_EOT,
                "train_tokens": sum(read_header(p) for p in list_shards(folder, "train")),
                "val_tokens": sum(read_header(p) for p in list_shards(folder, "val"))}
    raise FileNotFoundError(f"no dataset in {folder} (no meta.json and no *_train_*.bin shards); "
                            f"run `python prepare.py SOURCE --name {name} --data_dir {data_dir}`")


def list_shards(folder, split):
    """Shard paths of one split in a dataset folder, sorted (accepts any NAME_split_NNNNNN.bin)."""
    if split not in ("train", "val"):
        raise ValueError(f"bad split '{split}': choose from train, val")
    if not os.path.isdir(folder):
        return []
    out = []
    for fn in os.listdir(folder):
        m = SHARD_RE.match(fn)
        if m and m.group(2) == split:
            out.append((int(m.group(3)), fn))
    return [os.path.join(folder, fn) for _, fn in sorted(out)]


def read_shard(path):
    """Return the tokens of an llm.c shard as a read-only np.memmap of uint16 (validated)."""
    ntok = read_header(path)
    if ntok == 0:
        return np.zeros(0, dtype=np.uint16)
    return np.memmap(path, dtype=np.uint16, mode="r", offset=HEADER_BYTES, shape=(ntok,))


def read_header(path):
    """Validate an llm.c shard header; return its token count. One-line ValueError on bad files."""
    size = os.path.getsize(path)
    if size < HEADER_BYTES:
        raise ValueError(f"{path}: truncated shard ({size} bytes, smaller than the {HEADER_BYTES}-byte header)")
    header = np.fromfile(path, dtype=np.int32, count=HEADER_INTS)
    if header[0] != MAGIC:
        raise ValueError(f"{path}: bad magic number {header[0]} (expected {MAGIC}); not an llm.c token shard")
    if header[1] != VERSION:
        raise ValueError(f"{path}: unsupported shard version {header[1]} (expected {VERSION})")
    ntok = int(header[2])
    expected = HEADER_BYTES + 2 * ntok
    if ntok < 0 or size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise ValueError(f"{path}: shard {what}: header says {ntok} tokens ({expected} bytes) but file has {size} bytes")
    return ntok


# ----------------------------------------------------------------------------------------------
# writing one shard

def write_shard(path, tokens):
    """Write an llm.c shard atomically: temp file in the same folder, then rename."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ValueError(f"write_shard {path}: tokens must be 1-D, got shape {tokens.shape}")
    if tokens.size and (tokens.min() < 0 or tokens.max() > 65535):
        raise ValueError(f"write_shard {path}: token ids must fit uint16 (0..65535), got {tokens.min()}..{tokens.max()}")
    header = np.zeros(HEADER_INTS, dtype=np.int32)
    header[0], header[1], header[2] = MAGIC, VERSION, tokens.size
    write_atomically(path, [header.tobytes(), tokens.astype(np.uint16, copy=False).tobytes()], suffix=".bin")


def write_atomically(path, chunks, prefix=".tmp-", suffix=""):
    """Write the byte chunks to path through a temp file in the same folder and a rename: a crash or a full
    disk never leaves half a file under the real name."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
