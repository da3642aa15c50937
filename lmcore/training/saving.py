"""The run's checkpoints: what one holds, writing it with the state a run continues from, and reading
that state back."""
from __future__ import annotations

import torch

from . import distributed
from ..device import describe
from ..errors import StoreError, one_line
from ..models import LanguageModel
from ..store.checkpoint import Checkpoint
from ..store.model_store import Store, clean_state_keys
from .clock import RunClock
from .config import TrainConfig
from .distributed import Ranks
from .prepare import PreparedRun

#: the batch dimension of a recurrent model's state: (layers, batch, hidden), or a tuple of such tensors
STATE_BATCH_DIM = 1


def state_to(state, device):
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.to(device)
    return tuple(s.to(device) for s in state)


class Saver:
    """Writes one model's checkpoints and keeps count: the last step trained and the last step saved, which
    a failure reports ("the checkpoint of step 400 is kept")."""

    def __init__(self, store: Store, name: str):
        self.store, self.name = store, name
        self.step = 0                       # the last step trained
        self.saved_step: int | None = None  # the step of the last checkpoint this run saved

    def save(self, ck: Checkpoint, weights, resume: dict | None) -> None:
        self.store.save(self.name, ck, weights, resume)
        self.saved_step = ck.step

    def kept(self, run: PreparedRun) -> str:
        if self.saved_step is not None:
            return f" (the checkpoint of step {self.saved_step:,} is kept)"
        if run.saved is not None:
            return f" (the checkpoint of step {run.step0:,} is kept)"
        return " (nothing was saved)"


def checkpoint_for(run: PreparedRun, params: int, unigram: float, ranks: Ranks) -> Checkpoint:
    """The checkpoint this run saves: the one it continues (read under the lock: this run's to change)
    or a new one."""
    if run.saved is not None:
        ck = run.saved
    else:
        ck = Checkpoint(name=run.name, model=run.model_cfg, train=run.cfg, tokenizer=run.tokenizer,
                        vocab=run.vocab, corpus=run.corpus, preset=run.preset, auto=run.auto_note)
    ck.model, ck.train, ck.corpus = run.model_cfg, run.cfg, run.corpus
    ck.run_start_step, ck.run_start_elapsed = run.run_start_step, run.run_start_elapsed
    ck.params, ck.device, ck.unigram_val_loss = params, describe(run.device), unigram
    if ranks.active:
        ck.device = f"{ranks.world} x {ck.device}"
    return ck


def resume_state(step: int, model: LanguageModel, opt: torch.optim.Optimizer, cfg: TrainConfig,
                 device: torch.device, whole_carry, clock: RunClock) -> dict:
    """What continuing exactly needs: the latest weights, the optimizer, the RNGs, the carried state."""
    return {"step": step, "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "optim": opt.state_dict(), "optimizer": cfg.optimizer, "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
            "carry": state_to(whole_carry, "cpu"),
            "elapsed": clock.elapsed()}


def load_weights(model: LanguageModel, rs: dict, name: str) -> None:
    """The resume state's latest weights into ``model``; a state that does not fit is a damaged model."""
    try:
        model.load_weights(clean_state_keys(rs["model"]))
    except (RuntimeError, KeyError, TypeError) as exc:
        raise StoreError(f"model '{name}': its resume state does not fit the model ({one_line(exc)[:200]}): "
                         f"it is damaged; the model still generates, or train a new one") from None


def restore_training(opt: torch.optim.Optimizer, rs: dict | None, cfg: TrainConfig,
                     device: torch.device) -> None:
    """The optimizer (when it is the same kind) and the RNGs of the resume state."""
    if not rs:
        return
    if rs.get("optimizer", cfg.optimizer) == cfg.optimizer and rs.get("optim"):
        opt.load_state_dict(rs["optim"])
    torch.set_rng_state(rs["rng"])
    if device.type == "cuda" and rs.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(rs["cuda_rng"])


def saved_carry(rs: dict | None, device: torch.device, ranks: Ranks, batch_size: int):
    """The carried state to continue from: a saved state holds the whole batch (every rank's rows), this
    process continues its own."""
    if not rs:
        return None
    return distributed.take_rows(state_to(rs.get("carry"), device), ranks, batch_size, STATE_BATCH_DIM)
