"""
LLaMA-350M of the Curse of Depth (Sun et al. 2025, Table 1). Settings as their code gives them
(github.com/lmsdss/LayerNorm-Scaling): configs/llama_350m.json (24 layers x 1024, 16 heads, SwiGLU hidden
2736, RMSNorm eps 1e-6, vocabulary 32,000, init std 0.02) and run_350m.sh (lr 5e-4, global batch 512 rows of
256 tokens as micro-batch 128 on each of 4 GPUs, 60,000 steps, 6,000 warm-up, weight decay 0, no clipping,
bf16); torchrun_main.py's defaults: cosine to 0.1x of the peak, Adam. Mix-LN's repository has the same
config but no 350M script, and the Mix-LN paper no 350M row.
Parameters: 367,969,280 (LLaMA count of that config; tests/test_presets.py).
Where the code and the paper disagree: 60,000 x 512 x 256 = 7.86B row positions; the paper's ~6.0B tokens
count the documents without the padding of their one-document rows.
Published C4 val perplexity at 350M (Sun et al. 2025, Table 1): Post-LN 1368.33, DeepNorm 1362.59, Mix-LN
1363.21 (all three diverged), Pre-LN 19.58, Pre-LN + LNS 18.20.
    python prepare.py c4 --tokens=7.87e9        # enough rows for this preset (the 1B preset's prep serves all)
    python train.py config/llama-350m.py        # one GPU
    torchrun --standalone --nproc_per_node=4 train.py config/llama-350m.py   # the authors' 4 GPUs
"""

out_dir = 'out-llama-350m'
dataset = 'c4'

# model: configs/llama_350m.json
n_layer = 24
n_head = 16
n_embd = 1024
mlp_hidden = 2736
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

# optimizer: Adam, no weight decay, no clipping (run_350m.sh)
optimizer = 'adamw'
learning_rate = 5e-4
weight_decay = 0.0
beta1 = 0.9
beta2 = 0.999
grad_clip = 0.0

# 512 rows x 256 positions per step: micro-batch 128 (the script's per-GPU batch) x 4 micro-batches in all
batch_size = 128
gradient_accumulation_steps = 4
max_iters = 60000
lr_schedule = 'cosine'
warmup_iters = 6000
min_lr = 5e-5        # cosine to 0.1x of the peak

# loop: evaluation every 1000 steps on ~10M validation positions (300 x 128 x 256 = 9.8M)
eval_interval = 1000
eval_iters = 300
log_interval = 50
dtype = 'bfloat16'
weight_dtype = 'bfloat16'   # their model.to(bfloat16): bf16 weights and Adam moments
compile = True
