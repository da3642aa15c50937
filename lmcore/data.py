"""Token data for training: the held-out split and the chapters' two minibatch iterators.

``random_batches``: random offset, then shuffled non-overlapping subsequences; each batch is
independent, so a recurrent model starts every batch from a fresh state.
``sequential_batches``: random offset, then the corpus is cut into ``batch_size`` contiguous streams;
row i of batch k+1 continues row i of batch k, so state can be carried between batches (truncated BPTT).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from .errors import ConfigError

SAMPLINGS = ("random", "sequential")


def split(ids: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous held-out tail: the last ``val_fraction`` of the tokens is never trained on."""
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError("the validation fraction must be in [0, 1)")
    n_val = int(len(ids) * val_fraction)
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


def _as_tensor(corpus) -> torch.Tensor:
    return corpus if isinstance(corpus, torch.Tensor) else torch.as_tensor(list(corpus))


def _randint(low: int, high: int, g: torch.Generator | None) -> int:
    """Uniform integer in [low, high], inclusive (like ``random.randint``)."""
    return int(torch.randint(low, high + 1, (1,), generator=g))


def random_starts(n: int, batch_size: int, num_steps: int, g: torch.Generator | None = None
                  ) -> torch.Tensor:
    """Start positions for one random-sampling epoch, shape (num_batches, batch_size)."""
    offset = _randint(0, num_steps - 1, g)
    num_subseqs = (n - offset - 1) // num_steps
    num_batches = num_subseqs // batch_size
    starts = offset + torch.randperm(num_subseqs, generator=g)[: num_batches * batch_size] * num_steps
    return starts.view(num_batches, batch_size)


def sequential_layout(n: int, batch_size: int, num_steps: int, g: torch.Generator | None = None
                      ) -> tuple[int, int, int]:
    """(offset, stream length, number of batches) for one sequential-partitioning epoch."""
    offset = _randint(0, num_steps, g)
    num_tokens = ((n - offset - 1) // batch_size) * batch_size
    stream = num_tokens // batch_size
    return offset, stream, stream // num_steps


def random_batches(corpus: Sequence[int] | torch.Tensor, batch_size: int, num_steps: int,
                   g: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    ids = _as_tensor(corpus)
    window = torch.arange(num_steps)
    for starts in random_starts(len(ids), batch_size, num_steps, g):
        idx = starts[:, None] + window
        yield ids[idx], ids[idx + 1]


def sequential_batches(corpus: Sequence[int] | torch.Tensor, batch_size: int, num_steps: int,
                       g: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    ids = _as_tensor(corpus)
    offset, stream, num_batches = sequential_layout(len(ids), batch_size, num_steps, g)
    xs = ids[offset: offset + stream * batch_size].view(batch_size, stream)
    ys = ids[offset + 1: offset + 1 + stream * batch_size].view(batch_size, stream)
    for i in range(0, num_steps * num_batches, num_steps):
        yield xs[:, i: i + num_steps], ys[:, i: i + num_steps]


@dataclass
class BatchStream:
    """An endless, reproducible stream of training batches: the batch at step s depends only on
    (seed, s), so a resumed run sees exactly the batches the uninterrupted run would have seen.

    ``ids`` may live on the GPU: only start positions are computed on the CPU."""

    ids: torch.Tensor
    batch_size: int
    num_steps: int
    sampling: str = "random"
    seed: int = 0

    def __post_init__(self):
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"unknown sampling '{self.sampling}': use random or sequential")
        if self.batches_in_epoch(0) < 1:
            need = self.batch_size * self.num_steps + self.num_steps + 1
            raise ConfigError(
                f"the training text has {len(self.ids):,} tokens, too few for one batch of "
                f"{self.batch_size}x{self.num_steps} (needs about {need:,}): use a smaller --batch or --seq-len"
            )
        self._window = torch.arange(self.num_steps, device=self.ids.device)

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
                starts = random_starts(n, self.batch_size, self.num_steps, g).to(self.ids.device)
                for k in range(skip, starts.shape[0]):
                    idx = starts[k][:, None] + self._window
                    yield self.ids[idx].long(), self.ids[idx + 1].long(), True
            else:
                offset, stream, nb = sequential_layout(n, self.batch_size, self.num_steps, g)
                rows = offset + torch.arange(self.batch_size, device=self.ids.device)[:, None] * stream
                for k in range(skip, nb):
                    idx = rows + k * self.num_steps + self._window
                    yield self.ids[idx].long(), self.ids[idx + 1].long(), k == 0
            skip = 0
            epoch += 1
