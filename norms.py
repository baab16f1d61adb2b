"""
Normalization layers of nanonorm, one small class each, and the factory model.py uses.

  ln    LayerNorm (Ba et al., 2016)           LN(x)   = (x - mean(x)) / sqrt(var(x) + eps) * g + b
  rms   RMSNorm (Zhang & Sennrich, 2019)      RMS(x)  = x / sqrt(mean(x^2) + eps) * g (+ b)
  crms  Compressed RMSNorm (Jiang et al., NeurIPS 2023, arXiv 2305.14858)
        on the first d-1 coordinates x of a zero-mean d-vector:
                                              CRMS(x) = x / sqrt((sum_i x_i^2 + (sum_i x_i)^2) / d + eps)
  ss    Single-Scale RMSNorm (Outlier-Safe Pre-Training, OSP)
                                              SS(x)   = gamma * x / sqrt(mean(x^2) + eps), gamma a scalar
  none  identity

Why RMSNorm may carry a bias: for a zero-mean x, LN(x) == RMS(x) including the affine part, so a
Pre-RMSNorm model that is to be *exactly* the Pre-LN model keeps LN's bias (bias=True models only).

CRMSNorm keeps LN's gain and bias as parameters (so it stores exactly what Pre-LN stores), but its
forward only normalizes: the gain and bias are folded into the layer that reads the output (model.py,
`fold_into_consumer`), because a (d-1)-dim vector cannot carry a d-dim gain.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_TYPES = ("ln", "rms", "crms", "ss", "none")


class LayerNorm(nn.Module):
    """LN(x) = (x - mean) / sqrt(var + eps) * g + b  (b only when bias=True)."""

    def __init__(self, dim, eps=1e-5, bias=True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """RMS(x) = x / sqrt(mean(x^2) + eps) * g (+ b when bias=True)."""

    def __init__(self, dim, eps=1e-5, bias=False):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x):
        y = F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        return y if self.bias is None else y + self.bias


class CRMSNorm(nn.Module):
    """
    Compressed RMSNorm: input is z = x[..., :d-1] of a zero-mean d-vector x (the last coordinate is
    implied: x[d-1] = -sum(z)). Output is the *un-scaled* normalized z; `affine` gives the gain and
    bias (each d-dim) that the next layer folds into its weights. With affine=False (a compact model
    after convert_to_crms) the norm has no parameters at all.
    """

    def __init__(self, dim, eps=1e-5, bias=True, affine=True):
        super().__init__()
        self.dim, self.eps = dim, eps  # dim is the FULL width d; inputs have d - 1 coordinates
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None
        self.bias = nn.Parameter(torch.zeros(dim)) if (affine and bias) else None

    def forward(self, z):
        zf = z.float() if z.element_size() < 4 else z  # sums in fp32 under bf16 autocast; fp64 stays fp64
        total = zf.sum(-1, keepdim=True)
        mean_square = (zf.pow(2).sum(-1, keepdim=True) + total * total) / self.dim
        return (zf * torch.rsqrt(mean_square + self.eps)).type_as(z)

    @staticmethod
    def decompress(z):
        """D z: append the implied last coordinate, -sum(z), giving back the zero-mean d-vector."""
        return torch.cat([z, -z.sum(-1, keepdim=True)], dim=-1)


class SSNorm(nn.Module):
    """Single-Scale RMSNorm (OSP): one learnable scalar gamma instead of a d-dim gain."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.gain * F.rms_norm(x, (self.dim,), None, self.eps)


def make_norm(norm, dim, eps=1e-5, bias=True, affine=True):
    """The one place a norm is built. `bias` follows the model's bias switch (ln, rms, crms)."""
    if norm == "ln":
        return LayerNorm(dim, eps, bias)
    if norm == "rms":
        return RMSNorm(dim, eps, bias)
    if norm == "crms":
        return CRMSNorm(dim, eps, bias, affine)
    if norm == "ss":
        return SSNorm(dim, eps)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}: choose from {', '.join(NORM_TYPES)}")
