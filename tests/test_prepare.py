"""Tests for data.py (llm.c shard I/O, meta.json, BatchSampler) and prepare.py (tokenizers, sources, dataset
writing). The optional offline data come from environment variables: TIKTOKEN_CACHE_DIR (tiktoken's cached
gpt2 BPE files) and NANONORM_CORPUS (a folder holding tinyshakespeare.txt and the books' .txt files)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # tests/conftest.py does this too when present
    sys.path.insert(0, ROOT)

import numpy as np
import pytest
import torch

import prepare
from data import BatchSampler, load_meta, read_shard, write_shard
from prepare import ensure_prepared, get_tokenizer

from conftest import CORPUS_DIR, needs_corpus, needs_tiktoken  # the optional offline data (environment variables)


# ---------------------------------------------------------------- shards

def test_shard_round_trip(tmp_path):
    p = str(tmp_path / "x_train_000001.bin")
    toks = np.array([0, 1, 50256, 65535, 7], dtype=np.int64)
    write_shard(p, toks)
    assert os.path.getsize(p) == 1024 + 2 * len(toks)
    header = np.fromfile(p, dtype=np.int32, count=256)
    assert list(header[:3]) == [20240520, 1, 5] and not header[3:].any()
    got = read_shard(p)
    assert got.dtype == np.uint16 and np.array_equal(got, toks)
    assert os.listdir(tmp_path) == ["x_train_000001.bin"]  # the temp file was renamed, nothing left over
    write_shard(p, np.zeros(0, np.uint16))
    assert len(read_shard(p)) == 0


def test_write_shard_rejects_out_of_range(tmp_path):
    with pytest.raises(ValueError, match="uint16"):
        write_shard(str(tmp_path / "a.bin"), np.array([1, 70000]))
    assert os.listdir(tmp_path) == []


def _one_line(e):
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_bad_magic(tmp_path):
    p = str(tmp_path / "bad.bin")
    h = np.zeros(256, np.int32)
    h[:3] = [12345, 1, 0]
    h.tofile(p)
    with pytest.raises(ValueError) as e:
        read_shard(p)
    msg = _one_line(e)
    assert p in msg and "magic" in msg and "12345" in msg


def test_bad_version(tmp_path):
    p = str(tmp_path / "v.bin")
    h = np.zeros(256, np.int32)
    h[:3] = [20240520, 7, 0]
    h.tofile(p)
    with pytest.raises(ValueError) as e:
        read_shard(p)
    assert "version 7" in _one_line(e)


def test_truncated(tmp_path):
    p = str(tmp_path / "t.bin")
    write_shard(p, np.arange(100))
    with open(p, "r+b") as f:
        f.truncate(1024 + 150)  # 75 tokens of the promised 100
    with pytest.raises(ValueError) as e:
        read_shard(p)
    msg = _one_line(e)
    assert p in msg and "truncated" in msg and "100 tokens" in msg
    with open(p, "r+b") as f:
        f.truncate(10)  # not even a header
    with pytest.raises(ValueError, match="truncated"):
        read_shard(p)


# ---------------------------------------------------------------- meta and drop-ins

def test_llmc_dropin_without_meta(tmp_path):
    d = tmp_path / "fineweb10B"
    d.mkdir()
    write_shard(str(d / "fineweb_val_000000.bin"), np.arange(300))
    write_shard(str(d / "fineweb_train_000001.bin"), np.arange(500))
    write_shard(str(d / "fineweb_train_000002.bin"), np.arange(700))
    meta = load_meta(str(tmp_path), "fineweb10B")
    assert meta["tokenizer"] == "gpt2" and meta["vocab_size"] == 50257
    assert meta["train_tokens"] == 1200 and meta["val_tokens"] == 300
    assert ensure_prepared("fineweb10B", str(tmp_path)) == str(d)  # present: nothing to do
    s = BatchSampler(str(tmp_path), "fineweb10B", "train", 4, 8)
    assert s.num_tokens == 1200 and len(s.shards) == 2
    assert BatchSampler(str(tmp_path), "fineweb10B", "val", 4, 8).num_tokens == 300


def test_split_names_not_confused(tmp_path):
    # a dataset whose name contains "_val_" must not mix its train shards into val
    d = tmp_path / "my_val_set"
    d.mkdir()
    write_shard(str(d / "my_val_set_val_000000.bin"), np.arange(50))
    write_shard(str(d / "my_val_set_train_000001.bin"), np.arange(80))
    assert [os.path.basename(p) for p in prepare.list_shards(str(d), "val")] == ["my_val_set_val_000000.bin"]
    assert [os.path.basename(p) for p in prepare.list_shards(str(d), "train")] == ["my_val_set_train_000001.bin"]


def test_load_meta_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare.py"):
        load_meta(str(tmp_path), "nothing")


# ---------------------------------------------------------------- tokenizers

def test_char_round_trip():
    text = "Hello, world!\nÀ bientôt — ok"
    chars = prepare.char_vocab(text)
    assert chars == sorted(set(text))
    meta = {"tokenizer": "char", "vocab_size": len(chars), "chars": chars}
    enc, dec = get_tokenizer(meta)
    ids = enc(text)
    assert ids == [chars.index(c) for c in text]
    assert list(prepare.char_encode(text, chars)) == ids
    assert dec(ids) == text and dec(torch.tensor(ids)) == text
    with pytest.raises(ValueError, match="'Z'"):
        enc("Z")


@needs_tiktoken
def test_gpt2_round_trip():
    enc, dec = get_tokenizer({"tokenizer": "gpt2", "vocab_size": 50257})
    ids = enc("Hello world<|endoftext|>")
    assert ids == [15496, 995, 50256]
    assert dec(ids) == "Hello world<|endoftext|>"


def test_bad_tokenizer_in_meta():
    with pytest.raises(ValueError, match="choose from char, gpt2"):
        get_tokenizer({"tokenizer": "bpe"})


# ---------------------------------------------------------------- BatchSampler

@pytest.fixture
def two_shards(tmp_path):
    d = tmp_path / "toy"
    d.mkdir()
    # token value tells which shard and position it came from
    write_shard(str(d / "toy_train_000001.bin"), np.arange(1000, dtype=np.int64))
    write_shard(str(d / "toy_train_000002.bin"), np.arange(10000, 13000, dtype=np.int64))
    write_shard(str(d / "toy_val_000000.bin"), np.arange(20000, 20500, dtype=np.int64))
    return str(tmp_path)


def test_sampler_determinism_and_shift(two_shards):
    s = BatchSampler(two_shards, "toy", "train", batch_size=8, block_size=16, seed=1)
    x, y = s.batch(5)
    assert x.shape == (8, 16) and y.shape == (8, 16) and x.dtype == torch.int64 and y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(y, x + 1)  # data is consecutive inside each shard: windows never cross shards
    x2, y2 = BatchSampler(two_shards, "toy", "train", 8, 16, seed=1).batch(5)  # fresh instance, same batch
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(s.batch(6)[0], x)
    assert not torch.equal(BatchSampler(two_shards, "toy", "train", 8, 16, seed=2).batch(5)[0], x)
    xv, _ = BatchSampler(two_shards, "toy", "val", 8, 16, seed=1).batch(5)
    assert (xv >= 20000).all()
    assert s.num_tokens == 4000


def test_sampler_proportional_and_in_range(two_shards):
    s = BatchSampler(two_shards, "toy", "train", batch_size=4000, block_size=16, seed=0)
    x, y = s.batch(0)
    first = x[:, 0]
    frac_small = (first < 1000).float().mean().item()
    # windows per shard: 1000-16=984 vs 3000-16=2984 -> 0.248
    assert abs(frac_small - 984 / (984 + 2984)) < 0.03
    assert int(y[first < 1000].max()) <= 999 and int(y.max()) <= 12999
    # every start position is reachable, including the last window of each shard
    assert int(first[first < 1000].min()) < 20 and int(first[first < 1000].max()) > 960


def test_sampler_errors(two_shards):
    with pytest.raises(ValueError, match="block_size"):
        BatchSampler(two_shards, "toy", "val", 2, 500)
    with pytest.raises(ValueError, match="bad split"):
        BatchSampler(two_shards, "toy", "test", 2, 8)
    with pytest.raises(FileNotFoundError, match="no train shards"):
        BatchSampler(two_shards, "absent", "train", 2, 8)


# ---------------------------------------------------------------- writing datasets

def test_stream_budget_split(tmp_path):
    w = prepare.DatasetWriter(str(tmp_path), "s", shard_size=100)
    docs = (np.full(37, i, np.uint16) for i in range(1000))
    w.add_stream(docs, val_frac=0.2, train_budget=450)  # stream cut at 450 train + 112 val tokens
    w.commit({"tokenizer": "gpt2", "vocab_size": 50257})
    d = str(tmp_path / "s")
    train = np.concatenate([read_shard(p) for p in prepare.list_shards(d, "train")])
    val = np.concatenate([read_shard(p) for p in prepare.list_shards(d, "val")])
    assert len(train) == 450 and len(val) == round(450 * 0.2 / 0.8)
    assert [len(read_shard(p)) for p in prepare.list_shards(d, "train")] == [100, 100, 100, 100, 50]
    assert val[0] == train[-1] or val[0] == train[-1] + 1  # val continues where train stopped
    meta = load_meta(str(tmp_path), "s")
    assert meta["train_tokens"] == 450 and meta["val_tokens"] == 112
    # a source exhausted before the budget still gets its last val_frac as val
    w = prepare.DatasetWriter(str(tmp_path), "e", shard_size=1000)
    w.add_stream((np.full(10, i, np.uint16) for i in range(10)), val_frac=0.1, train_budget=10**6)
    w.commit({"tokenizer": "gpt2", "vocab_size": 50257})
    meta = load_meta(str(tmp_path), "e")
    assert (meta["train_tokens"], meta["val_tokens"]) == (90, 10)
    assert set(read_shard(prepare.list_shards(str(tmp_path / "e"), "val")[0])) == {9}


def _run(*args, **kw):
    return subprocess.run([sys.executable, os.path.join(ROOT, "prepare.py"), *args], capture_output=True,
                          text=True, cwd=kw.get("cwd", ROOT), timeout=60)


def test_cli_text_char(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("the quick brown fox\njumps over " * 20)
    b.write_text("LAZY DOGS sleep. " * 30)
    data = tmp_path / "data"
    r = _run("text", "--input", str(a), str(b), "--name", "t", "--tokenizer=char", "--data_dir", str(data))
    assert r.returncode == 0, r.stderr
    meta = json.loads((data / "t" / "meta.json").read_text())
    src = [a.read_text(), "\n\n" + b.read_text()]
    assert meta["tokenizer"] == "char" and meta["chars"] == sorted(set("".join(src)))
    assert meta["vocab_size"] == len(meta["chars"])
    _, dec = get_tokenizer(meta)
    train = dec(np.concatenate([read_shard(p) for p in prepare.list_shards(str(data / "t"), "train")]))
    val = dec(np.concatenate([read_shard(p) for p in prepare.list_shards(str(data / "t"), "val")]))
    cut = [int(len(s) * 0.9) for s in src]  # each --input is its own source: last 10% of each -> val
    assert train == src[0][:cut[0]] + src[1][:cut[1]]
    assert val == src[0][cut[0]:] + src[1][cut[1]:]
    assert meta["train_tokens"] == len(train) and meta["val_tokens"] == len(val)
    # never overwrite silently
    r = _run("text", "--input", str(a), "--name", "t", "--tokenizer=char", "--data_dir", str(data))
    assert r.returncode != 0 and "--overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert json.loads((data / "t" / "meta.json").read_text()) == meta
    r = _run("text", "--input", str(a), "--name", "t", "--tokenizer=char", "--data_dir", str(data), "--overwrite")
    assert r.returncode == 0, r.stderr
    assert json.loads((data / "t" / "meta.json").read_text())["chars"] == sorted(set(src[0]))
    assert sorted(os.listdir(data)) == ["t"]  # no temp folders left behind


@needs_tiktoken
def test_text_folder_gpt2_eot(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(5):
        (folder / f"d{i}.txt").write_text(f"document number {i} says hello. " * 10)
    out = prepare.prepare("text", inputs=[str(folder)], name="g", data_dir=str(tmp_path / "data"), val_frac=0.0)
    toks = read_shard(prepare.list_shards(out, "train")[0])
    assert prepare.list_shards(out, "val") == []
    assert toks[0] == 50256 and int((toks == 50256).sum()) == 5  # one EOT before each file
    enc, dec = get_tokenizer(load_meta(str(tmp_path / "data"), "g"))
    assert dec(toks[1:]).startswith("document number 0 says hello.")


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(prepare, "write_documents", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare("python_docs", data_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_python_docs_auto_prepare(tmp_path, capsys):
    data = str(tmp_path / "data")
    out = ensure_prepared("python_docs", data)
    assert out == os.path.join(data, "python_docs")
    assert f"preparing {out} (first use)" in capsys.readouterr().out
    meta = load_meta(data, "python_docs")
    from pydoc_data.topics import topics
    text = "\n\n".join(topics[k] for k in sorted(topics))
    assert meta["tokenizer"] == "char" and meta["chars"] == sorted(set(text))
    assert meta["train_tokens"] + meta["val_tokens"] == len(text)
    assert meta["val_tokens"] == len(text) - int(len(text) * 0.9)
    _, dec = get_tokenizer(meta)
    assert dec(read_shard(prepare.list_shards(out, "val")[0])) == text[int(len(text) * 0.9):]
    assert ensure_prepared("python_docs", data) == out
    assert "preparing" not in capsys.readouterr().out  # second call: nothing to do


@needs_tiktoken
def test_python_docs_gpt2(tmp_path):
    out = ensure_prepared("python_docs_gpt2", str(tmp_path))
    meta = load_meta(str(tmp_path), "python_docs_gpt2")
    assert meta["tokenizer"] == "gpt2" and meta["vocab_size"] == 50257
    from pydoc_data.topics import topics
    toks = np.concatenate([read_shard(p) for s in ("train", "val") for p in prepare.list_shards(out, s)])
    assert int((toks == 50256).sum()) == len(topics)


@needs_corpus
def test_shakespeare_char_matches_nanogpt(tmp_path):
    prepare.prepare("shakespeare_char", inputs=[os.path.join(CORPUS_DIR, "tinyshakespeare.txt")], data_dir=str(tmp_path))
    meta = load_meta(str(tmp_path), "shakespeare_char")
    # nanoGPT's data/shakespeare_char/prepare.py: vocab 65, 1,003,854 train and 111,540 val tokens
    assert (meta["vocab_size"], meta["train_tokens"], meta["val_tokens"]) == (65, 1003854, 111540)


def test_shakespeare_is_downloaded_or_read_from_input(tmp_path, monkeypatch):
    """tiny Shakespeare comes from the checksummed download (kept in data_dir/_downloads) or from --input;
    offline, the one-line message says how to pass a local copy. No other path is looked at."""
    import hashlib
    import io
    import urllib.error
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 50
    book = prepare.Book("tinyshakespeare", "stand-in", "https://example.org/input.txt",
                        hashlib.sha256(text.encode()).hexdigest())
    monkeypatch.setitem(prepare.BOOK_BY_NAME, "tinyshakespeare", book)
    monkeypatch.setattr(prepare, "_open_url", lambda url: io.BytesIO(text.encode()))
    out = ensure_prepared("shakespeare_char", str(tmp_path / "a"))
    assert os.listdir(tmp_path / "a" / "_downloads") == ["tinyshakespeare.txt"]
    split = _dataset_text(out)[1]
    assert split["train"] + split["val"] == text

    def no_network(url):
        raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(prepare, "_open_url", no_network)
    with pytest.raises(SystemExit) as e:
        ensure_prepared("shakespeare_char", str(tmp_path / "b"))
    assert "URLError" in _one_line(e) and "--input" in str(e.value.code)
    local = tmp_path / "input.txt"
    local.write_text(text[::-1])
    out = prepare.prepare("shakespeare_char", inputs=[str(local)], data_dir=str(tmp_path / "b"))
    split = _dataset_text(out)[1]
    assert split["train"] + split["val"] == text[::-1]


def test_ensure_prepared_needs_download(tmp_path):
    with pytest.raises(SystemExit) as e:
        ensure_prepared("fineweb10B", str(tmp_path))
    assert "python prepare.py fineweb10B" in str(e.value.code)
    with pytest.raises(SystemExit) as e:
        ensure_prepared("mystuff", str(tmp_path))
    assert "prepare.py text --input" in str(e.value.code) and "mystuff" in str(e.value.code)


def test_cli_errors(tmp_path):
    r = _run("shakespeare_char", "--tokenizer=gpt2", "--data_dir", str(tmp_path))
    assert r.returncode != 0 and "choose from char" in r.stderr
    r = _run("text", "--input", str(tmp_path / "missing.txt"), "--data_dir", str(tmp_path))
    assert r.returncode != 0 and "missing.txt" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- books: download, checksum, cache, offline

@pytest.fixture
def fake_books(monkeypatch):
    """Two tiny stand-in books served by a fake network; returns (served bytes by url, urls fetched)."""
    import hashlib
    import io
    texts = {"alpha": "Alpha is the first book.\r\nIt has two lines.\r\n" * 20,
             "beta": "Beta, the second, is a little longer than the first one. " * 30}
    books = [prepare.Book(n, f"book {n}", f"https://example.org/{n}.txt",
                          hashlib.sha256(t.encode()).hexdigest()) for n, t in texts.items()]
    monkeypatch.setattr(prepare, "BOOKS", books)
    monkeypatch.setattr(prepare, "BOOK_BY_NAME", {b.name: b for b in books})
    served = {b.url: texts[b.name].encode() for b in books}
    fetched = []

    def open_url(url):
        fetched.append(url)
        return io.BytesIO(served[url])
    monkeypatch.setattr(prepare, "_open_url", open_url)
    return served, fetched


def _dataset_text(folder):
    meta = json.loads(open(os.path.join(folder, "meta.json")).read())
    _, dec = get_tokenizer(meta)
    return meta, {s: dec(np.concatenate([read_shard(p) for p in prepare.list_shards(folder, s)]))
                  for s in ("train", "val")}


def test_books_download_verify_and_cache(tmp_path, fake_books):
    served, fetched = fake_books
    data = str(tmp_path / "data")
    out = prepare.prepare("books", data_dir=data)
    assert out == os.path.join(data, "books") and len(fetched) == 2
    assert sorted(os.listdir(os.path.join(data, "_downloads"))) == ["alpha.txt", "beta.txt"]
    meta, text = _dataset_text(out)
    # each book is one source, read as text (CRLF -> LF), the last 10% of each to val
    src = [served[b.url].decode().replace("\r\n", "\n") for b in prepare.BOOKS]
    src[1] = "\n\n" + src[1]
    cut = [int(len(s) * 0.9) for s in src]
    assert text["train"] == src[0][:cut[0]] + src[1][:cut[1]] and text["val"] == src[0][cut[0]:] + src[1][cut[1]:]
    assert meta["source"] == "books" and [r["canonical"] for r in meta["books"]] == [True, True]
    # a second run reads the verified cache; a damaged cached file is fetched again
    prepare.prepare("books", data_dir=data, overwrite=True)
    assert len(fetched) == 2
    with open(os.path.join(data, "_downloads", "beta.txt"), "ab") as f:
        f.write(b"garbage")
    prepare.prepare("books", data_dir=data, overwrite=True)
    assert fetched[2:] == ["https://example.org/beta.txt"]
    assert _dataset_text(out)[1] == text


def test_books_checksum_mismatch_writes_nothing(tmp_path, fake_books, capsys):
    served, fetched = fake_books
    served["https://example.org/beta.txt"] = served["https://example.org/beta.txt"][:-5]  # a truncated file
    data = tmp_path / "data"
    with pytest.raises(SystemExit) as e:
        prepare.prepare("books", data_dir=str(data))
    msg = _one_line(e)
    assert "https://example.org/beta.txt" in msg and "sha256" in msg and "beta.txt" in msg
    assert sorted(os.listdir(data)) == ["_downloads"]  # no dataset, no temp folder
    assert os.listdir(data / "_downloads") == ["alpha.txt"]  # only the verified book, no partial beta


def test_books_offline_falls_back_to_python_docs(tmp_path, fake_books, monkeypatch, capsys):
    import urllib.error

    class CutConnection:  # the server answers, then the connection drops while the body is read
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self, *a):
            raise ConnectionResetError("connection reset by peer")
    monkeypatch.setattr(prepare, "_open_url", lambda url: CutConnection())
    data = tmp_path / "data"
    out = prepare.prepare("books", data_dir=str(data))
    assert out == str(data / "python_docs")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "python_docs dataset" in ln]
    assert len(lines) == 1 and "could not download alpha" in lines[0] and "ConnectionResetError" in lines[0]
    assert sorted(os.listdir(data)) == ["python_docs"]  # no books folder, no _downloads, no temp files

    def no_network(url):
        raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(prepare, "_open_url", no_network)
    r = prepare.prepare("books", tokenizer="char", data_dir=str(data))  # python_docs exists: reused
    assert r == str(data / "python_docs") and "URLError" in capsys.readouterr().out


def test_books_local_copies(tmp_path, fake_books, capsys):
    served, fetched = fake_books
    folder = tmp_path / "copies"
    folder.mkdir()
    (folder / "alpha.txt").write_bytes(served["https://example.org/alpha.txt"])
    out = prepare.prepare("books", inputs=[str(folder)], data_dir=str(tmp_path / "data"))
    assert fetched == ["https://example.org/beta.txt"]  # only the book without a local copy
    assert "note:" not in capsys.readouterr().out
    (folder / "alpha.txt").write_text("my own edition\n" * 50)
    prepare.prepare("books", inputs=[str(folder / "alpha.txt")], data_dir=str(tmp_path / "data"), overwrite=True)
    note = capsys.readouterr().out
    assert "note:" in note and "alpha.txt is not the copy the CPU studies used" in note
    meta, text = _dataset_text(out)
    assert [r["canonical"] for r in meta["books"]] == [False, True] and text["train"].startswith("my own edition")
    (folder / "gamma.txt").write_text("x")
    with pytest.raises(SystemExit) as e:
        prepare.prepare("books", inputs=[str(folder)], data_dir=str(tmp_path / "data"), overwrite=True)
    assert "gamma" in _one_line(e) and "alpha.txt, beta.txt" in str(e.value.code)


@needs_corpus
def test_books_canonical_checksums_and_same_tokens_as_text_source(tmp_path):
    """The recorded checksums are those of the NANONORM_CORPUS copies, and `books --input` writes the tokens
    `text --input` of the same four files wrote for the README's CPU studies."""
    import hashlib
    for b in prepare.BOOKS:
        with open(os.path.join(CORPUS_DIR, b.name + ".txt"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == b.sha256, b.name
    data = str(tmp_path / "data")
    books = prepare.prepare("books", inputs=[CORPUS_DIR], data_dir=data)
    files = sorted(os.path.join(CORPUS_DIR, f) for f in os.listdir(CORPUS_DIR) if f.endswith(".txt"))
    text = prepare.prepare("text", inputs=files, tokenizer="char", name="corpus_char", data_dir=data)
    for split in ("train", "val"):
        a, b = prepare.list_shards(books, split), prepare.list_shards(text, split)
        assert len(a) == len(b) == 1 and np.array_equal(read_shard(a[0]), read_shard(b[0]))
    assert load_meta(data, "books")["chars"] == load_meta(data, "corpus_char")["chars"]


# ---------------------------------------------------------------- damaged meta.json

@pytest.mark.parametrize("content", ['{bad json', '"just a string"', '{"tokenizer": "char"}', b"\xff\xfe\x00"])
def test_damaged_meta_names_the_file(tmp_path, content):
    folder = tmp_path / "d"
    folder.mkdir()
    write_shard(str(folder / "d_train_000001.bin"), np.arange(100) % 7)
    (folder / "meta.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError) as e:
        load_meta(str(tmp_path), "d")
    msg = _one_line(e)
    assert str(folder / "meta.json") in msg and "damaged" in msg and "--overwrite" in msg


def test_damaged_meta_train_cli_one_line(tmp_path, tiny_dataset):
    import shutil
    data_dir, name = tiny_dataset
    shutil.copytree(os.path.join(data_dir, name), tmp_path / "python_docs")
    (tmp_path / "python_docs" / "meta.json").write_text("{'tokenizer': 'char'}")  # Python, not JSON
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), f"--data_dir={tmp_path}",
                        "--dataset=python_docs", "--max_iters=1", "--device=cpu", f"--out_dir={tmp_path / 'out'}"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    err = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(tmp_path / "python_docs" / "meta.json") in err[0] and "damaged" in err[0]
    assert f"python prepare.py python_docs --data_dir {tmp_path} --overwrite" in err[0]


# ---------------------------------------------------------------- T5 tokenizer and C4 (offline stand-ins)

class StandInT5:
    """Byte-level stand-in for transformers' T5 tokenizer (same call signature): id = byte + 3, and the
    sentinel <extra_id_0> -> 32000 as in the real one."""

    def __call__(self, texts, add_special_tokens=True):
        assert add_special_tokens is False  # prepare.py appends </s> itself
        out = []
        for t in texts:
            ids = []
            for k, part in enumerate(t.split("<extra_id_0>")):
                ids += ([32000] if k else []) + [b + 3 for b in part.encode()]
            out.append(ids)
        return {"input_ids": out}

    def decode(self, ids):
        return bytes(i - 3 for i in ids if 3 <= i < 259).decode("utf-8", errors="replace")


@pytest.fixture
def stand_in_t5(monkeypatch):
    loaded = []

    def load(name):
        loaded.append(name)
        return StandInT5()
    monkeypatch.setattr(prepare, "_T5", {})
    monkeypatch.setattr(prepare, "_load_t5", load)
    return loaded


def test_text_t5_tokenizer(tmp_path, stand_in_t5):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("first document <extra_id_0> with a sentinel")
    (folder / "b.txt").write_text("second document")
    out = prepare.prepare("text", inputs=[str(folder)], tokenizer="t5", name="t", data_dir=str(tmp_path), val_frac=0.0)
    meta = load_meta(str(tmp_path), "t")
    assert (meta["tokenizer"], meta["vocab_size"], meta["eot"]) == ("t5", 32000, 1)
    assert meta["tokenizer_name"] == "google-t5/t5-base" and stand_in_t5 == ["google-t5/t5-base"]
    toks = read_shard(prepare.list_shards(out, "train")[0])
    assert int((toks == 1).sum()) == 2 and toks[-1] == 1  # </s> after each document
    assert toks.max() < 32000 and int((toks == 2).sum()) == 1  # the sentinel became <unk>
    enc, dec = get_tokenizer(meta)
    assert dec(toks) == "first document  with a sentinelsecond document"
    assert enc("hi") == [ord("h") + 3, ord("i") + 3]


def test_t5_missing_transformers_is_one_line(monkeypatch):
    monkeypatch.setattr(prepare, "_T5", {})
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(SystemExit) as e:
        get_tokenizer({"tokenizer": "t5", "vocab_size": 32000})
    assert "pip install transformers" in _one_line(e)


def _fake_datasets(monkeypatch, splits):
    """A stand-in `datasets` module whose load_dataset streams rows from splits; returns its call log."""
    import types
    calls = []

    def load_dataset(repo, name=None, split=None, streaming=False):
        calls.append((repo, name, split, streaming))
        return ({"text": t, "timestamp": "2019"} for t in splits[split])  # an IterableDataset yields dicts
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return calls


def test_c4_streams_train_and_validation_with_budgets(tmp_path, monkeypatch, stand_in_t5, capsys):
    train_docs = [f"train document {i} " * 5 for i in range(200)]
    val_docs = [f"validation document {i} " * 5 for i in range(50)]
    calls = _fake_datasets(monkeypatch, {"train": train_docs, "validation": val_docs})
    out = prepare.prepare("c4", data_dir=str(tmp_path), tokens=1000, val_tokens=300, shard_size=400, layout="stream")
    assert out == str(tmp_path / "c4")
    assert calls == [("allenai/c4", "en", "validation", True), ("allenai/c4", "en", "train", True)]
    meta = load_meta(str(tmp_path), "c4")
    assert (meta["tokenizer"], meta["vocab_size"], meta["train_tokens"], meta["val_tokens"]) == ("t5", 32000, 1000, 300)
    assert meta["source"].startswith("allenai/c4 en") and meta["layout"] == "stream"
    train = np.concatenate([read_shard(p) for p in prepare.list_shards(out, "train")])
    val = np.concatenate([read_shard(p) for p in prepare.list_shards(out, "val")])
    assert len(prepare.list_shards(out, "train")) == 3  # 400 + 400 + 200
    _, dec = get_tokenizer(meta)
    first = StandInT5()([train_docs[0]], add_special_tokens=False)["input_ids"][0]
    assert list(train[:len(first) + 1]) == first + [1]  # documents in order, each followed by </s>
    assert dec(train).startswith("".join(train_docs[:5])) and dec(val).startswith(val_docs[0] + val_docs[1])
    # a split that ends before the budget: all of it, and a warning
    _fake_datasets(monkeypatch, {"train": train_docs[:3], "validation": val_docs[:1]})
    prepare.prepare("c4", data_dir=str(tmp_path), name="small", tokens=10**6, layout="stream")
    assert "C4's train split ended after" in capsys.readouterr().out
    assert load_meta(str(tmp_path), "small")["val_tokens"] == len(val_docs[0]) + 1


def test_c4_needs_datasets_and_writes_nothing(tmp_path, monkeypatch, stand_in_t5):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(SystemExit) as e:
        prepare.prepare("c4", data_dir=str(tmp_path), tokens=100)
    assert "pip install datasets" in _one_line(e)
    assert os.listdir(tmp_path) == []
    r = _run("c4", "--tokens=1.5", "--data_dir", str(tmp_path))
    assert r.returncode != 0 and "whole number" in r.stderr
    r = _run("text", "--input", "x.txt", "--tokens=100", "--data_dir", str(tmp_path))
    assert r.returncode != 0 and "--tokens is for the c4 source" in r.stderr
