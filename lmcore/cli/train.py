"""``lmcore train``: train a new model or continue a saved one (--resume), also as one of several
processes under torchrun."""
from __future__ import annotations

import argparse
import threading

from .model_options import add_model_options, model_options_given, model_overrides
from .train_output import HumanRender, JsonRender, OtherRank, PrepareProgress, StopSignals


def add_parser(sub) -> None:
    from ..data.bpe import DEFAULT_VOCAB_SIZE
    from ..data.text import LEVELS, PREPS
    from ..training.config import SAMPLINGS

    t = sub.add_parser("train", help="train a new model or continue one (--resume)")
    t.set_defaults(handler=cmd_train_ranks)
    t.add_argument("name", help="model name (letters, digits, . _ -)")
    add_model_options(t)
    t.add_argument("--corpus", help="registry name or path of a text file or folder")
    t.add_argument("--encoding", help="text encoding of a local corpus (default utf-8)")
    t.add_argument("--prep", choices=PREPS)
    t.add_argument("--tokens", choices=LEVELS, help="char, word or bpe (byte-level subwords learnt from the text)")
    t.add_argument("--vocab-size", type=int, help=f"tokens of a bpe vocabulary (default {DEFAULT_VOCAB_SIZE})")
    t.add_argument("--sampling", choices=SAMPLINGS)
    t.add_argument("--steps", type=int, help="steps to train (with --resume: steps more)")
    t.add_argument("--minutes", type=float, help="time budget (with --resume: minutes more)")
    t.add_argument("--batch", type=int)
    t.add_argument("--seq-len", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--optimizer", choices=("adamw", "sgd"))
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--clip", type=float, help="gradient-norm clipping (0: off)")
    t.add_argument("--warmup", type=int)
    t.add_argument("--eval-every", type=int)
    t.add_argument("--eval-tokens", type=int, help="validate on at most this many tokens (default: the whole "
                   "validation split, at most 1,000,000)")
    t.add_argument("--fill-eval", action=argparse.BooleanOptionalAction, default=None,
                   help="measure fill accuracy (top-1/top-5 on fixed blanks of the validation text) at each "
                   "evaluation; default: on for models that read both sides of a blank (birnn), off for "
                   "forward models, which fill by scoring 100 candidates a blank (slower)")
    t.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--threads", default=None, metavar="N|auto",
                   help="CPU threads (default auto: the cores other programs leave free, looked at again while training)")
    t.add_argument("--seed", type=int)
    t.add_argument("--resume", action="store_true",
                   help="continue a saved model: its interrupted run, or --steps/--minutes more")
    t.add_argument("--json", action="store_true", help="one JSON object per event")


def _train_config(args):
    from ..training.config import TrainConfig

    return TrainConfig(steps=args.steps, minutes=args.minutes, batch_size=args.batch, seq_len=args.seq_len,
                       lr=args.lr, optimizer=args.optimizer, clip=args.clip, warmup=args.warmup,
                       eval_every=args.eval_every, sampling=args.sampling, device=args.device,
                       compile=args.compile or None, seed=args.seed, eval_tokens=args.eval_tokens,
                       weight_decay=args.weight_decay, fill_eval=args.fill_eval)


def run_spec(args):
    """The RunSpec of a parsed ``lmcore train`` command line."""
    from ..errors import ConfigError
    from ..training.spec import RunSpec

    train = _train_config(args).validate()
    if args.resume:
        fixed = model_options_given(args) + [f"--{k.replace('_', '-')}" for k in ("prep", "tokens", "vocab_size")
                                             if getattr(args, k) is not None]
        if fixed:
            raise ConfigError(f"{', '.join(fixed)} cannot change a saved model: --resume continues "
                              f"'{args.name}' as it was built (train a new model to change it)")
        return RunSpec.continued(args.name, corpus=args.corpus, encoding=args.encoding, train=train,
                                 threads=args.threads)
    if not args.corpus:
        raise ConfigError("a new model needs --corpus NAME|PATH (e.g. --corpus pythondocs)")
    return RunSpec.new(args.name, args.corpus, arch=args.arch, preset=args.preset, options=model_overrides(args),
                       tokens=args.tokens, prep=args.prep, vocab_size=args.vocab_size, encoding=args.encoding,
                       train=train, threads=args.threads)


def cmd_train(args) -> int:
    from ..errors import Cancelled, LmError
    from ..events import DoneEvent, FailedEvent
    from ..store.model_store import Store
    from ..training.trainer import Trainer, stopped_before_start

    from ..training import distributed

    ranks = distributed.current()  # under torchrun only process 0 reports; the others print their errors
    if ranks.main:
        render = JsonRender(args.name) if args.json else HumanRender(args.name)
    else:
        render = OtherRank(ranks.rank)
    stop = threading.Event()
    bar = PrepareProgress(ranks.main and not args.json)
    try:
        store = Store(args.home)
        spec = run_spec(args)
        trainer = Trainer(store, args.name, render, stop)
        with StopSignals(stop, args.json, echo=ranks.main):
            trainer.prepare(spec, progress=bar)
            bar.close()
            result = trainer.run()
    except Cancelled:
        result = stopped_before_start(render)
    except LmError as exc:
        result = FailedEvent(str(exc), 0)
        render(result)
        if isinstance(exc, distributed.PeerFailed) and not ranks.main:
            render.quiet = True  # process 0 says why
    finally:
        bar.close()
        render.close()
    if isinstance(result, DoneEvent):
        return render.summary(result, store)
    render.summary(result, None)
    return 1


def cmd_train_ranks(args) -> int:
    """``train``, also as one of several processes started by torchrun (DistributedDataParallel): the
    process group starts first and ends last; without torchrun this is ``cmd_train``."""
    from ..training import distributed

    distributed.setup()
    try:
        return cmd_train(args)
    finally:
        distributed.teardown()
