"""Presets for the five seed studies (shared/seeds/*.md): LLmini's A/B/C scales, Mini GPT's
three sizes, the step-by-step ladder, LLM-Lite and Pico-LLM.

Each preset sets what its write-up states; a field the write-up leaves unstated keeps lmlab's
default unless a comment says where the value comes from. Vocabularies are set explicitly
(`model.vocab_size`) and match the tokenizer: `gpt2` and `cl100k_base` load by name through
tiktoken when online, or from a local file with `--tokenizer.path=...`; `bpe` is trained on the
training split. Each family reads its seed's corpus from the data presets (presets_data.py):
LLmini the `llmini_mix` mixture, Mini GPT `tinystories_bpe3000`'s TinyStories, LLM-Lite
`wikitext2_bpe`'s WikiText-2, Pico-LLM `tinystories_counting`'s mix, the ladder `shakespeare_char`'s
text; relative paths resolve under data.root / $LMLAB_DATA, and `--data PATH` trains on a file.

Parameter counts (see tests/test_presets_seeds.py) are `model.num_params()`: every trainable
parameter, tied weights once, sinusoidal tables (buffers) not at all.
"""

from __future__ import annotations

from lmlab.config import RunConfig
from lmlab.presets import get_preset, preset
from lmlab.presets_data import CL100K_FILE, GPT2_FILE


def corpus(preset_name: str) -> dict:
    """The data section of a data preset, to train a seed architecture on its seed's corpus."""
    return get_preset(preset_name).to_dict()["data"]

GPT2_VOCAB = 50257  # GPT-2 BPE / tiktoken "gpt2": LLmini, Pico-LLM
CL100K_VOCAB = 100277  # tiktoken cl100k_base (100,256 ranks + special tokens): the ladder from stage 07
MINIGPT_VOCAB = 3000  # Mini GPT's own BPE


# --- LLmini (llmini.md): the A/B/C scale study ----------------------------------------------

def llmini(name: str, d_model: int, n_head: int, n_layer: int) -> RunConfig:
    """LLmini at one scale: pre-LN GPT, d_head 64, FFN 4x GELU, learned positions, untied head.

    Dropout: the training table says "attention 0.1" and "FFN + residual 0.3", so 0.1 drops
    attention weights and 0.3 drops each sublayer's output before the residual add (both
    resid sites, the FFN's included); nothing inside the FFN's hidden layer. (The architecture
    text's "0.1 on attention outputs" could instead mean the attention sublayer's residual
    dropout alone: `--model.attn_dropout=0 --model.resid_dropout=0.1 --model.mlp_resid_dropout=0.3`.)
    Steps: 3 epochs over the 13.27M training tokens (95% of 13.97M), packed into windows of
    32 x 2 x 256 = 16,384 tokens per step: 810 steps per epoch. The seed pads instead (34%
    token utilization): 2,386 optimizer steps per epoch there.
    """
    return RunConfig(name=name).replace(
        data=corpus("llmini_mix"),
        tokenizer={"kind": "gpt2", "path": GPT2_FILE},
        model={"n_layer": n_layer, "n_head": n_head, "d_model": d_model, "mlp_mult": 4.0, "mlp": "gelu",
               "context_len": 256, "vocab_size": GPT2_VOCAB, "position": "learned", "tie_embeddings": False,
               "dropout": 0.0, "attn_dropout": 0.1, "resid_dropout": 0.3, "mlp_dropout": 0.0},
        train={"max_steps": 2430, "batch_size": 32, "grad_accum": 2, "lr": 3e-4, "schedule": "cosine",
               "warmup_steps": 243, "min_lr_ratio": 0.0, "weight_decay": 0.05, "beta1": 0.9, "beta2": 0.999,
               "eps": 1e-8, "grad_clip": 1.0, "seed": 42},  # precision auto: fp16 AMP on CUDA in the seed
        eval={"every": 810},  # once per seed epoch
    )


@preset
def llmini_a() -> RunConfig:
    """LLmini A: 10 layers x 384 (6 heads of 64), GPT-2 vocab, context 256, untied; 56.44M params."""
    return llmini("llmini_a", 384, 6, 10)


@preset
def llmini_b() -> RunConfig:
    """LLmini B: 9 layers x 320 (5 heads of 64), GPT-2 vocab, context 256, untied; 43.34M params."""
    return llmini("llmini_b", 320, 5, 9)


@preset
def llmini_c() -> RunConfig:
    """LLmini C: 8 layers x 256 (4 heads of 64), GPT-2 vocab, context 256, untied; 32.12M params."""
    return llmini("llmini_c", 256, 4, 8)


# --- Mini GPT (mini-gpt.md): three sizes on TinyStories ---------------------------------------

def minigpt(name: str, d_model: int) -> RunConfig:
    """Mini GPT: 5 pre-LN blocks, 8 heads, FFN 2x GELU, sinusoidal positions, tied head, V=3000.

    The seed fixes d_model 256 / d_ff 512 for medium and states 1.05M / 3.40M / 7.07M
    parameters. The sizes that reproduce all three are d_model 128 / 256 / 384 with d_ff =
    2 d_model and 5 blocks, counted as every parameter once: biases in every Linear and
    LayerNorm, the tied head once (no head bias), no position parameters (exactly 1,046,656 /
    3,404,032 / 7,072,128). Without biases they would be 1.04M / 3.39M / 7.05M; untied, 384k /
    768k / 1.15M more (medium's 768k is the saving the seed quotes). Medium's attention
    sublayer, 263,168 with biases, is the diagram's "263k".
    Heads: the seed's 8 (d_k 16 / 32 / 48); 4 / 8 / 12 heads of 32 give the same counts.
    Training: 104M tokens once, windows of 256, batch 64 (16,384 tokens a step: 6,348 steps);
    the seed states neither batch nor learning rate (lmlab's default lr).
    """
    return RunConfig(name=name).replace(
        data=corpus("tinystories_bpe3000"),  # the 2 MiB TinyStories sample stands in for 104M tokens
        tokenizer={"kind": "bpe", "vocab_size": MINIGPT_VOCAB},
        model={"n_layer": 5, "n_head": 8, "d_model": d_model, "d_mlp": 2 * d_model, "mlp": "gelu",
               "context_len": 256, "vocab_size": MINIGPT_VOCAB, "position": "sinusoidal",
               "tie_embeddings": True, "norm": "layernorm", "norm_position": "pre", "bias": True},
        train={"max_steps": 6348, "batch_size": 64, "schedule": "cosine", "warmup_steps": 500,
               "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.999, "grad_clip": 1.0},
        eval={"every": 500},
    )


@preset
def minigpt_small() -> RunConfig:
    """Mini GPT small: 5 x 128, 8 heads, d_ff 256, sinusoidal, tied, V=3000; 1.05M params (seed: 1.05M)."""
    return minigpt("minigpt_small", 128)


@preset
def minigpt_medium() -> RunConfig:
    """Mini GPT medium: 5 x 256, 8 heads of 32, d_ff 512, sinusoidal, tied, V=3000; 3.40M params (seed: 3.40M)."""
    return minigpt("minigpt_medium", 256)


@preset
def minigpt_large() -> RunConfig:
    """Mini GPT large: 5 x 384, 8 heads, d_ff 768, sinusoidal, tied, V=3000; 7.07M params (seed: 7.07M)."""
    return minigpt("minigpt_large", 384)


# --- The step-by-step ladder (step-by-step-mini-gpt.md) ---------------------------------------
# Presets follow the seed's stage numbers: ladder_NN is the configuration stage NN ends with and
# the next stage builds on; ladder_NN_x are that stage's other rows. Stages 02-05 follow Karpathy's
# "Let's build GPT" step for step (averaging, one head, four heads, FFN, blocks, residuals,
# projections, LayerNorm, dropout), so the sizes the seed leaves out are that lecture's: width 32,
# context 8, batch 32, lr 1e-3; stage 06 its scaled model (6 x 384, context 256, dropout 0.2,
# lr 3e-4). Until stage 09 the seed uses a fixed learning rate and PyTorch's default init (stage
# 09 introduces std-0.02 init and warmup + cosine), so earlier stages set schedule=constant and
# init=torch. Stage 01 (bigram, MLP, WaveNet on Indian names) precedes the seed's results table;
# shared/data/names/names.txt is makemore's English names.

def ladder_base(name: str) -> RunConfig:
    """The char-level trunk the stages edit: one bare layer, nothing switched on yet."""
    return RunConfig(name=name).replace(
        tokenizer={"kind": "char"},  # the seed: characters, "vocab size ~128"
        model={"n_layer": 1, "n_head": 1, "d_model": 32, "context_len": 8, "mlp": "none", "norm": "none",
               "residual": False, "attn_out_proj": False, "tie_embeddings": False, "init": "torch",
               "dropout": 0.0},
        train={"max_steps": 5000, "batch_size": 32, "lr": 1e-3, "schedule": "constant", "warmup_steps": 0},
        eval={"every": 500},
    )


@preset
def ladder_01() -> RunConfig:
    """Ladder 01 (best of stage 01): char MLP, 8-char context, 10-d embeddings, 3 layers; 62.1k params at V=27."""
    return ladder_base("ladder_01").replace(
        model={"arch": "mlp", "ngram": 8, "d_embed": 10, "n_layer": 2, "d_mlp": 200, "activation": "tanh",
               "context_len": 32})


@preset
def ladder_01_bigram() -> RunConfig:
    """Ladder 01: counted char bigram (a Markov chain, add-1 smoothing); 0 trainable params."""
    return ladder_base("ladder_01_bigram").replace(model={"arch": "count_bigram", "context_len": 32})


@preset
def ladder_01_wavenet() -> RunConfig:
    """Ladder 01: char WaveNet, 3 levels over 8 chars, 24-d embeddings, 128 wide; 77.0k params at V=27."""
    return ladder_base("ladder_01_wavenet").replace(
        model={"arch": "wavenet", "n_layer": 3, "d_embed": 24, "d_model": 128, "norm": "layernorm",
               "activation": "tanh", "context_len": 32})


@preset
def ladder_02_bigram() -> RunConfig:
    """Ladder 02_02_0: neural char bigram, a learned V x V table (context 1); 4.2k params at V=65."""
    return ladder_base("ladder_02_bigram").replace(model={"arch": "bigram"})


@preset
def ladder_02_average() -> RunConfig:
    """Ladder 02_02_1: bag of words, the running mean of past embeddings, no positions; 4.2k params at V=65."""
    return ladder_base("ladder_02_average").replace(model={"arch": "bow", "position": "none"})


@preset
def ladder_02_attention() -> RunConfig:
    """Ladder 02_02_2: one attention head of 32, no residual, norm or FFN, learned positions; 7.6k params at V=65."""
    return ladder_base("ladder_02_attention")


@preset
def ladder_02() -> RunConfig:
    """Ladder 02 (02_02_3): four attention heads of 8 instead of one head of 32; 7.6k params at V=65."""
    return ladder_base("ladder_02").replace(model={"n_head": 4})


@preset
def ladder_03() -> RunConfig:
    """Ladder 03 (03_01_1): 4-head attention + a one-Linear ReLU FFN, one block, no residual; 8.6k params at V=65."""
    # The lecture's first FFN is one Linear and a ReLU (model.mlp_proj=false); stage 05_02 adds the projection.
    return ladder_02().replace(name="ladder_03", model={"mlp": "relu", "mlp_mult": 1.0, "mlp_proj": False})


@preset
def ladder_03_gelu() -> RunConfig:
    """Ladder 03_01_2: the same block with a GELU FFN; 8.6k params at V=65."""
    return ladder_03().replace(name="ladder_03_gelu", model={"mlp": "gelu"})


@preset
def ladder_04() -> RunConfig:
    """Ladder 04: four stacked MHA + FFN blocks, still no residuals or norms; 21.3k params at V=65."""
    return ladder_03().replace(name="ladder_04", model={"n_layer": 4})


@preset
def ladder_05_residuals() -> RunConfig:
    """Ladder 05_01: the four blocks with residual connections; 21.3k params at V=65."""
    return ladder_04().replace(name="ladder_05_residuals", model={"residual": True})


@preset
def ladder_05_projections() -> RunConfig:
    """Ladder 05_02: + attention output projections and a 4x FFN (fc -> act -> proj); 54.7k params at V=65."""
    # "Projection layers" as in the lecture: attention's output projection, and the FFN widened
    # to 4x so that its second Linear projects back into the residual stream.
    return ladder_05_residuals().replace(name="ladder_05_projections",
                                         model={"attn_out_proj": True, "mlp_mult": 4.0, "mlp_proj": True})


@preset
def ladder_05_postln() -> RunConfig:
    """Ladder 05_03_1: + post-LayerNorm, norm(x + f(x)) (the original Transformer); 55.2k params at V=65."""
    return ladder_05_projections().replace(name="ladder_05_postln",
                                           model={"norm": "layernorm", "norm_position": "post"})


@preset
def ladder_05_preln() -> RunConfig:
    """Ladder 05_03_2: + pre-LayerNorm, x + f(norm(x)), and a final norm (GPT-2); 55.3k params at V=65."""
    return ladder_05_projections().replace(name="ladder_05_preln",
                                           model={"norm": "layernorm", "norm_position": "pre"})


@preset
def ladder_05() -> RunConfig:
    """Ladder 05 (05_04): the pre-LN blocks with dropout 0.2; 55.3k params at V=65."""
    return ladder_05_preln().replace(name="ladder_05", model={"dropout": 0.2})


@preset
def ladder_06() -> RunConfig:
    """Ladder 06: the stage 05 model at 6 x 384, 6 heads, context 256, batch 64, lr 3e-4; 10.80M params at V=65."""
    # The seed trains small..xtraLarge here without giving sizes or results; these are the
    # lecture's. Its 07_00_0 "char-level baseline" is this model.
    return ladder_05().replace(
        name="ladder_06", model={"n_layer": 6, "n_head": 6, "d_model": 384, "context_len": 256},
        train={"batch_size": 64, "lr": 3e-4})


@preset
def ladder_07() -> RunConfig:
    """Ladder 07 (07_00_2 = 07_02_0): the stage 06 model on the cl100k BPE vocabulary (100,277); 87.76M params."""
    return ladder_06().replace(
        name="ladder_07",
        tokenizer={"kind": "cl100k_base", "path": CL100K_FILE},
        model={"vocab_size": CL100K_VOCAB})


@preset
def ladder_07_mqa() -> RunConfig:
    """Ladder 07_02_2: multi-query attention (6 query heads share one key/value head); 86.28M params."""
    return ladder_07().replace(name="ladder_07_mqa", model={"n_kv_head": 1})


@preset
def ladder_07_gqa() -> RunConfig:
    """Ladder 07_02_3: grouped-query attention (6 query heads, 2 key/value heads); 86.58M params."""
    return ladder_07().replace(name="ladder_07_gqa", model={"n_kv_head": 2})


@preset
def ladder_08() -> RunConfig:
    """Ladder 08 (08_03 winner): the GQA model with a SwiGLU FFN (4x); 90.12M params."""
    return ladder_07_gqa().replace(name="ladder_08", model={"mlp": "swiglu"})


@preset
def ladder_08_ffn2x() -> RunConfig:
    """Ladder 08_01_03: the GQA model with a 2x ReLU FFN instead of 4x; 83.03M params."""
    return ladder_07_gqa().replace(name="ladder_08_ffn2x", model={"mlp_mult": 2.0})


@preset
def ladder_08_rmsnorm() -> RunConfig:
    """Ladder 08_02: the GQA model with RMSNorm instead of LayerNorm; 86.57M params."""
    return ladder_07_gqa().replace(name="ladder_08_rmsnorm", model={"norm": "rmsnorm"})


@preset
def ladder_08_flash() -> RunConfig:
    """Ladder 08_04_02: the GQA model with fused (flash) attention on every device; 86.58M params."""
    return ladder_07_gqa().replace(name="ladder_08_flash", model={"attention": "sdpa"})


@preset
def ladder_09() -> RunConfig:
    """Ladder 09 (mytNano): pre-RMSNorm, GQA, SwiGLU 2x, std-0.02 init, warmup + cosine; 84.80M params."""
    # Flash attention is model.attention=auto: fused kernels on GPUs, the faster manual path on CPU.
    return ladder_07_gqa().replace(
        name="ladder_09", model={"norm": "rmsnorm", "mlp": "swiglu", "mlp_mult": 2.0, "init": "gpt2"},
        train={"schedule": "cosine", "warmup_steps": 100})


# --- LLM-Lite (llm-lite.md) ---------------------------------------------------------------------

# The seed's grid (10 epochs per point, early stopping; batch 64, then 128 with d_model fixed at 128).
LLM_LITE_GRID = {"train.lr": [1e-3, 5e-4], "model.n_layer": [2, 4, 6], "model.n_head": [2, 4],
                 "model.d_model": [64, 128, 256]}


@preset
def llm_lite() -> RunConfig:
    """LLM-Lite's best grid point: 6 layers x 128, 4 heads, lr 1e-3, batch 128, 50k steps; 1.73M params at V=4096."""
    # The seed states no context length, BPE vocabulary size or dropout (lmlab's defaults: 128,
    # the tokenizer's size, 0), nor the early-stopping patience (3 evaluations here). Its
    # schedule: linear warmup to 1e-3 over 8,000 steps, cosine to zero at 50,000 (Fig. 8);
    # AMP, gradient accumulation of unstated length. Corpus: WikiText-2 raw, split 80/10/10
    # (shared/data/wikitext-2 lacks the train split). Its perplexity of 1.17 is not credible
    # (see shared/seeds/README.md).
    return RunConfig(name="llm_lite").replace(
        data=corpus("wikitext2_bpe"),
        tokenizer={"kind": "bpe", "vocab_size": 4096},  # trained on the corpus; the seed states no size
        model={"n_layer": 6, "n_head": 4, "d_model": 128},
        train={"max_steps": 50000, "batch_size": 128, "lr": 1e-3, "schedule": "cosine", "warmup_steps": 8000,
               "min_lr_ratio": 0.0, "patience": 3},
        eval={"every": 2500},  # 20 evaluations, one per retraining epoch
    )


# --- Pico-LLM (pico-llm.md) ---------------------------------------------------------------------
# GPT-2 tokens (tiktoken "gpt2", as in the course's starter code), batch 16, plain Adam at a fixed
# learning rate (no weight decay, warmup or clipping), epochs x max_steps_per_epoch steps, one
# evaluation per epoch. Corpus: `tinystories_counting`, TinyStories mixed with synthetic counting
# sequences like the seed's 3seqs.txt. The starter pads stories to the longest in the batch and
# counts the padding in the loss; lmlab packs instead (data.layout = "pad" masks the padding).

def pico(name: str, lr: float, epochs: int, steps_per_epoch: int, **model) -> RunConfig:
    return RunConfig(name=name).replace(
        data=corpus("tinystories_counting"),
        tokenizer={"kind": "gpt2", "path": GPT2_FILE},
        model={"vocab_size": GPT2_VOCAB, **model},
        train={"max_steps": epochs * steps_per_epoch, "batch_size": 16, "lr": lr, "schedule": "constant",
               "warmup_steps": 0, "weight_decay": 0.0, "beta2": 0.999, "grad_clip": 0.0},
        eval={"every": steps_per_epoch},
    )


def pico_kgram_sanity(name: str, input_kind: str) -> RunConfig:
    # Question 2: k = 3, embed_size 128, one inner layer, block 32, lr 1e-3, 3 epochs x 10 steps.
    # The starter's blocks are Linear -> SiLU.
    return pico(name, 1e-3, 3, 10, arch="mlp", ngram=3, input=input_kind, n_layer=1, d_model=128, d_mlp=128,
                activation="silu", context_len=32, init="torch")


@preset
def pico_kgram_onehot() -> RunConfig:
    """Pico-LLM k-gram MLP on one-hot inputs: 3 x 50257 one-hot -> 128 -> GPT-2 vocab; 25.78M params."""
    return pico_kgram_sanity("pico_kgram_onehot", "onehot")


@preset
def pico_kgram_embedding() -> RunConfig:
    """Pico-LLM k-gram MLP on embeddings: 3 x 128-d embeddings -> 128 -> GPT-2 vocab; 12.97M params."""
    return pico_kgram_sanity("pico_kgram_embedding", "embedding")


@preset
def pico_kgram() -> RunConfig:
    """Pico-LLM k-gram MLP (k=3) for TinyStories: 512-d embeddings, 512 wide, context 512; 52.30M params."""
    return pico("pico_kgram", 3e-4, 10, 750, arch="mlp", ngram=3, n_layer=1, d_model=512, d_mlp=512,
                activation="silu", context_len=512, init="torch")


@preset
def pico_lstm() -> RunConfig:
    """Pico-LLM LSTM sanity run: one layer, 128-d embeddings and state, context 32, 30 steps; 13.00M params."""
    return pico("pico_lstm", 1e-3, 3, 10, arch="lstm", n_layer=1, d_model=128, context_len=32,
                init="torch", tie_embeddings=False)


@preset
def pico_transformer() -> RunConfig:
    """Pico-LLM transformer: 6 pre-RMSNorm blocks x 512, 8 heads, learned positions, context 512; 44.90M params."""
    # The seed states RMSNorm, heads, blocks, width, context and learned positions; the rest
    # (GELU 4x FFN, tied head, biases) are lmlab's defaults.
    return pico("pico_transformer", 3e-4, 10, 750, n_layer=6, n_head=8, d_model=512, context_len=512,
                norm="rmsnorm", position="learned")


def pico_wide(name: str, epochs: int, steps_per_epoch: int, **model) -> RunConfig:
    # Questions Q2 and Q7: 16 heads, 8 blocks, 1024 wide, context 512.
    return pico(name, 3e-4, epochs, steps_per_epoch, n_layer=8, n_head=16, d_model=1024, context_len=512,
                norm="rmsnorm", position="learned", **model)


@preset
def pico_underfit() -> RunConfig:
    """Pico-LLM underfitting: 8 RMSNorm blocks x 1024, 16 heads, context 512, 3 x 100 steps; 152.74M params."""
    return pico_wide("pico_underfit", 3, 100)


@preset
def pico_overfit() -> RunConfig:
    """Pico-LLM overfitting: 8 RMSNorm blocks x 1024, 16 heads, context 512, 15 x 2,500 steps; 152.74M params."""
    return pico_wide("pico_overfit", 15, 2500)


@preset
def pico_postnorm() -> RunConfig:
    """Pico-LLM post-norm: the 8 x 1024 model, RMSNorm after each residual add (Q7); 152.74M params."""
    # Q7 gives no epochs; 10 x 750 as the seed's other TinyStories transformer runs.
    return pico_wide("pico_postnorm", 10, 750, norm_position="post")
