"""The one error type of the shards stage."""


class ShardError(Exception):
    """A manifest or shard that cannot be read as promised (names the shard, key or manifest)."""
