"""Logging set-up for every entrypoint: one line per record, secrets and
personal data masked, a client library's retry storm collapsed."""

from __future__ import annotations

import base64
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
# of an HTML page too; a presigned S3 or GCS URL's ``X-Amz-Signature``/``X-Goog-Signature``), and
# the secret path of a chat service's incoming webhook: Slack (``hooks.slack.com/services/T../B../...``),
# Discord (``discord.com/api/webhooks/<id>/<token>``,
# ``/api/v10/webhooks/...``, discordapp.com too), Microsoft Teams (``<tenant>.webhook.office.com/webhookb2/...``,
# the older ``outlook.office.com/webhook/...``) and Zapier (``hooks.zapier.com/hooks/catch/<id>/<key>/``),
# each host with or without a port; and Mattermost's ``/hooks/<key>`` on any host. Each
# match starts with a literal, so the scan stays linear in the length of the line.
_SECRET_QUERY = re.compile(
    r"((?:[?&]|&amp;)(?:x-(?:amz|goog)-)?(?:token|access_token|auth|api_key|apikey|key|secret|sig|signature|password|passwd|pass|pwd|code)=)"
    r"[^&#\s\"'<>]+",
    re.IGNORECASE,
)
# The same in a URL percent-encoded in another URL's query (``%3Ftoken%3D...``, ``%26key%3D...``):
# the value runs to the next encoded "&" or "#", or to the "&" that ends the outer value.
_ENCODED_SECRET_QUERY = re.compile(
    r"(%(?:25)?(?:3F|26)(?:x-(?:amz|goog)-)?(?:token|access_token|auth|api_key|apikey|key|secret|sig|signature|password|passwd|pass|pwd|code)%(?:25)?3D)"
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
    r"(?=\w)((?:(?<![\w-])|(?<=\\[nrt]))(?:proxy-)?authorization(?:[\"']?[ \t]*[:=]|[\"'][ \t]*,)[ \t]*(?:b?([\"']))?"
    rf"(?(2){_AUTH_SCHEMES}?|{_AUTH_SCHEMES}))"
    rf"(?:{_AUTH_PARAMS}|{_CREDENTIAL})"
    rf"(?P<more>(?:[ \t]*,[ \t]*{_AUTH_SCHEMES}(?:{_AUTH_PARAMS}|{_CREDENTIAL}))*+)",
    re.IGNORECASE,
)
# A further credential after a comma in the same value (``Authorization: Basic abc==, Bearer xyz``):
# after a known scheme only, its scheme word kept too.
_MORE_CREDENTIAL = re.compile(rf"(,[ \t]*{_AUTH_SCHEMES})(?:{_AUTH_PARAMS}|{_CREDENTIAL})", re.IGNORECASE)
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
# and dashes, so the scan stays linear. A name ending in ``credentials`` (``"credentials": "..."``,
# ``aws_credentials: ...``) too; after a bare ``credentials:`` with no prefix a plain word stays
# ("Invalid credentials: user not found"), and so do the fetch API's modes (``credentials=include``,
# ``omit``, ``same-origin``).
_KEY_NAME = (
    r"(?:[^\W_]+[-_]{1,2})*[^\W_]*?(?:(?:api|auth|access|refresh|session|security|private|subscription|functions"
    r"|client|pseudonym|secret|signing|account)[-_]?key|token|secret|pass(?:word|wd|phrase)|pwd|credentials)"
)
# The same, ``cred`` set where the name ends in ``credentials``.
_KEY_NAME_CRED = _KEY_NAME.replace("|credentials)", "|(?P<cred>credentials))")
# Where a name may start: a run of word characters and dashes, or after the ``\r\n`` of a repr'd
# request. ``tup`` is set after the ``("`` that opens a repr'd header tuple.
_KEY_START = r"(?:(?<![\w-])|(?<=\\[nrt]))(?P<tup>(?<=\([\"'])|(?<=\(b[\"']))?"
# Every name starts with a letter or digit: the ``(?=\w)`` that opens each pattern of names
# (Authorization, key, cookie, list) lets the engine skip punctuation and spaces without trying a name there
# (``***, ***, ...`` of a long masked list: 0.29 s for 650 KB without it, 0.02 s with).
# Between a name and its value: ``: ``, ``=``, ``": "``, ``': '`` (the quotes JSON-escaped or
# not), or ``', b'`` of a repr'd header tuple (a list of names, ``['api_key', 'name']``, is no header).
_HEADER_SEP = r"(?:\\*[\"']?[ \t]*[:=][ \t]*(?:b?[\"'])?|[\"'][ \t]*,[ \t]*b[\"'])"
_PROSE_WORDS = (
    r"(?:missing|required|invalid|expired|rejected|revoked|denied|absent|empty|none|null|not|is|was|header|"
    r"unset|set|true|false)"
)
_PROSE_VALUE = rf"{_PROSE_WORDS}(?![^\s,;.:)\]}}\"'])"
# After a ``credentials`` name: a fetch API mode, or (after a bare ``credentials:``, no prefix
# to the name and no quote) a plain word, a capital first at most ("Invalid credentials: user not found"),
# or an HTTP status code, three digits from 100 to 599 standing alone ("invalid credentials: 401",
# "credentials: 403 Forbidden"). A secret of three digits has 500 values at most, no more than a
# guess; every longer run of digits (a PIN, ``credentials: 123456``), a quoted or ``=`` value
# (``credentials=401``, ``"credentials": "401"``) and a prefixed name (``aws_credentials: 401``) still go.
# The word or number ends the value: a ":" or "." after it only before a space or the end
# (``credentials: admin:hunter2`` and ``credentials: 401:hunter2`` go).
_CRED_FETCH_MODE = r"(?:include|omit|same-origin)(?![^\s,;.:&#)\]}\"'])"
_CRED_BARE = "|".join(rf"(?<=credentials{sep})(?<![\w-]credentials{sep})" for sep in (":", ": ", " :", " : "))
_HTTP_STATUS = r"[1-5][0-9]{2}"
_CRED_PROSE = (
    rf"(?(cred)(?:{_CRED_FETCH_MODE}|(?:{_CRED_BARE})(?:(?-i:[A-Za-z][a-z]*+)|{_HTTP_STATUS})"
    r"(?=[\s,;)\]}\"']|[.:](?!\S)|\Z))|(?!))"
)
# An unquoted value runs to where a credential ends; in a URL's query (after "?", "&" or
# "&amp;") to a "#" too (the fragment stays), elsewhere a "#" is part of it (``password=abc#def``).
_KEY_HEADER = re.compile(
    rf"(?=\w)((?:(?<![\w-])|(?<=\\[nrt]))(?:(?P<url>(?<=[?&])|(?<=&amp;))|(?<![?&])(?<!&amp;)){_KEY_NAME_CRED}{_HEADER_SEP})"
    rf"(?!{_PROSE_VALUE})(?!{_CRED_PROSE})(?![A-Za-z_]\w*\()(?!=)(?(url)[^\s\"'`<>,;&(){{}}\[\]\\#]+|[^\s\"'`<>,;&(){{}}\[\]\\]+)",
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
    rf"(?=\w)(?P<head>{_KEY_START}{_KEY_NAME_CRED}{_KEY_QUOTED_SEP}b?(?P<bs>\\+)?(?P<q>[\"']))"
    rf"(?!(?:{_PROSE_WORDS}|<[^<>\s\"'\\]*>|(?(cred)(?:include|omit|same-origin)|(?!)))?[ \t]*(?(bs)(?P=bs))(?P=q))"
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
    rf"(?=\w)((?:(?<![\w-])|(?<=\\[nrt]))(?:(set-)|)cookie{_HEADER_SEP})(?!{_PROSE_VALUE})"
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
# A private key in PEM form (``-----BEGIN RSA PRIVATE KEY-----``, PKCS#8, encrypted, OpenSSH,
# PGP's ``PRIVATE KEY BLOCK``), its lines broken by newlines or by ``\n`` escapes (JSON, a repr):
# the body goes, the BEGIN and END lines stay. A body holds no run of five dashes, so it ends at
# its END line (or, cut short, at the first character no key holds) and never scans past the next
# BEGIN: linear.
_PRIVATE_KEY = re.compile(
    r"(-----BEGIN (?:[A-Z0-9]++ ){0,3}PRIVATE KEY(?: BLOCK)?-----)"
    r"(?:[\w+/=\s\\:,.]|-(?!----))*+"
    r"(-----END (?:[A-Z0-9]++ ){0,3}PRIVATE KEY(?: BLOCK)?-----)?"
)
# Tokens whose prefix names the service that issued them, logged bare: GitHub (``ghp_``, ``gho_``,
# ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``), GitLab (``glpat-``), Stripe (``sk_live_``,
# ``rk_test_``, ``whsec_``), Slack (``xoxb-``, ``xoxp-``, ``xapp-``), Hugging Face (``hf_``), npm,
# PyPI, OpenAI and Anthropic (``sk-``, ``sk-proj-``, ``sk-ant-``: with a digit, so a dashed name
# such as ``sk-learn-compatible-models`` stays), AWS access key ids (``AKIA``, ``ASIA``) and Google
# API keys (``AIza``). The prefix stays (``ghp_***``). A match starts a run of word characters and
# dashes, and its body is scanned once (possessive): linear. (The look-ahead of the prefixes' first
# letters lets the engine skip to where one may start: a fifth of the time on punctuation.)
_PREFIXED_TOKEN = re.compile(
    r"(?=[Aghnprswx])(?<![\w-])(?:"
    r"(gh[pousr]_)[A-Za-z0-9]{30,}+"
    r"|(github_pat_)[A-Za-z0-9_]{30,}+"
    r"|(glpat-)[A-Za-z0-9_-]{20,}+"
    r"|((?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{16,}+"
    r"|(whsec_)[A-Za-z0-9+/=]{24,}+"
    r"|(xox[abeoprs]-|xapp-)[A-Za-z0-9-]{10,}+"
    r"|(hf_)[A-Za-z0-9]{30,}+"
    r"|(npm_)[A-Za-z0-9]{36,}+"
    r"|(pypi-)[A-Za-z0-9_-]{50,}+"
    r"|(sk-)(?=[A-Za-z_-]*+\d)[A-Za-z0-9_-]{20,}+"
    r"|(A(?:KI|SI)A)[A-Z0-9]{16}"
    r"|(AIza)[A-Za-z0-9_-]{35}"
    r")(?![\w-])"
)
# MySQL's and MariaDB's passwords in a statement: ``CREATE USER 'u'@'h' IDENTIFIED BY 'pw'``,
# ``IDENTIFIED WITH mysql_native_password BY 'pw'`` (or ``AS '<hash>'``), MariaDB's ``IDENTIFIED
# VIA ed25519 USING PASSWORD('pw')``, ``IDENTIFIED BY PASSWORD '<hash>'``, ``SET PASSWORD FOR
# 'u'@'h' = 'pw'`` (``= PASSWORD('pw')``); then the old password of ``... REPLACE 'old'``. A quote
# doubled or escaped with a backslash is part of the value. (PostgreSQL's ``PASSWORD 'pw'`` and
# ``SET PASSWORD = 'pw'`` are :data:`_KEY_QUOTED`'s.) Each match starts at a keyword.
_SQL_STRING = r"(?:(?P=q)(?P=q)|\\.|(?!(?P=q))[^\\\r\n])*+"
_SQL_PASSWORD = re.compile(
    r"((?<![\w-])(?:identified(?:[ \t]+(?:with|via)[ \t]+[\w'\"`]++)?[ \t]+(?:by|as|using)"
    r"|set[ \t]+password(?:[ \t]+for[ \t]+[^\s=]++)?[ \t]*=)"
    r"[ \t]*(?:password[ \t]*\(?[ \t]*)?(?P<q>['\"]))"
    rf"{_SQL_STRING}",
    re.IGNORECASE,
)
# The same unquoted (``CREATE USER u IDENTIFIED BY s3cret;``), with the keywords in capitals only
# ("a user identified by email" is prose): a value that ends the statement or comes before a
# keyword in capitals (``... BY s3cret PASSWORD EXPIRE``), not a placeholder (``%s``, ``?``,
# ``:pw``, ``{pw}``), a keyword or a value already masked or quoted ("IDENTIFIED BY the admin" stays).
_SQL_BARE_PASSWORD = re.compile(
    r"((?<![\w-])IDENTIFIED(?:[ \t]+(?:WITH|VIA)[ \t]+[\w'\"`]++)?[ \t]+(?:BY|AS|USING)[ \t]++(?:PASSWORD[ \t]++)?)"
    r"(?!(?:IDENTIFIED|BY|AS|USING|WITH|VIA|PASSWORD)(?![^\s'\"`;,()\\]))(?![%{<:?]|\*\*\*)[^\s'\"`;,()\\]++"
    r"(?=[ \t]*+(?:[;,)'\"`\r\n]|\\[rn]|\Z|[A-Z][A-Z_]++(?![^\s;,)])))"
)
# In a ``CREATE USER``/``ALTER USER`` statement the keywords may be in any case (``alter user bob
# identified by hunter2``): the statement's head says it is SQL, not prose ("a user identified by
# email" has no ``create user <name>`` before it). Every user of the statement
# (``create user a identified by x1, b identified by y2``) is read in one pass (possessive; a user
# name holds a space only inside quotes, ``'my user'@'%'``; a quote never closed on its line is
# a character of the name, ``create user "bob identified by pw``): the values are masked by
# :func:`_mask_user_statement`.
_SQL_IDENTIFIED = (
    r"identified(?:[ \t]+(?:with|via)[ \t]+[\w'\"`]++)?[ \t]+(?:by|as|using)[ \t]++(?:password[ \t]++(?=\S))?"
)
_SQL_USER_NAME = r"""(?:[^\s,;()'"`]|'[^'\r\n]*+'|"[^"\r\n]*+"|`[^`\r\n]*+`|['"`])++"""
_SQL_USER_VALUE = rf"{_SQL_USER_NAME}[ \t]++{_SQL_IDENTIFIED}[^\s,;()]++"
_SQL_USER_STATEMENT = re.compile(
    r"(?<![\w-])(?:create|alter)[ \t]+user(?:[ \t]+if[ \t]+(?:not[ \t]+)?exists)?[ \t]++"
    rf"{_SQL_USER_VALUE}(?:[ \t]*+,[ \t]*+{_SQL_USER_VALUE})*+",
    re.IGNORECASE,
)
# MySQL's ``GRANT <privileges> ON <object> TO <user> IDENTIFIED BY <pw>`` (before 8.0), any case:
# "grant access to users identified by email" is prose, so the statement needs its ``ON``, and a bare
# value without a password's shape (:data:`_SQL_GRANT_PASSWORD`) goes only where the statement
# reads as SQL (:func:`_mask_grant_statement`). The privileges and the object are read a bounded
# number of words each, stopping at another ``grant`` (each word is read by at most as many starts
# as the bounds: linear).
_SQL_GRANT_WORD = r"(?!(?:grant|on|to)[ \t])[^\s;]++[ \t]++"
_SQL_GRANT_STATEMENT = re.compile(
    rf"(?<![\w-])grant[ \t]++(?P<privileges>(?:{_SQL_GRANT_WORD}){{1,64}}+)on[ \t]++"
    rf"(?P<object>(?:{_SQL_GRANT_WORD}){{1,8}}+)to[ \t]++(?P<user>{_SQL_USER_NAME})[ \t]++{_SQL_IDENTIFIED}[^\s,;()]++"
    rf"(?:[ \t]*+,[ \t]*+{_SQL_USER_VALUE})*+",
    re.IGNORECASE,
)
# MySQL's privileges (``all privileges``, ``select, insert``, ``create temporary tables``): a
# statement that grants only these on one object reads as SQL.
_SQL_PRIVILEGE_WORDS = frozenset(
    (
        "all privileges select insert update delete create drop alter index references usage execute reload"
        " shutdown process file super event trigger proxy grant option show view databases lock tables"
        " replication slave client routine temporary tablespace user role"
    ).split()
)
# The object of a statement that reads as SQL: one name, maybe after its kind (``db.*``, ``*.*``,
# ```db`.`t```, ``table db.t``, ``procedure db.p``, or a bare ``db``).
_SQL_GRANT_OBJECT = re.compile(r"(?:(?:table|function|procedure)[ \t]++)?[^\s;]++[ \t]*+", re.IGNORECASE)
# One value of such a statement: not a placeholder (``%s``, ``?``, ``:pw``, ``{pw}``), a keyword,
# a quoted value (:data:`_SQL_PASSWORD`'s) or one already masked.
_SQL_USER_PASSWORD = re.compile(
    rf"((?<![\w-]){_SQL_IDENTIFIED})"
    r"(?!(?:identified|by|as|using|with|via|password)(?![^\s'\"`;,()\\]))(?![%{<:?'\"`]|\*\*\*)[^\s'\"`;,()\\]++",
    re.IGNORECASE,
)
# A ``GRANT``'s bare value goes only with a password's shape: a character besides letters, "-"
# and "." (``s3cret``, ``pa$$``, ``my_pw``), not a word ("identified by email", "by e-mail.").
_SQL_GRANT_PASSWORD = re.compile(
    rf"((?<![\w-]){_SQL_IDENTIFIED})"
    r"(?!(?:identified|by|as|using|with|via|password)(?![^\s'\"`;,()\\]))(?![%{<:?'\"`]|\*\*\*)"
    r"(?=[a-z.-]*+[^a-z.\-\s'\"`;,()\\])[^\s'\"`;,()\\]++",
    re.IGNORECASE,
)
# ``SET PASSWORD FOR <user> = <pw>`` unquoted, any case (its keywords say it is SQL): the value
# unless it is a placeholder, quoted (:data:`_SQL_PASSWORD`'s), a call (``PASSWORD('pw')``) or
# masked already. (``set password = pw`` is :data:`_KEY_HEADER`'s.) Each match starts at ``set``.
_SQL_SET_PASSWORD_BARE = re.compile(
    r"((?<![\w-])set[ \t]+password[ \t]+for[ \t]+[^\s=]++[ \t]*=[ \t]*+)"
    r"(?![%{<:?'\"`]|\*\*\*)(?![^\s'\"`;,()\\]*+\()[^\s'\"`;,()\\]++",
    re.IGNORECASE,
)
_SQL_OLD_PASSWORD = re.compile(rf"(?<=\*\*\*['\"])([ \t]+replace[ \t]+(?P<q>['\"])){_SQL_STRING}", re.IGNORECASE)
# Redis: ``AUTH [user] password`` as redis-py writes a failed pipeline command (``Command # 1 (AUTH
# default pw) of pipeline caused error``): the last argument goes, where the command ends there
# ("AUTH failed for user 7" is prose); ``requirepass``/``masterauth`` of a config line or ``CONFIG
# SET``. The command word is matched in capitals only.
_REDIS_ARG = r"[^\s\"'()\[\],;\\]++"
_REDIS_AUTH = re.compile(
    rf"(?<![\w-])(AUTH(?:[ \t]+{_REDIS_ARG})?[ \t]+)"
    rf"(?!(?i:{_PROSE_WORDS}|failed|failure|ok|error|succeeded|successful)(?![^\s,;.:)\]}}\"']))"
    rf"{_REDIS_ARG}(?=[ \t]*(?:[)\]\"',;\r\n]|\\[rn]|$))"
)
_REDIS_CONFIG = re.compile(
    rf"((?<![\w-])(?:requirepass|masterauth)[\"']?(?:[ \t]*[:=][ \t]*|[ \t]+)(?:b?[\"'])?)"
    rf"(?!{_PROSE_VALUE})[^\s\"'`<>,;&(){{}}\[\]\\]+",
    re.IGNORECASE,
)
# ``redis-cli -a <password>`` and the MySQL and MariaDB clients' ``-p<password>`` (no space: ``-p
# 3306`` and ``-P3306`` are other uses), after the command's name in the same command; quoted, the
# quotes stay. The arguments before the flag are read once (possessive), up to the next command
# name, the end of the command (";", "|", "&", a line end, an escaped ``\n``) or of a sentence (".",
# ",", ":", "!" or "?" before a space): "mysql connection lost; retry with ssh -p2222" is no
# mysql command line. Every such flag of the command goes, not the first alone (``redis-cli -a
# s3 --pass s4``, ``mysql -pA -pB``): :func:`_mask_cli_passwords` reads the command a flag at a
# time, each step from where the one before it ended (the rest of that word first: ``-a s3,x -a s4``).
_CLI_WORD = r"[^\s\"'`<>,;&|(){}\[\]\\]"
# The value of a password flag glued to it (``-p<pw>``, ``--password=<pw>``): the whole word, a
# leading "-" too (``-p-Xk9q``: a generated password may start with one; ``(?!-)`` let it through),
# except a word that is the flag again and again (``-p-p-p``: no password, and a run of it is read once).
_CLI_VALUE = (
    rf"(?P<q>[\"'])?(?P<v>(?(q)(?:\\.|(?!(?P=q))[^\\\r\n])*+|(?!(?:-p)++(?!{_CLI_WORD})){_CLI_WORD}+))(?(q)(?P=q)?)"
)
_CLI_ARG = r"(?:[^\s;|&\\.,:!?]++|\\(?![nrt])|[.,:!?](?=[^\s;|&]))++"
# redis-cli's ``--pass <password>`` (its long alias of ``-a``), and ``--pass=<password>`` (all of
# the word after "=", a leading "-" too). Flags between ``-a``/``--pass`` and the password are passed
# over (``-a --no-auth-warning --pass pw``, ``-a --no-auth-warning pw``: redis-cli takes the flag for
# the password, its writer meant the word after it), once each (possessive). A flag is a word of
# redis-cli's shape only: "-" and one letter or digit, "--" and lower-case words joined by "-"
# (``--no-auth-warning``, ``--user=bob``); any other word after the flag is the password, a leading
# "-" or not (``-a -Xk9q``: a generated password may start with one). An option of redis-cli that
# takes an argument is passed over with it (``-h <host>``, ``-p <port>``, ``--user <name>``): so
# ``redis-cli -a -h host`` (an unset ``$REDIS_PASSWORD``) keeps its host, and nothing is masked.
# Read strictly, redis-cli takes "-h" there for the password, but an option's name is public, and
# a password that is one (``-h``, ``--raw``) is left as the price of that; a word that is no
# option's name, or an argument of the wrong shape (``-a -p s3cret``: a port is a number) is masked.
_REDIS_CLI_SKIP = (
    r"(?:(?:-[hsudDX]|--(?:user|sni|cacert|cacertdir|cert|key|tls-ciphers|tls-ciphersuites|rdb|functions-rdb"
    rf"|pattern|quoted-pattern|eval|show-pushes))[ \t]++(?!-){_CLI_WORD}++"
    r"|(?:-[pnri]|--(?:pipe-timeout|memkeys-samples|keystats-samples|count|intrinsic-latency|lru-test))"
    rf"[ \t]++-?[0-9.]++(?!{_CLI_WORD})"
    rf"|--(?!pass=)[a-z]++(?:-[a-z]++)*+={_CLI_WORD}*+"
    rf"|(?:-[A-Za-z0-9]|--[a-z]++(?:-[a-z]++)*+)(?!{_CLI_WORD}))"
)
_REDIS_CLI = re.compile(r"(?<![\w-])redis-cli(?![\w-])")
_REDIS_CLI_STEP = re.compile(
    rf"(?:{_CLI_ARG})?+(?:[ \t]++(?!-a[ \t]|--pass[ \t=])(?!redis-cli){_CLI_ARG})*+[ \t]++"
    rf"(?:--pass=|(?:-a|--pass)(?=[ \t])(?:[ \t]++{_REDIS_CLI_SKIP})*+(?:[ \t]++(?!--pass=)(?=[\"']|{_CLI_WORD}))?+)"
    rf"(?:(?P<q>[\"'])?(?P<v>(?(q)(?:\\.|(?!(?P=q))[^\\\r\n])*+|{_CLI_WORD}++))(?(q)(?P=q)?))?+"
)
# The rest of a redis-cli command a step could read: to the next word that is the client's name
# (see :func:`_mask_cli_passwords`).
_REDIS_CLI_REST = re.compile(rf"(?:{_CLI_ARG})?+(?:[ \t]++(?!redis-cli){_CLI_ARG})*+")
_MYSQL_CLIENT = r"(?:mysql(?:dump|admin|import|check|show|pump|slap|binlog)?|mariadb(?:-?dump|-?admin)?)"
_MYSQL_CLI = re.compile(rf"(?<![\w-]){_MYSQL_CLIENT}(?:\.exe)?(?![\w-])")
# The clients' long form, ``--password=<pw>`` (and its prefixes, ``--pass=``; ``--password1=`` to
# ``3`` of multifactor login): all of the word after "=", a leading "-" too, which the generic
# :data:`_FLAG_VALUE` leaves (there a "-" may start the next flag: ``--password --user bob``).
_MYSQL_LONG_FLAG = r"--pass(?:w(?:o(?:r(?:d[123]?)?)?)?)?="
_MYSQL_CLI_STEP = re.compile(
    rf"(?:{_CLI_ARG})?+(?:[ \t]++(?!-p\S|{_MYSQL_LONG_FLAG}\S)(?!{_MYSQL_CLIENT}){_CLI_ARG})*+"
    rf"[ \t]++(?:-p|{_MYSQL_LONG_FLAG})" + _CLI_VALUE
)
_MYSQL_CLI_REST = re.compile(rf"(?:{_CLI_ARG})?+(?:[ \t]++(?!{_MYSQL_CLIENT}){_CLI_ARG})*+")
# Docker's config.json: a registry's ``"auth": "<base64 of user:password>"``.
# A match starts at a quote or at the first backslash before one (a run of backslashes is
# never rescanned from each of them). See :func:`_mask_docker_auth` for which values go.
_DOCKER_AUTH = re.compile(
    r"((?<![\w\\-])\\*+([\"'])auth\\*+\2[ \t]*+:[ \t]*+\\*+([\"']))(?P<v>[A-Za-z0-9+/]{4,}+={0,2})(?=\\*\3)"
)


def _mask_docker_auth(match: re.Match[str]) -> str:
    """A value that decodes to printable text with a ":" (``user:password``) goes, and so does
    one of 8 characters or more that is no plain word (a digit, ``+``, ``/``, ``=`` or a capital
    after the first letter in it); ``"auth": "none"``, ``"basic"``, ``"oauth2"``, ``"required"``
    stay (of 7,187 words and numbers in this repository's code, 2 decode to such text)."""
    value = match.group("v")
    bare = value.rstrip("=")
    try:  # binascii.Error (a length of 4n + 1) and UnicodeDecodeError are ValueErrors
        decoded = base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True).decode()
    except ValueError:
        decoded = ""
    if (":" in decoded and decoded.isprintable()) or (
        len(value) >= 8 and not (value.isalpha() and value[1:].islower())
    ):
        return match.group(1) + "***"
    return match.group(0)


# A command line's secret flag and its value: ``--password=s3cret``, ``--api-key s3cret``, and
# ``['pg_dump', '--password', 's3cret']`` of a logged argv (subprocess.CalledProcessError's text).
# A bare value that is prose or another flag stays. (:data:`_KEY_HEADER` starts no name after a dash.)
_FLAG_VALUE = re.compile(
    rf"(?P<head>(?=[-\"'])(?<![\w-])(?:(?P<fq>[\"'])--?{_KEY_NAME}(?P=fq)[ \t]*,[ \t]*b?"
    rf"|--?{_KEY_NAME}(?:[ \t]*(?P<eq>=)[ \t]*|[ \t]+))(?P<q>[\"'])?)"
    r"(?(q)(?:\\.|(?!(?P=q))[^\\\r\n])*+"
    # a "-" may start the next flag (``--password --user bob``), not a word glued to "="
    # (``--password=-Xk9``: a generated password may start with one)
    rf"|(?!{_PROSE_VALUE})(?(eq)(?:(?<==)|(?!-))|(?!-))[^\s\"'`<>,;&(){{}}\[\]\\]+)",
    re.IGNORECASE,
)
# A secret field whose value is a list or a tuple (``{"password": ["a", "b"]}``, ``api_key=['k1',
# 'k2']``, ``("Authorization", ["Bearer a", "Bearer b"])``, ``{'token': ('t1', 't2')}``): every
# element goes, not the first alone; an Authorization element keeps its scheme word. A ``[...]`` list
# may hold bare words (``api_key=[k1, k2]``), a ``(...)`` only quoted ones (``token: (see below)``
# is prose). The tuple of requests' and httpx's ``auth=('user', 'password')``: its second element.
# Where a list opens after ":", "=" or a tuple's ",", the name is looked for in the (at most)
# text between the previous opening bracket and this one (a name of any length: the texts searched
# never overlap, and a name is a run of word characters and dashes, tried from its start only);
# then the elements are read in one pass (possessive) and masked in another
# (:func:`_mask_secret_lists`). So the scan is linear, and a line that opens no list costs one
# search for an opening bracket. Lists and tuples nested in the value (``{"password": [["a",
# "b"]]}``, ``{'token': [('x', 'y')]}``) are read to the bracket that closes the value, at any
# depth (:func:`_nested_items_end`): every element goes.
_LIST_OPEN = re.compile(r"(?:[:=]|[\"'][ \t]*,)[ \t]*[\[(]")
_LIST_HEAD = re.compile(
    rf"(?=\w){_KEY_START}(?:(?P<auth>(?:proxy-)?authorization)|(?P<pair>auth)|{_KEY_NAME})"
    r"(?:\\*[\"']?[ \t]*[:=][ \t]*|(?(tup)\\*[\"'][ \t]*,[ \t]*|(?!)))"
    r"(?(pair)\(|(?:(?P<sq>\[)|\())\Z",
    re.IGNORECASE,
)
_BARE_ELEMENT = r"[^\s\"'`<>,;&(){}\[\]\\]+"


def _list_element(k: str, bare: bool) -> str:
    """One element of a list (its groups' names end in ``k``): quoted, or JSON-escaped (ending
    at a quote after as many backslashes), or bare in a ``[...]`` list; a quoted one may be cut
    short by the end of the line."""
    q, bs, eq = f"q{k}", f"bs{k}", f"eq{k}"
    return (
        rf"(?:b?(?P<{q}>[\"'])(?:\\.|(?!(?P={q}))[^\\\r\n])*+(?P={q})?"
        rf"|b?(?P<{bs}>\\+)(?P<{eq}>[\"'])(?:[^\\\r\n]++|(?!(?P={bs})(?P={eq}))\\++)*+(?:(?P={bs})(?P={eq}))?"
        + (rf"|{_BARE_ELEMENT})" if bare else ")")
    )


_LIST_ITEMS = re.compile(rf"[ \t]*{_list_element('a', True)}(?:[ \t]*,[ \t]*{_list_element('b', True)})*+")
_TUPLE_ITEMS = re.compile(rf"[ \t]*{_list_element('a', False)}(?:[ \t]*,[ \t]*{_list_element('b', False)})*+")
# One step of a nested value: a bracket, a comma, or an element (bare ones only inside a ``[...]``).
_NESTED_STEP = re.compile(
    rf"[ \t]*(?:(?P<open>[\[(])|(?P<close>[\])])|(?P<comma>,)|(?P<elem>{_list_element('a', False)})"
    rf"|(?P<bare>{_BARE_ELEMENT}))"
)
_AUTH_PAIR = re.compile(rf"[ \t]*{_list_element('a', False)}[ \t]*,[ \t]*(?={_list_element('b', False)}[ \t]*\))")


def _element_mask(scheme: str) -> re.Pattern[str]:
    """An element of the list read (never a quote inside one: it starts after "[", "(", "," or
    a space), its value masked unless it is prose, a placeholder or masked already; ``scheme``
    is kept before it."""
    return re.compile(
        r"(?<![^\s,\[(])(?P<lead>(?:b?(?P<bs>\\+)?(?P<q>[\"']))?" + scheme + ")"
        rf"(?!(?:{_PROSE_WORDS}|<[^<>\s\"'\\]*>|\*+)?[ \t]*(?(q)(?(bs)(?P=bs))(?P=q)|(?![^\s,\])])))"
        r"(?(q)(?(bs)(?:[^\\\r\n]++|(?!(?P=bs)(?P=q))\\++)++|(?:\\.|(?!(?P=q))[^\\\r\n])++)"
        rf"|{_BARE_ELEMENT})",
        re.IGNORECASE,
    )


_ELEMENT = _element_mask("")
_AUTH_ELEMENT = _element_mask(f"{_AUTH_SCHEMES}?")
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


def _mask_secret_lists(text: str) -> str:
    """Every element of a secret field's list or tuple value (see :data:`_LIST_HEAD`)."""
    out: list[str] = []
    done = scanned = 0
    for opening in _LIST_OPEN.finditer(text):
        if opening.end() <= scanned:  # inside a list already read
            continue
        head = _LIST_HEAD.search(text, scanned, opening.end())
        scanned = opening.end()
        if head is None:
            continue
        if head.group("pair") is not None:  # ('user', 'password'): the second
            first = _AUTH_PAIR.match(text, scanned)
            if first is None:
                continue
            scanned = first.end()
        square = head.group("sq") is not None
        items = (_LIST_ITEMS if square else _TUPLE_ITEMS).match(text, scanned)
        end = items.end() if items is not None else scanned
        if head.group("pair") is None and _NESTED_OPEN.match(text, end):  # a list or tuple inside
            end = _nested_items_end(text, scanned, square)
        if end == scanned:
            continue
        element = _AUTH_ELEMENT if head.group("auth") is not None else _ELEMENT
        out += [text[done:scanned], element.sub(r"\g<lead>***", text[scanned:end])]
        done = scanned = end
    out.append(text[done:])
    return "".join(out)


def _mask_authorization(header: re.Match[str]) -> str:
    """The credential of an Authorization value, and of each further one after a comma."""
    more = header.group("more")
    return header.group(1) + "***" + _MORE_CREDENTIAL.sub(r"\1***", more)


_NESTED_OPEN = re.compile(r"[ \t]*(?:,[ \t]*)?[\[(]")


def _nested_items_end(text: str, start: int, square: bool) -> int:
    """Where the elements of a list value (``square``) or a tuple value that opened just before
    ``start`` end, read with the lists and tuples nested in it: at the bracket that closes it, or
    at the first text that is no element, bracket or comma (a comma must come between elements;
    a bare word is an element inside a ``[...]`` only)."""
    kinds, pos, end, value_next = [square], start, start, True
    while True:
        step = _NESTED_STEP.match(text, pos)
        if step is None:
            return end
        if step.group("open") is not None:
            if not value_next:
                return end
            kinds.append(step.group("open") == "[")
        elif step.group("close") is not None:
            kinds.pop()
            if not kinds:
                return end
            value_next = False
        elif step.group("comma") is not None:
            if value_next:
                return end
            value_next = True
        else:
            if not value_next or (step.group("bare") is not None and not kinds[-1]):
                return end
            value_next = False
        pos = end = step.end()


def _mask_user_statement(statement: re.Match[str]) -> str:
    """Each unquoted password of a ``CREATE USER``/``ALTER USER`` statement (see
    :data:`_SQL_USER_STATEMENT`), whatever the case of its keywords."""
    return _SQL_USER_PASSWORD.sub(r"\1***", statement.group())


def _mask_grant_statement(statement: re.Match[str]) -> str:
    """Each unquoted password of a ``GRANT ... IDENTIFIED BY`` statement (see
    :data:`_SQL_GRANT_STATEMENT`): of any shape (``identified by secret``) where the statement
    reads as SQL, else only one with a password's shape ("grant read on the repo to users
    identified by email" is prose). It reads as SQL when its user is an account (``'bob'@'%'``,
    ``bob@localhost``), or its object is one name that is a SQL name (``db.*``, ```db`.`t```: a
    ".", "*" or quote in it) or that it grants MySQL's privileges only on (``grant all on db to
    bob``). Inside such a statement a word after ``identified by`` is taken for the password even
    where it could be prose: a leak is worse than a masked word."""
    obj, user = statement.group("object"), statement.group("user")
    privileges = statement.group("privileges").replace(",", " ").lower().split()
    sql = any(c in user for c in "@'\"`") or (
        _SQL_GRANT_OBJECT.fullmatch(obj) is not None
        and (any(c in obj for c in ".*'\"`") or _SQL_PRIVILEGE_WORDS.issuperset(privileges))
    )
    return (_SQL_USER_PASSWORD if sql else _SQL_GRANT_PASSWORD).sub(r"\1***", statement.group())


def _mask_cli_passwords(text: str, command: re.Pattern[str], step: re.Pattern[str], rest: re.Pattern[str]) -> str:
    """The value (group ``v``) of every password flag of each ``command`` in ``text``: ``step``
    reads from where the command's name, or the step before it, ended (a flag with no value, such
    as ``-a --no-auth-warning``, leaves ``v`` unset). A step that fails has read at most the rest of
    the command (``rest``: its words up to one that is the client's name), and the search for the
    next command goes on after that rest: a name inside a word (``--user=redis-cli``) starts no
    command, and searching from each such name read the rest again each time (quadratic:
    ``"mysql --user=" * 8000`` took 4 s). Each character is read a bounded number of times: linear."""
    out: list[str] = []
    done = pos = 0
    while (name := command.search(text, pos)) is not None:
        pos = name.end()
        while (flag := step.match(text, pos)) is not None:
            if flag.group("v") is not None:
                out += [text[done : flag.start("v")], "***"]
                done = flag.end("v")
            pos = flag.end()
        if (tail := rest.match(text, pos)) is not None:  # always: it matches the empty string
            pos = max(pos, tail.end())
    out.append(text[done:])
    return "".join(out)


def _mask_prefixed_token(token: re.Match[str]) -> str:
    return next(prefix for prefix in token.groups() if prefix is not None) + "***"


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
    keys (every element of a list or tuple of them too), passwords in SQL statements (MySQL's
    ``IDENTIFIED BY``), Redis ``AUTH`` and command-line flags (``redis-cli -a``/``--pass``, ``mysql -p<pw>``),
    Docker registry ``auth`` values, private keys, service-prefixed
    tokens (``ghp_``, ``sk_live_``, ``xoxb-``), and personal data. URLs are matched as written,
    JSON-escaped or percent-encoded."""
    # Private keys first: other masks would cut into a key's body and leave the rest.
    if "PRIVATE KEY" in message:
        message = _PRIVATE_KEY.sub(r"\1***\2", message)
    # The masks below only ever put "***" in, so a word missing here is missing after them.
    lower = message.lower()
    # Webhook paths next: a Teams path holds an "@", and after a port the password mask
    # took ``host:443/webhookb2/<id>@`` for ``user:password@`` and hid the host it starts with.
    message = _WEBHOOK_PATH.sub(r"\1***", message)
    message = _HOOK_KEY.sub(r"\1***", message)
    message = _TELEGRAM_PATH.sub(r"\1***", message)
    message = _TELEGRAM_TOKEN.sub("***", message)
    if "identified" in lower or "password" in lower:
        message = _SQL_PASSWORD.sub(r"\1***", message)
        message = _SQL_OLD_PASSWORD.sub(r"\1***", message)
        if "set" in lower:
            message = _SQL_SET_PASSWORD_BARE.sub(r"\1***", message)
        if "IDENTIFIED" in message:
            message = _SQL_BARE_PASSWORD.sub(r"\1***", message)
        if "user" in lower:
            message = _SQL_USER_STATEMENT.sub(_mask_user_statement, message)
        if "grant" in lower:
            message = _SQL_GRANT_STATEMENT.sub(_mask_grant_statement, message)
    if "AUTH" in message:
        message = _REDIS_AUTH.sub(r"\1***", message)
    if "requirepass" in lower or "masterauth" in lower:
        message = _REDIS_CONFIG.sub(r"\1***", message)
    if "redis-cli" in lower:
        message = _mask_cli_passwords(message, _REDIS_CLI, _REDIS_CLI_STEP, _REDIS_CLI_REST)
    if "mysql" in lower or "mariadb" in lower:
        message = _mask_cli_passwords(message, _MYSQL_CLI, _MYSQL_CLI_STEP, _MYSQL_CLI_REST)
    message = _FLAG_VALUE.sub(r"\g<head>***", message)
    message = _mask_secret_lists(message)
    message = _AUTH_HEADER.sub(_mask_authorization, message)
    message = _BEARER.sub(r"\1***", message)
    message = _KEY_QUOTED.sub(r"\g<head>***", message)
    message = _KEY_HEADER.sub(r"\1***", message)
    if "auth" in lower:
        message = _DOCKER_AUTH.sub(_mask_docker_auth, message)
    message = _COOKIE_HEADER.sub(_mask_cookies, message)
    message = mask_url_passwords(message)
    message = _SECRET_QUERY.sub(r"\1***", message)
    message = _ENCODED_SECRET_QUERY.sub(r"\1***", message)
    message = _JWT.sub("***", message)
    message = _KEY_LIKE.sub(r"\1***", message)
    message = _PREFIXED_TOKEN.sub(_mask_prefixed_token, message)
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
