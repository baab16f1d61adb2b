"""
LLaMA-250M of the Curse of Depth (Sun et al. 2025, Table 1) and Mix-LN (Li et al. 2025). Settings as their code
gives them: configs/llama_250m.json (24 layers x 768, 16 heads of 48, SwiGLU hidden 2560, RMSNorm eps 1e-6,
vocabulary 32,000, init std 0.02; the same file in github.com/lmsdss/LayerNorm-Scaling and
github.com/pixeli99/MixLN) and LayerNorm-Scaling's run_250m.sh (lr 1e-3, global batch 512 rows of 256 tokens
as micro-batch 128 on each of 4 GPUs, 40,000 steps, 4,000 warm-up, weight decay 0, no clipping, bf16);
torchrun_main.py's defaults: cosine to 0.1x of the peak, Adam. Mix-LN's scripts/run_250m.sh runs the same on
2 GPUs (128 x 2 accumulation each). Here the same 512 rows are 128 x 4 micro-batches (one GPU), or one per GPU
with torchrun on 4.
Parameters: 247,370,496 (LLaMA count of that config; tests/test_presets.py).
Where the code and the paper disagree: 40,000 x 512 x 256 = 5.24B row positions; the paper's ~3.9B tokens
count the documents without the padding of their one-document rows.
Published C4 val perplexity at 250M (Sun et al. 2025, Table 1): Post-LN 1409.79 (diverged), DeepNorm 22.77,
Mix-LN 21.39, Pre-LN 21.92, Pre-LN + LNS 20.35.
    python prepare.py c4 --tokens=5.25e9        # enough rows for this preset (the 1B preset's prep serves all)
    python train.py config/llama-250m.py        # one GPU
    torchrun --standalone --nproc_per_node=4 train.py config/llama-250m.py   # the authors' 4 GPUs
"""

out_dir = 'out-llama-250m'
dataset = 'c4'

# model: configs/llama_250m.json
n_layer = 24
n_head = 16
n_embd = 768
mlp_hidden = 2560
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

# optimizer: Adam, no weight decay, no clipping (run_250m.sh)
optimizer = 'adamw'
learning_rate = 1e-3
weight_decay = 0.0
beta1 = 0.9
beta2 = 0.999
grad_clip = 0.0

# 512 rows x 256 positions per step: micro-batch 128 (the script's per-GPU batch) x 4 micro-batches in all
batch_size = 128
gradient_accumulation_steps = 4
max_iters = 40000
lr_schedule = 'cosine'
warmup_iters = 4000
min_lr = 1e-4

# loop: evaluation every 1000 steps on ~10M validation positions (300 x 128 x 256 = 9.8M)
eval_interval = 1000
eval_iters = 300
log_interval = 50
dtype = 'bfloat16'
weight_dtype = 'bfloat16'   # their model.to(bfloat16): bf16 weights and Adam moments
compile = True
