"""The engines: run compiled EQL plans over documents, in batch or as a stream.

Public surface (docs/architecture.md): :func:`run_batch`, :class:`StreamingEngine`,
:class:`Match`, and :mod:`auditeql.engine.ordering` (``timestamp_ms``).
"""

from auditeql.engine.match import Match
from auditeql.engine.ordering import timestamp_ms, timestamp_ns
from auditeql.engine.runner import run_batch
from auditeql.engine.streaming import StreamingEngine

__all__ = ["Match", "run_batch", "StreamingEngine", "timestamp_ms", "timestamp_ns"]
