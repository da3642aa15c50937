import torch

from lmcore.data.batching import BatchStream

SEQ = torch.arange(35)


def _epoch(sampling: str, seed: int) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    """The batches of a stream's first epoch."""
    stream = BatchStream(SEQ, 2, 5, sampling, seed=seed)
    return [b for _, b in zip(range(stream.batches_in_epoch(0)), stream.iterate(0))]


def test_random_sampling_properties():
    for seed in range(20):
        batches = _epoch("random", seed)
        assert 2 <= len(batches) <= 3
        starts = []
        for x, y, _ in batches:
            assert x.shape == (2, 5) and y.shape == (2, 5)
            assert torch.equal(y, x + 1)  # labels are the inputs shifted by one
            assert torch.equal(x[:, 1:], x[:, :-1] + 1)  # each row is a contiguous subsequence
            starts += x[:, 0].tolist()
        assert len(set(starts)) == len(starts)  # no subsequence reused within an epoch
        offsets = {s % 5 for s in starts}
        assert len(offsets) == 1  # non-overlapping: one random offset, steps of num_steps


def test_random_sampling_offset_varies():
    firsts = {_epoch("random", s)[0][0][0, 0].item() % 5 for s in range(30)}
    assert len(firsts) > 1


def test_sequential_partitioning_properties():
    for seed in range(20):
        batches = _epoch("sequential", seed)
        assert 2 <= len(batches) <= 3
        assert [new for _, _, new in batches] == [True] + [False] * (len(batches) - 1)  # state carried on
        for x, y, _ in batches:
            assert x.shape == (2, 5) and torch.equal(y, x + 1)
        for (x0, _, _), (x1, _, _) in zip(batches, batches[1:]):
            assert torch.equal(x1[:, 0], x0[:, -1] + 1)  # row i continues row i of the previous batch


def test_batch_stream_resumes_exactly():
    ids = torch.arange(1000)
    for sampling in ("random", "sequential"):
        bs = BatchStream(ids, 4, 8, sampling, seed=3)
        full = [b for _, b in zip(range(100), bs.iterate(0))]
        late = [b for _, b in zip(range(40), bs.iterate(60))]
        for (x, y, n), (x2, y2, n2) in zip(full[60:], late):
            assert torch.equal(x, x2) and torch.equal(y, y2) and n == n2
        assert torch.equal(full[0][1], full[0][0] + 1)


def test_batch_stream_too_small_is_a_clear_error():
    import pytest

    from lmcore.errors import ConfigError

    with pytest.raises(ConfigError, match="too few"):
        BatchStream(torch.arange(20), 4, 8)
