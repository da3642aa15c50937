"""The one exception type the CLI and the TUI show to users as a single clear line."""


class LmError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""


class CorpusError(LmError):
    """A corpus cannot be found, fetched, verified or decoded."""


class StoreError(LmError):
    """A model in the store is missing, damaged, locked or badly named."""


class SaveError(StoreError):
    """A checkpoint could not be written (full disk, unwritable folder); the previous one is kept."""


class Cancelled(LmError):
    """Work stopped because it was asked to (the user left, or asked for something else)."""


class ConfigError(LmError):
    """An option or hyper-parameter is out of range."""
