"""Where a webhook may connect: not to the alerter's own network (SSRF guard).

Anyone who may save a rule chooses its webhook URLs, and the alerter POSTs to them from
inside the network. :class:`AddressPolicy` refuses loopback, private (RFC 1918, fc00::/7),
link-local (169.254/16 with the cloud metadata services, fe80::/10), unspecified,
multicast, shared (100.64/10) and other reserved addresses, the same addresses written as
IPv4-mapped IPv6 (``::ffff:127.0.0.1``) or embedded in NAT64 and 6to4 addresses, unless
an operator allowed their network (``TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS``).

Two places use it:

- saving a rule (:mod:`services.alerter.rules`): a URL whose host is such an address
  written out, or ``localhost``, is refused. Host names are not resolved then: DNS can
  change before the alert.
- delivering (:func:`guarded_transport`): the connection pool's network backend resolves
  the host itself, refuses the request when any address it resolves to is refused, and
  connects to the vetted address, so no second lookup (DNS rebinding) can swap in
  another one. TLS still verifies the certificate for the URL's host name (SNI), and
  the ``Host`` header is the URL's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import anyio
import httpcore
import httpx

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# IANA special-purpose registries; every other IPv4 address is public.
_V4_SPECIAL: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), kind)
    for net, kind in (
        ("0.0.0.0/8", "unspecified"),  # "this network"; 0.0.0.0 reaches the local host on Linux
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared"),  # carrier-grade NAT; Alibaba Cloud's metadata service
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),  # AWS, GCP, Azure, OCI metadata
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "reserved"),
        ("192.88.99.0/24", "reserved"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved"),
        ("198.51.100.0/24", "reserved"),
        ("203.0.113.0/24", "reserved"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # with 255.255.255.255
    )
)
# Checked in order; an IPv6 address outside 2000::/3 (global unicast) is reserved.
_V6_SPECIAL: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), kind)
    for net, kind in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "reserved"),  # IPv4-compatible (deprecated)
        ("64:ff9b:1::/48", "private"),  # local-use NAT64
        ("fc00::/7", "private"),  # unique local, AWS's IPv6 metadata fd00:ec2::254 included
        ("fec0::/10", "private"),  # site-local (deprecated)
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
        ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo included
        ("2001:db8::/32", "reserved"),
        ("3fff::/20", "reserved"),
    )
)
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
LOCALHOST = (IPv4Address("127.0.0.1"), IPv6Address("::1"))
CONNECT_STAGGER_S = 0.25
"""Delay before the next address of a host is tried while the previous still connects (RFC 8305)."""


def _embedded_v4(ip: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: IPv4-mapped, NAT64 or 6to4."""
    if isinstance(ip, IPv4Address):
        return None
    return ip.ipv4_mapped or ip.sixtofour or (IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)


def classify(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``"loopback"``, ``"private"``, ``"link-local"``,
    ``"unspecified"``, ``"multicast"``, ``"shared"``, ``"reserved"``); None when it is one.
    An IPv4 address inside IPv6 (mapped, NAT64, 6to4) counts as that IPv4 address."""
    embedded = _embedded_v4(ip)
    if embedded is not None:
        return classify(embedded)
    if isinstance(ip, IPv6Address):
        kind = next((k for net, k in _V6_SPECIAL if ip in net), None)
        return kind or (None if ip in _GLOBAL_UNICAST else "reserved")
    return next((k for net, k in _V4_SPECIAL if ip in net), None)


def describe(ip: IPAddress, kind: str) -> str:
    """``169.254.169.254 (link-local, cloud metadata)``; ``::ffff:a9fe:a9fe (169.254.169.254:
    link-local, cloud metadata)``."""
    embedded = _embedded_v4(ip)
    metadata = ", cloud metadata" if ip in METADATA or embedded in METADATA else ""
    return f"{ip} ({f'{embedded}: ' if embedded else ''}{kind}{metadata})"


@dataclass(frozen=True)
class AddressPolicy:
    """Refuse every non-public address except those in ``allowed`` (default: none)."""

    allowed: tuple[IPNetwork, ...] = ()

    def allows(self, ip: IPAddress) -> bool:
        """In an allowed network; an IPv4 address inside IPv6 (``::ffff:10.1.2.3``, NAT64,
        6to4) counts as that IPv4 address, as :func:`classify` judges it."""
        embedded = _embedded_v4(ip)
        forms = [ip] if embedded is None else [ip, embedded]
        return any(form.version == net.version and form in net for form in forms for net in self.allowed)

    def refusal(self, ip: IPAddress) -> str | None:
        """``ip`` described when a webhook may not connect to it; None when it may."""
        kind = classify(ip)
        return None if kind is None or self.allows(ip) else describe(ip, kind)

    def host_refusal(self, host: str) -> str | None:
        """At save time, for a URL's host: the reason when it is a refused address written
        out, or ``localhost`` (127.0.0.1 and ::1, refused unless both are allowed);
        None for any other host name (resolved, and checked, only at delivery)."""
        name = host.strip("[]").rstrip(".").lower()
        if name == "localhost" or name.endswith(".localhost"):
            refused = [r for ip in LOCALHOST if (r := self.refusal(ip))]
            return f"{host} is {', '.join(refused)}" if refused else None
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return None
        return self.refusal(ip)


class AddressNotAllowed(Exception):
    """A webhook's host is, or resolves to, an address the policy refuses. Not an
    httpcore error, so httpx passes it on as it is."""


Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without repeats."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host once, refuses the connection when any address is refused, then
    connects (through ``inner``) to a vetted address given as an IP, and checks the
    address it is connected to. httpcore still starts TLS with the URL's host name."""

    def __init__(
        self, policy: AddressPolicy, *, resolver: Resolver = resolve, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.policy = policy
        self._resolve = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        refused = [r for ip in addresses if (r := self.policy.refusal(ip))]
        if refused:
            raise AddressNotAllowed(("" if _is_ip(host) else f"{host} resolves to ") + ", ".join(refused))
        stream = await self._first_connection(addresses, port, timeout, local_address, socket_options)
        await self._check_peer(stream, host)
        return stream

    async def _first_connection(
        self,
        addresses: Sequence[IPAddress],
        port: int,
        timeout: float | None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first of ``addresses`` that answers, as "happy eyeballs" does
        (RFC 8305): the next address is tried ``CONNECT_STAGGER_S`` after the previous one
        started (at once when it failed), the attempts racing; the first connection wins
        and the others are cancelled or closed. One after another, an address that never
        answers (a dead IPv6 route) would use up the whole attempt's time."""
        options = list(socket_options) if socket_options is not None else None

        async def attempt(ip: IPAddress) -> httpcore.AsyncNetworkStream:
            return await self._inner.connect_tcp(str(ip), port, timeout, local_address, options)

        pending: set[asyncio.Task[httpcore.AsyncNetworkStream]] = set()
        failure: BaseException | None = None
        queue = list(addresses)
        try:
            while queue or pending:
                if queue:
                    pending.add(asyncio.ensure_future(attempt(queue.pop(0))))
                done, _ = await asyncio.wait(
                    pending, timeout=CONNECT_STAGGER_S if queue else None, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    pending.discard(task)
                    exc = task.exception()
                    if exc is None:
                        return task.result()
                    if not isinstance(exc, httpcore.ConnectError | httpcore.ConnectTimeout):
                        raise exc
                    failure = exc
        finally:
            for task in pending:
                task.cancel()
            for late in await asyncio.gather(*pending, return_exceptions=True):
                if isinstance(late, httpcore.AsyncNetworkStream):  # connected after the winner
                    with contextlib.suppress(Exception):
                        await late.aclose()
        assert failure is not None  # addresses is never empty
        raise failure

    async def _addresses(self, host: str, port: int, limit_s: float | None) -> list[IPAddress]:
        try:
            with anyio.fail_after(limit_s):
                found = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {limit_s:g} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(a) for a in found]
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        return addresses

    async def _check_peer(self, stream: httpcore.AsyncNetworkStream, host: str) -> None:
        """The address the socket is connected to, checked again."""
        peer = stream.get_extra_info("server_addr")
        if peer is None:  # a stream that does not say (tests' mock streams)
            return
        refusal = self.policy.refusal(ipaddress.ip_address(peer[0]))
        if refusal:
            await stream.aclose()
            raise AddressNotAllowed(f"{host} connected to {refusal}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressNotAllowed("webhooks do not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's defaults


def guarded_transport(
    backend: httpcore.AsyncNetworkBackend,
    *,
    verify: ssl.SSLContext | bool = True,
    max_connections: int | None = _LIMITS.max_connections,
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport (request and response mapping, its errors, TLS settings) with
    a connection pool that connects through ``backend`` (a :class:`GuardedBackend`).
    httpx 0.28 takes no network backend, so the pool it built is replaced by one that
    does (httpcore's public API). A client given a transport also takes no proxy from the
    environment (``HTTPS_PROXY``), which would resolve and connect in the guard's place,
    nor its ``limits``: the pool's size is ``max_connections`` (httpx's default, 100)."""
    transport = httpx.AsyncHTTPTransport()
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        # fail at start-up rather than deliver unguarded
        raise RuntimeError(f"httpx {httpx.__version__} builds its transport differently: cannot guard webhooks")
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify),
        max_connections=max_connections,
        max_keepalive_connections=_LIMITS.max_keepalive_connections,
        keepalive_expiry=_LIMITS.keepalive_expiry,
        network_backend=backend,
    )
    return transport
