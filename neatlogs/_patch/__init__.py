"""Provider-specific wrappers: what to read from a call; never any network or export logic."""
