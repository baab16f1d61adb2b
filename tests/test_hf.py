"""Tests of the Hugging Face paths, offline: analyze.py hf on random tiny models of six transformers families
(hidden states and angular distance against transformers' own output_hidden_states, a removed block against
a model built without it, the command's files and one-line errors), and convert.py --to=hf (same logits from
AutoModelForCausalLM, refusals, the same analysis numbers for our GPT and its export).

Tolerances of the exported logits (max |difference|, measured on 3-layer d=32 models with random gains):
  GPT2LMHeadModel                 float64 1e-12 (measured ~3e-16), float32 1e-5 (~2e-7)
  LlamaForCausalLM, Olmo2         float64 1e-6 (~5e-8: transformers computes RMSNorm and RoPE in float32),
                                  float32 1e-5 (~1.5e-7)
"""

import json
import os
import re

import pytest
import torch

from conftest import needs_tiktoken, requires

pytestmark = requires("transformers")

import analyze  # noqa: E402
import convert  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402

V = 40  # vocabulary of the tiny models (the char tokenizer below has V characters)
CHARS = [chr(ord("a") + i) for i in range(26)] + list(" .,;:!?\n'-()\"[]")[:V - 26]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_hf(family, n_layer=3, seed=0):
    """A random-initialized transformers causal LM of `family` with d=32, 2 heads, vocabulary V."""
    import transformers as tf
    common = dict(vocab_size=V, num_hidden_layers=n_layer, hidden_size=32, intermediate_size=64,
                  num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                  bos_token_id=None, eos_token_id=None, pad_token_id=None)
    configs = {
        "gpt2": lambda: tf.GPT2Config(vocab_size=V, n_layer=n_layer, n_embd=32, n_head=2, n_positions=64,
                                      bos_token_id=None, eos_token_id=None),
        "gpt_neox": lambda: tf.GPTNeoXConfig(**{k: v for k, v in common.items() if k != "num_key_value_heads"}),
        "llama": lambda: tf.LlamaConfig(**common),
        "mistral": lambda: tf.MistralConfig(**common),
        "qwen2": lambda: tf.Qwen2Config(**common),
        "olmo2": lambda: tf.Olmo2Config(**common),
    }
    torch.manual_seed(seed)
    return tf.AutoModelForCausalLM.from_config(configs[family]()).eval()


FAMILIES = ["gpt2", "gpt_neox", "llama", "mistral", "qwen2", "olmo2"]


def tokens(B=2, T=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)


# ---------------------------------------------------------------------------------------------
# analyze.py hf: the measurements on transformers models


@pytest.mark.parametrize("family", FAMILIES)
def test_hidden_states_and_angular_distance_match_transformers(family):
    hf = tiny_hf(family)
    model = analyze.HFModel(hf)
    x, _ = tokens()
    states = model.hidden_states(x)
    L = hf.config.num_hidden_layers
    assert len(states) == L + 1 == len(model.transformer.h) + 1
    with torch.no_grad():
        theirs = hf(input_ids=x, output_hidden_states=True, use_cache=False).hidden_states
    for l in range(L):  # transformers' last entry has the final norm applied; ours is the last block's output
        assert torch.equal(states[l], theirs[l]), (family, l)
    D = analyze.angular_distance_matrix(states, last_token=False)
    for l in range(L):
        for n in range(1, L - l):  # by hand: arccos of the cosine between transformers' hidden states
            a, b = theirs[l].double(), theirs[l + n].double()
            cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
            assert abs(D[l, n - 1].item() - (torch.arccos(cos) / torch.pi).mean().item()) < 1e-10


@pytest.mark.parametrize("family", FAMILIES)
def test_removed_block_gives_the_logits_of_a_model_built_without_it(family):
    hf = tiny_hf(family, n_layer=3)
    model = analyze.HFModel(hf)
    x, y = tokens()
    with torch.no_grad():
        skipped, loss = model(x, y, skip_blocks=(1,))
        full = model(x)[0]
    # the same weights in a 2-block model: block 0 stays, block 2 becomes block 1
    prefix = analyze.HF_FAMILIES[family][0] + "."
    state = {}
    for key, value in hf.state_dict().items():
        m = re.match(re.escape(prefix) + r"(\d+)\.(.*)", key)
        if m is None:
            state[key] = value
        elif int(m.group(1)) != 1:
            state[f"{prefix}{min(int(m.group(1)), 1)}.{m.group(2)}"] = value
    small = tiny_hf(family, n_layer=2, seed=5)
    small.load_state_dict(state)
    with torch.no_grad():
        want = small(input_ids=x, use_cache=False).logits
    assert torch.allclose(skipped, want, atol=1e-5, rtol=0), (family, (skipped - want).abs().max())
    assert not torch.allclose(skipped, full, atol=1e-3)  # block 1 did something before it was removed
    assert abs(loss.item() - torch.nn.functional.cross_entropy(want.reshape(-1, V), y.reshape(-1)).item()) < 1e-5


def test_norm_family_is_read_from_the_config():
    import transformers as tf
    assert analyze.hf_norm_family(tiny_hf("gpt2").config) == "LayerNorm (eps 1e-05), Pre-LN"
    neox = tiny_hf("gpt_neox").config
    assert "attention and MLP in parallel" in analyze.hf_norm_family(neox)
    assert analyze.hf_norm_family(tiny_hf("llama").config).startswith("RMSNorm (eps 1e-06), Pre-LN")
    assert "reordered" in analyze.hf_norm_family(tiny_hf("olmo2").config)
    assert analyze.hf_norm_family(tf.OPTConfig(do_layer_norm_before=False)).endswith("Post-LN")


def save_tiny(tmp_path, family):
    """A model folder as a user has one: weights, config and a tokenizer (char-level, V characters)."""
    folder = tmp_path / family
    tiny_hf(family, n_layer=3).save_pretrained(folder)
    convert.char_tokenizer(CHARS).save_pretrained(folder)
    return str(folder)


def test_analyze_hf_command_writes_the_analysis(tmp_path, capsys):
    folder = save_tiny(tmp_path, "qwen2")
    text = tmp_path / "text.txt"
    text.write_text(("the quick brown fox, jumps over the lazy dog!\n" * 40))
    out = tmp_path / "an"
    analyze.main(["hf", folder, "--text", str(text), "--out_dir", str(out), "--block_size", "16",
                  "--batches", "2", "--batch_size", "3", "--device", "cpu", "--grad_norms"])
    printed = capsys.readouterr().out
    assert "qwen2, 3 blocks" in printed and "RMSNorm (eps 1e-06), Pre-LN" in printed
    assert "took" in printed and "peak memory" in printed
    r = json.loads((out / "analysis.json").read_text())
    assert r["rows"] == 6 and r["block_size"] == 16 and r["dtype"] == "torch.float32"
    assert len(r["layer_drop"]["rel"]) == 3 and len(r["rms"]) == 4 and len(r["grad_norm"]) == 3
    assert {p.name for p in out.glob("analysis_*.png")} == {f"analysis_{k}.png" for k in
                                                            ("angular", "layerdrop", "rms", "gradnorm", "kurtosis")}


def test_analyze_hf_on_a_prepared_dataset_in_bf16_without_plots(tmp_path, tiny_dataset, capsys):
    data_dir, name = tiny_dataset
    folder = save_tiny(tmp_path, "gpt2")
    out = tmp_path / "an"
    analyze.main(["hf", folder, "--dataset", name, "--data_dir", data_dir, "--out_dir", str(out),
                  "--block_size", "16", "--batches", "1", "--batch_size", "2", "--dtype", "bfloat16", "--no_plots"])
    r = json.loads((out / "analysis.json").read_text())
    assert r["rows"] == 2 and r["dtype"] == "torch.bfloat16" and r["grad_norm"] is None
    assert r["text"] == f"{name} (val)" and not list(out.glob("*.png"))
    assert "gpt2, 3 blocks" in capsys.readouterr().out


def one_line_exit(argv, capsys):
    """The message of the SystemExit analyze.main(argv) raises (its own line, or argparse's on stderr)."""
    capsys.readouterr()  # forget what came before (transformers' progress bars)
    with pytest.raises(SystemExit) as e:
        analyze.main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # our message is one line; before an argparse error, stderr may hold transformers' loading progress bar
    message = str(e.value.code) if not isinstance(e.value.code, int) else err.strip().splitlines()[-1]
    assert "\n" not in message.strip() and message.startswith("error: ")
    return message


def test_analyze_hf_refuses_bad_input_with_one_line(tmp_path, monkeypatch, capsys):
    assert "no such folder" in one_line_exit(["hf", str(tmp_path / "nope")], capsys)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a hub name that is not cached, without network
    assert "no network" in one_line_exit(["hf", "nonexistent-user/nonexistent-model"], capsys)
    folder = save_tiny(tmp_path, "llama")
    assert "--block_size" in one_line_exit(["hf", folder, "--block_size", "0"], capsys)
    assert "at most 64" in one_line_exit(["hf", folder, "--block_size", "500", "--no_plots"], capsys)
    short = tmp_path / "short.txt"
    short.write_text("abc")
    argv = ["hf", folder, "--text", str(short), "--no_plots", "--block_size", "16", "--out_dir", str(tmp_path / "o")]
    assert "the text has 3 tokens" in one_line_exit(argv, capsys)
    assert "--text" in one_line_exit(["hf", folder, "--text", str(tmp_path / "missing.txt")], capsys)


def test_load_errors_say_gated_and_remote_code_in_one_line():
    class GatedRepoError(OSError):  # huggingface_hub's class name is what hf_load_error recognizes
        pass
    try:
        try:
            raise GatedRepoError("403 Client Error. Access to model meta-llama/Llama-3.2-1B is restricted.")
        except GatedRepoError as inner:
            raise OSError("You are trying to access a gated repo.") from inner
    except OSError as err:
        assert "is gated" in analyze.hf_load_error("meta-llama/Llama-3.2-1B", err)
    err = ValueError("The repository x contains custom code which must be executed ... trust_remote_code=True")
    assert "does not run" in analyze.hf_load_error("x", err)

    class Bert:  # a model type without a block list in HF_FAMILIES
        config = type("C", (), {"model_type": "bert"})()
    with pytest.raises(ValueError, match="bad model type 'bert'.*gpt2, gpt_neox, llama"):
        analyze.HFModel.__init__(analyze.HFModel.__new__(analyze.HFModel), Bert())


# ---------------------------------------------------------------------------------------------
# convert.py --to=hf: the same logits from transformers

TINY = dict(n_layer=3, n_head=2, n_embd=32, block_size=16, vocab_size=V)  # vocabulary padded to 64 inside
LLAMA = dict(norm="rms", pos_emb="rope", mlp="swiglu", bias=False)
EXPORTS = {
    "gpt2": ("GPT2LMHeadModel", {}),
    "gpt2 LNS untied gelu_tanh": ("GPT2LMHeadModel", dict(depth_scale=True, tie_embeddings=False, mlp="gelu_tanh")),
    "gpt2 no bias relu2": ("GPT2LMHeadModel", dict(bias=False, mlp="relu2")),
    "gpt2 from rms zero_mean": ("GPT2LMHeadModel", dict(norm="rms", zero_mean=True)),
    "gpt2 emb_proj": ("GPT2LMHeadModel", dict(emb_proj=True)),
    "llama untied theta 500 eps 1e-6": ("LlamaForCausalLM", dict(LLAMA, tie_embeddings=False, rope_base=500.0,
                                                                norm_eps=1e-6)),
    "llama LNS tied": ("LlamaForCausalLM", dict(LLAMA, depth_scale=True)),
    "llama from ln LNS": ("LlamaForCausalLM", dict(LLAMA, norm="ln", depth_scale=True)),
    "llama from crms": ("LlamaForCausalLM", dict(LLAMA, norm="crms")),
    "llama ss emb_proj": ("LlamaForCausalLM", dict(LLAMA, norm="ss", emb_proj=True)),
    "olmo2": ("Olmo2ForCausalLM", dict(LLAMA, norm_pos="reorder", qk_norm=True)),
}


def our_gpt(dtype=torch.float64, seed=1, **kw):
    """A tiny GPT with random norm gains and biases (the export must carry them, not the init's 1 and 0)."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**{**TINY, **kw})).to(dtype).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name or "norm" in name or name.endswith(("gain", "bias")):
                p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("name", EXPORTS)
def test_export_gives_the_same_logits(name):
    cls, kw = EXPORTS[name]
    x, _ = tokens(T=16)
    for dtype in (torch.float64, torch.float32):
        model = our_gpt(dtype, **kw)
        hf = convert.to_hf(model)
        assert type(hf).__name__ == cls
        with torch.no_grad():
            ours, theirs = model(x)[0], hf(input_ids=x, use_cache=False).logits
        assert theirs.shape == ours.shape == (2, 16, V)  # the 64-padding rows are not exported
        tol = {torch.float32: 1e-5, torch.float64: 1e-12 if cls == "GPT2LMHeadModel" else 1e-6}[dtype]
        assert (ours - theirs).abs().max().item() < tol, (name, dtype, (ours - theirs).abs().max().item())


REFUSED = {
    "post": (dict(norm_pos="post"), "Post-LN"), "mix": (dict(norm_pos="mix"), "Mix-LN"),
    "sandwich": (dict(norm_pos="sandwich"), "Sandwich"), "peri": (dict(norm_pos="peri"), "Peri-LN"),
    "deepnorm": (dict(norm_pos="deepnorm"), "DeepNorm"),
    "none": (dict(norm="none"), "norm=none"),
    "rms learned": (dict(norm="rms"), "not LayerNorm"),
    "swiglu learned": (dict(mlp="swiglu"), "plain (ungated) MLP"),
    "qk_norm learned": (dict(qk_norm=True), "no QK-norm"),
    "gelu rope": (dict(LLAMA, mlp="gelu"), "SwiGLU"),
    "bias rope": (dict(LLAMA, bias=True), "bias=True"),
    "qk_norm pre rope": (dict(LLAMA, qk_norm=True), "no QK-norm"),
    "reorder without qk_norm": (dict(LLAMA, norm_pos="reorder"), "always applies QK-norm"),
    "reorder ln": (dict(LLAMA, norm="ln", norm_pos="reorder", qk_norm=True), "has RMSNorm"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_export_refuses_what_no_transformers_class_computes(name):
    kw, why = REFUSED[name]
    with pytest.raises(ValueError, match=re.escape(why)) as e:
        convert.to_hf(GPT(GPTConfig(**{**TINY, **kw})))
    assert "\n" not in str(e.value) and str(e.value).startswith("cannot export to Hugging Face: ")


def test_export_refuses_a_compact_crms_checkpoint():
    compact = convert.convert_to_crms(GPT(GPTConfig(**TINY)))
    with pytest.raises(ValueError, match="compact crms model has a \\(d-1\\)-dim stream"):
        convert.to_hf(compact, compact=convert.is_compact(compact))


def save_ckpt(path, model, meta):
    from dataclasses import asdict
    torch.save({"model": model.state_dict(), "model_config": asdict(model.config), "meta": meta}, path)


def test_convert_command_writes_a_folder_automodel_loads(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = our_gpt(torch.float32, **LLAMA, depth_scale=True, tie_embeddings=False, block_size=32)
    save_ckpt(tmp_path / "ckpt.pt", model, {"tokenizer": "char", "vocab_size": V, "chars": CHARS})
    out = tmp_path / "hf"
    convert.main([str(tmp_path / "ckpt.pt"), str(out), "--to=hf"])
    printed = capsys.readouterr().out
    assert "LlamaForCausalLM" in printed and "char-level tokenizer" in printed and "lm_eval --model hf" in printed
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    text = "hello, world!\nthe end."
    ids = tok(text)["input_ids"]
    assert ids == [CHARS.index(c) for c in text] and tok.decode(ids) == text
    x = torch.tensor([ids])
    with torch.no_grad():
        assert (model(x)[0] - hf(input_ids=x).logits).abs().max() < 1e-5
    # a refused model: one line from the command, no folder
    save_ckpt(tmp_path / "post.pt", GPT(GPTConfig(**TINY, norm_pos="post")), {})
    with pytest.raises(SystemExit) as e:
        convert.main([str(tmp_path / "post.pt"), str(tmp_path / "no"), "--to=hf"])
    assert str(e.value.code).startswith("error: cannot export to Hugging Face: norm_pos=post")
    assert not (tmp_path / "no").exists()


@needs_tiktoken
def test_gpt2_tokenizer_has_tiktokens_ids():
    import prepare
    tok, said = convert.hf_tokenizer({"tokenizer": "gpt2"})
    text = "Hello world!  def f(x):\n\treturn x**2  # ünïcode <|endoftext|> end"
    assert tok(text)["input_ids"] == prepare.get_tokenizer({"tokenizer": "gpt2"})[0](text)
    assert "GPT-2" in said


def test_our_gpt_and_its_export_give_the_same_analysis():
    """analyze_model on our GPT and on its GPT2LMHeadModel copy (through HFModel): the same numbers."""
    model = our_gpt(torch.float64)
    hf = analyze.HFModel(convert.to_hf(model))
    batches = [tokens(T=16, seed=s) for s in (1, 2)]
    ours, theirs = analyze.analyze_model(model, batches), analyze.analyze_model(hf, batches)
    for key in ("loss", "rms", "var", "kurtosis_raw", "angular_adjacent_all", "angular_adjacent_last", "grad_norm"):
        assert torch.allclose(torch.tensor(ours[key]), torch.tensor(theirs[key]), atol=1e-9, rtol=0), key
    assert torch.allclose(torch.tensor(ours["layer_drop"]["rel"]), torch.tensor(theirs["layer_drop"]["rel"]),
                          atol=1e-9, rtol=0)
    assert ours["summary"]["drop_share_lt1pct"] == theirs["summary"]["drop_share_lt1pct"]
