"""Logging set-up for every entrypoint: one line per record, secrets and
personal data masked, a client library's retry storm collapsed."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from shared.redact import redact

# The user may be empty (redis://:pw@host). The password runs to the last "@" of the
# authority (it may hold a raw "@"; the authority ends at "/", "?" or "#"), and at least
# to the first "@" whatever comes before it (a raw "/" of a base64 password).
# The "://" may be written with its slashes JSON-escaped (``https:\/\/user:pw@host``).
_SECRET_IN_URL = re.compile(r"(:\\*/\\*/[^:/@\s]*:)([^@\s]+(?:@[^@\s/?#]*)*)(@)")
# A match never holds whitespace and ends at an "@", so the pattern runs on each
# whitespace-free run up to its last "@" only: on the whole text, every "://" of a run
# with no "@" after it scanned to the end of the run again ("://a:" * 20000, 100 KB: 39 s).
_RUN_WITH_URL = re.compile(r"(?<!\S)\S*:\\*/\\*/\S*")
_KEY_LIKE = re.compile(r"\b(tw_[a-z0-9]{4,8}_)[A-Za-z0-9_-]{16,}\b")
# Credentials that ride in a URL's query or path: ``?token=...`` and the like (``&amp;token=``
# of an HTML page too), and the secret path of a chat service's incoming webhook: Slack
# (``hooks.slack.com/services/T../B../...``), Discord (``discord.com/api/webhooks/<id>/<token>``,
# ``/api/v10/webhooks/...``, discordapp.com too), Microsoft Teams (``<tenant>.webhook.office.com/webhookb2/...``,
# the older ``outlook.office.com/webhook/...``) and Zapier (``hooks.zapier.com/hooks/catch/<id>/<key>/``),
# each host with or without a port; and Mattermost's ``/hooks/<key>`` on any host. Each
# match starts with a literal, so the scan stays linear in the length of the line.
_SECRET_QUERY = re.compile(
    r"((?:[?&]|&amp;)(?:token|access_token|auth|api_key|apikey|key|secret|sig|signature|password|passwd|pass|pwd|code)=)"
    r"[^&#\s\"'<>]+",
    re.IGNORECASE,
)
# The same in a URL percent-encoded in another URL's query (``%3Ftoken%3D...``, ``%26key%3D...``):
# the value runs to the next encoded "&" or "#", or to the "&" that ends the outer value.
_ENCODED_SECRET_QUERY = re.compile(
    r"(%(?:25)?(?:3F|26)(?:token|access_token|auth|api_key|apikey|key|secret|sig|signature|password|passwd|pass|pwd|code)%(?:25)?3D)"
    r"(?:[^%&#\s\"'<>\\]|%(?!(?:25)?(?:26|23))[0-9A-F]{2})+",
    re.IGNORECASE,
)
# A URL as it is written in JSON (``https:\/\/hooks.slack.com\/services\/...``, every "/"
# escaped, twice in JSON inside JSON) or percent-encoded in another URL's query
# (``?next=https%3A%2F%2Fhooks.slack.com%2Fservices%2F...``, ``%252F`` encoded twice): its
# slashes and colons are matched in each of these forms.
_SL = r"(?:\\*/|%(?:25)?2[Ff])"
_COLON = r"(?::|%(?:25)?3[Aa])"
_PORT = rf"(?:{_COLON}\d{{1,5}})?"
# The secret path runs to whitespace, a quote, a bracket, "?", "#" or "&" (the end of the value
# of the query it is percent-encoded in), or to a backslash that escapes no "/" (the
# ``\"`` that closes a JSON string: it stays).
_PATH_REST = r"(?:[^\s\"'<>?#&\\]|\\(?=[\\/]))+"
_WEBHOOK_PATH = re.compile(
    rf"(hooks\.slack\.com{_PORT}{_SL}(?:services|workflows|triggers){_SL}"
    rf"|discord(?:app)?\.com{_PORT}{_SL}api{_SL}(?:v\d{{1,3}}{_SL})?webhooks{_SL}"
    rf"|webhook\.office\.com{_PORT}{_SL}"
    rf"|outlook\.office(?:365)?\.com{_PORT}{_SL}webhook{_SL}"
    rf"|hooks\.zapier\.com{_PORT}{_SL}hooks{_SL})"
    rf"{_PATH_REST}",
    re.IGNORECASE,
)
# Mattermost's key is 26 letters and digits; a path of other services under /hooks/ (ids,
# names) is shorter or holds other characters. The look-behinds start a match only after a
# slash (a run of backslashes is never rescanned from each of them).
_HOOK_KEY = re.compile(rf"(?:(?<=/)|(?<=%2[Ff])|(?<=%252[Ff]))(hooks{_SL})[A-Za-z0-9]{{20,}}(?![\w-])")
# A Telegram bot's token rides in the path of every Bot API call
# (``api.telegram.org/bot<id>:<secret>/sendMessage``, files under ``/file/bot<token>/``): all
# of it goes, up to the "/" (written in any of the forms above) of the method. Bare, a token is
# a bot id, ":" and a secret that starts with "AA".
_TELEGRAM_PATH = re.compile(
    rf"(api\.telegram\.org{_PORT}{_SL}(?:file{_SL})?bot)(?:[^/\s\"'<>?#&\\%]|%(?!(?:25)?2[Ff]))+",
    re.IGNORECASE,
)
_TELEGRAM_TOKEN = re.compile(r"(?<![\w:-])\d{5,12}:AA[\w-]{30,}(?![\w-])")
# An HTTP Authorization (or Proxy-Authorization) value, as a header line, a ``name=value``
# pair, a JSON member, a repr'd dict or a repr'd header tuple (``('authorization', b'Bearer
# x')``): the credential goes, the scheme word stays (``Bearer ***``). An unquoted value is
# masked after a known scheme only ("Authorization: denied" is prose); a quoted one whole
# when it has none. A credential ends at whitespace, a quote, a bracket, ",", ";", "&" or a
# backslash (the ``\r\n`` of a repr'd request, which may also come before the name), so
# ``Bearer <key>`` of a help text stays.
# Schemes whose credential is a list of ``name=value`` or ``name="value"`` parameters
# (``Digest username="u", realm="r", nonce="n", response="..."``, ``AWS4-HMAC-SHA256
# Credential=.../aws4_request, SignedHeaders=host;x-amz-date, Signature=...``, OAuth 1.0's
# ``OAuth oauth_consumer_key="...", oauth_signature="..."``): the whole list goes. A quoted
# parameter may be JSON-escaped (``\"...\"``).
_AUTH_SCHEMES = (
    r"(?:(?:bearer|basic|token|bot|jwt|apikey|api-key|oauth|dpop|ssws|negotiate|ntlm|digest|hawk|signature"
    r"|(?:aws4|goog4)-hmac-sha256|aws|sharedkey(?:lite)?|scram-sha-(?:1|256)|hoba|mutual|vapid|privatetoken"
    r"|splunk|geniekey)(?:[ \t]+|%20)|key=)"
)
_CREDENTIAL = r"[^\s\"'`<>,;&(){}\[\]\\]+"
_AUTH_PARAM = r"[\w-]+=(?:\\*\"[^\"\\\r\n]*\\*\"|[^\s\"'`<>,&(){}\[\]\\]*)"
_AUTH_PARAMS = rf"{_AUTH_PARAM}(?:[ \t]*,[ \t]*{_AUTH_PARAM})*"
_AUTH_HEADER = re.compile(
    r"((?:(?<![\w-])|(?<=\\[nrt]))(?:proxy-)?authorization(?:[\"']?[ \t]*[:=]|[\"'][ \t]*,)[ \t]*(?:b?([\"']))?"
    rf"(?(2){_AUTH_SCHEMES}?|{_AUTH_SCHEMES}))"
    rf"(?:{_AUTH_PARAMS}|{_CREDENTIAL})",
    re.IGNORECASE,
)
# A bearer token logged without its header name: one word of 16 or more characters with a
# digit in it after "Bearer" ("bearer bonds", "Bearer token expired" stay).
_BEARER = re.compile(
    r"((?<![\w-])bearer(?:[ \t]+|%20))(?=[^\s\"'`<>,;&(){}\[\]\\\d]*\d)[^\s\"'`<>,;&(){}\[\]\\]{16,}",
    re.IGNORECASE,
)
# A header or field that carries an API key, token, secret or password: ``X-API-Key``, ``Api-Key``,
# ``X-Auth-Token``, ``X-Access-Token``, GitLab's ``Private-Token``, ``Ocp-Apim-Subscription-Key``,
# ``api_key``, ``access_token``, ``client_secret``, ``password`` and the like: any name that ends
# in the word ``token`` or ``secret`` (``token``, ``webhook_secret``, ``TW_ALERTER_WEBHOOK_SECRET``;
# not ``tokens`` or ``max_tokens``, counts), ``password``/``passwd``/``passphrase``/``pwd``, or
# ``<word>key`` for the words below (``pseudonym_key``, ``TW_CLASSIFIER_PSEUDONYM_KEY``), any
# prefix of dashed or underscored words or letters before them (``X-RapidAPI-Key``, ``DD-API-KEY``,
# ``oauth_token``, ``TW_POSTGRES__PASSWORD``). Written as a header line, ``name=value``, a JSON
# member (JSON-escaped in another JSON string too: ``{\"password\": \"...\"}``), a repr'd dict,
# a repr'd header tuple (``('x-api-key', 'abc')``, ``(b'x-api-key', b'abc')``), a list value
# (``"x-api-key": ["abc"]``) or SQL's ``PASSWORD 'abc'``: the name stays, the value goes. A value
# that is prose (``X-API-Key: missing``, ``"secret": true``), a placeholder (``<key>``) or a call
# (``SecretStr('**********')``) stays. Each match starts at the start of a run of word characters
# and dashes, so the scan stays linear.
_KEY_NAME = (
    r"(?:[^\W_]+[-_]{1,2})*[^\W_]*?(?:(?:api|auth|access|refresh|session|security|private|subscription|functions"
    r"|client|pseudonym|secret|signing)[-_]?key|token|secret|pass(?:word|wd|phrase)|pwd)"
)
# Where a name may start: a run of word characters and dashes, or after the ``\r\n`` of a repr'd
# request. ``tup`` is set after the ``("`` that opens a repr'd header tuple.
_KEY_START = r"(?:(?<![\w-])|(?<=\\[nrt]))(?P<tup>(?<=\([\"'])|(?<=\(b[\"']))?"
# Between a name and its value: ``: ``, ``=``, ``": "``, ``': '`` (the quotes JSON-escaped or
# not), or ``', b'`` of a repr'd header tuple (a list of names, ``['api_key', 'name']``, is no header).
_HEADER_SEP = r"(?:\\*[\"']?[ \t]*[:=][ \t]*(?:b?[\"'])?|[\"'][ \t]*,[ \t]*b[\"'])"
_PROSE_WORDS = (
    r"(?:missing|required|invalid|expired|rejected|revoked|denied|absent|empty|none|null|not|is|was|header|"
    r"unset|set|true|false)"
)
_PROSE_VALUE = rf"{_PROSE_WORDS}(?![^\s,;.:)\]}}\"'])"
# An unquoted value runs to where a credential ends; in a URL's query (after "?", "&" or
# "&amp;") to a "#" too (the fragment stays), elsewhere a "#" is part of it (``password=abc#def``).
_KEY_HEADER = re.compile(
    rf"((?:(?<![\w-])|(?<=\\[nrt]))(?:(?P<url>(?<=[?&])|(?<=&amp;))|(?<![?&])(?<!&amp;)){_KEY_NAME}{_HEADER_SEP})"
    rf"(?!{_PROSE_VALUE})(?![A-Za-z_]\w*\()(?!=)(?(url)[^\s\"'`<>,;&(){{}}\[\]\\#]+|[^\s\"'`<>,;&(){{}}\[\]\\]+)",
    re.IGNORECASE,
)
# A quoted value goes whole, spaces, commas and escaped quotes included, up to its closing
# quote (or the end of the line, when there is none): ``"password": "p@ss word"``,
# ``X-Api-Key: "abcd 1234"``. ``bs`` holds the backslashes of a JSON-escaped opening quote
# (``\"``, ``\\\"`` in JSON twice over): the value then ends at the next quote after exactly
# as many (an escaped quote inside it has more); otherwise at the first quote an even number
# of backslashes stands before. In SQL (``PASSWORD 'it''s'``) a doubled quote is part of the
# value. Run before :data:`_KEY_HEADER`; the scan never backtracks (possessive), so a run of
# unterminated quotes stays linear.
_KEY_QUOTED_SEP = (
    r"(?:\\*[\"']?[ \t]*[:=][ \t]*(?:\[[ \t]*)?"  # name: "v", name="v", "name": ["v"]
    r"|\\*[\"'][ \t]*,[ \t]*(?=b)"  # ('name', b'v')
    r"|(?(tup)[\"'][ \t]*,[ \t]*|(?!))"  # ('name', 'v')
    r"|(?<=password)(?P<sql>[ \t]+)(?='))"  # PASSWORD 'v'
)
_KEY_QUOTED = re.compile(
    rf"(?P<head>{_KEY_START}{_KEY_NAME}{_KEY_QUOTED_SEP}b?(?P<bs>\\+)?(?P<q>[\"']))"
    rf"(?!(?:{_PROSE_WORDS}|<[^<>\s\"'\\]*>)?[ \t]*(?(bs)(?P=bs))(?P=q))"
    r"(?(bs)(?:[^\\\r\n]++|(?!(?P=bs)(?P=q))\\++)++"
    r"|(?:(?(sql)''|(?!))|\\.|(?!(?P=q))[^\\\r\n])++)",
    re.IGNORECASE,
)
# ``Cookie: session=...; other=...`` and ``Set-Cookie: sid=...; Path=/; HttpOnly`` (``, `` between
# the cookies of a folded Set-Cookie): every cookie's value goes, its name stays, and so do the
# attributes of a Set-Cookie (``Path=/``, ``Expires=Wed, 21 Oct 2015 07:28:00 GMT``,
# ``HttpOnly``). A cookie value holds no whitespace, quote, comma, ";" or backslash.
_COOKIE_VALUE = r"[^\s;,\"'\\]*"
# An Expires date (``Wed, 21 Oct 2015 07:28:00 GMT``, ``Wed, 21-Oct-15 ...``) holds a comma and
# spaces; any other Expires value is read as a cookie value.
_EXPIRES = (
    r"expires=(?:[a-z]{3,9},[ \t]*[0-9]{1,2}[ -][a-z]{3}[ -][0-9]{2,4}[ \t]+[0-9:]{5,8}(?:[ \t]+[a-z]{1,5})?"
    r"|[^\s;,\"'\\]*)"
)
_COOKIE_PAIR = rf"(?:{_EXPIRES}|[^\s;,=\"'\\]+(?:={_COOKIE_VALUE})?|={_COOKIE_VALUE})"
_COOKIE_HEADER = re.compile(
    rf"((?:(?<![\w-])|(?<=\\[nrt]))(?:(set-)|)cookie{_HEADER_SEP})(?!{_PROSE_VALUE})"
    rf"({_COOKIE_PAIR}(?:[ \t]*[;,][ \t]*{_COOKIE_PAIR})*)",
    re.IGNORECASE,
)
_COOKIE_PART = re.compile(rf"{_EXPIRES}|[^\s;,=\"'\\]*(?:={_COOKIE_VALUE})?", re.IGNORECASE)
_COOKIE_ATTRIBUTES = frozenset(
    ("path", "domain", "expires", "max-age", "samesite", "secure", "httponly", "partitioned", "priority", "version")
)
# A JSON Web Token without its header name or scheme: a base64url JSON header (``eyJ``, the
# encoded ``{"``), a payload and a signature (JWE: five parts), dot-separated. It starts a
# run of base64url characters (a long run is never rescanned from inside), or follows a
# percent-encoded character (``%22eyJ...``).
_JWT = re.compile(r"(?:(?<![A-Za-z0-9_-])|(?<=%[0-9A-Fa-f]{2}))eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){2,4}")
# A URL's authority percent-encoded in another URL (``?next=https%3A%2F%2Fuser%3Apw%40host``):
# the authority runs to its encoded "/", "?" or "#", or to the first character a
# percent-encoded value does not hold; the password runs from the first encoded ":" after
# the "://" to the last encoded "@" of the authority (see mask_url_passwords).
_ENCODED_AUTHORITY = re.compile(
    r"(%(?:25)?3A%(?:25)?2F%(?:25)?2F)((?:[\w.~!*'()+-]|%(?!(?:25)?(?:2F|3F|23))[0-9A-F]{2})*)",
    re.IGNORECASE,
)
URL_MASK = "…"


def mask_url_passwords(text: str) -> str:
    """``scheme://user:***@host``: the password of every URL in ``text``, quoted or not,
    JSON-escaped (``https:\\/\\/user:***@host``) or percent-encoded in another URL
    (``https%3A%2F%2Fuser%3A***%40host``)."""
    return _ENCODED_AUTHORITY.sub(_mask_encoded_password, _RUN_WITH_URL.sub(_mask_run_passwords, text))


def _mask_run_passwords(run: re.Match[str]) -> str:
    text = run.group()
    end = text.rfind("@") + 1
    return _SECRET_IN_URL.sub(r"\1***\3", text[:end]) + text[end:] if end else text


_ENCODED_COLON = re.compile(r"%(?:25)?3A", re.IGNORECASE)
_ENCODED_AT = re.compile(r"%(?:25)?40", re.IGNORECASE)


def _mask_encoded_password(authority: re.Match[str]) -> str:
    """The password between the first encoded ":" and the last encoded "@" of an authority."""
    start, text = authority.group(1), authority.group(2)
    last_at = -1
    for at in _ENCODED_AT.finditer(text):
        last_at = at.start()
    colon = _ENCODED_COLON.search(text, 0, last_at) if last_at > 0 else None
    if colon is None or colon.end() == last_at:
        return authority.group()
    return f"{start}{text[: colon.end()]}***{text[last_at:]}"


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/…``: scheme and host only (no credentials, path, query or
    port). Webhook URLs are credentials (a Slack incoming webhook, ``user:pass@``,
    ``?token=``): show this wherever the caller may not read them whole, logs included."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: nothing in it is safe to show
        return URL_MASK
    host = parts.hostname or ""
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}/{URL_MASK}"


def _mask_cookies(header: re.Match[str]) -> str:
    """``name=***`` for every cookie of a Cookie or Set-Cookie value; a Set-Cookie's
    attributes (not its first pair, the cookie) as they are."""
    first, attributes = True, _COOKIE_ATTRIBUTES if header.group(2) else frozenset()

    def part(pair: re.Match[str]) -> str:
        nonlocal first
        text = pair.group()
        if not text:
            return text
        name, eq, value = text.partition("=")
        is_first, first = first, False
        if not is_first and name.lower() in attributes:
            return text
        if not eq:  # a value without a name (``Cookie: abc123``)
            return "***"
        return f"{name}=***" if value else text

    return header.group(1) + _COOKIE_PART.sub(part, header.group(3))


def scrub(message: str) -> str:
    """Mask chat webhook paths (Slack, Discord, Teams, Zapier, Mattermost) and Telegram bot
    tokens, HTTP Authorization credentials, passwords in URLs, secret query parameters, API
    keys, and personal data. URLs are matched as written, JSON-escaped or percent-encoded."""
    # Webhook paths first: a Teams path holds an "@", and after a port the password mask
    # took ``host:443/webhookb2/<id>@`` for ``user:password@`` and hid the host it starts with.
    message = _WEBHOOK_PATH.sub(r"\1***", message)
    message = _HOOK_KEY.sub(r"\1***", message)
    message = _TELEGRAM_PATH.sub(r"\1***", message)
    message = _TELEGRAM_TOKEN.sub("***", message)
    message = _AUTH_HEADER.sub(r"\1***", message)
    message = _BEARER.sub(r"\1***", message)
    message = _KEY_QUOTED.sub(r"\g<head>***", message)
    message = _KEY_HEADER.sub(r"\1***", message)
    message = _COOKIE_HEADER.sub(_mask_cookies, message)
    message = mask_url_passwords(message)
    message = _SECRET_QUERY.sub(r"\1***", message)
    message = _ENCODED_SECRET_QUERY.sub(r"\1***", message)
    message = _JWT.sub("***", message)
    message = _KEY_LIKE.sub(r"\1***", message)
    return redact(message, keep_ipv4=True)


class ScrubFormatter(logging.Formatter):
    """Scrubs the whole formatted record, not the message alone: the formatter adds the
    traceback and stack after every filter has run, and an exception's text carries
    what the code had in hand (a database error its ``[parameters: ...]``, an HTTP
    error its URL)."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


# Loggers that log every retry: while Kafka is unreachable aiokafka writes an ERROR
# line per reconnect attempt, 70-90 a second per service (measured); the alerter's
# outbox warns on every pass (about one a second) while the alerts topic fails.
OUTBOX_LOGGER = "tonewatch.alerter.outbox"
REPEATING_LOGGERS = ("aiokafka", OUTBOX_LOGGER)
REPEAT_WINDOW_S = 10.0


class RepeatFilter(logging.Filter):
    """Let through the first warning or error of each kind per window and count the
    rest; the next one let through says how many were held back. A kind is the
    logger, the level and the message template (not its arguments).

    When no record of a kind comes for a whole window after its window ended (the
    outage is over), :meth:`flush` hands back the last held-back record with the
    count, so the final count is not lost."""

    MAX_KINDS = 1000
    SUMMARY = "tw_repeat_summary"
    """Attribute set on records made by :meth:`flush` (they pass this filter as they are)."""

    def __init__(
        self,
        prefixes: tuple[str, ...] = REPEATING_LOGGERS,
        window_s: float = REPEAT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        # kind -> (when the last record of that kind was let through, records held back since, the last of them)
        self._kinds: dict[tuple[str, int, str], tuple[float, int, logging.LogRecord | None]] = {}

    def _watched(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self._prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not self._watched(record.name) or hasattr(record, self.SUMMARY):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            shown_at, held, _ = self._kinds.get(kind, (None, 0, None))
            if shown_at is not None and now - shown_at < self._window_s:
                self._kinds[kind] = (shown_at, held + 1, record)
                return False
            if len(self._kinds) >= self.MAX_KINDS:
                self._kinds.clear()
            self._kinds[kind] = (now, 0, None)
        if held and shown_at is not None:
            record.msg = f"{record.getMessage()} [and {held} more like this in the last {now - shown_at:.0f} s]"
            record.args = None
        return True

    def flush(self) -> list[logging.LogRecord]:
        """The held-back counts of kinds that went quiet: for each, its last held-back
        record saying how many more were held back. Call it every so often."""
        now, out = self._clock(), []
        with self._lock:
            for kind, (shown_at, held, last) in list(self._kinds.items()):
                if held and last is not None and now - shown_at >= 2 * self._window_s:
                    more = f" [the last of {held} like this held back in {now - shown_at:.0f} s]" if held > 1 else ""
                    summary = logging.makeLogRecord(last.__dict__)
                    summary.msg, summary.args = f"{last.getMessage()}{more}", None
                    setattr(summary, self.SUMMARY, True)
                    out.append(summary)
                    del self._kinds[kind]
        return out


class _Flusher(threading.Thread):
    """Hands :meth:`RepeatFilter.flush` records to the handler every ``period_s``."""

    def __init__(self, handler: logging.Handler, repeat: RepeatFilter, period_s: float) -> None:
        super().__init__(name="tonewatch-log-flusher", daemon=True)
        self._handler, self._repeat, self._period_s = handler, repeat, period_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self._period_s):
            for record in self._repeat.flush():
                self._handler.handle(record)


_flusher: _Flusher | None = None


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (as the
    standard library's last-resort handler does), not the stream of set-up time."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> object:
        return sys.stderr


def stop_flushing() -> None:
    """Stop the thread that :func:`configure` started (tests that restore logging)."""
    if _flusher is not None:
        _flusher.stopped.set()


def configure(level: str = "INFO", service: str = "tonewatch") -> None:
    global _flusher  # one per process, replaced with the handler
    handler = StderrHandler()
    handler.setFormatter(ScrubFormatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    repeat = RepeatFilter()
    handler.addFilter(repeat)
    stop_flushing()
    _flusher = _Flusher(handler, repeat, REPEAT_WINDOW_S / 2)
    _flusher.start()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faust", "mode", "sqlalchemy.engine", "alembic", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
