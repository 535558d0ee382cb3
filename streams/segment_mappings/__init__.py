"""Package data: the built-in Segment mapping (``default.toml``), read by ``streams.segment``."""
