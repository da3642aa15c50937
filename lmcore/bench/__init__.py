"""``lmcore bench``: plan.py (which rows, asked of the families), speed.py (our trainer and generator
against plain PyTorch references), startup.py (how long the command line and the app take to start)."""
