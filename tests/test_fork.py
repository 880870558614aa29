"""A forked child (gunicorn, multiprocessing) traces, counts and keeps its own calls."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs._testing.fake_openai import FakeOpenAI
from neatlogs.openai import OpenAIProvider


def _ask(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_forked_child_delivers_and_counts_its_own_calls_and_the_parent_goes_on(
    make_provider: Callable[..., OpenAIProvider], fake_openai: FakeOpenAI
) -> None:
    provider = make_provider()
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)
    _ask(client)
    assert len(provider.get_conversation_history()) == 1  # delivered before the fork
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's dispatcher thread does not exist here
        code = 1
        try:
            child = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)
            _ask(child)
            _ask(child)
            found = {
                "history": len(provider.get_conversation_history()),
                "counted": neatlogs.stats()["usage"]["calls"],
            }
            os.write(write_end, json.dumps(found).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        found = json.loads(pipe.read() or "{}")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the child's history holds the parent's delivered call and its own two; its statistics count
    # only its own calls
    assert found == {"history": 3, "counted": 2}
    _ask(client)
    assert len(provider.get_conversation_history()) == 2  # the parent's dispatcher still works
