"""
Data preparation for nanonorm: sources (downloads, local files, Hugging Face datasets) and tokenizers
(char, GPT-2 BPE, T5), written as llm.c token shards + meta.json. The shard format, meta.json and the
batches train.py draws from them are data.py's.

With the GPT-2 tokenizer every document is prefixed by EOT (50256); with the T5 tokenizer
(the LNS / Mix-LN papers' C4 setup) followed by </s> (1); char-level data has no EOT (documents are
joined with "\n\n", as nanoGPT's shakespeare_char).
Layout: data/NAME/NAME_val_000000.bin, data/NAME/NAME_train_000001.bin, ... + data/NAME/meta.json.
Split: the last --val_frac of the tokens of each source go to val (nanoGPT's 90/10 for val_frac=0.1).
Two ways to lay the tokens out (meta.json "layout"; data.BatchSampler follows it):
  stream     documents joined into one token stream; a batch is random windows of block_size+1 tokens.
  documents  (c4's default, the LNS / Mix-LN papers' code) one document per row of row_length tokens, as
             tokenizer(text, max_length=row_length, truncation=True, padding="max_length") gives it: the
             first row_length-1 tokens + </s>, then <pad> (0); the rest of a longer document is dropped.
             An epoch reads every row once in a seeded order; targets at padding are -1 (ignored by the loss).

Usage:
  python prepare.py python_docs                      # offline: the CPython reference text, char-level
  python prepare.py python_docs --tokenizer=gpt2     # -> data/python_docs_gpt2
  python prepare.py shakespeare_char                 # downloaded once (checksummed); offline: --input input.txt
  python prepare.py shakespeare                      # GPT-2 BPE (the same text)
  python prepare.py books                            # 4 public-domain books (the CPU studies' corpus), char-level
  python prepare.py books --input DIR_OR_FILES       # the same from local copies (checked against the checksums)
  python prepare.py text --input a.txt folder/ --name mytext --tokenizer=char|gpt2
  python prepare.py fineweb10B --shards 8            # llm.c shards from kjj0/fineweb10B-gpt2
  python prepare.py fineweb_edu --shards 1           # HuggingFaceFW/fineweb-edu sample-10BT, tokenized here
  python prepare.py tinystories
  python prepare.py c4                               # allenai/c4 en + T5, one document per 256-token row (the LNS / Mix-LN papers' data)
  python prepare.py c4 --layout=stream --tokens=2.7e9  # the same documents as one token stream
Library: prepare, ensure_prepared, get_tokenizer (write_shard, read_shard, load_meta, BatchSampler are
data.py's; prepare.py re-exports them so that `prepare.write_shard` keeps working).
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import time

import numpy as np

from data import (GPT2_EOT, GPT2_VOCAB, LAYOUTS, UMASK, list_shards, load_meta, read_header, write_atomically,
                  write_shard)
from data import BatchSampler, read_shard  # noqa: F401  (re-exported: prepare.BatchSampler still works)

# T5 tokenizer of the LNS / Mix-LN code (AutoTokenizer.from_pretrained("t5-base")): 32,000 SentencePiece
# pieces, </s> = 1 after every document (as its add_special_tokens does), <unk> = 2. Its 100 <extra_id_N>
# sentinels (ids 32000-32099) are not language: the papers' model has vocab 32000, so they map to <unk>.
T5_NAME = "google-t5/t5-base"
T5_VOCAB = 32000
T5_PAD, T5_EOS, T5_UNK = 0, 1, 2
C4_VAL_TOKENS = 10_000_000  # the papers' evaluation reads 10M (non-pad) tokens of C4's validation split
C4_DEFAULT_TOKENS = 20000 * 512 * 256  # as much as config/llama-130m.py draws: 20k steps x 512 rows x 256 positions
C4_ROW_LENGTH = 256  # the papers' --max_length
# the papers' code streams C4 through datasets' shuffle (shard order + a 1000-document buffer) with these seeds
C4_SHUFFLE_SEEDS = {"train": 32, "validation": 42}
SHARD_SIZE = 10**8  # tokens per shard, as llm.c
PARALLEL_MIN_CHARS = 4_000_000  # below this, tokenizing in-process beats starting a Pool


class Book:
    """One file of the books corpus: where to download it and the SHA-256 of the file as served."""

    def __init__(self, name, title, url, sha256):
        self.name, self.title, self.url, self.sha256 = name, title, url, sha256


# The corpus of the CPU studies (README "Results"): ~8.8M characters, 2.4M GPT-2 tokens. The checksums are
# those of the files the studies used: Project Gutenberg's UTF-8 releases of 2016-2018 (CRLF line endings,
# read as LF) and char-rnn's input.txt at a fixed commit. Gutenberg revises its ebooks now and then: a
# revised release fails the check and nothing is written (the message says how to use it anyway).
BOOKS = [
    Book("les_miserables", "Les Miserables, Victor Hugo (tr. Isabel F. Hapgood), Gutenberg #135",
         "https://www.gutenberg.org/files/135/135-0.txt",
         "a878fd45f6d14808624d71154c1c1c75f64cb71ca5537f79bed1454255329004"),
    Book("moby_dick", "Moby Dick; or The Whale, Herman Melville, Gutenberg #2701",
         "https://www.gutenberg.org/files/2701/2701-0.txt",
         "baf9b04fcf6e0008f30eaaa6697277751448c1070b20175e0082f28cbb161fd3"),
    Book("tinyshakespeare", "tiny Shakespeare (Karpathy's char-rnn input.txt, 1,115,394 bytes)",
         "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/"
         "data/tinyshakespeare/input.txt",
         "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    Book("war_and_peace", "War and Peace, Leo Tolstoy (tr. Louise and Aylmer Maude), Gutenberg #2600",
         "https://www.gutenberg.org/files/2600/2600-0.txt",
         "6cbcc5ca5e590fb9ace161a5b93e4ecf280d7118104be0d63b686c004cfa70ae"),
]
BOOK_BY_NAME = {b.name: b for b in BOOKS}
DOWNLOADS = "_downloads"  # data_dir/_downloads/: verified downloads, reused by later runs

# source -> (default tokenizer, allowed tokenizers)
SOURCES = {
    "python_docs": ("char", ("char", "gpt2", "t5")),
    "books": ("char", ("char", "gpt2", "t5")),
    "shakespeare_char": ("char", ("char",)),
    "shakespeare": ("gpt2", ("gpt2", "char")),
    "text": ("gpt2", ("gpt2", "char", "t5")),
    "c4": ("t5", ("t5", "gpt2")),
    "tinystories": ("gpt2", ("gpt2", "char")),
    "fineweb_edu": ("gpt2", ("gpt2",)),
    "fineweb10B": ("gpt2", ("gpt2",)),
}


# ----------------------------------------------------------------------------------------------
# tokenizers

def _gpt2():
    try:
        import tiktoken
    except ImportError:
        raise SystemExit("the gpt2 tokenizer needs tiktoken: `pip install tiktoken` (or use --tokenizer=char)")
    try:
        return tiktoken.get_encoding("gpt2")  # downloads the BPE files once, or reads TIKTOKEN_CACHE_DIR
    except Exception as e:
        raise SystemExit(f"could not load the GPT-2 BPE files ({type(e).__name__}); offline, set "
                         f"TIKTOKEN_CACHE_DIR to a folder holding tiktoken's cached gpt2 files, or use --tokenizer=char")


_T5 = {}


def _load_t5(name):
    """transformers' T5 tokenizer (the fast one: no sentencepiece needed); tests stand in for it here."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise SystemExit("the t5 tokenizer needs the optional package transformers: `pip install transformers` "
                         "(or use --tokenizer=gpt2)") from None
    try:
        tok = AutoTokenizer.from_pretrained(name)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise SystemExit(f"could not load the T5 tokenizer {name} ({type(e).__name__}: {msg[:200]}); it comes from "
                         f"the Hugging Face hub once and is cached in HF_HOME; offline, use --tokenizer=gpt2 or char") from None
    tok.model_max_length = 10**12  # we tokenize whole documents; no "longer than 512" warnings
    return tok


def _t5(name=T5_NAME):
    if name not in _T5:
        _T5[name] = _load_t5(name)
    return _T5[name]


def t5_ids(tok, texts):
    """Token ids (list of int64 arrays) of a batch of texts, no </s>; sentinel ids mapped to <unk>."""
    out = []
    for ids in tok(list(texts), add_special_tokens=False)["input_ids"]:
        a = np.asarray(ids, dtype=np.int64)
        a[a >= T5_VOCAB] = T5_UNK
        out.append(a)
    return out


def t5_tokenize_docs(docs, total=None, batch=1024):
    """Yield one uint16 array (tokens + </s>) per document; batches go to the fast tokenizer's threads."""
    import itertools
    tok = _t5()
    docs = iter(docs)

    def run():
        while True:
            block = list(itertools.islice(docs, batch))
            if not block:
                return
            for a in t5_ids(tok, block):
                yield np.append(a, T5_EOS).astype(np.uint16)
    yield from _progress(run(), total=total, desc="tokenizing", unit="docs")


def document_row(doc, row_length, pad=T5_PAD):
    """One document (its tokens + </s>) as the papers' code makes a row of it: tokenizer(text,
    max_length=row_length, truncation=True, padding="max_length") keeps the first row_length-1 tokens,
    then </s> (truncation leaves room for it), then <pad> up to row_length. The rest is dropped."""
    body = doc[:-1][:row_length - 1]
    row = np.full(row_length, pad, dtype=np.uint16)
    row[:len(body)] = body
    row[len(body)] = doc[-1]
    return row


def t5_meta():
    return {"tokenizer": "t5", "tokenizer_name": T5_NAME, "vocab_size": T5_VOCAB, "eot": T5_EOS}


def get_tokenizer(meta):
    """(encode: str -> list[int], decode: list[int] -> str) for a dataset's meta dict."""
    kind = meta.get("tokenizer", "gpt2")
    if kind == "char":
        chars = meta["chars"]
        stoi = {c: i for i, c in enumerate(chars)}

        def encode(s):
            try:
                return [stoi[c] for c in s]
            except KeyError as e:
                raise ValueError(f"character {e.args[0]!r} is not in this char-level vocabulary "
                                 f"({len(chars)} chars)") from None

        def decode(ids):
            return "".join(chars[int(i)] for i in ids)
        return encode, decode
    if kind == "gpt2":
        enc = _gpt2()
        return (lambda s: enc.encode(s, allowed_special={"<|endoftext|>"})), (lambda ids: enc.decode([int(i) for i in ids]))
    if kind == "t5":
        tok = _t5(meta.get("tokenizer_name", T5_NAME))
        return (lambda s: [int(i) for i in t5_ids(tok, [s])[0]]), (lambda ids: tok.decode([int(i) for i in ids]))
    raise ValueError(f"bad tokenizer '{kind}' in meta.json: choose from char, gpt2, t5")


def char_vocab(text):
    """Sorted set of the characters of text (vectorised through UTF-32 code points)."""
    cps = np.unique(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32))
    if len(cps) > 65536:
        raise ValueError(f"char vocabulary of {len(cps)} characters does not fit uint16 shards")
    return [chr(c) for c in cps]


def char_encode(text, chars):
    """Encode text with a sorted char vocabulary, vectorised (searchsorted over code points)."""
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    vocab = np.array([ord(c) for c in chars], dtype=np.uint32)
    ids = np.searchsorted(vocab, cps)
    ids = np.minimum(ids, len(vocab) - 1)
    if not np.array_equal(vocab[ids], cps):
        bad = chr(int(cps[np.flatnonzero(vocab[ids] != cps)[0]]))
        raise ValueError(f"character {bad!r} is not in the char vocabulary")
    return ids.astype(np.uint16)


_ENC = None


def _pool_init():
    global _ENC
    _ENC = _gpt2()


def _gpt2_doc(text):
    """Worker: EOT + tokens of one document as uint16."""
    enc = _ENC if _ENC is not None else _gpt2()
    return np.array([GPT2_EOT] + enc.encode_ordinary(text), dtype=np.uint16)


def _progress(iterable, total=None, desc="", unit="it"):
    """tqdm when installed, else a plain print every ~10%."""
    try:
        from tqdm import tqdm
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr)
    except ImportError:
        def plain():
            step, t0 = max(1, (total or 0) // 10), time.time()
            for i, x in enumerate(iterable, 1):
                if total and (i % step == 0 or i == total) or (not total and i % 10000 == 0):
                    print(f"{desc}: {i}/{total or '?'} {unit} ({time.time() - t0:.0f}s)", flush=True)
                yield x
        return plain()


def gpt2_tokenize_docs(docs, total=None, num_proc=None, big=False):
    """Yield one uint16 array (EOT + tokens) per document; a multiprocessing Pool for big inputs."""
    if not big:
        _pool_init()
        yield from _progress((_gpt2_doc(d) for d in docs), total=total, desc="tokenizing", unit="docs")
        return
    import itertools
    import multiprocessing as mp
    _gpt2()  # fail fast (one clear message) before forking workers
    nproc = num_proc or max(1, min(8, (os.cpu_count() or 2) - 1))
    docs = iter(docs)

    def run():
        with mp.Pool(nproc, initializer=_pool_init) as pool:
            # feed the pool in blocks: Pool.imap would drain a streamed dataset into its task queue
            while True:
                block = list(itertools.islice(docs, 4096))
                if not block:
                    return
                yield from pool.imap(_gpt2_doc, block, chunksize=16)
    yield from _progress(run(), total=total, desc="tokenizing", unit="docs")


# ----------------------------------------------------------------------------------------------
# writing a dataset

class DatasetWriter:
    """Writes train/val shards into a temp folder; commit() renames it to data_dir/name atomically.

    Train shards are numbered from 000001 and val from 000000 (llm.c naming). Token streams are
    split so that the last val_frac of each source goes to val.
    """

    def __init__(self, data_dir, name, shard_size=SHARD_SIZE, overwrite=False):
        self.final = os.path.join(data_dir, name)
        self.name, self.shard_size, self.overwrite = name, int(shard_size), overwrite
        if os.path.exists(self.final) and not overwrite:
            raise SystemExit(f"{self.final} already exists; pass --overwrite to re-prepare it")
        os.makedirs(data_dir, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=data_dir)
        self.next_id = {"val": 0, "train": 1}
        self.buf = {"val": [], "train": []}
        self.nbuf = {"val": 0, "train": 0}
        self.count = {"val": 0, "train": 0}

    def add(self, split, tokens):
        """Append tokens to a split; full shards are flushed to disk as they fill."""
        if len(tokens) == 0:
            return
        self.buf[split].append(np.asarray(tokens, dtype=np.uint16))
        self.nbuf[split] += len(tokens)
        self.count[split] += len(tokens)
        while self.nbuf[split] >= self.shard_size:
            self._flush(split, self.shard_size)

    def _flush(self, split, n):
        allt = np.concatenate(self.buf[split])
        self._write(split, allt[:n])
        rest = allt[n:]
        self.buf[split], self.nbuf[split] = ([rest] if len(rest) else []), len(rest)

    def _write(self, split, tokens):
        path = os.path.join(self.tmp, f"{self.name}_{split}_{self.next_id[split]:06d}.bin")
        write_shard(path, tokens)
        self.next_id[split] += 1

    def add_source(self, tokens, val_frac):
        """A whole (in-memory) source: the first (1 - val_frac) go to train, the rest to val."""
        n_train = int(len(tokens) * (1 - val_frac))
        self.add("train", tokens[:n_train])
        self.add("val", tokens[n_train:])

    def add_stream(self, arrays, val_frac, train_budget=None):
        """A streamed source of token arrays (documents) of unknown total length.

        With train_budget (tokens), the stream is cut at train_budget / (1 - val_frac) tokens, the
        first train_budget go to train (written as shards fill), the rest to val. Without a budget
        the whole source is held in memory and split with add_source.
        """
        if train_budget is None:
            parts = list(arrays)
            self.add_source(np.concatenate(parts) if parts else np.zeros(0, np.uint16), val_frac)
            return
        n_val_target = int(round(train_budget * val_frac / (1 - val_frac)))
        start_train, start_val = self.count["train"], self.count["val"]
        for a in arrays:
            room_t = train_budget - (self.count["train"] - start_train)
            t = a[:max(room_t, 0)]
            self.add("train", t)
            rest = a[len(t):]
            if len(rest):
                self.add("val", rest[: max(n_val_target - (self.count["val"] - start_val), 0)])
            if room_t <= len(t) and self.count["val"] - start_val >= n_val_target:
                return
        # source exhausted before the budget: carve val out of the tail of what we have
        have = self.count["train"] - start_train + self.count["val"] - start_val
        need = have - int(have * (1 - val_frac)) - (self.count["val"] - start_val)
        if need > 0 and self.nbuf["train"]:
            allt = np.concatenate(self.buf["train"])
            take = min(need, len(allt))
            if take < need:
                print(f"warning: val split holds {take} tokens, less than val_frac of the source")
            self.buf["train"], self.nbuf["train"] = [allt[: len(allt) - take]], len(allt) - take
            self.count["train"] -= take
            self.add("val", allt[len(allt) - take:])

    def add_budget(self, split, arrays, budget):
        """Append documents to one split until it holds budget tokens (the last one is cut); returns the count."""
        n = 0
        for a in arrays:
            take = a[: budget - n]
            self.add(split, take)
            n += len(take)
            if n >= budget:
                break
        return n

    def commit(self, meta):
        """Flush partial shards, write meta.json, and move the folder into place."""
        for split in ("val", "train"):
            if self.nbuf[split]:
                self._flush(split, self.nbuf[split])
        if self.count["train"] == 0:
            self.abort()
            raise SystemExit(f"no training tokens produced for {self.final}; is the input empty?")
        meta = dict(meta, train_tokens=self.count["train"], val_tokens=self.count["val"])
        tmp_meta = os.path.join(self.tmp, "meta.json.tmp")
        with open(tmp_meta, "w") as f:
            json.dump(meta, f, indent=1)
        os.replace(tmp_meta, os.path.join(self.tmp, "meta.json"))
        os.chmod(self.tmp, 0o777 & ~UMASK)
        old = None
        if os.path.exists(self.final):
            if not self.overwrite:  # someone else prepared it meanwhile (e.g. another DDP rank)
                self.abort()
                return self.final
            old = self.final + f".old-{os.getpid()}"
            os.rename(self.final, old)
        try:
            os.rename(self.tmp, self.final)
        except OSError:
            if os.path.isdir(self.final) and old is None:  # lost a race: the other copy is complete
                self.abort()
                return self.final
            raise
        if old:
            shutil.rmtree(old, ignore_errors=True)
        print(f"wrote {self.final}: {self.count['train']:,} train tokens, {self.count['val']:,} val tokens "
              f"({meta['tokenizer']}, vocab {meta['vocab_size']})")
        return self.final

    def abort(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_documents(writer, sources, tokenizer, val_frac, num_proc=None):
    """Tokenize and write in-memory sources (each a list of document strings); return meta."""
    if tokenizer == "char":
        # sources are joined by a blank line too, so no word runs across a source boundary
        texts = [("\n\n" if i else "") + "\n\n".join(docs) for i, docs in enumerate(sources)]
        chars = char_vocab("\n\n".join(texts))
        for t in texts:
            writer.add_source(char_encode(t, chars), val_frac)
        return {"tokenizer": "char", "vocab_size": len(chars), "chars": chars, "eot": None}
    if tokenizer == "t5":
        for docs in sources:
            writer.add_stream(t5_tokenize_docs(docs, total=len(docs)), val_frac)
        return t5_meta()
    for docs in sources:
        big = sum(len(d) for d in docs) >= PARALLEL_MIN_CHARS and len(docs) > 1
        writer.add_stream(gpt2_tokenize_docs(docs, total=len(docs), num_proc=num_proc, big=big), val_frac)
    return {"tokenizer": "gpt2", "vocab_size": GPT2_VOCAB, "eot": GPT2_EOT}


# ----------------------------------------------------------------------------------------------
# sources

def python_docs_documents():
    """The English reference text shipped inside CPython (pydoc_data.topics): one document per topic."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise SystemExit("this Python install lacks pydoc_data.topics; use `python prepare.py text --input FILE --name NAME`")
    return [topics[k] for k in sorted(topics)]


def read_text_inputs(paths):
    """Each --input path is one source; a folder contributes every file under it (sorted), one doc each."""
    sources = []
    for p in paths:
        if os.path.isdir(p):
            files = sorted(os.path.join(r, f) for r, _, fs in os.walk(p) for f in fs if not f.startswith("."))
        elif os.path.isfile(p):
            files = [p]
        else:
            raise SystemExit(f"--input {p}: no such file or folder")
        docs = []
        for fp in files:
            try:
                with open(fp, encoding="utf-8") as f:
                    docs.append(f.read())
            except UnicodeDecodeError:
                print(f"skipping {fp}: not UTF-8 text")
        if not docs:
            raise SystemExit(f"--input {p}: no readable text files")
        sources.append(docs)
    return sources


class DownloadError(OSError):
    """A file could not be fetched (no network, a server error): the caller may fall back to offline data."""


def _open_url(url):
    """The HTTP response for url (its own function so that tests can stand in for the network)."""
    import urllib.request
    return urllib.request.urlopen(url, timeout=60)


def download_book(book, cache_dir):
    """Path of the verified copy of a book in cache_dir; downloads it when missing or damaged.

    The file appears only once its checksum matched (written to a temp file, then renamed), so an
    interrupted or rejected download leaves nothing behind. DownloadError when the server cannot be
    reached; SystemExit when what it sent is not the expected text.
    """
    path = os.path.join(cache_dir, book.name + ".txt")
    if os.path.exists(path):
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() == book.sha256:
                return path
        print(f"{path} does not match its checksum (damaged?): downloading it again")
    print(f"downloading {book.name} from {book.url} ...", flush=True)
    try:
        with _open_url(book.url) as response:
            data = response.read()
    except (OSError, http.client.HTTPException) as e:  # URLError, HTTPError, timeouts, a cut connection
        msg = str(e).splitlines()[0] if str(e) else ""
        raise DownloadError(f"could not download {book.name} from {book.url} ({type(e).__name__}: {msg[:200]})") from None
    got = hashlib.sha256(data).hexdigest()
    if got != book.sha256:
        raise SystemExit(f"{book.url} sent {len(data):,} bytes with sha256 {got}, not the expected {book.sha256} "
                         f"({book.title}); nothing was written. A damaged download: try again; a revised ebook: pass "
                         f"your copy as --input FOLDER_OR_FILE named {book.name}.txt (the data then differs from the README's)")
    os.makedirs(cache_dir, exist_ok=True)
    write_atomically(path, [data], prefix=f".{book.name}.tmp-")
    return path


def books_sources(inputs, cache_dir):
    """The books as sources (one document each, in BOOKS order) and a record per book for meta.json.

    Local copies given with --input (files named like the books, or folders holding such files) are
    used as given, with a note when their checksum differs; the other books are downloaded into
    cache_dir (DownloadError when offline). Reading a file is the text source's reading, so
    `books --input` of the four files writes the same tokens as `text --input` of them.
    """
    local = {}
    for p in inputs:
        if os.path.isdir(p):
            files = sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".txt"))
        elif os.path.isfile(p):
            files = [p]
        else:
            raise SystemExit(f"--input {p}: no such file or folder")
        for fp in files:
            stem = os.path.splitext(os.path.basename(fp))[0]
            if stem not in BOOK_BY_NAME:
                raise SystemExit(f"--input {fp}: '{stem}' is not one of the books: name the files "
                                 f"{', '.join(b.name + '.txt' for b in BOOKS)} (other text: the text source)")
            local[stem] = fp
    paths = {b.name: local.get(b.name) or download_book(b, cache_dir) for b in BOOKS}  # all, before writing
    sources, records = [], []
    for b in BOOKS:
        with open(paths[b.name], "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if got != b.sha256:
            print(f"note: {paths[b.name]} is not the copy the CPU studies used (sha256 {got[:16]}..., expected "
                  f"{b.sha256[:16]}...): using it as given; meta.json records its checksum")
        try:
            with open(paths[b.name], encoding="utf-8") as f:
                sources.append([f.read()])
        except UnicodeDecodeError:
            raise SystemExit(f"{paths[b.name]}: not UTF-8 text") from None
        records.append({"name": b.name, "sha256": got, "canonical": got == b.sha256})
    return sources, records


def shakespeare_text(inputs, data_dir):
    """tiny Shakespeare: the local copy given with --input, else the checksummed download (kept in
    data_dir/_downloads for later runs)."""
    if inputs:
        return "".join("".join(d) for d in read_text_inputs(inputs))
    try:
        path = download_book(BOOK_BY_NAME["tinyshakespeare"], os.path.join(data_dir, DOWNLOADS))
    except DownloadError as e:
        raise SystemExit(f"{e}; offline, pass a local copy with --input PATH") from None
    with open(path, encoding="utf-8") as f:
        return f.read()


def _need(module, pip):
    try:
        return __import__(module)
    except ImportError:
        raise SystemExit(f"this source needs the optional package {pip}: `pip install {pip}`")


def _download_error(what, e):
    msg = str(e).splitlines()[0] if str(e) else ""
    return SystemExit(f"could not download {what} ({type(e).__name__}: {msg[:200]}); offline, use "
                      f"`python prepare.py text --input FILE_OR_FOLDER --name NAME` or `python prepare.py python_docs`")


def hf_text_stream(repo, config, split, streaming, what):
    datasets = _need("datasets", "datasets")
    try:
        ds = datasets.load_dataset(repo, name=config, split=split, streaming=streaming)
    except Exception as e:
        raise _download_error(what, e)
    return ds


def prepare_fineweb10B(args, name):
    """Download llm.c shards of kjj0/fineweb10B-gpt2 (val + --shards train) via huggingface_hub."""
    hub = _need("huggingface_hub", "huggingface_hub")
    writer = DatasetWriter(args.data_dir, name, overwrite=args.overwrite)
    shards = args.shards or 1
    files = ["fineweb_val_000000.bin"] + [f"fineweb_train_{i:06d}.bin" for i in range(1, shards + 1)]
    counts = {"train": 0, "val": 0}
    try:
        for fn in _progress(files, total=len(files), desc="downloading", unit="shards"):
            try:
                p = hub.hf_hub_download(repo_id="kjj0/fineweb10B-gpt2", filename=fn, repo_type="dataset",
                                        local_dir=writer.tmp)
            except Exception as e:
                raise _download_error(f"{fn} from kjj0/fineweb10B-gpt2", e)
            counts["val" if "_val_" in fn else "train"] += read_header(p)  # validate what we got
        shutil.rmtree(os.path.join(writer.tmp, ".cache"), ignore_errors=True)
    except BaseException:
        writer.abort()
        raise
    writer.count = counts
    return writer.commit({"tokenizer": "gpt2", "vocab_size": GPT2_VOCAB, "eot": GPT2_EOT,
                          "source": "kjj0/fineweb10B-gpt2"})


def prepare_c4(writer, tok, tokens, val_tokens, num_proc=None, layout="stream", row_length=C4_ROW_LENGTH):
    """allenai/c4 en, streamed. Returns meta.

    stream: documents in the dataset's order, the first val_tokens of its validation split to val, the first
    tokens of its train split to train (the last document cut). documents: as the papers' code, each split is shuffled with its seed
    and each document becomes one row (document_row); train gets ceil(tokens / row_length) rows, val
    the first rows that hold val_tokens non-pad tokens (the papers' evaluation stops there).
    """
    if tok == "t5":
        _t5()  # fail fast, before any download
    else:
        _gpt2()

    def tokenized(split):
        rows = hf_text_stream("allenai/c4", "en", split, True, f"allenai/c4 en {split}")
        if layout == "documents":
            rows = rows.shuffle(seed=C4_SHUFFLE_SEEDS[split])
        docs = (row["text"] for row in rows)
        return t5_tokenize_docs(docs) if tok == "t5" else gpt2_tokenize_docs(docs, num_proc=num_proc, big=True)

    if layout == "documents":
        train_rows = -(-tokens // row_length)
        got = {"val": add_rows(writer, "val", tokenized("validation"), row_length, nonpad_budget=val_tokens),
               "train": add_rows(writer, "train", tokenized("train"), row_length, row_budget=train_rows)}
        if got["val"][1] < val_tokens:
            print(f"warning: C4's val split ended after {got['val'][1]:,} of the {val_tokens:,} non-pad tokens asked for")
        if got["train"][0] < train_rows:
            print(f"warning: C4's train split ended after {got['train'][0]:,} of the {train_rows:,} rows asked for")
        print(f"rows of {row_length}: train {got['train'][0]:,} ({got['train'][1]:,} non-pad tokens), "
              f"val {got['val'][0]:,} ({got['val'][1]:,} non-pad tokens)")
        return dict(t5_meta(), layout="documents", row_length=row_length, pad=T5_PAD,
                    train_rows=got["train"][0], val_rows=got["val"][0],
                    train_nonpad_tokens=got["train"][1], val_nonpad_tokens=got["val"][1],
                    shuffle_seeds=C4_SHUFFLE_SEEDS,
                    counts="train_tokens/val_tokens count row positions (rows x row_length, padding included); "
                           "*_nonpad_tokens count the documents' tokens and </s> (the papers' 'tokens')")
    got = {"val": writer.add_budget("val", tokenized("validation"), val_tokens),
           "train": writer.add_budget("train", tokenized("train"), tokens)}
    for split, want in (("val", val_tokens), ("train", tokens)):
        if got[split] < want:
            print(f"warning: C4's {split} split ended after {got[split]:,} of the {want:,} tokens asked for")
    return dict(t5_meta() if tok == "t5" else {"tokenizer": "gpt2", "vocab_size": GPT2_VOCAB, "eot": GPT2_EOT},
                layout="stream")


def add_rows(writer, split, docs, row_length, row_budget=None, nonpad_budget=None):
    """Write one row per document (document_row) to a split until it holds row_budget rows or
    nonpad_budget non-pad tokens; returns (rows, non-pad tokens)."""
    rows = nonpad = 0
    for doc in docs:
        writer.add(split, document_row(doc, row_length))
        rows += 1
        nonpad += min(len(doc), row_length)
        if row_budget is not None and rows >= row_budget or nonpad_budget is not None and nonpad >= nonpad_budget:
            break
    return rows, nonpad


def default_name(source, tokenizer, inputs):
    if source == "text":
        if not inputs:
            raise SystemExit("text needs --input PATH [PATH ...] (files or folders; each file is a document)")
        return os.path.splitext(os.path.basename(os.path.normpath(inputs[0])))[0]
    return source if tokenizer == SOURCES[source][0] else f"{source}_{tokenizer}"


def prepare(source, tokenizer=None, name=None, inputs=None, data_dir="data", val_frac=0.1, shards=None,
            shard_size=SHARD_SIZE, overwrite=False, num_proc=None, tokens=None, val_tokens=None, layout=None,
            row_length=None):
    """Prepare one dataset (library form of the CLI); returns the folder written."""
    args = argparse.Namespace(source=source, tokenizer=tokenizer, name=name, input=inputs or [], data_dir=data_dir,
                              val_frac=val_frac, shards=shards, shard_size=shard_size, overwrite=overwrite,
                              num_proc=num_proc, tokens=tokens, val_tokens=val_tokens, layout=layout,
                              row_length=row_length)
    return _prepare(args)


def _prepare(args):
    if args.source not in SOURCES:
        raise SystemExit(f"bad source '{args.source}': choose from {', '.join(SOURCES)}")
    default_tok, allowed = SOURCES[args.source]
    tok = args.tokenizer or default_tok
    if tok not in allowed:
        hint = " (use the shakespeare source for GPT-2 BPE)" if args.source == "shakespeare_char" else ""
        raise SystemExit(f"bad tokenizer '{tok}' for {args.source}: choose from {', '.join(allowed)}{hint}")
    if not 0 <= args.val_frac < 1:
        raise SystemExit(f"bad --val_frac {args.val_frac}: must be in [0, 1)")
    if args.shards is not None and args.shards < 1:
        raise SystemExit(f"bad --shards {args.shards}: must be >= 1")
    for flag in ("tokens", "val_tokens"):
        value = getattr(args, flag, None)
        if value is not None and args.source != "c4":
            raise SystemExit(f"--{flag} is for the c4 source, not {args.source}")
        if value is not None and value < 1:
            raise SystemExit(f"bad --{flag} {value}: must be >= 1")
    layout, row_length, shard_size = c4_layout(args, tok)
    name = args.name or default_name(args.source, tok, args.input)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
        raise SystemExit(f"bad --name '{name}': use letters, digits, '_', '-', '.' only")
    if args.input and args.source not in ("text", "books", "shakespeare", "shakespeare_char"):
        raise SystemExit(f"--input is for the text, books and shakespeare sources, not {args.source}")
    if args.source == "fineweb10B":
        return prepare_fineweb10B(args, name)

    meta_extra = {"source": args.source}
    # gather everything that can fail (downloads, missing files) before creating folders
    if args.source == "python_docs":
        sources = [python_docs_documents()]
    elif args.source in ("shakespeare", "shakespeare_char"):
        sources = [[shakespeare_text(args.input, args.data_dir)]]
    elif args.source == "books":
        try:
            sources, meta_extra["books"] = books_sources(args.input, os.path.join(args.data_dir, DOWNLOADS))
        except DownloadError as e:
            fallback = "python_docs" if tok == SOURCES["python_docs"][0] else f"python_docs_{tok}"
            print(f"{e}: no network? using the offline python_docs dataset (CPython's reference text) "
                  f"instead of the books", flush=True)
            return ensure_prepared(fallback, args.data_dir)
    elif args.source == "text":
        sources = read_text_inputs(args.input)
    else:
        sources = None
    writer = DatasetWriter(args.data_dir, name, shard_size=shard_size, overwrite=args.overwrite)
    try:
        if sources is not None:
            meta = write_documents(writer, sources, tok, args.val_frac, args.num_proc)
        elif args.source == "c4":
            meta = prepare_c4(writer, tok, args.tokens or C4_DEFAULT_TOKENS, args.val_tokens or C4_VAL_TOKENS,
                              args.num_proc, layout, row_length)
            meta_extra["source"] = ("allenai/c4 en (val: the first tokens of its validation split)" if layout == "stream"
                                    else "allenai/c4 en, shuffled as the papers (val: the first rows of its validation split)")
        else:
            if args.source == "tinystories":
                ds = hf_text_stream("roneneldan/TinyStories", None, "train", False, "roneneldan/TinyStories")
                total = len(ds)
                budget = args.shards * args.shard_size if args.shards else None
            else:  # fineweb_edu
                ds = hf_text_stream("HuggingFaceFW/fineweb-edu", "sample-10BT", "train", True,
                                    "HuggingFaceFW/fineweb-edu sample-10BT")
                total, budget = None, (args.shards or 1) * args.shard_size
                meta_extra["source"] = "HuggingFaceFW/fineweb-edu sample-10BT"
            docs = (row["text"] for row in ds)
            if tok == "char":  # char vocab needs the whole text: fine for tinystories-sized data
                meta = write_documents(writer, [list(docs)], "char", args.val_frac)
            else:
                writer.add_stream(gpt2_tokenize_docs(docs, total=total, num_proc=args.num_proc, big=True),
                                  args.val_frac, train_budget=budget)
                meta = {"tokenizer": "gpt2", "vocab_size": GPT2_VOCAB, "eot": GPT2_EOT}
        return writer.commit(dict(meta, **meta_extra))
    except BaseException:
        writer.abort()
        raise


def c4_layout(args, tok):
    """(layout, row_length, shard_size) from the --layout/--row_length flags; one-line SystemExit on a bad mix.

    Only c4 has the documents layout (the papers' code); it is c4's default with the T5 tokenizer, whose
    <pad> (0) never occurs in text. GPT-2 has no pad token, so c4 with gpt2 stays a stream. Shards of
    rows hold a whole number of rows: shard_size is rounded down to a multiple of row_length.
    """
    layout, row_length = args.layout, args.row_length
    if args.source != "c4":
        if layout is not None or row_length is not None:
            flag = "--layout" if layout is not None else "--row_length"
            raise SystemExit(f"{flag} is for the c4 source, not {args.source} (other sources are token streams)")
        return "stream", None, args.shard_size
    layout = layout or ("documents" if tok == "t5" else "stream")
    if layout not in LAYOUTS:
        raise SystemExit(f"bad --layout '{layout}': choose from {', '.join(LAYOUTS)}")
    if layout == "stream":
        if row_length is not None:
            raise SystemExit(f"--row_length={row_length} is for --layout=documents, not stream")
        return layout, None, args.shard_size
    if tok != "t5":
        raise SystemExit(f"--layout=documents needs --tokenizer=t5 (its <pad> pads the rows; {tok} has no pad "
                         f"token): use --layout=stream with --tokenizer={tok}")
    row_length = C4_ROW_LENGTH if row_length is None else row_length
    if row_length < 2:
        raise SystemExit(f"bad --row_length {row_length}: must be >= 2 (at least one token and </s>)")
    if args.shard_size < row_length:
        raise SystemExit(f"--shard_size {args.shard_size} is smaller than one row (--row_length {row_length})")
    return layout, row_length, args.shard_size // row_length * row_length


# ----------------------------------------------------------------------------------------------
# auto-preparation for train.py

def ensure_prepared(name, data_dir="data"):
    """Return data_dir/name, preparing offline-capable datasets on first use.

    python_docs (and python_docs_gpt2) are always prepared offline; shakespeare_char / shakespeare by
    download (offline: the message says how to pass a local copy). Anything else that is missing ->
    SystemExit with the prepare.py command to run; so is a damaged meta.json (the command re-creates it).
    """
    folder = os.path.join(data_dir, name)
    if list_shards(folder, "train"):
        try:
            load_meta(data_dir, name, recreate=prepare_command(name, data_dir, overwrite=True))
        except ValueError as e:
            raise SystemExit(str(e)) from None
        return folder
    if (auto := auto_prepared(name)) is not None:
        source, tok = auto
        if os.path.exists(folder):
            raise SystemExit(f"{folder} exists but holds no *_train_*.bin shards; remove it or run "
                             f"`python prepare.py {source} --name {name} --data_dir {data_dir} --overwrite`")
        print(f"preparing {folder} (first use) ...", flush=True)
        try:
            return prepare(source, tokenizer=tok, name=name, data_dir=data_dir)
        except SystemExit as e:
            if source == "python_docs":
                raise
            raise SystemExit(f"{e} (then: `python prepare.py {source} --input input.txt --name {name} "
                             f"--data_dir {data_dir}`)") from None
    raise SystemExit(f"dataset '{name}' is not prepared in {folder}; run `{prepare_command(name, data_dir)}` first")


def prepare_command(name, data_dir, overwrite=False):
    """The prepare.py command that writes data_dir/name (a source's default name, else the text source)."""
    m = re.fullmatch(r"(.+?)(?:_(char|gpt2|t5))?", name)  # a source's default name: SOURCE or SOURCE_TOKENIZER
    src, tok = m.group(1), m.group(2)
    if src in SOURCES and src != "text" and (tok is None or tok in SOURCES[src][1]):
        cmd = f"python prepare.py {src}" + (f" --tokenizer={tok}" if tok else "") + f" --data_dir {data_dir}"
    else:
        cmd = f"python prepare.py text --input FILE_OR_FOLDER --name {name} --data_dir {data_dir}"
    return cmd + (" --overwrite" if overwrite else "")


def allowed_or_none(source):
    return (None,) + SOURCES[source][1]


def auto_prepared(name):
    """(source, tokenizer or None) when ensure_prepared prepares dataset `name` on first use, else None:
    python_docs / shakespeare_char / shakespeare, optionally suffixed with a tokenizer that source allows
    (shakespeare_t5 is refused: that source has no t5 form)."""
    m = re.fullmatch(r"(python_docs|shakespeare_char|shakespeare)(?:_(char|gpt2|t5))?", name)
    if m and m.group(2) in allowed_or_none(m.group(1)):
        return m.group(1), m.group(2)
    return None


# ----------------------------------------------------------------------------------------------

def _count(text):
    """A token count written as 2700000000, 2.7e9 or 2_700_000_000."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad count '{text}': use a number such as 2.7e9") from None
    if value != int(value):
        raise argparse.ArgumentTypeError(f"bad count '{text}': must be a whole number of tokens")
    return int(value)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write data/NAME/ as llm.c token shards (+ meta.json).",
        epilog="Offline: python_docs always works (books falls back to it); gpt2 needs TIKTOKEN_CACHE_DIR with "
               "tiktoken's cached files, t5 the Hugging Face cache (HF_HOME).")
    ap.add_argument("source", choices=list(SOURCES), help="what to prepare")
    ap.add_argument("--tokenizer", choices=["char", "gpt2", "t5"], default=None,
                    help="char, gpt2 or t5 (default: char for python_docs/books/shakespeare_char, t5 for c4, else gpt2)")
    ap.add_argument("--name", default=None, help="dataset name -> data_dir/NAME (default: from source/tokenizer)")
    ap.add_argument("--input", nargs="+", default=[], help="local files or folders (text, books, shakespeare*)")
    ap.add_argument("--data_dir", default="data", help="parent folder of datasets (default data)")
    ap.add_argument("--val_frac", type=float, default=0.1, help="last fraction of each source's tokens for val")
    ap.add_argument("--shards", type=int, default=None,
                    help="train shards to produce/download (fineweb*: default 1; tinystories: default all)")
    ap.add_argument("--shard_size", type=int, default=SHARD_SIZE, help="tokens per shard (default 1e8)")
    ap.add_argument("--num_proc", type=int, default=None, help="tokenizer processes for big inputs")
    ap.add_argument("--layout", choices=LAYOUTS, default=None,
                    help="c4: documents = one document per row of --row_length tokens, padded, the rest dropped "
                         "(the LNS / Mix-LN papers' code; default with t5); stream = documents joined into one "
                         "token stream (default with gpt2)")
    ap.add_argument("--row_length", type=int, default=None,
                    help=f"c4 documents layout: tokens per row incl. </s> (default {C4_ROW_LENGTH}, the papers' "
                         f"max_length; train.py's block_size must not exceed it)")
    ap.add_argument("--tokens", type=_count, default=None,
                    help=f"c4: training budget (default {C4_DEFAULT_TOKENS:,}). documents layout: row positions, "
                         f"padding included: ceil(N / row_length) rows; the default is 20000 x 512 rows of 256, "
                         f"as many rows as config/llama-130m.py draws (the papers read each once). stream layout: "
                         f"tokens")
    ap.add_argument("--val_tokens", type=_count, default=None,
                    help=f"c4: validation budget (default {C4_VAL_TOKENS:,}, as the papers). documents layout: "
                         f"non-pad tokens: rows are taken until they hold N (the papers' evaluation stops after "
                         f"10M non-pad tokens). stream layout: tokens")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing data_dir/NAME")
    args = ap.parse_args(argv)
    if args.shard_size < 1:
        ap.error(f"bad --shard_size {args.shard_size}: must be >= 1")
    _prepare(args)


if __name__ == "__main__":
    main()
