"""The log scrubber masks the secret path of the common chat services' incoming webhooks
(a Discord webhook URL in a logged database error was written whole), in linear time."""

from __future__ import annotations

import time

import pytest

from shared.logs import scrub


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "[parameters: ('r', '[{\"url\": \"https://discord.com/api/webhooks/1234567/zzSECRETTOKENzz\"}]')]",
            "[parameters: ('r', '[{\"url\": \"https://discord.com/api/webhooks/***\"}]')]",
        ),
        (
            "POST https://discordapp.com/api/webhooks/1/t0k3n?wait=true",
            "POST https://discordapp.com/api/webhooks/***?wait=true",
        ),
        (
            "https://ptb.discord.com/api/v10/webhooks/1/t0k3n failed",
            "https://ptb.discord.com/api/v10/webhooks/*** failed",
        ),
        ("HTTPS://DISCORD.COM/API/WEBHOOKS/1/T0K3N", "HTTPS://DISCORD.COM/API/WEBHOOKS/***"),
        (
            "https://contoso.webhook.office.com/webhookb2/1a2b@3c4d/IncomingWebhook/5e6f/7a8b 502",
            "https://contoso.webhook.office.com/*** 502",
        ),
        (
            "'https://outlook.office.com/webhook/1a2b@3c4d/IncomingWebhook/5e/7a'",
            "'https://outlook.office.com/webhook/***'",
        ),
        ("https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX", "https://hooks.slack.com/services/***"),
    ],
)
def test_chat_webhook_paths_are_masked(text: str, shown: str) -> None:
    assert scrub(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "see https://discord.com/channels/1/2 and https://discord.com/api/users/@me",
        "https://office.com/webhookb2 is not a webhook",
    ],
)
def test_other_paths_of_those_hosts_stay(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "discord.com/api/" * 40_000,
        "discord.com/api/v1/" * 40_000,
        "x.webhook.office.co" * 40_000,
        "a." * 300_000,
    ],
)
def test_masking_takes_linear_time_on_hostile_lines(text: str) -> None:
    start = time.perf_counter()
    scrub(text)
    assert time.perf_counter() - start < 2.0
