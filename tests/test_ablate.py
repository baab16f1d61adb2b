"""Tests for ablate.py's data preparation and the 130M study's paper numbers and dry run (no training)."""
import io
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # tests/conftest.py does this too when present
    sys.path.insert(0, ROOT)

import pytest

import ablate
import prepare


def _no_network(url):
    raise OSError("[Errno -2] Name or service not known")


def test_cpu_corpus_offline_falls_back_to_python_docs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prepare, "_open_url", _no_network)
    data = str(tmp_path / "data")
    assert ablate.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "python_docs"
    out = capsys.readouterr().out
    assert "prepare.py books --name corpus_char" in out
    assert sum("instead of the books" in line for line in out.splitlines()) == 1
    assert sorted(os.listdir(data)) == ["python_docs"]


def test_cpu_corpus_bad_download_falls_back_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prepare, "_open_url", lambda url: io.BytesIO(b"<html>moved</html>"))
    data = str(tmp_path / "data")
    assert ablate.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "python_docs"
    out = capsys.readouterr().out
    assert "sha256" in out and "using the offline python_docs dataset instead of corpus_char" in out
    assert sorted(os.listdir(data)) == ["python_docs"]


def test_cpu_corpus_prepared_from_books(tmp_path, monkeypatch):
    """With the books reachable (a fake network serving two stand-in books), corpus_char is the books."""
    import hashlib
    books = [prepare.Book(n, n, f"https://example.org/{n}.txt", hashlib.sha256(n.encode() * 400).hexdigest())
             for n in ("alpha", "beta")]
    monkeypatch.setattr(prepare, "BOOKS", books)
    monkeypatch.setattr(prepare, "BOOK_BY_NAME", {b.name: b for b in books})
    monkeypatch.setattr(prepare, "_open_url", lambda url: io.BytesIO(url.rsplit("/", 1)[1][:-4].encode() * 400))
    data = str(tmp_path / "data")
    assert ablate.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "corpus_char"
    meta = prepare.load_meta(data, "corpus_char")
    assert meta["source"] == "books" and meta["chars"] == sorted(set("alphabeta\n"))
    monkeypatch.setattr(prepare, "_open_url", _no_network)  # prepared: no network needed any more
    assert ablate.ensure_dataset({"dataset": "corpus_char", "data_dir": data}) == "corpus_char"
