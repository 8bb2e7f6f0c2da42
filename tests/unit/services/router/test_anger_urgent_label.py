"""A label the customer puts before their own words ("URGENT:", "IMPORTANT:", "Complaint:") does not
make the shouting after it a quotation when it opens the message or a sentence: "URGENT: I WANT MY MONEY
BACK NOW" scored 0. What follows a quoting word ("a text saying URGENT: ..."), another label, "Not urgent:"
or a label inside a sentence stays quoted. Wider
labels ("Final complaint:", "Very urgent:", "Urgent request:", "Hi, URGENT:") are the customer's own only
where nothing before them looks forwarded. After a label, capitals are judged as if it were not there."""

from __future__ import annotations

import pytest

from services.router.anger import anger
from services.router.policy import RoutingPolicy

THRESHOLD = RoutingPolicy().anger_score

ANGRY = [
    "URGENT: I WANT MY MONEY BACK NOW",
    "Urgent: WHERE IS MY MONEY",
    "IMPORTANT: YOU HAVE STOLEN MY MONEY",
    "Attention: I WANT MY MONEY BACK",
    "Complaint: WHERE IS MY REFUND",
    "I have waited a week. URGENT: WHERE IS MY MONEY",
    "hello?\nurgent: I WANT MY MONEY BACK NOW",
    # wider labels (review 24)
    "Urgent matter: I WANT MY MONEY BACK NOW",
    "URGENT REQUEST: WHERE IS MY MONEY",
    "Complaints: WHERE IS MY REFUND",
    "Formal complaint: YOU HAVE STOLEN MY MONEY",
    "Final complaint: WHERE IS MY MONEY",
    "Official complaint: YOU HAVE STOLEN MY MONEY",
    "Very urgent complaint: YOU HAVE STOLEN MY MONEY",
    "Very urgent: WHERE IS MY MONEY",
    "Extremely urgent: WHERE IS MY MONEY",
    "Urgent!!: WHERE IS MY MONEY",
    "Hi, URGENT: WHERE IS MY MONEY",
    "Hello - Urgent matter: WHERE IS MY MONEY",
    " URGENT: WHERE IS MY MONEY",
    "\U0001f6a8 Urgent: WHERE IS MY MONEY",
    "Waited 2 weeks (again). Urgent request: WHERE IS MY MONEY",
    # a label's capitals are judged as if it were not there: what follows them softens nothing (review 24)
    "URGENT: WHY HAVE YOU BLOCKED MY CARD AGAIN",
    "Complaint: I HAVE BEEN WAITING FOR THREE WEEKS AND NOBODY HAS CALLED ME BACK",
    "URGENT: CALL ME BACK NOW",
    "Complaint: YOU HAVE FROZEN MY ACCOUNT WITHOUT ANY WARNING AND I CANNOT PAY MY RENT",
    "URGENT: YOU HAVE TAKEN £400 FROM MY ACCOUNT WITHOUT MY PERMISSION, I need to know why",
    "URGENT: I HAVE BEEN ON HOLD FOR 3 HOURS AGAIN. How can you treat people like this?",
    "URGENT: YOUR STAFF HUNG UP ON ME. Please don't fob me off again",
    "URGENT: I HAVE BEEN WAITING 3 WEEKS FOR MY REFUND, can you explain why?",
    "URGENT: YOU HAVE FROZEN MY ACCOUNT FOR 3 WEEKS, thanks for absolutely nothing",
    "Complaint: MY REF IS 12345. YOU HAVE STOLEN £500 FROM MY ACCOUNT",
    "URGENT: I WANT YOUR MANAGER",
    "URGENT: YOU HAVE CHARGED ME £35 IN FEES AGAIN. Is this a scam? Because it feels like one.",
    # ... nor what the sentence before says, unless it quotes the label or asks whether it is genuine
    "I rang three times and got no reply to my email. URGENT: YOU HAVE FROZEN MY ACCOUNT AND I CANNOT PAY MY RENT",
    "Hi team:\nURGENT: YOU HAVE STOLEN MY MONEY AND I WANT IT BACK NOW",
    "Someone took £500 from my account last night. Was it you?\nURGENT: I WANT MY MONEY BACK NOW",
    "As I have already said:\nURGENT: YOU HAVE STOLEN MY MONEY",
    "Did you send me this?\nComplaint: YOU HAVE STOLEN MY MONEY",
    "My previous message:\nURGENT: WHERE IS MY MONEY",
    "Is this a scam? Complaint: YOU HAVE CHARGED ME TWICE AGAIN AND I WANT IT BACK",
    'Your agent said "it\'s sorted".\nURGENT: YOU HAVE STILL NOT REFUNDED MY MONEY AND I WANT IT BACK',
]

CALM = [
    "the letter said: YOU OWE US MONEY",
    "The error says: ACCOUNT LOCKED",
    "Update: I HAVE FOUND MY CARD, you can unblock it.",
    "To confirm: YES I WANT TO CLOSE MY ACCOUNT",
    "Warning: YOUR ACCOUNT IS LOCKED is what the app shows",
    "Reference: MY MONEY BACK 2021",
    "urgent question: can I raise my card limit?",
    # quoted after a quoting word, not the customer's own label (review 23)
    "I got a text saying URGENT: YOUR ACCOUNT HAS BEEN SUSPENDED, is this really from you?",
    "I received an sms: IMPORTANT: YOUR ACCOUNT WILL BE CLOSED TODAY. Is this a scam?",
    "Got this text - Urgent: YOUR CARD HAS BEEN BLOCKED, call us on 0800. Is it genuine?",
    "The app shows Attention: YOUR PAYMENT COULD NOT BE PROCESSED when I try to pay",
    "Hi, my statement line reads IMPORTANT: YOUR PAYMENT IS DUE, what is it?",
    # not urgent, and a label inside a sentence
    "Non-urgent: I HAVE MOVED HOUSE AND NEED TO UPDATE MY ADDRESS",
    "Not urgent: I HAVE A QUESTION ABOUT MY STATEMENT",
    "not important: I WOULD LIKE A NEW CHEQUE BOOK",
    "The email subject was urgent: YOUR ACCOUNT IS ON HOLD, is that you?",
    "Your letter was marked important: YOUR OVERDRAFT LIMIT WILL CHANGE. What does it mean?",
    # wider labels stay quoted wherever capitals after them would be (review 24)
    "I got a text: Urgent matter: YOUR ACCOUNT IS SUSPENDED. Is this you?",
    "I got this text:\nUrgent matter: YOUR ACCOUNT HAS BEEN SUSPENDED\nIs it you?",
    "Got this text\nUrgent matter: YOUR ACCOUNT HAS BEEN SUSPENDED. VERIFY NOW AT secure-login.co",
    "Forwarding a text. Urgent matter: WE HAVE DETECTED UNUSUAL ACTIVITY ON YOUR ACCOUNT",
    "Quick question:\nUrgent request: MY NEW CARD HAS NOT ARRIVED",
    "Fwd:\n\U0001f6a8 URGENT: WE HAVE DETECTED A NEW PAYEE ON YOUR ACCOUNT, CALL US ON 0800 000",
    "Screenshot of the email\nFinal complaint: YOUR APP KEEPS LOGGING ME OUT",
    "My son sent this.\nUrgent request: I NEED YOU TO SEND ME MONEY NOW MUM",
    "Is this a scam?\nFormal complaint: YOUR PARCEL IS HELD, PAY THE FEE NOW",
    "Copied from the text below\nVery urgent: YOUR ACCOUNT HAS BEEN SUSPENDED, VERIFY YOUR DETAILS",
    "Got a message from an unknown number\nUrgent request: WE HAVE DETECTED UNUSUAL ACTIVITY ON YOUR ACCOUNT",
    "Received this morning\nUrgent request: YOUR ACCOUNT HAS BEEN SUSPENDED. VERIFY NOW AT secure-login.co",
    "From +44 7700 900123\nVery urgent: YOUR ACCOUNT HAS BEEN SUSPENDED. VERIFY NOW",
    "[URGENT]: YOUR PAYEE DETAILS HAVE CHANGED!! confirm here\nis this legit",
    '"URGENT: YOUR CARD HAS BEEN BLOCKED!! Call 0800 123 456 to unblock" - is this really you?',
    "> URGENT: WE HAVE SUSPENDED YOUR ACCOUNT!! Call us now on 0800 111\nDid you send this?",
    "Dear customer, URGENT: YOUR ACCOUNT HAS BEEN SUSPENDED!! Verify now at secure-login.co\nIs this from you?",
    "Dear Sir, URGENT: YOUR ACCOUNT HAS BEEN SUSPENDED!! Verify now at secure-login.co\nIs this from you?",
    "Dear Mum, URGENT: I HAVE LOST MY PHONE, I NEED YOU TO PAY THIS BILL NOW\nIs this a scam?",
    "\u26a0\ufe0f URGENT: YOUR ACCOUNT HAS BEEN LOCKED!! Call 0800 123 456 now\nis this you?",
    "- URGENT: YOUR PAYMENT HAS FAILED!! Update your details now",
    "*** Attention: YOUR ACCOUNT WILL BE CLOSED TODAY!! Pay now\ndid you send this",
    "The letter says:\n\nAttn: YOUR ACCOUNT HAS BEEN SELECTED FOR REVIEW",
    "Attn: ACCOUNTS DEPARTMENT, please send my statement",
    "Urgent query: HAVE I BEEN CHARGED TWICE? thanks",
]


@pytest.mark.parametrize("text", ANGRY)
def test_shouting_after_a_label_of_ones_own_is_anger(text: str) -> None:
    assert anger(text).score >= THRESHOLD, anger(text)


@pytest.mark.parametrize("text", CALM)
def test_quoted_or_labelled_capitals_stay_calm(text: str) -> None:
    assert anger(text).score < THRESHOLD, anger(text)
