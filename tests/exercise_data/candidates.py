"""
The grader's own test cases: for each exercise, correct implementations written differently from the
reference (the grader must pass every one) and common mistakes (it must fail every one).

tests/test_exercises.py (test_tool_grader_...) puts each candidate in place of the reference body and runs
that exercise's grading tests. This file holds correct answers, so `exercises.py make` never copies it into
a student copy (exercises.GRADER_ONLY).

CORRECT[name] and MISTAKES[name] map a label to a function with the signature of the exercise's
function; TARGET[name] says where it goes (module, attribute). centre_writer candidates are the hook's
body, centre(y, compress), put in place by centre_writer_with().
"""
import math

import torch
import torch.nn.functional as F

TARGET = {
    "rmsnorm": ("norms", "rms_norm"),
    "centre_writer": ("model", "make_stream_zero_mean"),
    "crms": ("norms", "CRMSNorm.forward"),
    "layernorm_scaling": ("model", "layernorm_scaling"),
    "mix_ln": ("model", "mix_ln_placement"),
    "newton_schulz": ("optim", "zeropower_via_newtonschulz5"),
    "excess_kurtosis": ("analyze", "excess_kurtosis"),
    "angular_distance": ("analyze", "angular_distance"),
}


def upcast(x):
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


# ---------------------------------------------------------------------------------------------
# rmsnorm


def rms_via_var_mean(x, gain, bias, eps):
    xf = upcast(x)
    var, mean = torch.var_mean(xf, dim=-1, unbiased=False, keepdim=True)
    y = xf / torch.sqrt(var + mean * mean + eps) * gain
    return (y if bias is None else y + bias).to(x.dtype)


def rms_via_vector_norm(x, gain, bias, eps):
    xf = upcast(x)
    d = xf.shape[-1]
    rms = torch.sqrt(torch.linalg.vector_norm(xf, dim=-1, keepdim=True) ** 2 / d + eps)
    y = gain * (xf / rms)
    return (y if bias is None else bias + y).to(x.dtype)


def rms_via_torch(x, gain, bias, eps):
    xf = upcast(x)
    y = F.rms_norm(xf, (xf.shape[-1],), eps=eps) * gain
    return (y if bias is None else y + bias).to(x.dtype)


def rms_affine_after_rounding(x, gain, bias, eps):
    """Statistics and normalization in float32, gain and bias in the input's dtype."""
    xf = upcast(x)
    y = (xf * (xf.square().mean(-1, keepdim=True) + eps).rsqrt()).to(x.dtype) * gain
    return y if bias is None else y + bias


def rms_scale_in_input_dtype(x, gain, bias, eps):  # float32 mean square, but the scale rounded to bf16
    xf = upcast(x)
    y = x * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps).to(x.dtype) * gain
    return y if bias is None else y + bias


def rms_stats_in_input_dtype(x, gain, bias, eps):  # no upcast: bf16 statistics
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain
    return y if bias is None else y + bias


def rms_eps_outside_sqrt(x, gain, bias, eps):
    xf = upcast(x)
    y = xf / (xf.pow(2).mean(-1, keepdim=True).sqrt() + eps) * gain
    return (y if bias is None else y + bias).to(x.dtype)


def rms_wrong_dim(x, gain, bias, eps):
    xf = upcast(x)
    y = xf * torch.rsqrt(xf.pow(2).mean(0, keepdim=True) + eps) * gain
    return (y if bias is None else y + bias).to(x.dtype)


def rms_nan_at_zero(x, gain, bias, eps):  # normalize first, then put eps back: equal except at x = 0
    xf = upcast(x)
    ms = xf.pow(2).mean(-1, keepdim=True)
    y = xf / ms.sqrt() * torch.sqrt(ms / (ms + eps)) * gain
    return (y if bias is None else y + bias).to(x.dtype)


def rms_centred(x, gain, bias, eps):  # LayerNorm's statistics, not RMSNorm's
    xf = upcast(x)
    y = (xf - xf.mean(-1, keepdim=True)) * torch.rsqrt(xf.var(-1, unbiased=False, keepdim=True) + eps) * gain
    return (y if bias is None else y + bias).to(x.dtype)


# ---------------------------------------------------------------------------------------------
# centre_writer: the hook's body, centre(y, compress)


def centre_with_matrix(y, compress):
    d = y.shape[-1]
    P = torch.eye(d, dtype=y.dtype, device=y.device) - 1.0 / d
    out = y @ P
    return out.narrow(-1, 0, d - 1) if compress else out


def centre_by_sum(y, compress):
    if compress:
        y_kept = y[..., :-1]
        return y_kept - y.sum(dim=-1, keepdim=True) / y.shape[-1]
    return y - y.sum(dim=-1, keepdim=True) / y.shape[-1]


def centre_wrong_dim(y, compress):  # the mean over the tokens
    out = y - y.mean(-2, keepdim=True)
    return out[..., :-1] if compress else out


def centre_after_compress(y, compress):  # the mean of the d-1 kept coordinates
    if compress:
        y = y[..., :-1]
    return y - y.mean(-1, keepdim=True)


def centre_drops_first(y, compress):
    out = y - y.mean(-1, keepdim=True)
    return out[..., 1:] if compress else out


def centre_writer_with(body):
    """make_stream_zero_mean with the hook's body replaced: the reference registers its hooks (the writers
    stay its choice), then each hook named `centre` is swapped for body."""
    import model as model_module
    reference = model_module.make_stream_zero_mean  # taken when this file is imported, before any swap

    def make_stream_zero_mean(gpt, compress):
        reference(gpt, compress)
        for module in gpt.modules():
            for key, hook in list(module._forward_hooks.items()):
                if getattr(hook, "__name__", "") == "centre":
                    module._forward_hooks[key] = lambda m, inputs, y: body(y, compress)
    return make_stream_zero_mean


# ---------------------------------------------------------------------------------------------
# crms


def crms_via_decompressed_rms(self, z):
    """Decompress first, then plain RMSNorm over the d coordinates."""
    zf = upcast(z)
    x = torch.cat([zf, -zf.sum(-1, keepdim=True)], dim=-1)
    y = x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps)
    if self.weight is None:
        return y[..., :-1].to(z.dtype)
    y = y * self.weight
    return (y if self.bias is None else y + self.bias).to(z.dtype)


def crms_via_einsum(self, z):
    zf = upcast(z)
    total = zf.sum(-1, keepdim=True)
    ms = (torch.einsum("...i,...i->...", zf, zf).unsqueeze(-1) + total.square()) / self.dim
    y = zf / (ms + self.eps).sqrt()
    if self.weight is None:
        return y.to(z.dtype)
    full = torch.cat([y, -y.sum(-1, keepdim=True)], -1)
    out = self.weight * full
    if self.bias is not None:
        out = out + self.bias
    return out.to(z.dtype)


def crms_affine_after_rounding(self, z):
    """CRMS in float32, then decompress, gain and bias in the input's dtype."""
    zf = upcast(z)
    ms = (zf.square().sum(-1, keepdim=True) + zf.sum(-1, keepdim=True).square()) / self.dim
    y = (zf / (ms + self.eps).sqrt()).to(z.dtype)
    if self.weight is None:
        return y
    y = torch.cat([y, -y.sum(-1, keepdim=True)], -1) * self.weight
    return y if self.bias is None else y + self.bias


def crms_stats_in_input_dtype(self, z):
    ms = (z.pow(2).sum(-1, keepdim=True) + z.sum(-1, keepdim=True).pow(2)) / self.dim
    y = z * torch.rsqrt(ms + self.eps)
    if self.weight is None:
        return y
    y = torch.cat([y, -y.sum(-1, keepdim=True)], -1) * self.weight
    return y if self.bias is None else y + self.bias


def crms_without_sum_term(self, z):  # RMS of the d-1 stored coordinates only
    zf = upcast(z)
    y = zf * torch.rsqrt(zf.pow(2).mean(-1, keepdim=True) + self.eps)
    if self.weight is None:
        return y.to(z.dtype)
    y = torch.cat([y, -y.sum(-1, keepdim=True)], -1) * self.weight
    return (y if self.bias is None else y + self.bias).to(z.dtype)


def crms_divides_by_d_minus_1(self, z):
    zf = upcast(z)
    ms = (zf.pow(2).sum(-1, keepdim=True) + zf.sum(-1, keepdim=True).pow(2)) / zf.shape[-1]
    y = zf * torch.rsqrt(ms + self.eps)
    if self.weight is None:
        return y.to(z.dtype)
    y = torch.cat([y, -y.sum(-1, keepdim=True)], -1) * self.weight
    return (y if self.bias is None else y + self.bias).to(z.dtype)


def crms_nan_at_zero(self, z):
    zf = upcast(z)
    ms = (zf.pow(2).sum(-1, keepdim=True) + zf.sum(-1, keepdim=True).pow(2)) / self.dim
    y = zf / ms.sqrt() * (ms / (ms + self.eps)).sqrt()
    if self.weight is None:
        return y.to(z.dtype)
    y = torch.cat([y, -y.sum(-1, keepdim=True)], -1) * self.weight
    return (y if self.bias is None else y + self.bias).to(z.dtype)


# ---------------------------------------------------------------------------------------------
# layernorm_scaling


def lns_power(l):
    return l ** -0.5


def lns_sqrt_of_inverse(l):
    return math.sqrt(1.0 / l)


def lns_torch_float64(l):
    return torch.tensor(l, dtype=torch.float64).rsqrt().item()


def lns_counts_from_0(l):  # treats l as a 0-based index
    return 1.0 / math.sqrt(l + 1)


def lns_inverse_l(l):
    return 1.0 / l


def lns_float32(l):
    return torch.tensor(float(l)).rsqrt().item()


# ---------------------------------------------------------------------------------------------
# mix_ln


def mix_int(layer_idx, n_layer, mix_ratio):
    return "post" if layer_idx < int(mix_ratio * n_layer) else "pre"


def mix_one_based(layer_idx, n_layer, mix_ratio):
    n_post = math.floor(n_layer * mix_ratio)
    return "pre" if layer_idx + 1 > n_post else "post"


def mix_list(layer_idx, n_layer, mix_ratio):
    n_post = math.floor(mix_ratio * n_layer)
    return (["post"] * n_post + ["pre"] * (n_layer - n_post))[layer_idx]


def mix_off_by_one(layer_idx, n_layer, mix_ratio):
    return "post" if layer_idx <= math.floor(mix_ratio * n_layer) else "pre"


def mix_round(layer_idx, n_layer, mix_ratio):
    return "post" if layer_idx < round(mix_ratio * n_layer) else "pre"


def mix_fraction(layer_idx, n_layer, mix_ratio):  # l / L < r is l < ceil(r L), not floor
    return "post" if layer_idx / n_layer < mix_ratio else "pre"


def mix_post_last(layer_idx, n_layer, mix_ratio):
    return "post" if layer_idx >= n_layer - math.floor(mix_ratio * n_layer) else "pre"


# ---------------------------------------------------------------------------------------------
# newton_schulz

A, B, C = 3.4445, -4.7750, 2.0315


def ns_tall_gram(G, steps=5):
    """Iterates with the Gram matrix on the other side (X^T X) and never transposes."""
    X = G.to(torch.bfloat16) if G.is_cuda else G.clone()
    X = X / X.flatten(-2).norm(dim=-1)[..., None, None].clamp_min(1e-7)
    for _ in range(steps):
        if X.shape[-2] > X.shape[-1]:
            S = X.transpose(-2, -1) @ X
            X = A * X + X @ (B * S + C * S @ S)
        else:
            S = X @ X.transpose(-2, -1)
            X = A * X + (B * S + C * S @ S) @ X
    return X.to(G.dtype)


def ns_horner(G, steps=5):
    """No eps (a zero matrix is caught first), the polynomial by Horner, torch.linalg.matrix_norm."""
    X = G.bfloat16() if G.device.type == "cuda" else G
    wide = X.shape[-2] <= X.shape[-1]
    X = X if wide else X.mT
    norm = torch.linalg.matrix_norm(X, keepdim=True)
    X = torch.where(norm > 0, X / torch.where(norm > 0, norm, 1.0), 0.0)
    eye = torch.eye(X.shape[-2], dtype=X.dtype, device=X.device)
    for _ in range(steps):
        M = X @ X.mT
        X = (A * eye + M @ (B * eye + C * M)) @ X
    return (X if wide else X.mT).to(G.dtype)


def ns_always_float32(G, steps=5):
    X = G.float()
    t = X.shape[-2] > X.shape[-1]
    X = X.mT if t else X
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        M = X @ X.mT
        X = A * X + (B * M + C * M @ M) @ X
    return (X.mT if t else X).to(G.dtype)


def ns_no_eps(G, steps=5):
    X = G.clone()
    t = X.shape[-2] > X.shape[-1]
    X = X.mT if t else X
    X = X / X.norm(dim=(-2, -1), keepdim=True)
    for _ in range(steps):
        M = X @ X.mT
        X = A * X + (B * M + C * M @ M) @ X
    return (X.mT if t else X).to(G.dtype)


def ns_spectral_scale_forgotten(G, steps=5):  # no normalization: singular values above 1 blow up
    X = G.clone()
    t = X.shape[-2] > X.shape[-1]
    X = X.mT if t else X
    for _ in range(steps):
        M = X @ X.mT
        X = A * X + (B * M + C * M @ M) @ X
    return (X.mT if t else X).to(G.dtype)


def ns_one_norm_for_the_batch(G, steps=5):  # one Frobenius norm over the whole batch
    X = G.clone()
    t = X.shape[-2] > X.shape[-1]
    X = X.mT if t else X
    X = X / (X.norm() + 1e-7)
    for _ in range(steps):
        M = X @ X.mT
        X = A * X + (B * M + C * M @ M) @ X
    return (X.mT if t else X).to(G.dtype)


# ---------------------------------------------------------------------------------------------
# excess_kurtosis


def kurt_standardized(x):
    x = x.double()
    var, mean = torch.var_mean(x, dim=-1, unbiased=False, keepdim=True)
    z = (x - mean) / var.sqrt()
    return torch.where(var.squeeze(-1) == 0, 0.0, (z ** 4).mean(-1) - 3)


def kurt_sums(x):
    x = x.double()
    d = x.shape[-1]
    c = x - x.sum(-1, keepdim=True) / d
    m2, m4 = (c * c).sum(-1) / d, (c ** 4).sum(-1) / d
    out = m4 / (m2 * m2) - 3
    return out.masked_fill(m2 == 0, 0.0)


def kurt_clamped(x):  # the clamp the old spec asked for: -3 for a constant vector
    x = x.double()
    c = x - x.mean(-1, keepdim=True)
    var = c.pow(2).mean(-1)
    return c.pow(4).mean(-1) / var.pow(2).clamp_min(1e-300) - 3


def kurt_nan_constant(x):
    x = x.double()
    c = x - x.mean(-1, keepdim=True)
    return c.pow(4).mean(-1) / c.pow(2).mean(-1).pow(2) - 3


def kurt_float32(x):
    x = x.float()
    c = x - x.mean(-1, keepdim=True)
    var = c.pow(2).mean(-1)
    return torch.where(var > 0, c.pow(4).mean(-1) / var.pow(2) - 3, 0.0).double()


def kurt_unbiased_var(x):
    x = x.double()
    c = x - x.mean(-1, keepdim=True)
    var = x.var(-1)
    return torch.where(var > 0, c.pow(4).mean(-1) / var.clamp_min(1e-300).pow(2) - 3, 0.0)


def kurt_not_excess(x):
    x = x.double()
    c = x - x.mean(-1, keepdim=True)
    var = c.pow(2).mean(-1)
    return torch.where(var > 0, c.pow(4).mean(-1) / var.clamp_min(1e-300).pow(2), 0.0)


# ---------------------------------------------------------------------------------------------
# angular_distance


def ad_eps_added(a, b, eps=1e-12):
    a, b = a.double(), b.double()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + eps)
    return torch.acos(cos.clamp(-1, 1)) / math.pi


def ad_cosine_similarity(a, b, eps=1e-12):
    cos = F.cosine_similarity(a.double(), b.double(), dim=-1, eps=eps)
    return cos.clamp(-1, 1).arccos() / math.pi


def ad_chord(a, b, eps=1e-12):
    """2 asin(|a/|a| - b/|b|| / 2): accurate near 0, where arccos is not."""
    a, b = torch.broadcast_tensors(a.double(), b.double())
    ua = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
    ub = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    zero = (a.norm(dim=-1) == 0) | (b.norm(dim=-1) == 0)
    chord = (ua - ub).norm(dim=-1).clamp(max=2.0)
    return torch.where(zero, 0.5, 2 * torch.asin(chord / 2) / math.pi)


def ad_float32(a, b, eps=1e-12):
    a, b = a.float(), b.float()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)
    return (torch.arccos(cos.clamp(-1.0, 1.0)) / math.pi).double()


def ad_no_clamp(a, b, eps=1e-12):
    a, b = a.double(), b.double()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)
    return torch.arccos(cos) / math.pi


def ad_nan_at_zero(a, b, eps=1e-12):
    a, b = a.double(), b.double()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return torch.arccos(cos.clamp(-1.0, 1.0)) / math.pi


def ad_radians(a, b, eps=1e-12):
    a, b = a.double(), b.double()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)
    return torch.arccos(cos.clamp(-1.0, 1.0))


def ad_one_minus_cos(a, b, eps=1e-12):
    a, b = a.double(), b.double()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)
    return (1 - cos) / 2


CORRECT = {
    "rmsnorm": {"var_mean": rms_via_var_mean, "vector_norm": rms_via_vector_norm, "F.rms_norm": rms_via_torch,
                "gain and bias after rounding": rms_affine_after_rounding},
    "centre_writer": {"matrix P": centre_writer_with(centre_with_matrix),
                      "sum / d, drop then subtract": centre_writer_with(centre_by_sum)},
    "crms": {"decompress then RMS": crms_via_decompressed_rms, "einsum": crms_via_einsum,
             "decompress, gain and bias after rounding": crms_affine_after_rounding},
    "layernorm_scaling": {"l ** -0.5": lns_power, "sqrt(1 / l)": lns_sqrt_of_inverse,
                          "float64 rsqrt": lns_torch_float64},
    "mix_ln": {"int()": mix_int, "one-based": mix_one_based, "list": mix_list},
    "newton_schulz": {"X^T X on tall, clamp": ns_tall_gram, "Horner, no eps": ns_horner},
    "excess_kurtosis": {"standardized": kurt_standardized, "sums": kurt_sums},
    "angular_distance": {"eps added to the norm product": ad_eps_added, "F.cosine_similarity": ad_cosine_similarity,
                         "chord and asin": ad_chord},
}

MISTAKES = {
    "rmsnorm": {"bf16 statistics": rms_stats_in_input_dtype, "bf16 scale": rms_scale_in_input_dtype, "eps outside the sqrt": rms_eps_outside_sqrt,
                "mean over dim 0": rms_wrong_dim, "NaN at a zero vector": rms_nan_at_zero,
                "centred (LayerNorm)": rms_centred},
    "centre_writer": {"mean over tokens": centre_writer_with(centre_wrong_dim),
                      "centres the d-1 kept": centre_writer_with(centre_after_compress),
                      "drops the first coordinate": centre_writer_with(centre_drops_first)},
    "crms": {"bf16 statistics": crms_stats_in_input_dtype, "no (sum z)^2 term": crms_without_sum_term,
             "divides by d-1": crms_divides_by_d_minus_1, "NaN at a zero z": crms_nan_at_zero},
    "layernorm_scaling": {"counts from 0": lns_counts_from_0, "1 / l": lns_inverse_l, "float32": lns_float32},
    "mix_ln": {"<= floor": mix_off_by_one, "round": mix_round, "l / L < r": mix_fraction,
               "Post-LN last": mix_post_last},
    "newton_schulz": {"always float32": ns_always_float32, "NaN at a zero matrix": ns_no_eps,
                      "no normalization": ns_spectral_scale_forgotten,
                      "one norm for the batch": ns_one_norm_for_the_batch},
    "excess_kurtosis": {"-3 at a constant vector": kurt_clamped, "NaN at a constant vector": kurt_nan_constant,
                        "float32": kurt_float32, "unbiased variance": kurt_unbiased_var,
                        "kurtosis, not excess": kurt_not_excess},
    "angular_distance": {"float32": ad_float32, "no clamp": ad_no_clamp, "NaN at a zero vector": ad_nan_at_zero,
                         "radians": ad_radians, "(1 - cos) / 2": ad_one_minus_cos},
}
