"""
The CPU preset: every default of GPTConfig, OptimConfig and TrainConfig written out, to copy and edit.
`python train.py` and `python train.py config/cpu.py` are the same run (tests/test_train.py checks it):
a 6x384 char-level GPT on the Python reference docs, bfloat16 autocast where the CPU has it, a few
minutes on 2 cores.
"""

# model (model.GPTConfig)
n_layer = 6                     # number of transformer blocks L
n_head = 6                      # attention heads per block
n_embd = 384                    # width d of the residual stream
block_size = 256                # context length in tokens
vocab_size = 50257              # vocabulary size (set from the dataset for scratch runs; padded to a multiple of 64)
dropout = 0.0                   # dropout on embeddings, attention and residual branches
bias = True                     # biases in linear layers and norms (GPT-2 style)
norm = 'ln'                     # normalization type
norm_pos = 'pre'                # norm placement
mix_ratio = 0.25                # Mix-LN: the first floor(mix_ratio*n_layer) blocks are Post-LN
depth_scale = False             # LayerNorm Scaling: norm output feeding block l's sublayers times 1/sqrt(l)
zero_mean = False               # centre every write into the residual stream in forward (Pre-RMSNorm == Pre-LN)
pos_emb = 'learned'             # position encoding
rope_base = 10000.0             # RoPE base frequency
mlp = 'gelu'                    # feed-forward type
mlp_hidden = 0                  # MLP hidden size; 0 = 4*n_embd (gelu, relu2) or 8/3*n_embd rounded up to 64 (swiglu)
tie_embeddings = True           # LM head shares the token embedding matrix
qk_norm = False                 # OLMo 2 QK-norm: RMSNorm over the full projected q and k
emb_proj = False                # OSP embedding projection: d x d linear after the embedding and before the head
scaled_init = False             # GPT-2 init std 0.02/sqrt(2*n_layer) on output projections
init_std = 0.02                  # std of the normal init of every linear and embedding weight
norm_eps = 1e-05                # epsilon inside every norm

# optimizer (optim.OptimConfig)
optimizer = 'adamw'             # adamw: AdamW for all; muon/auon: Muon/AuON for 2-D hidden matrices, AdamW for the rest
learning_rate = 0.001           # AdamW peak learning rate (embeddings, head, gains, biases; everything with optimizer=adamw)
muon_lr = 0.02                  # Muon/AuON peak learning rate (with muon_scale=adamw set it to learning_rate)
weight_decay = 0.1              # decoupled weight decay for >=2-D AdamW tensors and for Muon/AuON matrices
beta1 = 0.9                     # AdamW beta1
beta2 = 0.95                    # AdamW beta2
grad_clip = 1.0                 # clip the global gradient norm to this value before the step (0 = off; applied by train.py)
muon_momentum = 0.95            # Muon/AuON Nesterov momentum after warm-up
muon_momentum_warmup = 300      # steps to warm Muon/AuON momentum linearly from 0.85 to muon_momentum (0 = no warm-up)
ns_steps = 5                    # Newton-Schulz iterations per Muon step
muon_scale = 'rect'             # Muon update scale: rect = max(1, rows/cols)^0.5 (lr ~0.02); adamw = 0.2*sqrt(max(rows, cols)) (matches AdamW's update RMS, so Muon can use AdamW's lr)

# training (train.TrainConfig)
out_dir = 'out'                 # folder for ckpt.pt and log.jsonl
dataset = 'python_docs'         # dataset name: data_dir/NAME (python_docs and shakespeare* are prepared on first use)
data_dir = 'data'               # parent folder of the datasets
init_from = 'scratch'           # scratch | resume (out_dir/ckpt.pt) | gpt2 | gpt2-medium | gpt2-large | gpt2-xl | a local Hugging Face GPT-2 folder
eval_interval = 50              # evaluate (and maybe checkpoint) every this many iterations, and at the end
eval_iters = 8                  # batches per split for each evaluation (fixed batches, shared by all ranks)
log_interval = 10               # console line and log.jsonl row every this many iterations
always_save_checkpoint = False  # checkpoint at every evaluation, not only when val loss improves
save_checkpoint = True          # write out_dir/ckpt.pt at all (False: throwaway runs, benchmarks)
analyze_interval = 0            # add analyze.quick_metrics to the eval rows every this many iterations (0 = off; a multiple of eval_interval)
wandb_log = False               # also log to Weights & Biases (pip install wandb)
wandb_project = 'nanonorm'      # wandb project
wandb_run_name = ''             # wandb run name ('' = out_dir)
batch_size = 8                  # sequences per micro-batch per rank
gradient_accumulation_steps = 1 # micro-batches per optimizer step, all ranks together (must be divisible by the number of ranks)
max_iters = 300                 # optimizer steps in total
lr_schedule = 'cosine'          # lr multiplier after warm-up
warmup_iters = 30               # linear lr warm-up steps
lr_decay_iters = None           # cosine: step at which lr reaches min_lr (None = max_iters)
min_lr = None                   # final lr of cosine/wsd as an absolute AdamW lr; Muon groups get the same ratio min_lr/learning_rate (None = learning_rate / 10)
decay_frac = 0.2                # wsd: fraction of max_iters at the end spent decaying linearly to min_lr
device = 'auto'                 # auto = cuda, else mps, else cpu
dtype = 'auto'                  # auto = bfloat16 autocast where supported (CUDA, CPUs with AVX512-BF16/AMX), else float32; float16 uses a GradScaler; float64 converts the model (exactness tests)
compile = None                  # torch.compile the model (None = True on CUDA, False elsewhere: on CPU compiling takes longer than a short run saves)
seed = 1337                     # seed for the init, dropout and the training batches
