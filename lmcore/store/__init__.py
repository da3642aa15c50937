"""The store: model folders, the checkpoint format, typed reading of untrusted files, atomic files."""
