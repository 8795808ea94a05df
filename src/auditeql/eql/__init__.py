"""eql layer (see docs/architecture.md)."""
