"""Training one model on several processes (``torchrun``) with DistributedDataParallel.

Under ``torchrun`` every process gets RANK, WORLD_SIZE and LOCAL_RANK in its environment; ``setup``
starts the process group from them (gloo for tensors on the CPU, NCCL for tensors on CUDA GPUs) and
``teardown`` ends it. Without torchrun, or with one process, nothing happens and training is the plain
single-process path. The trainer asks ``current()`` which rank it is and how many there are.

What the ranks share: rank 0 alone takes the model's lock, prepares the run and sends it to the others
(``share_prepared`` / ``receive_prepared``: the other ranks never read or write the store); every step they
agree on whether to stop (``agree``); at a save the rows of a carried recurrent state come together on
every rank (``gather_rows``) so that the saved state holds the whole batch, and a resumed run takes its
own rows of it (``take_rows``), with any number of ranks."""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch

from ..errors import ConfigError, LmError

#: how long a rank waits for the others in one collective (rank 0 preparing a large corpus, evaluating)
TIMEOUT = datetime.timedelta(minutes=30)


class PeerFailed(LmError):
    """Another rank failed (it reports why); this one stops without a message of its own."""


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """Several processes train together."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """This process evaluates, saves, holds the lock and reports."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number (set by torchrun): start with torchrun "
                          f"--nproc_per_node N -m lmcore train …") from None


def from_env() -> Ranks:
    """The ranks torchrun announced in the environment (rank 0 of 1 without torchrun)."""
    world = _env_int("WORLD_SIZE", 1)
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(f"RANK={rank} / WORLD_SIZE={world} / LOCAL_RANK={local} do not fit together: "
                          f"start with torchrun --nproc_per_node N -m lmcore train …")
    return Ranks(rank, world, local)


def _dist():
    import torch.distributed as dist

    return dist


def current() -> Ranks:
    """This process's rank among those training together (from the started process group)."""
    if not torch.distributed.is_available():
        return Ranks()
    dist = _dist()
    if not dist.is_initialized():
        return Ranks()
    return Ranks(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))


def setup() -> Ranks:
    """Start the process group when torchrun started several processes; a no-op otherwise."""
    ranks = from_env()
    if not ranks.active:
        return ranks
    if not torch.distributed.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed: train with one process (without torchrun)")
    dist = _dist()
    if dist.is_initialized():
        return current()
    if torch.cuda.is_available() and dist.is_nccl_available():
        backend = "cpu:gloo,cuda:nccl"  # small CPU messages (the stop flag) by gloo, the gradients by NCCL
    elif dist.is_gloo_available():
        backend = "gloo"
    else:
        raise ConfigError("torch.distributed has neither gloo nor NCCL here: train with one process")
    try:
        dist.init_process_group(backend, timeout=TIMEOUT)
    except (RuntimeError, ValueError) as exc:  # a rendezvous that failed, a port in use
        raise ConfigError(f"could not join the other {ranks.world - 1} processes "
                          f"({' '.join(str(exc).split())[:200]}): check torchrun's --rdzv-endpoint / "
                          f"--master-addr and --master-port") from None
    return current()


def teardown() -> None:
    """End the process group once every process is done with it (rank 0 may still be saving when the
    others finish: a process that tears gloo down under a busy peer was seen to abort, rarely)."""
    if torch.distributed.is_available() and _dist().is_initialized():
        try:
            _dist().barrier()
        except Exception:  # noqa: BLE001 - a peer already gone
            pass
        try:
            _dist().destroy_process_group()
        except Exception:  # noqa: BLE001 - a peer already gone: nothing left to end
            pass


def device_for(device: torch.device, ranks: Ranks) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` (one GPU per process) or the CPU."""
    if not ranks.active:
        return device
    if device.type == "cuda":
        n = torch.cuda.device_count()
        if ranks.local_rank >= n:
            raise ConfigError(f"process {ranks.local_rank} on this machine has no GPU of its own ({n} GPUs): "
                              f"start at most {n} processes per machine (torchrun --nproc_per_node {n})")
        torch.cuda.set_device(ranks.local_rank)
        return torch.device("cuda", ranks.local_rank)
    if device.type != "cpu":
        raise ConfigError(f"training with several processes runs on CUDA GPUs or the CPU, not {device.type}: "
                          f"use --device cuda or --device cpu")
    return device


def _cpu_group_device() -> torch.device:
    return torch.device("cpu")


def _lost(exc: BaseException) -> PeerFailed:
    return PeerFailed(f"lost contact with the other processes ({' '.join(str(exc).split())[:160]})")


def _broadcast(send) -> None:
    """Run rank 0's broadcast(s) in ``send``; a peer that went away is one PeerFailed line."""
    try:
        send()
    except RuntimeError as exc:
        raise _lost(exc) from None


def share_prepared(obj) -> None:
    """Rank 0: send what the run needs (or ``("error", message)``) to the other ranks."""
    _broadcast(lambda: _dist().broadcast_object_list([obj], src=0, device=_cpu_group_device()))


def receive_prepared():
    """Other ranks: what rank 0 sent with ``share_prepared``."""
    box = [None]
    _broadcast(lambda: _dist().broadcast_object_list(box, src=0, device=_cpu_group_device()))
    return box[0]


CHUNK = 1 << 28  # bytes per broadcast of the training ids


def _chunks(flat: torch.Tensor) -> None:
    for i in range(0, flat.numel(), CHUNK):
        _dist().broadcast(flat[i: i + CHUNK], src=0)


def share_tensor(t: torch.Tensor) -> None:
    """Rank 0: send a CPU tensor's bytes (its dtype and length went with ``share_prepared``)."""
    _broadcast(lambda: _chunks(t.detach().reshape(-1).contiguous().view(torch.uint8)))


def receive_tensor(dtype: torch.dtype, numel: int) -> torch.Tensor:
    """Other ranks: the tensor rank 0 sent with ``share_tensor``."""
    buf = torch.empty(numel * dtype.itemsize, dtype=torch.uint8)
    _broadcast(lambda: _chunks(buf))
    return buf.view(dtype)


def agree(stop: int, in_run: float) -> tuple[int, float]:
    """Every rank's (stop code, seconds of the run so far) → the largest of each, the same on every rank:
    one rank asked to stop (or out of time) stops them all at the same step, and every rank sees the same
    learning rate."""
    t = torch.tensor([float(stop), in_run], dtype=torch.float64)
    _dist().all_reduce(t, op=_dist().ReduceOp.MAX)
    return int(t[0]), float(t[1])


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean over ranks of a scalar tensor (on every rank)."""
    out = value.detach().clone()
    _dist().all_reduce(out, op=_dist().ReduceOp.SUM)
    return out / _dist().get_world_size()


def gather_rows(state, dim: int):
    """Every rank's rows of a state (a tensor or a tuple of tensors), joined along ``dim`` in rank order."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        parts = [torch.empty_like(state) for _ in range(_dist().get_world_size())]
        _dist().all_gather(parts, state.contiguous())
        return torch.cat(parts, dim)
    return tuple(gather_rows(s, dim) for s in state)


def take_rows(state, ranks: Ranks, batch_size: int, dim: int):
    """This rank's rows of a whole batch's state; None where the state is not of ``batch_size`` rows (a
    changed --batch: the state starts afresh)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        if state.dim() <= dim or state.shape[dim] != batch_size:
            return None
        b = batch_size // ranks.world
        return state.narrow(dim, ranks.rank * b, b).contiguous()
    parts = tuple(take_rows(s, ranks, batch_size, dim) for s in state)
    return None if any(p is None for p in parts) else parts
