"""The training stage: loop, checkpoints, resume, DDP, metrics log (see train/loop.py).

Kept light on purpose: importing `train` or `train.config` does not import torch.
"""
