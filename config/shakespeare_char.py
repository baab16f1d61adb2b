"""
nanoGPT's "baby GPT" on tiny Shakespeare, characters, sized for a CPU: 6 layers x 384 wide x 6 heads,
block 256, batch 16, AdamW lr 1e-3 with cosine decay to 1e-4 over 600 iterations.
Target: val loss ~1.81 (nanoGPT's full GPU run, batch 64 x 5000 iterations with dropout 0.2, reaches ~1.47).
    python train.py config/shakespeare_char.py
    python sample.py --out_dir=out-shakespeare-char --start="ROMEO:"
The data is downloaded once (checksummed) on first use; offline, `python prepare.py shakespeare_char --input input.txt`.
"""

out_dir = 'out-shakespeare-char'
dataset = 'shakespeare_char'

# model: the baby GPT
n_layer = 6
n_head = 6
n_embd = 384
block_size = 256
dropout = 0.0        # nanoGPT uses 0.2 for 5000 iterations; 600 iterations do not overfit

# optimizer
learning_rate = 1e-3
beta2 = 0.99         # nanoGPT: a little larger because there are few tokens per iteration
weight_decay = 0.1
grad_clip = 1.0

# schedule and loop
batch_size = 16
gradient_accumulation_steps = 1
max_iters = 600
lr_schedule = 'cosine'
warmup_iters = 60
min_lr = 1e-4
eval_interval = 100
eval_iters = 20
log_interval = 10
