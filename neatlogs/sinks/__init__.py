"""Where finished records go: history, statistics, exporter, OpenTelemetry. No sink imports a provider."""
