"""The errors the CLI and the TUI show to users as a single clear line: ``LmError`` and its kinds
(corpus, download, store, save, config, cancelled, lesson)."""


class LmError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""


class CorpusError(LmError):
    """A corpus cannot be found, fetched, verified or decoded."""


class DownloadError(CorpusError):
    """A registry corpus could not be downloaded. ``name`` is the corpus, ``reason`` says why in a few
    words ("no network connection (could not reach the server)", "HTTP 404 from …"), for a UI that
    words its own advice; the message is the whole line for the command line."""

    def __init__(self, message: str, name: str, reason: str) -> None:
        super().__init__(message)
        self.name = name
        self.reason = reason


class StoreError(LmError):
    """A model in the store is missing, damaged, locked or badly named."""


class SaveError(StoreError):
    """A checkpoint could not be written (full disk, unwritable folder); the previous one is kept."""


class Cancelled(LmError):
    """Work stopped because it was asked to (the user left, or asked for something else)."""


class NotFinite(LmError):
    """A model whose numbers are no longer finite (NaN or infinite scores or loss): damaged weights, or a
    training run that diverged. ``what``: what was found, in a few words (the message says what to do)."""

    def __init__(self, message: str, what: str = ""):
        super().__init__(message)
        self.what = what or message

    @classmethod
    def scores(cls) -> "NotFinite":
        """A model's output that is not a number anywhere: damaged weights or a diverged run."""
        what = "the model's output is not a number (NaN or infinite scores)"
        return cls(f"{what}: its weights are damaged or training diverged; train it again from its last good "
                   "checkpoint", what=what)


class ConfigError(LmError):
    """An option or hyper-parameter is out of range."""


class LessonError(LmError):
    """A lesson file that cannot be used, and why (lmcore.lessons)."""


def one_line(exc: BaseException) -> str:
    """An unexpected exception as one line: its type and its first 300 characters."""
    text = " ".join(str(exc).split())  # every line of it, on one
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
