"""Calls the SDK sends elsewhere through `base_url` (Azure, OpenRouter, a local server) record that server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from neatlogs.openai import OpenAIProvider

from .conftest import OPENAI_KEY

HI = [{"role": "user", "content": "hi vendor"}]
API_VERSION = "2024-10-21"


def _http_module() -> Any:
    # openai 3.x sends through httpx2, earlier majors through httpx.
    probe = openai.OpenAI(api_key=OPENAI_KEY)
    base = next(cls for cls in type(probe._client).__mro__ if cls.__module__.startswith("httpx"))
    probe.close()
    return sys.modules[base.__module__.partition(".")[0]]


def _rerouted_client(fake_openai: Any, base_url: str) -> openai.OpenAI:
    """A client for `base_url` whose requests reach the fake server, as a DNS override would."""
    http = _http_module()
    port = int(fake_openai.url.rsplit(":", 1)[1])

    class Reroute(http.HTTPTransport):  # type: ignore[misc,name-defined]
        def handle_request(self, request: Any) -> Any:
            path = "/v1/" + request.url.path.split("/v1/", 1)[1]  # the fake serves the API under /v1
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=port, path=path)
            return super().handle_request(request)

    return openai.OpenAI(
        base_url=base_url, api_key=OPENAI_KEY, max_retries=0, http_client=http.Client(transport=Reroute())
    )


@pytest.fixture
def azure(fake_openai: Any) -> Iterator[openai.AzureOpenAI]:
    client = openai.AzureOpenAI(
        azure_endpoint=fake_openai.url,
        azure_deployment="prod-gpt4o",
        api_key=OPENAI_KEY,
        api_version=API_VERSION,
        max_retries=0,
    )
    yield client
    client.close()


def test_a_local_server_is_recorded_as_the_server(provider: OpenAIProvider, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="llama3", messages=HI)

    (record,) = provider.get_conversation_history()
    assert record["server_address"] == "127.0.0.1" and record["server_port"] == client.base_url.port
    assert record["provider"] == "openai" and record["provider_name"] is None  # an unknown vendor
    assert "azure_deployment" not in record


def test_an_azure_deployment_is_recorded_with_the_model_asked_for(
    provider: OpenAIProvider, azure: openai.AzureOpenAI, fake_openai: Any
) -> None:
    result = azure.chat.completions.create(model="gpt-4o", messages=HI)

    assert (
        fake_openai.requests[-1].path
        == f"/openai/deployments/prod-gpt4o/chat/completions?api-version={API_VERSION}"
    )
    (record,) = provider.get_conversation_history()
    assert record["provider_name"] == "azure.ai.openai"
    assert record["azure_deployment"] == "prod-gpt4o" and record["azure_api_version"] == API_VERSION
    assert record["model"] == "gpt-4o" and record["response_model"] == result.model
    assert record["server_address"] == "127.0.0.1"
    assert "api_key" not in str(record) and OPENAI_KEY not in str(record)


def test_azure_without_a_configured_deployment_routes_by_model(
    provider: OpenAIProvider, fake_openai: Any
) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=fake_openai.url, api_key=OPENAI_KEY, api_version=API_VERSION, max_retries=0
    )
    client.embeddings.create(model="embed-deployment", input="x")
    client.responses.create(model="responses-deployment", input="x")

    paths = [request.path.split("?")[0] for request in fake_openai.requests]
    assert paths == ["/openai/deployments/embed-deployment/embeddings", "/openai/responses"]
    embeddings, responses = provider.get_conversation_history()
    assert embeddings["azure_deployment"] == "embed-deployment" and embeddings["operation"] == "embeddings"
    assert responses["azure_deployment"] == "responses-deployment"
    assert responses["completion"]["content"] == "Echo: x"


async def test_async_azure_is_recorded_as_azure(provider: OpenAIProvider, fake_openai: Any) -> None:
    client = openai.AsyncAzureOpenAI(
        base_url=f"{fake_openai.url}/openai/deployments/async-dep",
        api_key=OPENAI_KEY,
        api_version=API_VERSION,
        max_retries=0,
    )
    stream = await client.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    (record,) = provider.get_conversation_history()
    assert record["provider_name"] == "azure.ai.openai" and record["azure_deployment"] == "async-dep"
    assert record["completion"]["content"] == text


@pytest.mark.parametrize(
    ("base_url", "vendor", "port"),
    [
        ("https://openrouter.ai/api/v1", "openrouter", 443),
        ("https://api.openai.com/v1", "openai", 443),
        ("https://my-team.openai.azure.com/openai/v1", "azure.ai.openai", 443),
        ("http://api.groq.com:8080/openai/v1", "groq", 8080),
    ],
)
def test_the_vendor_behind_base_url_is_recorded(
    provider: OpenAIProvider, fake_openai: Any, base_url: str, vendor: str, port: int
) -> None:
    client = _rerouted_client(fake_openai, base_url)
    result = client.chat.completions.create(model="some/model", messages=HI)
    client.close()

    (record,) = provider.get_conversation_history()
    assert record["provider_name"] == vendor and record["provider"] == "openai"
    assert record["server_address"] == base_url.split("/")[2].split(":")[0] and record["server_port"] == port
    assert record["completion"]["content"] == result.choices[0].message.content
