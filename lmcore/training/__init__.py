"""Training: trainer.py, spec.py (RunSpec), config.py (TrainConfig), prepare.py, loop.py with job, control,
reporting, eval_and_save, saving, optimizer and counting; evaluation.py, clock.py, threads.py, distributed.py."""
