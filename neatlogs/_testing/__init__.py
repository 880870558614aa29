"""Test helpers shipped with neatlogs: offline fakes for the demo, the examples and the test-suite."""
