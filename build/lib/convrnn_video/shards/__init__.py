"""Shards: the WebDataset sample format, the manifest, and streaming loaders over them."""
