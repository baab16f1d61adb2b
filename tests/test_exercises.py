"""
The exercises of EXERCISES.md, graded without holding their answers, and the tool that cuts them out.

Grading tests are named test_<exercise>_...: `python exercises.py grade` runs them and gives one row per
exercise. Each compares the code with outputs and float64 gradients recorded from the reference on fixed
random inputs (tests/exercise_data/, `python exercises.py record`), checks what the spec says on
degenerate inputs (a zero or constant vector, a zero matrix, a single row or token), checks that
statistics of low-precision inputs are taken in float32 or float64, and checks mathematical properties,
so a correct implementation written differently passes and a wrong one says which output differs and by
how much. Tolerances come from the conditioning of each formula (exercises.py: DEFAULT_TOLERANCE).
The test_tool_... tests check `exercises.py make` and the grader itself (a student copy holds no
solution, still trains the default model, each switch stops with one line that names its exercise; every
correct implementation in tests/exercise_data/candidates.py passes and every common mistake there fails);
they need the reference code with its markers and skip in a student copy.
"""
import importlib.util
import json
import math
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import exercises

ROOT = exercises.ROOT
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def check_recorded(name):
    """The code's outputs on the recorded inputs equal the reference's, within the exercise's tolerance."""
    data = exercises.load_recorded(name)
    _, outputs = exercises.CASES[name]
    problem = exercises.compare(name, outputs(data["inputs"]), data["outputs"], data["inputs"])
    if problem:
        pytest.fail(problem, pytrace=False)


def assert_close(got, want, what, atol=1e-10, rtol=1e-10):
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    err = (got.double() - want.double()).abs()
    err = torch.where(err.isnan(), math.inf, err)
    tol = atol + rtol * want.double().abs()
    assert bool((err <= tol).all()), f"{what}: differs by up to {err.max().item():.3g} (tolerance {atol:.0e})"


def assert_rounded_like_float64(got, want64, what):
    """got (a low-precision output) is want64 (the same code on the same values in float64) rounded once
    to got's dtype, but for a few ties (and a d-th coordinate summed after rounding): with float32
    statistics none of these 4096 outputs differ; with the mean square, or the scale, in bfloat16 27% do.
    Used with a unit gain and zero bias, so applying them before or after the rounding is all the same."""
    rounded = want64.to(got.dtype)
    differ = ((got != rounded) & ~(got.isnan() & rounded.isnan())).double().mean().item()
    assert differ <= 0.05, (f"{what}: {100 * differ:.0f}% of the outputs differ from the float64 result rounded "
                            f"to {got.dtype}: take the statistics in float32 (at_least_float32)")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(g, *shape, dtype=torch.float64):
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def assert_finite(t, what):
    assert bool(torch.isfinite(t).all()), f"{what} is not finite: {t.flatten()[:6].tolist()}"


# ---------------------------------------------------------------------------------------------
# rmsnorm: norms.rms_norm

def test_rmsnorm_matches_recorded_outputs_and_gradients():
    check_recorded("rmsnorm")


def test_rmsnorm_properties():
    from norms import RMSNorm, SSNorm
    g = gen(10)
    x = randn(g, 4, 64)
    norm = RMSNorm(64, eps=1e-5).double()
    y = norm(x)
    ms = y.pow(2).mean(-1)
    assert_close(ms, x.pow(2).mean(-1) / (x.pow(2).mean(-1) + 1e-5), "mean(RMSNorm(x)^2) with unit gain")
    no_eps = RMSNorm(64, eps=0.0).double()
    assert_close(no_eps(7.0 * x), no_eps(x), "RMSNorm(7 x) vs RMSNorm(x) with eps=0 (scale invariance)")
    ss = SSNorm(64, eps=1e-5).double()
    with torch.no_grad():
        ss.gain.fill_(2.5)
    assert_close(ss(x), 2.5 * y, "SSNorm with gain 2.5 vs 2.5 * RMSNorm (SSNorm reuses rms_norm)")


def test_rmsnorm_degenerate_inputs():
    """The spec: a zero vector gives the bias (0 without one), with finite gradients; a constant vector c
    gives c / sqrt(c^2 + eps) * gain; one row, one vector and d = 1 work like any other."""
    from norms import rms_norm
    g = gen(15)
    gain, bias = 1 + 0.3 * randn(g, 8), 0.3 * randn(g, 8)
    zero = torch.zeros(3, 8, dtype=torch.float64, requires_grad=True)
    out = rms_norm(zero, gain, bias, 1e-5)
    assert_close(out, bias.expand(3, 8), "rms_norm of a zero vector (the spec: the bias)", atol=1e-15)
    out.sum().backward()
    assert_finite(zero.grad, "the gradient of rms_norm at a zero vector")
    assert_close(rms_norm(zero.detach(), gain, None, 1e-5), torch.zeros(3, 8, dtype=torch.float64),
                 "rms_norm of a zero vector without bias", atol=0)
    const = torch.full((2, 8), -3.0, dtype=torch.float64)
    assert_close(rms_norm(const, gain, None, 1e-5), -3.0 / math.sqrt(9.0 + 1e-5) * gain.expand(2, 8),
                 "rms_norm of the constant vector -3")
    x = randn(g, 5, 8)
    batch = rms_norm(x, gain, bias, 1e-5)
    assert_close(rms_norm(x[2:3], gain, bias, 1e-5), batch[2:3], "one row vs the same row in a batch")
    assert_close(rms_norm(x[2], gain, bias, 1e-5), batch[2], "a 1-D vector vs the same row in a batch")
    one = rms_norm(torch.tensor([[2.0], [-0.5]], dtype=torch.float64), gain[:1], None, 0.0)
    assert_close(one, torch.tensor([[1.0], [-1.0]], dtype=torch.float64) * gain[:1], "d = 1, eps = 0: sign(x) g")


def test_rmsnorm_takes_statistics_in_float32():
    """In bfloat16 the statistics are off by about a rounding step, visible against the float64 result
    rounded once (unit gain); in float16 squares overflow past 256 (values here up to ~1200). The dtype of
    the input is kept."""
    from norms import rms_norm
    g = gen(16)
    x, gain, bias = randn(g, 64, 64), 1 + 0.3 * randn(g, 64), 0.3 * randn(g, 64)
    xb, ones = x.bfloat16(), torch.ones(64, dtype=torch.bfloat16)
    out = rms_norm(xb, ones, None, 1e-5)
    assert out.dtype == torch.bfloat16, f"rms_norm of a bfloat16 input gives {out.dtype}: keep the input's dtype"
    assert_rounded_like_float64(out, rms_norm(xb.double(), ones.double(), None, 1e-5), "rms_norm of bfloat16 inputs")
    xh, gh, bh = (300 * x).half(), gain.half(), bias.half()
    out = rms_norm(xh, gh, bh, 1e-5)
    assert out.dtype == torch.float16, f"rms_norm of a float16 input gives {out.dtype}: keep the input's dtype"
    assert_close(out, rms_norm(xh.double(), gh.double(), bh.double(), 1e-5),
                 f"rms_norm of float16 inputs up to {xh.abs().max():.0f} (their squares overflow float16)",
                 atol=1e-2, rtol=1e-2)
    out = rms_norm(x.float(), gain.float(), None, 1e-5)
    assert out.dtype == torch.float32, f"rms_norm of a float32 input gives {out.dtype}"


# ---------------------------------------------------------------------------------------------
# centre_writer: the hook in model.make_stream_zero_mean

def test_centre_writer_matches_recorded_outputs():
    check_recorded("centre_writer")


def test_centre_writer_writes_p_y():
    """P y is the only vector that is zero-mean and differs from y by a constant: check both properties."""
    from norms import decompress
    data = exercises.load_recorded("centre_writer")["inputs"]
    from model import GPT, GPTConfig
    with torch.no_grad():
        plain = GPT(GPTConfig(**{**data["gpt"]["config"], "zero_mean": False})).double()
        plain.load_state_dict(data["gpt"]["state"])
        raw = {"embedding": plain.embed(data["gpt"]["idx"]), "attention": plain.transformer.h[0].attn(data["h"]),
               "MLP": plain.transformer.h[0].mlp(data["h"])}
        for compress in (False, True):
            written = exercises.writer_outputs(data["gpt"], data["h"], compress)
            for name, y in written.items():
                d = raw[name].shape[-1]
                want_width = d - 1 if compress else d
                assert y.shape[-1] == want_width, \
                    f"{name} writes {y.shape[-1]} coordinates with compress={compress}, expected {want_width}"
                full = decompress(y) if compress else y
                assert full.mean(-1).abs().max() < 1e-12, \
                    f"{name} output (compress={compress}) has mean up to {full.mean(-1).abs().max():.3g}, not 0"
                shift = raw[name] - full
                spread = (shift.amax(-1) - shift.amin(-1)).max()
                assert spread < 1e-12, (f"{name} output (compress={compress}) differs from the uncentred output by "
                                        f"more than a constant per vector (spread {spread:.3g})")


def test_centre_writer_degenerate_inputs():
    """A writer whose output is constant (here: zero weights, a constant bias) or zero writes zeros; a
    single token works like any other."""
    data = exercises.load_recorded("centre_writer")["inputs"]
    from model import GPT, GPTConfig, make_stream_zero_mean
    d = data["gpt"]["config"]["n_embd"]
    for compress in (False, True):
        model = GPT(GPTConfig(**{**data["gpt"]["config"], "zero_mean": False})).double()
        model.load_state_dict(data["gpt"]["state"])
        make_stream_zero_mean(model, compress=compress)
        mlp = model.transformer.h[0].mlp
        with torch.no_grad():
            h = data["h"][:1, :1]  # one sequence of one token
            full = model.transformer.h[0].mlp(data["h"])
            one = mlp(h)
            assert_close(one, full[:1, :1], f"a single token vs the same token in a batch (compress={compress})",
                         atol=1e-14)
            mlp.c_proj.weight.zero_()
            for constant in (0.0, 2.5):
                if mlp.c_proj.bias is None and constant:
                    continue
                if mlp.c_proj.bias is not None:
                    mlp.c_proj.bias.fill_(constant)
                out = mlp(data["h"])
                width = d - 1 if compress else d
                assert_close(out, torch.zeros(*data["h"].shape[:-1], width, dtype=torch.float64),
                             f"the write of the constant vector {constant} (compress={compress})", atol=1e-15)


def test_centre_writer_keeps_the_pre_ln_model():
    """With LayerNorm, a zero-mean stream changes nothing: same loss and gradients, float64."""
    data = exercises.load_recorded("centre_writer")["inputs"]["gpt"]
    centred = exercises.tiny_gpt_outputs(data)
    plain = exercises.tiny_gpt_outputs({**data, "config": {**data["config"], "zero_mean": False}})
    for key, want in plain.items():
        assert_close(centred[key], want, f"zero_mean=True vs the plain Pre-LN model: {key}", atol=1e-10, rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# crms: norms.CRMSNorm.forward

def test_crms_matches_recorded_outputs_and_gradients():
    check_recorded("crms")


def test_crms_on_the_first_d_minus_1_coordinates_is_layernorm():
    """Jiang et al.: for a zero-mean x, CRMS(x[:d-1]) with LN's gain and bias is LN(x); no gain: LN(x)[:d-1]."""
    from norms import CRMSNorm
    g = gen(11)
    x = randn(g, 3, 5, 16)
    x = x - x.mean(-1, keepdim=True)
    weight, bias = 1 + 0.3 * randn(g, 16), 0.3 * randn(g, 16)
    norm = CRMSNorm(16, eps=1e-5).double()
    with torch.no_grad():
        norm.weight.copy_(weight)
        norm.bias.copy_(bias)
    assert_close(norm(x[..., :-1]), F.layer_norm(x, (16,), weight, bias, 1e-5), "CRMSNorm(affine) vs LayerNorm")
    compact = CRMSNorm(16, eps=1e-5, affine=False)
    assert_close(compact(x[..., :-1]), F.layer_norm(x, (16,), eps=1e-5)[..., :-1],
                 "CRMSNorm(affine=False) vs the first d-1 coordinates of LayerNorm without gain")


def crms_norms(d, gain, bias):
    """CRMSNorm with LN's gain and bias, without bias, and compact (affine=False), float64."""
    from norms import CRMSNorm
    affine, no_bias = CRMSNorm(d, eps=1e-5).double(), CRMSNorm(d, eps=1e-5, bias=False).double()
    with torch.no_grad():
        for norm in (affine, no_bias):
            norm.weight.copy_(gain)
        affine.bias.copy_(bias)
    return {"affine": affine, "no bias": no_bias, "compact": CRMSNorm(d, eps=1e-5, affine=False).double()}


def test_crms_degenerate_inputs():
    """The spec: a zero z gives the bias (affine), zeros (no bias: d of them; compact: d-1), with finite
    gradients; d = 2 (z of one coordinate) and a single row work like any other."""
    g = gen(17)
    gain, bias = 1 + 0.3 * randn(g, 8), 0.3 * randn(g, 8)
    zeros = {"affine": bias.expand(3, 8), "no bias": torch.zeros(3, 8, dtype=torch.float64),
             "compact": torch.zeros(3, 7, dtype=torch.float64)}
    z = randn(g, 4, 7)
    for kind, norm in crms_norms(8, gain, bias).items():
        zero = torch.zeros(3, 7, dtype=torch.float64, requires_grad=True)
        out = norm(zero)
        assert_close(out, zeros[kind], f"CRMSNorm({kind}) of a zero z (the spec: the bias, or zeros)", atol=1e-15)
        out.sum().backward()
        assert_finite(zero.grad, f"the gradient of CRMSNorm({kind}) at a zero z")
        assert_close(norm(z[1:2]), norm(z)[1:2], f"CRMSNorm({kind}): one row vs the same row in a batch")
    # d = 2: x = [t, -t], so CRMS(t) = t / sqrt(t^2 + eps), and LN's gain and bias act on [y, -y]
    t = torch.tensor([[3.0], [-0.25]], dtype=torch.float64)
    y = t / (t ** 2 + 1e-5).sqrt()
    two = crms_norms(2, gain[:2], bias[:2])
    assert_close(two["compact"](t), y, "compact CRMSNorm with d = 2")
    assert_close(two["affine"](t), torch.cat([y, -y], -1) * gain[:2] + bias[:2], "CRMSNorm with d = 2")


def test_crms_takes_statistics_in_float32():
    """As for rmsnorm: bfloat16 statistics are visibly off (unit gain), float16 squares overflow; the dtype
    is kept."""
    g = gen(18)
    z, gain, bias = randn(g, 64, 63), 1 + 0.3 * randn(g, 64), 0.3 * randn(g, 64)
    zb, zh = z.bfloat16(), (300 * z).half()
    unit = crms_norms(64, torch.ones(64, dtype=torch.float64), torch.zeros(64, dtype=torch.float64))
    for kind, norm in unit.items():
        want = norm(zb.double())
        out = norm.bfloat16()(zb)
        assert out.dtype == torch.bfloat16, f"CRMSNorm({kind}) of a bfloat16 input gives {out.dtype}: keep its dtype"
        assert_rounded_like_float64(out, want, f"CRMSNorm({kind}) of bfloat16 inputs")
    for kind, norm in crms_norms(64, gain.half().double(), bias.half().double()).items():
        want = norm(zh.double())
        out = norm.half()(zh)
        assert out.dtype == torch.float16, f"CRMSNorm({kind}) of a float16 input gives {out.dtype}: keep its dtype"
        assert_close(out, want, f"CRMSNorm({kind}) of float16 inputs up to {zh.abs().max():.0f} (their squares "
                     f"overflow float16)", atol=1e-2, rtol=1e-2)


# ---------------------------------------------------------------------------------------------
# layernorm_scaling: model.layernorm_scaling

def test_layernorm_scaling_matches_recorded_scales_and_gpt():
    check_recorded("layernorm_scaling")


def test_layernorm_scaling_degenerate_inputs():
    """Block 1 (the first, and the only one of a 1-layer model) is not scaled: s_1 = 1."""
    from model import layernorm_scaling
    assert float(layernorm_scaling(1)) == 1.0, f"layernorm_scaling(1) = {layernorm_scaling(1)}, expected 1"
    data = exercises.load_recorded("layernorm_scaling")["inputs"]["gpt"]
    one = {**data, "config": {**data["config"], "n_layer": 1},
           "state": {k: v for k, v in data["state"].items() if not re.match(r"transformer\.h\.[1-9]", k)}}
    scaled = exercises.tiny_gpt_outputs(one)
    plain = exercises.tiny_gpt_outputs({**one, "config": {**one["config"], "depth_scale": False}})
    for key, want in plain.items():
        assert_close(scaled[key], want, f"a 1-layer GPT with depth_scale=True vs without: {key}", atol=1e-14)


# ---------------------------------------------------------------------------------------------
# mix_ln: model.mix_ln_placement

def test_mix_ln_matches_recorded_placements_and_gpt():
    from model import mix_ln_placement
    recorded = exercises.load_recorded("mix_ln")["outputs"]
    for L in range(1, 25):
        for r, want in zip(exercises.MIX_RATIOS, recorded[f"placements for n_layer={L}"].tolist()):
            got = [mix_ln_placement(l, L, r) for l in range(L)]
            want = ["post" if w else "pre" for w in want]
            if got != want:
                pytest.fail(f"mix_ln: n_layer={L}, mix_ratio={r:.4g}: got {got.count('post')} post blocks "
                            f"{got}, the reference has {want.count('post')}: {want}", pytrace=False)
    check_recorded("mix_ln")


def test_mix_ln_post_blocks_come_first():
    from model import mix_ln_placement
    for L in (1, 5, 12, 24):
        for r in exercises.MIX_RATIOS:
            kinds = [mix_ln_placement(l, L, r) for l in range(L)]
            assert set(kinds) <= {"pre", "post"}, f"mix_ln_placement returned {sorted(set(kinds))}: use 'pre' or 'post'"
            n_post = kinds.count("post")
            assert kinds == ["post"] * n_post + ["pre"] * (L - n_post), \
                f"n_layer={L}, mix_ratio={r:.4g}: {kinds}: the Post-LN blocks must come first"


def test_mix_ln_degenerate_inputs():
    """mix_ratio 0: every block Pre-LN; 1: every block Post-LN; one layer at 0.5: floor(0.5) = 0 Post-LN."""
    from model import mix_ln_placement
    for L in (1, 2, 7):
        for r, want in ((0.0, "pre"), (1.0, "post")):
            got = [mix_ln_placement(l, L, r) for l in range(L)]
            assert got == [want] * L, f"n_layer={L}, mix_ratio={r}: {got}, expected all {want!r}"
    assert mix_ln_placement(0, 1, 0.5) == "pre", "n_layer=1, mix_ratio=0.5: floor(0.5) = 0 Post-LN blocks"


# ---------------------------------------------------------------------------------------------
# newton_schulz: optim.zeropower_via_newtonschulz5

def test_newton_schulz_matches_recorded_outputs():
    check_recorded("newton_schulz")


def quintic(s, steps=5):
    """The spec's map of one singular value, applied `steps` times."""
    for _ in range(steps):
        s = 3.4445 * s - 4.7750 * s ** 3 + 2.0315 * s ** 5
    return s


def test_newton_schulz_properties():
    from optim import zeropower_via_newtonschulz5 as ns
    g = gen(12)
    # G = U diag(s) V^T with singular values in [0.1, 1] (0.1 of the largest and up): after 5 steps every
    # one of them is in [0.68, 1.2] (EXERCISES.md#newton_schulz measures the range)
    U, _ = torch.linalg.qr(randn(g, 6, 6))
    V, _ = torch.linalg.qr(randn(g, 9, 6))
    G = U @ torch.diag(torch.linspace(0.1, 1.0, 6, dtype=torch.float64)) @ V.T
    X = ns(G)
    assert X.shape == G.shape and X.dtype == torch.float64, \
        f"a float64 {tuple(G.shape)} matrix on CPU gives {X.dtype} {tuple(X.shape)}"
    s = torch.linalg.svdvals(X)
    assert s.min() > 0.6 and s.max() < 1.2, f"singular values after 5 steps {s.tolist()}, expected within [0.6, 1.2]"
    # Q G and G share ||G||_F, so whatever eps the normalization uses, these hold to float64 rounding
    Q, _ = torch.linalg.qr(randn(g, 6, 6))
    assert_close(ns(Q @ G), Q @ X, "NS(Q G) vs Q NS(G) for an orthogonal Q (float64 stays float64)", atol=1e-9)
    assert_close(ns(G.T), X.T, "NS(G^T) vs NS(G)^T", atol=1e-9)
    assert_close(ns(10.0 * G), X, "NS(10 G) vs NS(G) (the normalization removes the scale)", atol=1e-6)
    batch = torch.stack([G, 2 * G, U @ G])
    assert_close(ns(batch), torch.stack([ns(m) for m in batch]), "a batch of matrices vs one at a time", atol=1e-9)
    for dtype in (torch.float32, torch.bfloat16):
        assert ns(G.to(dtype)).dtype == dtype, f"a {dtype} matrix gives {ns(G.to(dtype)).dtype}: return G's dtype"


def test_newton_schulz_degenerate_inputs():
    """The spec: a zero matrix gives a zero matrix (and leaves the others of its batch alone); a single row
    (or column, or 1 x 1) g gives f(1) g / ||g||, its one singular value mapped by the quintic."""
    from optim import zeropower_via_newtonschulz5 as ns
    g = gen(19)
    for shape in ((4, 4), (3, 7), (7, 3)):
        zero = torch.zeros(*shape, dtype=torch.float64)
        assert_close(ns(zero), zero, f"NS of a {shape[0]} x {shape[1]} zero matrix", atol=0)
    G = randn(g, 5, 6)
    batch = ns(torch.stack([G, torch.zeros_like(G)]))
    assert_close(batch[0], ns(G), "a matrix batched with a zero matrix vs alone", atol=1e-12)
    assert_close(batch[1], torch.zeros_like(G), "a zero matrix batched with another", atol=0)
    row = 1e3 * randn(g, 1, 9)  # a norm of ~3e3: any eps of the normalization is below 1e-10
    assert_close(ns(row), quintic(1.0) * row / row.norm(), "NS of a single row", atol=1e-9)
    assert_close(ns(row.T), quintic(1.0) * row.T / row.norm(), "NS of a single column", atol=1e-9)
    one = torch.tensor([[-250.0]], dtype=torch.float64)
    assert_close(ns(one), torch.tensor([[-quintic(1.0)]], dtype=torch.float64), "NS of a 1 x 1 matrix", atol=1e-9)


# ---------------------------------------------------------------------------------------------
# excess_kurtosis: analyze.excess_kurtosis

def test_excess_kurtosis_matches_recorded_outputs():
    check_recorded("excess_kurtosis")


def test_excess_kurtosis_properties():
    from analyze import excess_kurtosis as ek
    g = gen(14)
    x = randn(g, 3, 4, 50)
    k = ek(x)
    assert k.shape == (3, 4) and k.dtype == torch.float64, f"shape {tuple(k.shape)} {k.dtype}, expected (3, 4) float64"
    assert_close(ek(2.5 * x + 7.0), k, "kurtosis of 2.5 x + 7 vs of x (shift and scale invariance)", atol=1e-9)
    signs = torch.tensor([1.0, -1.0] * 8, dtype=torch.float64)
    assert_close(ek(signs), torch.tensor(-2.0, dtype=torch.float64), "excess kurtosis of +-1 values")
    big = ek(randn(g, 200_000))
    assert abs(big.item()) < 0.1, f"excess kurtosis of 200k Gaussian samples {big.item():.3f}, expected about 0"
    assert ek(randn(g, 32, dtype=torch.float32)).dtype == torch.float64, "compute in float64"


def test_excess_kurtosis_degenerate_inputs():
    """The spec: a constant vector (variance 0: a zero vector, d = 1) has excess kurtosis 0; the other rows
    of its batch are unaffected."""
    from analyze import excess_kurtosis as ek
    g = gen(20)
    x = randn(g, 64)
    for what, v in (("a zero vector", torch.zeros(64)), ("the constant vector 3", torch.full((64,), 3.0)),
                    ("a vector of one coordinate", torch.tensor([-1.5]))):
        batch = ek(torch.stack([x, v.double()]) if v.numel() == 64 else v.double())
        got = batch[-1] if v.numel() == 64 else batch
        assert_close(got, torch.tensor(0.0, dtype=torch.float64), f"excess kurtosis of {what} (the spec: 0)", atol=0)
        if v.numel() == 64:
            assert_close(batch[0], ek(x), f"a row batched with {what} vs alone", atol=1e-12)
    assert_close(ek(torch.zeros(2, 3, 16, dtype=torch.float32)), torch.zeros(2, 3, dtype=torch.float64),
                 "excess kurtosis of float32 zero vectors", atol=0)


# ---------------------------------------------------------------------------------------------
# angular_distance: analyze.angular_distance

def test_angular_distance_matches_recorded_outputs():
    check_recorded("angular_distance")


def assert_angle(got, want, what):
    """Compare d through cos(pi d): d = arccos(c)/pi magnifies an error e of c to sqrt(2e)/pi near d = 0,
    so a correct eps placement or an atan2 form differs there by far more than rounding (exercises.py,
    COMPARE_AS). The cosine of two float64 vectors is good to ~1e-14, an eps of 1e-12 moves it by at most
    1e-12 / (|a| |b|) (the inputs here: |a| |b| >= 1), float32 work is off by ~1e-7."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    assert bool(((got >= 0) & (got <= 1)).all()), f"{what}: {got.flatten()[:4].tolist()}, outside [0, 1]"
    assert_close((math.pi * got).cos(), (math.pi * want.double()).cos(), f"{what} (as cos(pi d))", atol=2e-12, rtol=0)


def test_angular_distance_properties():
    from analyze import angular_distance as ad
    g = gen(13)
    a, b = randn(g, 5, 7, 16), randn(g, 5, 7, 16)
    d = ad(a, b)
    assert d.shape == (5, 7) and d.dtype == torch.float64, f"shape {tuple(d.shape)} {d.dtype}, expected (5, 7) float64"
    assert bool(((d >= 0) & (d <= 1)).all()), "angular distance outside [0, 1]"
    assert_angle(ad(a, a), torch.zeros(5, 7, dtype=torch.float64), "d(a, a)")
    assert_angle(ad(a, -a), torch.ones(5, 7, dtype=torch.float64), "d(a, -a)")
    assert_close(ad(b, a), d, "d(b, a) vs d(a, b)")
    assert_close(ad(3.0 * a, 0.5 * b), d, "d(3a, 0.5b) vs d(a, b)")
    e = torch.eye(4, dtype=torch.float64)
    assert_close(ad(e[0], e[1]), torch.tensor(0.5, dtype=torch.float64), "d of two orthogonal vectors")
    f = randn(g, 3, 64, dtype=torch.float32)
    assert_angle(ad(f, f), torch.zeros(3, dtype=torch.float64), "float32 d(a, a): compute in float64")


def test_angular_distance_degenerate_inputs():
    """The spec: a zero vector has no direction; its distance to anything is 0.5 (the cosine taken as 0),
    finite. One coordinate: 0 for the same sign, 1 for opposite signs. One row works like a batch."""
    from analyze import angular_distance as ad
    g = gen(21)
    a = randn(g, 4, 16)
    zero = torch.zeros(4, 16, dtype=torch.float64)
    half = torch.full((4,), 0.5, dtype=torch.float64)
    for what, (u, v) in (("d(0, a)", (zero, a)), ("d(a, 0)", (a, zero)), ("d(0, 0)", (zero, zero)),
                         ("float32 d(0, a)", (zero.float(), a.float()))):
        assert_close(ad(u, v), half, f"{what} (the spec: 0.5)", atol=1e-15)
    x, y = torch.tensor([[2.0], [2.0]], dtype=torch.float64), torch.tensor([[5.0], [-3.0]], dtype=torch.float64)
    assert_angle(ad(x, y), torch.tensor([0.0, 1.0], dtype=torch.float64), "one coordinate: same and opposite sign")
    b = randn(g, 4, 16)
    assert_close(ad(a[1:2], b[1:2]), ad(a, b)[1:2], "one row vs the same row in a batch", atol=1e-15)
# ---------------------------------------------------------------------------------------------
# the tool: make, grade, record (needs the reference code; skipped in a student copy)

def reference_bodies():
    try:
        return exercises.marked_bodies(ROOT)
    except exercises.ExerciseError:
        return {}


REFERENCE = bool(reference_bodies())
tool = pytest.mark.skipif(not REFERENCE, reason="a student copy: no exercise markers to cut")
TINY_TRAIN = ["--n_layer=2", "--n_head=2", "--n_embd=16", "--block_size=16", "--batch_size=2", "--eval_iters=1",
              "--log_interval=1", "--dtype=float32", "--device=cpu", "--save_checkpoint=False", "--warmup_iters=1"]


@tool
def test_tool_every_exercise_is_marked():
    """All exercises are marked in the reference. (newton_schulz is marked in optim.py by the lead's merge.)"""
    bodies = reference_bodies()
    missing = [f"{n} (in {ex.file}: {ex.where})" for n, ex in exercises.EXERCISES.items() if n not in bodies]
    for name, (path, lines) in bodies.items():
        assert path == exercises.EXERCISES[name].file, f"{name} is marked in {path}, not {exercises.EXERCISES[name].file}"
        assert exercises.solution_lines(bodies, name), f"{name}: no line of its body is its own; the leak check is blind"
    assert not missing, f"no markers for {', '.join(missing)}"


@tool
def test_tool_recorded_inputs_are_reproducible():
    for name, (make_inputs, _) in exercises.CASES.items():
        stored = exercises.load_recorded(name)["inputs"]
        fresh = make_inputs(torch.Generator().manual_seed(sum(map(ord, name))))
        for key, value in flatten(fresh).items():
            # exp() (the heavy-tailed kurtosis input) may round 1 ulp differently on another CPU
            assert torch.allclose(value, flatten(stored)[key], rtol=4e-16, atol=0), \
                f"{name}: input {key} changed: run python exercises.py record"


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        elif isinstance(v, torch.Tensor):
            out[prefix + k] = v
    return out


@tool
def test_tool_make_refuses_and_checks_only(tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    for argv in (["make", str(tmp_path / "full")], ["make", os.path.join(ROOT, "inside")],
                 ["make", str(tmp_path / "a"), "--only=rmsnorm,nope"], ["grade", "--only=rmsnorm"], ["frobnicate"]):
        assert exercises.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and len(err.splitlines()) == 1, err
    assert (tmp_path / "full" / "x").read_text() == "mine" and not os.path.exists(os.path.join(ROOT, "inside"))
    dest = tmp_path / "only"
    assert exercises.main(["make", str(dest), "--only=rmsnorm,mix_ln"]) == 0
    norms, model = (dest / "norms.py").read_text(), (dest / "model.py").read_text()
    assert exercises.stub("rmsnorm", "    ") in norms and exercises.stub("mix_ln", "    ") in model
    bodies = reference_bodies()
    for kept in ("crms", "layernorm_scaling", "centre_writer"):
        assert "\n".join(bodies[kept][1]) in (dest / bodies[kept][0]).read_text(), f"{kept} lost its solution"
    assert "exercise:" not in norms + model and not (dest / "tests" / "test_model.py").exists()
    assert (dest / "tests" / "test_optim.py").exists() and not (dest / ".git").exists()


@pytest.fixture(scope="module")
def student_copy(tmp_path_factory):
    dest = tmp_path_factory.mktemp("copy") / "student"
    exercises.make(str(dest), log=lambda *a, **k: None)
    return dest


def copy_files(folder):
    return {p: (folder / p).read_bytes() for p in exercises.project_files(str(folder))}


@tool
def test_tool_copy_holds_no_solution(student_copy):
    bodies = reference_bodies()
    files = copy_files(student_copy)
    assert "exercises.py" in files and "EXERCISES.md" in files and "tests/test_exercises.py" in files
    assert not set(exercises.GRADER_ONLY) & set(files), "the grader's answer key is in the student copy"
    assert not any(p.startswith((".git/", "results/", "data/")) or p == ".git" for p in files)
    for name, (path, _) in bodies.items():
        assert exercises.stub(name, "").strip() in files[path].decode(), f"{path} lacks the stub of {name}"
        assert (student_copy / exercises.DATA_DIR / f"{name}.pt").exists()
        for test_file in exercises.SOLUTION_TESTS[name]:
            assert test_file not in files, f"{test_file} (holds the solution of {name}) is in the copy"
        for line in exercises.solution_lines(bodies, name):
            holders = [p for p, data in files.items() if line.encode() in data]
            assert not holders, f"the copy holds the solution of {name}: {line!r} in {holders}"
    for path, data in files.items():
        if path.endswith(".py"):
            assert not exercises.find_markers(data.decode(), path), f"markers left in {path}"


@tool
def test_tool_copy_grades_zero(student_copy):
    p = subprocess.run([sys.executable, "exercises.py", "grade"], cwd=student_copy, env=ENV, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    rows = {line.split()[0]: line for line in p.stdout.splitlines()}
    for name in reference_bodies():
        assert "FAIL" in rows[name] and f"SystemExit: {exercises.not_done(name)}"[:100] in rows[name], p.stdout


@tool
def test_tool_each_switch_names_its_exercise(tmp_path, tiny_dataset):
    """Cut one exercise at a time: its train.py switch stops with its one line; all cut: one of them."""
    data_dir, name = tiny_dataset
    jobs = []
    for ex_name, ex in exercises.EXERCISES.items():
        assert ex.switch[0].split("=")[0] in exercises.not_done(ex_name), exercises.not_done(ex_name)
        if ex_name in reference_bodies():
            exercises.make(str(tmp_path / ex_name), only=ex_name, log=lambda *a, **k: None)
            jobs.append((ex_name, str(tmp_path / ex_name), ["--max_iters=1", *ex.switch]))
    exercises.make(str(tmp_path / "all"), log=lambda *a, **k: None)
    jobs += [(f"all:{n}", str(tmp_path / "all"), flags) for n, _, flags in jobs]
    jobs.append(("default", str(tmp_path / "all"), ["--max_iters=5"]))  # every exercise cut: still trains
    base = [*TINY_TRAIN, f"--data_dir={data_dir}", f"--dataset={name}", f"--out_dir={tmp_path / 'o'}"]
    script = (
        "import json, os, sys\n"
        "results = {}\n"
        f"for label, folder, flags in {jobs!r}:\n"
        "    for m in ('train', 'model', 'norms', 'optim', 'analyze', 'convert', 'prepare', 'configurator'):\n"
        "        sys.modules.pop(m, None)\n"
        "    sys.path.insert(0, folder); os.chdir(folder)\n"
        "    import train\n"
        "    try:\n"
        f"        train.main({base!r} + flags); results[label] = 'ran'\n"
        "    except SystemExit as e:\n"
        "        results[label] = e.code if isinstance(e.code, str) else f'exit {e.code}'\n"
        "    sys.path.remove(folder)\n"
        "print('RESULTS', json.dumps(results))\n")
    p = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    results = json.loads(p.stdout.split("RESULTS", 1)[1])
    assert results.pop("default") == "ran", f"the default run fails with every exercise cut:\n{p.stdout[-3000:]}"
    assert "iter 5" in p.stdout, p.stdout[-3000:]
    for label, message in results.items():
        ex_name = label.removeprefix("all:")
        allowed = (ex_name,) + (exercises.EXERCISES[ex_name].needs if label.startswith("all:") else ())
        named = [n for n in allowed if message == exercises.not_done(n)]
        assert named, f"{label}: switch {exercises.EXERCISES[ex_name].switch} gave {message!r}"
    # as the student runs it: a real `python train.py` prints that one line on stderr and nothing else.
    # The two run at once, so each gets its own out_dir: two train.py writing one out_dir race on run.json.
    runs = {(flag, needed): subprocess.Popen([sys.executable, "train.py", *base[:-1],
                                              f"--out_dir={tmp_path / ('o_' + needed)}", "--max_iters=1", flag],
                                             cwd=tmp_path / "all", env=ENV, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)
            for flag, needed in (("--norm=rms", "rmsnorm"), ("--norm=crms", "centre_writer"))}
    for (flag, needed), run in runs.items():
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 1 and stderr.splitlines() == [exercises.not_done(needed)], \
            f"python train.py {flag} in a student copy: exit {run.returncode}, stderr:\n{stderr[-2000:]}"
        assert flag in stderr and f"EXERCISES.md#{needed}" in stderr, stderr


@tool
def test_tool_one_solution_back_passes_exactly_that_exercise(tmp_path):
    bodies = reference_bodies()
    back = "rmsnorm"
    dest = tmp_path / "student"
    exercises.make(str(dest), log=lambda *a, **k: None)
    path, lines = bodies[back]
    text = (dest / path).read_text()
    stub_line = next(l for l in text.splitlines(keepends=True) if exercises.not_done(back) in l)
    (dest / path).write_text(text.replace(stub_line, "".join(l + "\n" for l in lines)))
    p = subprocess.run([sys.executable, "exercises.py", "grade"], cwd=dest, env=ENV, capture_output=True, text=True,
                       timeout=300)
    rows = {line.split()[0]: line.split() for line in p.stdout.splitlines() if line.strip()}
    passed = [n for n in exercises.EXERCISES if rows[n][2] == "pass"]
    cut = [n for n in bodies if n != back]
    assert passed == [back] + [n for n in exercises.EXERCISES if n not in bodies], p.stdout
    assert all(rows[n][2] == "FAIL" for n in cut), p.stdout
    assert p.returncode == 1


# ---------------------------------------------------------------------------------------------
# the grader itself: correct answers written differently pass, common mistakes fail

def load_candidates():
    path = os.path.join(ROOT, *exercises.GRADER_ONLY[0].split("/"))
    if not os.path.exists(path):  # a student copy: make leaves the answer key out
        return None
    spec = importlib.util.spec_from_file_location("exercise_candidates", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CANDIDATES = load_candidates() if REFERENCE else None
CANDIDATE_CASES = [(name, label, verdict) for name in exercises.EXERCISES if CANDIDATES
                   for verdict, table in (("pass", CANDIDATES.CORRECT), ("fail", CANDIDATES.MISTAKES))
                   for label in table[name]]


def grader_verdict(name):
    """None when every grading test of the exercise passes, else the first failure in one line."""
    for test_name, test in list(globals().items()):
        if test_name.startswith(f"test_{name}_") and callable(test):
            try:
                test()
            except (Exception, pytest.fail.Exception, SystemExit) as e:
                return f"{test_name}: {type(e).__name__}: {exercises.one_line(str(e) or repr(e))}"
    return None


@tool
@pytest.mark.parametrize("name,label,verdict", CANDIDATE_CASES or [("none", "none", "pass")])
def test_tool_grader_passes_correct_answers_and_fails_mistakes(name, label, verdict, monkeypatch):
    if not CANDIDATES:
        pytest.skip("no tests/exercise_data/candidates.py")
    module_name, attr = CANDIDATES.TARGET[name]
    owner = __import__(module_name)
    *path, attr = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    candidate = (CANDIDATES.CORRECT if verdict == "pass" else CANDIDATES.MISTAKES)[name][label]
    monkeypatch.setattr(owner, attr, candidate)
    problem = grader_verdict(name)
    if verdict == "pass":
        assert problem is None, f"{name}: the correct {label!r} is refused: {problem}"
    else:
        assert problem is not None, f"{name}: the mistake {label!r} gets full marks"


@tool
def test_tool_grader_candidates_cover_every_exercise():
    if not CANDIDATES:
        pytest.skip("no tests/exercise_data/candidates.py")
    for name in exercises.EXERCISES:
        assert len(CANDIDATES.CORRECT[name]) >= 2 and len(CANDIDATES.MISTAKES[name]) >= 3, name


# ---------------------------------------------------------------------------------------------
# EXERCISES.md: its numbers and its commands are checked by running them

def exercises_md():
    with open(os.path.join(ROOT, "EXERCISES.md"), encoding="utf-8") as f:
        return f.read()


@tool
def test_tool_exercises_md_claims():
    """Every ```python block of EXERCISES.md states a claim with asserts: run each."""
    blocks = re.findall(r"```python\n(.*?)```", exercises_md(), re.S)
    assert len(blocks) >= 4, "EXERCISES.md lost its checked claims"
    for block in blocks:
        try:
            exec(compile(block, "EXERCISES.md", "exec"), {})
        except AssertionError as e:
            pytest.fail(f"a claim of EXERCISES.md does not hold:\n{block}\n{e!r}", pytrace=False)


def md_commands(text):
    """The `python SCRIPT ...` commands of EXERCISES.md (inline or in a bash block), whitespace collapsed."""
    inline = re.findall(r"`(python [^`\n]+(?:\n[^`\n]+)?)`", text)
    fenced = [line.split("#")[0] for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()]
    return [" ".join(c.split()) for c in inline + fenced if c.strip().startswith("python ")]


@tool
def test_tool_exercises_md_commands_take_their_flags():
    """train.py commands parse and pass train's config checks; other scripts' flags exist in their source;
    the sections follow the order of exercises.EXERCISES (dependencies first); the refusal it asks about
    (zero_mean with Post-LN) happens."""
    from configurator import parse_config, split_config
    from model import GPTConfig
    from optim import OptimConfig, check_config as check_optim_config
    import train
    text = exercises_md()
    commands = md_commands(text)
    assert sum(c.startswith("python train.py") for c in commands) >= 8, commands
    # inline flags alone (`--norm=rms --zero_mean=True`) are train.py's; not a bare `--out_dir` or a placeholder
    commands += ["python train.py " + " ".join(span.split()) for span in re.findall(r"`(--[^`]+)`", text)
                 if all(t.startswith("--") and "=" in t for t in span.split()) and not re.search(r"=N\b|\.\.\.", span)]
    for command in commands:
        script, *args = command.split()[1:]
        flags = [a for a in args if a.startswith("--")]
        if script == "train.py":
            cfg = parse_config(flags, GPTConfig, OptimConfig, train.TrainConfig)
            split_config(cfg, GPTConfig)  # checks the architecture
            train.check_train_config(split_config(cfg, train.TrainConfig))
            check_optim_config(split_config(cfg, OptimConfig))
        elif script == "-m":  # python -m pytest ...
            continue
        else:
            with open(os.path.join(ROOT, script), encoding="utf-8") as f:
                source = f.read()
            for flag in flags:
                key = flag[2:].split("=")[0]
                assert re.search(rf"\b{key}\b", source), f"EXERCISES.md: {command!r}: {script} has no {flag}"
    for png in set(re.findall(r"analysis_(\w+)\.png", text)):
        with open(os.path.join(ROOT, "analyze.py"), encoding="utf-8") as f:
            assert png in f.read(), f"EXERCISES.md names analysis_{png}.png, which analyze.py does not write"
    sections = re.findall(r"^## (\w+)$", text, re.M)
    assert sections == list(exercises.EXERCISES), f"EXERCISES.md sections {sections}, expected {list(exercises.EXERCISES)}"
    table = re.findall(r"^\| \[(\w+)\]", text, re.M)
    assert table == sections, f"the table lists {table}"
    for name, ex in exercises.EXERCISES.items():  # a dependency comes first
        assert all(sections.index(need) < sections.index(name) for need in ex.needs), name
    with pytest.raises(ValueError, match="zero_mean"):
        GPTConfig(norm_pos="post", zero_mean=True)
