"""The socket several API processes share: each answer leaves at once (no Nagle delay)."""

from __future__ import annotations

import asyncio
import socket

from training.cli.api_processes import listening_socket


async def nodelay_of_an_accepted_connection() -> int:
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    shared = listening_socket("127.0.0.1", 0)
    server = await asyncio.start_server(on_connection, sock=shared)
    async with server:
        _, writer = await asyncio.open_connection(*shared.getsockname()[:2])
        value = await asyncio.wait_for(accepted, 10)
        writer.close()
    return value


def test_connections_on_the_shared_socket_send_without_waiting_for_acks() -> None:
    # asyncio turns Nagle's algorithm off only when the listening socket says TCP; with it
    # on, each answer written in two parts waited for the client's delayed ACK (~40 ms).
    assert asyncio.run(nodelay_of_an_accepted_connection()) != 0


def test_several_sockets_listen_on_one_port() -> None:
    first = listening_socket("127.0.0.1", 0)
    second = listening_socket("127.0.0.1", first.getsockname()[1])
    try:
        assert second.getsockname() == first.getsockname()
    finally:
        first.close()
        second.close()
