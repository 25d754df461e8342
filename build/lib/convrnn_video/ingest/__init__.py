"""Ingest: PNG video folders (or the synthetic generator) -> WebDataset shards + manifest."""
