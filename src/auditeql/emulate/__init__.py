"""emulate layer (see docs/architecture.md)."""
