"""Token data for training: the held-out split and ``BatchStream``, the endless batch stream a run
trains on, with the chapters' two samplings (d2l.ai, "Language Models"):

``random``: random offset, then shuffled non-overlapping subsequences; each batch is independent, so a
recurrent model starts every batch from a fresh state.
``sequential``: random offset, then the corpus is cut into ``batch_size`` contiguous streams; row i of
batch k+1 continues row i of batch k, so state can be carried between batches (truncated BPTT).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from ..errors import ConfigError
from ..training.config import SAMPLINGS


def split(ids: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous held-out tail: the last ``val_fraction`` of the tokens is never trained on."""
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError("the validation fraction must be in [0, 1)")
    n_val = int(len(ids) * val_fraction)
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


def _randint(low: int, high: int, g: torch.Generator | None) -> int:
    """Uniform integer in [low, high], inclusive (like ``random.randint``)."""
    return int(torch.randint(low, high + 1, (1,), generator=g))


def sequential_layout(n: int, batch_size: int, num_steps: int, g: torch.Generator | None = None
                      ) -> tuple[int, int, int]:
    """(offset, stream length, number of batches) for one sequential-partitioning epoch."""
    offset = _randint(0, num_steps, g)
    num_tokens = ((n - offset - 1) // batch_size) * batch_size
    stream = num_tokens // batch_size
    return offset, stream, stream // num_steps


TRIM_EVERY = 512
PERM_LIMIT = 1 << 22  # subsequences an epoch shuffles with randperm; more: a keyed permutation


class _Shuffle:
    """A random permutation of range(n), drawn from ``g`` whole (randperm) when n is at most PERM_LIMIT,
    else a keyed Feistel permutation (cycle-walking) that computes any slice of it without holding the
    whole."""

    ROUNDS = 4

    def __init__(self, n: int, g: torch.Generator):
        self.n = n
        if n <= PERM_LIMIT:
            self.perm = torch.randperm(n, generator=g)
            return
        self.perm = None
        self.half = (max(n - 1, 1).bit_length() + 1) // 2
        self.keys = torch.randint(0, 1 << 31, (self.ROUNDS,), generator=g).tolist()

    def _feistel(self, x: torch.Tensor) -> torch.Tensor:
        mask = (1 << self.half) - 1
        left, right = x >> self.half, x & mask
        for key in self.keys:
            f = ((right * 0x2545F491 + key) ^ (right >> 3)) * 0x9E3779B1
            left, right = right, (left ^ (f >> 7)) & mask
        return (left << self.half) | right

    def take(self, start: int, count: int) -> torch.Tensor:
        """Elements start .. start+count of the permutation (fewer at its end)."""
        if self.perm is not None:
            return self.perm[start: start + count]
        x = self._feistel(torch.arange(start, min(start + count, self.n), dtype=torch.int64))
        while bool((out := x >= self.n).any()):  # cycle-walk back into range(n)
            x = torch.where(out, self._feistel(x), x)
        return x


@dataclass
class BatchStream:
    """An endless, reproducible stream of training batches: the batch at step s depends only on
    (seed, s), so a resumed run sees exactly the batches the uninterrupted run would have seen.

    ``ids`` may live on the GPU: only start positions are computed on the CPU. A random epoch's shuffled
    order is a permutation drawn whole (randperm) when it is small, and a keyed permutation computed a
    batch at a time when it is not (a 2 GB text has 30 million subsequences)."""

    ids: torch.Tensor
    batch_size: int
    num_steps: int
    sampling: str = "random"
    seed: int = 0
    trim: Callable[[], None] | None = None  # hands memory-mapped pages back, every TRIM_EVERY gathers
    rank: int = 0   # with several processes (torchrun): this one yields rows [rank*B/world, (rank+1)*B/world)
    world: int = 1  # of every global batch of B = batch_size rows

    def __post_init__(self):
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"unknown sampling '{self.sampling}': use random or sequential")
        if self.batch_size % self.world:
            raise ConfigError(f"the batch of {self.batch_size} rows cannot be split evenly across {self.world} "
                              f"processes: use a --batch divisible by {self.world}")
        per = self.batch_size // self.world
        self._mine = slice(self.rank * per, (self.rank + 1) * per)
        if self.batches_in_epoch(0) < 1:
            need = self.batch_size * self.num_steps + self.num_steps + 1
            raise ConfigError(
                f"the training text has {len(self.ids):,} tokens, too few for one batch of "
                f"{self.batch_size}x{self.num_steps} (needs about {need:,}): use a smaller --batch or --seq-len"
            )
        self._window = torch.arange(self.num_steps, device=self.ids.device)
        self._taken = 0

    def _take(self, idx: torch.Tensor) -> torch.Tensor:
        self._taken += 1
        if self.trim is not None and self._taken % TRIM_EVERY == 0:
            self.trim()
        return self.ids[idx].long()

    def _gen(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)

    def batches_in_epoch(self, epoch: int) -> int:
        n = len(self.ids)
        if self.sampling == "random":
            offset = _randint(0, self.num_steps - 1, self._gen(epoch))
            return ((n - offset - 1) // self.num_steps) // self.batch_size
        return sequential_layout(n, self.batch_size, self.num_steps, self._gen(epoch))[2]

    def iterate(self, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
        """Yield (X, Y, new_stream) forever from ``start_step``; new_stream marks the first batch of an
        epoch, where a carried recurrent state must be reset."""
        epoch, skip = 0, start_step
        while skip >= (nb := self.batches_in_epoch(epoch)):
            skip -= nb
            epoch += 1
        while True:
            g = self._gen(epoch)
            n = len(self.ids)
            if self.sampling == "random":
                offset = _randint(0, self.num_steps - 1, g)
                order = _Shuffle((n - offset - 1) // self.num_steps, g)
                for k in range(skip, order.n // self.batch_size):
                    mine = order.take(k * self.batch_size + self._mine.start, self._mine.stop - self._mine.start)
                    starts = offset + mine * self.num_steps
                    idx = starts.to(self.ids.device)[:, None] + self._window
                    yield self._take(idx), self._take(idx + 1), True
            else:
                offset, stream, nb = sequential_layout(n, self.batch_size, self.num_steps, g)
                rows = (offset + torch.arange(self.batch_size, device=self.ids.device)[:, None] * stream)[self._mine]
                for k in range(skip, nb):
                    idx = rows + k * self.num_steps + self._window
                    yield self._take(idx), self._take(idx + 1), k == 0
            skip = 0
            epoch += 1
