"""
Normalization layers of nanonorm: each forward is its formula, in plain PyTorch.

  ln    LayerNorm (Ba et al., 2016)       LN(x)   = (x - mean(x)) / sqrt(var(x) + eps) * g + b
  rms   RMSNorm (Zhang & Sennrich, 2019)  RMS(x)  = x / sqrt(mean(x^2) + eps) * g (+ b)
  crms  Compressed RMSNorm (Jiang et al., NeurIPS 2023, arXiv 2305.14858): the stream keeps only the
        first d-1 coordinates z of a zero-mean d-vector x (the last one is -sum(z)), and
                                          CRMS(z) = z / sqrt((sum_i z_i^2 + (sum_i z_i)^2) / d + eps)
        which equals the first d-1 coordinates of RMS(x) without paying for the d-th.
  ss    Single-Scale RMSNorm (OSP)        SS(x)   = gamma * x / sqrt(mean(x^2) + eps), gamma one scalar
  none  identity

Why RMSNorm may carry a bias: for a zero-mean x, LN(x) == RMS(x) including the affine part, so a
Pre-RMSNorm model that is to be *exactly* the Pre-LN model keeps LN's bias (bias=True models only).
Statistics are taken in at least float32 (bf16 inputs under autocast), float64 stays float64.
"""

import torch
import torch.nn as nn

NORM_TYPES = ("ln", "rms", "crms", "ss", "none")


def at_least_float32(x):
    return x.float() if x.element_size() < 4 else x


class LayerNorm(nn.Module):
    """LN(x) = (x - mean) / sqrt(var + eps) * g + b over the last dim (what F.layer_norm computes)."""

    def __init__(self, dim, eps=1e-5, bias=True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x):
        xf = at_least_float32(x)
        centred = xf - xf.mean(-1, keepdim=True)  # var = mean(centred^2): the biased variance, divided by d
        y = centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight
        return (y if self.bias is None else y + self.bias).type_as(x)


class RMSNorm(LayerNorm):
    """RMS(x) = x / sqrt(mean(x^2) + eps) * g (+ b when bias=True): LayerNorm's parameters, no centring."""

    def __init__(self, dim, eps=1e-5, bias=False):  # RMSNorm has no bias unless asked (LLaMA)
        super().__init__(dim, eps, bias)

    def forward(self, x):
        return rms_norm(x, self.weight, self.bias, self.eps)


def rms_norm(x, gain, bias, eps):
    """x / sqrt(mean(x^2) + eps) * gain (+ bias) over the last dim; gain is a d-vector or one scalar (SSNorm)."""
    # exercise: rmsnorm
    xf = at_least_float32(x)
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * gain
    if bias is not None:
        y = y + bias
    return y.type_as(x)
    # end exercise


class CRMSNorm(nn.Module):
    """
    CRMS(z) on the compressed stream z = x[..., :d-1]. In training (affine=True) the output goes back to
    d dims, D y = [y, -sum(y)], and takes LN's gain and bias: g * D y + b, exactly LN(x). The compact
    inference model (convert.py) folds g, b and D into the next linear layer, so there the norm has no
    parameters and returns y itself (d-1 dims).
    """

    def __init__(self, dim, eps=1e-5, bias=True, affine=True):
        super().__init__()
        self.dim, self.eps = dim, eps  # dim is the FULL width d; inputs have d - 1 coordinates
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None
        self.bias = nn.Parameter(torch.zeros(dim)) if (affine and bias) else None

    def forward(self, z):
        # exercise: crms
        zf = at_least_float32(z)
        mean_square = (zf.pow(2).sum(-1, keepdim=True) + zf.sum(-1, keepdim=True).pow(2)) / self.dim
        y = zf * torch.rsqrt(mean_square + self.eps)
        if self.weight is None:  # compact inference model: gain, bias and D live in the next layer
            return y.type_as(z)
        y = decompress(y) * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y.type_as(z)
        # end exercise


def decompress(z):
    """D z = [z, -sum(z)]: the implied last coordinate gives back the zero-mean d-vector."""
    return torch.cat([z, -z.sum(-1, keepdim=True)], dim=-1)


class SSNorm(nn.Module):
    """Single-Scale RMSNorm (OSP): RMSNorm with one learnable scalar gamma instead of a d-dim gain."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return rms_norm(x, self.gain, None, self.eps)


def make_norm(norm, dim, eps=1e-5, bias=True):
    """The one place a norm is built. `bias` follows the model's bias switch (ln, rms, crms)."""
    if norm in ("ln", "rms", "crms"):
        return {"ln": LayerNorm, "rms": RMSNorm, "crms": CRMSNorm}[norm](dim, eps, bias)
    if norm == "ss":
        return SSNorm(dim, eps)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}: choose from {', '.join(NORM_TYPES)}")
