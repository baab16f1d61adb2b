"""
Our baseline rows against the code that produced the LNS / Mix-LN tables (github.com/lmsdss/LayerNorm-Scaling,
peft_pretraining/modeling_llama.py): the same weights copied into both models must give the same logits for
Pre-LN, Post-LN, Mix-LN, DeepNorm (deepnorm_variant=papers_code) and LNS. Their file is not part of nanonorm:
the test runs when NANONORM_LNS_REPO names a clone of that repository (and transformers is installed), e.g.

    git clone https://github.com/lmsdss/LayerNorm-Scaling /tmp/LNS
    NANONORM_LNS_REPO=/tmp/LNS python -m pytest -q tests/test_papers_code.py

and skips otherwise. Their script's NORM_TYPE=LNS never reaches the LNS branch (the name is lowercased, then
compared with 'LNS'; see docs/papers_code.md); the test compares with that branch as written, by comparing with 'lns'.
"""
import importlib.util
import os
import sys

import pytest
import torch

from conftest import requires
from model import GPT, GPTConfig

REPO = os.environ.get("NANONORM_LNS_REPO", "")
THEIR_MODEL = os.path.join(REPO, "peft_pretraining", "modeling_llama.py")
pytestmark = [pytest.mark.skipif(not os.path.isfile(THEIR_MODEL),
                                 reason="set NANONORM_LNS_REPO to a clone of lmsdss/LayerNorm-Scaling"),
              requires("transformers")]

L, D, HEADS, HIDDEN, V, T = 4, 64, 4, 128, 200, 32
# their NORM_TYPE (POST_NUM=1 of 4 blocks Post-LN for Mix-LN) -> our switches; plus rows that must differ
ROWS = [("pre", dict(norm_pos="pre")),
        ("post", dict(norm_pos="post")),
        ("post_pre", dict(norm_pos="mix", mix_ratio=0.25)),
        ("deeppost", dict(norm_pos="deepnorm", deepnorm_variant="papers_code")),
        ("lns", dict(norm_pos="pre", depth_scale=True))]
DIFFERENT = [("deeppost", dict(norm_pos="deepnorm")),  # DeepNet's alpha = (2L)^(1/4), not their 2*sqrt(2)
             ("lns", dict(norm_pos="pre"))]


def their_model(norm_type, tmp_path, monkeypatch):
    """Their LlamaForCausalLM for NORM_TYPE=norm_type (the module reads it when layers are built and run)."""
    import transformers
    monkeypatch.setenv("NORM_TYPE", norm_type)
    monkeypatch.setenv("POST_NUM", "1")
    with open(THEIR_MODEL) as f:
        source = f.read().replace("norm_type == 'LNS'", "norm_type == 'lns'")  # the branch as written
    path = tmp_path / "their_modeling_llama.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("their_modeling_llama", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    config = transformers.LlamaConfig(hidden_size=D, intermediate_size=HIDDEN, num_attention_heads=HEADS,
                                      num_hidden_layers=L, vocab_size=V, rms_norm_eps=1e-6,
                                      max_position_embeddings=T, pad_token_id=-1)
    torch.manual_seed(0)
    model = module.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():  # random norm gains, so a norm in the wrong place shows
            if p.dim() == 1:
                p.copy_(1 + 0.3 * torch.randn_like(p))
    return model, lambda idx: model(input_ids=idx).logits


def ours_with_their_weights(theirs, **switches):
    ours = GPT(GPTConfig(n_layer=L, n_head=HEADS, n_embd=D, block_size=T, vocab_size=V, bias=False, norm="rms",
                         norm_eps=1e-6, mlp="swiglu", mlp_hidden=HIDDEN, pos_emb="rope", tie_embeddings=False,
                         **switches)).eval()
    tm, om = theirs.model, ours.transformer
    with torch.no_grad():
        om.wte.weight[:V].copy_(tm.embed_tokens.weight)
        ours.lm_head.weight[:V].copy_(theirs.lm_head.weight)
        om.ln_f.weight.copy_(tm.norm.weight)
        for layer, block in zip(tm.layers, om.h):
            a, m = layer.self_attn, layer.mlp
            block.attn.c_attn.weight.copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]))
            block.attn.c_proj.weight.copy_(a.o_proj.weight)
            block.mlp.c_fc.weight.copy_(torch.cat([m.gate_proj.weight, m.up_proj.weight]))  # our gate, up order
            block.mlp.c_proj.weight.copy_(m.down_proj.weight)
            if block.pos == "pre":  # their input_layernorm feeds attention, post_attention_layernorm the MLP
                norms = (layer.input_layernorm, layer.post_attention_layernorm)
            else:  # Post-LN / DeepNorm: a norm after each residual add
                norms = (layer.post_attention_layernorm, layer.post_feedforward_layernorm)
            block.ln_1.weight.copy_(norms[0].weight)
            block.ln_2.weight.copy_(norms[1].weight)
    return ours


@pytest.mark.parametrize("norm_type, switches", ROWS + DIFFERENT)
def test_our_rows_compute_what_their_code_computes(norm_type, switches, tmp_path, monkeypatch):
    theirs, their_logits = their_model(norm_type, tmp_path, monkeypatch)
    ours = ours_with_their_weights(theirs, **switches)
    idx = torch.randint(0, V, (2, T), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, (got, _) = their_logits(idx), ours(idx)
    err = (expected - got).abs().max().item()
    if (norm_type, switches) in ROWS:
        assert err < 1e-5, f"NORM_TYPE={norm_type} vs {switches}: logits differ by {err}"
    else:
        assert err > 1e-2, f"NORM_TYPE={norm_type} vs {switches} should differ, but only by {err}"
