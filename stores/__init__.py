"""The Zarr stores: predictions (what `predict` writes) and labels (what `label` writes and the
masks trainer reads). The data floor: both drivers read and write them, neither owns them."""
