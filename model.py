"""
One GPT (nanoGPT's, plus switches) whose normalization type, placement and depth scaling are switches.

Placements (f = attention or MLP, N = the norm chosen by `norm`, s_l = LayerNorm Scaling; Block.sublayer):
  pre       x + f(s_l * N(x))                        GPT-2, LLaMA
  post      N(x + f(x))                              original Transformer, BERT
  mix       first floor(mix_ratio * L) blocks post, the rest pre      Mix-LN (Li et al., ICLR 2025)
  sandwich  x + N_out(f(s_l * N(x)))                 CogView, Gemma 2
  peri      sandwich, plus N on the embedding output         Peri-LN (Kim et al., 2025)
  reorder   x + N_out(f(x))                          OLMo 2
  deepnorm  N(alpha * x + f(x)), alpha = (2L)^(1/4); value, out-proj and FFN weights start times
            beta = (8L)^(-1/4)                       DeepNet (Wang et al., 2022)
            (deepnorm_variant=papers_code: the LNS/Mix-LN repositories' DeepNorm row, see deepnorm_init)
A final norm before the LM head is kept in every placement.
depth_scale (LayerNorm Scaling, Sun et al. 2025, "The Curse of Depth in LLMs"): s_l = 1/sqrt(l) for
block l = 1..L, on the norm output that feeds the sublayers; without it s_l = 1.
zero_mean and norm=crms make Pre-RMSNorm and Pre-CRMSNorm exactly the Pre-LN model: see the section
"The zero-mean stream" below.
"""

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from configurator import config_field
from norms import NORM_TYPES, CRMSNorm, RMSNorm, at_least_float32, decompress, make_norm

NORM_POSITIONS = ("pre", "post", "mix", "sandwich", "peri", "reorder", "deepnorm")
MLP_TYPES = ("gelu", "gelu_tanh", "swiglu", "relu2")
DEEPNORM_VARIANTS = ("deepnet", "papers_code")


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
    deepnorm_variant: str = config_field("deepnet", "norm_pos=deepnorm: deepnet = Wang et al.'s alpha and beta; "
                                         "papers_code = the DeepNorm baseline as the LNS/Mix-LN code runs it "
                                         "(alpha 2*sqrt(2), xavier init with gain (8L)^(+1/4))", DEEPNORM_VARIANTS)
    depth_scale: bool = config_field(False, "LayerNorm Scaling: norm output feeding block l's sublayers times 1/sqrt(l)")
    zero_mean: bool = config_field(False, "centre every write into the residual stream (Pre-RMSNorm == Pre-LN)")
    pos_emb: str = config_field("learned", "position encoding", ("learned", "rope"))
    rope_base: float = config_field(10000.0, "RoPE base frequency")
    mlp: str = config_field("gelu", "feed-forward type (gelu_tanh: GPT-2's approximation, for its weights)",
                            MLP_TYPES)
    mlp_hidden: int = config_field(0, "MLP hidden size; 0 = 4*n_embd (gelu, relu2) or 8/3*n_embd rounded up to 64 (swiglu)")
    tie_embeddings: bool = config_field(True, "LM head shares the token embedding matrix")
    qk_norm: bool = config_field(False, "OLMo 2 QK-norm: RMSNorm over the full projected q and k")
    emb_proj: bool = config_field(False, "OSP embedding projection: d x d linear after the embedding and before the head")
    scaled_init: bool = config_field(False, "GPT-2 init std 0.02/sqrt(2*n_layer) on output projections")
    init_std: float = config_field(0.02, "std of the normal init of every linear and embedding weight")
    norm_eps: float = config_field(1e-5, "epsilon inside every norm")

    def __post_init__(self):
        if self.norm == "crms":
            self.zero_mean = True  # crms is the compressed form of the zero-mean stream
        check_config(self)


def check_config(c):
    """Refuse bad values and conflicting switches with one line that names them."""
    for name, choices in (("norm", NORM_TYPES), ("norm_pos", NORM_POSITIONS),
                          ("pos_emb", ("learned", "rope")), ("mlp", MLP_TYPES),
                          ("deepnorm_variant", DEEPNORM_VARIANTS)):
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
    if c.mlp_hidden < 0 or c.norm_eps < 0 or not c.init_std > 0:
        raise ValueError(f"mlp_hidden and norm_eps must be >= 0 and init_std > 0, got {c.mlp_hidden}, "
                         f"{c.norm_eps} and {c.init_std}")
    if c.norm in ("crms", "none") and c.norm_pos != "pre":
        raise ValueError(f"norm={c.norm} works only with norm_pos=pre (got {c.norm_pos}): crms needs a "
                         f"zero-mean Pre-Norm stream, none has no norm to place")
    if c.zero_mean and c.norm_pos != "pre":
        raise ValueError(f"zero_mean centres a Pre-Norm residual stream: use norm_pos=pre (got {c.norm_pos})")
    if c.zero_mean and c.dropout > 0:
        raise ValueError(f"norm={c.norm} with zero_mean needs dropout=0 (dropout after a centred write "
                         f"breaks the zero-mean stream), got dropout={c.dropout}")
    if c.deepnorm_variant != "deepnet" and c.norm_pos != "deepnorm":
        raise ValueError(f"deepnorm_variant={c.deepnorm_variant} changes only norm_pos=deepnorm (got {c.norm_pos})")
    if c.depth_scale and c.norm_pos in ("post", "deepnorm", "reorder"):
        raise ValueError(f"depth_scale scales the norm that feeds a sublayer; norm_pos={c.norm_pos} has none "
                         f"(use pre, mix, sandwich or peri)")


def padded_vocab(vocab_size):
    return (vocab_size + 63) // 64 * 64  # embedding rows: a multiple of 64 gives faster matmuls (nanoGPT)


# ---------------------------------------------------------------------------------------------
# The transformer: nanoGPT's attention, MLP and block, with the placement table in Block.sublayer

class Rotary(nn.Module):
    """RoPE (Su et al., 2021): rotate the pairs (x_i, x_{i+h/2}) of each head by angle pos * base^(-2i/h)."""

    def __init__(self, head_dim, block_size, base):
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.outer(torch.arange(block_size, dtype=torch.float64), inv_freq)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, x):  # x: (B, heads, T, head_dim)
        T, half = x.shape[-2], x.shape[-1] // 2
        cos, sin = self.cos[:T].to(x.dtype), self.sin[:T].to(x.dtype)
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head, self.n_embd, self.dropout = c.n_head, c.n_embd, c.dropout
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.resid_dropout = nn.Dropout(c.dropout)
        self.q_norm = RMSNorm(c.n_embd, c.norm_eps) if c.qk_norm else None  # OLMo 2: over the full q and k
        self.k_norm = RMSNorm(c.n_embd, c.norm_eps) if c.qk_norm else None
        self.rotary = Rotary(c.n_embd // c.n_head, c.block_size, c.rope_base) if c.pos_emb == "rope" else None

    def forward(self, h):
        B, T, _ = h.shape
        q, k, v = self.c_attn(h).split(self.n_embd, dim=2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))  # (B, heads, T, hs)
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        # softmax(q k^T / sqrt(hs) + causal mask) v; flash attention on GPU
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, self.n_embd)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.kind = c.mlp
        hidden = c.mlp_hidden or (4 * c.n_embd if c.mlp != "swiglu" else (8 * c.n_embd // 3 + 63) // 64 * 64)
        self.c_fc = nn.Linear(c.n_embd, 2 * hidden if c.mlp == "swiglu" else hidden, bias=c.bias)
        self.c_proj = nn.Linear(hidden, c.n_embd, bias=c.bias)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, h):
        u = self.c_fc(h)
        if self.kind == "gelu":
            u = F.gelu(u)  # exact (erf); 3x faster on CPU than the tanh form
        elif self.kind == "gelu_tanh":
            u = F.gelu(u, approximate="tanh")  # GPT-2's approximation, to run its weights exactly
        elif self.kind == "relu2":
            u = F.relu(u).square()
        else:  # swiglu: gate and up came from one matmul
            gate, up = u.chunk(2, dim=-1)
            u = F.silu(gate) * up
        return self.dropout(self.c_proj(u))


def mix_ln_placement(layer_idx, n_layer, mix_ratio):
    """Mix-LN: "post" for the first floor(mix_ratio * n_layer) blocks (layer_idx counts from 0), "pre" after."""
    # exercise: mix_ln
    return "post" if layer_idx < math.floor(mix_ratio * n_layer) else "pre"
    # end exercise


def layernorm_scaling(l):
    """LayerNorm Scaling: s_l = 1/sqrt(l) for block l = 1..L."""
    # exercise: layernorm_scaling
    return 1.0 / math.sqrt(l)
    # end exercise


class Block(nn.Module):
    def __init__(self, c, layer_idx):
        super().__init__()
        L = c.n_layer
        self.pos = pos = mix_ln_placement(layer_idx, L, c.mix_ratio) if c.norm_pos == "mix" else c.norm_pos
        self.alpha = deepnorm_alpha(L, c.deepnorm_variant) if pos == "deepnorm" else 1.0
        # LayerNorm Scaling on the norm output feeding block l's sublayers, l = layer_idx + 1
        self.depth_scale = layernorm_scaling(layer_idx + 1) if c.depth_scale else 1.0
        self.attn, self.mlp = CausalSelfAttention(c), MLP(c)
        norm = lambda: make_norm(c.norm, c.n_embd, c.norm_eps, c.bias)  # noqa: E731
        self.ln_1, self.ln_2 = (norm(), norm()) if pos != "reorder" else (None, None)
        has_out_norm = pos in ("sandwich", "peri", "reorder")
        self.ln_1_out, self.ln_2_out = (norm(), norm()) if has_out_norm else (None, None)

    def forward(self, x):
        x = self.sublayer(x, self.attn, self.ln_1, self.ln_1_out)
        return self.sublayer(x, self.mlp, self.ln_2, self.ln_2_out)

    def sublayer(self, x, f, norm, norm_out):
        """One residual sublayer, f = attention or MLP: the placement table of the module docstring."""
        if self.pos == "pre":
            return x + f(self.scaled(norm(x)))
        if self.pos in ("sandwich", "peri"):
            return x + norm_out(f(self.scaled(norm(x))))
        if self.pos == "reorder":
            return x + norm_out(f(x))
        if self.pos == "post":
            return norm(x + f(x))
        return norm(self.alpha * x + f(x))  # deepnorm

    def scaled(self, h):
        """s_l * h, LayerNorm Scaling of a norm output feeding a sublayer (no multiply when it is off)."""
        return h if self.depth_scale == 1.0 else self.depth_scale * h


def deepnorm_alpha(L, variant):
    """The residual's weight in N(alpha * x + f(x)): DeepNet's (2L)^(1/4) for a decoder of L blocks; the
    LNS/Mix-LN code multiplies by the constant 2*sqrt(2) = 2.83 at every depth (2.21 at L = 12 by DeepNet)."""
    return (2 * L) ** 0.25 if variant == "deepnet" else 2 * math.sqrt(2)


def deepnorm_init(block, c):
    """DeepNet's init of a deepnorm block, applied after the normal(0, init_std) init.
    deepnet:     value, out-proj and FFN weights times beta = (8L)^(-1/4) (Wang et al., 2022).
    papers_code: as the LNS and Mix-LN repositories build their DeepNorm baseline (the row of their tables):
                 those weights xavier_normal with gain (8L)^(+1/4) (std gain*sqrt(2/(fan_in+fan_out)): 0.11 for
                 768 x 768 at L = 12, not 0.02 * beta = 0.006), and q, k xavier_normal with gain 1."""
    L, d = c.n_layer, c.n_embd
    q, k, v = block.attn.c_attn.weight.split(d)  # views into the fused q, k, v projection
    ffn_in = block.mlp.c_fc.weight.chunk(2) if c.mlp == "swiglu" else (block.mlp.c_fc.weight,)  # gate, up
    scaled = (v, block.attn.c_proj.weight, *ffn_in, block.mlp.c_proj.weight)
    if c.deepnorm_variant == "deepnet":
        for w in scaled:
            w.mul_((8 * L) ** -0.25)
    else:
        for w in scaled:
            torch.nn.init.xavier_normal_(w, gain=(8 * L) ** 0.25)
        for w in (q, k):
            torch.nn.init.xavier_normal_(w, gain=1.0)


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = self.config = config
        d, V = c.n_embd, padded_vocab(c.vocab_size)
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(V, d),
            wpe=nn.Embedding(c.block_size, d) if c.pos_emb == "learned" else None,
            drop=nn.Dropout(c.dropout),
            ln_emb=make_norm(c.norm, d, c.norm_eps, c.bias) if c.norm_pos == "peri" else None,  # Peri-LN
            emb_proj_in=nn.Linear(d, d, bias=False) if c.emb_proj else None,  # OSP: after the embedding
            h=nn.ModuleList([Block(c, l) for l in range(c.n_layer)]),
            ln_f=make_norm(c.norm, d, c.norm_eps, c.bias),
            emb_proj_out=nn.Linear(d, d, bias=False) if c.emb_proj else None,  # OSP: before the head
        ))
        self.lm_head = nn.Linear(d, V, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        self.init_weights()
        if c.zero_mean:
            make_stream_zero_mean(self, compress=c.norm == "crms")

    def init_weights(self):
        c = self.config
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                torch.nn.init.normal_(module.weight, mean=0.0, std=c.init_std)
                if getattr(module, "bias", None) is not None:
                    torch.nn.init.zeros_(module.bias)
        with torch.no_grad():
            for block in self.transformer.h:
                if c.scaled_init:  # GPT-2: residual writes shrink with depth
                    for proj in (block.attn.c_proj, block.mlp.c_proj):
                        proj.weight.mul_(1.0 / math.sqrt(2 * c.n_layer))
                if block.pos == "deepnorm":
                    deepnorm_init(block, c)
            if c.emb_proj:
                torch.nn.init.orthogonal_(self.transformer.emb_proj_in.weight)
                torch.nn.init.orthogonal_(self.transformer.emb_proj_out.weight)

    def embed(self, idx):
        """Token (+ learned position) embedding: the residual stream entering block 1."""
        tr = self.transformer
        x = tr.wte(idx)
        if tr.wpe is not None:
            x = x + tr.wpe(torch.arange(idx.shape[1], device=idx.device))
        x = tr.drop(x)
        if tr.emb_proj_in is not None:
            x = tr.emb_proj_in(x)
        return x if tr.ln_emb is None else tr.ln_emb(x)

    def forward(self, idx, targets=None, skip_blocks=()):
        if idx.shape[1] > self.config.block_size:
            raise ValueError(f"sequence length {idx.shape[1]} exceeds block_size {self.config.block_size}")
        x = self.embed(idx)
        for l, block in enumerate(self.transformer.h):
            if l not in skip_blocks:  # analyze.py's layer drop removes single blocks
                x = block(x)
        h = self.transformer.ln_f(x)
        if self.transformer.emb_proj_out is not None:
            h = self.transformer.emb_proj_out(h)
        # logits over the real vocabulary: the padding rows of the embedding are not classes
        logits = self.lm_head(h)[..., :self.config.vocab_size]
        loss = None
        if targets is not None:  # softmax in at least float32 (bf16 logits lose too much)
            loss = F.cross_entropy(at_least_float32(logits).reshape(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def hidden_states(self, idx):
        """The stream entering each block and leaving the last: n_layer + 1 tensors (B, T, n_embd)."""
        full = lambda x: decompress(x) if x.shape[-1] < self.config.n_embd else x  # noqa: E731 (crms)
        x = self.embed(idx)
        states = [full(x)]
        for block in self.transformer.h:
            x = block(x)
            states.append(full(x))
        return states

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size:])
            logits = logits[:, -1, :].float()
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

    def num_params(self, non_embedding=True):
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.transformer.wpe is not None:
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


# ---------------------------------------------------------------------------------------------
# The zero-mean stream: exact Pre-LN == Pre-RMSNorm == Pre-CRMSNorm (Jiang et al., NeurIPS 2023)
#
# LayerNorm only sees the centred input: LN(x) = RMS(P x) with the same gain and bias, P = I - 11^T/d.
# In a Pre-Norm model the stream is a sum of writes: the embedding (or OSP's input projection) and each
# block's two output projections. Make every writer write P y instead of y and the stream stays
# zero-mean, so x = P x at every norm and LN(x) = RMS(x): norm=rms with zero_mean=True IS the Pre-LN
# model, computed from exactly the parameters Pre-LN stores. Same loss of the same parameters, so the
# same gradients and the same AdamW and Muon trajectories (tests: float64, 50 steps, <= 1e-9).
# A zero-mean d-vector is fixed by its first d-1 coordinates (the last is minus their sum), so norm=crms
# also drops the last coordinate (C): the stream is (d-1)-dim and CRMSNorm restores it (D z) before the
# gain. For inference, convert.py bakes C P into the writers' weights (C P W, C P b) and the gain g, bias
# b, D and 1/sqrt(l) into the readers' (W diag(g) D, W b + bias): parameter-free norms on d-1 coordinates.

def make_stream_zero_mean(model, compress):
    """Every module that writes into the residual stream writes P y, or C P y when compress (crms)."""
    def centre(module, inputs, y):
        # exercise: centre_writer
        y = y - y.mean(-1, keepdim=True)  # P y
        return y[..., :-1] if compress else y  # C P y: the last coordinate is implied
        # end exercise
    tr = model.transformer
    writers = [tr.emb_proj_in] if tr.emb_proj_in is not None else [tr.wte, tr.wpe]  # P(a + b) = P a + P b
    for block in tr.h:
        writers += [block.attn.c_proj, block.mlp.c_proj]
    for module in writers:
        if module is not None:
            module.register_forward_hook(centre)


def compact_crms_model(config):
    """The inference model convert.py's convert_to_crms fills (and checkpoint.load_checkpoint rebuilds): a
    Pre-Norm GPT on the (d-1)-dim stream with parameter-free CRMSNorms, untied head, no centring hooks (the
    writers' weights are already C P W)."""
    c = replace(config, norm="crms", depth_scale=False, tie_embeddings=False, emb_proj=False)
    model = GPT(replace(c, norm="none", zero_mean=False))  # the right skeleton, then (d-1)-wide pieces
    d, d1, V = c.n_embd, c.n_embd - 1, padded_vocab(c.vocab_size)
    tr = model.transformer
    tr.wte = nn.Embedding(V, d1)
    if tr.wpe is not None:
        tr.wpe = nn.Embedding(c.block_size, d1)
    for block in tr.h:
        block.ln_1, block.ln_2 = CRMSNorm(d, c.norm_eps, affine=False), CRMSNorm(d, c.norm_eps, affine=False)
        block.attn.c_attn = nn.Linear(d1, 3 * d, bias=c.bias)
        block.attn.c_proj = nn.Linear(d, d1, bias=c.bias)
        block.mlp.c_fc = nn.Linear(d1, block.mlp.c_fc.out_features, bias=c.bias)
        block.mlp.c_proj = nn.Linear(block.mlp.c_proj.in_features, d1, bias=c.bias)
    tr.ln_f = CRMSNorm(d, c.norm_eps, affine=False)
    model.lm_head = nn.Linear(d1, V, bias=c.bias)  # bias: the final norm's, folded
    model.config = c
    return model


# ---------------------------------------------------------------------------------------------
# The GPU peak table for MFU

# Peak dense bf16 tensor FLOP/s by GPU name (torch.cuda.get_device_name); the longest matching name wins
PEAK_FLOPS = {
    "H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "GH200": 989e12, "B200": 2250e12, "A100": 312e12,
    "A10G": 70e12, "A10": 125e12, "L40S": 362e12, "L40": 181e12, "L4": 121e12, "V100": 125e12,
    "RTX 4090": 165e12, "RTX 3090": 71e12, "T4": 65e12,
}


def peak_flops_for(device=None):
    """Look up the peak for a device (torch.device, 'cuda', or a GPU name string); None if unknown."""
    if device is None:
        return None
    name = str(device)
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name(torch.device(name))
    words = " ".join(name.upper().replace("-", " ").replace("_", " ").split())
    matches = [key for key in PEAK_FLOPS if f" {key.upper()} " in f" {words} "]  # whole words only
    return PEAK_FLOPS[max(matches, key=len)] if matches else None

