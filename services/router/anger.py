"""Anger signal for chats: an explainable score from cues in the text (pure logic).

The sentiment model was trained on news headlines and reads an angry chat as neutral
("I want to close my account, you are useless and I am furious": negative 0.12), so the
router does not rely on it alone. Each cue found adds its weight once; a chat whose score
reaches the router's threshold (``TW_ROUTER_ANGER_SCORE``, 1.0: one strong cue or two
weak ones) is angry. Only the first 4,000 characters are read (``SCAN_CHARS``): the score
costs the same for any longer chat, and a cue past them does not count. The cues,
case-insensitive unless said:

- anger and abuse (1.0): furious, livid, fuming, angry, disgrace, disgusting, useless,
  incompetent, pathetic, ridiculous, unacceptable, outrageous, appalled, appalling, shambles,
  daylight robbery, rip-off, "fed up", "a joke", "beyond a joke", "absolute/complete/total/
  utter joke", "you idiots" ("you're idiots", "you people are idiots"), "thanks for nothing",
  sarcastic thanks for a wrong ("thank you for stealing/wasting/ignoring..."; "... ignoring my
  question and just fixing it", "... ignoring the fee, that was kind", "wasting no time" thank), "how
  dare you", "how many times do I have to ask/call/tell..."; "I hate you/this bank/your app" ("I hate
  to bother you", "I hate the people who stole my card", "I hate this app's font size, how can I make
  it bigger?" are calm); and words that are anger only
  when aimed at the bank: "you thieves", "bunch of crooks", "worst bank/service/app" ("worst.
  bank. ever."), "you're the worst", "what is the point of you?", "sick of this/your/waiting",
  "had enough of you/this" or "had enough." ("thieves stole my card", "the worst part is",
  "what's the point of you sending a code?", "sick of flu", "had enough money" are calm); weak (0.5): scam,
  unbelievable, terrible, awful, rubbish, shocking, annoyed, frustrated, "seriously?" (a
  fraud victim says "scam" calmly);
- threats of outside action (1.0): ombudsman, "report you", "complain to the FCA",
  "legal action", "sue you", "sue the bank", "will/going to sue", "I'm/will be suing", "take
  you/the bank/this to court", "see you in court", "trading standards", "my solicitor will be in
  touch", "you'll hear from my lawyer" ("ask Sue to call me", "the court case on the news", a suit
  against someone else: "I am suing my landlord", "sue our builder", "take my son to court", are
  calm); weak (0.5): any other lawyer, solicitor, regulator or FCA ("my solicitor will need a
  statement", "can I speak to a solicitor?", "are you FCA regulated?" are calm);
- profanity (1.0), whole words only ("Shittu", "shitake" are not), and masked forms of
  those words ("f***", "s**t", "b*stards"; a masked email or name, "j***@", "M******", is
  not); a masked word showing only its first letter ("s***") is weak, but "f***" is not; those
  words spelt with a sign or digit for a letter between letters ("f@ck", "sh!t", "sh1t") or
  misspelt ("fcuk", "fck", "fkn"); a lexicon word with a letter said three times or more is
  that word ("angryyy", "furiousss", "uselesssss");
  "bs" as a verdict ("this is bs", "total BS", "BS!", "Bs excuse"; "jobs", "BSc", "BS1" are not),
  weak (0.5) in lower case without one ("they sent me bs"), in capitals only as one ("BS 7671",
  "BS 8 1TH", "a BS in Finance", "Nationwide BS", "Yorkshire BS?", "from a BS?", "What is BS?",
  "my bs number", "no BS pricing" are not);
  mild (0.5): bloody, damn, "what/why/where the hell";
- shouting (1.0): a run of three or more words in capitals with I, ME, MY, YOU, YOUR, WE,
  OUR or NOW in it ("WHERE IS MY MONEY", "HUMAN. AGENT. NOW.", "I CAN NOT LOG IN"), that
  is not quoted: not in quotes, not after says/said/shows/message/error/code/payee/ref/reads/
  text/reason/status... ("the terminal said CALL YOUR BANK"), not after a colon ("The error says:
  ACCOUNT LOCKED", "Update: I HAVE FOUND MY CARD", "PS: I WILL BE ABROAD") but the few lead-ins that
  repeat the customer's words ("As I said: I WANT MY MONEY BACK", "Listen:", "I repeat:", "Again:"
  shout), not a statement line ("DIRECT
  DEBIT TO SKY DIGITAL FOR MY TV") and not thanks. Acronyms (ATM, PIN, IBAN...) and
  redaction marks ([CARD]) are not counted. A greeting or "please" in the run makes it a
  caps-lock typist's request ("HI I WOULD LIKE TO CHECK MY BALANCE PLEASE"), unless it
  demands now: NOW or IMMEDIATELY in a run that asks nothing (no CAN, COULD, WOULD, MAY),
  thanks no one and demands what is owed or broken (MONEY, FUNDS, CASH, REFUND, FIX), greeting
  or not ("HI PLEASE GIVE ME MY MONEY BACK NOW"), or "!!" after it; a plain request for now
  is a caps-lock typist's ("PLEASE CALL ME BACK NOW", "HELLO PLEASE SEND MY NEW CARD NOW",
  "HELLO CAN YOU SEND MY NEW CARD NOW PLEASE", "DEAR SIR PLEASE CLOSE MY ACCOUNT IMMEDIATELY",
  "HI MY REFUND HAS COME THROUGH NOW THANKS" are calm). A greeting alone, in a run that asks
  nothing, does not soften an accusation aimed at the bank (YOU/YOUR/THE BANK and STOLEN, ROBBED,
  THIEVES...) or WHERE ... MY MONEY/FUNDS/CASH not FROM someone ("HI WHERE IS MY MONEY", "DEAR SIR
  YOU HAVE STOLEN MY MONEY"; "DEAR SIR MY CARD WAS STOLEN", "HELLO WHERE IS MY REFUND FROM AMAZON",
  "HI WHERE IS MY NEW CARD" are calm). One word in capitals for emphasis
  ("declined AGAIN", "STILL") is weak (0.5); a name in capitals ("DHL", "BT") is nothing;
- repeated punctuation (0.5 each kind): "!!", "?!" or "!?", "???"; in a chat that thanks
  or praises ("Thank you so much!!", "Great news!!") "!!" and emphasis do not count, unless the
  thanks are sarcastic: for a wrong, or for a setback with emphasis in capitals ("Thanks for
  blocking my card AGAIN!!"; "Thanks for blocking my card!!" thanks);
- angry emoji (1.0): 😡 🤬 😠 💢 👿 🖕.

An anger or threat cue right after a negation ("not angry", "never angry", "not even a
little bit angry", "isn't a disgrace", "nothing to be angry about") does not count, nor a
threat one declines ("I don't want to take legal action", "no need to contact the
ombudsman", "without legal action", "resolved without going to the ombudsman"; up to three
words between, in the same clause: "without warning I will sue you", "I'm not going to wait
we will take legal action" threaten; one taken up after a "but", "I never wanted to sue you
but here we are", "... but you leave me no choice", threatens), nor a threat asked about in a question that begins
how do/can/.., where, who, what, which, when, can, could, should, do, does, is, would I or
will I and ends in "?" ("How do I complain to the ombudsman?", "Should I complain to the
ombudsman?", "Would I have to pay to go to the ombudsman?"), unless the question is aimed at
you ("How do I report you to the FCA?", "Can I complain to the ombudsman about your fees?";
an opening "can you"/"could you" only asks), offers the threat as the alternative ("Where is
my refund or do I have to go to the ombudsman?"), asks whether the customer is made to take
it up (do/will/would I/we [really] have/need/got to, then the threat or go, get, take,
complain, escalate, contact, write, report, turn, bring, start or involve and up to three
words before it: "Do I have to go to the ombudsman to get my money back?", "Will I have to
take legal action?"; "Do I have to wait 8 weeks before I can go to the ombudsman?" only
asks) or is exclaimed ("?!"). A time limit after the threat asks about the process, whoever
it names ("Do I need to contact the ombudsman within six months of your final response?").
A negation in a question that opens with a verb or how/why/who and at most three words before it
asks for agreement and does not cancel the cue ("Is this not a disgrace?", "Is it not ridiculous
that...?", "How is this not a disgrace?", "Who wouldn't be furious?"; "I'm not angry, is that
ok?" denies). Profanity is never negated ("no fucking way").
Wanting to close an account is not anger by itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

STRONG = 1.0
WEAK = 0.5
SCAN_CHARS = 4_000

_ANGER, _THREAT, _PROFANITY = "anger", "threat", "profanity"
_NEGATABLE = frozenset({_ANGER, _THREAT})

# Single words: a word's own pattern runs only on a text that has the word.
_SINGLE: tuple[tuple[str, float, str], ...] = (
    (
        "furious livid fuming raging outraged angry disgrace disgraceful disgusted disgusting appalled appalling "
        "outrageous shambles pathetic useless incompetent incompetence ridiculous unacceptable",
        STRONG,
        _ANGER,
    ),
    (
        "scam scams scammed scammer scammers scamming unbelievable terrible awful rubbish shocking annoyed "
        "annoying frustrated frustrating frustration",
        WEAK,
        _ANGER,
    ),
    ("ombudsman", STRONG, _THREAT),
    ("lawyer lawyers solicitor solicitors regulator regulators fca", WEAK, _THREAT),
    (
        "fuck fucks fucked fucker fuckers fucking fuckin fuckwit fuckwits motherfucker motherfuckers "
        "motherfucking shit shits shite shitty shitting shithole shitshow bullshit crap crappy bollocks "
        "bastard bastards piss pissed pissing twat twats wanker wankers arse arsehole arseholes asshole "
        "assholes cunt cunts dickhead dickheads wtf ffs "
        # misspelt on purpose: "fcuk you", "fck this bank", "fkn idiots"
        "fcuk fcuking fck fcking fckin fuk fuking fukin fkn fking",
        STRONG,
        _PROFANITY,
    ),
    ("bloody damn damned", WEAK, _PROFANITY),
)
_WORD_CUES: dict[str, tuple[float, str]] = {
    word: (weight, kind) for words, weight, kind in _SINGLE for word in words.split()
}
_WORD_CUE_RE = {word: re.compile(rf"(?<!\w){word}(?!\w)", re.IGNORECASE) for word in _WORD_CUES}

_INSULTS = r"(?:thieves|crooks|robbers|cowboys|criminals)"
_INTENSIFIER = (
    r"(?:(?:absolute|utter|complete|total|bloody|fucking|f\*+ing|legali[sz]ed|legal|lying|dirty|greedy|common"
    r"|a bunch of|a load of|a pack of) )?"
)
_LAWYER = r"(?:lawyers?|solicitors?)"
# What "I hate ..." is aimed at ("the people who stole my card" are not the bank).
_HATED = (
    r"(?:bank|banks|banking|service|app|company|staff|team|website|helpline|customer service|call centre"
    r"|call center)"
)
# Whom a suit or a court case aimed at the bank names: "sue you", "take the bank to court", "sue this bank".
_SUED = (
    r"(?:you(?: lot| people| guys| all)?|u|them|(?:this|that|it)(?=\s*(?:[^\w\s]|$)|\s+to court)"
    r"|(?:the|this|your|that) (?:\w+ )?(?:bank|banks|company|building society|lot|people|firm|business|matter|case))"
)
# ...and a word that opens an object after "sue"/"suing": someone else is sued ("suing my landlord", "suing
# me", "sue our builder", "suing the airline", "suing Ryanair"); none ("I will sue!", "I'm suing if...") or
# the bank ("suing the bank") is a threat.
_NOT_SUED = (
    rf"(?!{_SUED}(?!\w))(?:my|our|his|her|their|its|your|this|that|these|those|me|him|us|the|a|an|some|someone"
    r"|somebody|(?-i:(?!I\b)[A-Z])\w*)(?![\w'’])"
)
# A feature of the app disliked, then a question how to use it: "I hate this app's font size, how can I make
# it bigger?", "I hate the banking app update, where did the pots go?" ask for help ("I hate your app" is anger).
_FEATURE_ASKED = (
    r"(?:['’]s| (?:\w+ )?(?:update|updates|layout|design|font|fonts|colour|colours|color|colors|scheme|theme|look"
    r"|interface|menu|menus|button|buttons|icon|icons|logo|version|screen|screens|page|pages|feature|features"
    r"|notification|notifications))(?!\w)[^?\n]{0,120}\?"
)
# A wrong done, that no one thanks for but in sarcasm.
_WRONGS = frozenset("stealing robbing scamming ripping wasting ignoring screwing fleecing conning".split())
_WRONGED = rf"(?:{'|'.join(sorted(_WRONGS))})"
# ...unless the sentence goes on to a fix or real thanks, or the wrong is none: "Thank you for ignoring my silly
# question and just fixing it!", "Thanks for ignoring the late fee, that was kind", "wasting no time".
_REDEEMED = (
    r"(?:\s+(?:no|nothing|zero)(?!\w)|[^.!?\n]{0,120}?(?<!\w)(?<!not )(?<!never )(?<!n['’]t )(?:fixing|fixed|sorting"
    r"|sorted|resolving|resolved|quickly|appreciate|appreciated|kind|kindly)(?!\w))"
)
_REDEEMED_RE = re.compile(_REDEEMED, re.IGNORECASE)
_SERVICE = (
    r"(?:bank|banks|banking|service|services|app|apps|company|experience|support|staff|people|team|website"
    r"|helpline|customer service|call centre|call center)"
)
# Phrases: (words one of which must be in the text, pattern, weight, kind); a pattern is run
# only on a text that has one of its words.
_PHRASES: tuple[tuple[str, str, float, str], ...] = (
    # abuse aimed at the bank ("you people are thieves"), not a noun ("thieves stole my card")
    (
        "thieves crooks robbers cowboys criminals",
        rf"(?:you (?:lot|people|guys|all) (?:are|r)|you are|you['’]re|(?:bunch|pack|lot|load|band|den) of"
        rf"|nothing but|such) {_INTENSIFIER}(?P<cue>{_INSULTS})",
        STRONG,
        _ANGER,
    ),
    # "refund me you thieves!", but not "I told you thieves stole it"
    (
        "thieves crooks robbers cowboys criminals",
        rf"you {_INTENSIFIER}(?P<cue>{_INSULTS})(?=\s*(?:[^\w\s]|$))",
        STRONG,
        _ANGER,
    ),
    (
        "thieving crooked",
        r"(?:thieving|crooked) (?:\w+ )?(?:bank|banks|lot|gits|scum|bastards|company|sods|swine|idiots|people)",
        STRONG,
        _ANGER,
    ),
    # "you idiots", and said of you: "you're idiots", "you people are idiots"
    (
        "idiots morons clowns imbeciles",
        r"(?:you|you (?:lot|people|guys|all) (?:are|r)|you are|you['’]re|ur) (?:all )?(?:such |absolute |complete "
        r"|total |utter |bloody |fucking |(?:a )?(?:bunch|lot|load|pack) of )?(?:idiots|morons|clowns|imbeciles)",
        STRONG,
        _ANGER,
    ),
    # hatred aimed at the bank ("I hate this bank", "I hate you"), not "I hate to bother you"; in capitals
    # ("I HATE THIS BANK") it is shouting, named so
    (
        "hate",
        rf"(?-i:(?!HATE))hate (?:you(?: lot| people| guys| all)?(?![\w'’])"
        rf"|(?:your|this|the|these) (?:\w+ )?{_HATED}(?!\w)(?!{_FEATURE_ASKED}))",
        STRONG,
        _ANGER,
    ),
    # sarcastic thanks for a wrong done ("THANK YOU FOR STEALING MY MONEY")
    (
        "thank thanks",
        rf"thanks? (?:you )?(?:so much |very much |a lot )?for (?:(?!not |never )\w+ )?{_WRONGED}(?!\w)(?!{_REDEEMED})",
        STRONG,
        _ANGER,
    ),
    # "worst. bank. ever." too
    ("worst", rf"(?P<cue>worst)(?: (?:\w+ ){{0,2}}?{_SERVICE}|\. {_SERVICE}\. ever)", STRONG, _ANGER),
    ("worst", r"you(?:['’]re| are| lot are| people are| guys are) (?:\w+ )?the (?P<cue>worst)", STRONG, _ANGER),
    (
        "sick",
        r"sick (?:and tired )?of (?:you|your|this|that|these|those|it|them|the (?:way|same|service|bank|app)"
        r"|being|\w+ing)",
        STRONG,
        _ANGER,
    ),
    (
        "enough",
        r"had (?:just |really |quite )?enough"
        r"(?= of (?:you|your|this|that|these|those|it|them|the|being|\w+ing)(?!\w)|\s*(?:[.!,;]|$)"
        r"| (?:now|already|today)(?!\w))",
        STRONG,
        _ANGER,
    ),
    ("fed", r"fed up", STRONG, _ANGER),
    ("robbery rip ripoff ripped", r"daylight robbery|rip[- ]?off|ripped (?:me )?off", STRONG, _ANGER),
    (
        "joke",
        r"(?:is|are|what) (?:a|an) (?:\w+ )?joke|beyond a joke|(?:absolute|complete|total|utter) joke",
        STRONG,
        _ANGER,
    ),
    # contempt aimed at the bank ("what is the point of you?"), not a question ("... of you sending a code")
    ("point", r"what(?:['’]s| is) the point of you(?: lot| people| guys)?(?=\s*(?:[^\w\s]|$))", STRONG, _ANGER),
    ("nothing", r"thanks? (?:you )?for nothing", STRONG, _ANGER),
    ("seriously", r"seriously\s*\?", WEAK, _ANGER),
    # threats of outside action
    (
        "report reporting legal trading sue suing",
        r"report(?:ing)? you|legal action|trading standards|su(?:e|ing) you",
        STRONG,
        _THREAT,
    ),
    # "take you to court", "take the bank to court", "see you in court" ("the court case on the news" is none;
    # "take my son to court", "taking the estate to court" take someone else)
    (
        "court",
        rf"(?:take|taking|took) {_SUED} to court|see (?:you|u|ya|them) (?:all )?in court",
        STRONG,
        _THREAT,
    ),
    # "I'm going to sue the bank", "I will be suing", not Sue the name ("ask Sue to call me", "going to Sue's")
    # nor a suit against someone else ("I am suing my landlord", "my ex is suing me", "sue our builder")
    (
        "sue suing",
        rf"su(?:e|ing) {_SUED}(?!\w)"
        r"|(?:(?:(?<=will )|(?<=['’]ll )|(?<=going to )|(?<=gonna )|(?<=shall )|(?<=want to )|(?<=have to )"
        r"|(?<=need to ))sue|(?:(?<=be )|(?<=am )|(?<=are )|(?<=is )|(?<=['’]m )|(?<=['’]re ))suing)"
        rf"(?![\w'’])(?!\s+{_NOT_SUED})",
        STRONG,
        _THREAT,
    ),
    (
        "fca regulator regulators authority",
        r"(?:report|complain)\w* (?:\w+ ){0,3}to (?:the )?(?:fca|regulators?|financial conduct authority)",
        STRONG,
        _THREAT,
    ),
    (
        "lawyer lawyers solicitor solicitors",
        rf"(?:my|our) {_LAWYER} (?:will|['’]ll|is going to|are going to|shall) (?:be in touch|be contacting you"
        rf"|contact you|be writing to you|write to you|be hearing|deal with (?:you|this)|sue|be suing"
        rf"|take (?:you|this) to court|take action|take this further|hear about this)"
        rf"|hear(?:ing)? from (?:my|our) {_LAWYER}"
        rf"|(?:get|getting|bring|bringing) (?:my|a|our) {_LAWYER} involved|involv\w* (?:my|a|our) {_LAWYER}",
        STRONG,
        _THREAT,
    ),
    ("financial", r"financial conduct authority", WEAK, _THREAT),
    ("dare", r"how dare (?:you|they|your)", STRONG, _ANGER),
    (
        "times",
        # aimed at the bank or left hanging ("... ask for my refund", "... call you", "... tell you?!"), not
        # a question about a process ("how many times do I need to call to activate it?")
        r"how many (?:more )?times (?:do|have|must|will|did) (?:i|we) (?:have to |need to |got to |gotta )?"
        r"(?:ask(?:ed)?|call(?:ed)?|tell|told|explain(?:ed)?|r[ai]ng|repeat(?:ed)?|chased?|phoned?|email(?:ed)?"
        r"|contact(?:ed)?|write|wrote|written|say|said)"
        r"(?=\s+(?:you|your|u|ya|this|for|about|already)(?!\w)|\s*[.?]*\s*$|\s*\?*!)",
        STRONG,
        _ANGER,
    ),
    ("hell", r"(?:what|why|where|who|how) (?:on earth |in )?the hell", WEAK, _PROFANITY),
)
_PHRASE_RE = [
    (frozenset(keys.split()), re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE), weight, kind)
    for keys, pattern, weight, kind in _PHRASES
]

# Masked forms of these: "f***", "s**t", "b*stards", "f***ing".
_MASKABLE = (
    "fuck fucks fucked fucker fuckers fucking fuckin motherfucker motherfucking shit shite shitty bullshit "
    "bastard bastards bitch bitches cunt cunts crap twat twats wanker wankers arsehole asshole dickhead "
    "bollocks piss pissed prick"
).split()
_MASKABLE_BY_LENGTH: dict[int, list[str]] = {}
for _w in _MASKABLE:
    _MASKABLE_BY_LENGTH.setdefault(len(_w), []).append(_w)
_MASK = "*#"
_MASKED = re.compile(r"(?<![\w*#])(?:[^\W\d_]|[*#])+(?![\w*#])")
# ...and spelt with a sign or digit for a letter between letters: "f@ck", "sh!t", "sh1t" (each sign
# starts a repetition: linear).
_LEET_LETTERS = {"@": "aou", "$": "s", "!": "il", "1": "il", "0": "o"}
_LEET = re.compile(r"(?<![\w*#@$!])[^\W\d_]+(?:[@$!01][^\W\d_]+)+(?![\w*#@$])")
# A letter said three times or more: "angryyy", "furiousss", "fuuuuck".
_STRETCH = re.compile(r"([^\W\d_])\1{2,}")

_FILLER = (
    r"(?:a|an|at|all|any|bit|little|really|very|so|that|too|even|ever|remotely|the|be|being|get|getting"
    r"|feel|feeling|to|slightest|particularly|overly)"
)
_NEGATION = r"(?:(?<!\w)(?:not|no|nothing|hardly|never|nor)|n['’]t)"
# Up to four filler words between the negation and the cue, no punctuation.
_NEGATED = re.compile(rf"{_NEGATION}\s+(?:{_FILLER}\s+){{0,4}}$", re.IGNORECASE)
# A new clause's subject (and, for "you", which may be an object, its verb): the declined
# threat's window stops there. "without warning I will sue you", "not going to wait we are
# taking legal action" threaten; a contraction ("I'll", "I'm") already ends the window.
_NEW_SUBJECT = (
    r"(?:i|im|we|he|she|they|you\s+(?:will|shall|would|are|can|could|must|should|might|may|have|had"
    r"|do|did|need|want|gonna))\s"
)
# A threat declined: "I don't want to take legal action", "no need to contact the ombudsman":
# up to three words between the decliner and the threat, none starting a new clause.
_DECLINED = re.compile(
    rf"(?:(?<!\w)without|{_NEGATION}\s+(?:\w+\s+)?(?:want|wish|need|intend|plan|mean|going|looking|trying"
    rf"|intention|desire)\w*\s+(?:to|of|for))\s+(?:(?!{_NEW_SUBJECT})\w+\s+){{0,3}}$",
    re.IGNORECASE,
)
_NEGATION_WINDOW = 60
# A negation in a question that opens so asks for agreement, it does not deny: "Is this not a disgrace?",
# "Is it not ridiculous that...?", "How is this not a disgrace?", "Who wouldn't be furious?" ("I'm not
# angry, is that ok?" denies: the question is another clause, as does "Is this not the right queue?": no cue).
_RHETORICAL = re.compile(
    r"\s*(?:how|why|who|is|isn['’]t|was|wasn['’]t|are|aren['’]t|were|weren['’]t|would|wouldn['’]t|could"
    r"|couldn['’]t|does|doesn['’]t|do|don['’]t|did|didn['’]t|can|can['’]t|should|shouldn['’]t|has|hasn['’]t"
    r"|have|haven['’]t)(?:\s+[\w'’]+){0,3}\s*",
    re.IGNORECASE,
)
_QUESTION_END = re.compile(r"[^.!?\n]*\?")
# A declined threat taken up after all: "I never wanted to sue you but here we are", "I don't want to take
# legal action but you leave me no choice" ("...but please refund me" still declines it).
_TAKEN_UP_WINDOW = 80  # characters after the threat: the "but" follows it closely, and a long clause costs no more
_TAKEN_UP = re.compile(
    r"[^.!?\n]*?(?<!\w)but\s+(?:here\s+we\s+are|(?:i|we)(?:['’]ll|\s+will|\s+shall|\s+must|\s+have\s+to"
    r"|\s+am\s+going|['’]m\s+going|\s+are\s+going|['’]re\s+going|\s+have\s+no)|you\s+(?:leave|have\s+left|left"
    r"|give|gave)\s+me\s+no|now|there['’]?s\s+no|(?:i|we)\s+(?:can['’]t|cannot)\s+see)(?!\w)",
    re.IGNORECASE,
)
# A question how to complain or escalate: a clause that begins so, to a "?" with no "!".
_ASKING = re.compile(
    r"\s*(?:how (?:do|does|can|could|should|would|will|is|are|to)|where|who|what|which|when"
    r"|can|could|should|do|does|is|(?:would|will) (?:i|we))(?!\w)",
    re.IGNORECASE,
)
# ...but one whether the customer is made to take the threat up implies it: "Do I have to go to
# the ombudsman to get my money back?", "Will I have to take legal action?" ("Do I have to wait 8
# weeks before I can go to the ombudsman?" and "Would I have to pay to go to it?" only ask).
_OBLIGED = re.compile(
    r"\s*(?:do|will|would) (?:i|we) (?:really |actually |just )?(?:have|need|have got|got) to (?:(?:go|get|take"
    r"|complain|escalate|contact|write|report|turn|bring|start|involve)(?: \w+){0,3} )?$",
    re.IGNORECASE,
)
# A question that opens by asking you ("Could you tell me how to contact the ombudsman?") aims at no one.
_ASKS_YOU = re.compile(r"\s*(?:can|could|would|will|do) you(?!\w)", re.IGNORECASE)
# ...but one that names you or offers the threat as the alternative does.
_AIMED = re.compile(r"(?<!\w)(?:you|your|or)(?!\w)", re.IGNORECASE)
_ASKED_END = re.compile(r"[^.!?\n]*\?(?![?!]*!)")
# A time limit after the threat asks about the process, not whether one is made to take it up: "Do I
# need to contact the ombudsman within six months of your final response?" ("your final response" is
# the complaint procedure's letter, not aimed at you).
_TIME_LIMIT = re.compile(
    r"\s+(?:(?:(?:with)?in|before|after|by|until|once|no later than|up to)\s+(?:the\s+|a\s+|an\s+)?"
    r"(?:(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|few)\s+)?"
    r"(?:(?:calendar|working|business)\s+)?(?:days?|weeks?|months?|years?)"
    r"|(?:within|before|after|once|until)\s+(?:\w+\s+){0,3}?(?:final response|deadlock letter|final decision))"
    r"(?:\s+(?:of|from|after)\s+(?:\w+\s+){0,3}?(?:final response|deadlock letter|response|decision|letter|reply"
    r"|complaint)s?)?(?!\w)",
    re.IGNORECASE,
)
_CLAUSE_ENDS = ".!?;,\n"
_AT_YOU = re.compile(r"(?<!\w)you(?!\w)", re.IGNORECASE)
_POSITIVE = frozenset(
    "thank thanks thankyou thx great love lovely brilliant amazing perfect wonderful excellent fantastic awesome "
    "appreciate appreciated happy glad delighted helpful pleased".split()
)
_POSITIVE_RE = re.compile(rf"(?<!\w)(?:{'|'.join(_POSITIVE)})(?!\w)", re.IGNORECASE)
# "thanks [you] [so much] for <verb>ing ...", to the sentence's end: sarcastic for a wrong or, said again
# in capitals, a setback.
_THANKED_FOR = re.compile(
    r"(?:\s+(?:you|u|a\s+lot|so\s+much|very\s+much)){0,2}\s+for\s+(?P<verb>\w+ing)(?P<rest>[^.!?\n]*)",
    re.IGNORECASE,
)
_SETBACKS = frozenset(
    "blocking declining freezing cancelling canceling charging closing locking rejecting refusing losing "
    "suspending stopping bouncing overcharging messing".split()
)
_PUNCTUATION = re.compile(r"[!?]{2,}")
_BS = re.compile(r"(?<!\w)bs(?!\w)", re.IGNORECASE)
# "BS" naming a standard, a postcode, a degree, a building society account or its number: "BS 7671",
# "BS EN 60898", "BS 1 4DJ", "BS degree", "my BS savings account", "my bs number", "BS No. 12345".
_BS_NAMED = re.compile(
    r"\s*(?:\d|(?:en|iso|standards?|degree|accounts?|acc|savings|mortgage|branch|isa|numbers?|num|nr|code"
    r"|sort|references?|ref|roll|membership|member|society|details)(?!\w)|no(?=\s*(?:[.:#?\d]|$)))",
    re.IGNORECASE,
)
# A verdict right before it: "this is bs", "total BS", "what a load of bs" ("no BS pricing" is none).
_BS_VERDICT = re.compile(
    r"(?<!\w)(?P<verdict>is|was|it['’]?s|that['’]?s|this|that|such|what|total|utter|absolute|complete|pure|load of"
    r"|lot of|full of|more|same|just|so|bloody|fucking)\s+$",
    re.IGNORECASE,
)
# ...but "is" after a question word asks what it is: "What is BS?", "what's bs".
_BS_WHAT_IS = re.compile(
    r"(?<!\w)(?:what|who|where|which)(?:['’]s|\s+(?:is|was))\s+$",
    re.IGNORECASE,
)
# "no BS pricing", "a no-bs answer": an advert's, not a verdict.
_BS_NONE = re.compile(r"(?<!\w)no[\s-]+$", re.IGNORECASE)
_BS_ASKED = re.compile(r"\s*\?(?![?!])")
# The word before it, a capitalised one names a building society: "Nationwide BS", "Yorkshire BS".
_BS_WORD_BEFORE = re.compile(r"(?<!\w)(?P<word>[^\W\d_][\w'’&-]*)[^\w\n]*$")
# Said on its own as a clause, not asked: "BS! I never got a text", "£35 fee for a 40p overdraft? bs",
# "you charged me twice, bs!" ("BS?" asks about one).
_BS_CLAUSE_START = re.compile(r"(?:^|[.!?,;:\n])\s*$")
_BS_CLAUSE_END = re.compile(r"\s*(?:!|\.|,|;|\n|$)")
# ...or a verdict on what it is said of: "Bs excuse", "what a bs answer".
_BS_SAID_OF = re.compile(
    r"\s+(?:excuses?|answers?|reply|replies|response|responses|story|lies|reasons?|explanations?)(?!\w)",
    re.IGNORECASE,
)
_EMOJI = "😡🤬😠💢👿🖕"

_WORD = re.compile(r"\w+(?:['’]\w+)*")
# A stretch from a capital letter up to the next lower-case (ASCII) one: where capitals can run.
_CAPS_SPAN = re.compile(r"[A-Z][^a-z]+")
ACRONYMS = frozenset(
    "ATM PIN IBAN BIC SWIFT SEPA CVV CVC FCA UK US USA EU GBP EUR USD ID OK PDF SMS OTP NFC BACS CHAPS ISA APR "
    "HMRC DVLA NHS ASAP VAT IVA CCJ DD TV PC URL FAQ".split()
)
# A shouted run names who it is about or demands now: "WHERE IS MY MONEY", "HUMAN. AGENT. NOW."
# ("DO NOT HONOR", "TRANSACTION NOT ALLOWED" are a terminal's).
_SHOUTED = frozenset("I I'M I'VE I'LL I'D ME MY MINE YOU YOUR YOURS YOU'RE YOU'VE YOU'LL WE WE'RE OUR NOW".split())
_THANKS = frozenset("THANK THANKS THANKYOU".split())
# A caps-lock typist's greeting or "please" in the run: politeness, not shouting
# ("HI I WOULD LIKE TO CHECK MY BALANCE PLEASE").
_GREETINGS = frozenset("HELLO HI DEAR".split())
_POLITE = _THANKS | _GREETINGS | frozenset("PLEASE PLS PLZ KINDLY".split())
# ...unless it demands now, asking nothing ("HI PLEASE GIVE ME MY MONEY BACK NOW"), or ends in "!!".
_URGENT = frozenset("NOW IMMEDIATELY".split())
_ASKS = frozenset("CAN COULD WOULD MAY".split())
# What is owed or broken: a demand for it now is no service request ("PLEASE CALL ME BACK NOW" is one).
_OWED = frozenset("MONEY FUNDS CASH REFUND REFUNDED FIX FIXED".split())
_EXCLAIMED = re.compile(r"[^\w!]*!!")
# A greeting alone, asking nothing, softens no accusation and no "where is my money": "HI WHERE IS MY MONEY",
# "DEAR SIR YOU HAVE STOLEN MY MONEY" ("HELLO MY CARD HAS BEEN DECLINED AT THE SHOP", "HI WHERE IS MY NEW
# CARD" are a caps-lock typist's).
# An accusation aims at the bank ("YOU HAVE STOLEN", "YOUR BANK ROBBED ME"): "DEAR SIR MY CARD WAS STOLEN", "HI
# SOMEONE STOLE MY CARD DETAILS" report a theft. "WHERE IS MY MONEY" asks after money the bank holds, not a
# refund or money on its way from someone else ("HELLO WHERE IS MY REFUND FROM AMAZON", "WHERE ARE MY FUNDS
# FROM THE HOUSE SALE").
_ACCUSES = frozenset("STOLEN STOLE STEAL STEALING STEALS ROB ROBBED ROBBING THIEVES THIEF CROOKS SCAMMED".split())
_ACCUSED = re.compile(
    r"(?<!\S)(?:YOU|YOUR|YOU'VE|YOU'RE|YOURS|(?:THE|THIS) BANK(?! CARDS?(?!\S)| ACCOUNTS?(?!\S)))(?!\S)"
)
_MISSING = re.compile(r"(?<!\S)WHERE(?: \S+){0,3} MY (?:MONEY|FUNDS|CASH)(?!\S)(?! FROM )")
# A statement line or a terminal's message, though it has MY or YOUR in it.
_DESCRIPTOR = re.compile(
    r"(?:DIRECT DEBIT|STANDING ORDER|(?:CARD |BILL |FASTER )?PAYMENT (?:TO|FROM)|TRANSFER (?:TO|FROM)|REF|REFERENCE"
    r"|INVOICE|PAYEE|(?:CALL|CONTACT) (?:YOUR )?(?:BANK|CARD ISSUER|ISSUER))(?!\S)"
)
# Capitals right after these are a quotation, not the customer's voice ("I said" is); a colon introduces
# what is quoted or labelled ("The error says: ACCOUNT LOCKED", "Update: I HAVE FOUND MY CARD", "To confirm:
# YES I WANT TO CLOSE MY ACCOUNT"), except after the few lead-ins that repeat the customer's own words: "As I
# said: I WANT MY MONEY BACK", "Listen: WHERE IS MY MONEY", "I repeat:", "Again:", and (``_OWN_LABEL``) the
# labels a customer opens a message or sentence with: "URGENT: I WANT MY MONEY BACK NOW", "Important:",
# "Attention:", "Complaint:" (not "a text saying URGENT: YOUR ACCOUNT ...", "Not urgent:", "marked important:").
# Wider forms (``_WIDE_LABEL``: "Final complaint:",
# "Very urgent:", "Urgent request:", "Hi, URGENT:") are the customer's own only when nothing before them looks
# forwarded (``_FORWARDED``: "Quick question:\nUrgent request: ...", "Got this text\nUrgent matter: ..." stay
# quoted, as every wider label was).
_CITING = (
    r"says?|saying|(?<!\bi )(?<!\bwe )said|shows?|showed|showing|shown|displays?|displayed"
    r"|reads?|reading|message|error|code|payee|ref|reference|descriptor|description|merchant|named|called"
    r"|states?|stated|text|texts|sms|email|e-?mail|notification|alert|warning|reason|status|screen|subject"
    r"|banner|pop-?up|prompt"
)
_CITED = re.compile(
    rf"(?:(?<!\w)(?:{_CITING})[\s:\"“”'‘’«-]*|(?<!\bsaid)(?<!\blisten)(?<!\brepeat)(?<!\bagain)(?<!\s)\s*:\s*"
    r"|[\"“”'‘’«]\s*)$",
    re.IGNORECASE,
)
_CITED_WINDOW = 40
_OWN_LABEL = re.compile(r"(?:\A|[\n.!?]\s*)(?:urgent|important|attention|complaint)\s*:\s*\Z", re.IGNORECASE)
_WIDE_LABEL = re.compile(
    r"(?:\A[\s\U0001f6a8\u2757\u203c\ufe0f]*(?:(?:hi|hello|hey)[\s,!.-]*)?|[\n.!?][\s\U0001f6a8\u2757\u203c\ufe0f]*)"
    r"(?:(?:(?:very|really|extremely|so)\s+)*(?:urgent|important)(?:\s+(?:matter|request|issue))?|attention"
    r"|(?:(?:formal|official|final|second|third|urgent|very\s+urgent)\s+)?complaints?)"
    r"(?:\s*!+)?\s*:\s*\Z",
    re.IGNORECASE,
)
# Before a wider label, any sign of a forwarded text in the 40 characters quotes it, as the colon did before.
# (Not before the four labels above: customers ask "Was it you?" about a charge, or say "As I have already
# said:", before their own "URGENT: I WANT MY MONEY BACK NOW".)
_FORWARDED = re.compile(
    rf"(?:(?<!\w)(?:{_CITING}|below|forward(?:ed|ing)?|fwd|sent (?:me )?this|got this|(?:is|was) (?:this|it) a scam"
    r"|unknown number|received|txt|msg|whatsapp|phishing|(?:is|was) (?:this|it)(?: really)? (?:real|genuine|legit|fake)"
    r")(?!\w)|\+?\d[\d ]{7,}|:\s*$|[\"“”'‘’«]\s*$)",
    re.IGNORECASE,
)
_EMPHASIS = frozenset("AGAIN STILL YET NEVER EVER ALWAYS EVERY TWICE THIRD FOURTH FIFTH ANOTHER NOTHING NOBODY".split())
_EMPHASIS_RE = re.compile(rf"(?<!\w)(?:{'|'.join(sorted(_EMPHASIS))})(?!\w)")
_SHOUT_RUN = 3
_LABEL_MAX = 30
_MATCHES_MAX = 20

_Match = tuple[int, int, float, str, str]  # start, end, weight, kind, label


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
    """The cues in the first ``SCAN_CHARS`` characters of ``text``: one pass over its words,
    and a pattern only where one of its words is in the text."""
    text = text[:SCAN_CHARS]
    words = frozenset(_WORD.findall(text.lower()))
    thankful = bool(words & _POSITIVE) and _thankful(text)
    cues = [*_word_cues(text, words), *_shouting(text, thankful), *_punctuation(text, thankful)]
    return Anger((*cues, *_emoji(text)))


def _quote(s: str) -> str:
    s = " ".join(s.split())
    return f"'{s[:_LABEL_MAX]}'"


def _negated(text: str, start: int, end: int, kind: str) -> bool:
    """A cue right after a negation, or a threat declined, unless the question is rhetorical ("Is this
    not a disgrace?", "Who wouldn't be furious?") or the declined threat is taken up after a "but" ("I
    never wanted to sue you but here we are")."""
    if kind not in _NEGATABLE:
        return False
    offset = max(0, start - _NEGATION_WINDOW)
    before = text[offset:start]
    negation = _NEGATED.search(before)
    declined = kind == _THREAT and bool(_DECLINED.search(before))
    if not (negation or declined) or (kind == _THREAT and _TAKEN_UP.match(text, end, end + _TAKEN_UP_WINDOW)):
        return False
    return declined or not (negation and _rhetorical(text, offset + negation.start(), end))


def _rhetorical(text: str, negation: int, end: int) -> bool:
    """The negation at ``negation`` is in a question that opens with a verb or how/why/who and at most
    three words before it ("Is it not", "How is this not", "Who wouldn't"), to a "?" after the cue."""
    clause = max(text.rfind(ch, 0, negation) for ch in _CLAUSE_ENDS) + 1
    return bool(_RHETORICAL.fullmatch(text, clause, negation) and _QUESTION_END.match(text, end))


def _asked(text: str, start: int, end: int, kind: str, said: str) -> bool:
    """A threat in a question how to make it ("How do I complain to the ombudsman?"), not one
    aimed at you ("How do I report you to the FCA?") or exclaimed ("...ombudsman?!")."""
    if kind != _THREAT or _AT_YOU.search(said):
        return False
    clause = max(text.rfind(ch, 0, start) for ch in _CLAUSE_ENDS) + 1
    asked = _ASKED_END.match(text, end)
    limit = _TIME_LIMIT.match(text, end)
    if not (_ASKING.match(text, clause) and asked) or (_OBLIGED.match(text, clause, start) and not limit):
        return False
    opening = _ASKS_YOU.match(text, clause)
    opening_at = opening.end() if opening else clause
    if not limit:
        return not _AIMED.search(text, opening_at, asked.end())
    return not (_AIMED.search(text, opening_at, start) or _AIMED.search(text, limit.end(), asked.end()))


def _word_cues(text: str, words: frozenset[str]) -> list[Cue]:
    """Lexicon matches, strongest and longest first, none overlapping one already taken
    ("my solicitor will be in touch" is one threat, not a threat and a weak "solicitor")."""
    found = [*_lexicon(text, words), *_stretched(text, words), *_masked(text), *_leet(text), *_bs(text, words)]
    found.sort(key=lambda f: (-f[2], f[0] - f[1], f[0]))
    taken = bytearray(len(text))
    kept: list[_Match] = []
    for match in found:
        start, end, _, kind, said = match
        if taken.find(1, start, end) != -1 or _negated(text, start, end, kind) or _asked(text, start, end, kind, said):
            continue
        taken[start:end] = b"\x01" * (end - start)
        kept.append(match)
    cues: dict[str, Cue] = {}
    for _, _, weight, _, said in sorted(kept):  # in the text's order
        label = _quote(said.lower())
        cues.setdefault(label, Cue(label, weight))
    return list(cues.values())


def _lexicon(text: str, words: frozenset[str]) -> Iterator[_Match]:
    """``words``: the text's words in lower case; most texts have none of the lexicon's."""
    for word in words & _WORD_CUES.keys():
        weight, kind = _WORD_CUES[word]
        yield from ((m.start(), m.end(), weight, kind, m.group()) for m in _first(_WORD_CUE_RE[word], text))
    for keys, pattern, weight, kind in _PHRASE_RE:
        if keys & words:
            # an aimed word is named alone: "'thieves'" for "you people are thieves"
            cue = "cue" if "cue" in pattern.groupindex else 0
            yield from ((m.start(), m.end(), weight, kind, m.group(cue)) for m in _first(pattern, text))


def _bs(text: str, words: frozenset[str]) -> Iterator[_Match]:
    """The abbreviation "bs" (bullshit), whole word. Strong as a verdict: after one ("this is bs", "total BS",
    "what a load of bs"), alone as a clause ("BS! I never got a text", "... overdraft? bs") or on what was said
    ("Bs excuse"). "BS" is also a British Standard ("BS 7671"), a postcode area ("BS 1"), a degree ("a BS in
    Finance") or a building society ("Nationwide BS", "my bs number"): in capitals it needs a verdict, never
    counts after a capitalised word or a question what it is ("What is BS?"), and a "?" after it is no verdict
    ("Do you accept payments from a BS?"). A lower-case "bs" with none of these is weak ("they sent me bs")."""
    if "bs" not in words:
        return
    for m in _first(_BS, text):
        if _BS_NAMED.match(text, m.end()):
            continue
        before = text[max(0, m.start() - _CITED_WINDOW) : m.start()]
        if _BS_WHAT_IS.search(before) or _BS_NONE.search(before):
            continue  # "What is BS?", "no BS pricing"
        verdict = _BS_VERDICT.search(before)
        if verdict and verdict.group("verdict").lower() == "what" and _BS_ASKED.match(text, m.end()):
            continue  # "What BS?"
        word = _BS_WORD_BEFORE.search(before)
        if not verdict and word and word.group("word")[0].isupper() and not _BS_CLAUSE_START.search(before):
            continue  # "Nationwide BS", "Yorkshire BS?"
        alone = bool(_BS_CLAUSE_START.search(before) and _BS_CLAUSE_END.match(text, m.end()))
        if verdict or alone or (m.group() != "BS" and _BS_SAID_OF.match(text, m.end())):
            weight = STRONG
        elif m.group() == "BS":
            continue
        else:
            weight = WEAK
        yield m.start(), m.end(), weight, _PROFANITY, m.group()


def _first(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """The first few matches are enough to score and explain, and keep the overlap check short."""
    return islice(pattern.finditer(text), _MATCHES_MAX)


def _masked(text: str) -> Iterator[_Match]:
    """Masked profanity: a word of the list with some letters starred ("f**k"), the letters
    shown where it has them; an email or a name starred ("j***@", "M******") is no word of it."""
    if "*" not in text and "#" not in text:
        return
    found = 0
    for m in _MASKED.finditer(text):
        token = m.group().lower()
        shown = sum(ch not in _MASK for ch in token)
        if shown in (0, len(token)) or not (weight := _masked_weight(token, shown)):
            continue
        yield m.start(), m.end(), weight, _PROFANITY, token
        found += 1
        if found == _MATCHES_MAX:
            return


def _leet(text: str) -> Iterator[_Match]:
    """Profanity with a sign or digit for a letter ("f@ck", "sh!t", "sh1t"): the letters it may stand
    for only ("$" an s, "0" an o), so a code or an email ("ab1c", "jo@bt") is no word of the list."""
    if not any(sign in text for sign in _LEET_LETTERS):
        return
    for m in _first(_LEET, text):
        token = m.group().lower()
        for word in _MASKABLE_BY_LENGTH.get(len(token), ()):
            if all(ch == w or w in _LEET_LETTERS.get(ch, "") for ch, w in zip(token, word, strict=True)):
                yield m.start(), m.end(), STRONG, _PROFANITY, token
                break


def _stretched(text: str, words: frozenset[str]) -> Iterator[_Match]:
    """A lexicon word with a letter said three times or more ("angryyy", "furiousss", "fuuuck"): its
    letters squashed to one or two ("useless" has two) before the lookup, named as the lexicon's word."""
    if not _STRETCH.search(text):
        return
    for stretched in islice((w for w in words if _STRETCH.search(w)), _MATCHES_MAX):
        word = next((v for n in (r"\1", r"\1\1") if (v := _STRETCH.sub(n, stretched)) in _WORD_CUES), None)
        if word is None:
            continue
        weight, kind = _WORD_CUES[word]
        pattern = re.compile(rf"(?<!\w){re.escape(stretched)}(?!\w)", re.IGNORECASE)
        yield from ((m.start(), m.end(), weight, kind, word) for m in _first(pattern, text))


def _masked_weight(token: str, shown: int) -> float:
    for word in _MASKABLE_BY_LENGTH.get(len(token), ()):
        if all(ch in _MASK or ch == w for ch, w in zip(token, word, strict=True)):
            if shown >= 2 or token[0] == "f":
                return STRONG
            # "s***" may be a starred name; "f***" is what it looks like; "***t" is neither
            return WEAK if token[0] not in _MASK else 0.0
    return 0.0


def _thankful(text: str) -> bool:
    """Thanks or praise not negated ("not happy" is not) nor sarcastic: its "!!" is enthusiasm."""
    return any(
        not _NEGATED.search(text[max(0, m.start() - _NEGATION_WINDOW) : m.start()]) and not _sarcastic(text, m.end())
        for m in _first(_POSITIVE_RE, text)
    )


def _sarcastic(text: str, end: int) -> bool:
    """Thanks for a wrong ("Thanks for stealing my money"), or for a card blocked or a payment declined
    once more in capitals ("Thanks for blocking my card AGAIN!!"; "Thanks for blocking my card so
    quickly!!" and "Thanks for your help AGAIN!!" thank)."""
    thanked = _THANKED_FOR.match(text, end)
    if not thanked:
        return False
    if thanked.group("verb").lower() in _WRONGS:
        return not _REDEEMED_RE.match(text, thanked.start("rest"))
    return thanked.group("verb").lower() in _SETBACKS and bool(_EMPHASIS_RE.search(thanked.group("rest")))


def _runs(text: str) -> list[tuple[int, int, list[str]]]:
    """Runs of words in capitals, with where each starts and ends; acronyms, redaction marks, single
    letters and words with digits neither count nor break a run, and "I" joins one. Only the
    stretches with no lower-case ASCII letter are read word by word."""
    runs: list[tuple[int, int, list[str]]] = []
    for span in _CAPS_SPAN.finditer(text):
        start, run, ends = 0, list[str](), list[int]()
        for m in _WORD.finditer(text, span.start(), span.end()):
            pos, word = m.start(), m.group()
            if word != "I" and (len(word) == 1 or word in ACRONYMS or _bracketed(text, pos, word)):
                continue  # "PIN", "[CARD]"
            if not word.replace("'", "").replace("’", "").isalpha():
                continue  # "ES91", "2AB"
            if word.isupper() and not run and text.startswith(":", m.end()):
                continue  # "PS: I WILL BE ABROAD", "RE: YOUR LOAN": a label, what follows is after a colon
            if word.isupper():
                start = start if run else pos
                run.append(word.replace("’", "'"))
                ends.append(m.end())
                continue
            _close(runs, start, run, ends)  # "ÉCHEC"
            run, ends = [], []
        _close(runs, start, run, ends)
    return runs


def _close(runs: list[tuple[int, int, list[str]]], start: int, run: list[str], ends: list[int]) -> None:
    if run and run[-1] == "I":
        run.pop()  # "MONEY. I transferred": the I begins the next sentence
        ends.pop()
    if run:
        runs.append((start, ends[-1], run))


def _bracketed(text: str, pos: int, word: str) -> bool:
    return text[pos - 1 : pos] == "[" and text[pos + len(word) : pos + len(word) + 1] == "]"


def _cited(text: str, start: int) -> bool:
    lo = max(0, start - _CITED_WINDOW)
    # ``\A`` matches only at the text's real start, not at the window's; a label ends in a colon
    if text[lo:start].rstrip().endswith(":"):
        if _OWN_LABEL.search(text, lo, start):
            return False
        if m := _WIDE_LABEL.search(text, lo, start):
            return bool(_FORWARDED.search(text, max(0, m.start() - _CITED_WINDOW), m.start()))
    return bool(_CITED.search(text[lo:start]))


def _is_shouted(text: str, start: int, end: int, run: list[str]) -> bool:
    words = set(run)
    return (
        len(run) >= _SHOUT_RUN
        and len(words - {"I"}) >= 2
        and bool(words & _SHOUTED)
        and not (words & _POLITE and not _demands(text, end, words) and not _accuses(run, words))
        and not _DESCRIPTOR.match(" ".join(run))
        and not _cited(text, start)
    )


def _demands(text: str, end: int, words: set[str]) -> bool:
    """A polite run that is a demand all the same: now for what is owed or broken, asking
    nothing and thanking no one, greeting or not ("HI PLEASE GIVE ME MY MONEY BACK NOW"), or
    ending in "!!" ("HELLO PLEASE SEND MY NEW CARD NOW", "PLEASE CALL ME BACK NOW" and "HI MY
    REFUND HAS COME THROUGH NOW THANKS" are a caps-lock typist's)."""
    urgent = bool(words & _URGENT and words & _OWED and not words & (_ASKS | _THANKS))
    return urgent or bool(_EXCLAIMED.match(text, end))


def _accuses(run: list[str], words: set[str]) -> bool:
    """A run whose only politeness is a greeting, asking nothing, that accuses or asks where
    the money is: a greeting opens it, it does not soften it ("HI WHERE IS MY MONEY")."""
    if words & (_POLITE - _GREETINGS) or words & _ASKS:
        return False
    said = " ".join(run)
    return bool(words & _ACCUSES and _ACCUSED.search(said)) or bool(_MISSING.search(said))


def _shouting(text: str, thankful: bool) -> list[Cue]:
    runs = _runs(text)
    shouted = [len(run) for start, end, run in runs if _is_shouted(text, start, end, run)]
    if shouted:
        return [Cue(f"shouting ({max(shouted)} words in capitals)", STRONG)]
    if thankful:
        return []
    emphasis = next(
        (run[0] for start, _, run in runs if len(run) == 1 and run[0] in _EMPHASIS and not _cited(text, start)), None
    )
    return [Cue(_quote(emphasis), WEAK)] if emphasis else []  # "declined AGAIN"


def _punctuation(text: str, thankful: bool) -> list[Cue]:
    """Each kind once, a mixed run ("?!!!") as its mix."""
    kinds: dict[str, str] = {}
    for m in _PUNCTUATION.finditer(text):
        run = m.group()
        kind = "?!" if "?" in run and "!" in run else run[0]
        if (kind != "?" or len(run) >= 3) and not (kind == "!" and thankful):
            kinds.setdefault(kind, run)
    return [Cue(_quote(run[:5]), WEAK) for run in kinds.values()]


def _emoji(text: str) -> list[Cue]:
    return [Cue(f"'{e}'", STRONG) for e in _EMOJI if e in text]
