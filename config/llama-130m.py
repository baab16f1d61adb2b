"""
The LLaMA-130M setup of LayerNorm Scaling ("The Curse of Depth", Sun et al. 2025) and Mix-LN (Li et al.,
ICLR 2025): RMSNorm (eps 1e-6), SwiGLU (hidden 2048), RoPE, no biases, untied head, init std 0.02,
12 layers x 768 x 12 heads, sequence length 256, global batch 512 sequences (64 x 8 accumulation steps),
Adam lr 1e-3 with 2000 warm-up steps and cosine decay to 0.1x over 20000 steps, weight decay 0,
no gradient clipping, weights and Adam state in bf16 (their model.to(bfloat16)), on C4 (en) with the T5
tokenizer (vocabulary 32,000), as the papers' code (github.com/lmsdss/LayerNorm-Scaling run_130m.sh).
How our baseline rows differ from that code, row by row: README, "The papers' code, row by row".
Published C4 val perplexity at 130M (Sun et al. 2025, Table 1): Post-LN 26.95, DeepNorm 27.17,
Mix-LN 26.07, Pre-LN 26.73, Pre-LN + LNS 25.76.
    pip install datasets transformers
    python prepare.py c4                       # 10,240,000 rows of 256 (one C4 document each, as the papers;
                                               # 20000 x 512) + validation rows holding 10M non-pad tokens
    python train.py config/llama-130m.py                       # Pre-LN baseline
    python train.py config/llama-130m.py --depth_scale=True    # + LayerNorm Scaling
    python train.py config/llama-130m.py --norm_pos=mix        # Mix-LN
Alternative data (not the papers'): python prepare.py fineweb_edu --shards 27, then --dataset=fineweb_edu
(GPT-2 BPE; the model's vocabulary follows the dataset's meta.json).
"""

out_dir = 'out-llama-130m'
dataset = 'c4'                # data/c4: allenai/c4 en, T5 tokenizer (prepare.py c4)

# model: LLaMA style
n_layer = 12
n_head = 12
n_embd = 768
block_size = 256
dropout = 0.0
bias = False
norm = 'rms'
norm_eps = 1e-6
norm_pos = 'pre'
mlp = 'swiglu'
mlp_hidden = 2048
pos_emb = 'rope'
tie_embeddings = False
scaled_init = False  # LNS paper: plain 0.02 init (LNS + scaled init was slightly worse)

# optimizer: Adam, no weight decay, no clipping (PyTorch's default betas, as the papers' code)
optimizer = 'adamw'
learning_rate = 1e-3
weight_decay = 0.0
beta1 = 0.9
beta2 = 0.999
grad_clip = 0.0

# 512 rows x 256 positions = 131,072 per step; 20000 steps = 2.6B positions (the papers count ~2.2B non-pad tokens)
batch_size = 64
gradient_accumulation_steps = 8
max_iters = 20000
lr_schedule = 'cosine'
warmup_iters = 2000
min_lr = 1e-4        # cosine to 0.1x of the peak

# loop
eval_interval = 1000
eval_iters = 600    # x 64 x 256 = 9.8M token positions: the papers evaluate on 10M C4 validation tokens
log_interval = 50
dtype = 'bfloat16'
weight_dtype = 'bfloat16'   # as their code: bf16 weights and Adam moments (float32 = mixed precision instead)
compile = True
