"""Files that lmplay ships: the corpus registry, default settings and the TUI styles."""
