"""The delivery log keys a channel by (url, format) since migration 0015: a format done
(delivered, refused for good, given up) is not sent again while another format of the
same URL is retried, and each format's age is its own. Rows without a format (written
before 0015) keep the meaning they had."""

from __future__ import annotations

from services.alerter.deliver import age, pending

HOOKS = [("https://a/x", "json"), ("https://a/x", "slack"), ("https://b/y", "json")]


def test_a_format_done_is_not_sent_again_while_the_other_format_of_its_url_is() -> None:
    """Before, a URL in two formats was sent again in both whatever the log said."""
    assert pending(HOOKS, {("https://a/x", "json")}) == [HOOKS[1], HOOKS[2]]
    assert pending(HOOKS, {("https://a/x", "slack"), ("https://b/y", "json")}) == [HOOKS[0]]
    assert pending(HOOKS, {("https://a/x", "json"), ("https://a/x", "slack"), ("https://b/y", "json")}) == []


def test_a_format_the_rule_no_longer_sends_settles_nothing_else() -> None:
    assert pending(HOOKS, {("https://b/y", "slack"), ("https://a/x", "teams")}) == HOOKS


def test_a_row_without_a_format_settles_a_url_sent_in_one_format_only() -> None:
    assert pending(HOOKS, {("https://b/y", None)}) == HOOKS[:2]
    assert pending(HOOKS, {("https://a/x", None)}) == HOOKS  # which format got through is unknown
    assert pending(HOOKS, {("https://a/x", None), ("https://a/x", "json")}) == [HOOKS[1], HOOKS[2]]


def test_each_format_has_its_own_age_and_a_row_without_one_counts_for_every_format() -> None:
    ages: dict[tuple[str, str | None], float] = {("https://a/x", "json"): 7200.0, ("https://a/x", "slack"): 3.0}
    assert (age(ages, "https://a/x", "json"), age(ages, "https://a/x", "slack")) == (7200.0, 3.0)
    assert age(ages, "https://b/y", "json") == 0.0
    ages[("https://a/x", None)] = 600.0
    assert (age(ages, "https://a/x", "json"), age(ages, "https://a/x", "slack")) == (7200.0, 600.0)
