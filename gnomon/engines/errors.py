"""The one exception type of gnomon.engines: its message says what failed and what to do."""


class EngineError(RuntimeError):
    """An engine could not be resolved, started, reached or stopped. The message is meant for a human."""
