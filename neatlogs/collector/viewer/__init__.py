"""The viewer: HTML pages over the collector's store (docs/viewer.md)."""
