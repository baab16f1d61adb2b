"""
nanoGPT's GPT-2 small (124M) on FineWeb (llm.c's pre-tokenized fineweb10B shards), one GPU:
12 layers x 768 x 12 heads, block 1024, batch 16 x 32 accumulation steps = 524,288 tokens per step
(~0.5M, GPT-3 small's batch), AdamW lr 6e-4 (betas 0.9/0.95, wd 0.1, clip 1.0), cosine to 6e-5.
5000 steps = 2.6B tokens. On 8 GPUs: torchrun --standalone --nproc_per_node=8 train.py config/gpt2-124m.py
(gradient_accumulation_steps is global, so each GPU then runs 4 micro-batches).
    python prepare.py fineweb10B --shards 26      # ~2.6B tokens of llm.c shards
    python train.py config/gpt2-124m.py
"""

out_dir = 'out-gpt2-124m'
dataset = 'fineweb10B'

# model: GPT-2 small
n_layer = 12
n_head = 12
n_embd = 768
block_size = 1024
vocab_size = 50257   # GPT-2 BPE (padded to 50304 inside the model)
dropout = 0.0
bias = True
norm = 'ln'
norm_pos = 'pre'
tie_embeddings = True
scaled_init = True   # GPT-2: 0.02/sqrt(2L) on the residual output projections

# optimizer
optimizer = 'adamw'
learning_rate = 6e-4
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0

# ~0.5M tokens per step
batch_size = 16
gradient_accumulation_steps = 32
max_iters = 5000
lr_schedule = 'cosine'
warmup_iters = 700   # llm.c's GPT-2 124M warm-up
min_lr = 6e-5

# loop
eval_interval = 250
eval_iters = 100
log_interval = 10
always_save_checkpoint = False
dtype = 'bfloat16'
compile = True
