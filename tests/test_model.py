"""
Tests of model.py, norms.py and convert.py: every switch does what it claims, the exact equivalences
hold, and loading / conversion give the right numbers. They check behaviour (outputs, gradients,
known answers), not internals, so a different but correct implementation passes.
"""

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from conftest import requires  # noqa: E402
from convert import convert_to_crms, convert_to_rms  # noqa: E402
from checkpoint import load_checkpoint, load_pretrained  # noqa: E402
from model import GPT, GPTConfig, NORM_POSITIONS, padded_vocab, peak_flops_for  # noqa: E402
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


def close(a, b, tol=1e-6):
    return (a - b).abs().max().item() <= tol


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
           dict(norm="crms", dropout=0.1), dict(norm="rms", zero_mean=True, dropout=0.1),
           dict(norm_pos="post", depth_scale=True), dict(norm_pos="deepnorm", zero_mean=True),
           dict(n_embd=30, n_head=4), dict(mix_ratio=1.5), dict(init_std=0.0)]
    for kw in bad:
        with pytest.raises(ValueError) as err:
            GPTConfig(**kw)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="choose from ln, rms, crms, ss, none"):
        GPTConfig(norm="layer")
    with pytest.raises(ValueError, match="dropout=0.1"):  # names the bad value
        GPTConfig(norm="rms", zero_mean=True, dropout=0.1)


def test_compact_is_not_a_user_setting():
    with pytest.raises(TypeError):
        GPTConfig(compact=True)


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


# ---------------------------------------------------------------------------------------------
# 3. conversion of a Pre-LN checkpoint to Pre-RMSNorm and compact Pre-CRMSNorm

@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
@pytest.mark.parametrize("variant", [dict(), dict(bias=False, depth_scale=True), dict(emb_proj=True, qk_norm=True),
                                     dict(pos_emb="rope", mlp="relu2", tie_embeddings=False)])
def test_conversion_keeps_logits(dtype, tol, variant):
    model = make(dtype=dtype, **variant).eval()
    randomize_norms(model)
    x, _ = tokens()
    ref = model(x)[0]
    rms = convert_to_rms(model).eval()
    assert rms.config.norm == "rms" and not rms.config.zero_mean
    assert close(rms(x)[0], ref, tol)
    crms = convert_to_crms(model).eval()
    assert crms.transformer.wte.weight.shape[1] == model.config.n_embd - 1  # the (d-1)-dim stream
    norms = [m for m in crms.modules() if isinstance(m, CRMSNorm)]
    assert len(norms) == 2 * TINY["n_layer"] + 1 and not any(list(m.parameters()) for m in norms)
    assert close(crms(x)[0], ref, tol)


def test_convert_refuses_non_equivalent_models():
    with pytest.raises(ValueError, match="Pre-LN"):
        convert_to_crms(make(norm="rms"))
    with pytest.raises(ValueError, match="Pre-LN"):
        convert_to_rms(make(norm_pos="post"))
    with pytest.raises(ValueError, match="Pre-LN"):
        convert_to_crms(convert_to_crms(make()))  # already compact


def save_ckpt(model, path, **extra):
    from dataclasses import asdict
    torch.save({"model": model.state_dict(), "model_config": asdict(model.config), "config": {},
                "iter_num": 3, "best_val_loss": 1.0, "dataset": "x", **extra}, path)


def test_convert_command_round_trip_keeps_logits_and_tokenizer(tmp_path):
    model = make(dtype=torch.float32)
    randomize_norms(model)
    meta = {"tokenizer": "char", "vocab_size": V, "chars": [chr(65 + i) for i in range(V)]}
    src, dst = tmp_path / "in.pt", tmp_path / "out.pt"
    save_ckpt(model, src, meta=meta)
    r = subprocess.run([sys.executable, "convert.py", str(src), str(dst), "--to=crms"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    converted, ckpt = load_checkpoint(str(dst))
    x, _ = tokens()
    assert close(converted(x)[0], model.eval()(x)[0], 1e-4)
    assert converted.transformer.wte.weight.shape[1] == TINY["n_embd"] - 1
    assert ckpt["meta"] == meta  # sample.py needs the tokenizer without the data folder
    r = subprocess.run([sys.executable, "convert.py", str(src), str(dst), "--to=ln"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "crms" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "convert.py", str(src), str(src), "--to=rms"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr  # never overwrite the input


# ---------------------------------------------------------------------------------------------
# 4. each switch changes what it claims; the placements are the table

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
    mlp_in = [capture_inputs(b.mlp) for b in model.transformer.h]
    f_in, head_in = capture_inputs(model.transformer.ln_f), capture_inputs(model.lm_head)
    model(x)
    n_post = math.floor(0.5 * TINY["n_layer"]) if norm_pos == "mix" else 0
    for l, block in enumerate(model.transformer.h, start=1):
        if l <= n_post:  # Mix-LN's Post-LN blocks have no norm feeding the sublayer: nothing to scale
            assert torch.equal(attn_in[l - 1][0], ins[l - 1][0])
            continue
        assert torch.allclose(attn_in[l - 1][0], block.ln_1(ins[l - 1][0]) / math.sqrt(l), rtol=1e-6, atol=1e-7)
        assert not torch.allclose(attn_in[l - 1][0], block.ln_1(ins[l - 1][0]), atol=1e-3) or l == 1
        assert mlp_in[l - 1][0].abs().max() > 0
    assert torch.allclose(head_in[0], model.transformer.ln_f(f_in[0]), rtol=1e-6)  # final norm not scaled
    plain = make(norm_pos=norm_pos, mix_ratio=0.5).eval()
    assert (plain(x)[0] - model(x)[0]).abs().max() > 1e-4


def reference_block(block, x, pos, L):
    """The placement table written out with the block's own sublayers and norms."""
    if pos == "pre":
        x = x + block.attn(block.ln_1(x))
        return x + block.mlp(block.ln_2(x))
    if pos in ("sandwich", "peri"):
        x = x + block.ln_1_out(block.attn(block.ln_1(x)))
        return x + block.ln_2_out(block.mlp(block.ln_2(x)))
    if pos == "reorder":
        x = x + block.ln_1_out(block.attn(x))
        return x + block.ln_2_out(block.mlp(x))
    alpha = (2 * L) ** 0.25 if pos == "deepnorm" else 1.0
    x = block.ln_1(alpha * x + block.attn(x))
    return block.ln_2(alpha * x + block.mlp(x))


@pytest.mark.parametrize("norm_pos", ["pre", "post", "sandwich", "peri", "reorder", "deepnorm"])
def test_placements_put_norms_where_the_table_says(norm_pos):
    model = make(norm_pos=norm_pos).eval()
    randomize_norms(model)
    x = torch.randn(2, 16, TINY["n_embd"])
    for block in model.transformer.h:
        assert torch.allclose(block(x), reference_block(block, x, norm_pos, TINY["n_layer"]), atol=1e-6)
    if norm_pos == "peri":  # Peri-LN also normalizes the embedding output
        idx, _ = tokens()
        emb = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(16))
        assert torch.allclose(model.hidden_states(idx)[0], model.transformer.ln_emb(emb))


@pytest.mark.parametrize("L,ratio", [(4, 0.25), (8, 0.25), (6, 0.5), (4, 0.0)])
def test_mix_puts_floor_ratio_post_blocks_first(L, ratio):
    model = make(n_layer=L, norm_pos="mix", mix_ratio=ratio).eval()
    randomize_norms(model)
    x = torch.randn(2, 16, TINY["n_embd"])
    k = math.floor(ratio * L)
    for l, block in enumerate(model.transformer.h):
        expected, other = ("post", "pre") if l < k else ("pre", "post")
        assert torch.allclose(block(x), reference_block(block, x, expected, L), atol=1e-6)
        assert not torch.allclose(block(x), reference_block(block, x, other, L), atol=1e-3)


def test_deepnorm_beta_init():
    L, d = TINY["n_layer"], TINY["n_embd"]
    deep, post = make(norm_pos="deepnorm"), make(norm_pos="post")
    beta = (8 * L) ** -0.25
    for bd, bp in zip(deep.transformer.h, post.transformer.h):
        wd, wp = bd.attn.c_attn.weight, bp.attn.c_attn.weight
        assert torch.equal(wd[:2 * d], wp[:2 * d])  # q and k keep gain 1
        assert torch.allclose(wd[2 * d:], beta * wp[2 * d:], rtol=0, atol=1e-7)
        for a, b in ((bd.attn.c_proj, bp.attn.c_proj), (bd.mlp.c_fc, bp.mlp.c_fc), (bd.mlp.c_proj, bp.mlp.c_proj)):
            assert torch.allclose(a.weight, beta * b.weight, rtol=0, atol=1e-7)


@pytest.mark.parametrize("mlp, hidden", [("gelu", 384), ("swiglu", 256)])
def test_deepnorm_papers_code_variant(mlp, hidden):
    """deepnorm_variant=papers_code is the LNS/Mix-LN repositories' DeepNorm: alpha = 2*sqrt(2) at any depth,
    value, out-proj and FFN weights (gate and up apart) xavier_normal with gain (8L)^(+1/4), q, k gain 1."""
    L, d = 12, 96
    model = make(n_layer=L, n_embd=d, n_head=4, norm_pos="deepnorm", deepnorm_variant="papers_code", mlp=mlp)
    xavier = lambda w, gain: gain * math.sqrt(2.0 / (w.shape[0] + w.shape[1]))  # noqa: E731
    gain = (8 * L) ** 0.25
    for block in model.transformer.h:
        assert block.alpha == pytest.approx(2 * math.sqrt(2))
        q, k, v = block.attn.c_attn.weight.split(d)
        ffn_in = block.mlp.c_fc.weight.chunk(2) if mlp == "swiglu" else (block.mlp.c_fc.weight,)
        assert all(w.shape[0] == hidden for w in ffn_in)
        for w, g in ((q, 1.0), (k, 1.0), (v, gain), (block.attn.c_proj.weight, gain),
                     *((w, gain) for w in ffn_in), (block.mlp.c_proj.weight, gain)):
            assert w.std().item() == pytest.approx(xavier(w, g), rel=0.05)
    assert make(n_layer=L, n_embd=d, n_head=4, norm_pos="deepnorm").transformer.h[0].alpha == pytest.approx((2 * L) ** 0.25)
    with pytest.raises(ValueError, match="deepnorm_variant=papers_code changes only norm_pos=deepnorm"):
        make(norm_pos="post", deepnorm_variant="papers_code")


def test_ss_has_one_scalar_gain_per_norm():
    model = make(norm="ss", norm_pos="sandwich")
    norms = [m for m in model.modules() if isinstance(m, SSNorm)]
    assert len(norms) == 4 * TINY["n_layer"] + 1
    for m in norms:
        params = list(m.parameters())
        assert len(params) == 1 and params[0].numel() == 1


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
    ("scaled_init", True, False), ("norm_eps", 1e-1, 1e-5), ("depth_scale", True, False),
    ("init_std", 0.05, 0.02), ("rope_base", 100.0, 10000.0), ("mlp_hidden", 64, 0)])
def test_every_switch_changes_the_model(switch, on, off):
    x, _ = tokens()
    base = dict(norm="rms") if switch == "zero_mean" else {}  # zero_mean is a no-op for LN by design
    base = dict(pos_emb="rope") if switch == "rope_base" else base
    a, b = make(**{**base, switch: on}).eval(), make(**{**base, switch: off}).eval()
    randomize_norms(a)
    randomize_norms(b)
    assert (a(x)[0] - b(x)[0]).abs().max() > 1e-5


def test_init_std_sets_the_weight_std():
    model = make(init_std=0.05, n_embd=64)
    w = model.transformer.h[0].mlp.c_fc.weight
    assert abs(w.std().item() - 0.05) < 0.005


# ---------------------------------------------------------------------------------------------
# 5. the norms are their formulas: forward known answers and float64 gradients

def test_norm_formulas_forward():
    torch.manual_seed(0)
    x = torch.randn(5, 8, dtype=torch.float64)
    ln, rms = LayerNorm(8, 1e-5).double(), RMSNorm(8, 1e-5).double()
    ref = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    assert torch.allclose(ln(x), ref)
    assert torch.allclose(rms(x), x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))
    z = x - x.mean(-1, keepdim=True)
    crms = CRMSNorm(8, 1e-5, affine=False).double()
    assert torch.allclose(crms(z[:, :-1]), rms(z)[:, :-1])  # CRMS == RMS of the full zero-mean vector
    with torch.no_grad():
        for m in (ln, rms):
            m.weight.copy_(torch.linspace(0.5, 2, 8))
        ln.bias.copy_(torch.linspace(-1, 1, 8))
    crms_affine = CRMSNorm(8, 1e-5).double()
    crms_affine.load_state_dict(ln.state_dict())
    assert torch.allclose(crms_affine(z[:, :-1]), ln(x))  # with LN's affine, CRMS(C P x) == LN(x)
    ss = SSNorm(8, 1e-5).double()
    with torch.no_grad():
        ss.gain.fill_(2.5)
    assert torch.allclose(ss(x), 2.5 * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_formula_equals_torch_layer_norm(dtype, tol, bias):
    """norms.LayerNorm writes the formula out; it must agree with torch's fused kernel (the old forward), and
    keep its parameter names (weight, bias) so that old checkpoints load."""
    torch.manual_seed(0)
    ln = LayerNorm(16, 1e-5, bias=bias).to(dtype)
    with torch.no_grad():
        for p in ln.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = 3 * torch.randn(4, 5, 16, dtype=dtype) + 1.5
    ref = F.layer_norm(x, (16,), ln.weight, ln.bias, 1e-5)
    assert (ln(x) - ref).abs().max().item() < tol
    assert list(ln.state_dict()) == (["weight", "bias"] if bias else ["weight"])
    assert ln(x.bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize("norm", [LayerNorm(6), RMSNorm(6, bias=True), CRMSNorm(7), CRMSNorm(7, affine=False), SSNorm(6)])
def test_norm_gradients_float64(norm):
    torch.manual_seed(0)
    norm = norm.double()
    with torch.no_grad():
        for p in norm.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    params = tuple(norm.parameters())

    def f(x, *ps):
        return torch.func.functional_call(norm, dict(zip([n for n, _ in norm.named_parameters()], ps)), (x,))
    assert torch.autograd.gradcheck(f, (x, *[p.detach().requires_grad_() for p in params]))


def test_bf16_inputs_keep_float32_statistics():
    x = (torch.randn(4, 64) * 100).bfloat16()
    assert RMSNorm(64)(x).dtype == torch.bfloat16
    ref = RMSNorm(64)(x.float())
    assert (RMSNorm(64)(x).float() - ref).abs().max() < 0.05


# ---------------------------------------------------------------------------------------------
# 6. attention through SDPA (causal); the loss covers the real vocabulary only

def test_attention_is_causal_softmax():
    model = make().eval()
    attn = model.transformer.h[0].attn
    h = torch.randn(2, 16, TINY["n_embd"])
    q, k, v = attn.c_attn(h).split(TINY["n_embd"], dim=2)
    q, k, v = (t.view(2, 16, 2, -1).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(torch.triu(torch.ones(16, 16, dtype=torch.bool), 1), float("-inf"))
    y = (F.softmax(scores, -1) @ v).transpose(1, 2).reshape(2, 16, -1)
    assert torch.allclose(attn(h), attn.c_proj(y), atol=1e-5)
    x, _ = tokens()  # causality: changing a later token does not change earlier logits
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % V
    assert torch.equal(model(x)[0][:, :-1], model(x2)[0][:, :-1])


def test_vocab_padded_to_multiple_of_64_but_logits_and_loss_cover_the_real_vocabulary():
    assert padded_vocab(50257) == 50304 and padded_vocab(64) == 64 and padded_vocab(65) == 128
    model = make().eval()
    assert model.transformer.wte.weight.shape[0] == 128
    x, y = tokens()
    logits, loss = model(x, y)
    assert logits.shape[-1] == V
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)))
    with torch.no_grad():  # what the padding rows hold must not matter
        model.transformer.wte.weight[V:] = 50.0
    assert torch.equal(model(x, y)[1], loss)
    out = model.generate(x[:, :4], 5, temperature=1.0, top_k=10)
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
# 7. GPT-2 weights: logits AND loss equal to transformers' on weights where every parameter is perturbed

@requires("transformers")
def test_gpt2_parity_with_transformers_on_perturbed_weights(tmp_path):
    import transformers
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=16, vocab_size=100,
                                     bos_token_id=0, eos_token_id=0)
    hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
    with torch.no_grad():  # real GPT-2 has large biases and non-unit gains: a fresh init has neither
        for name, p in hf.named_parameters():
            p.add_(0.5 * torch.randn_like(p))
    hf.save_pretrained(tmp_path)
    ours = load_pretrained(str(tmp_path)).eval()
    assert ours.config.vocab_size == 100 and ours.transformer.wte.weight.shape[0] == 128
    idx, targets = torch.randint(0, 100, (2, 16)), torch.randint(0, 100, (2, 16))
    with torch.no_grad():
        hf_logits = hf(idx).logits
        logits, loss = ours(idx, targets)
    assert (hf_logits - logits).abs().max().item() <= 1e-4
    assert abs(F.cross_entropy(hf_logits.reshape(-1, 100), targets.reshape(-1)).item() - loss.item()) <= 1e-4
    assert loss.item() > 0.5 * math.log(100)  # sanity: a perturbed model, not a trivial one


# ---------------------------------------------------------------------------------------------
# 8. checkpoints: float64 loads exactly, damaged files give one line

def test_load_checkpoint_keeps_float64_exactly(tmp_path):
    model = make(dtype=torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 1e-9)  # digits float32 cannot hold
    save_ckpt(model, tmp_path / "ckpt.pt")
    loaded, _ = load_checkpoint(str(tmp_path))
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert b.dtype == torch.float64 and torch.equal(a, b), name


def test_damaged_checkpoint_is_one_line(tmp_path):
    model = make()
    path = tmp_path / "ckpt.pt"
    save_ckpt(model, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as err:
        load_checkpoint(str(path))
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "damaged" in msg
    r = subprocess.run([sys.executable, "convert.py", str(path), str(tmp_path / "out.pt"), "--to=rms"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and str(path) in r.stderr


# ---------------------------------------------------------------------------------------------
# 9. MFU

def test_estimate_mfu_uses_peak_table_or_explicit_peak():
    model = make()
    fpt = model.flops_per_token()
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert fpt == 6 * matmul + 12 * 4 * 32 * 16
    for name, peak in (("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H200", 989e12),
                       ("NVIDIA GH200 480GB", 989e12), ("NVIDIA A100-SXM4-40GB", 312e12), ("NVIDIA L40", 181e12),
                       ("NVIDIA L40S", 362e12), ("NVIDIA L4", 121e12), ("NVIDIA A10G", 70e12), ("NVIDIA A10", 125e12)):
        assert peak_flops_for(name) == peak, name
    assert peak_flops_for("cpu") is None and model.estimate_mfu(1000.0, device="cpu") is None
    assert model.estimate_mfu(1000.0, device="NVIDIA H100 80GB HBM3") == pytest.approx(fpt * 1000 / 989e12)
    assert model.estimate_mfu(1000.0, peak_flops=1e12) == pytest.approx(fpt * 1000 / 1e12)
