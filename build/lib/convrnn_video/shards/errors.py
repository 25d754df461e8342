"""The one error type of the shards stage."""

from convrnn_video.errors import PipelineError


class ShardError(PipelineError):
    """A manifest or shard that cannot be read as promised (names the shard, key or manifest)."""
