"""What every provider shares: patch sets, call and stream wrappers, the provider base class."""
