"""scale layer (see docs/architecture.md)."""
