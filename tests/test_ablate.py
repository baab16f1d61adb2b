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


def test_130m_dry_run_prints_tokens_flops_hours_and_paper_numbers(tmp_path, capsys):
    ablate.main(["depth", "--scale=130m", "--dry_run", f"--runs_dir={tmp_path}/runs", "--set", "max_iters=2000"])
    out = capsys.readouterr().out.splitlines()
    cmds = [i for i, line in enumerate(out) if line.startswith("python train.py config/llama-130m.py")]
    assert len(cmds) == 7 and all("--dataset=c4" in out[i] and "--max_iters=2000" in out[i] for i in cmds)
    paper = {}
    for i in cmds:
        name = out[i].rsplit("/", 1)[1]
        proj = out[i + 1]
        tokens = int(proj.split()[1].replace(",", ""))
        assert tokens == 2000 * 64 * 8 * 256  # max_iters x batch x accumulation x block of the preset
        mflop = float(proj.split(" x ")[1].split()[0].replace(",", ""))
        assert 600 < mflop < 750  # 6 x ~110M matmul weights (with the 32,000-token T5 head) + attention
        hours = float(proj.split("FLOPs: ")[1].split()[0])
        assert hours == pytest.approx(tokens * mflop * 1e6 / (989e12 * 0.40) / 3600, rel=0.05)
        if "paper C4 val ppl" in proj:
            paper[name] = float(proj.rsplit(" ", 1)[1])
    assert paper == {"pre_L12": 26.73, "post_L12": 26.95, "mix_L12": 26.07, "pre_lns_L12": 25.76, "deepnorm_L12": 27.17}
    assert "Sun et al. 2025" in out[-1] and "40% MFU" in out[-1]
    assert not os.path.exists(tmp_path / "runs")


def test_paper_numbers_only_for_the_papers_setup_and_in_the_table():
    at12 = {r.name: r.extra.get("paper_val_ppl") for r in ablate.plan("depth", "130m", [12, 24], {})}
    assert at12["pre_L12"] == 26.73 and at12["pre_L24"] is None and at12["sandwich_L12"] is None
    other_data = ablate.plan("depth", "130m", None, {"dataset": "fineweb_edu"})
    assert all("paper_val_ppl" not in r.extra for r in other_data)
    assert all("paper_val_ppl" not in r.extra for r in ablate.plan("depth", "cpu", None, {}))
    runs = [r for r in ablate.plan("depth", "130m", None, {}) if r.name in ("pre_L12", "sandwich_L12")]
    metrics = {r.name: {**r.extra, "val_loss": 3.3, "val_ppl": 27.11} for r in runs}
    lines = ablate.main_table(runs, metrics, "depth").splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    pre = [c.strip() for c in lines[2].strip("|").split("|")]
    sandwich = [c.strip() for c in lines[3].strip("|").split("|")]
    k = header.index("paper val ppl")
    assert header[k - 1] == "val ppl" and pre[k - 1] == "27.11" and pre[k] == "26.73" and sandwich[k] == "-"
