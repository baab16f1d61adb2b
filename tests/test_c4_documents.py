"""Tests for prepare.py's documents layout (c4's default: the LNS / Mix-LN papers' one document per padded
row) and data.py's BatchSampler of it: rows, padding targets, meta, refusals, the loss ignoring padding, a train.py run.
Offline: a stand-in `datasets` module and a stand-in T5 tokenizer."""
import json
import os
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import prepare
from data import BatchSampler, load_meta, read_shard

R = 16  # row_length of the test datasets
EOS, PAD = 1, 0


class CharT5:
    """Stand-in for transformers' T5 tokenizer (same call): one id per character, 3..63 (vocab 64)."""

    def __call__(self, texts, add_special_tokens=True):
        assert add_special_tokens is False  # prepare.py appends </s> itself
        return {"input_ids": [[3 + ord(c) % 61 for c in t] for t in texts]}


def ids(text):
    return [3 + ord(c) % 61 for c in text]


class FakeStream:
    """A streamed split of the stand-in `datasets`: iterates rows as dicts; shuffle(seed) records the seed
    and rotates the documents by seed places, so a test can tell the shuffled stream was used."""

    def __init__(self, split, texts, log):
        self.split, self.texts, self.log = split, texts, log

    def shuffle(self, seed):
        self.log.append((self.split, seed))
        k = seed % len(self.texts)
        return FakeStream(self.split, self.texts[k:] + self.texts[:k], self.log)

    def __iter__(self):
        return ({"text": t, "timestamp": "2019", "url": "u"} for t in self.texts)


@pytest.fixture
def fake_c4(monkeypatch):
    """(splits, shuffle log): fill splits["train"] / splits["validation"] with texts before preparing."""
    splits, log = {}, []

    def load_dataset(repo, name=None, split=None, streaming=False):
        assert (repo, name, streaming) == ("allenai/c4", "en", True)
        return FakeStream(split, splits[split], log)
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.setattr(prepare, "_T5", {})
    monkeypatch.setattr(prepare, "_load_t5", lambda name: CharT5())
    return splits, log


def docs(n, seed):
    """n documents of 1..3R characters (short ones are padded, long ones cut)."""
    rng = np.random.default_rng(seed)
    return ["".join(chr(97 + int(c)) for c in rng.integers(0, 26, size=int(m))) for m in rng.integers(1, 3 * R, size=n)]


def expected_row(text):
    body = ids(text)[:R - 1]
    return body + [EOS] + [PAD] * (R - 1 - len(body))


@pytest.fixture
def documents_dataset(tmp_path, fake_c4):
    splits, log = fake_c4
    splits["train"], splits["validation"] = docs(40, 0), docs(20, 1)
    out = prepare.prepare("c4", data_dir=str(tmp_path), tokens=30 * R, val_tokens=50, row_length=R, shard_size=5 * R + 3)
    return str(tmp_path), splits, log, out


def split_rows(out, split):
    return np.concatenate([read_shard(p) for p in prepare.list_shards(out, split)]).reshape(-1, R)


# ---------------------------------------------------------------- writing rows

def test_document_row_keeps_first_tokens_then_eos_then_pad():
    for n in (0, 1, R - 2, R - 1, R, 3 * R):
        doc = np.append(np.arange(3, 3 + n), EOS).astype(np.uint16)  # tokens + </s>, as t5_tokenize_docs
        row = prepare.document_row(doc, R)
        kept = min(n, R - 1)
        assert row.dtype == np.uint16 and len(row) == R
        assert list(row) == list(range(3, 3 + kept)) + [EOS] + [PAD] * (R - 1 - kept), n


def test_rows_as_transformers_truncates_and_pads():
    """The row equals what a transformers tokenizer with T5's post-processor ($A </s>) and <pad> = 0 returns
    for tokenizer(text, max_length=R, truncation=True, padding="max_length"), the papers' call."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{chr(97 + i): 3 + i for i in range(26)}}
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.Split("", "isolated")  # one token per character
    core.post_processor = tokenizers.processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=core, eos_token="</s>", pad_token="<pad>",
                                               unk_token="<unk>")
    for text in ("abc", "a" * (R - 1), "abcdefghijklmnopqrstuvwxyz" * 2):
        papers = tok(text, max_length=R, truncation=True, padding="max_length")["input_ids"]
        plain = tok(text, add_special_tokens=False)["input_ids"]
        assert len(plain) == len(text)  # the stand-in vocabulary is one token per character
        assert list(prepare.document_row(np.array(plain + [EOS]), R)) == papers, text


def test_c4_documents_dataset(documents_dataset):
    data_dir, splits, log, out = documents_dataset
    assert log == [("validation", 42), ("train", 32)]  # the papers' shuffles
    train_docs = splits["train"][32 % 40:] + splits["train"][:32 % 40]
    val_docs = splits["validation"][42 % 20:] + splits["validation"][:42 % 20]
    # shard_size 5R+3 is rounded down to whole rows: 5 rows a shard, 30 rows = 6 shards
    assert [len(read_shard(p)) for p in prepare.list_shards(out, "train")] == [5 * R] * 6
    train = split_rows(out, "train")
    assert train.tolist() == [expected_row(t) for t in train_docs[:30]]  # one row per document, in order
    # val: the first rows that hold 50 non-pad tokens (tokens + </s>), as the papers' evaluation stops
    nonpad = np.cumsum([min(len(t) + 1, R) for t in val_docs])
    n_val = int(np.searchsorted(nonpad, 50) + 1)
    assert nonpad[n_val - 2] < 50 <= nonpad[n_val - 1]
    assert split_rows(out, "val").tolist() == [expected_row(t) for t in val_docs[:n_val]]
    meta = load_meta(data_dir, "c4")
    assert (meta["layout"], meta["row_length"], meta["pad"], meta["tokenizer"]) == ("documents", R, 0, "t5")
    assert (meta["train_rows"], meta["val_rows"]) == (30, n_val)
    assert (meta["train_tokens"], meta["val_tokens"]) == (30 * R, n_val * R)  # row positions
    assert meta["train_nonpad_tokens"] == int((train != PAD).sum()) and meta["val_nonpad_tokens"] == nonpad[n_val - 1]


def test_row_budget_rounds_up_and_short_split_warns(tmp_path, fake_c4, capsys):
    splits, _ = fake_c4
    splits["train"], splits["validation"] = docs(5, 2), docs(3, 3)
    prepare.prepare("c4", data_dir=str(tmp_path), name="a", tokens=2 * R + 1, val_tokens=1, row_length=R)
    meta = load_meta(str(tmp_path), "a")
    assert (meta["train_rows"], meta["val_rows"]) == (3, 1)  # ceil((2R+1)/R) rows; one row holds >= 1 token
    prepare.prepare("c4", data_dir=str(tmp_path), name="b", tokens=100 * R, val_tokens=10**6, row_length=R)
    out = capsys.readouterr().out
    assert "train split ended after 5 of the 100 rows" in out and "val split ended after" in out
    assert load_meta(str(tmp_path), "b")["train_rows"] == 5


def test_layout_refusals_are_one_line(tmp_path, fake_c4):
    cases = [(dict(source="c4", tokenizer="gpt2", layout="documents"), "--layout=documents needs --tokenizer=t5"),
             (dict(source="c4", layout="stream", row_length=128), "--row_length=128 is for --layout=documents"),
             (dict(source="text", inputs=["x.txt"], layout="documents"), "--layout is for the c4 source"),
             (dict(source="c4", row_length=1), "bad --row_length 1"),
             (dict(source="c4", shard_size=100), "--shard_size 100 is smaller than one row")]
    for kw, msg in cases:
        with pytest.raises(SystemExit) as e:
            prepare.prepare(data_dir=str(tmp_path), **kw)
        assert msg in str(e.value.code) and "\n" not in str(e.value.code), kw
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- sampling rows

def test_sampler_rows_targets_and_reproducibility(documents_dataset):
    data_dir, _, _, out = documents_dataset
    train = split_rows(out, "train")
    s = BatchSampler(data_dir, "c4", "train", batch_size=64, block_size=R, seed=3)
    assert (s.layout, s.row_length, s.pad, s.num_rows) == ("documents", R, PAD, 30)
    x, y = s.batch(7)
    assert x.shape == y.shape == (64, R) and x.dtype == y.dtype == torch.int64
    for xr, yr in zip(x.numpy(), y.numpy()):
        assert any(np.array_equal(xr, row) for row in train)  # x is a whole row
        target = np.append(xr[1:], PAD)  # the last position has no next token
        assert np.array_equal(yr, np.where(target == PAD, -1, target))
    assert (y[:, -1] == -1).all()
    short = (x == PAD).any(1)  # short documents: pad targets are -1, </s> is a target
    assert short.any() and (y[short] == -1).any() and (y == EOS).any()
    assert len({tuple(r) for r in BatchSampler(data_dir, "c4", "train", 600, R, seed=3).batch(0)[0].tolist()}) == 30
    # an epoch reads every row once, as the papers' single pass; the next epoch in another order
    s6 = BatchSampler(data_dir, "c4", "train", 6, R, seed=3)
    epoch = [tuple(r) for i in range(5) for r in s6.batch(i)[0].tolist()]
    assert sorted(epoch) == sorted(tuple(r) for r in train)
    assert [tuple(r) for i in range(5, 10) for r in s6.batch(i)[0].tolist()] != epoch
    s7 = BatchSampler(data_dir, "c4", "train", 7, R, seed=3)  # 30 rows / 7: batch 4 spans the epoch boundary
    first = [tuple(r) for i in range(5) for r in s7.batch(i)[0].tolist()][:30]
    assert sorted(first) == sorted(tuple(r) for r in train)
    x2, y2 = BatchSampler(data_dir, "c4", "train", 64, R, seed=3).batch(7)  # a fresh sampler, same index
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(s.batch(8)[0], x)
    assert not torch.equal(BatchSampler(data_dir, "c4", "val", 64, R, seed=3).batch(7)[0], x)


def test_sampler_shorter_block_cuts_rows_and_longer_is_refused(documents_dataset):
    data_dir, _, _, out = documents_dataset
    x, y = BatchSampler(data_dir, "c4", "train", 64, R - 4, seed=0).batch(0)
    xf, _ = BatchSampler(data_dir, "c4", "train", 64, R, seed=0).batch(0)
    assert x.shape == (64, R - 4) and torch.equal(x, xf[:, :R - 4])  # the same rows, cut
    assert torch.equal(y[:, -1], torch.where(xf[:, R - 4] == PAD, -1, xf[:, R - 4]))  # next token exists
    with pytest.raises(ValueError) as e:
        BatchSampler(data_dir, "c4", "train", 4, R + 1)
    msg = str(e.value)
    assert "\n" not in msg and f"block_size {R + 1}" in msg and f"row_length {R}" in msg


def test_sampler_refuses_a_shard_of_partial_rows(documents_dataset):
    data_dir, _, _, out = documents_dataset
    path = prepare.list_shards(out, "val")[0]
    prepare.write_shard(path, read_shard(path)[:-3].copy())
    with pytest.raises(ValueError) as e:
        BatchSampler(data_dir, "c4", "val", 4, R)
    assert path in str(e.value) and "whole number" in str(e.value) and "\n" not in str(e.value)


def test_model_loss_ignores_padding(documents_dataset):
    from model import GPT, GPTConfig
    data_dir, _, _, _ = documents_dataset
    x, y = BatchSampler(data_dir, "c4", "train", 16, R, seed=1).batch(0)
    assert (x < 64).all() and (y == -1).float().mean() > 0.1
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=R, vocab_size=64))
    logits, loss = model(x, y)
    real = y != -1
    expected = F.cross_entropy(logits[real].float(), y[real])
    assert torch.allclose(loss, expected, rtol=1e-6, atol=1e-6)
    with_pad = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), torch.where(real, y, PAD).reshape(-1))
    assert not torch.allclose(loss, with_pad, rtol=1e-3)  # counting the padding would change the loss


def test_train_runs_on_rows(documents_dataset, tmp_path):
    import train
    data_dir, _, _, _ = documents_dataset
    out = tmp_path / "out"
    train.main(["--n_layer=1", "--n_head=2", "--n_embd=32", f"--block_size={R}", "--batch_size=4",
                "--max_iters=2", "--eval_interval=2", "--eval_iters=2", "--log_interval=1", "--dtype=float32",
                "--device=cpu", "--compile=False", f"--data_dir={data_dir}", "--dataset=c4", f"--out_dir={out}"])
    rows = [json.loads(line) for line in open(out / "log.jsonl")]
    losses = [r["loss"] for r in rows if "loss" in r] + [r["val_loss"] for r in rows if "val_loss" in r]
    assert len(losses) >= 3 and all(np.isfinite(losses))
