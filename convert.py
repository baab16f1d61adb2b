"""
Convert a Pre-LN checkpoint into an inference model with the same logits (Jiang et al., NeurIPS 2023).

  python convert.py out/ckpt.pt out_rms/ckpt.pt --to=rms    plain Pre-RMSNorm: centring baked into weights
  python convert.py out/ckpt.pt out_crms/ckpt.pt --to=crms  compact Pre-CRMSNorm: (d-1)-dim stream,
                                                            norm gains, biases and 1/sqrt(l) folded in

The formulas (P = I - 11^T/d centres, C drops the last coordinate, D z = [z, -sum(z)] restores it):
  writers of the stream (embeddings, output projections)   W, b       ->  C P W, C P b   (rms: P W, P b)
  readers after a norm with gain g, bias b_n, scale s_l    W, bias    ->  W diag(s_l g) D,  s_l W b_n + bias
so the compact model's norms are parameter-free CRMSNorms on d-1 coordinates (model.py, "The zero-mean
stream", explains why the stream may be centred at all).
Input: a checkpoint of norm=ln/norm_pos=pre, or of the equivalent rms+zero_mean or crms models. The output
holds the model and the tokenizer description (no optimizer state) and loads with checkpoint.load_checkpoint /
sample.py.

  python convert.py out/ckpt.pt OUT_DIR --to=hf             a transformers model folder (safetensors, config,
                                                            tokenizer) that AutoModelForCausalLM loads
The model classes and what they take (export_hf; anything else is refused with one line saying why):
  GPT2LMHeadModel   Pre-LN (or rms/crms with zero_mean: the same model), learned positions, gelu / gelu_tanh /
                    relu2 MLP, tied or untied head; bias=False exports as zero biases
  LlamaForCausalLM  Pre-Norm rms or ss, RoPE, SwiGLU, bias=False; a Pre-LN (ln, or zero_mean) model goes
                    through convert_to_rms first (so its head comes out untied)
  Olmo2ForCausalLM  norm_pos=reorder with qk_norm, rms or ss, RoPE, SwiGLU, bias=False
Folded in exactly: LayerNorm Scaling (s_l times the gains and biases of block l's input norms), the Single-Scale
norm's one gamma (a gain vector of gammas), OSP's emb_proj (into the embedding tables and the head); the rows
that pad the vocabulary to a multiple of 64 are dropped. Same RoPE convention (rotate the halves of each
head), attention scale 1/sqrt(head size), eps inside the square root, as transformers.
"""

import argparse
import os
import sys
from dataclasses import asdict, replace

import torch

from checkpoint import load_checkpoint, save_atomically
from model import GPT, compact_crms_model


def is_compact(model):
    return model.transformer.wte.embedding_dim == model.config.n_embd - 1


def check_convertible(model):
    c = model.config
    ok = c.norm_pos == "pre" and not is_compact(model) and (c.norm == "ln" or (c.norm in ("rms", "crms") and c.zero_mean))
    if not ok:
        raise ValueError(f"only Pre-LN, Pre-RMSNorm with zero_mean, or crms models convert "
                         f"(got norm={c.norm}, norm_pos={c.norm_pos}, zero_mean={c.zero_mean})")


def centred(w, b=None):
    """P on a writer: centre over the output dimension (rows of W, entries of b)."""
    return w - w.mean(dim=0, keepdim=True), (None if b is None else b - b.mean())


@torch.no_grad()
def convert_to_rms(model):
    """A plain Pre-RMSNorm model (zero_mean=False) with the centring baked into the weights."""
    check_convertible(model)
    c = model.config
    # without OSP's projection the embedding is centred, so a tied head must keep the raw matrix: untie
    untie = c.tie_embeddings and not c.emb_proj
    new = GPT(replace(c, norm="rms", zero_mean=False, tie_embeddings=c.tie_embeddings and not untie))
    new.to(next(model.parameters()).dtype)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    if c.emb_proj:  # the projection is the writer; the embedding itself stays as it was
        sd["transformer.emb_proj_in.weight"] = centred(sd["transformer.emb_proj_in.weight"])[0]
    else:
        for k in ("transformer.wte.weight", "transformer.wpe.weight"):
            if k in sd:
                sd[k] = centred(sd[k].t())[0].t()  # centre each embedding vector (a row of the table)
    for i in range(c.n_layer):
        for proj in (f"transformer.h.{i}.attn.c_proj", f"transformer.h.{i}.mlp.c_proj"):
            w, b = centred(sd[proj + ".weight"], sd.get(proj + ".bias"))
            sd[proj + ".weight"] = w
            if b is not None:
                sd[proj + ".bias"] = b
    new.load_state_dict(sd)
    return new


@torch.no_grad()
def convert_to_crms(model):
    """A compact Pre-CRMSNorm model: (d-1)-dim stream, parameter-free norms, gains and 1/sqrt(l) folded."""
    check_convertible(model)
    c = model.config
    new = compact_crms_model(c).to(next(model.parameters()).dtype)
    old, tr = model.transformer, new.transformer

    def write(w, b=None):  # C P W, C P b
        w, b = centred(w, b)
        return w[:-1], (None if b is None else b[:-1])

    def read(w, bias, norm, s=1.0):  # W diag(s g) D, s W b_n + bias
        wg = w * (s * norm.weight)
        b = bias if norm.bias is None else s * (w @ norm.bias) + (0 if bias is None else bias)
        return wg[:, :-1] - wg[:, -1:], b  # (M D) z = M[:, :-1] z - M[:, -1] sum(z)

    def copy(dst, w, b=None):
        dst.weight.copy_(w)
        if dst.bias is not None:
            dst.bias.copy_(b if b is not None else torch.zeros_like(dst.bias))

    # embeddings (OSP's projection merged in: P_in (e_tok + e_pos) = P_in e_tok + P_in e_pos)
    for name in ("wte", "wpe"):
        if old[name] is not None:
            e = old[name].weight if old.emb_proj_in is None else old[name].weight @ old.emb_proj_in.weight.t()
            tr[name].weight.copy_(write(e.t())[0].t())
    for ob, nb in zip(old.h, tr.h):
        s = ob.depth_scale
        copy(nb.attn.c_attn, *read(ob.attn.c_attn.weight, ob.attn.c_attn.bias, ob.ln_1, s))
        copy(nb.mlp.c_fc, *read(ob.mlp.c_fc.weight, ob.mlp.c_fc.bias, ob.ln_2, s))
        copy(nb.attn.c_proj, *write(ob.attn.c_proj.weight, ob.attn.c_proj.bias))
        copy(nb.mlp.c_proj, *write(ob.mlp.c_proj.weight, ob.mlp.c_proj.bias))
        if c.qk_norm:
            nb.attn.q_norm.load_state_dict(ob.attn.q_norm.state_dict())
            nb.attn.k_norm.load_state_dict(ob.attn.k_norm.state_dict())
    # head: logits = H (g_f * D z + b_f), H = lm_head (times P_out when OSP's projection is on)
    head = model.lm_head.weight if old.emb_proj_out is None else model.lm_head.weight @ old.emb_proj_out.weight
    copy(new.lm_head, *read(head, None, old.ln_f))
    return new


# --------------------------------------------------------------------------------------------
# --to=hf: a transformers model folder (GPT2LMHeadModel, LlamaForCausalLM or Olmo2ForCausalLM)

HF_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu2": "relu2"}  # ours -> transformers'
UNEXPRESSED_PLACEMENTS = {
    "post": "Post-LN, N(x + f(x))", "mix": "Mix-LN (Post-LN first blocks, Pre-LN after)",
    "sandwich": "Sandwich, x + N_out(f(N(x)))", "peri": "Peri-LN (sandwich plus a norm on the embedding)",
    "deepnorm": "DeepNorm, N(alpha x + f(x))",
}


def hf_target(config, compact=False):
    """(transformers class name, None) when one class computes exactly this model, else (None, why not)."""
    c = config
    if compact:
        return None, ("a compact crms model has a (d-1)-dim stream, which no transformers class has: export the "
                      "checkpoint it was converted from")
    if c.norm_pos in UNEXPRESSED_PLACEMENTS:
        return None, (f"norm_pos={c.norm_pos} ({UNEXPRESSED_PLACEMENTS[c.norm_pos]}) has no transformers class: "
                      f"GPT-2 and Llama are Pre-Norm, OLMo 2 is reorder")
    if c.norm == "none":
        return None, "norm=none: every transformers causal LM normalizes (there is no identity norm to load)"
    if c.zero_mean and c.norm not in ("ln", "rms", "crms"):
        return None, f"zero_mean with norm={c.norm}: the centring is part of its forward and no class has it"
    if c.pos_emb == "learned":
        if c.norm_pos != "pre":
            return None, f"norm_pos={c.norm_pos} with learned positions: OLMo 2 (reorder) uses RoPE"
        if c.norm in ("rms", "ss") and not c.zero_mean:
            return None, (f"norm={c.norm} with learned positions: GPT2LMHeadModel has LayerNorm, and {c.norm} "
                          f"without zero_mean is not LayerNorm")
        if c.mlp not in HF_ACTIVATIONS:
            return None, f"mlp={c.mlp} with learned positions: GPT2LMHeadModel has a plain (ungated) MLP"
        if c.qk_norm:
            return None, "qk_norm with learned positions: GPT2LMHeadModel has no QK-norm"
        return "GPT2LMHeadModel", None
    if c.mlp != "swiglu":
        return None, f"mlp={c.mlp} with rope: LlamaForCausalLM and Olmo2ForCausalLM have a SwiGLU MLP"
    if c.bias:
        return None, "bias=True with rope: Llama's and OLMo 2's RMSNorm have no bias (train with --bias=False)"
    if c.norm_pos == "reorder":
        if c.norm not in ("rms", "ss"):
            return None, f"norm={c.norm} with norm_pos=reorder: Olmo2ForCausalLM has RMSNorm"
        if not c.qk_norm:
            return None, "norm_pos=reorder without qk_norm: Olmo2ForCausalLM always applies QK-norm"
        return "Olmo2ForCausalLM", None
    if c.qk_norm:
        return None, ("qk_norm with norm_pos=pre: LlamaForCausalLM has no QK-norm (OLMo 2 has it, with "
                      "norm_pos=reorder)")
    return "LlamaForCausalLM", None


def as_pre_ln(model):
    """A zero_mean rms/crms model is the Pre-LN model of the same stored parameters (model.py, "The zero-mean
    stream"): rebuild it as norm=ln without the centring hooks, for GPT2LMHeadModel's LayerNorm."""
    c = model.config
    if c.norm == "ln" and not c.zero_mean:
        return model
    new = GPT(replace(c, norm="ln", zero_mean=False)).to(next(model.parameters()).dtype)
    new.load_state_dict(model.state_dict())
    return new


def norm_gain(norm, d, s=1.0):
    """s times the d-vector gain of one of our norms (the Single-Scale norm's one gamma, repeated d times)."""
    g = norm.weight if getattr(norm, "weight", None) is not None else norm.gain * torch.ones(d, dtype=norm.gain.dtype)
    return (s * g).clone()


def stream_tables(model):
    """(token embedding, position embedding or None, LM head), each V x d without the padding rows, with OSP's
    projections folded in: x = P_in (e_tok + e_pos) and logits = H P_out N(x)."""
    tr, V = model.transformer, model.config.vocab_size
    wte, head = tr.wte.weight, model.lm_head.weight
    wpe = None if tr.wpe is None else tr.wpe.weight
    if tr.emb_proj_in is not None:
        wte = wte @ tr.emb_proj_in.weight.t()
        wpe = None if wpe is None else wpe @ tr.emb_proj_in.weight.t()
        head = head @ tr.emb_proj_out.weight
    return wte[:V], wpe, head[:V]


def head_is_tied(model):
    return model.config.tie_embeddings and model.transformer.emb_proj_in is None


def gpt2_state(model):
    """GPT2LMHeadModel's config kwargs and state_dict. Its Conv1D layers store W^T (in, out)."""
    c, tr = model.config, model.transformer
    d, zeros = c.n_embd, lambda n: torch.zeros(n, dtype=tr.wte.weight.dtype)
    wte, wpe, head = stream_tables(model)
    sd = {"transformer.wte.weight": wte, "transformer.wpe.weight": wpe}

    def norm(prefix, ln, s=1.0):  # s (n) = s g n + s b: LayerNorm Scaling folds into gain and bias
        sd[prefix + ".weight"] = norm_gain(ln, d, s)
        sd[prefix + ".bias"] = s * ln.bias if ln.bias is not None else zeros(d)

    def conv(prefix, lin):
        sd[prefix + ".weight"] = lin.weight.t().contiguous()
        sd[prefix + ".bias"] = lin.bias if lin.bias is not None else zeros(lin.out_features)

    for i, b in enumerate(tr.h):
        p = f"transformer.h.{i}"
        norm(p + ".ln_1", b.ln_1, b.depth_scale)
        conv(p + ".attn.c_attn", b.attn.c_attn)
        conv(p + ".attn.c_proj", b.attn.c_proj)
        norm(p + ".ln_2", b.ln_2, b.depth_scale)
        conv(p + ".mlp.c_fc", b.mlp.c_fc)
        conv(p + ".mlp.c_proj", b.mlp.c_proj)
    norm("transformer.ln_f", tr.ln_f)
    sd["lm_head.weight"] = head
    kwargs = dict(vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=d, n_layer=c.n_layer,
                  n_head=c.n_head, n_inner=tr.h[0].mlp.c_fc.out_features,
                  activation_function=HF_ACTIVATIONS[c.mlp], layer_norm_epsilon=c.norm_eps,
                  resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.dropout)
    return kwargs, sd


def llama_state(model, olmo2=False):
    """LlamaForCausalLM's (or Olmo2ForCausalLM's) config kwargs and state_dict: q, k, v split out of c_attn,
    gate and up out of c_fc (our SwiGLU's first half is the gate)."""
    c, tr = model.config, model.transformer
    d = c.n_embd
    wte, _, head = stream_tables(model)
    sd = {"model.embed_tokens.weight": wte, "model.norm.weight": norm_gain(tr.ln_f, d), "lm_head.weight": head}
    for i, b in enumerate(tr.h):
        p = f"model.layers.{i}"
        q, k, v = b.attn.c_attn.weight.split(d)
        gate, up = b.mlp.c_fc.weight.chunk(2)
        sd.update({f"{p}.self_attn.q_proj.weight": q, f"{p}.self_attn.k_proj.weight": k,
                   f"{p}.self_attn.v_proj.weight": v, f"{p}.self_attn.o_proj.weight": b.attn.c_proj.weight,
                   f"{p}.mlp.gate_proj.weight": gate, f"{p}.mlp.up_proj.weight": up,
                   f"{p}.mlp.down_proj.weight": b.mlp.c_proj.weight})
        if olmo2:  # x + N(f(x)); QK-norm over the full q and k, as ours
            sd.update({f"{p}.post_attention_layernorm.weight": norm_gain(b.ln_1_out, d),
                       f"{p}.post_feedforward_layernorm.weight": norm_gain(b.ln_2_out, d),
                       f"{p}.self_attn.q_norm.weight": norm_gain(b.attn.q_norm, d),
                       f"{p}.self_attn.k_norm.weight": norm_gain(b.attn.k_norm, d)})
        else:  # x + f(s_l N(x)): LayerNorm Scaling folds into the input norms' gains
            sd.update({f"{p}.input_layernorm.weight": norm_gain(b.ln_1, d, b.depth_scale),
                       f"{p}.post_attention_layernorm.weight": norm_gain(b.ln_2, d, b.depth_scale)})
    kwargs = dict(vocab_size=c.vocab_size, hidden_size=d, intermediate_size=tr.h[0].mlp.c_proj.in_features,
                  num_hidden_layers=c.n_layer, num_attention_heads=c.n_head, num_key_value_heads=c.n_head,
                  head_dim=d // c.n_head, hidden_act="silu", max_position_embeddings=c.block_size,
                  rms_norm_eps=c.norm_eps, attention_bias=False, attention_dropout=c.dropout,
                  rope_parameters={"rope_type": "default", "rope_theta": c.rope_base})
    if not olmo2:
        kwargs["mlp_bias"] = False
    return kwargs, sd


@torch.no_grad()
def to_hf(model, compact=False, eot=None):
    """Our GPT -> the transformers model that computes the same logits (on the real vocabulary), in our dtype.
    Raises ValueError with one line when no transformers class expresses the model."""
    import transformers

    target, why = hf_target(model.config, compact)
    if target is None:
        raise ValueError(f"cannot export to Hugging Face: {why}")
    model = model.eval()
    if target == "GPT2LMHeadModel":
        model = as_pre_ln(model)
        kwargs, sd = gpt2_state(model)
    elif model.config.norm == "ln" or model.config.zero_mean:
        model = convert_to_rms(model)  # Pre-LN -> plain Pre-RMSNorm, centring baked into the writers
    if target != "GPT2LMHeadModel":
        kwargs, sd = llama_state(model, olmo2=target == "Olmo2ForCausalLM")
    tied = head_is_tied(model)
    config_class = {"GPT2LMHeadModel": transformers.GPT2Config, "LlamaForCausalLM": transformers.LlamaConfig,
                    "Olmo2ForCausalLM": transformers.Olmo2Config}[target]
    config = config_class(**kwargs, tie_word_embeddings=tied, bos_token_id=eot, eos_token_id=eot,
                          pad_token_id=None, use_cache=True)
    dtype = next(model.parameters()).dtype
    hf = getattr(transformers, target)(config).to(dtype)
    if tied:
        del sd["lm_head.weight"]
    result = hf.load_state_dict({k: v.detach().clone().contiguous() for k, v in sd.items()}, strict=False)
    missing = set(result.missing_keys) - ({"lm_head.weight"} if tied else set())
    if missing or result.unexpected_keys:  # a mapping bug, never silently a half-random model
        raise RuntimeError(f"export to {target}: missing {sorted(missing)}, unexpected {result.unexpected_keys}")
    if tied:
        hf.tie_weights()
    return hf.eval()


def char_tokenizer(chars):
    """A transformers tokenizer for a char-level dataset: token i is chars[i], decoded without separators."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({ch: i for i, ch in enumerate(chars)}, unk_token=chars[0]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character alone
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False)


def gpt2_tokenizer():
    """GPT-2's BPE as a transformers tokenizer, built from tiktoken's gpt2 ranks (offline when tiktoken has
    its files cached); the same ids as tiktoken."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    from prepare import _gpt2

    enc = _gpt2()  # SystemExit with the reason when tiktoken or its files are missing

    class RanksConverter(TikTokenConverter):  # reads the ranks from memory instead of a vocab file
        def load_tiktoken_bpe(self, _):
            return enc._mergeable_ranks

    tok = RanksConverter(pattern=enc._pat_str, extra_special_tokens=enc._special_tokens).converted()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")


def hf_tokenizer(meta):
    """(transformers tokenizer or None, a sentence saying what was written) for a dataset's meta dict."""
    kind = (meta or {}).get("tokenizer")
    try:
        if kind == "char":
            return char_tokenizer(meta["chars"]), f"a char-level tokenizer ({len(meta['chars'])} characters)"
        if kind == "gpt2":
            return gpt2_tokenizer(), "the GPT-2 BPE tokenizer (from tiktoken's files)"
        if kind == "t5":
            from transformers import AutoTokenizer
            name = meta.get("tokenizer_name", "google-t5/t5-base")
            return AutoTokenizer.from_pretrained(name, local_files_only=True), f"the {name} tokenizer"
    except (SystemExit, OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        return None, f"no tokenizer ({kind}: {first}); pass one to lm_eval with tokenizer=NAME"
    return None, f"no tokenizer (the checkpoint's dataset tokenizer is {kind!r}); pass one with tokenizer=NAME"


def export_hf(ckpt_path, out_dir):
    """Write out_dir as a transformers model folder; returns (the transformers model, tokenizer sentence)."""
    model, ckpt = load_checkpoint(ckpt_path)
    meta = ckpt.get("meta") or {}
    hf = to_hf(model, compact=ckpt.get("compact_crms", False) or is_compact(model), eot=meta.get("eot"))
    hf.save_pretrained(out_dir)  # model.safetensors, config.json, generation_config.json
    tokenizer, said = hf_tokenizer(meta)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
    return hf, said


TARGETS = {"rms": convert_to_rms, "crms": convert_to_crms}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt_in", help="checkpoint file (or out_dir holding ckpt.pt)")
    parser.add_argument("ckpt_out", help="file to write (--to=hf: a folder); must not be the input")
    parser.add_argument("--to", required=True, help="rms, crms or hf")
    args = parser.parse_args(argv)
    if args.to not in (*TARGETS, "hf"):
        sys.exit(f"error: bad value {args.to!r} for --to: choose from {', '.join(TARGETS)}, hf")
    src = os.path.join(args.ckpt_in, "ckpt.pt") if os.path.isdir(args.ckpt_in) else args.ckpt_in
    if args.to == "hf":
        return hf_main(src, args.ckpt_out)
    if os.path.abspath(src) == os.path.abspath(args.ckpt_out):
        sys.exit("error: ckpt_out is the input checkpoint; write the converted model somewhere else")
    try:
        model, ckpt = load_checkpoint(src)
        new = TARGETS[args.to](model)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    out = {"model": new.state_dict(), "model_config": asdict(new.config), "compact_crms": args.to == "crms",
           "config": ckpt.get("config", {}), "iter_num": ckpt.get("iter_num", 0),
           "best_val_loss": ckpt.get("best_val_loss"), "dataset": ckpt.get("dataset"),
           "meta": ckpt.get("meta"),  # the tokenizer: sample.py works without the data folder
           "converted_from": src}
    os.makedirs(os.path.dirname(os.path.abspath(args.ckpt_out)), exist_ok=True)
    save_atomically(out, args.ckpt_out)
    n_old, n_new = model.num_params(), new.num_params()
    print(f"wrote {args.ckpt_out}: norm={new.config.norm}{' (compact)' if args.to == 'crms' else ''} "
          f"({n_old:,} -> {n_new:,} parameters)")


def hf_main(src, out_dir):
    """convert.py CKPT OUT_DIR --to=hf: the folder, then what was written and the lm-evaluation-harness command."""
    if os.path.isfile(out_dir):
        sys.exit(f"error: bad output folder {out_dir!r}: it is a file (--to=hf writes a folder)")
    try:
        import transformers  # noqa: F401
    except ImportError:
        sys.exit("error: --to=hf needs the optional package transformers: pip install transformers")
    try:
        hf, said = export_hf(src, out_dir)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    print(f"wrote {out_dir}: {type(hf).__name__} ({hf.num_parameters():,} parameters, "
          f"{next(hf.parameters()).dtype}) with {said}")
    print(f"load it: AutoModelForCausalLM.from_pretrained({out_dir!r}); evaluate it: lm_eval --model hf "
          f"--model_args pretrained={out_dir} --tasks lambada_openai,hellaswag --device cpu")


if __name__ == "__main__":
    main()
