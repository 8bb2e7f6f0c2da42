"""The anger signal's gaps: a greeting before a shouted demand for what is owed, a threat asked
as whether the customer is made to take it up, and realistic support chats (typos, slang,
British and American English, quoted error messages, fraud victims, bereavement, vulnerable
customers) read as a support lead would."""

from __future__ import annotations

import pytest

from services.router.anger import anger
from services.router.policy import RoutingPolicy

THRESHOLD = RoutingPolicy().anger_score

ANGRY = [
    "3rd time ive rung today and STILL no one can tell me where my money is. absolute joke",
    "why the hell have you charged me £25 for going 2p overdrawn?? thats daylight robbery",
    "Ive been on hold for 2 hours, this is beyond a joke",
    'your app keeps saying "Something went wrong" and I\'m sick of it',
    "u lot are useless, sort my card out",
    "I've been a customer for 20 years and this is how you treat me? Disgraceful.",
    "This is the third time my card has been blocked for no reason. I am fuming",
    "Honestly what is the point of you",
    "WHY IS MY ACCOUNT FROZEN",
    "I want my money back and I want it today, or I'm going to the Financial Ombudsman",
    "You've stolen £400 from my account with your stupid fees, I'm absolutely livid",
    "the app crashed AGAIN and my rent is due tomorrow, ridiculous",
    "I'm so pissed off right now",
    "worst. bank. ever.",
    "If this isn't fixed by Friday I'm taking it to the ombudsman",
    "Absolutely disgusted with how my mum was treated in branch",
    "I've been trying to dispute this charge for 3 weeks and nobody gets back to me. This is unacceptable",
    "My mother is 87 and your staff pressured her into a loan she doesn't understand. I'm appalled.",
    "WTF is this £12 charge",
    "You've frozen my account while I'm abroad and I can't pay my hotel. Complete shambles.",
    "HI PLEASE GIVE ME MY MONEY BACK NOW",
    "Do I have to go to the ombudsman to get my money back?",
    "Will I have to take legal action to get my money back?",
]

CALM = [
    "Hi, I think I've been scammed. Someone called pretending to be from the bank and I gave them a code",
    "My husband passed away last month and I need to close his account. What do I need to send?",
    "I'm really struggling with money at the moment and can't make my loan payment, can someone help?",
    "The app says 'Your session has expired' every time I try to log in",
    "my card got declined at tesco, it says INSUFFICIENT FUNDS but I have £200 in there?",
    "Hiya, can i get a new card sent out, mine's snapped in half lol",
    "I'm partially sighted and the new app is hard to read, is there a large text option?",
    "Could you tell me why my check hasn't cleared yet? I deposited it Monday",
    "I got a text saying my account is suspended and to click a link, is that you?",
    "I've been the victim of fraud, £2,300 has gone to an account I don't recognise. What happens now?",
    "My dad has dementia and I have power of attorney, how do I get access to his account?",
    "Not urgent but my statement shows a payment to PAYPAL *STEAM twice",
    "Thank you so much, you've been brilliant!! Really appreciate it",
    "Sorry to bother you, I can't remember my password and I'm locked out",
    "Error code E401: ACCOUNT LOCKED PLEASE CONTACT US",
    "I'm a bit annoyed the transfer is taking so long but I understand",
    "can u tell me my sort code pls",
    "Do I need to tell you before I travel to Spain?",
    "The scammer told me I had to move my savings to a safe account",
    "Is there a fee for using my card in the US?",
    "MY CARD HAS ARRIVED NOW THANK YOU",
    "HI MY REFUND HAS COME THROUGH NOW THANKS",
    "I'm not going to lie, the new app is a massive improvement",
    "Card was declined at the gas station, the screen said DECLINED - CALL ISSUER",
    "I received a message: YOUR ACCOUNT WILL BE CLOSED. Is this genuine?",
    "My wife died in March. Your bereavement team have been lovely but I still need the final statement",
    "Hello, I'm 82 and not very good with computers, can you help me pay a bill",
    "Do I have to wait 8 weeks before I can go to the ombudsman?",
    "Would I have to pay anything to go to the ombudsman?",
    "What's the point of you sending a code if it never arrives?",
]


def flagged(text: str) -> bool:
    return anger(text).score >= THRESHOLD


def test_the_chats_are_distinct() -> None:
    assert len(set(ANGRY)) == len(ANGRY) and len(set(CALM)) == len(CALM)
    assert not set(ANGRY) & set(CALM)


@pytest.mark.parametrize("text", ANGRY)
def test_an_angry_support_chat_is_flagged(text: str) -> None:
    assert flagged(text), (text, anger(text))


@pytest.mark.parametrize("text", CALM)
def test_a_calm_support_chat_is_not_flagged(text: str) -> None:
    assert not flagged(text), (text, anger(text))


def test_a_greeting_does_not_soften_a_shouted_demand_for_what_is_owed() -> None:
    for text in (
        "HI PLEASE GIVE ME MY MONEY BACK NOW",
        "HELLO PLEASE REFUND ME IMMEDIATELY",
        "DEAR SIR PLEASE FIX MY CARD NOW",
        "HELLO I NEED MY MONEY NOW",
    ):
        assert anger(text).explain().startswith("shouting"), text
    for text in (
        "HELLO PLEASE SEND MY NEW CARD NOW",  # a service, not what is owed
        "HI I WOULD LIKE TO CHECK MY BALANCE PLEASE",
        "DEAR SIR PLEASE CLOSE MY ACCOUNT IMMEDIATELY",
        "HELLO CAN YOU SEND MY NEW CARD NOW PLEASE",
        "HI CAN YOU REFUND ME NOW PLEASE",  # it asks
        "HI MY REFUND HAS COME THROUGH NOW THANKS",  # it thanks
        "HI MY MONEY HAS ARRIVED NOW THANK YOU",
        "MY REFUND HAS COME THROUGH NOW THANKS",  # flagged before: thanks is no demand
        "I HAVE MY MONEY NOW THANK YOU",
    ):
        assert not anger(text).cues, text


def test_asking_whether_one_is_made_to_escalate_is_a_threat_asking_how_is_not() -> None:
    for text in (
        "Do I have to go to the ombudsman to get my money back?",
        "Do I really have to go to the ombudsman?",
        "Hi, do I have to go to the ombudsman?",
        "Do I need to report you to the FCA?",
        "Do I need to report this to the FCA?",
        "Do I need to escalate this to the ombudsman?",
        "Will I have to take legal action to get my money back?",
        "Will I have to go to the Financial Ombudsman?",
        "Would I have to go to the ombudsman to get this sorted?",
        "Do I have to take this to court?",
        "Do we need to get a solicitor involved?",
        "Will we need to contact trading standards?",
    ):
        assert flagged(text), (text, anger(text))
    assert anger("Do I have to go to the ombudsman to get my money back?").explain() == "'ombudsman'"
    for text in (
        "How do I complain to the ombudsman?",
        "Should I complain to the ombudsman?",
        "Can I complain to the ombudsman?",
        "Would I be able to complain to the ombudsman?",
        "Will I be able to go to the ombudsman?",
        "Would I have to pay anything to go to the ombudsman?",
        "Do I have to wait 8 weeks before I can go to the ombudsman?",
        "Do I have to tell the ombudsman my account number?",
        "Do I need a solicitor for probate?",
    ):
        assert not anger(text).cues, (text, anger(text))


def test_jokes_contempt_and_a_dotted_worst_are_anger() -> None:
    assert anger("this is beyond a joke").explain() == "'beyond a joke'"
    assert anger("an absolute joke").explain() == "'absolute joke'"
    assert anger("I was appalled").explain() == "'appalled'"
    assert anger("worst. bank. ever.").explain() == "'worst'"
    assert anger("what is the point of you lot?!").explain() == "'what is the point of you lot', '?!'"
    for text in (
        "It's not an absolute joke",
        "no joke",
        "The worst. Bank holidays are slow",
        "What's the point of you sending a code if it never arrives?",
    ):
        assert not anger(text).cues, text
