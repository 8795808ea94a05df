"""audit layer (see docs/architecture.md)."""
