"""One package per traced SDK; the only code in neatlogs that imports an SDK."""
