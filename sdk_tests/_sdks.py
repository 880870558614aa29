"""What differs between the SDKs whose test-suites run here: one description per SDK, nothing else.

Everything else (download, selection rule, the two runs, the comparison) is the same for every SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sdk:
    """One SDK whose own test-suite `run.py` runs without and with neatlogs."""

    name: str
    """The distribution on the package index, its import name and neatlogs' `provider` in its records."""
    stripped_env: tuple[str, ...]
    """Prefixes of environment variables that would point the tests at a real API or send records away."""
    kept_env: tuple[str, ...] = ()
    """Prefixes among those that are the SDK's own test switches and pass through."""
    pytest_args: tuple[str, ...] = ()
    """What the SDK's `addopts` hold that its tests need (the harness drops `addopts`: its `-n auto`)."""
    selected: tuple[str, ...] = ("tests",)
    """Paths or globs relative to the unpacked sdist (a directory: all below it) whose test files run."""
    unselected: str = ""
    """Why the test files outside `selected` are left out."""
    excluded: dict[str, str] = field(default_factory=dict)
    """Path or glob relative to the unpacked sdist (a directory: all below it) -> why it is left out."""


_PRISM = "calls the Prism mock server of the OpenAPI spec on 127.0.0.1:4010"
_ALWAYS_STRIPPED = ("NEATLOGS_", "OTEL_")

OPENAI = Sdk(
    name="openai",
    stripped_env=(*_ALWAYS_STRIPPED, "OPENAI_", "AZURE_OPENAI_"),
    kept_env=("OPENAI_TEST_",),
    excluded={
        "tests/api_resources": _PRISM,
        "tests/lib/test_fine_tuning_positional_arguments.py": "calls the Prism mock server on 127.0.0.1:4010",
        "tests/test_uv_workflows.py": (
            "packaging policy: needs uv, CI=true and GitHub workflows the sdist lacks"
        ),
        "tests/lib/test_microphone.py": "needs sounddevice and the PortAudio system library",
        # These start fresh interpreters (import-time checks, the example scripts), where neatlogs is not
        # active, and take most of a run's time.
        "tests/test_lazy_imports.py": "subprocesses only: what a fresh `import openai` loads",
        "tests/lib/test_realtime_example_keepalive.py": "subprocesses only: the realtime example scripts",
        "tests/test_mtls_http_client.py": "subprocesses only: runs the mTLS example scripts",
        # Certificates and workload identity at the transport, below every method neatlogs wraps.
        "tests/test_tls_hostname.py": "TLS transport only",
        "tests/test_x509_*.py": "X.509 workload identity at the transport only",
    },
)

ANTHROPIC = Sdk(
    name="anthropic",
    stripped_env=(*_ALWAYS_STRIPPED, "ANTHROPIC_", "AWS_", "GOOGLE_", "CLOUD_ML_"),
    # Its respx mocks `httpx`; this plugin makes `import httpx` load httpx2, the SDK's HTTP client.
    pytest_args=("-p", "tests._alias_httpx"),
    # Its suite is large (7,500 tests outside tests/api_resources, most of them on agent toolsets,
    # environments and helpers that never call the API), so the files that call the Messages API
    # through a client, where neatlogs wraps, run: a new file in these directories is picked up. Of the
    # cloud clients, Bedrock and Vertex stand for the others (AWS, Azure, Bedrock Mantle: the same
    # resource classes behind other auth), and test_runners.py for the threaded tool runner, to keep
    # the CI time small.
    selected=(
        "tests/test_client.py",
        "tests/test_streaming.py",
        "tests/test_response.py",
        "tests/test_middleware.py",
        "tests/test_tracing.py",
        "tests/lib/streaming",
        "tests/lib/_parse",
        "tests/lib/test_bedrock.py",
        "tests/lib/test_vertex.py",
        "tests/lib/test_refusal_fallback*.py",
        "tests/lib/test_stainless_helpers.py",
        "tests/lib/test_output_format_helpers.py",
        "tests/lib/tools/test_runner*.py",
    ),
    unselected="calls no Messages API method through a client (toolsets, environments, helpers, models)",
    # Files that do call the Messages API but stay out, each with its reason (checked before `selected`).
    excluded={
        "tests/api_resources": _PRISM,
        "tests/test_open_telemetry.py": "the SDK's own OpenTelemetry spans: 886 tests, 40 % of the time",
        "tests/lib/tools/test_open_telemetry.py": "the SDK's own OpenTelemetry spans around its tool runner",
        "tests/lib/test_aws.py": "CI time: the AWS client, Bedrock's resource classes behind SigV4",
        "tests/lib/test_azure.py": "CI time: the Azure client, the same resource classes behind Azure auth",
        "tests/lib/test_bedrock_mantle.py": "CI time: Bedrock Mantle, the same resource classes",
        "tests/lib/test_google_cloud.py": "CI time: the Google Cloud client, Vertex's resource classes",
        "tests/lib/test_google_cloud_live.py": "calls the real Google Cloud API (ANTHROPIC_LIVE=1)",
        "tests/lib/test_credentials.py": "CI time: 470 tests of credential resolution when a client is made",
        "tests/lib/test_client_copy.py": "CI time: client.copy(), then the calls test_client.py makes",
        "tests/lib/threads": "CI time: threads and the threaded tool runner, over test_runners.py's calls",
    },
)

SDKS: dict[str, Sdk] = {sdk.name: sdk for sdk in (OPENAI, ANTHROPIC)}
