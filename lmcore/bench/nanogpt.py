"""``lmcore bench --nanogpt``: preset auto against a published recipe, on quality. The recipe a family
declares (``REFERENCE`` in its bench module: nanoGPT's CPU command, in lmcore/models/transformer/bench.py)
and ``--preset auto`` of each architecture asked for (by default the recipe's own) train one after the
other in the same process, on the same corpus (tinyshakespeare by default, its last 10% held out:
nanoGPT's split), each for the same wall-clock budget (``--minutes``, 5 by default); a row gives the best
validation loss of each, on the whole held-out tail, and their ratio (the reference's over auto's: above
1, auto is better), which holds on any machine.

What differs from nanoGPT's own run: its cosine decay spans 2000 iterations; here it spans the budget
(the trainer's schedule follows the time given; 2000 of nanoGPT's iterations took about 71 s on the 2-core
CPU), and a budget shorter than that ends before the decay does; the model keeps the biases of its linear
layers and LayerNorms (nanoGPT's config has none); nanoGPT estimates the loss on 20 random batches, here
the whole tail is evaluated every 250 iterations and at the end, that time counting in the budget."""
from __future__ import annotations

import math
from pathlib import Path

from ..errors import ConfigError
from ..models import family
from ..store.model_store import Store
from ..training.config import TrainConfig
from ..training.spec import RunSpec
from ..training.trainer import Trainer
from . import plan as planning

DEFAULT_MINUTES = 5.0
DEFAULT_CORPUS = "tinyshakespeare"  # nanoGPT's shakespeare_char


def best_loss(bench, name: str, arch: str, preset: str, options: dict | None, train: dict,
              minutes: float) -> tuple[float, str]:
    """The best validation loss of one run of ``minutes`` on the bench's corpus (inf: never evaluated), and
    preset auto's line (what it chose and why; "" for a fixed preset)."""
    cfg = TrainConfig(minutes=minutes, device=str(bench.device), sample_tokens=0, eval_tokens=0, **train)
    spec = RunSpec.new(name, str(bench.corpus_path), arch=arch, preset=preset, options=options, train=cfg)
    trainer = Trainer(Store(Path(bench.tmp.name) / "nanogpt"), name).prepare(spec)
    done = trainer.run()
    if done.kind != "done":
        raise ConfigError(f"the {name} run failed: {getattr(done, 'message', done.kind)}")
    loss = done.best_val_loss
    return (loss if loss is not None and math.isfinite(loss) else math.inf), trainer.prepared.auto_note


def check(archs: list[str] | None, minutes: float) -> tuple[str, dict, list[str]]:
    """The reference's architecture and recipe, and the architectures to train at preset auto; ConfigError
    for a budget that is not a positive number of minutes or an architecture without gradients."""
    if not minutes > 0 or not math.isfinite(minutes):
        raise ConfigError(f"--minutes must be a number of minutes > 0 (got {minutes:g})")
    found = planning.reference_recipe()
    if found is None:
        raise ConfigError("no model family declares a reference recipe to train beside preset auto")
    ref_arch, recipe = found
    for arch in archs or ():
        if not family(arch).trainable:  # ConfigError for an unknown one
            raise ConfigError(f"{arch} is trained by counting, in one pass: it has no preset auto to compare")
    return ref_arch, recipe, list(archs or [ref_arch])


def against_reference(bench, archs: list[str] | None, minutes: float = DEFAULT_MINUTES) -> list[dict]:
    """The fields of a ``quality`` row (speed.Row) for each of ``archs`` at preset auto against the published
    recipe, all trained for ``minutes`` on ``bench``'s corpus and device (a speed.Bench)."""
    ref_arch, recipe, archs = check(archs, minutes)
    ours = {arch: best_loss(bench, f"auto-{i}", arch, "auto", None, {}, minutes) for i, arch in enumerate(archs)}
    ref, _ = best_loss(bench, "reference", ref_arch, "small", recipe["model"], recipe["train"], minutes)
    return [dict(bench="quality", arch=arch, impl="fused", preset="auto", device=bench.device.type, value=loss,
                 unit=f"best val loss in {minutes:g} min", reference=ref,
                 ratio=ref / loss if math.isfinite(ref) and math.isfinite(loss) and loss > 0 else None,
                 against=f"{recipe['name']}, trained as long", chose=line) for arch, (loss, line) in ours.items()]
