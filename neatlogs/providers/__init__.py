"""The SDK-specific layer: one package per traced SDK; only this layer imports an SDK."""
