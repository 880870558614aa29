"""The OpenTelemetry sink: GenAI spans and metrics, built in the background from finished records."""
