"""`smart mcp` driven by the MCP SDK's own client: the tools and their schemas, each tool called,
`search` ranked as `smart search` ranks, the HTTP transport behind its token, and nothing but
JSON-RPC on stdout while the server indexes and warns."""

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import asynccontextmanager

import anyio
import pytest

from tests.conftest import ROOT, run_smart, run_smart_process
from tests.corpus import make_pdf

pytest.importorskip("mcp.server.mcpserver")

from mcp.client import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
QUERIES = ["how do I change the default terminal", "which wifi channel avoids interference", "feeding a sourdough starter"]
TOOLS = {"search", "get_page", "similar", "status"}


@asynccontextmanager
async def session(command: str, args: list[str], errlog=sys.stderr):
    params = StdioServerParameters(command=command, args=args, env=ENV, cwd=str(ROOT))
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        yield client


def smart_mcp(*args) -> tuple[str, list[str]]:
    return sys.executable, ["-m", "smartcli", "mcp", *map(str, args)]


async def call(client, tool: str, arguments: dict) -> dict:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


def assert_same_ranking(got: list[dict], expected: list[dict]) -> None:
    """The same pages in the same order, with the same scores (a warm index sums in another order: within 1e-5)."""
    assert [(r["path"], r["page"]) for r in got] == [(r["path"], r["page"]) for r in expected]
    for mine, theirs in zip(got, expected):
        assert [mine["score"], mine["anchor"], mine["late"]] == pytest.approx([theirs["score"], theirs["anchor"], theirs["late"]], abs=1e-5)


def test_the_sdk_client_lists_every_tool_calls_each_and_search_ranks_as_smart_search(sample_store):
    store, corpus = sample_store
    expected = {q: json.loads(run_smart("search", q, "--store", store, "--json", "-k", "5", check=True).stdout) for q in QUERIES}
    guide = str(corpus / "manuals" / "terminal-guide.pdf")
    like = json.loads(run_smart("search", "--like", f"{guide}:2", "--store", store, "--json", "-k", "3", check=True).stdout)
    status = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)

    async def scenario():
        async with session(*smart_mcp("--store", store)) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == TOOLS
            search = tools["search"].input_schema
            assert set(search["properties"]) == {"query", "k", "mode", "path_prefix", "glob", "kind"}
            assert search["required"] == ["query"]
            assert search["properties"]["k"]["maximum"] == 50 and search["properties"]["query"]["description"]
            assert tools["get_page"].input_schema["required"] == ["path"]
            cited = tools["search"].output_schema["$defs"]["Citation"]
            assert {"path", "page", "score", "snippet", "uri"} <= set(cited["required"])
            assert {"store", "pages", "updated", "pending"} <= set(tools["status"].output_schema["properties"])

            for query in QUERIES:
                answer = await call(client, "search", {"query": query, "k": 5})
                assert_same_ranking(answer["results"], expected[query]["results"])
                for hit in answer["results"]:
                    assert hit["uri"] == f"file://{hit['path']}#page={hit['page']}" and hit["snippet"]

            only = await call(client, "search", {"query": QUERIES[0], "kind": "image", "k": 3})
            assert all(hit["kind"] == "image" and "#page=" not in hit["uri"] for hit in only["results"])
            scoped = await call(client, "search", {"query": QUERIES[0], "path_prefix": str(corpus / "hobbies"), "glob": "*.pdf"})
            assert scoped["results"] and all(hit["path"].startswith(str(corpus / "hobbies")) for hit in scoped["results"])

            page = await call(client, "get_page", {"path": guide, "page": 2})
            assert (page["path"], page["page"], page["previous"], page["next"], page["pages"]) == (guide, 2, 1, 3, 3)
            assert page["uri"] == f"file://{guide}#page=2" and "bashrc" in page["text"] and not page["truncated"]
            first = await call(client, "get_page", {"path": "terminal-guide.pdf", "page": 1})  # a unique file name names it
            assert (first["path"], first["previous"], first["next"]) == (guide, None, 2)

            similar = await call(client, "similar", {"path": guide, "page": 2, "k": 3})
            assert similar["like"] == {"path": guide, "page": 2, "uri": f"file://{guide}#page=2"}
            assert_same_ranking(similar["results"], like["results"])

            told = await call(client, "status", {})
            assert told["pages"] == status["encoded_items"] and told["roots"] == status["roots"]
            assert told["files"] == sum(status["files"].values()) and told["watching"] is False and told["updated"]

            missing = await client.call_tool("get_page", {"path": str(corpus / "nothing.pdf"), "page": 1})
            assert missing.is_error and "not in the index" in missing.content[0].text
            empty = await client.call_tool("search", {"query": "   "})
            assert empty.is_error and "empty" in empty.content[0].text
            bad = await client.call_tool("search", {"query": "terminal", "k": 500})
            assert bad.is_error

    anyio.run(scenario)


def start_http_server(store, *extra) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "smartcli", "mcp", "--store", str(store), "--transport", "http", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=ENV,
    )
    for line in process.stderr:
        found = re.search(r"over MCP at (http://\S+) \(Ctrl-C stops\)", line)
        if found:
            return process, found.group(1)
    raise AssertionError(f"smart mcp --transport http ended: {process.wait()}")


def post_initialize(url: str, headers: dict) -> int:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_http_transport_refuses_a_request_without_the_token(sample_store):
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    store, _ = sample_store
    process, url = start_http_server(store, "--token", "open-sesame")
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        assert post_initialize(url, {}) == 401
        assert post_initialize(url, {"Authorization": "Bearer open-sesam"}) == 401
        assert post_initialize(url, {"Authorization": "Basic open-sesame"}) == 401
        assert post_initialize(url, {"Authorization": "Bearer open-sesame"}) == 200
        # DNS rebinding: a page elsewhere that resolves its name to 127.0.0.1 is refused even with the token.
        assert post_initialize(url, {"Authorization": "Bearer open-sesame", "Host": "evil.example:80"}) >= 400

        async def scenario():
            async with (
                create_mcp_http_client(headers={"Authorization": "Bearer open-sesame"}) as http,
                streamable_http_client(url, http_client=http) as (read, write, *_),
                ClientSession(read, write) as client,
            ):
                await client.initialize()
                assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
                answer = await call(client, "search", {"query": QUERIES[0], "k": 1})
                assert answer["results"][0]["path"].endswith("terminal-guide.pdf")

        anyio.run(scenario)
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0


def test_nothing_but_json_rpc_reaches_stdout_while_the_server_indexes_and_warns(tmp_path):
    folder, store = tmp_path / "docs", tmp_path / "store"
    folder.mkdir()
    make_pdf(folder / "first.pdf", ["a lantern by the harbor"])
    run_smart("index", folder, "--store", store, "--ocr", "never", check=True)
    wire, errors = tmp_path / "stdout.jsonl", tmp_path / "stderr.txt"
    # The client reads the server's stdout through tee, which keeps a copy of every byte of it.
    command = f"{shlex.quote(sys.executable)} -m smartcli mcp --store {shlex.quote(str(store))} --watch | tee {shlex.quote(str(wire))}"

    async def scenario():
        with errors.open("w") as errlog:
            async with session("sh", ["-c", command], errlog=errlog) as client:
                deadline = time.monotonic() + 240
                while not (await call(client, "status", {}))["watching"]:
                    assert time.monotonic() < deadline
                    await anyio.sleep(0.2)
                (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF at all")  # the indexer warns
                make_pdf(folder / "fresh.pdf", ["an umbrella in the quarry"])
                while True:
                    answer = await call(client, "search", {"query": "umbrella quarry", "k": 1})
                    if answer["results"][0]["path"] == str(folder / "fresh.pdf"):
                        break
                    assert time.monotonic() < deadline, errors.read_text()
                    await anyio.sleep(0.5)
                told = await call(client, "status", {})
                assert told["watching"] and told["last_change"]["cause"] == "events" and told["pages"] == 2
                long = await call(client, "search", {"query": "lantern " * 2000, "k": 1})  # cut, with a warning
                assert long["results"]

    anyio.run(scenario)
    lines = wire.read_text().splitlines()
    assert lines and all(json.loads(line)["jsonrpc"] == "2.0" for line in lines), lines[:5]
    said = errors.read_text()
    assert "broken.pdf" in said and "added" in said and "cut" in said


def test_smart_mcp_without_a_store_says_so_and_exits_4(tmp_path):
    result = run_smart_process("mcp", "--store", tmp_path / "nothing-here")
    assert result.returncode == 4 and "no index at" in result.stderr and not result.stdout
    assert run_smart("mcp", "--transport", "carrier-pigeon").returncode == 2
