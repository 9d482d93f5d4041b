"""State carried between generation steps: the transformer's keys and values (KVCache) and the
recurrent baselines' state (RecurrentCache), behind one interface: `pos`, `advance`, `reset`."""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer for positions [0, pos), preallocated to `max_len`."""

    def __init__(self, n_layer: int, batch: int, n_kv_head: int, max_len: int, d_head: int,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        shape = (n_layer, batch, n_kv_head, max_len, d_head)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.pos = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.pos + k.size(2)
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]  # (B, Hkv, pos+T, Dh)

    def advance(self, length: int) -> None:
        self.pos += length

    def reset(self) -> None:
        self.pos = 0


class RecurrentCache:
    """State carried between generation steps with KVCache's interface (`pos`, `advance`,
    `reset`): an LSTM's (h, c), a GRU's (h,), a bag of words' running sums."""

    def __init__(self, *state: torch.Tensor):
        self.state = state
        self.pos = 0

    def advance(self, length: int) -> None:
        self.pos += length

    def reset(self) -> None:
        self.state = tuple(torch.zeros_like(s) for s in self.state)
        self.pos = 0
