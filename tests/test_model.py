"""Tests of model.py and norms.py: every switch does what it claims, and the exact equivalences hold."""

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from model import (GPT, GPTConfig, NORM_POSITIONS, convert_to_crms, convert_to_rms, load_checkpoint,  # noqa: E402
                   padded_vocab, peak_flops_for)
from norms import NORM_TYPES, CRMSNorm, LayerNorm, RMSNorm, SSNorm  # noqa: E402

V = 70
TINY = dict(n_layer=4, n_head=2, n_embd=32, block_size=16, vocab_size=V)


def make(seed=0, dtype=torch.float32, **kw):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **kw})).to(dtype)


def tokens(B=3, T=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)


def randomize_norms(model, seed=5):
    """Norm gains start at 1 and biases at 0; move them so that folding them is really tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or "ln_f" in name:
                p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))


# ---------------------------------------------------------------------------------------------
# 1. every combination of norm x norm_pos works or is refused with one line

REFUSED = {("crms", p) for p in NORM_POSITIONS if p != "pre"} | {("none", p) for p in NORM_POSITIONS if p != "pre"}


@pytest.mark.parametrize("norm", NORM_TYPES)
@pytest.mark.parametrize("norm_pos", NORM_POSITIONS)
def test_every_norm_and_placement_works_or_is_refused(norm, norm_pos):
    if (norm, norm_pos) in REFUSED:
        with pytest.raises(ValueError) as err:
            make(norm=norm, norm_pos=norm_pos)
        msg = str(err.value)
        assert "\n" not in msg and norm_pos in msg and "pre" in msg
        return
    model = make(norm=norm, norm_pos=norm_pos)
    x, y = tokens()
    _, loss = model(x, y)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} is never used"
        assert torch.isfinite(p.grad).all(), name


def test_crms_implies_zero_mean_and_conflicts_are_one_line():
    assert GPTConfig(norm="crms").zero_mean is True
    bad = [dict(norm="lnn"), dict(norm_pos="middle"), dict(mlp="geglu"), dict(pos_emb="alibi"),
           dict(norm="crms", dropout=0.1), dict(norm_pos="post", depth_scale=True),
           dict(norm_pos="deepnorm", zero_mean=True), dict(n_embd=30, n_head=4), dict(mix_ratio=1.5),
           dict(compact=True)]
    for kw in bad:
        with pytest.raises(ValueError) as err:
            GPTConfig(**kw)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="choose from ln, rms, crms, ss, none"):
        GPTConfig(norm="layer")


# ---------------------------------------------------------------------------------------------
# 2. exact equivalence in training: ln-pre == rms+zero_mean == crms, float64, AdamW and Muon

def train_losses(norm, optimizer, steps=50, **kw):
    import optim
    extra = {"zero_mean": True} if norm == "rms" else {}
    model = make(dtype=torch.float64, norm=norm, **extra, **kw)
    randomize_norms(model)
    cfg = optim.OptimConfig(optimizer=optimizer, learning_rate=3e-3, muon_lr=0.02, weight_decay=0.1,
                            muon_momentum_warmup=0)
    opt = optim.build_optimizers(model, cfg, "cpu")
    x, y = tokens()
    losses = []
    for _ in range(steps):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
@pytest.mark.parametrize("variant", [dict(), dict(depth_scale=True, pos_emb="rope", mlp="swiglu",
                                                   tie_embeddings=False, bias=False)])
def test_pre_ln_rms_crms_train_identically(optimizer, variant):
    ln = train_losses("ln", optimizer, **variant)
    assert ln[-1] < ln[0] - 0.5, "the runs must actually learn for the comparison to mean something"
    for norm in ("rms", "crms"):
        other = train_losses(norm, optimizer, **variant)
        diff = max(abs(a - b) for a, b in zip(ln, other))
        assert diff <= 1e-9, f"{norm} vs ln under {optimizer}: {diff}"


def test_plain_rms_is_not_equivalent():
    """Without zero_mean, RMSNorm of a non-centred stream is a different model: the switch matters."""
    x, _ = tokens()
    ln = make(dtype=torch.float64, norm="ln")
    rms = make(dtype=torch.float64, norm="rms")
    assert (ln(x)[0] - rms(x)[0]).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------
# 3. conversion of a Pre-LN checkpoint to Pre-RMSNorm and compact Pre-CRMSNorm

@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
@pytest.mark.parametrize("variant", [dict(), dict(bias=False, depth_scale=True), dict(emb_proj=True, qk_norm=True),
                                     dict(pos_emb="rope", mlp="relu2", tie_embeddings=False)])
def test_conversion_keeps_logits(dtype, tol, variant):
    model = make(dtype=dtype, **variant).eval()
    randomize_norms(model)
    x, _ = tokens()
    ref = model(x)[0][..., :V]
    rms = convert_to_rms(model).eval()
    assert rms.config.norm == "rms" and not rms.config.zero_mean
    assert (rms(x)[0][..., :V] - ref).abs().max() <= tol
    crms = convert_to_crms(model).eval()
    assert crms.config.compact and crms.transformer.wte.weight.shape[1] == model.config.n_embd - 1
    assert all(p.numel() == 0 for p in crms.transformer.ln_f.parameters()) and not list(crms.transformer.ln_f.parameters())
    assert (crms(x)[0][..., :V] - ref).abs().max() <= tol


def test_convert_refuses_non_equivalent_models():
    with pytest.raises(ValueError, match="Pre-LN"):
        convert_to_crms(make(norm="rms"))
    with pytest.raises(ValueError, match="Pre-LN"):
        convert_to_rms(make(norm_pos="post"))


def test_convert_command_round_trip(tmp_path):
    model = make(dtype=torch.float32)
    randomize_norms(model)
    ckpt = {"model": model.state_dict(), "model_config": model.config.__dict__.copy(), "config": {},
            "iter_num": 3, "best_val_loss": 1.0, "dataset": "x"}
    src, dst = tmp_path / "in.pt", tmp_path / "out.pt"
    torch.save(ckpt, src)
    r = subprocess.run([sys.executable, "convert.py", str(src), str(dst), "--to=crms"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    converted, meta = load_checkpoint(str(dst))
    x, _ = tokens()
    assert (converted(x)[0][..., :V] - model.eval()(x)[0][..., :V]).abs().max() < 1e-4
    assert meta["model_config"]["compact"] is True
    r = subprocess.run([sys.executable, "convert.py", str(src), str(dst), "--to=ln"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "crms" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "convert.py", str(src), str(src), "--to=rms"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr  # never overwrite the input


# ---------------------------------------------------------------------------------------------
# 4. each switch changes what it claims

def capture_inputs(module):
    seen = []
    module.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    return seen


@pytest.mark.parametrize("norm_pos", ["pre", "sandwich", "peri", "mix"])
def test_depth_scale_multiplies_norm_output_by_inverse_sqrt_depth(norm_pos):
    model = make(norm_pos=norm_pos, depth_scale=True, mix_ratio=0.5).eval()
    x, _ = tokens()
    ins = [capture_inputs(b) for b in model.transformer.h]
    attn_in = [capture_inputs(b.attn) for b in model.transformer.h]
    f_in = capture_inputs(model.transformer.ln_f)
    head_in = capture_inputs(model.lm_head)
    model(x)
    for l, block in enumerate(model.transformer.h, start=1):
        if block.pos == "post":  # Mix-LN's Post-LN blocks have no norm feeding the sublayer
            assert block.scale == 1.0 and torch.equal(attn_in[l - 1][0], ins[l - 1][0])
            continue
        assert block.scale == 1.0 / math.sqrt(l)
        expected = block.ln_1(ins[l - 1][0]) * (1.0 / math.sqrt(l))
        assert torch.equal(attn_in[l - 1][0], expected)
    assert torch.equal(head_in[0], model.transformer.ln_f(f_in[0]))  # final norm not scaled
    plain = make(norm_pos=norm_pos, mix_ratio=0.5).eval()
    assert (plain(x)[0] - model(x)[0]).abs().max() > 1e-4


@pytest.mark.parametrize("L,ratio", [(4, 0.25), (8, 0.25), (6, 0.5), (4, 0.0)])
def test_mix_puts_floor_ratio_post_blocks_first(L, ratio):
    model = make(n_layer=L, norm_pos="mix", mix_ratio=ratio)
    k = math.floor(ratio * L)
    assert [b.pos for b in model.transformer.h] == ["post"] * k + ["pre"] * (L - k)


def test_deepnorm_alpha_and_beta():
    L = 4
    deep, post = make(norm_pos="deepnorm"), make(norm_pos="post")
    alpha, beta = (2 * L) ** 0.25, (8 * L) ** -0.25
    d = TINY["n_embd"]
    for bd, bp in zip(deep.transformer.h, post.transformer.h):
        assert bd.alpha == alpha and bp.alpha == 1.0
        wd, wp = bd.attn.c_attn.weight, bp.attn.c_attn.weight
        assert torch.equal(wd[:2 * d], wp[:2 * d])  # q and k keep gain 1
        assert torch.allclose(wd[2 * d:], beta * wp[2 * d:], rtol=0, atol=1e-7)
        for a, b in ((bd.attn.c_proj, bp.attn.c_proj), (bd.mlp.c_fc, bp.mlp.c_fc), (bd.mlp.c_proj, bp.mlp.c_proj)):
            assert torch.allclose(a.weight, beta * b.weight, rtol=0, atol=1e-7)


def test_ss_has_one_scalar_gain_per_norm():
    model = make(norm="ss", norm_pos="sandwich")
    norms = [m for m in model.modules() if isinstance(m, SSNorm)]
    assert len(norms) == 4 * TINY["n_layer"] + 1
    for m in norms:
        params = list(m.parameters())
        assert len(params) == 1 and params[0].numel() == 1


def reference_block(block, x, pos):
    """The placement table written out with the block's own modules."""
    def f_attn(h):
        return block.attn(h, None, "raw", None)

    def f_mlp(h):
        return block.mlp(h, None, "raw", None)
    if pos == "pre":
        x = x + f_attn(block.ln_1(x))
        return x + f_mlp(block.ln_2(x))
    if pos in ("sandwich", "peri"):
        x = x + block.ln_1_out(f_attn(block.ln_1(x)))
        return x + block.ln_2_out(f_mlp(block.ln_2(x)))
    if pos == "reorder":
        x = x + block.ln_1_out(f_attn(x))
        return x + block.ln_2_out(f_mlp(x))
    alpha = (2 * len_layers) ** 0.25 if pos == "deepnorm" else 1.0
    x = block.ln_1(alpha * x + f_attn(x))
    return block.ln_2(alpha * x + f_mlp(x))


len_layers = TINY["n_layer"]


@pytest.mark.parametrize("norm_pos", ["pre", "post", "sandwich", "peri", "reorder", "deepnorm"])
def test_placements_put_norms_where_the_table_says(norm_pos):
    model = make(norm_pos=norm_pos).eval()
    randomize_norms(model)
    x = torch.randn(2, 16, TINY["n_embd"])
    for block in model.transformer.h:
        assert torch.allclose(block(x), reference_block(block, x, norm_pos), atol=1e-6)
        assert hasattr(block, "ln_1") == (norm_pos != "reorder")
        assert hasattr(block, "ln_1_out") == (norm_pos in ("sandwich", "peri", "reorder"))
    assert hasattr(model.transformer, "ln_emb") == (norm_pos == "peri")
    if norm_pos == "peri":  # Peri-LN also normalizes the embedding output
        idx, _ = tokens()
        emb = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(16))
        assert torch.allclose(model.embed(idx), model.transformer.ln_emb(emb))


def test_no_block_is_an_identity():
    """One public LNS implementation turned every block into an identity; check ours never does."""
    for kw in (dict(), dict(depth_scale=True), dict(norm_pos="mix"), dict(norm="crms", depth_scale=True),
               dict(norm="ss", norm_pos="peri"), dict(norm_pos="deepnorm"), dict(norm_pos="reorder")):
        model = make(**kw).eval()
        states = model.hidden_states(tokens()[0])
        for a, b in zip(states, states[1:]):
            assert (a - b).abs().max() > 1e-4, kw


@pytest.mark.parametrize("switch,on,off", [
    ("norm", "rms", "ln"), ("norm", "ss", "ln"), ("norm", "none", "ln"), ("norm_pos", "sandwich", "pre"),
    ("zero_mean", True, False), ("pos_emb", "rope", "learned"), ("mlp", "swiglu", "gelu"), ("mlp", "relu2", "gelu"),
    ("bias", False, True), ("tie_embeddings", False, True), ("qk_norm", True, False), ("emb_proj", True, False),
    ("scaled_init", True, False), ("norm_eps", 1e-1, 1e-5), ("depth_scale", True, False)])
def test_every_switch_changes_the_model(switch, on, off):
    x, _ = tokens()
    base = dict(norm="rms") if switch == "zero_mean" else {}  # zero_mean is a no-op for LN by design
    a, b = make(**{**base, switch: on}).eval(), make(**{**base, switch: off}).eval()
    randomize_norms(a)
    randomize_norms(b)
    assert (a(x)[0] - b(x)[0]).abs().max() > 1e-5


def test_zero_mean_stream_is_centred_and_crms_stream_is_compressed():
    x, _ = tokens()
    zm = make(norm="rms", zero_mean=True)
    for s in zm.hidden_states(x):
        assert s.mean(-1).abs().max() < 1e-5
    crms = make(norm="crms")
    assert crms.embed(x).shape[-1] == TINY["n_embd"] - 1
    ln = make(norm="ln")
    for a, b in zip(crms.hidden_states(x), ln.hidden_states(x)):  # D z == P x at every layer
        assert torch.allclose(a, b - b.mean(-1, keepdim=True), atol=1e-5)


def test_norm_formulas():
    torch.manual_seed(0)
    x = torch.randn(5, 8, dtype=torch.float64)
    ln, rms = LayerNorm(8, 1e-5), RMSNorm(8, 1e-5)
    ref = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    assert torch.allclose(ln.double()(x), ref)
    assert torch.allclose(rms.double()(x), x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))
    z = x - x.mean(-1, keepdim=True)
    crms = CRMSNorm(8, 1e-5).double()
    assert torch.allclose(CRMSNorm.decompress(crms(z[:, :-1])), rms(z))  # CRMS == RMS of the full vector
    ss = SSNorm(8, 1e-5).double()
    with torch.no_grad():
        ss.gain.fill_(2.5)
    assert torch.allclose(ss(x), 2.5 * rms(x))


# ---------------------------------------------------------------------------------------------
# 5. attention through SDPA (causal), padded vocabulary

def test_attention_is_causal_sdpa():
    model = make().eval()
    attn = model.transformer.h[0].attn
    h = torch.randn(2, 16, TINY["n_embd"])
    q, k, v = attn.c_attn(h).split(TINY["n_embd"], dim=2)
    q, k, v = (t.view(2, 16, 2, -1).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(torch.triu(torch.ones(16, 16, dtype=torch.bool), 1), float("-inf"))
    y = (F.softmax(scores, -1) @ v).transpose(1, 2).reshape(2, 16, -1)
    assert torch.allclose(attn(h, None, "raw", None), attn.c_proj(y), atol=1e-5)
    # causality: changing a later token does not change earlier logits
    x, _ = tokens()
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % V
    assert torch.equal(model(x)[0][:, :-1], model(x2)[0][:, :-1])


def test_vocab_padded_to_multiple_of_64():
    assert padded_vocab(50257) == 50304 and padded_vocab(64) == 64 and padded_vocab(65) == 128
    model = make()
    assert model.transformer.wte.weight.shape[0] == 128
    assert model(tokens()[0])[0].shape[-1] == 128
    out = model.generate(tokens()[0][:, :4], 5, temperature=1.0, top_k=10)
    assert out.shape == (3, 9) and out.max() < V


def test_skip_blocks_and_hidden_states():
    model = make().eval()
    x, y = tokens()
    states = model.hidden_states(x)
    assert len(states) == TINY["n_layer"] + 1 and states[0].shape == (3, 16, TINY["n_embd"])
    full = model(x, y)[1]
    assert model(x, y, skip_blocks=())[1] == full
    assert model(x, y, skip_blocks=(1,))[1] != full


# ---------------------------------------------------------------------------------------------
# 6. GPT-2 parity with transformers (offline: a random config saved to a temp dir)

def test_gpt2_parity_with_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=16, vocab_size=100,
                                     bos_token_id=0, eos_token_id=0)
    hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
    hf.save_pretrained(tmp_path)
    ours = GPT.from_pretrained(str(tmp_path)).eval()
    assert ours.config.vocab_size == 100 and ours.transformer.wte.weight.shape[0] == 128
    idx = torch.randint(0, 100, (2, 16))
    with torch.no_grad():
        diff = (hf(idx).logits - ours(idx)[0][..., :100]).abs().max().item()
    assert diff <= 1e-4


# ---------------------------------------------------------------------------------------------
# 7. MFU

def test_estimate_mfu_uses_peak_table_or_explicit_peak():
    model = make()
    fpt = model.flops_per_token()
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert fpt == 6 * matmul + 12 * 4 * 32 * 16
    assert peak_flops_for("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops_for("NVIDIA H100 PCIe") == 756e12
    assert peak_flops_for("NVIDIA A100-SXM4-40GB") == 312e12
    assert peak_flops_for("cpu") is None and model.estimate_mfu(1000.0, device="cpu") is None
    assert model.estimate_mfu(1000.0, device="NVIDIA H100 80GB HBM3") == pytest.approx(fpt * 1000 / 989e12)
    assert model.estimate_mfu(1000.0, peak_flops=1e12) == pytest.approx(fpt * 1000 / 1e12)
