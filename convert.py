"""
Convert a Pre-LN checkpoint into an inference model with the same logits (Jiang et al., NeurIPS 2023).

  python convert.py out/ckpt.pt out_rms/ckpt.pt --to=rms    plain Pre-RMSNorm: centring baked into weights
  python convert.py out/ckpt.pt out_crms/ckpt.pt --to=crms  compact Pre-CRMSNorm: (d-1)-dim stream,
                                                            norm gains, biases and 1/sqrt(l) folded in

Input: a checkpoint of norm=ln/norm_pos=pre, or of the equivalent rms+zero_mean or crms models.
The output holds only the model (no optimizer state) and loads with model.load_checkpoint / sample.py.
"""

import argparse
import os
import sys
from dataclasses import asdict

import torch

from model import convert_to_crms, convert_to_rms, load_checkpoint

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
    out = {"model": new.state_dict(), "model_config": asdict(new.config),
           "config": ckpt.get("config", {}), "iter_num": ckpt.get("iter_num", 0),
           "best_val_loss": ckpt.get("best_val_loss"), "dataset": ckpt.get("dataset"),
           "converted_from": src}
    os.makedirs(os.path.dirname(os.path.abspath(args.ckpt_out)), exist_ok=True)
    tmp = args.ckpt_out + ".tmp"
    torch.save(out, tmp)
    os.replace(tmp, args.ckpt_out)  # atomic: a crash never leaves half a checkpoint
    n_old, n_new = model.num_params(), new.num_params()
    print(f"wrote {args.ckpt_out}: norm={new.config.norm} compact={new.config.compact} "
          f"({n_old:,} -> {n_new:,} parameters)")


if __name__ == "__main__":
    main()
