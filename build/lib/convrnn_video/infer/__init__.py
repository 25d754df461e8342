"""Inference: checkpoint + shards -> Zarr predictions -> PNG export, evaluation, pictures.

Kept light on purpose: importing `infer` (or `infer.config`) does not import torch or zarr.
"""
