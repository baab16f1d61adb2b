"""The papers' model sizes as presets (config/llama-*.py): each builds the model of the papers' own config and
trains with their run script's settings. The reference values below are read off the papers' code
(github.com/lmsdss/LayerNorm-Scaling and github.com/pixeli99/MixLN: configs/llama_*.json, run_*.sh); the
parameter count is Hugging Face LLaMA's for that config, computed here, against our model built on the meta
device (no memory)."""
import os

import pytest
import torch

import train
from model import GPT, GPTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T5_VOCAB = 32000

# configs/llama_<size>.json: num_hidden_layers, hidden_size, num_attention_heads, intermediate_size;
# run script: lr, per-GPU batch, GPUs x accumulation (total 512 rows), num_training_steps, warmup_steps
PAPERS = {
    "71m": dict(layers=12, d=512, heads=8, ffn=1368, lr=1e-3, steps=10000, warmup=1000, micro=256,
                script="MixLN scripts/run_71m.sh"),
    "130m": dict(layers=12, d=768, heads=12, ffn=2048, lr=1e-3, steps=20000, warmup=2000, micro=64,
                 script="LayerNorm-Scaling run_130m.sh"),
    "250m": dict(layers=24, d=768, heads=16, ffn=2560, lr=1e-3, steps=40000, warmup=4000, micro=128,
                 script="LayerNorm-Scaling run_250m.sh"),
    "350m": dict(layers=24, d=1024, heads=16, ffn=2736, lr=5e-4, steps=60000, warmup=6000, micro=128,
                 script="LayerNorm-Scaling run_350m.sh"),
    "1b": dict(layers=24, d=2048, heads=32, ffn=5461, lr=5e-4, steps=100000, warmup=1000, micro=32,
               script="LayerNorm-Scaling run_1b.sh"),
}
# what the papers call each size, and the parameter count their config holds (in millions, rounded)
NAMED = {"71m": 71, "130m": 134, "250m": 247, "350m": 368, "1b": 1339}


def llama_params(layers, d, ffn, vocab=T5_VOCAB):
    """Hugging Face LlamaForCausalLM: embedding + untied head, per layer q, k, v, o (d x d), gate, up, down
    (d x ffn) and two RMSNorm gains, plus the final norm; no biases."""
    return 2 * vocab * d + layers * (4 * d * d + 3 * d * ffn + 2 * d) + d


def preset(size):
    cfg = train.parse_config([os.path.join(ROOT, "config", f"llama-{size}.py")], GPTConfig, train.OptimConfig,
                             train.TrainConfig)
    cfg["vocab_size"] = T5_VOCAB
    return cfg


@pytest.mark.parametrize("size", sorted(PAPERS))
def test_preset_builds_the_papers_model_and_counts_its_parameters(size):
    p, cfg = PAPERS[size], preset(size)
    with torch.device("meta"):  # shapes only: the 1.3B model allocates nothing
        model = GPT(train.split_config(cfg, GPTConfig))
    c = model.config
    assert (c.n_layer, c.n_embd, c.n_head, c.mlp_hidden) == (p["layers"], p["d"], p["heads"], p["ffn"])
    assert (c.norm, c.norm_eps, c.mlp, c.pos_emb, c.bias, c.tie_embeddings) == ("rms", 1e-6, "swiglu", "rope", False,
                                                                                False)
    n = model.num_params()
    assert n == llama_params(p["layers"], p["d"], p["ffn"])
    assert round(n / 1e6) == NAMED[size]


def test_the_1b_preset_says_it_holds_1_34b_parameters():
    with open(os.path.join(ROOT, "config", "llama-1b.py")) as f:
        text = f.read()
    assert "1,339,082,752" in text and "not 1B" in text


@pytest.mark.parametrize("size", sorted(PAPERS))
def test_preset_trains_with_the_papers_run_script(size):
    p, cfg = PAPERS[size], preset(size)
    tc, oc = train.split_config(cfg, train.TrainConfig), train.split_config(cfg, train.OptimConfig)
    assert tc.batch_size == p["micro"] and tc.batch_size * tc.gradient_accumulation_steps == 512
    assert cfg["block_size"] == 256 and tc.dataset == "c4"
    assert (tc.max_iters, tc.warmup_iters, tc.lr_schedule) == (p["steps"], p["warmup"], "cosine")
    assert oc.learning_rate == p["lr"] and tc.min_lr == pytest.approx(0.1 * p["lr"])
    assert (oc.optimizer, oc.weight_decay, oc.grad_clip) == ("adamw", 0.0, 0.0)
    assert (tc.dtype, tc.weight_dtype) == ("bfloat16", "bfloat16")
    # the papers evaluate on 10M validation tokens: ours within 5% of that
    assert tc.eval_iters * tc.batch_size * 256 == pytest.approx(1e7, rel=0.05)
    with open(os.path.join(ROOT, "config", f"llama-{size}.py")) as f:
        doc = f.read().split('"""')[1]
    assert p["script"].split()[-1] in doc  # the file each setting comes from is named
