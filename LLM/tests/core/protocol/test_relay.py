"""The endpoint's relay: HTTP/1.1 chunked bodies decoded for any split (pure), and the bare connection's answers,
silences and refusals against real sockets."""

from __future__ import annotations

import asyncio

import pytest

from LLM.core.errors import BackendConnectionError, BackendTimeoutError
from LLM.core.protocol.relay import Dechunker, Relay
from LLM.tests.fakes.handle import FakeServerHandle, free_port

BODY = b"data: one\n\ndata: two\n\n"
CHUNKED = b"b\r\ndata: one\n\n\r\nB;ext=1\r\ndata: two\n\n\r\n0\r\n\r\n"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, len(CHUNKED)])
def test_relay_dechunker_gives_the_body_for_any_split(size):
    decoder = Dechunker()
    out = b"".join(decoder.feed(CHUNKED[i:i + size]) for i in range(0, len(CHUNKED), size))
    assert out == BODY and decoder.done


def test_relay_dechunker_stops_at_the_last_chunk():
    decoder = Dechunker()
    assert decoder.feed(b"3\r\nabc\r\n0\r\n\r\n3\r\nxyz\r\n") == b"abc" and decoder.done


async def _answer_once(reply: bytes, hold_s: float = 0.0) -> tuple[int, asyncio.AbstractServer]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await asyncio.sleep(hold_s)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server.sockets[0].getsockname()[1], server


def test_relay_reads_chunked_sized_and_unsized_answers():
    async def go():
        results = []
        for reply in (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + CHUNKED,
                      b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!extra",
                      b"HTTP/1.0 200 OK\r\n\r\n" + BODY):
            port, server = await _answer_once(reply)
            async with server:
                answer = await Relay().open(f"http://127.0.0.1:{port}", "/v1/x", b"{}", api_key=None,
                                            connect_timeout_s=5, read_timeout_s=5)
                results.append((answer.status, answer.content_type, await answer.read()))
                await answer.aclose()
        return results

    assert asyncio.run(go()) == [(200, "text/event-stream", BODY), (404, "application/json", b"nope!"),
                                 (200, "application/json", BODY)]


def test_relay_a_silent_server_is_a_read_timeout_and_a_cut_stream_a_dropped_connection():
    async def go():
        port, server = await _answer_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwait\r\n", hold_s=3)
        async with server:
            answer = await Relay().open(f"http://127.0.0.1:{port}", "/", b"{}", api_key=None, connect_timeout_s=5,
                                        read_timeout_s=0.3)
            got = []
            with pytest.raises(BackendTimeoutError, match="nothing for 0.3 s"):
                async for chunk in answer.chunks():
                    got.append(chunk)
            await answer.aclose()
        port, server = await _answer_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ncut!")
        async with server:
            answer = await Relay().open(f"http://127.0.0.1:{port}", "/", b"{}", api_key=None, connect_timeout_s=5,
                                        read_timeout_s=5)
            with pytest.raises(BackendConnectionError, match="dropped mid-answer"):
                await answer.read()
        return got

    assert asyncio.run(go()) == [b"wait"]


def test_relay_nothing_listening_is_a_connection_error():
    port = free_port()

    async def go():
        with pytest.raises(BackendConnectionError, match=f"cannot connect to http://127.0.0.1:{port}/v1/chat"):
            await Relay().open(f"http://127.0.0.1:{port}", "/v1/chat", b"{}", api_key=None, connect_timeout_s=2,
                               read_timeout_s=2)

    asyncio.run(go())


def test_relay_sends_the_key_and_the_body_as_given(fake_server: FakeServerHandle):
    async def go():
        answer = await Relay().open(f"{fake_server.url}/", "/v1/chat/completions",
                                    b'{"model": "m", "messages": [], "stream": true}', api_key="k3y",
                                    connect_timeout_s=5, read_timeout_s=5)
        body = await answer.read()
        await answer.aclose()
        return answer.status, body

    status, body = asyncio.run(go())
    [sent] = fake_server.requests()
    assert status == 200 and body.rstrip().endswith(b"data: [DONE]")
    assert sent["authorization"] == "Bearer k3y" and sent["body"] == {"model": "m", "messages": [], "stream": True}
