"""The anger signal on authored chats: angry ones flagged, calm ones (negative but factual
problems, polite complaints) not; and on the 130 demo chats, a small share flagged."""

from __future__ import annotations

import pytest

from services.ingest.sources import demo_chats
from services.router.anger import SCAN_CHARS, anger, has_letters
from services.router.policy import RoutingPolicy

THRESHOLD = RoutingPolicy().anger_score

ANGRY = [
    "I want to close my account, you are useless and I am furious",
    "You people are thieves. Refund me now or I'm going to the ombudsman",
    "my card was declined AGAIN, this is a disgrace, I am absolutely livid",
    "WHY HAS MY SALARY NOT ARRIVED YET",
    "this is f***ing ridiculous, third time today",
    "What the f*** is going on with my account",
    "I'm sick of being passed from one person to another",
    "Fed up with your incompetent staff",
    "Unacceptable. I have been waiting two weeks for a refund",
    "I will be reporting you to the FCA",
    "My solicitor will be in touch about these charges",
    "This bank is a joke, the app logs me out every five minutes",
    "😡😡😡",
    "Still on hold after an hour 🤬",
    "I HAVE BEEN WAITING FOR AN HOUR",
    "Where is my refund?! This is the third time I've asked!!!",
    "You lot are a bunch of crooks",
    "Stop taking my money you b*stards",
    "I am so angry right now, nobody is helping me",
    "£35 for a late payment is daylight robbery",
    "Your app is rubbish and your staff are useless",
    "FIX MY CARD NOW",
    "I've had enough of this s**t",
    "Worst customer service I have ever had",
    # profanity is never negated (review: these scored 0)
    "No fucking way, where is my money",
    "Don't f***ing tell me to wait again",
    "not fucking good enough",
    # a first-person sentence in capitals is shouting
    "I CAN NOT LOG IN",
    # the lexicon words that count only when aimed at the bank
    "Give me my money back you thieves!",
    "You are the worst bank ever",
    "I've had enough of you lot",
    "I'm sick of your excuses",
    "You'll be hearing from my solicitor",
    # a shouted demand for now, "please" or not
    "PLEASE GIVE ME MY MONEY BACK NOW",
    "PLEASE JUST FIX IT NOW!!!",
    "GIVE ME MY MONEY BACK NOW PLEASE",
    # review: exasperated repetition, a threat offered as the alternative
    "How many times do I have to tell you?!",
    "how many times have I asked you",
    "Where is my refund or do I have to go to the ombudsman?",
]

CALM = [
    "my card was stolen yesterday",
    "I think there is a wrong charge on my statement",
    "I want to close my account",
    "Could you please look into a payment I don't recognise? Thanks",
    "I'm not angry, just confused about this fee",
    "No problem at all, thanks for your help",
    "My transfer hasn't arrived after three days, can you check?",
    "I'm disappointed that my complaint from last week has not been answered",
    "The ATM kept my card and my PIN is now blocked",
    "Please send me my IBAN and BIC for a SEPA transfer",
    "I was charged twice for the same purchase at Tesco",
    "Someone used my card details online, I have frozen the card in the app",
    "Thanks so much!! You've been really helpful",
    "My solicitor needs a copy of my statements for the probate",
    "Are you regulated by the FCA?",
    "Is this text message a scam? It asks for my PIN",
    "Unfortunately the payment to BGL GROUP LTD went out twice",
    "I would like to make a formal complaint about the delay",
    "The app is not useless, but the new menu is confusing",
    "I lost my wallet and need to cancel all my cards",
    "My account was hacked and money is missing",
    "Hello, my card was declined at the till even though I have money",
    "How do I report a lost card?",
    "I'm a bit frustrated that the transfer is so slow, please help",
    "My card number is [CARD] and my phone is [PHONE]",
    # review: lexicon words as plain nouns and phrases
    "Thieves stole my card last night, please block it",
    "I was scammed by thieves",
    "What's the worst day to exchange?",
    "The worst part is I can't remember my PIN",
    "I have had enough money to pay?",
    "my daughter is sick of flu",
    # review: a terminal's message or a statement line in capitals
    "DO NOT HONOR",
    "CALL YOUR BANK",
    "PLEASE INSERT CARD",
    "INVALID PIN TRY AGAIN",
    "TRANSACTION NOT ALLOWED",
    "CARD NOT SUPPORTED",
    "DIRECT DEBIT TO SKY DIGITAL FOR MY TV",
    "REF: ACME LTD INVOICE NO 123",
    "Payee: JOHN SMITH AND SONS",
    "The terminal said DO NOT HONOR",
    "The card machine said CALL YOUR BANK",
    "It says INVALID PIN TRY AGAIN",
    # review: starred tokens that are no swear word
    "We sent a code to j***@gmail.com but I never got it",
    "Name on card: M****** SMITH",
    "Pa**word",
    "order ref#ABC",
    "INV#ABCD",
    "note**",
    # review: a solicitor in a calm request, threats declined
    "My solicitor will need a statement for probate",
    "Can I speak to a solicitor about the will?",
    "I don't want to take legal action",
    "No need to contact the ombudsman",
    "Can we sort this out without legal action?",
    # review: thanks or a name in capitals with "!!"
    "Thank you so much!! The card from DHL arrived",
    "Hi!! Can I pay my BT bill",
    "Great news!! My NEW card works",
    # review: a swear word's letters inside a name or a word
    "Mr Ade Shittu sent me £50",
    "I paid for shitake mushrooms twice",
    # review: negation with filler words, and "never"
    "Nothing to be angry about",
    "I'm not even a little bit angry",
    "Never angry",
    # a question how to complain or escalate (routed by intent, not flagged)
    "How do I complain to the ombudsman?",
    "How can I make a complaint?",
    "Where do I send a complaint about a branch?",
    "What is the process to escalate a dispute?",
    "PLEASE SEND ME MY STATEMENT",
    "HELLO CAN YOU PLEASE HELP ME ACTIVATE MY CARD",
    # review: a question how often to do something, a caps-lock request for now, asking about the ombudsman
    "How many times do I need to call to activate a new card?",
    "How many times should I call if nobody answers the fraud line?",
    "How many times do I have to repeat the code the app sends?",
    "HELLO PLEASE SEND MY NEW CARD NOW",
    "PLEASE CALL ME BACK NOW",
    "DEAR SIR PLEASE CLOSE MY ACCOUNT IMMEDIATELY",
    "Can I complain to the ombudsman about this?",
    "Should I complain to the ombudsman?",
    "Hi there, how do I complain to the ombudsman?",
]


def flagged(text: str) -> bool:
    return anger(text).score >= THRESHOLD


def test_the_authored_chats_are_at_least_twenty_of_each() -> None:
    assert len(ANGRY) >= 20 and len(CALM) >= 20
    assert not set(ANGRY) & set(CALM)


@pytest.mark.parametrize("text", ANGRY)
def test_an_angry_chat_is_flagged(text: str) -> None:
    assert flagged(text), (text, anger(text))


@pytest.mark.parametrize("text", CALM)
def test_a_calm_chat_is_not_flagged_even_a_negative_one(text: str) -> None:
    assert not flagged(text), (text, anger(text))


def test_precision_and_recall_on_the_authored_chats() -> None:
    true_pos = sum(flagged(t) for t in ANGRY)
    false_pos = sum(flagged(t) for t in CALM)
    precision = true_pos / max(1, true_pos + false_pos)
    recall = true_pos / len(ANGRY)
    print(f"anger on {len(ANGRY)} angry + {len(CALM)} calm chats: precision {precision:.2f}, recall {recall:.2f}")
    assert (precision, recall) == (1.0, 1.0)


def test_the_reported_chats_name_their_cues_not_the_text() -> None:
    """The reviewer's three chats, read as neutral by the sentiment model (negative 0.12, 0.13, 0.70)."""
    assert anger("I want to close my account, you are useless and I am furious").explain() == "'useless', 'furious'"
    assert anger("You people are thieves. Refund me now or I'm going to the ombudsman").explain() == (
        "'thieves', 'ombudsman'"
    )
    assert anger("my card was declined AGAIN, this is a disgrace, I am absolutely livid").explain() == (
        "'disgrace', 'livid', 'AGAIN'"
    )
    shouted = anger("WHERE IS MY MONEY. I transferred £1,500 for my deposit on Friday")
    assert shouted.explain() == "shouting (4 words in capitals)"


def test_masked_profanity_counts_but_a_footnote_star_does_not() -> None:
    for text in ("f***", "s**t", "what the f**k", "b*stards"):
        assert flagged(text), text
    assert not anger("see the terms* for details").cues


def test_a_negated_cue_does_not_count() -> None:
    assert not anger("I'm not angry").cues
    assert not anger("it isn't a disgrace, just slow").cues
    assert not anger("not at all useless").cues
    assert flagged("I can't believe how useless this is")  # a verb between: not a negation of "useless"


def test_acronyms_and_references_in_capitals_are_not_shouting() -> None:
    assert not flagged("My PIN and CVV for the ATM, and the IBAN for SEPA")
    assert not flagged("a direct debit to BGL GROUP LTD I don't remember")
    assert not flagged("Her IBAN is ES91 2100 0418 4502 0005 1332")


def test_closing_an_account_is_not_anger_by_itself() -> None:
    assert not anger("I want to close my account. Today.").cues


def test_text_with_no_letters() -> None:
    for text in ("😡😡😡", "👍", "???", "12345", "", "  ", "£49.99!"):
        assert not has_letters(text), text
    for text in ("ok", "é", "日本", "[CARD]", "Привет"):
        assert has_letters(text), text


def test_the_demo_chats_flag_a_small_share_of_them_and_the_angry_ones() -> None:
    chats = {c["id"]: c["text"] for c in demo_chats()}
    hits = {i: t for i, t in chats.items() if flagged(t)}
    for i, t in sorted(hits.items()):
        print(f"demo chat flagged angry: {i} {t!r} -> {anger(t).explain()}")
    assert len(chats) == 130
    assert len(hits) <= 13, hits  # at most 10%
    for text in (
        "That's a disgrace, I want the fee refunded",
        "This is ridiculous, I'm standing at the till with a full trolley",
        "HUMAN. AGENT. NOW.",
    ):
        assert text in hits.values(), text


def test_a_long_text_is_scored_quickly() -> None:
    """Every pattern is linear, and at most the first few matches of each are kept."""
    for text in ("useless " * 5_000, "f*" + "a" * 20_000 + "1", "A" * 20_000 + "!" * 20_000, "ABC " * 10_000):
        assert anger(text).score >= 0


def test_profanity_is_never_negated_but_anger_words_are_even_after_filler_words() -> None:
    for text in ("No fucking way, where is my money", "Don't f***ing tell me", "not fucking good enough"):
        assert anger(text).score >= THRESHOLD, text
    for text in ("Nothing to be angry about", "I'm not even a little bit angry", "Never angry", "not getting angry"):
        assert not anger(text).cues, text
    assert flagged("I have never been so angry in my life")  # a verb between: not a negation of "angry"


def test_a_declined_threat_does_not_count_but_a_conditional_one_does() -> None:
    for text in ("I don't want to take legal action", "No need to contact the ombudsman", "without legal action"):
        assert not anger(text).cues, text
    for text in (
        "I won't hesitate to take legal action",
        "If you don't refund me I'll report you to the FCA",
        "Don't make me go to the ombudsman",
    ):
        assert flagged(text), text


def test_a_question_how_to_complain_is_no_threat_but_one_aimed_at_you_or_exclaimed_is() -> None:
    for text in (
        "How do I complain to the ombudsman?",
        "How can I complain to the FCA?",
        "Hi, who do I contact at the ombudsman?",
        "When can I go to the ombudsman?",
        "Can I complain to the ombudsman about this?",
        "Should I complain to the ombudsman?",
        "Hi there, how do I complain to the ombudsman?",
        "Could you tell me how to contact the ombudsman?",  # "could you" asks, it aims at no one
        "Is the ombudsman free to use?",
        "Does the ombudsman deal with card disputes?",
    ):
        assert not anger(text).cues, text
    for text in (
        "I'm going to the ombudsman",
        "Where is my refund? I'm going to the ombudsman.",
        "How do I complain to the ombudsman?!",
        "How do I report you to the FCA?",
        "How long do I have to wait before I go to the ombudsman?",
        # the whole clause aims at you or offers the threat as the alternative
        "Where is my refund or do I have to go to the ombudsman?",
        "Where is my refund, or do I have to go to the ombudsman?",
        "Can I complain to the ombudsman about your fees?",
        "Should I just go to the ombudsman since you won't help?",
    ):
        assert flagged(text), text
    assert anger("How do I complain to the ombudsman?!").explain() == "'ombudsman', '?!'"
    assert anger("I want to complain, this is a disgrace").explain() == "'disgrace'"


def test_a_bare_solicitor_is_weak_a_threat_with_one_is_strong() -> None:
    assert anger("My solicitor will need a statement for probate").explain() == "'solicitor'"
    assert anger("My solicitor will need a statement for probate").score == 0.5
    assert not anger("Can I speak to a solicitor about the will?").cues  # asked about: no threat at all
    assert anger("My solicitor will be in touch").explain() == "'my solicitor will be in touch'"


def test_lexicon_words_count_only_when_aimed_at_the_bank() -> None:
    assert not anger("Thieves stole my card and I told you thieves took it").cues
    assert not anger("Are thieves able to use contactless?").cues
    assert anger("You people are thieves").explain() == "'thieves'"
    assert anger("you lot are a bunch of crooks").explain() == "'crooks'"
    assert anger("the worst banking app I've used").explain() == "'worst'"
    assert not anger("the worst part is the wait").cues
    assert flagged("I've had enough.") and not anger("I had enough time").cues


def test_quoted_messages_and_statement_lines_are_not_shouting_but_the_customers_voice_is() -> None:
    for text in (
        'The app says "YOUR CARD IS BLOCKED"',
        "The screen shows: YOU HAVE NO FUNDS",
        "error: YOUR PAYMENT FAILED",
        "PAYMENT TO AMAZON PRIME FOR MY ACCOUNT",
        "My employer is WHAT THE DOG SAW LTD",
    ):
        assert not anger(text).cues, text
    for text in ("I said WHERE IS MY MONEY", "HUMAN. AGENT. NOW.", "I HATE THIS BANK", "YOU HAVE LOST MY MONEY"):
        assert anger(text).explain().startswith("shouting"), text


def test_a_caps_lock_typist_greeting_or_saying_please_is_not_shouting() -> None:
    for text in (
        "HI I WOULD LIKE TO CHECK MY BALANCE PLEASE",
        "HELLO MY CARD HAS BEEN DECLINED AT THE SHOP",
        "CAN YOU RESET MY PASSWORD PLS",
        "DEAR SIR I NEED A NEW STATEMENT",
    ):
        assert not anger(text).cues, text
    assert anger("I CAN NOT LOG IN").explain().startswith("shouting")
    assert flagged("HELLO WHERE IS MY MONEY YOU ARE USELESS")  # the cue word still counts


def test_please_does_not_soften_a_shouted_demand_for_now() -> None:
    for text in (
        "PLEASE GIVE ME MY MONEY BACK NOW",
        "GIVE ME MY MONEY BACK NOW PLEASE",
        "PLEASE REFUND ME IMMEDIATELY",
        "PLEASE GIVE ME MY MONEY BACK!!!",
    ):
        assert anger(text).explain().startswith("shouting"), text
    assert anger("PLEASE JUST FIX IT NOW!!!").explain() == "shouting (5 words in capitals), '!!!'"
    for text in (
        "HI I WOULD LIKE TO CHECK MY BALANCE PLEASE",
        "HELLO CAN YOU PLEASE HELP ME ACTIVATE MY CARD",
        "PLEASE SEND ME MY STATEMENT",
        "HELLO CAN YOU SEND MY NEW CARD NOW PLEASE",  # a request that asks
    ):
        assert not anger(text).cues, text


def test_a_polite_request_for_now_is_calm_a_demand_for_money_or_a_fix_is_not() -> None:
    """With a greeting or "please", now is a demand only for what is owed or broken (money, a
    refund, a fix), not for a service (a call back, a new card); "!!" after it is one too."""
    for text in (
        "HELLO PLEASE SEND MY NEW CARD NOW",
        "PLEASE CALL ME BACK NOW",
        "DEAR SIR PLEASE CLOSE MY ACCOUNT IMMEDIATELY",
        "PLEASE SEND MY NEW CARD NOW",
    ):
        assert not anger(text).cues, text
    for text in (
        "PLEASE GIVE ME MY MONEY BACK NOW",
        "GIVE ME MY MONEY BACK NOW PLEASE",
        "PLEASE REFUND ME IMMEDIATELY",
        "PLEASE FIX MY CARD NOW",
        "HI PLEASE GIVE ME MY MONEY BACK NOW",  # a greeting does not soften a demand for what is owed
    ):
        assert anger(text).explain().startswith("shouting"), text
    assert anger("PLEASE JUST FIX IT NOW!!!").explain() == "shouting (5 words in capitals), '!!!'"
    assert anger("HELLO PLEASE CALL ME BACK NOW!!").explain() == "shouting (6 words in capitals), '!!'"
    assert anger("HI!! CAN YOU HELP ME WITH MY CARD PLEASE").explain() == "'!!'"  # the greeting's, not the run's


def test_one_word_in_capitals_counts_for_emphasis_not_for_a_name() -> None:
    assert anger("declined AGAIN").explain() == "'AGAIN'"
    for text in ("paid DHL", "my BT bill", "the NEW card", "to STREAMFLIX", "reference RENT JUNE"):
        assert not anger(text).cues, text


def test_thanks_and_praise_make_exclamations_enthusiasm() -> None:
    assert not anger("Thank you so much!! It works").cues
    assert not anger("Great news!! My NEW card works").cues
    assert anger("I am not happy!!").explain() == "'!!'"  # a negated praise is none
    assert anger("Where is my refund?! Thanks").explain() == "'?!'"
    assert flagged("Thanks for nothing")


def test_masked_profanity_is_a_masked_swear_word() -> None:
    for text in ("sh*t", "f**king", "a**hole", "f#ck"):
        assert anger(text).score == 1.0, text
    assert anger("this is s***").score == 0.5  # only its first letter: it may be a starred name
    for text in ("j***@gmail.com", "M****** SMITH", "Pa**word", "ref#ABC", "note**", "4111 **** **** 1111", "t**s"):
        assert not anger(text).cues, text


def test_profanity_is_whole_words() -> None:
    for text in ("Mr Ade Shittu", "shitake", "Scunthorpe", "the Arsenal game", "a scampi"):
        assert not anger(text).cues, text
    for text in ("shitty service", "bullshit", "fuckers", "this is shite"):
        assert flagged(text), text


def test_only_the_first_4000_characters_are_read() -> None:
    assert SCAN_CHARS == 4_000
    assert not anger("x " * 2_000 + "I am furious").cues
    assert flagged("I am furious. " + "x " * 50_000)


def test_exasperated_questions_are_angry_a_question_how_many_times_a_card_works_is_not() -> None:
    for text in (
        "How dare you charge me twice?!",
        "how dare you close my account without telling me",
        "How many times do I have to ask for my refund",
        "how many more times must I call you about this",
        "How many times do I have to tell you?!",
        "how many times have I asked you",
        "How many times have I told your staff",
        "How many times do I have to explain this.",
        "How many more times will I have to chase about this",
        "How many times do I have to ask?",
    ):
        assert flagged(text), text
    for text in (
        "How many times can I use my card abroad?",
        "How many times do I have to enter my PIN before it locks?",
        "How do I dare to ask for a higher limit?",
        "How many times do I need to call to activate a new card?",
        "How many times should I call if nobody answers the fraud line?",
        "How many times do I have to repeat the code the app sends?",
        "How many times do I have to repeat the code you sent me?",
        "How many times do I have to call to get the new PIN?",
    ):
        assert not flagged(text), text
    assert anger("Why the hell is my card blocked").score == 0.5
    assert anger("Why the hell is my card blocked").explain() == "'why the hell'"


def test_a_question_how_often_to_do_something_is_calm_and_a_greeting_keeps_a_request_for_now_polite() -> None:
    for text in (
        "How many times do I need to call to activate a new card?",
        "How many times should I call if nobody answers the fraud line?",
        "How many times do I have to repeat the code the app sends?",
        "HELLO PLEASE SEND MY NEW CARD NOW",
        "DEAR SIR PLEASE CLOSE MY ACCOUNT IMMEDIATELY",
    ):
        assert not flagged(text), text
    for text in (
        "How many times do I have to tell you?!",
        "how many times have I asked you",
        "How many times do I have to call?",
        "HELLO GIVE ME MY MONEY BACK NOW!!",
    ):
        assert flagged(text), text
