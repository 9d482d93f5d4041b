"""Output head + cross-entropy in row chunks, never holding the (B*T, V) logits.

At a GPT-2 vocabulary the head dominates a small model's step: LLmini-C (8 x 256, V = 50,257,
8,192 rows per micro-batch) materializes 1.6 GB of fp32 logits, the same again for their
log-softmax and for the gradient, and the cross-entropy over them took three times as long as
all the head's matrix multiplies. `linear_cross_entropy` instead walks the rows in blocks (96 MiB
of logits in the compute dtype, 984 rows of LLmini-C in bf16), each made of chunks (8 MiB of fp32
logits, 41 rows, small enough that the passes over a chunk -- copy, two maxima, softmax, copy back
-- stay in cache). Per block one matmul gives the logits; per chunk they are copied to fp32, where
the softmax runs in place and gives the log-sum-exp and the loss, and -- when a gradient will be
needed -- the chunk's gradient (softmax - one-hot) goes back over its logits in the compute dtype;
then two more matmuls per block give its products with the weight and the hidden states (the
loss's 1 / rows scales the block's few hidden states first, not the (Vp, D) product afterwards).
Backward only scales the stored gradients by the incoming one (the loss is a scalar at the end of
the graph), so the head's logits are computed once, as in the unfused path. Blocks rather than
chunks for the matmuls because every weight-gradient product is added into the fp32 (Vp, D)
gradient, a pass over 51 MB at LLmini-C's head: per chunk that pass cost as much as the chunk's
product (2.3 s of a 10 s step), and the matmuls run 20% faster on 996 rows than on 333; the add
itself goes in slices that stay in cache (`add_in_slices_`). The buffers are allocated once per
call and reused, and nothing the size of the (B*T, V) logits ever exists.

Pad columns (rows of a padded head beyond the logical vocabulary) are set to -inf before the
log-sum-exp: they never receive probability, loss or gradient.

`head_scores` is the evaluation twin: per-token nats and arg-max hits, chunked the same way.
"""

from __future__ import annotations

import contextlib

import torch

CHUNK_ELEMENTS = 1 << 21  # fp32 logits per softmax chunk (8 MiB): 41 rows at V = 50,304; all rows at V = 65
BLOCK_BYTES = 96 << 20  # the head's products per block of chunks in the compute dtype: 24 bf16 chunks, 984 rows
MIN_ROWS = 16
SLICE_ELEMENTS = 1 << 20  # elements per slice of a mixed-dtype add (4 MiB of fp32): its converted temporary stays in cache


def chunk_rows(n_rows: int, vocab: int) -> int:
    return max(MIN_ROWS, min(n_rows, CHUNK_ELEMENTS // max(vocab, 1)))


def block_chunks(rows: int, vocab_rows: int, value_bytes: int, n_rows: int) -> int:
    """Chunks per block: as many as BLOCK_BYTES holds in the compute dtype, at most all of them."""
    return max(1, min(BLOCK_BYTES // (rows * vocab_rows * value_bytes), -(-n_rows // rows)))


def layout(n_rows: int, vocab_rows: int, value_bytes: int) -> tuple[int, int]:
    """(rows per softmax chunk, rows per block) for n_rows rows; 1 and 1 when no row is left."""
    rows = max(1, min(chunk_rows(n_rows, vocab_rows), n_rows))
    return rows, rows * block_chunks(rows, vocab_rows, value_bytes, n_rows)


def buffer_bytes(n_rows: int, vocab_rows: int, value_bytes: int) -> int:
    """Bytes of `ChunkBuffers` for n_rows rows in a compute dtype of value_bytes (memory prediction)."""
    rows, block_rows = layout(n_rows, vocab_rows, value_bytes)
    return block_rows * vocab_rows * value_bytes + (rows * vocab_rows * 4 if value_bytes < 4 else 0)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype autocast would run the head's matmul in (else the hidden states' own)."""
    kind = x.device.type
    if kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return x.dtype


def no_autocast(device: torch.device):
    """Autocast off while the head casts explicitly (meta and other devices have no autocast)."""
    kind = device.type
    return torch.autocast(kind, enabled=False) if kind in ("cpu", "cuda", "mps") else contextlib.nullcontext()


class ChunkBuffers:
    """One call's buffers, reused block after block: a block of rows' logits in the compute dtype (one
    matmul's output; afterwards, chunk by chunk, their gradient in that dtype, which the block's two
    gradient products then take at once) and one chunk's fp32 copy, where the softmax runs in place.
    In fp32 (or fp64) the softmax runs in the block itself. Allocated once per call rather than per
    chunk, so glibc's heap does not fragment (0.18 GiB less resident memory for LLmini-C at batch 32)."""

    def __init__(self, n_rows: int, vocab_rows: int, dtype: torch.dtype, device: torch.device):
        acc = torch.promote_types(dtype, torch.float32)
        self.rows, self.block_rows = layout(n_rows, vocab_rows, dtype.itemsize)
        self.block = torch.empty(self.block_rows, vocab_rows, dtype=dtype, device=device)
        self.wide = torch.empty(self.rows, vocab_rows, dtype=acc, device=device) if dtype != acc else None

    def blocks(self, h: torch.Tensor, w: torch.Tensor, dtype: torch.dtype):
        """(first row, the block's hidden states in the compute dtype (m, D), their products h w^T (m, Vp))."""
        for s in range(0, h.size(0), self.block_rows):
            hb = h[s:s + self.block_rows].to(dtype)
            yield s, hb, torch.mm(hb, w.t(), out=self.block[:hb.size(0)])

    def chunks(self, products: torch.Tensor, bias: torch.Tensor | None, vocab: int):
        """(first row in the block, the chunk's products, its fp32 logits with pad columns at -inf)."""
        for c in range(0, products.size(0), self.rows):
            part = products[c:c + self.rows]
            logits = part if self.wide is None else self.wide[:part.size(0)].copy_(part)
            if bias is not None:
                logits += bias
            if logits.size(1) > vocab:
                logits[:, vocab:] = float("-inf")
            yield c, part, logits


def add_in_slices_(acc: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """acc += x over slices of rows. When x has another dtype (bf16 products into an fp32 gradient) the
    add converts x through a temporary; sliced, that temporary stays in cache: the weight gradient's
    add at LLmini-C's head (50,304 x 256) took 6-7.5 ms whole and 3.5-3.9 ms in slices, measured alone."""
    rows = max(1, SLICE_ELEMENTS // max(x.size(1), 1))  # x (n, m)
    for i in range(0, x.size(0), rows):
        acc[i:i + rows].add_(x[i:i + rows])
    return acc


def softmax_rows_(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the rows of a 2-D tensor, on CPU in place (one (n, V) fp32 buffer less per chunk).
    One kernel: log_softmax then exp took two passes more over the chunk. Torch's CPU kernel reads a
    row completely before it writes it, so the output may be the input (tests/test_head_loss.py checks
    it equals torch.softmax bit for bit)."""
    if x.device.type == "cpu":
        return torch._softmax(x, 1, False, out=x)
    return torch.softmax(x, 1)


class LinearCrossEntropy(torch.autograd.Function):
    """scale * sum_i CE(h_i @ W^T + b, target_i), its gradients computed in forward."""

    @staticmethod
    def forward(ctx, h, weight, bias, targets, scale: float, vocab: int, dtype: torch.dtype, valid: int):
        # h (N, D) any float dtype; weight (Vp, D) fp32 parameter; bias (Vp,) or None; targets (N,);
        # rows from `valid` on are padding (h = 0): no loss, and their gradient rows are zeroed
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = bias is not None and ctx.needs_input_grad[2]
        with no_autocast(h.device):
            acc = torch.promote_types(dtype, torch.float32)  # fp32, or fp64 for fp64 inputs
            w = weight.to(dtype)
            b = bias.to(acc) if bias is not None else None
            N = h.size(0)
            total = torch.zeros((), dtype=acc, device=h.device)
            grad_h = torch.empty(h.shape, dtype=acc, device=h.device) if need_h else None
            grad_w = torch.zeros(weight.shape, dtype=acc, device=h.device) if need_w else None
            grad_b = torch.zeros(bias.shape, dtype=acc, device=h.device) if need_b else None
            buffers = ChunkBuffers(N, weight.size(0), dtype, h.device)
            for s, hb, products in buffers.blocks(h, w, dtype):
                for c, part, logits in buffers.chunks(products, b, vocab):  # logits (n, Vp) fp32, pads -inf
                    t = targets[s + c:s + c + len(part), None]  # (n, 1)
                    real = max(min(valid - s - c, len(t)), 0)  # rows of this chunk before the padding rows
                    picked = logits[:real].gather(1, t[:real])[:, 0]  # (real,) the targets' logits
                    top = logits[:real].amax(1)
                    probs = softmax_rows_(logits)  # (n, Vp) fp32, the logits' own memory
                    # log-sum-exp from the softmax itself: at a row's arg-max the probability is exp(max) / sum,
                    # so lse = max - log(max probability), exact to fp32 however small the target's probability
                    total += (top - probs[:real].amax(1).log() - picked).sum()
                    if not (need_h or need_w or need_b):
                        continue
                    probs.scatter_add_(1, t, torch.full_like(t, -1.0, dtype=probs.dtype))
                    # probs = softmax - one-hot = d CE / d logits, pad columns 0; (n, Vp)
                    if real < len(t):
                        probs[real:] = 0
                    if grad_b is not None:
                        grad_b += probs.sum(0)
                    if buffers.wide is not None:  # the chunk's gradient in the compute dtype, over its products
                        part.copy_(probs)
                # one product per block, not per chunk: each is added into the fp32 (Vp, D) weight gradient,
                # a pass over 51 MB at LLmini-C's head that cost as much as a chunk's product itself
                if grad_h is not None:
                    grad_h[s:s + len(hb)] = products @ w
                if grad_w is not None:  # the loss's scale goes on the block's few hidden states, not on (Vp, D)
                    scaled = (h[s:s + len(hb)] * scale).to(dtype)
                    add_in_slices_(grad_w, products.t() @ scaled)  # (Vp, D); ATen picks the product's layout
            for grad in (grad_h, grad_b):
                if grad is not None:
                    grad *= scale
        ctx.save_for_backward(grad_h.to(h.dtype) if need_h else None,
                              grad_w.to(weight.dtype) if need_w else None, grad_b.to(bias.dtype) if need_b else None)
        return total * scale

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        scaled = [None if g is None else g * grad_out.to(g.dtype) for g in (grad_h, grad_w, grad_b)]
        return (*scaled, None, None, None, None, None)


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         targets: torch.Tensor, loss_mask: torch.Tensor | None = None,
                         vocab: int | None = None) -> torch.Tensor:
    """Mean cross-entropy of the head `h @ weight^T + bias` against `targets` over rows where
    `loss_mask` is true (all rows without a mask), equal to `F.cross_entropy` on the logits
    sliced to the first `vocab` columns. h (..., D), targets and loss_mask (...)."""
    D = h.size(-1)
    vocab = vocab or weight.size(0)
    h, targets = h.reshape(-1, D), targets.reshape(-1)
    valid = targets.numel()
    if loss_mask is not None:
        keep = loss_mask.reshape(-1).nonzero()[:, 0]  # masked rows cost nothing
        h, targets = h.index_select(0, keep), targets.index_select(0, keep)
        valid = targets.numel()
        step = chunk_rows(valid, weight.size(0))
        if valid > step:  # several chunks: pad to whole chunks so every batch allocates the same sizes
            pad = -valid % step
            h = torch.cat([h, h.new_zeros(pad, D)])
            targets = torch.cat([targets, targets.new_zeros(pad)])
    scale = 1.0 / max(valid, 1)
    return LinearCrossEntropy.apply(h, weight, bias, targets, scale, vocab, compute_dtype(h), valid)


@torch.no_grad()
def head_scores(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                vocab: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token cross-entropy (nats, fp32) and arg-max hits of the head, chunked.
    h (..., D), targets (...) -> two tensors shaped like targets."""
    vocab = vocab or weight.size(0)
    shape, D = targets.shape, h.size(-1)
    h, targets = h.reshape(-1, D), targets.reshape(-1)
    dtype = compute_dtype(h)
    with no_autocast(h.device):
        w = weight.to(dtype)
        b = bias.to(torch.promote_types(dtype, torch.float32)) if bias is not None else None
        nats = torch.empty(targets.shape, dtype=torch.float32, device=h.device)
        hits = torch.empty(targets.shape, dtype=torch.bool, device=h.device)
        buffers = ChunkBuffers(targets.numel(), weight.size(0), dtype, h.device)
        for s, _, products in buffers.blocks(h, w, dtype):
            for c, _, logits in buffers.chunks(products, b, vocab):
                rows = slice(s + c, s + c + logits.size(0))
                picked = logits.gather(1, targets[rows, None])[:, 0]
                top, best = logits.max(1)
                lse = top - softmax_rows_(logits).amax(1).log()  # as in training; 3x faster than logsumexp
                nats[rows] = lse - picked
                hits[rows] = best == targets[rows]
    return nats.view(shape), hits.view(shape)
