"""Training: the trainer, the run's preparation and recipe, evaluation, the clock, threads, DDP."""
