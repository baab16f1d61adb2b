"""
Generate text from a trained checkpoint (or from pretrained GPT-2 weights).

    python sample.py --out_dir=out --start="def " --num_samples=3 --max_new_tokens=200 \
        --temperature=0.8 --top_k=200 --seed=1337
    python sample.py --out_dir=out --start=FILE:prompt.txt
    python sample.py --init_from=gpt2 --start="Hello, I'm a language model,"

Autoregressive sampling as in nanoGPT: at each step the logits of the last position (padding rows of
the vocabulary dropped) are divided by the temperature, cut to the top_k largest, softmaxed and
sampled (model.generate). The tokenizer is the dataset's (meta.json, stored in the checkpoint by
train.py; prepare.get_tokenizer). The RNG is seeded right before generating, so a checkpoint and its
convert.py conversion sample the same text at the same seed.
"""

import os
import sys
from dataclasses import dataclass

import torch

from data import load_meta
from prepare import get_tokenizer
from configurator import ConfigError, config_field, parse_config, split_config
from checkpoint import load_pretrained, read_checkpoint
from train import PRETRAINED, autocast_context, fail, param_dtype, resolve_device, resolve_dtype




@dataclass
class SampleConfig:
    """Sampling from out_dir/ckpt.pt (sample.py)"""
    out_dir: str = config_field("out", "folder holding ckpt.pt (init_from=resume)")
    init_from: str = config_field("resume", "resume (out_dir/ckpt.pt) or pretrained GPT-2 weights", ("resume",) + PRETRAINED)
    start: str = config_field("\n", "prompt text, or FILE:path to read it from a file")
    num_samples: int = config_field(3, "number of samples to draw")
    max_new_tokens: int = config_field(200, "tokens generated per sample")
    temperature: float = config_field(0.8, "1.0 = the model's distribution, < 1 sharper, 0 = greedy")
    top_k: int | None = config_field(200, "sample only among the k most likely tokens (None = all)")
    seed: int = config_field(1337, "random seed")
    device: str = config_field("auto", "auto = cuda, else mps, else cpu", ("auto", "cpu", "cuda", "mps"))
    dtype: str = config_field("auto", "auto = bfloat16 where supported, else float32",
                      ("auto", "float32", "bfloat16", "float16", "float64"))
    data_dir: str = config_field("data", "where to find the dataset's meta.json for checkpoints that do not carry it")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        sc = split_config(parse_config(argv, SampleConfig), SampleConfig)
        if sc.num_samples < 1 or sc.max_new_tokens < 0 or sc.temperature < 0 or (sc.top_k is not None and sc.top_k < 1):
            raise ValueError(f"bad sampling values: num_samples={sc.num_samples} (>= 1), max_new_tokens="
                             f"{sc.max_new_tokens} (>= 0), temperature={sc.temperature} (>= 0), top_k={sc.top_k} (>= 1 or None)")
        device_type, device = resolve_device(sc.device)
        dtype = resolve_dtype(sc.dtype, device_type)
    except (ConfigError, ValueError) as e:
        fail(e, code=2)
    if device_type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True

    # model and tokenizer
    if sc.init_from == "resume":
        ckpt_path = os.path.join(sc.out_dir, "ckpt.pt")
        if not os.path.exists(ckpt_path):
            fail(f"no checkpoint at {ckpt_path}: train first (python train.py --out_dir={sc.out_dir}) or fix --out_dir")
        try:
            model, ckpt = read_checkpoint(ckpt_path, device, f"or train again: python train.py --out_dir={sc.out_dir}")
        except ValueError as e:  # damaged, or a configuration this code refuses
            fail(e, code=2)
        meta = ckpt.get("meta")
        if meta is None:
            try:
                meta = load_meta(sc.data_dir, ckpt["dataset"])
            except (KeyError, FileNotFoundError) as e:
                fail(f"cannot find the tokenizer of this checkpoint: {e}")
        del ckpt
    else:
        model = load_pretrained(sc.init_from)
        meta = {"tokenizer": "gpt2"}
    model.to(device=device, dtype=param_dtype(dtype)).eval()
    encode, decode = get_tokenizer(meta)

    start = sc.start
    if start.startswith("FILE:"):
        try:
            with open(start[5:], encoding="utf-8") as f:
                start = f.read()
        except OSError as e:
            fail(f"cannot read the prompt file: {e}")
    try:
        ids = encode(start)
    except ValueError as e:
        fail(f"bad value for start: {e}", code=2)
    if not ids:
        fail("bad value '' for start: the prompt must hold at least one token", code=2)
    x = torch.tensor(ids, dtype=torch.long, device=device)[None, ...]

    # seed here, after building the model: a converted (compact) model draws a different number of random
    # numbers for its discarded init, and must still sample the same text as the original
    torch.manual_seed(sc.seed)
    with torch.no_grad(), autocast_context(dtype, device_type):
        for k in range(sc.num_samples):
            y = model.generate(x, sc.max_new_tokens, temperature=sc.temperature, top_k=sc.top_k)
            print(decode(y[0].tolist()))
            print("---------------", flush=True)


if __name__ == "__main__":
    main()
