"""Training: the config and presets, the loop, a run's state and resume, run folders, distributed
training, experiment tracking and guidance distillation."""
