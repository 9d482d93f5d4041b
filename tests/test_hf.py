"""Reference equivalence with Hugging Face transformers: same weights, same logits."""

import dataclasses

import pytest
import torch

from lmlab.errors import UserError
from lmlab.hf import from_hf_model, hf_family, to_hf_model
from lmlab.model import ModelConfig, build_model

import transformers  # noqa: E402

V, T = 61, 16
GPT2 = ModelConfig(n_layer=2, n_head=4, d_model=32, context_len=T, vocab_size=V, mlp="gelu_tanh", attention="manual")
LLAMA = ModelConfig(n_layer=2, n_head=4, n_kv_head=2, d_model=32, context_len=T, vocab_size=V, position="rope",
                    norm="rmsnorm", mlp="swiglu", bias=False, tie_embeddings=False, d_mlp=48, norm_eps=1e-6,
                    rope_theta=500.0, attention="sdpa")


def perturbed(cfg: ModelConfig):
    """A model whose norms and biases are not at their init values, so a mis-mapped weight shows."""
    torch.manual_seed(1)
    model = build_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def hf_logits(hf_model, x):
    return hf_model(input_ids=x).logits


@pytest.mark.parametrize("cfg", [GPT2, dataclasses.replace(GPT2, mlp="gelu", bias=False),
                                 dataclasses.replace(GPT2, tie_embeddings=False, mlp="relu"),
                                 LLAMA, dataclasses.replace(LLAMA, n_kv_head=1, tie_embeddings=True),
                                 dataclasses.replace(LLAMA, n_kv_head=0, bias=True)],
                         ids=["gpt2", "gpt2_nobias_erf", "gpt2_untied_relu", "llama_gqa", "llama_mqa_tied",
                              "llama_mha_bias"])
def test_export_to_transformers_gives_equal_logits(cfg):
    model = perturbed(cfg)
    hf_model = to_hf_model(model)
    x = torch.randint(0, V, (3, T))
    torch.testing.assert_close(hf_logits(hf_model, x), model(x)[0], atol=1e-5, rtol=1e-5)


def test_import_gpt2_from_transformers():
    torch.manual_seed(2)
    hf_model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=V, n_positions=T, n_embd=32, n_layer=2, n_head=4, bos_token_id=None, eos_token_id=None)).eval()
    with torch.no_grad():
        for p in hf_model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model = from_hf_model(hf_model)
    assert model.config.mlp == "gelu_tanh" and model.config.tie_embeddings
    x = torch.randint(0, V, (2, T))
    torch.testing.assert_close(model(x)[0], hf_logits(hf_model, x), atol=1e-5, rtol=1e-5)


def test_import_llama_from_transformers():
    torch.manual_seed(3)
    hf_model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=V, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=T, rms_norm_eps=1e-6, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=None, pad_token_id=None)).eval()
    with torch.no_grad():
        for p in hf_model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model = from_hf_model(hf_model)
    assert (model.config.position, model.config.kv_heads, model.config.d_mlp) == ("rope", 2, 40)
    x = torch.randint(0, V, (2, T))
    torch.testing.assert_close(model(x)[0], hf_logits(hf_model, x), atol=1e-5, rtol=1e-5)


def test_round_trip_is_exact():
    model = perturbed(LLAMA)
    again = from_hf_model(to_hf_model(model))
    for (a, p), (b, q) in zip(model.state_dict().items(), again.state_dict().items()):
        assert a == b and torch.equal(p, q)


@pytest.mark.parametrize("change, switch", [({"position": "alibi"}, "model.position='alibi'"),
                                            ({"norm_position": "post"}, "model.norm_position='post'"),
                                            ({"qk_norm": True}, "model.qk_norm=True"),
                                            ({"n_kv_head": 2}, "model.n_kv_head=2")])
def test_shapes_without_hf_counterpart_are_refused_by_name(change, switch):
    with pytest.raises(UserError, match="no Hugging Face counterpart") as err:
        hf_family(dataclasses.replace(GPT2, **change))
    assert switch in str(err.value)
