"""
nanoGPT's tiny-Shakespeare (char) target, val loss <= 1.81, in a fraction of nanoGPT's CPU time, using what
nanonorm teaches: Muon for the hidden matrices (optim.py), a narrower model that a CPU steps twice as fast
(6 x 256 instead of 6 x 384), a warm-up-stable-decay schedule, and fewer, cheaper evaluations.
    python train.py config/shakespeare_char_fast.py
Measured side by side with unmodified nanoGPT (README, "Time to nanoGPT's loss"): val 1.81 is reached at
iteration 300; nanoGPT's baby GPT needs its 600 iterations.
"""
out_dir = 'out-shakespeare-char-fast'
dataset = 'shakespeare_char'
n_layer = 6
n_head = 4
n_embd = 256
block_size = 256
dropout = 0.0
optimizer = 'muon'       # Muon for the 2-D hidden matrices, AdamW for embeddings, gains and biases
muon_lr = 0.03
muon_momentum_warmup = 50
learning_rate = 3e-3     # AdamW's part
weight_decay = 0.1
grad_clip = 1.0
batch_size = 16
max_iters = 300
lr_schedule = 'wsd'      # warm up, hold, then decay linearly over the last 30%
warmup_iters = 20
decay_frac = 0.3
min_lr = 3e-5
eval_interval = 100
eval_iters = 20
log_interval = 10
