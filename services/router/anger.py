"""Anger signal for chats: an explainable score from cues in the text (pure logic).

The sentiment model was trained on news headlines and reads an angry chat as neutral
("I want to close my account, you are useless and I am furious": negative 0.12), so the
router does not rely on it alone. Each cue found adds its weight once; a chat whose score
reaches the router's threshold (``TW_ROUTER_ANGER_SCORE``, 1.0: one strong cue or two
weak ones) is angry. The cues, case-insensitive unless said:

- anger and abuse (1.0): furious, livid, fuming, angry, disgrace, disgusting, useless,
  incompetent, pathetic, thieves, crooks, daylight robbery, rip-off, ridiculous,
  unacceptable, outrageous, appalling, shambles, worst, "sick of", "fed up", "had enough",
  "a joke", "you idiots"; weak (0.5): scam, unbelievable, terrible, awful, rubbish,
  shocking, annoyed, frustrated, "seriously?" (a fraud victim says "scam" calmly);
- threats of outside action (1.0): ombudsman, "report you", "complain to the FCA",
  "legal action", "sue you", "take you to court", "trading standards", "my solicitor will",
  "speak to a lawyer"; weak (0.5): a bare lawyer, solicitor, regulator or FCA ("my
  solicitor needs a statement", "are you FCA regulated?" are calm);
- profanity (1.0), masked too ("f***", "s**t", "b*stards"); mild (0.5): bloody, damn,
  "what the hell";
- shouting (1.0): three or more words in capitals in a row, one of them a common word
  (I, MY, YOU, NOW...), so a merchant name on a statement ("BGL GROUP LTD") is not
  shouting; acronyms (ATM, PIN, IBAN...) and redaction marks ([CARD]) are not counted.
  One word in capitals for emphasis ("declined AGAIN") is weak (0.5);
- repeated punctuation (0.5 each kind): "!!", "?!" or "!?", "???";
- angry emoji (1.0): 😡 🤬 😠 💢 👿 🖕.

A word cue right after a negation ("not angry", "isn't a disgrace", "not at all useless")
does not count. Wanting to close an account is not anger by itself.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import islice

STRONG = 1.0
WEAK = 0.5

_WORDS: tuple[tuple[str, float], ...] = (
    # anger and abuse
    (r"furious|livid|fuming|raging|outraged|angry", STRONG),
    (r"disgrace(?:ful)?|disgust(?:ed|ing)|appalling|outrageous|shambles|pathetic", STRONG),
    (r"useless|incompeten(?:t|ce)|ridiculous|unacceptable|worst", STRONG),
    (r"thieves|thieving|crooks|daylight robbery|rip[- ]?off|ripped (?:me )?off", STRONG),
    (r"sick (?:and tired )?of|fed up|had enough", STRONG),
    (r"(?:is|are|what) (?:a|an) (?:\w+ )?joke|you (?:bunch of )?(?:idiots|morons|clowns)", STRONG),
    (r"scam\w*|unbelievable|terrible|awful|rubbish|shocking|annoy(?:ed|ing)|frustrat\w+", WEAK),
    (r"seriously\s*\?", WEAK),
    # threats of outside action
    (r"ombudsman|report(?:ing)? you|legal action|trading standards|su(?:e|ing) you", STRONG),
    (r"(?:take|taking) (?:you|this|it) to court", STRONG),
    (r"(?:report|complain)\w* (?:\w+ ){0,3}to (?:the )?(?:fca|regulators?)", STRONG),
    (r"(?:my|our) (?:lawyers?|solicitors?) (?:will|'ll|is going to|are going to)", STRONG),
    (
        r"(?:call|contact|get|see|speak|talk|hear from|instruct|involv)\w* (?:to |with )?(?:my|a|our) "
        r"(?:lawyers?|solicitors?)",
        STRONG,
    ),
    (r"lawyers?|solicitors?|regulators?|fca|financial conduct authority", WEAK),
    # profanity
    (r"fuck\w*|shit\w*|bullshit|crap|crappy|bollocks|bastards?|piss(?:ed)?|twats?|wankers?", STRONG),
    (r"arse(?:holes?)?|assholes?|wtf|ffs", STRONG),
    (r"bloody|damn(?:ed)?|what the hell", WEAK),
)
# One pattern per line; where matches overlap, _word_cues keeps the strongest, then the longest.
_WORD_RE = [(re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE), weight) for pattern, weight in _WORDS]
# A letter, then masking ("f***", "s**t", "b*stards"); a lone footnote star ("terms*") is not.
_MASKED = re.compile(r"(?<!\w)[^\W\d_]+(?:(?:[*#]+[^\W\d_]+)+(?!\w)|[*#]{2,}(?![\w*#]))")
# Up to two filler words between the negation and the cue, no punctuation.
_FILLER = r"(?:a|an|at|all|really|very|so|that|too|even|remotely|the)"
_NEGATED = re.compile(rf"(?:(?<!\w)(?:not|no|nothing|hardly)|n['’]t)\s+(?:{_FILLER}\s+){{0,2}}$", re.IGNORECASE)
_PUNCTUATION = re.compile(r"[!?]{2,}")
_EMOJI = "😡🤬😠💢👿🖕"

_WORD = re.compile(r"\w+(?:['’]\w+)*")
_REDACTED = re.compile(r"\[[A-Z]+\]")
ACRONYMS = frozenset(
    "ATM PIN IBAN BIC SWIFT SEPA CVV CVC FCA UK US USA EU GBP EUR USD ID OK PDF SMS OTP NFC BACS CHAPS ISA APR "
    "HMRC DVLA NHS ASAP VAT IVA CCJ DD TV PC URL FAQ".split()
)
# A shouted run needs one of these: "WHERE IS MY MONEY", "HUMAN. AGENT. NOW." ("STEAM GAMES" is not).
_COMMON = frozenset(
    "I ME MY YOU YOUR WE OUR IT IS ARE WAS BE THE THIS THAT WHAT WHERE WHY HOW WHO WHEN NOW NOT NO DO DID "
    "DOES DON'T CAN CAN'T WILL WON'T JUST GET GIVE WANT NEED STOP HELP PLEASE STILL AGAIN HAVE HAS AND OR TO OF "
    "FOR ON IN AT WITH ALL".split()
)
_SHOUT_RUN = 3
_LABEL_MAX = 30
_MATCHES_MAX = 20


@dataclass(frozen=True)
class Cue:
    """One sign of anger: how the reason names it, and its weight."""

    label: str
    weight: float


@dataclass(frozen=True)
class Anger:
    cues: tuple[Cue, ...]

    @property
    def score(self) -> float:
        return sum(c.weight for c in self.cues)

    def explain(self, most: int = 4) -> str:
        """The strongest cues, for a routing reason: "'furious', 'useless'" (never the whole text)."""
        ranked = sorted(self.cues, key=lambda c: -c.weight)[:most]
        return ", ".join(c.label for c in ranked)


def has_letters(text: str) -> bool:
    """Whether ``text`` has a letter (Unicode category L*): emoji, digits and punctuation
    alone give the models nothing to read."""
    return any(unicodedata.category(ch).startswith("L") for ch in text)


def anger(text: str) -> Anger:
    cues = [*_word_cues(text), *_shouting(text), *_punctuation(text), *_emoji(text)]
    return Anger(tuple(cues))


def _quote(s: str) -> str:
    s = " ".join(s.split())
    return f"'{s[:_LABEL_MAX]}'"


def _word_cues(text: str) -> list[Cue]:
    """Lexicon matches, strongest and longest first, none overlapping one already taken
    ("speak to my solicitor" is one threat, not a threat and a weak "solicitor")."""
    found: list[tuple[int, int, float]] = []
    for pattern, weight in (*_WORD_RE, (_MASKED, STRONG)):
        # the first few of each are enough to score and explain, and keep the overlap check short
        found += [(m.start(), m.end(), weight) for m in islice(pattern.finditer(text), _MATCHES_MAX)]
    found.sort(key=lambda f: (-f[2], f[0] - f[1]))
    taken: list[tuple[int, int, float]] = []
    for start, end, weight in found:
        if any(start < e and s < end for s, e, _ in taken) or _NEGATED.search(text[max(0, start - 40) : start]):
            continue
        taken.append((start, end, weight))
    cues: dict[str, Cue] = {}
    for start, end, weight in sorted(taken):  # in the text's order
        label = _quote(text[start:end].lower())
        cues.setdefault(label, Cue(label, weight))
    return list(cues.values())


def _shouting(text: str) -> list[Cue]:
    runs: list[list[str]] = [[]]
    for word in (m.group() for m in _WORD.finditer(_REDACTED.sub(" ", text))):
        if len(word) == 1 or word in ACRONYMS or not word.replace("'", "").replace("’", "").isalpha():
            continue  # "I", "PIN", "ES91", "2AB": neither shouting nor a break in it
        if word.isupper():
            runs[-1].append(word)
        elif runs[-1]:
            runs.append([])
    shouted = [r for r in runs if len(r) >= _SHOUT_RUN and _COMMON.intersection(w.replace("’", "'") for w in r)]
    if shouted:
        return [Cue(f"shouting ({max(len(r) for r in shouted)} words in capitals)", STRONG)]
    emphasis = next((r[0] for r in runs if r), None)  # "declined AGAIN"
    return [Cue(_quote(emphasis), WEAK)] if emphasis else []


def _punctuation(text: str) -> list[Cue]:
    """Each kind once, a mixed run ("?!!!") as its mix."""
    kinds: dict[str, str] = {}
    for m in _PUNCTUATION.finditer(text):
        run = m.group()
        kind = "?!" if "?" in run and "!" in run else run[0]
        if kind != "?" or len(run) >= 3:
            kinds.setdefault(kind, run)
    return [Cue(_quote(run[:5]), WEAK) for run in kinds.values()]


def _emoji(text: str) -> list[Cue]:
    return [Cue(f"'{e}'", STRONG) for e in _EMOJI if e in text]
