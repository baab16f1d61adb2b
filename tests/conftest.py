"""
Shared pytest setup: the repo root on sys.path (flat layout: `import model`, `import train`), a tiny
char-level dataset fixture, and skip markers for what a test needs beyond the core requirements:

    from conftest import needs_tiktoken, needs_corpus, CORPUS_DIR, requires

    @needs_tiktoken            tiktoken's GPT-2 BPE files load (from TIKTOKEN_CACHE_DIR offline)
    @needs_corpus              NANONORM_CORPUS names a folder of text files (CORPUS_DIR is its path)
    @requires("matplotlib")    an optional package is installed (pip install -r requirements-dev.txt)

The tests read these two optional data sources only from the environment variables; .ci/run sets
them on machines that keep a local copy.
"""
import functools
import importlib.util
import json
import os
import socket
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# NANONORM_CORPUS: a folder of plain-text books (e.g. tinyshakespeare.txt) for the tests of prepare.py's
# corpus paths; None when unset or not a folder.
_corpus = os.environ.get("NANONORM_CORPUS", "")
CORPUS_DIR = os.path.abspath(_corpus) if _corpus and os.path.isdir(_corpus) else None
needs_corpus = pytest.mark.skipif(CORPUS_DIR is None,
                                  reason=f"set NANONORM_CORPUS to a folder of text files (now {_corpus!r})")


def requires(module_name):
    """A skip marker for tests that need an optional package: the reason names the package."""
    missing = importlib.util.find_spec(module_name) is None
    return pytest.mark.skipif(missing, reason=f"optional package {module_name} is not installed "
                                              f"(pip install -r requirements-dev.txt)")


@functools.lru_cache(maxsize=None)
def gpt2_bpe_loads():
    """True when tiktoken can build its gpt2 encoding: from TIKTOKEN_CACHE_DIR, its default cache, or
    the network. Checked at most once per session and only when a marked test is about to run; the
    download gets 10 s so that a machine without network skips instead of hanging."""
    if importlib.util.find_spec("tiktoken") is None:
        return False
    import tiktoken
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    try:
        tiktoken.get_encoding("gpt2")
        return True
    except Exception:  # no cache and no network: any of requests' / OSError's / ValueError's kinds
        return False
    finally:
        socket.setdefaulttimeout(old_timeout)


# A marker checked lazily in pytest_runtest_setup (below), so that a run without such tests never
# touches tiktoken or the network.
needs_tiktoken = pytest.mark.needs_tiktoken
NEEDS_TIKTOKEN_REASON = ("tiktoken cannot load its gpt2 files: set TIKTOKEN_CACHE_DIR to a folder holding "
                         "them (offline), or run once with network")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_tiktoken: skip unless tiktoken can load the gpt2 BPE files")


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_tiktoken") is not None and not gpt2_bpe_loads():
        pytest.skip(NEEDS_TIKTOKEN_REASON)


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
