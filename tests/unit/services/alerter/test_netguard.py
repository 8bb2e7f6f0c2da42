"""Where webhooks may connect (pure logic): address classes, the operator's allowance, the
save-time host check, the settings, and the connect-time backend with a fake resolver
and a fake socket layer."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore
import pytest

from services.alerter.config import AlerterSettings, WebhookNetworkSettings
from services.alerter.netguard import AddressNotAllowed, AddressPolicy, GuardedBackend, classify
from services.settings_doc import reference


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def allow(*networks: str) -> AddressPolicy:
    return AddressPolicy(allowed=tuple(ipaddress.ip_network(n) for n in networks))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # AWS, GCP, Azure metadata
        ("169.254.170.2", "link-local"),  # ECS task metadata
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("100.64.0.1", "shared"),
        ("100.100.100.200", "shared"),  # Alibaba Cloud metadata
        ("100.127.255.255", "shared"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("255.255.255.255", "reserved"),
        ("240.0.0.1", "reserved"),
        ("192.0.0.192", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.5", "private"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("::ffff:100.64.0.1", "shared"),
        ("::127.0.0.1", "reserved"),  # IPv4-compatible, deprecated
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b:1::1", "private"),  # local-use NAT64
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "private"),  # AWS metadata over IPv6
        ("fec0::1", "private"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "reserved"),
        ("2001::1", "reserved"),  # Teredo
        ("100::1", "reserved"),
        ("4000::1", "reserved"),  # outside global unicast
    ],
)
def test_internal_addresses_are_classified(address: str, kind: str) -> None:
    assert classify(ip(address)) == kind
    assert AddressPolicy().refusal(ip(address)) is not None


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "172.32.0.1",  # just past 172.16/12
        "100.128.0.1",  # just past 100.64/10
        "169.255.0.1",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
    ],
)
def test_public_addresses_are_not(address: str) -> None:
    assert classify(ip(address)) is None
    assert AddressPolicy().refusal(ip(address)) is None


def test_a_refusal_names_the_address_its_class_and_the_metadata_service() -> None:
    policy = AddressPolicy()
    assert policy.refusal(ip("169.254.169.254")) == "169.254.169.254 (link-local, cloud metadata)"
    assert policy.refusal(ip("10.0.0.5")) == "10.0.0.5 (private)"
    assert policy.refusal(ip("::ffff:127.0.0.1")) == "::ffff:7f00:1 (127.0.0.1: loopback)"


def test_an_allowed_network_is_allowed_and_nothing_else() -> None:
    policy = allow("10.1.2.0/24", "127.0.0.1/32")
    for address in ("10.1.2.0", "10.1.2.7", "10.1.2.255", "127.0.0.1", "::ffff:10.1.2.7", "::ffff:127.0.0.1"):
        assert policy.refusal(ip(address)) is None, address
    for address in ("10.1.3.1", "10.0.0.5", "127.0.0.2", "::1", "169.254.169.254", "192.168.1.1"):
        assert policy.refusal(ip(address)) is not None, address
    assert allow("::1/128").refusal(ip("::1")) is None
    assert allow("::1/128").refusal(ip("127.0.0.1")) is not None


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("127.0.0.1", "127.0.0.1 (loopback)"),
        ("[::1]", "::1 (loopback)"),
        ("::1", "::1 (loopback)"),
        ("[::ffff:127.0.0.1]", "(127.0.0.1: loopback)"),
        ("169.254.169.254", "(link-local, cloud metadata)"),
        ("10.0.0.5", "10.0.0.5 (private)"),
        ("0.0.0.0", "0.0.0.0 (unspecified)"),
        ("100.64.1.1", "100.64.1.1 (shared)"),
        ("localhost", "localhost is 127.0.0.1 (loopback), ::1 (loopback)"),
        ("LocalHost.", "127.0.0.1 (loopback)"),
        ("hooks.localhost", "127.0.0.1 (loopback)"),
    ],
)
def test_save_time_refuses_internal_addresses_written_out_and_localhost(host: str, refused: str) -> None:
    refusal = AddressPolicy().host_refusal(host)
    assert refusal is not None and refused in refusal


@pytest.mark.parametrize("host", ["hooks.slack.com", "internal-admin", "localhost.example.com", "93.184.216.34"])
def test_save_time_leaves_host_names_to_delivery(host: str) -> None:
    assert AddressPolicy().host_refusal(host) is None


def test_save_time_honours_the_allowance() -> None:
    assert allow("10.1.2.0/24").host_refusal("10.1.2.3") is None
    assert allow("10.1.2.0/24").host_refusal("10.1.3.3") == "10.1.3.3 (private)"
    # localhost is 127.0.0.1 and ::1: both must be allowed
    assert allow("127.0.0.1/32").host_refusal("localhost") == "localhost is ::1 (loopback)"
    assert allow("127.0.0.0/8", "::1/128").host_refusal("localhost") is None


def test_the_setting_takes_a_comma_separated_list_and_one_variable_configures_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert AlerterSettings().webhook_policy() == AddressPolicy()  # secure default: nothing internal
    monkeypatch.setenv("TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS", "10.1.2.0/24, 127.0.0.1,::1/128")
    expected = allow("10.1.2.0/24", "127.0.0.1/32", "::1/128")
    assert AlerterSettings().webhook_policy() == expected
    assert WebhookNetworkSettings().webhook_policy() == expected  # what the API reads
    names = [row["env"] for row in reference()]
    assert names.count("TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS") == 1


@pytest.mark.parametrize("value", ["10.1.2.3/24", "not-a-network", "10.0.0.0/33"])
def test_a_bad_network_is_refused_at_start_up(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS", value)
    with pytest.raises(ValueError, match="TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS"):
        AlerterSettings()


class FakeStream(httpcore.AsyncMockStream):
    def __init__(self, peer: str) -> None:
        super().__init__([])
        self.peer = peer
        self.closed = False

    def get_extra_info(self, info: str) -> Any:
        return (self.peer, 443) if info == "server_addr" else None

    async def aclose(self) -> None:
        self.closed = True


class FakeSockets(httpcore.AsyncNetworkBackend):
    """Records the hosts it is asked to connect to; ``refuse`` fail to connect;
    ``peer_for`` overrides the address the socket says it reached."""

    def __init__(
        self, refuse: Sequence[str] = (), peer_for: dict[str, str] | None = None, hang: Sequence[str] = ()
    ) -> None:
        self.connects: list[str] = []
        self.streams: list[FakeStream] = []
        self.refuse = set(refuse)
        self.hang = set(hang)  # never answer (a dead route): cancelled by the caller
        self.cancelled: list[str] = []
        self.peer_for = peer_for or {}

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append(host)
        if host in self.refuse:
            raise httpcore.ConnectError("connection refused")
        if host in self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(host)
                raise
        self.streams.append(FakeStream(self.peer_for.get(host, host)))
        return self.streams[-1]


class Resolver:
    """Answers each lookup of a name with the next of ``answers`` (a rebinding DNS server)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers.pop(0)


async def test_the_backend_connects_to_the_vetted_address_not_the_name() -> None:
    sockets, resolver = FakeSockets(), Resolver(["93.184.216.34"])
    backend = GuardedBackend(AddressPolicy(), resolver=resolver, inner=sockets)
    await backend.connect_tcp("hooks.example", 443, timeout=1.0)
    assert resolver.lookups == ["hooks.example"]
    assert sockets.connects == ["93.184.216.34"]  # an address: nothing below resolves the name again


async def test_any_refused_address_refuses_the_host_before_connecting() -> None:
    sockets = FakeSockets()
    backend = GuardedBackend(AddressPolicy(), resolver=Resolver(["93.184.216.34", "127.0.0.1"]), inner=sockets)
    with pytest.raises(AddressNotAllowed, match=r"^evil\.example resolves to 127\.0\.0\.1 \(loopback\)$"):
        await backend.connect_tcp("evil.example", 80, timeout=1.0)
    assert sockets.connects == []


async def test_dns_rebinding_is_caught_on_the_connection_it_aims_at() -> None:
    """A name that answers public, then loopback: each connection looks it up once and
    connects to what it checked, so the second is refused."""
    sockets, resolver = FakeSockets(), Resolver(["93.184.216.34"], ["127.0.0.1"])
    backend = GuardedBackend(AddressPolicy(), resolver=resolver, inner=sockets)
    await backend.connect_tcp("rebind.example", 80, timeout=1.0)
    with pytest.raises(AddressNotAllowed, match=r"rebind\.example resolves to 127\.0\.0\.1"):
        await backend.connect_tcp("rebind.example", 80, timeout=1.0)
    assert resolver.lookups == ["rebind.example", "rebind.example"]
    assert sockets.connects == ["93.184.216.34"]


async def test_an_address_written_out_is_refused_as_itself() -> None:
    backend = GuardedBackend(AddressPolicy(), resolver=Resolver(["169.254.169.254"]), inner=FakeSockets())
    with pytest.raises(AddressNotAllowed, match=r"^169\.254\.169\.254 \(link-local, cloud metadata\)$"):
        await backend.connect_tcp("169.254.169.254", 80, timeout=1.0)


async def test_the_connected_address_is_checked_again() -> None:
    sockets = FakeSockets(peer_for={"93.184.216.34": "10.0.0.5"})
    backend = GuardedBackend(AddressPolicy(), resolver=Resolver(["93.184.216.34"]), inner=sockets)
    with pytest.raises(AddressNotAllowed, match=r"connected to 10\.0\.0\.5 \(private\)"):
        await backend.connect_tcp("hooks.example", 80, timeout=1.0)
    assert sockets.streams[0].closed


async def test_an_allowed_network_is_connected_to_and_unreachable_addresses_are_skipped() -> None:
    sockets = FakeSockets(refuse=["10.1.2.3"])
    resolver = Resolver(["10.1.2.3", "10.1.2.4"])
    backend = GuardedBackend(allow("10.1.2.0/24"), resolver=resolver, inner=sockets)
    await backend.connect_tcp("slack-proxy.internal", 8080, timeout=1.0)
    assert sockets.connects == ["10.1.2.3", "10.1.2.4"]


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    async def fail(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    backend = GuardedBackend(AddressPolicy(), resolver=fail, inner=FakeSockets())
    with pytest.raises(httpcore.ConnectError, match=r"cannot resolve nowhere\.example"):
        await backend.connect_tcp("nowhere.example", 80, timeout=1.0)
    with pytest.raises(AddressNotAllowed):
        await backend.connect_unix_socket("/var/run/docker.sock")


async def test_an_address_that_never_answers_does_not_hold_up_the_next() -> None:
    """Happy eyeballs: a dead first route (packets dropped) must not use up the attempt;
    the next address starts after CONNECT_STAGGER_S and wins, the first is cancelled."""
    sockets = FakeSockets(hang=["93.184.216.34"])
    backend = GuardedBackend(AddressPolicy(), resolver=Resolver(["93.184.216.34", "93.184.216.35"]), inner=sockets)
    stream = await asyncio.wait_for(backend.connect_tcp("hooks.example", 443, timeout=30.0), 5)
    assert stream.get_extra_info("server_addr") == ("93.184.216.35", 443)
    assert sockets.connects == ["93.184.216.34", "93.184.216.35"]
    assert sockets.cancelled == ["93.184.216.34"]


def test_an_allowed_ipv4_network_covers_its_nat64_and_6to4_forms() -> None:
    policy = allow("10.0.0.0/8")
    for form in ("10.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:a00:1::"):
        assert policy.refusal(ipaddress.ip_address(form)) is None, form
    assert AddressPolicy().refusal(ipaddress.ip_address("64:ff9b::a00:1")) is not None
