"""
Shared pytest setup: the repo root on sys.path (flat layout: `import model`, `import train`), the
offline GPT-2 BPE cache when ../shared/tiktoken_cache exists, and a tiny char-level dataset fixture.
"""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

TIKTOKEN_CACHE = os.path.join(ROOT, "..", "shared", "tiktoken_cache")
if os.path.isdir(TIKTOKEN_CACHE):  # machines without internet: tiktoken reads the gpt2 files from here
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", os.path.abspath(TIKTOKEN_CACHE))


def _tiny_text():
    """~40k characters of the CPython reference docs (stdlib, always present) as training text."""
    import pydoc_data.topics as topics
    return "\n\n".join(topics.topics[k] for k in sorted(topics.topics))[:40_000]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """(data_dir, name) of a tiny char-level dataset written with prepare.write_shard + meta.json."""
    import prepare
    data_dir = tmp_path_factory.mktemp("data")
    name = "tiny"
    text = _tiny_text()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    n_train = int(0.9 * len(ids))
    folder = data_dir / name
    folder.mkdir()
    prepare.write_shard(str(folder / f"{name}_val_000000.bin"), ids[n_train:])
    prepare.write_shard(str(folder / f"{name}_train_000001.bin"), ids[:n_train])
    meta = {"tokenizer": "char", "vocab_size": len(chars), "chars": chars,
            "train_tokens": int(n_train), "val_tokens": int(len(ids) - n_train)}
    (folder / "meta.json").write_text(json.dumps(meta))
    return str(data_dir), name
