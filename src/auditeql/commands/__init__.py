"""commands layer (see docs/architecture.md)."""
