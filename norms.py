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
from torch.autograd.function import once_differentiable

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
        y = RMSFunction.apply(x, x.shape[-1], self.eps, False)
        y = y * self.weight if self.bias is None else torch.addcmul(self.bias, y, self.weight)
        return y.type_as(x)  # bf16 in (QK-norm under autocast), bf16 out, as F.rms_norm


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
        return RMSFunction.apply(z, self.dim, self.eps, True)

    @staticmethod
    def decompress(z):
        """D z: append the implied last coordinate, -sum(z), giving back the zero-mean d-vector."""
        return torch.cat([z, -z.sum(-1, keepdim=True)], dim=-1)


class RMSFunction(torch.autograd.Function):
    """
    y = x * r, r = 1 / sqrt(ms + eps): the normalization of RMSNorm, SSNorm and CRMSNorm (no affine),
        full        ms = |x|^2 / d                    (x is the whole d-vector)
        compressed  ms = (|z|^2 + (1^T z)^2) / d      (z = first d-1 coordinates of a zero-mean d-vector)
    with its gradient written out (dr/dz = -r^3 (z + 1^T z) / d, without the 1^T z term when full):
        dz = r * (dy - (y + t) * <dy, y> / d),  t = 1^T y (compressed) or 0 (full)
    Three passes over the activations forward and three backward, keeping only y for the backward.
    Autograd of the formula (and torch's F.rms_norm, a composite of ~6 ops on CPU) takes 2-4x longer
    and keeps several activation-sized tensors, which made rms and crms slower than LayerNorm's fused
    kernels on CPU. Statistics in fp32 for bf16/fp16 inputs; float64 stays float64.
    """

    @staticmethod
    def forward(ctx, x, d, eps, compressed):
        xf = x.float() if x.element_size() < 4 else x
        ms = torch.linalg.vector_norm(xf, dim=-1, keepdim=True).square()
        total = xf.sum(-1, keepdim=True) if compressed else None
        if compressed:
            ms = ms + total * total
        r = torch.rsqrt(ms / d + eps)
        y = xf * r
        ctx.save_for_backward(y, r, total * r if compressed else None)
        ctx.d = d
        return y.type_as(x)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        y, r, y_sum = ctx.saved_tensors
        ra = (dy * y).sum(-1, keepdim=True) * (r / ctx.d)  # r <dy, y> / d
        dx = dy * r if y_sum is None else torch.addcmul(-ra * y_sum, dy, r)  # r dy (- r a 1^T y)
        dx.addcmul_(y, ra, value=-1)  # ... - r a y
        return dx.type_as(dy), None, None, None


class SSNorm(nn.Module):
    """Single-Scale RMSNorm (OSP): one learnable scalar gamma instead of a d-dim gain."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.gain * RMSFunction.apply(x, self.dim, self.eps, False)


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
