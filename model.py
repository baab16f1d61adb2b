"""
One GPT whose normalization type, placement and depth scaling are switches.

Placements (F = attention or MLP sublayer, N = the norm chosen by `norm`, s_l = LayerNorm Scaling):
  pre       x + F(N(x) * s_l)                          GPT-2, LLaMA
  post      N(x + F(x))                                original Transformer, BERT
  mix       first floor(mix_ratio * L) blocks post, the rest pre     Mix-LN (Li et al., ICLR 2025)
  sandwich  x + N_out(F(N(x) * s_l))                   CogView, Gemma 2
  peri      sandwich, plus N on the embedding output   Peri-LN (Kim et al., 2025)
  reorder   x + N_out(F(x))                            OLMo 2
  deepnorm  N(alpha * x + F(x)), alpha = (2L)^(1/4), init of v/out/FFN times beta = (8L)^(-1/4)  DeepNet
A final norm before the LM head is kept in every placement.
depth_scale (LayerNorm Scaling, Sun et al. 2025, "The Curse of Depth"): s_l = 1/sqrt(l) for block
l = 1..L on the norm output that feeds the sublayers; without it s_l = 1.

Exact Pre-LN == Pre-RMSNorm == Pre-CRMSNorm (Jiang et al., NeurIPS 2023), in training too:
all three store exactly Pre-LN's parameters. LN(x) depends only on the centred stream P x, so
  zero_mean: every write into the residual stream is centred (P = I - 11^T/d): the embedding output,
             and the output projections W <- W - mean over output rows, b <- b - mean(b);
             the stream is then always zero-mean and RMSNorm(x) == LayerNorm(x);
  crms:      additionally keep only the first d-1 coordinates (C): writers use C P W, C P b; readers
             after a norm with gain g and bias b_n use W diag(g) D and W b_n + bias, D = [I; -1^T].
The loss is the same function of the same stored parameters, so gradients, and therefore AdamW and
Muon trajectories, are the same. convert_to_rms / convert_to_crms bake the transforms into plain
weights for inference (the compact crms model has a (d-1)-dim stream).
"""

import json
import math
import os
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from configurator import config_field
from norms import NORM_TYPES, CRMSNorm, RMSNorm, make_norm

NORM_POSITIONS = ("pre", "post", "mix", "sandwich", "peri", "reorder", "deepnorm")




@dataclass
class GPTConfig:
    # defaults are the CPU preset model: nanoGPT's shakespeare-char "baby GPT" shape
    n_layer: int = config_field(6, "number of transformer blocks L")
    n_head: int = config_field(6, "attention heads per block")
    n_embd: int = config_field(384, "width d of the residual stream")
    block_size: int = config_field(256, "context length in tokens")
    vocab_size: int = config_field(50257, "vocabulary size (set from the dataset for scratch runs; padded to a multiple of 64)")
    dropout: float = config_field(0.0, "dropout on embeddings, attention and residual branches")
    bias: bool = config_field(True, "biases in linear layers and norms (GPT-2 style)")
    norm: str = config_field("ln", "normalization type", NORM_TYPES)
    norm_pos: str = config_field("pre", "norm placement", NORM_POSITIONS)
    mix_ratio: float = config_field(0.25, "Mix-LN: the first floor(mix_ratio*n_layer) blocks are Post-LN")
    depth_scale: bool = config_field(False, "LayerNorm Scaling: norm output feeding block l's sublayers times 1/sqrt(l)")
    zero_mean: bool = config_field(False, "centre every write into the residual stream in forward (Pre-RMSNorm == Pre-LN)")
    pos_emb: str = config_field("learned", "position encoding", ("learned", "rope"))
    rope_base: float = config_field(10000.0, "RoPE base frequency")
    mlp: str = config_field("gelu", "feed-forward type", ("gelu", "swiglu", "relu2"))
    mlp_hidden: int = config_field(0, "MLP hidden size; 0 = 4*n_embd (gelu, relu2) or 8/3*n_embd rounded up to 64 (swiglu)")
    tie_embeddings: bool = config_field(True, "LM head shares the token embedding matrix")
    qk_norm: bool = config_field(False, "OLMo 2 QK-norm: RMSNorm over the full projected q and k")
    emb_proj: bool = config_field(False, "OSP embedding projection: d x d linear after the embedding and before the head")
    scaled_init: bool = config_field(False, "GPT-2 init std 0.02/sqrt(2*n_layer) on output projections")
    norm_eps: float = config_field(1e-5, "epsilon inside every norm")
    compact: bool = config_field(False, "internal: weights already compressed by convert_to_crms ((d-1)-dim stream)")

    def __post_init__(self):
        if self.norm == "crms":
            self.zero_mean = True  # crms is the compressed form of the zero-mean stream
        check_config(self)


def check_config(c):
    """Refuse bad values and conflicting switches with one line that names them."""
    for name, choices in (("norm", NORM_TYPES), ("norm_pos", NORM_POSITIONS),
                          ("pos_emb", ("learned", "rope")), ("mlp", ("gelu", "swiglu", "relu2"))):
        if getattr(c, name) not in choices:
            raise ValueError(f"bad value {getattr(c, name)!r} for {name}: choose from {', '.join(choices)}")
    for name in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
        if not isinstance(getattr(c, name), int) or getattr(c, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(c, name)!r}")
    if c.n_embd % c.n_head:
        raise ValueError(f"n_embd={c.n_embd} is not divisible by n_head={c.n_head}")
    if c.pos_emb == "rope" and (c.n_embd // c.n_head) % 2:
        raise ValueError(f"rope needs an even head size, got n_embd/n_head = {c.n_embd // c.n_head}")
    if not 0.0 <= c.mix_ratio <= 1.0:
        raise ValueError(f"mix_ratio must be in [0, 1], got {c.mix_ratio}")
    if not 0.0 <= c.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {c.dropout}")
    if c.mlp_hidden < 0 or c.norm_eps < 0:
        raise ValueError(f"mlp_hidden and norm_eps must be >= 0, got {c.mlp_hidden} and {c.norm_eps}")
    if c.norm == "crms" and c.norm_pos != "pre":
        raise ValueError(f"norm=crms needs a zero-mean Pre-Norm stream: use norm_pos=pre (got {c.norm_pos})")
    if c.norm == "crms" and c.dropout > 0:
        raise ValueError(f"norm=crms needs dropout=0 (dropout breaks the zero-mean stream), got {c.dropout}")
    if c.zero_mean and c.norm_pos != "pre":
        raise ValueError(f"zero_mean centres a Pre-Norm residual stream: use norm_pos=pre (got {c.norm_pos})")
    if c.norm == "none" and c.norm_pos != "pre":
        raise ValueError(f"norm=none has no norm to place: use norm_pos=pre (got {c.norm_pos})")
    if c.depth_scale and c.norm_pos in ("post", "deepnorm", "reorder"):
        raise ValueError(f"depth_scale scales the norm that feeds a sublayer; norm_pos={c.norm_pos} has none "
                         f"(use pre, mix, sandwich or peri)")
    if c.compact and c.norm != "crms":
        raise ValueError("compact=True is only for models written by convert_to_crms (norm=crms)")


def padded_vocab(vocab_size):
    return (vocab_size + 63) // 64 * 64  # multiple of 64: faster matmuls (nanoGPT saw ~25% at 50304)


# ----------------------------------------------------------------------------------------------
# The two places where zero_mean / crms touch a branch: the linear that reads the normalized stream
# (consumer) and the linear that writes into the stream (producer).

class GainCompress(torch.autograd.Function):
    """
    W diag(g) D: the (rows, d) weight of a reader of the normed stream with the norm's gain g folded in,
    as a map of the (d-1)-dim compressed stream: column j is W[:, j] g_j - W[:, d-1] g_{d-1}.
    Backward written out: dW[:, j] = G[:, j] g_j (j < d-1), dW[:, d-1] = -g_{d-1} sum_j G[:, j],
    dg_j = sum_i G[i, j] W[i, j], dg_{d-1} = -sum_i W[i, d-1] sum_j G[i, j]. Runs every step on every
    reader (QKV, MLP-in); autograd of the slicing formula took ~1.7x longer (two zero-filled weight-sized
    gradients, twice the passes).
    """

    @staticmethod
    def forward(ctx, w, g):
        ctx.save_for_backward(w, g)
        return torch.addcmul(-(w[:, -1:] * g[-1]), w[:, :-1], g[:-1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        w, g = ctx.saved_tensors
        grad_w = grad_g = None
        row_sums = grad.sum(1)
        if ctx.needs_input_grad[0]:  # [G, -G 1] diag(g)
            grad_w = torch.cat([grad, -row_sums[:, None]], dim=1).mul_(g)
        if ctx.needs_input_grad[1]:
            grad_g = torch.cat([(grad * w[:, :-1]).sum(0), -(row_sums @ w[:, -1]).view(1)])
        return grad_w, grad_g


class Centre(torch.autograd.Function):
    """
    P x (centre along `dim`), or C P x (centre, then drop the last entry along `dim`): how the stream's
    writers are kept zero-mean. Backward written out: the gradient padded with a zero entry (compress),
    minus its mean over the d entries (P is symmetric): 2-3 passes, where autograd of mean, sub and
    slice takes ~5 and a zero-filled gradient. Runs every step on the output projections (and biases)
    and on the embedding output.
    """

    @staticmethod
    def forward(ctx, x, dim, compress):
        d = x.shape[dim]
        ctx.dim, ctx.d, ctx.compress = dim, d, compress
        mean = x.mean(dim, keepdim=True)
        return (x.narrow(dim, 0, d - 1) if compress else x) - mean

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        dim, d = ctx.dim, ctx.d
        mean = grad.sum(dim, keepdim=True) / d
        if not ctx.compress:
            return grad - mean, None, None
        return torch.cat([grad, torch.zeros_like(mean)], dim).sub_(mean), None, None


def fold_into_consumer(linear, gain, norm_bias):
    """Weights of W(g * D z + b_n) + bias as one linear map of the (d-1)-dim z: W diag(g) D, W b_n + bias."""
    w = GainCompress.apply(linear.weight, gain)
    b = linear.bias
    if norm_bias is not None:
        b = linear.weight @ norm_bias if b is None else torch.addmv(b, linear.weight, norm_bias)
    return w, b


def producer(linear, x, mode):
    """Write into the residual stream: raw, centred over output rows (P W), or centred and compressed (C P W)."""
    if mode == "raw":
        return linear(x)
    compress = mode == "compress"
    w, b = linear.weight, linear.bias
    return F.linear(x, Centre.apply(w, 0, compress), None if b is None else Centre.apply(b, 0, compress))


def consumer(linear, h, fold):
    return linear(h) if fold is None else F.linear(h, *fold_into_consumer(linear, *fold))


def decompress_affine(z, gain, bias):
    """g * D z + b: the normed (d-1)-dim stream back to d dims with the norm's affine (crms head)."""
    h = CRMSNorm.decompress(z)
    return h * gain if bias is None else torch.addcmul(bias, h, gain)


# ----------------------------------------------------------------------------------------------

def rope_tables(head_dim, block_size, base):
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float64), inv_freq)
    dtype = torch.get_default_dtype()
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x, cos, sin):
    """Rotate pairs (x_i, x_{i+h/2}) by position-dependent angles. x: (B, heads, T, head_dim)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def causal_attention(q, k, v, dropout_p=0.0):
    """softmax(q k^T / sqrt(head_dim) + causal mask) v for (B, heads, T, head_dim) tensors.

    SDPA (flash attention on CUDA) everywhere, except bf16 on CPU without dropout and T <= 512: there
    one baddbmm (scale and -inf mask fused into the q k^T matmul), a softmax and a bmm run 2-3.5x faster
    than torch's CPU flash kernel (torch 2.13, AVX512-BF16; T = 128..512). From T = 1024 the flash
    kernel's skipping of the masked half wins, and the T x T matrix kept for the backward gets large.
    """
    B, H, T, hs = q.shape
    if q.device.type != "cpu" or q.dtype != torch.bfloat16 or dropout_p > 0 or T > 512:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)
    mask = torch.full((T, T), float("-inf"), dtype=q.dtype, device=q.device).triu(1)
    att = torch.baddbmm(mask, q.reshape(B * H, T, hs), k.reshape(B * H, T, hs).transpose(1, 2),
                        alpha=1.0 / math.sqrt(hs))
    return torch.bmm(att.softmax(dim=-1), v.reshape(B * H, T, hs)).view(B, H, T, hs)


class CausalSelfAttention(nn.Module):
    def __init__(self, c, stream_dim):
        super().__init__()
        self.n_head, self.n_embd, self.dropout = c.n_head, c.n_embd, c.dropout
        self.c_attn = nn.Linear(stream_dim, 3 * c.n_embd, bias=c.bias)  # reads the stream
        self.c_proj = nn.Linear(c.n_embd, stream_dim, bias=c.bias)      # writes the stream
        self.resid_dropout = nn.Dropout(c.dropout)
        if c.qk_norm:  # OLMo 2: over the full projected q and k, before heads and RoPE
            self.q_norm = RMSNorm(c.n_embd, c.norm_eps)
            self.k_norm = RMSNorm(c.n_embd, c.norm_eps)
        self.qk_norm = c.qk_norm

    def forward(self, h, fold, write_mode, rope):
        B, T, _ = h.shape
        q, k, v = consumer(self.c_attn, h, fold).split(self.n_embd, dim=2)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        y = causal_attention(q, k, v, self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, self.n_embd)
        return self.resid_dropout(producer(self.c_proj, y, write_mode))


class MLP(nn.Module):
    def __init__(self, c, stream_dim):
        super().__init__()
        self.kind = c.mlp
        hidden = c.mlp_hidden or (4 * c.n_embd if c.mlp != "swiglu" else (8 * c.n_embd // 3 + 63) // 64 * 64)
        width = 2 * hidden if c.mlp == "swiglu" else hidden  # swiglu: gate and up in one matmul
        self.c_fc = nn.Linear(stream_dim, width, bias=c.bias)
        self.c_proj = nn.Linear(hidden, stream_dim, bias=c.bias)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, h, fold, write_mode, rope=None):
        u = consumer(self.c_fc, h, fold)
        if self.kind == "gelu":
            u = F.gelu(u, approximate="tanh")  # GPT-2's gelu
        elif self.kind == "relu2":
            u = F.relu(u).square()
        else:
            gate, up = u.chunk(2, dim=-1)
            u = F.silu(gate) * up
        return self.dropout(producer(self.c_proj, u, write_mode))


class Block(nn.Module):
    def __init__(self, c, layer_idx, stream_dim, stream_norm):
        super().__init__()
        L = c.n_layer
        pos = c.norm_pos
        if pos == "mix":  # Mix-LN: Post-LN for the first floor(ratio*L) blocks
            pos = "post" if layer_idx < math.floor(c.mix_ratio * L) else "pre"
        self.pos = pos
        self.alpha = (2 * L) ** 0.25 if pos == "deepnorm" else 1.0
        has_input_norm = pos in ("pre", "sandwich", "peri")
        self.scale = 1.0 / math.sqrt(layer_idx + 1) if (c.depth_scale and has_input_norm) else 1.0
        self.write_mode = stream_norm["write_mode"]
        self.fold = stream_norm["fold"]  # crms training: the norm's affine is folded into the reader
        self.attn = CausalSelfAttention(c, stream_dim)
        self.mlp = MLP(c, stream_dim)
        if pos != "reorder":  # input norms (pre-like) or after-the-add norms (post, deepnorm)
            self.ln_1 = stream_norm["make"]()
            self.ln_2 = stream_norm["make"]()
        if pos in ("sandwich", "peri", "reorder"):  # norms on the branch output (full width d)
            self.ln_1_out = make_norm(c.norm, c.n_embd, c.norm_eps, c.bias)
            self.ln_2_out = make_norm(c.norm, c.n_embd, c.norm_eps, c.bias)

    def forward(self, x, rope=None):
        x = self.sublayer(x, self.attn, getattr(self, "ln_1", None), getattr(self, "ln_1_out", None), rope)
        x = self.sublayer(x, self.mlp, getattr(self, "ln_2", None), getattr(self, "ln_2_out", None), rope)
        return x

    def sublayer(self, x, f, norm, out_norm, rope):
        if self.pos in ("post", "deepnorm"):
            y = f(x, None, self.write_mode, rope)
            return norm(self.alpha * x + y if self.alpha != 1.0 else x + y)
        if self.pos == "reorder":
            return x + out_norm(f(x, None, self.write_mode, rope))
        if self.fold:  # crms: normalize only; gain, bias and 1/sqrt(l) go into the reader's weights
            fold = (norm.weight, norm.bias)
            if self.scale != 1.0:
                fold = tuple(None if t is None else t * self.scale for t in fold)
            y = f(norm(x), fold, self.write_mode, rope)
        else:
            h = norm(x)
            if self.scale != 1.0:
                h = h * self.scale
            y = f(h, None, self.write_mode, rope)
        if out_norm is not None:
            y = out_norm(y)
        return x + y


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        d, V = c.n_embd, padded_vocab(c.vocab_size)
        # how the residual stream is stored: full d dims, or d-1 dims for crms
        compressed = c.norm == "crms"
        stream_dim = d - 1 if c.compact else d
        self.write_mode = "raw" if (c.compact or not c.zero_mean) else ("compress" if compressed else "centre")
        self.fold = compressed and not c.compact
        stream_norm = {
            "write_mode": self.write_mode, "fold": self.fold,
            "make": lambda: make_norm(c.norm, d, c.norm_eps, c.bias, affine=not c.compact),
        }
        emb_dim = d if (c.emb_proj or not c.compact) else stream_dim
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(V, emb_dim),
            h=nn.ModuleList([Block(c, i, stream_dim, stream_norm) for i in range(c.n_layer)]),
            ln_f=stream_norm["make"](),
            drop=nn.Dropout(c.dropout),
        ))
        if c.pos_emb == "learned":
            self.transformer.wpe = nn.Embedding(c.block_size, emb_dim)
        else:
            cos, sin = rope_tables(d // c.n_head, c.block_size, c.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        if c.norm_pos == "peri":
            self.transformer.ln_emb = make_norm(c.norm, d, c.norm_eps, c.bias)
        if c.emb_proj:  # OSP: x = P_in(embed(tokens)), logits = head(P_out(final_norm(x)))
            self.transformer.emb_proj_in = nn.Linear(d, stream_dim, bias=False)
            self.transformer.emb_proj_out = nn.Linear(stream_dim if c.compact else d, d, bias=False)
        head_in = stream_dim if (c.compact and not c.emb_proj) else d
        self.lm_head = nn.Linear(head_in, V, bias=c.bias and c.compact)  # compact: folded final-norm bias
        if c.tie_embeddings:
            if c.compact:
                raise ValueError("a compact crms model cannot tie embeddings (convert_to_crms unties them)")
            self.lm_head.weight = self.transformer.wte.weight
        self._init_weights()

    # -- initialization ------------------------------------------------------------------------
    def _init_weights(self):
        c = self.config
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if getattr(module, "bias", None) is not None:
                    torch.nn.init.zeros_(module.bias)
        with torch.no_grad():
            for block in self.transformer.h:
                if c.scaled_init:  # GPT-2: residual writes shrink with depth
                    for proj in (block.attn.c_proj, block.mlp.c_proj):
                        proj.weight.mul_(1.0 / math.sqrt(2 * c.n_layer))
                if block.pos == "deepnorm":  # DeepNet: beta on value, out-proj and FFN weights
                    beta = (8 * c.n_layer) ** -0.25
                    block.attn.c_attn.weight[2 * c.n_embd:].mul_(beta)
                    for w in (block.attn.c_proj.weight, block.mlp.c_fc.weight, block.mlp.c_proj.weight):
                        w.mul_(beta)
            if c.emb_proj:
                for proj in (self.transformer.emb_proj_in, self.transformer.emb_proj_out):
                    torch.nn.init.orthogonal_(proj.weight)

    # -- forward -------------------------------------------------------------------------------
    def embed(self, idx):
        c, tr = self.config, self.transformer
        x = tr.wte(idx)
        if c.pos_emb == "learned":
            x = x + tr.wpe(torch.arange(idx.shape[1], device=idx.device))
        x = tr.drop(x)
        if c.emb_proj:
            x = tr.emb_proj_in(x)
        if c.norm_pos == "peri":
            x = tr.ln_emb(x)
        if self.write_mode != "raw":  # the embedding is the first write into the stream
            x = Centre.apply(x, -1, self.write_mode == "compress")
        return x

    def head(self, x):
        """Final norm and LM head. crms training: decompress the normed stream, then LN's affine."""
        tr = self.transformer
        h = tr.ln_f(x)
        if self.fold:
            h = decompress_affine(h, tr.ln_f.weight, tr.ln_f.bias)
        if self.config.emb_proj:
            h = tr.emb_proj_out(h)
        return self.lm_head(h)

    def rope(self, T):
        return (self.rope_cos[:T], self.rope_sin[:T]) if self.config.pos_emb == "rope" else None

    def forward(self, idx, targets=None, skip_blocks=()):
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        x, rope = self.embed(idx), self.rope(T)
        for i, block in enumerate(self.transformer.h):
            if i not in skip_blocks:
                x = block(x, rope)
        logits = self.head(x)
        loss = None
        if targets is not None:
            # softmax in at least fp32 (bf16 logits lose too much), float64 stays float64
            flat = logits.view(-1, logits.size(-1))
            loss = F.cross_entropy(flat if flat.dtype == torch.float64 else flat.float(), targets.reshape(-1),
                                   ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def hidden_states(self, idx):
        """The stream entering each block and leaving the last: n_layer + 1 tensors (B, T, n_embd)."""
        x, rope = self.embed(idx), self.rope(idx.shape[1])
        full = CRMSNorm.decompress if x.shape[-1] == self.config.n_embd - 1 else (lambda t: t)
        states = [full(x)]
        for block in self.transformer.h:
            x = block(x, rope)
            states.append(full(x))
        return states

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]
            logits, _ = self(context)
            logits = logits[:, -1, :self.config.vocab_size].float()  # drop the padding rows
            if temperature <= 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                    logits[logits < kth] = -float("inf")
                nxt = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

    def crop_block_size(self, block_size):
        """Shorten the context of a (pretrained) model: keep the first block_size learned positions."""
        if block_size > self.config.block_size:
            raise ValueError(f"block_size {block_size} exceeds the model's {self.config.block_size} positions")
        self.config.block_size = block_size
        if self.config.pos_emb == "learned":
            wpe = self.transformer.wpe
            wpe.weight = nn.Parameter(wpe.weight[:block_size].detach().clone())
            wpe.num_embeddings = block_size
        else:
            self.rope_cos, self.rope_sin = self.rope_cos[:block_size], self.rope_sin[:block_size]

    # -- accounting ----------------------------------------------------------------------------
    def num_params(self, non_embedding=True):
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.config.pos_emb == "learned":
            n -= self.transformer.wpe.weight.numel()
        return n

    def flops_per_token(self):
        """PaLM appendix B: 6 * (matmul params) + 12 * L * d * T (attention scores and mixing)."""
        c = self.config
        matmul = sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))
        return 6 * matmul + 12 * c.n_layer * c.n_embd * c.block_size

    def estimate_mfu(self, tokens_per_s, device=None, peak_flops=None):
        """Model FLOPs utilization: achieved FLOP/s over the device's bf16 dense peak (None if unknown)."""
        peak = peak_flops or peak_flops_for(device)
        return None if not peak else self.flops_per_token() * tokens_per_s / peak

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_dir, **overrides):
        """Hugging Face GPT-2 weights (gpt2, gpt2-medium, ... or a local save_pretrained folder)."""
        try:
            from transformers import GPT2LMHeadModel
        except ImportError:
            raise SystemExit("GPT.from_pretrained needs transformers: pip install transformers") from None
        hf = GPT2LMHeadModel.from_pretrained(name_or_dir)
        hc = hf.config
        if set(overrides) - {"dropout"}:
            raise ValueError(f"from_pretrained can only override dropout, got {sorted(overrides)}")
        config = GPTConfig(n_layer=hc.n_layer, n_head=hc.n_head, n_embd=hc.n_embd, block_size=hc.n_positions,
                           vocab_size=hc.vocab_size, bias=True, norm="ln", norm_pos="pre", pos_emb="learned",
                           mlp="gelu", tie_embeddings=True, norm_eps=hc.layer_norm_epsilon,
                           dropout=overrides.get("dropout", 0.0))
        model = cls(config)
        sd = model.state_dict()
        transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
        with torch.no_grad():
            for k, v in hf.state_dict().items():
                if k.endswith(("attn.masked_bias", "attn.bias")) or k == "lm_head.weight":
                    continue  # causal-mask buffers; the head is tied to wte
                if k not in sd:
                    raise ValueError(f"unexpected GPT-2 weight {k}")
                if k.endswith(transposed):
                    v = v.t()  # HF GPT-2 stores Conv1D weights as (in, out)
                if k == "transformer.wte.weight":
                    sd[k].zero_()  # padding rows stay 0
                    sd[k][: v.shape[0]].copy_(v)
                else:
                    sd[k].copy_(v)
        return model


def load_checkpoint(path, device="cpu"):
    """(model, checkpoint dict) from a ckpt.pt written by train.py or convert.py (or its out_dir)."""
    if os.path.isdir(path):
        path = os.path.join(path, "ckpt.pt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model = GPT(GPTConfig(**ckpt["model_config"]))
    state = {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in ckpt["model"].items()}
    model.load_state_dict(state)
    dtype = next(iter(state.values())).dtype
    return model.to(device=device, dtype=dtype), ckpt


# ----------------------------------------------------------------------------------------------
# Peak dense bf16 tensor FLOP/s, matched against torch.cuda.get_device_name(); first match wins.
PEAK_FLOPS = (
    ("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12), ("B200", 2250e12),
    ("A100", 312e12), ("A10G", 70e12), ("A10", 125e12), ("L40S", 362e12), ("L4", 121e12),
    ("V100", 125e12), ("RTX 4090", 165e12), ("RTX 3090", 71e12), ("T4", 65e12),
)


def peak_flops_for(device=None):
    """Look up the peak for a device (torch.device, 'cuda', or a GPU name string); None if unknown."""
    if device is None:
        return None
    name = str(device)
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name(torch.device(name))
    for key, flops in PEAK_FLOPS:
        if key.lower() in name.lower():
            return flops
    return None


# ----------------------------------------------------------------------------------------------
# Conversion of a trained Pre-LN (or rms+zero_mean, or crms) model into plain inference weights.

def _check_convertible(model):
    c = model.config
    ok = c.norm_pos == "pre" and not c.compact and (c.norm == "ln" or (c.norm in ("rms", "crms") and c.zero_mean))
    if not ok:
        raise ValueError(f"only Pre-LN, Pre-RMSNorm with zero_mean, or crms models convert "
                         f"(got norm={c.norm}, norm_pos={c.norm_pos}, zero_mean={c.zero_mean})")


def _centre(w, b=None):
    """P applied to a producer: centre over the output dimension (rows of W, entries of b)."""
    return w - w.mean(dim=0, keepdim=True), (None if b is None else b - b.mean())


@torch.no_grad()
def convert_to_rms(model):
    """A plain Pre-RMSNorm model (zero_mean=False) with the centring baked into the weights."""
    _check_convertible(model)
    c = model.config
    # without OSP's projection the embedding is centred, so a tied head must keep the raw matrix: untie
    untie = c.tie_embeddings and not c.emb_proj
    new = GPT(GPTConfig(**{**asdict(c), "norm": "rms", "zero_mean": False,
                           "tie_embeddings": c.tie_embeddings and not untie})).to(next(model.parameters()).dtype)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    if c.emb_proj:  # the projection is the writer; the embedding itself stays as it was
        sd["transformer.emb_proj_in.weight"] = _centre(sd["transformer.emb_proj_in.weight"])[0]
    else:
        for k in ("transformer.wte.weight", "transformer.wpe.weight"):
            if k in sd:
                sd[k] = sd[k] - sd[k].mean(dim=1, keepdim=True)  # centre each embedding vector
    for i in range(c.n_layer):
        for proj in (f"transformer.h.{i}.attn.c_proj", f"transformer.h.{i}.mlp.c_proj"):
            w, b = _centre(sd[proj + ".weight"], sd.get(proj + ".bias"))
            sd[proj + ".weight"] = w
            if b is not None:
                sd[proj + ".bias"] = b
    new.load_state_dict(sd)
    return new


@torch.no_grad()
def convert_to_crms(model):
    """A compact Pre-CRMSNorm model: (d-1)-dim stream, parameter-free norms, gains and 1/sqrt(l) folded."""
    _check_convertible(model)
    c = model.config
    dtype = next(model.parameters()).dtype
    new = GPT(GPTConfig(**{**asdict(c), "norm": "crms", "zero_mean": True, "compact": True,
                           "tie_embeddings": False, "depth_scale": False, "emb_proj": False})).to(dtype)
    old, tr = model.transformer, new.transformer

    def write(linear_w, linear_b=None):  # producer: C P W, C P b
        w, b = _centre(linear_w, linear_b)
        return w[:-1], (None if b is None else b[:-1])

    def read(linear, norm, scale):  # consumer after a norm: W diag(g s) D, W b_n s + bias
        bias = None if norm.bias is None else norm.bias * scale
        return fold_into_consumer(linear, norm.weight * scale, bias)

    def copy(dst, w, b=None):
        dst.weight.copy_(w)
        if dst.bias is not None:
            dst.bias.copy_(b if b is not None else torch.zeros_like(dst.bias))

    # embeddings (OSP's projection is merged in: P_in (e_tok + e_pos) = P_in e_tok + P_in e_pos)
    proj = old.emb_proj_in.weight if c.emb_proj else None
    for name in ("wte", "wpe"):
        if name in old:
            e = old[name].weight if proj is None else old[name].weight @ proj.t()
            tr[name].weight.copy_(write(e.t())[0].t())
    for ob, nb, i in zip(old.h, tr.h, range(c.n_layer)):
        copy(nb.attn.c_attn, *read(ob.attn.c_attn, ob.ln_1, ob.scale))
        copy(nb.mlp.c_fc, *read(ob.mlp.c_fc, ob.ln_2, ob.scale))
        copy(nb.attn.c_proj, *write(ob.attn.c_proj.weight, ob.attn.c_proj.bias))
        copy(nb.mlp.c_proj, *write(ob.mlp.c_proj.weight, ob.mlp.c_proj.bias))
        if c.qk_norm:
            nb.attn.q_norm.load_state_dict(ob.attn.q_norm.state_dict())
            nb.attn.k_norm.load_state_dict(ob.attn.k_norm.state_dict())
    # head: logits = H (g_f * D z + b_f), with H = lm_head (times P_out when OSP's projection is on)
    head = model.lm_head.weight if not c.emb_proj else model.lm_head.weight @ old.emb_proj_out.weight
    fake = nn.Linear(head.shape[1], head.shape[0], bias=False).to(dtype)
    fake.weight.copy_(head)
    copy(new.lm_head, *fold_into_consumer(fake, old.ln_f.weight, old.ln_f.bias))
    return new


def model_config_keys():
    return [f.name for f in fields(GPTConfig)]


if __name__ == "__main__":
    print(json.dumps(asdict(GPTConfig()), indent=1))
