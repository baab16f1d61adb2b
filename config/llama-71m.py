"""
LLaMA-71M, the smallest row of Mix-LN (Li et al., ICLR 2025, Table 1); the LNS paper (Sun et al. 2025) has no
71M row. Settings as the Mix-LN code gives them (github.com/pixeli99/MixLN): configs/llama_71m.json for the
model (12 layers x 512, 8 heads, SwiGLU hidden 1368, RMSNorm eps 1e-6, vocabulary 32,000, init std 0.02) and
scripts/run_71m.sh for the run (lr 1e-3, global batch 512 rows = micro-batch 256 on 1 GPU x 2 accumulation,
10,000 steps, 1,000 warm-up, weight decay 0, no clipping, bf16); torchrun_main.py's defaults: rows of 256
tokens, cosine to 0.1x of the peak, Adam. The LNS repository holds the same configs/llama_71m.json.
Parameters: 70,578,688 (LLaMA count of that config; tests/test_presets.py), so the name fits.
Where the code and the papers disagree: the Mix-LN README's 71M Pre-LN example passes --grad_clipping 1.0,
its scripts/run_71m.sh (and its Mix-LN example) 0.0; we follow the script. 10,000 x 512 x 256 = 1.31B row
positions; the paper's ~1.1B counts tokens without the padding of one-document rows.
Published C4 val perplexity at 71M (Mix-LN Table 1, as RESEARCH.md transcribes it): Post-LN 35.18,
DeepNorm 34.87, Pre-LN 34.77, Mix-LN 33.12; no LNS number is published at this size.
    python prepare.py c4 --tokens=1.32e9        # enough rows for this preset (the 1B preset's prep serves all)
    python train.py config/llama-71m.py         # Pre-LN; --norm_pos=mix for Mix-LN, --depth_scale=True for LNS
"""

out_dir = 'out-llama-71m'
dataset = 'c4'

# model: configs/llama_71m.json
n_layer = 12
n_head = 8
n_embd = 512
mlp_hidden = 1368
block_size = 256
dropout = 0.0
bias = False
norm = 'rms'
norm_eps = 1e-6
norm_pos = 'pre'
mlp = 'swiglu'
pos_emb = 'rope'
tie_embeddings = False
scaled_init = False

# optimizer: Adam, no weight decay, no clipping (scripts/run_71m.sh)
optimizer = 'adamw'
learning_rate = 1e-3
weight_decay = 0.0
beta1 = 0.9
beta2 = 0.999
grad_clip = 0.0

# 512 rows x 256 positions per step: micro-batch 256 (the script's one GPU) x 2
batch_size = 256
gradient_accumulation_steps = 2
max_iters = 10000
lr_schedule = 'cosine'
warmup_iters = 1000
min_lr = 1e-4

# loop: evaluation every 1000 steps on ~10M validation positions (150 x 256 x 256 = 9.8M), as the papers
eval_interval = 1000
eval_iters = 150
log_interval = 50
dtype = 'bfloat16'
weight_dtype = 'bfloat16'   # their model.to(bfloat16): bf16 weights and Adam moments
compile = True
