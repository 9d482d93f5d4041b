"""The step-by-step ladder (shared/seeds/step-by-step-mini-gpt.md): bigram to mytNano, stage by stage."""

from __future__ import annotations

from lmlab.config import RunConfig
from lmlab.presets.corpora import CL100K_FILE, CL100K_VOCAB
from lmlab.presets.registry import preset


# Presets follow the seed's stage numbers: ladder_NN is the configuration stage NN ends with and
# the next stage builds on; ladder_NN_x are that stage's other rows. Stages 02-05 follow Karpathy's
# "Let's build GPT" step for step (averaging, one head, four heads, FFN, blocks, residuals,
# projections, LayerNorm, dropout), so the sizes the seed leaves out are that lecture's: width 32,
# context 8, batch 32, lr 1e-3; stage 06 its scaled model (6 x 384, context 256, dropout 0.2,
# lr 3e-4). Until stage 09 the seed uses a fixed learning rate and PyTorch's default init (stage
# 09 introduces std-0.02 init and warmup + cosine), so earlier stages set schedule=constant and
# init=torch. Stage 01 (bigram, MLP, WaveNet on Indian names) precedes the seed's results table;
# its presets train on shared/data/names/names.txt (makemore's English names, the nearest local
# corpus), one name per document split at random 80/10/10 as makemore does. Stages 02-09 train on
# Tiny Shakespeare (the lecture's corpus; the seed's 2.46 nats of a char bigram is its bigram
# loss), its last 10% as validation and the 10% before that as the test split the seed reports.

SHAKESPEARE = {"source": "text", "path": "tinyshakespeare/input.txt", "test_fraction": 0.1}  # under $LMLAB_DATA
NAMES = {"path": "", "sources": [{"kind": "text", "name": "names", "path": "names/names.txt", "docs": "line"}],
         "test_fraction": 0.1}

def ladder_base(name: str) -> RunConfig:
    """The char-level trunk the stages edit: one bare layer, nothing switched on yet."""
    return RunConfig(name=name).replace(
        data=SHAKESPEARE,
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
        data=NAMES, model={"arch": "mlp", "ngram": 8, "d_embed": 10, "n_layer": 2, "d_mlp": 200, "activation": "tanh",
               "context_len": 32})


@preset
def ladder_01_bigram() -> RunConfig:
    """Ladder 01: counted char bigram (a Markov chain, add-1 smoothing); 0 trainable params."""
    return ladder_base("ladder_01_bigram").replace(data=NAMES, model={"arch": "count_bigram", "context_len": 32})


@preset
def ladder_01_wavenet() -> RunConfig:
    """Ladder 01: char WaveNet, 3 levels over 8 chars, 24-d embeddings, 128 wide; 77.0k params at V=27."""
    return ladder_base("ladder_01_wavenet").replace(
        data=NAMES, model={"arch": "wavenet", "n_layer": 3, "d_embed": 24, "d_model": 128, "norm": "layernorm",
               "activation": "tanh", "context_len": 32})


@preset
def ladder_02_bigram() -> RunConfig:
    """Ladder 02_02_0: neural char bigram, a learned V x V table (context 1); 4.2k params at V=65."""
    # The lecture's bigram.py trains the table at 1e-2: from PyTorch's N(0, 1) init (5.1 nats) at
    # 1e-3 it is still far from the bigram entropy after 5000 steps.
    return ladder_base("ladder_02_bigram").replace(model={"arch": "bigram"}, train={"lr": 1e-2})


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
