"""The standard battery on every model variant, plus component references."""

import dataclasses
import math

import pytest
import torch

import battery

from lmlab.errors import UserError
from lmlab.model import ModelConfig, build_model, run_with_cache
from lmlab.model.components.position import sinusoidal_table

V = 50
BASE = ModelConfig(n_layer=2, n_head=4, d_model=32, context_len=16)
VARIANTS = {
    "gpt": {"attention": "sdpa"},
    "auto": {"attention": "auto"},
    "manual": {"attention": "manual"},
    "rms_swiglu": {"norm": "rmsnorm", "mlp": "swiglu", "bias": False, "tie_embeddings": False},
    "post_relu": {"norm_position": "post", "mlp": "relu"},
    "sinusoidal": {"position": "sinusoidal"},
    "nope": {"position": "none"},
    "gqa": {"n_kv_head": 2},
    "mqa": {"n_kv_head": 1, "attention": "manual"},
    "rope_gqa": {"position": "rope", "n_kv_head": 2, "attention": "sdpa"},
    "rope_manual": {"position": "rope", "attention": "manual"},
    "alibi": {"position": "alibi", "attention": "sdpa"},
    "alibi_manual": {"position": "alibi", "attention": "manual", "n_head": 2},
    "llama": {"position": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False, "tie_embeddings": False,
              "n_kv_head": 2, "attention": "sdpa"},
    "qk_norm": {"qk_norm": True, "attention": "sdpa"},
    "relu2_rope_qknorm_untied": {"mlp": "relu2", "position": "rope", "qk_norm": True, "tie_embeddings": False},
    "no_residual": {"residual": False, "init": "xavier"},  # N(0, 0.02) layers shrink the signal without skips
    "no_out_proj": {"attn_out_proj": False},
    "attn_only": {"mlp": "none"},
    "no_norm": {"norm": "none"},
    "gelu_tanh_xavier": {"mlp": "gelu_tanh", "init": "xavier"},
    "dropout_sites": {"dropout": 0.1, "attn_dropout": 0.2, "mlp_dropout": 0.3},
    "checkpointed": {"grad_checkpoint": True, "dropout": 0.1},
    "single_linear_ffn": {"mlp": "relu", "mlp_proj": False, "mlp_mult": 1.0},
    "final_rmsnorm_head_bias": {"final_norm": "rmsnorm", "head_bias": True, "tie_embeddings": False},
    "post_final_norm": {"norm_position": "post", "final_norm": "layernorm"},
    "resid_dropout_split": {"resid_dropout": 0.1, "mlp_resid_dropout": 0.3},
}


def make(variant: str, **extra):
    torch.manual_seed(0)
    return build_model(dataclasses.replace(BASE, **{**VARIANTS[variant], **extra}), V)


@pytest.fixture(params=list(VARIANTS))
def variant(request):
    return request.param


def test_shapes_and_initial_loss(variant):
    battery.shapes_and_initial_loss(make(variant), V)


def test_causality(variant):
    battery.causality(make(variant), V)


def test_overfits_one_batch(variant):
    battery.overfits(make(variant), torch.randint(0, V, (4, 16)), torch.randint(0, V, (4, 16)))


def test_save_load_gives_identical_logits(variant, tmp_path):
    model = make(variant)
    torch.manual_seed(12345)  # the same config drawn again: only the checkpoint can make them agree
    # (not another model.init: a fixed sinusoidal table is scaled to the init's embedding std)
    battery.save_load(model, make(variant), tmp_path / "ck", V)


def test_kv_cache_generation_equals_recompute(variant):
    model = make(variant)
    cached = battery.cache_equals_recompute(model, V)
    battery.stepwise_equals_full(model, cached[:, :16])


@pytest.mark.parametrize("extra", [{}, {"n_kv_head": 2}, {"n_kv_head": 1}, {"dropout": 0.0, "norm": "rmsnorm"}])
def test_fused_equals_manual_attention(extra):
    fused, manual = make("gpt", **extra).eval(), make("manual", **extra).eval()
    manual.load_state_dict(fused.state_dict())
    x = torch.randint(0, V, (3, 16))
    torch.testing.assert_close(fused(x)[0], manual(x)[0], atol=1e-5, rtol=1e-4)


def test_pattern_hook_sees_real_softmax_even_on_fused_path():
    model = make("gpt").eval()
    x = torch.randint(0, V, (2, 16))
    logits, cache = run_with_cache(model, x, "blocks.*.attn.hook_pattern")
    pattern = cache["blocks.1.attn.hook_pattern"]  # (B, H, T, T)
    assert pattern.shape == (2, 4, 16, 16)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 4, 16))
    assert torch.all(pattern.triu(diagonal=1) == 0)
    torch.testing.assert_close(logits, model(x)[0], atol=1e-5, rtol=1e-4)
    names = model.hook_names()
    for name in ("hook_embed", "blocks.0.hook_resid_pre", "blocks.1.hook_resid_post", "blocks.0.attn.hook_z"):
        assert name in names


def test_mha_is_gqa_with_all_heads():
    a = make("gpt", n_kv_head=4).eval()
    b = make("gpt").eval()
    x = torch.randint(0, V, (2, 16))
    assert torch.equal(a(x)[0], b(x)[0])


def test_sinusoidal_table_matches_formula():
    table = sinusoidal_table(10, 8)
    for p in range(10):
        for i in range(4):
            angle = p / 10000 ** (2 * i / 8)
            assert math.isclose(table[p, 2 * i].item(), math.sin(angle), abs_tol=1e-6)
            assert math.isclose(table[p, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-6)


def test_parameter_count_and_flops_by_hand():
    model = make("gpt")
    D, L, T, F = 32, 2, 16, 128
    per_block = (D * 3 * D + 3 * D) + (D * D + D) + (D * F + F) + (F * D + D) + 2 * 2 * D
    embeddings = V * D + T * D
    assert model.num_params() == embeddings + L * per_block + 2 * D
    assert model.num_params(embeddings=False) == L * per_block + 2 * D
    matmul = L * (3 * D * D + D * D + 2 * D * F) + V * D
    assert model.flops_per_token() == 6 * matmul + 12 * L * T * D


def test_gpt2_init_scales_residual_projections():
    model = make("gpt")
    assert abs(model.tok_emb.weight.std().item() - 0.02) < 0.002
    assert abs(model.blocks[0].attn.proj.weight.std().item() - 0.02 / math.sqrt(4)) < 0.002
    assert model.lm_head.weight is model.tok_emb.weight
    untied = make("rms_swiglu")
    assert untied.lm_head.weight is not untied.tok_emb.weight


@pytest.mark.parametrize("variant", ["gpt", "manual", "rope_gqa", "alibi", "alibi_manual", "llama"])
def test_right_padding_is_invisible_to_real_tokens_and_the_loss(variant):
    """Right-padded rows (the `pad` layout): causality keeps every real token from attending to the
    pads after it, so its logits equal the unpadded sequence's, on the fused and the manual path
    alike, and the loss mask drops the pads from the loss."""
    model = make(variant).eval()
    real = torch.randint(0, V, (1, 10))
    padded = torch.cat([real, torch.randint(0, V, (1, 6))], dim=1)  # whatever the pad ids are
    torch.testing.assert_close(model(padded)[0][:, :10], model(real)[0], atol=1e-5, rtol=1e-4)
    targets = torch.cat([real[:, 1:], torch.zeros(1, 7, dtype=torch.long)], dim=1)  # (1, 16)
    mask = torch.arange(16)[None, :] < 9  # the 9 real next-token targets
    masked = model(padded, targets, loss_mask=mask)[1]
    torch.testing.assert_close(masked, model(real[:, :-1], real[:, 1:])[1])


def test_seed_switches_shape_the_model():
    """mlp_proj=false leaves one Linear in the FFN; final_norm and head_bias change the head;
    mlp_resid_dropout sets the MLP sublayer's dropout apart from the attention one's."""
    single = make("single_linear_ffn")
    assert isinstance(single.blocks[0].mlp.proj, torch.nn.Identity)
    two_linear = make("single_linear_ffn", mlp_proj=True)
    assert two_linear.num_params() - single.num_params() == 2 * (32 * 32 + 32)  # one proj per layer
    head = make("final_rmsnorm_head_bias")
    assert head.lm_head.bias is not None and type(head.ln_f).__name__ == "RMSNorm"
    assert type(make("post_final_norm").ln_f).__name__ == "LayerNorm"
    split = make("resid_dropout_split").blocks[0]
    assert (split.attn.resid_drop.p, split.mlp.drop.p) == (0.1, 0.3)
    with pytest.raises(UserError, match="mlp_proj"):
        dataclasses.replace(BASE, mlp_proj=False)  # a 4x-wide hidden layer cannot be the output
