"""The guarded webhook transport over real local sockets: it connects to the address it
vetted, while the request's ``Host`` header and TLS (SNI, certificate check) keep the
URL's host name. A resolver stands in for DNS (``hooks.example`` -> 127.0.0.1)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from alert_scenario import LOCAL_POLICY

from services.alerter.netguard import AddressNotAllowed, AddressPolicy, GuardedBackend, guarded_transport

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    port: int = 0
    heads: list[bytes] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    """A local HTTP(S) receiver on 127.0.0.1 that answers 204 and records request heads."""
    servers: list[asyncio.Server] = []

    async def start(tls: ssl.SSLContext | None = None) -> Receiver:
        rec = Receiver()
        if tls is not None:

            def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
                rec.server_names.append(name)

            tls.sni_callback = record_sni

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                rec.heads.append(head)
                writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        rec.port = server.sockets[0].getsockname()[1]
        return rec

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def fake_dns(**names: str) -> Callable[[str, int], Awaitable[list[str]]]:
    async def resolve(host: str, port: int) -> list[str]:
        return [names[host]]

    return resolve


def client(policy: AddressPolicy, *, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    backend = GuardedBackend(policy, resolver=fake_dns(**{"hooks.example": "127.0.0.1", "other.example": "127.0.0.1"}))
    return httpx.AsyncClient(transport=guarded_transport(backend, verify=verify), timeout=5.0)


async def test_the_vetted_address_is_connected_to_and_the_host_header_is_the_urls(
    receiver: Callable[..., Awaitable[Receiver]],
) -> None:
    rec = await receiver()
    async with client(LOCAL_POLICY) as c:
        r = await c.post(f"http://hooks.example:{rec.port}/hook", content=b"{}")
    assert r.status_code == 204
    assert f"Host: hooks.example:{rec.port}".encode() in rec.heads[0]
    async with client(AddressPolicy()) as c:  # no allowance: the same name is refused
        with pytest.raises(AddressNotAllowed, match=r"hooks\.example resolves to 127\.0\.0\.1 \(loopback\)"):
            await c.post(f"http://hooks.example:{rec.port}/hook", content=b"{}")
    assert len(rec.heads) == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for hooks.example (openssl CLI; no Python package needed)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=hooks.example",
            "-addext",
            "subjectAltName=DNS:hooks.example",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_checks_the_certificate_for_the_host_name_not_the_address(
    receiver: Callable[..., Awaitable[Receiver]], certificate: tuple[Path, Path]
) -> None:
    """Connected to 127.0.0.1, TLS still sends SNI ``hooks.example`` and checks the
    certificate against that name: the same server under another name is refused."""
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    rec = await receiver(server_tls)
    trust = ssl.create_default_context(cafile=str(cert))
    async with client(LOCAL_POLICY, verify=trust) as c:
        r = await c.post(f"https://hooks.example:{rec.port}/hook", content=b"{}")
        assert r.status_code == 204
        assert rec.server_names == ["hooks.example"]
        assert f"Host: hooks.example:{rec.port}".encode() in rec.heads[0]
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await c.post(f"https://other.example:{rec.port}/hook", content=b"{}")
    assert len(rec.heads) == 1
