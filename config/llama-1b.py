"""
LLaMA-"1B" of the Curse of Depth (Sun et al. 2025, Table 1) and of Mix-LN's code (its scripts/run_1b.sh).
It holds 1,339,082,752 parameters (1.34B: LLaMA count of the config below, tests/test_presets.py), not 1B:
the name is the papers', the count is the config's. Settings as their code gives them:
configs/llama_1b.json (24 layers x 2048, 32 heads, SwiGLU hidden 5461, RMSNorm eps 1e-6, vocabulary 32,000,
init std 0.02; the same file in github.com/lmsdss/LayerNorm-Scaling and github.com/pixeli99/MixLN) and
LayerNorm-Scaling's run_1b.sh (lr 5e-4, global batch 512 rows of 256 tokens as micro-batch 32 on each of 8 GPUs
x 2 accumulation, 100,000 steps, 1,000 warm-up, weight decay 0, no clipping, bf16); torchrun_main.py's
defaults: cosine to 0.1x of the peak, Adam. Mix-LN's scripts/run_1b.sh runs the same on 4 GPUs (32 x 4 each).
Here the 512 rows are 32 x 16 micro-batches (one GPU), or 16 / k per GPU with torchrun on k.
Where the code and the paper disagree: 100,000 x 512 x 256 = 13.1B row positions; the paper's ~8.9B tokens
count the documents without the padding of their one-document rows. The warm-up is 1% of the steps here,
10% at every other size: that is what run_1b.sh (both repositories) passes.
Published C4 val perplexity at 1B (Sun et al. 2025, Table 1): Post-LN 1390.75, DeepNorm 1409.08, Mix-LN
1414.78 (all three diverged), Pre-LN 17.02, Pre-LN + LNS 15.71.
    python prepare.py c4 --tokens=1.32e10       # 51.2M rows (~26 GB of uint16): enough for every preset
    python train.py config/llama-1b.py          # one GPU
    torchrun --standalone --nproc_per_node=8 train.py config/llama-1b.py   # the authors' 8 GPUs
"""

out_dir = 'out-llama-1b'
dataset = 'c4'

# model: configs/llama_1b.json
n_layer = 24
n_head = 32
n_embd = 2048
mlp_hidden = 5461
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

# optimizer: Adam, no weight decay, no clipping (run_1b.sh)
optimizer = 'adamw'
learning_rate = 5e-4
weight_decay = 0.0
beta1 = 0.9
beta2 = 0.999
grad_clip = 0.0

# 512 rows x 256 positions per step: micro-batch 32 (the script's per-GPU batch) x 16 micro-batches in all
batch_size = 32
gradient_accumulation_steps = 16
max_iters = 100000
lr_schedule = 'cosine'
warmup_iters = 1000
min_lr = 5e-5        # cosine to 0.1x of the peak

# loop: evaluation every 1000 steps on ~10M validation positions (1200 x 32 x 256 = 9.8M)
eval_interval = 1000
eval_iters = 1200
log_interval = 50
dtype = 'bfloat16'
weight_dtype = 'bfloat16'   # their model.to(bfloat16): bf16 weights and Adam moments
compile = True
