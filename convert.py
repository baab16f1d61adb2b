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


TARGETS = {"rms": convert_to_rms, "crms": convert_to_crms}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt_in", help="checkpoint file (or out_dir holding ckpt.pt)")
    parser.add_argument("ckpt_out", help="file to write; must not be the input")
    parser.add_argument("--to", required=True, help="rms or crms")
    args = parser.parse_args(argv)
    if args.to not in TARGETS:
        sys.exit(f"error: bad value {args.to!r} for --to: choose from {', '.join(TARGETS)}")
    src = os.path.join(args.ckpt_in, "ckpt.pt") if os.path.isdir(args.ckpt_in) else args.ckpt_in
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


if __name__ == "__main__":
    main()
