"""
Tests of train.py and sample.py on a tiny model (2 layers x 32 wide, block 32, batch 4) and a tiny
char dataset: exact resume, DDP == gradient accumulation, SIGTERM checkpoint, non-finite loss
handling, train + sample end to end, one-line config errors, the lr schedules and the presets.
Training runs in subprocesses (signals, torchrun) with one thread each: the CI box has 2 cores.
"""
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

import sample
import train
from conftest import requires
from configurator import parse_config
from checkpoint import load_checkpoint
from model import GPTConfig
from optim import OptimConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "train.py")
SAMPLE = os.path.join(ROOT, "sample.py")
TINY = ["--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=4",
        "--eval_iters=2", "--log_interval=1", "--dtype=float32"]  # a later --dtype wins
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def tiny_args(tiny_dataset, out_dir, *extra):
    data_dir, name = tiny_dataset
    return [*TINY, f"--data_dir={data_dir}", f"--dataset={name}", f"--out_dir={out_dir}", *extra]


def run(script, args, cwd, check=True, timeout=120):
    p = subprocess.run([sys.executable, script, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{os.path.basename(script)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def log_rows(out_dir):
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    train_rows = {r["iter"]: r["loss"] for r in rows if "loss" in r}
    eval_rows = {r["iter"]: (r["val_loss"], r["train_loss"]) for r in rows if "val_loss" in r}
    return rows, train_rows, eval_rows


def tensors_in(tree):
    """Every tensor in a nested dict/list (a checkpoint's optimizer state)."""
    if torch.is_tensor(tree):
        return [tree]
    items = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, (list, tuple)) else []
    return [t for item in items for t in tensors_in(item)]


# ---------------------------------------------------------------------------------------------------
# exactness

@pytest.mark.parametrize("dtype, weight_dtype, optimizer", [("float32", "float32", "adamw"),
                                                           ("float64", "float32", "muon"),
                                                           ("bfloat16", "bfloat16", "adamw")])
def test_resume_is_exact(tiny_dataset, tmp_path, dtype, weight_dtype, optimizer):
    """20 straight steps == 10 steps + resume + 10 steps, bit for bit: the weights (float64 and bf16 too),
    optimizer moments (Muon's momentum buffers too), every RNG and the data position are restored exactly."""
    # dropout makes the torch RNG part of the state; lr_decay_iters pins the schedule to 20 steps
    common = ["--dropout=0.1", "--eval_interval=5", "--warmup_iters=2", "--lr_decay_iters=20",
              f"--dtype={dtype}", f"--weight_dtype={weight_dtype}", f"--optimizer={optimizer}"]
    weights = torch.float64 if dtype == "float64" else getattr(torch, weight_dtype)
    straight, split = tmp_path / "straight", tmp_path / "split"
    run(TRAIN, tiny_args(tiny_dataset, straight, *common, "--max_iters=20"), tmp_path)
    run(TRAIN, tiny_args(tiny_dataset, split, *common, "--max_iters=10"), tmp_path)
    ckpt = torch.load(split / "ckpt.pt", weights_only=True)
    assert ckpt["iter_num"] == 10
    assert ckpt["model"]["lm_head.weight"].dtype == weights
    moments = [t for t in tensors_in(ckpt["optimizer"]) if t.is_floating_point() and t.dim() > 0]
    assert moments and all(t.dtype == weights for t in moments)  # the optimizer state follows the weights
    run(TRAIN, tiny_args(tiny_dataset, split, *common, "--max_iters=20", "--init_from=resume"), tmp_path)

    rows_a, train_a, eval_a = log_rows(straight)
    rows_b, train_b, eval_b = log_rows(split)
    assert sorted(train_a) == list(range(20))
    assert train_a == train_b  # bit-identical losses, every iteration
    assert eval_a == eval_b
    assert len(rows_a) == len(rows_b)  # the resumed log has no duplicated rows
    assert train_a[19] < train_a[0]
    final_a = torch.load(straight / "ckpt.pt", weights_only=True)["model"]
    final_b = torch.load(split / "ckpt.pt", weights_only=True)["model"]
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)  # the same weights, to the last bit


@pytest.mark.parametrize("optimizer, dtype, cpu_bf16", [("adamw", "float64", ""), ("muon", "float64", ""),
                                                       ("muon", "float32", "native")])
def test_ddp_equals_gradient_accumulation(tiny_dataset, tmp_path, optimizer, dtype, cpu_bf16):
    """2 gloo ranks x 1 micro-batch see the batches of 1 rank x 2 micro-batches and reach the same losses.
    float32 with NANONORM_CPU_BF16=native runs Muon's Newton-Schulz in bf16, as on AVX512-BF16/AMX CPUs:
    exact too, as every process runs one thread (a different thread count rounds float32 matmuls apart)."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    args = [f"--dtype={dtype}", "--max_iters=4", "--eval_interval=2", "--gradient_accumulation_steps=2",
            f"--optimizer={optimizer}", "--warmup_iters=1"]
    env = {**ENV, "NANONORM_CPU_BF16": cpu_bf16} if cpu_bf16 else ENV
    one, two = tmp_path / "one", tmp_path / "two"
    p = subprocess.run([sys.executable, TRAIN, *tiny_args(tiny_dataset, one, *args)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        TRAIN, *tiny_args(tiny_dataset, two, *args)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 rank(s) x 1 micro-batches" in p.stdout
    _, train_1, eval_1 = log_rows(one)
    _, train_2, eval_2 = log_rows(two)
    assert sorted(train_1) == sorted(train_2) == [0, 1, 2, 3]
    for it in train_1:
        assert train_1[it] == train_2[it], (it, train_1[it], train_2[it])
    for it in eval_1:  # evaluation is split over ranks and all-reduced: same batches, same mean
        assert abs(eval_1[it][0] - eval_2[it][0]) < 1e-6
    assert train_1[3] != train_1[0]  # it trained


# ---------------------------------------------------------------------------------------------------
# stopping

def test_sigterm_saves_last_completed_iteration(tiny_dataset, tmp_path):
    out = tmp_path / "out"
    args = tiny_args(tiny_dataset, out, "--max_iters=1000000", "--eval_interval=100000")
    proc = subprocess.Popen([sys.executable, TRAIN, *args], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:  # wait until a few iterations are logged
            if (out / "log.jsonl").exists() and sum(1 for _ in open(out / "log.jsonl")) >= 4:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("training did not log 3 iterations in 90 s")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert "interrupted: saved" in stdout and "--init_from=resume" in stdout
    model, ckpt = load_checkpoint(str(out / "ckpt.pt"), "cpu")
    _, train_rows, _ = log_rows(out)
    assert ckpt["iter_num"] == max(train_rows) + 1 >= 3  # the last completed (and logged) iteration
    x = torch.zeros(1, 8, dtype=torch.long)
    assert torch.isfinite(model(x)[0]).all()
    assert not [f for f in os.listdir(out) if ".tmp" in f]  # the atomic write left no temp file


def test_nonfinite_loss_stops_and_keeps_checkpoint(tiny_dataset, tmp_path):
    out = tmp_path / "out"
    run(TRAIN, tiny_args(tiny_dataset, out, "--max_iters=10", "--eval_interval=5"), tmp_path)
    good = (out / "ckpt.pt").read_bytes()
    # a real cause: a learning rate of 1e9 blows the weights up after the first resumed step;
    # --n_embd=48 checks that the checkpoint's architecture wins (and that we say so)
    p = run(TRAIN, tiny_args(tiny_dataset, out, "--max_iters=30", "--eval_interval=5", "--init_from=resume",
                             "--learning_rate=1e9", "--n_embd=48"), tmp_path, check=False)
    assert p.returncode != 0
    assert "ignored n_embd=48 (checkpoint: 32)" in p.stdout
    errors = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: non-finite loss"), p.stderr
    bad_iter = int(re.search(r"at iter (\d+)", errors[0]).group(1))
    assert 10 <= bad_iter < 30
    assert (out / "ckpt.pt").read_bytes() == good  # the last good checkpoint is untouched
    rows, _, _ = log_rows(out)
    assert all(math.isfinite(r.get("loss", r.get("val_loss"))) for r in rows)  # no NaN row was written


def test_stale_temporaries_of_killed_runs_are_removed(tiny_dataset, tmp_path):
    """A kill -9 during torch.save leaves ckpt.pt.tmp<PID>; the next run in that out_dir deletes it, but
    never a live writer's temporary or a file that is not ours."""
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a PID that no longer runs
    stale, live = f"ckpt.pt.tmp{dead.pid}", f"ckpt.pt.tmp{os.getpid()}"
    others = ["ckpt.pt.tmpx1", "other.pt.tmp1", "ckpt.pt.tmp1.bak"]
    for name in [stale, live, *others]:
        (out / name).write_bytes(b"partial")
    p = run(TRAIN, tiny_args(tiny_dataset, out, "--max_iters=0", "--eval_iters=1"), tmp_path)
    notes = [line for line in p.stdout.splitlines() if "removed" in line]
    assert len(notes) == 1 and stale in notes[0] and str(out) in notes[0], p.stdout
    assert not (out / stale).exists()
    assert all((out / name).exists() for name in [live, *others])


# ---------------------------------------------------------------------------------------------------
# end to end

@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    """(out_dir, train.py's stdout) of one 30-step tiny run, shared by the tests that only read it."""
    tmp = tmp_path_factory.mktemp("trained")
    out = tmp / "out"
    p = run(TRAIN, tiny_args(tiny_dataset, out, "--max_iters=30", "--eval_interval=15", "--learning_rate=3e-3",
                             "--log_interval=10", "--analyze_interval=15"), tmp)
    return out, p


def test_train_then_sample(trained, tmp_path):
    out, p = trained
    assert f"try it: python sample.py --out_dir={out}" in p.stdout
    assert "parameter routing" in p.stdout and "parameters" in p.stdout
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    assert set(ckpt) >= {"model", "model_config", "config", "optimizer", "iter_num", "best_val_loss", "rng", "dataset"}
    assert ckpt["iter_num"] == 30 and ckpt["dataset"] == "tiny"
    assert not [k for k in ckpt["model"] if k.startswith(("_orig_mod.", "module."))]
    rows, train_rows, eval_rows = log_rows(out)
    assert eval_rows[30][0] < eval_rows[0][0] - 0.5  # val loss fell
    assert {"iter", "loss", "lr", "tok_per_s", "ms"} <= set(next(r for r in rows if "loss" in r))
    eval_dicts = [r for r in rows if "val_loss" in r]
    assert [r["iter"] for r in eval_dicts] == [0, 15, 30]
    assert all("kurtosis_mean" in r for r in eval_dicts)  # analyze.quick_metrics went into the eval rows

    (tmp_path / "prompt.txt").write_text("The ")
    samples = []
    for start in ("--start=The ", f"--start=FILE:{tmp_path / 'prompt.txt'}"):
        p = run(SAMPLE, [f"--out_dir={out}", start, "--num_samples=2", "--max_new_tokens=20", "--seed=7",
                         "--dtype=float32"], tmp_path)
        samples.append(p.stdout)
    texts = [t for t in samples[0].split("---------------\n") if t]
    assert len(texts) == 2 and all(t.startswith("The ") and len(t) == len("The ") + 20 + 1 for t in texts)
    assert samples[0] == samples[1]  # same seed, same prompt (from the file) -> same text


def _sample(capsys, out_dir, *args):
    sample.main([f"--out_dir={out_dir}", "--start=The ", "--num_samples=2", "--max_new_tokens=40",
                 "--dtype=float32", *args])
    return capsys.readouterr().out


def test_converted_checkpoint_samples_the_same_text(trained, tmp_path, capsys):
    """convert.py --to=crms gives a compact model with the same logits; sample.py seeds right before
    generating, so at the same seed both give the same text, greedy and with temperature."""
    import convert
    out, _ = trained
    # noise on every weight: the tiny trained model's greedy text is all spaces, which would prove nothing
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    noise = torch.Generator().manual_seed(0)
    ckpt["model"] = {k: v + 0.3 * torch.randn(v.shape, generator=noise) for k, v in ckpt["model"].items()}
    (tmp_path / "ln").mkdir()
    torch.save(ckpt, tmp_path / "ln" / "ckpt.pt")
    convert.main([str(tmp_path / "ln"), str(tmp_path / "crms" / "ckpt.pt"), "--to=crms"])
    capsys.readouterr()
    for args in (["--temperature=0"], ["--temperature=1.0", "--top_k=20", "--seed=3"]):
        # no --data_dir: the converted checkpoint carries the tokenizer (meta) itself
        original, converted = (_sample(capsys, tmp_path / d, *args) for d in ("ln", "crms"))
        assert original == converted
        assert len(set(original.split("---------------")[0])) > 10  # varied text, not one repeated character
    assert _sample(capsys, tmp_path / "ln", "--seed=4") != _sample(capsys, tmp_path / "ln", "--seed=5")


def test_damaged_checkpoint_is_one_line(trained, tiny_dataset, tmp_path, capsys):
    """A truncated ckpt.pt (partial copy, full disk): train.py --init_from=resume and sample.py say in one
    line which file is damaged and what to do, without a traceback."""
    out, _ = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    data = (out / "ckpt.pt").read_bytes()
    (broken / "ckpt.pt").write_bytes(data[:len(data) // 2])
    data_dir, name = tiny_dataset
    for main, argv in ((train.main, [f"--data_dir={data_dir}", f"--dataset={name}", "--init_from=resume"]),
                       (sample.main, [])):
        with pytest.raises(SystemExit) as e:
            main([f"--out_dir={broken}", *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code != 0
        assert len(err) == 1 and str(broken / "ckpt.pt") in err[0] and "delete it" in err[0], err


@requires("transformers")
def test_init_from_local_hf_gpt2_folder(tmp_path):
    """init_from=<folder of a Hugging Face GPT-2> loads it, crops the context to block_size and trains."""
    import transformers
    import numpy as np
    import prepare
    hf_dir = tmp_path / "hf"
    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(vocab_size=50257, n_positions=64, n_embd=32, n_layer=2, n_head=2)
    transformers.GPT2LMHeadModel(hf_config).save_pretrained(hf_dir)
    folder = tmp_path / "data" / "bpe"
    folder.mkdir(parents=True)
    ids = np.random.default_rng(0).integers(0, 50257, 3000)
    prepare.write_shard(str(folder / "bpe_val_000000.bin"), ids[:1000])
    prepare.write_shard(str(folder / "bpe_train_000001.bin"), ids[1000:])
    (folder / "meta.json").write_text(json.dumps({"tokenizer": "gpt2", "vocab_size": 50257}))
    out = tmp_path / "out"
    run(TRAIN, [f"--init_from={hf_dir}", "--data_dir=data", "--dataset=bpe", f"--out_dir={out}", "--block_size=32",
                "--batch_size=2", "--max_iters=2", "--eval_iters=1", "--dtype=float32"], tmp_path)
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    assert ckpt["model_config"]["block_size"] == 32 and ckpt["model_config"]["n_embd"] == 32
    assert ckpt["model"]["transformer.wpe.weight"].shape == (32, 32)


# ---------------------------------------------------------------------------------------------------
# errors reach the user as one line

def _main_error(capsys, argv):
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return e.value.code, err


@pytest.mark.parametrize("argv, code, needle", [
    (["--lerning_rate=1"], 2, "did you mean 'learning_rate'"),
    (["--lr_schedule=linear"], 2, "choose from cosine, wsd, constant"),
    (["--max_iters=ten"], 2, "max_iters"),
    (["--eval_interval=0"], 2, "eval_interval"),
    (["--analyze_interval=7", "--eval_interval=5"], 2, "multiple of eval_interval"),
    (["--init_from=gpt3"], 2, "init_from"),
    (["--norm=crms", "--dropout=0.1"], 2, "dropout"),
    (["--weight_dtype=float16"], 2, "choose from float32, bfloat16"),
    (["--weight_dtype=bfloat16", "--dtype=float64"], 2, "bad value 'float64' for dtype with weight_dtype"),
])
def test_config_errors_are_one_line(capsys, tiny_dataset, tmp_path, argv, code, needle):
    data_dir, name = tiny_dataset
    got, err = _main_error(capsys, [f"--data_dir={data_dir}", f"--dataset={name}", f"--out_dir={tmp_path}", *argv])
    assert got == code
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err


def test_bad_cpu_bf16_switch_is_one_line(capsys, tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("NANONORM_CPU_BF16", "yes")
    data_dir, name = tiny_dataset
    code, err = _main_error(capsys, [f"--data_dir={data_dir}", f"--dataset={name}", f"--out_dir={tmp_path}"])
    assert code == 2 and len(err) == 1 and "NANONORM_CPU_BF16: choose from native, emulated" in err[0], err


@pytest.mark.parametrize("cpu_bf16, picked", [("emulated", "float32"), ("native", "bfloat16")])
def test_dtype_auto_follows_the_cpus_bf16(monkeypatch, cpu_bf16, picked):
    """dtype=auto: bf16 autocast on CPUs with AVX512-BF16/AMX (bench.py --compare=dtype: faster there),
    float32 where bf16 is emulated (slower); NANONORM_CPU_BF16 picks the kind on any CPU."""
    monkeypatch.setenv("NANONORM_CPU_BF16", cpu_bf16)
    assert train.resolve_dtype("auto", "cpu") == picked
    assert train.resolve_dtype("float32", "cpu") == "float32"  # an explicit dtype is kept
    assert train.resolve_dtype("bfloat16", "cpu") == "bfloat16"


def test_missing_checkpoint_and_dataset_are_one_line(capsys, tiny_dataset, tmp_path):
    data_dir, name = tiny_dataset
    code, err = _main_error(capsys, [f"--data_dir={data_dir}", f"--dataset={name}", f"--out_dir={tmp_path}",
                                     "--init_from=resume"])
    assert code != 0 and len(err) == 1 and "ckpt.pt does not exist" in err[0]
    code, err = _main_error(capsys, [f"--data_dir={data_dir}", "--dataset=no_such_data", f"--out_dir={tmp_path}"])
    assert code != 0 and len(err) == 1 and "python prepare.py" in err[0]


def test_help_lists_every_key(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for key in ("--n_layer", "--learning_rate", "--max_iters", "--lr_schedule", "--compile", "--min_lr"):
        assert key in out


# ---------------------------------------------------------------------------------------------------
# schedule and presets

def _tc(**kw):
    return train.TrainConfig(**{"max_iters": 100, "warmup_iters": 10, **kw})


def test_lr_schedules():
    m = train.lr_multiplier
    for sched in ("cosine", "wsd", "constant"):  # the same linear warm-up for all
        tc = _tc(lr_schedule=sched)
        assert m(0, tc, 0.1) == pytest.approx(1 / 11) and m(9, tc, 0.1) == pytest.approx(10 / 11)
    tc = _tc(lr_schedule="cosine")
    values = [m(i, tc, 0.1) for i in range(10, 101)]
    assert values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert m(55, tc, 0.1) == pytest.approx(0.55)  # halfway: (1 + r) / 2
    assert m(60, _tc(lr_schedule="cosine", lr_decay_iters=60), 0.1) == pytest.approx(0.1)
    tc = _tc(lr_schedule="wsd", decay_frac=0.2)  # stable until 80, then linear to r at the last step
    assert m(79, tc, 0.0) == 1.0 and m(99, tc, 0.0) == pytest.approx(0.0) and m(89, tc, 0.0) == pytest.approx(0.5)
    assert m(99, _tc(lr_schedule="constant"), 0.1) == 1.0
    # decay_frac=0 is the stable phase alone (trend.py's stable runs), up to and including the final evaluation
    assert [m(i, _tc(lr_schedule="wsd", decay_frac=0.0), 0.1) for i in range(10, 101)] == [1.0] * 91
    oc = OptimConfig(learning_rate=2e-3)
    assert train.min_lr_ratio(_tc(min_lr=None), oc) == pytest.approx(0.1)
    assert train.min_lr_ratio(_tc(min_lr=2e-4), oc) == pytest.approx(0.1)


PRESETS = os.path.join(ROOT, "config")
CLASSES = (GPTConfig, OptimConfig, train.TrainConfig)


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(PRESETS) if f.endswith(".py")))
def test_presets_parse(name):
    cfg = parse_config([os.path.join(PRESETS, name)], *CLASSES)
    train.check_train_config(train.TrainConfig(**{k: cfg[k] for k in train.TrainConfig.__dataclass_fields__}))
    GPTConfig(**{k: cfg[k] for k in GPTConfig.__dataclass_fields__})


def test_preset_numbers():
    cpu = parse_config([os.path.join(PRESETS, "cpu.py")], *CLASSES)
    assert cpu == parse_config([], *CLASSES)  # config/cpu.py is the defaults written out
    gpt2 = parse_config([os.path.join(PRESETS, "gpt2-124m.py")], *CLASSES)
    assert gpt2["batch_size"] * gpt2["block_size"] * gpt2["gradient_accumulation_steps"] == 524288
    llama = parse_config([os.path.join(PRESETS, "llama-130m.py")], *CLASSES)
    assert llama["batch_size"] * llama["gradient_accumulation_steps"] == 512
    assert llama["min_lr"] == pytest.approx(0.1 * llama["learning_rate"])
    # the papers' code (run_130m.sh): bf16 weights and Adam state, no clipping, no weight decay, 0.02 init
    assert (llama["weight_dtype"], llama["grad_clip"], llama["weight_decay"], llama["init_std"]) == \
        ("bfloat16", 0.0, 0.0, 0.02)


def test_final_eval_is_the_mean_over_a_fixed_held_out_set_with_its_standard_error(tiny_dataset):
    """--final_eval_tokens: loss = sum of token losses / tokens over whole batches of a fixed sampler (the same for
    every run), se = std of the per-sequence means / sqrt(sequences) (all sequences have the same length here)."""
    import types
    from contextlib import nullcontext

    import data
    import torch.nn.functional as F
    from model import GPT, GPTConfig
    data_dir, name = tiny_dataset
    torch.manual_seed(0)
    vocab = data.load_meta(str(data_dir), name)["vocab_size"]
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=vocab)).double()
    tc = types.SimpleNamespace(data_dir=str(data_dir), dataset=name, batch_size=4, final_eval_tokens=70)
    got = train.evaluate_held_out(model, tc, 8, nullcontext(), "cpu")
    sampler = data.BatchSampler(str(data_dir), name, "val", 4, 8, seed=train.FINAL_EVAL_SEED)
    per_seq = []
    for k in range(3):  # 70 tokens -> 3 batches of 4 x 8 = 96 tokens
        x, y = sampler.batch(k)
        logits, _ = model(x, y)
        per_seq += F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1).tolist()
    mean = sum(per_seq) / len(per_seq)
    se = (sum((v - mean) ** 2 for v in per_seq) / (len(per_seq) - 1) / len(per_seq)) ** 0.5
    assert got["final_val_tokens"] == 96
    # the token losses are computed from float32 logits (as in training), so a float64 model agrees to ~1e-8
    assert got["final_val_loss"] == pytest.approx(mean, rel=1e-6) and got["final_val_se"] == pytest.approx(se, rel=1e-4)
    assert model.training  # evaluation leaves the model in training mode
