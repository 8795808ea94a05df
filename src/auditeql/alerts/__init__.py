"""alerts layer (see docs/architecture.md)."""
