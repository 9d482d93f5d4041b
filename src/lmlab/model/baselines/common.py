"""What the baselines share: the activation registry, the Baseline base class (FLOPs without
attention), the token input stage and the tied head."""

from __future__ import annotations

from torch import nn

from lmlab.errors import UserError
from lmlab.model.base import LanguageModel, dropout
from lmlab.model.hooks import HookPoint
from lmlab.registry import Registry

ACTIVATIONS: Registry = Registry("model.activation")
for _name, _cls in (("tanh", nn.Tanh), ("relu", nn.ReLU), ("gelu", nn.GELU), ("silu", nn.SiLU)):
    ACTIVATIONS.register(_name, f"torch.nn.{_cls.__name__}")(_cls)


def activation(cfg) -> nn.Module:
    """A new module of the configured `model.activation`."""
    return ACTIVATIONS.get(cfg.activation)()


def d_embed(cfg) -> int:
    return cfg.d_embed or cfg.d_model


def matmul_weights(model: nn.Module) -> int:
    """Weights that multiply activations: Linear layers and recurrent (input and hidden) matrices."""
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    return n + sum(p.numel() for m in model.modules() if isinstance(m, nn.RNNBase)
                   for name, p in m.named_parameters() if name.startswith("weight_"))


class Baseline(LanguageModel):
    """FLOPs per token for models without attention: 6 per matmul weight (Kaplan et al. 2020)."""

    def flops_per_token(self) -> int:
        return 6 * matmul_weights(self)

    def _token_input(self, cfg) -> None:
        """The input stage wavenet and the recurrent models share: embedding, dropout, hook."""
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, d_embed(cfg))
        self.drop = dropout(cfg.dropout)
        self.hook_embed = HookPoint()


def tie_head(model: nn.Module, cfg, width: int) -> None:
    """Share the token embedding with the output head (Press & Wolf 2017) when configured."""
    if not cfg.tie_embeddings:
        return
    if model.tok_emb.weight.shape != model.head.weight.shape:
        raise UserError(f"model.tie_embeddings=true needs model.d_embed equal to the head's input "
                        f"width {width}; set model.d_embed=0 or model.tie_embeddings=false")
    model.head.weight = model.tok_emb.weight
