"""GPT-style decoder: embeddings -> blocks -> final norm -> head. Variation lives in the
components each block is built from (see `components/`), not in `forward`."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lmlab.model.base import LanguageModel, dropout, lm_loss
from lmlab.model.components.attention import ATTENTIONS, KVCache
from lmlab.model.components.mlp import MLPS
from lmlab.model.components.norm import NORMS
from lmlab.model.components.position import NO_CONTEXT, POSITIONS, AttentionContext
from lmlab.model.head_loss import head_scores, linear_cross_entropy
from lmlab.model.hooks import HookPoint
from lmlab.model.init import init_weights
from lmlab.registry import Registry

BLOCKS: Registry = Registry("model.norm_position")


def is_fsdp(module: nn.Module) -> bool:
    """Whether FSDP2's fully_shard wraps `module` (its parameters are shards outside forward)."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch without distributed support
        return False
    return isinstance(module, FSDPModule)


class Block(nn.Module):
    def __init__(self, cfg, layer: int):
        super().__init__()
        self.residual = cfg.residual
        self.ln1 = NORMS.get(cfg.norm)(cfg.d_model, cfg)
        self.attn = ATTENTIONS.get(cfg.attention)(cfg, layer)
        self.mlp = MLPS.get(cfg.mlp)(cfg)  # None: an attention-only block
        self.ln2 = NORMS.get(cfg.norm)(cfg.d_model, cfg) if self.mlp is not None else nn.Identity()
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def add(self, x: torch.Tensor, sublayer_out: torch.Tensor) -> torch.Tensor:
        """The residual connection, or its ablation (model.residual = false)."""
        return x + sublayer_out if self.residual else sublayer_out


@BLOCKS.register("pre", "x + f(norm(x)): GPT-2, LLaMA (Xiong et al. 2020)")
class PreNormBlock(Block):
    ends_in_norm = False  # the final norm (model.final_norm=auto) is model.norm

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                positions: AttentionContext = NO_CONTEXT) -> torch.Tensor:
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(self.add(x, self.hook_attn_out(self.attn(self.ln1(x), cache, positions))))
        if self.mlp is not None:
            x = self.add(x, self.hook_mlp_out(self.mlp(self.ln2(x))))
        return self.hook_resid_post(x)


@BLOCKS.register("post", "norm(x + f(x)): the original Transformer (Vaswani et al. 2017)")
class PostNormBlock(Block):
    ends_in_norm = True  # so model.final_norm=auto adds no second norm

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                positions: AttentionContext = NO_CONTEXT) -> torch.Tensor:
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(self.ln1(self.add(x, self.hook_attn_out(self.attn(x, cache, positions)))))
        if self.mlp is not None:
            x = self.ln2(self.add(x, self.hook_mlp_out(self.mlp(x))))
        return self.hook_resid_post(x)


def final_norm(cfg) -> nn.Module:
    """The norm before the head. auto: model.norm after pre-norm blocks, nothing after post-norm
    ones (they already end in a norm); otherwise the named norm (none = identity)."""
    return NORMS.get(cfg.final_norm_name(BLOCKS.get(cfg.norm_position).ends_in_norm))(cfg.d_model, cfg)


class Transformer(LanguageModel):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.padded_vocab, cfg.d_model)  # rows past vocab_size: zero padding
        self.pos_emb = POSITIONS.get(cfg.position)(cfg)
        self.drop = dropout(cfg.dropout)
        self.hook_embed = HookPoint()
        self.blocks = nn.ModuleList(BLOCKS.get(cfg.norm_position)(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = final_norm(cfg)
        self.hook_final = HookPoint()
        self.lm_head = nn.Linear(cfg.d_model, cfg.padded_vocab, bias=cfg.head_bias)
        init_weights(self, cfg)
        with torch.no_grad():  # pad rows: never looked up, their logits masked, so they stay zero
            self.tok_emb.weight[cfg.vocab_size:] = 0
            self.lm_head.weight[cfg.vocab_size:] = 0
        if cfg.tie_embeddings:  # after init: the shared matrix keeps the embedding's init
            self.lm_head.weight = self.tok_emb.weight

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                loss_mask: torch.Tensor | None = None, cache: KVCache | None = None):
        """(logits (B, T, V), loss). Training with targets (train mode, gradients on, model.fused_loss)
        returns logits None: the loss comes from the chunked head (head_loss.py), which never
        holds the (B, T, V) logits or their gradient. Eval mode always returns logits."""
        h = self.hook_final(self.ln_f(self.trunk(idx, cache)))  # (B, T, D)
        if targets is not None and self.config.fused_loss and self.training and torch.is_grad_enabled():
            return None, linear_cross_entropy(h, self.lm_head.weight, self.lm_head.bias, targets, loss_mask,
                                              self.config.vocab_size)
        logits = self.head(h)  # (B, T, V)
        return logits, lm_loss(logits, targets, loss_mask)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Logits over the logical vocabulary: a padded head's extra columns are cut off."""
        logits = self.lm_head(h)
        V = self.config.vocab_size
        return logits[..., :V] if logits.size(-1) > V else logits

    def next_logits(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits for the token after idx only (B, V): the head runs on the last position, not all T."""
        x = self.trunk(idx, cache)[:, -1:]
        return self.head(self.hook_final(self.ln_f(x)))[:, 0]

    def token_scores(self, idx: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token nats and arg-max hits (B, T), the head chunked (no (B, T, V) logits). An FSDP-sharded
        model gathers its weights only inside forward, so it scores through forward instead."""
        if is_fsdp(self):
            return super().token_scores(idx, targets)
        h = self.hook_final(self.ln_f(self.trunk(idx)))  # (B, T, D)
        return head_scores(h, self.lm_head.weight, self.lm_head.bias, targets, self.config.vocab_size)

    def trunk(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Embeddings and blocks: the residual stream before the final norm, (B, T, D)."""
        B, T = idx.shape
        start = cache.pos if cache is not None else 0
        if start + T > self.config.context_len:
            raise ValueError(f"sequence of {start + T} tokens exceeds model.context_len={self.config.context_len}")
        x = self.tok_emb(idx) + self.pos_emb.embed(start, T)  # (B, T, D)
        x = self.hook_embed(self.drop(x))
        positions = self.pos_emb.context(start, T)  # rotations / score biases, shared by all layers
        for block in self.blocks:
            if self.config.grad_checkpoint and self.training:
                x = checkpoint(block, x, cache, positions, use_reentrant=False)
            else:
                x = block(x, cache, positions)  # (B, T, D)
        if cache is not None:
            cache.advance(T)
        return x

    def new_cache(self, batch_size: int, device=None, dtype=None) -> KVCache:
        cfg = self.config
        device = device or self.tok_emb.weight.device
        return KVCache(cfg.n_layer, batch_size, cfg.kv_heads, cfg.context_len, cfg.d_head,
                       device=device, dtype=dtype or self.tok_emb.weight.dtype)

    def num_params(self, embeddings: bool = True) -> int:
        """As LanguageModel's, without the vocabulary padding's rows (they hold no parameters that learn)."""
        cfg = self.config
        pad = cfg.padded_vocab - cfg.vocab_size
        head_pad = (0 if cfg.tie_embeddings else pad * cfg.d_model) + (pad if cfg.head_bias else 0)
        return super().num_params(embeddings) - head_pad - (pad * cfg.d_model if embeddings else 0)

    def flops_per_token(self) -> int:
        """The matmul FLOPs (the head's pad rows left out) plus attention's 12 * n_layer * T * d_model (PaLM appendix B), T = context_len."""
        cfg = self.config
        pad = cfg.padded_vocab - cfg.vocab_size
        return super().flops_per_token() - 6 * pad * cfg.d_model + 12 * cfg.n_layer * cfg.context_len * cfg.d_model

    def scored_only_flops(self) -> int:
        """The head's 6 * V * D: with model.fused_loss, masked positions never reach its matmuls."""
        cfg = self.config
        return 6 * cfg.vocab_size * cfg.d_model if cfg.fused_loss else 0

    def activation_bytes(self, batch_size: int, bytes_per_value: int = 2) -> int:
        """Activations kept for backward in one step, after Korthikanti et al. 2022 (eq. 2):
        per layer T * B * D * (36 + 2 * H * T / D) bytes at 16-bit with dropout masks,
        rescaled to `bytes_per_value`; gradient checkpointing keeps only each block's input.
        The paper's 34 counts the two residual dropout masks at a byte per value; lmlab's dropout
        keeps a keep factor in the activations' dtype instead (2 bytes at 16-bit), hence 36.
        Of the paper's 5 * H * T / D for the attention pattern only the softmax output's 2 remain:
        attention dropout keeps neither its mask nor the dropped copy (`dropped_matmul`)."""
        cfg = self.config
        T, D, H = cfg.context_len, cfg.d_model, cfg.n_head
        per_layer = T * batch_size * D * (36 + 2 * H * T / D) * bytes_per_value / 2
        if cfg.grad_checkpoint:
            return int(cfg.n_layer * T * batch_size * D * bytes_per_value + per_layer)
        return int(cfg.n_layer * per_layer)

