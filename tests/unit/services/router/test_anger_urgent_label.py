"""A label the customer puts before their own words ("URGENT:", "IMPORTANT:", "Complaint:") does not
make the shouting after it a quotation when it opens the message or a sentence: "URGENT: I WANT MY MONEY
BACK NOW" scored 0. What follows a quoting word ("a text saying URGENT: ..."), another label, "Not urgent:"
or a label inside a sentence stays quoted. After a label of one's own, capitals are judged as the
customer's own words, except an addressee, a reference or a caps-lock typist's ask that follows in the same
sentence: a label is also how calm chats are typed ("Urgent request: MY NEW CARD HAS NOT ARRIVED, could you
check the address?", "Attn: YOUR MORTGAGE TEAM")."""

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
    # longer labels (left open by session 23)
    "Urgent matter: I WANT MY MONEY BACK NOW",
    "URGENT REQUEST: WHERE IS MY MONEY",
    "Attn: WHERE IS MY REFUND",
    "Attn.: YOU HAVE STOLEN MY MONEY",
    "Complaints: WHERE IS MY REFUND",
    "Formal complaint: YOU HAVE STOLEN MY MONEY",
    "Very urgent: WHERE IS MY MONEY",
    # more labels, and what may come before one (review 24)
    "Final complaint: WHERE IS MY MONEY",
    "Official complaint: YOU HAVE STOLEN MY MONEY",
    "Very urgent complaint: YOU HAVE STOLEN MY MONEY",
    "Extremely urgent: WHERE IS MY MONEY",
    "Urgent!!: WHERE IS MY MONEY",
    "Hi, URGENT: WHERE IS MY MONEY",
    "Hello - Urgent matter: WHERE IS MY MONEY",
    " URGENT: WHERE IS MY MONEY",
    "\U0001f6a8 Urgent: WHERE IS MY MONEY",
    # heated capitals after a label, though not about money
    "URGENT: WHY HAVE YOU BLOCKED MY CARD AGAIN",
    "Complaint: I HAVE BEEN WAITING FOR THREE WEEKS AND NOBODY HAS CALLED ME BACK",
    "URGENT: CALL ME BACK NOW",
    "Urgent: I WILL CLOSE MY ACCOUNT IF THIS IS NOT SORTED TODAY",
    "URGENT: MY CARD HAS BEEN DECLINED AGAIN, sort it out",
    # judged as one's own words: a polite word later in the chat, or after a full stop, softens nothing (review 24)
    "Complaint: YOU HAVE FROZEN MY ACCOUNT WITHOUT ANY WARNING AND I CANNOT PAY MY RENT",
    "URGENT: YOU HAVE TAKEN £400 FROM MY ACCOUNT WITHOUT MY PERMISSION",
    "URGENT: I HAVE BEEN ON HOLD FOR 3 HOURS AGAIN. How can you treat people like this?",
    "URGENT: YOUR STAFF HUNG UP ON ME. Please don't fob me off again",
    "Complaint: I WILL BE MOVING MY ACCOUNT TO ANOTHER BANK IF THIS IS NOT SORTED TODAY. Please respond.",
    "URGENT: I HAVE BEEN WAITING 3 WEEKS FOR MY REFUND, can you explain why?",
    "Complaint: YOUR STAFF WERE RUDE TO ME, thanks for nothing",
    # ... nor a reference or an addressee word in a longer run, nor an ask that is a reproach (review 24)
    "Complaint: MY REF IS 12345. YOU HAVE STOLEN £500 FROM MY ACCOUNT",
    "Complaint: I HAVE BEEN WAITING 3 WEEKS FOR MY REFUND AND NOBODY CARES. REFERENCE 99812",
    "URGENT: I WANT YOUR MANAGER",
    "URGENT: YOU HAVE BLOCKED MY CARD AGAIN, thanks a lot",
    "URGENT: YOU HAVE BLOCKED MY CARD AGAIN, please explain yourselves",
    "URGENT: YOU HAVE BLOCKED MY CARD FOR THE THIRD TIME, can you tell me why you keep doing this",
    "URGENT: WHY HAVE YOU FROZEN MY ACCOUNT? how can i pay my rent now",
    "URGENT: YOU HAVE LEFT ME WITH NO MONEY FOR FOOD, what do I do now",
    # ... nor what the sentence before says, unless it quotes the label or asks whether it is genuine
    "I rang three times and got no reply to my email. URGENT: YOU HAVE FROZEN MY ACCOUNT AND I CANNOT PAY MY RENT",
    "Hi team:\nURGENT: YOU HAVE STOLEN MY MONEY AND I WANT IT BACK NOW",
    "Is this a scam? Complaint: YOU HAVE CHARGED ME TWICE AGAIN AND I WANT IT BACK",
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
    "I got a text: Urgent matter: YOUR ACCOUNT IS SUSPENDED. Is this you?",
    "The letter's heading was Attn: ACCOUNT HOLDER, what is it?",
    "Attn: ACCOUNTS DEPARTMENT, please send my statement",
    # calm capitals after a label of one's own: an addressee, a question, a reference, news (review 24)
    "Attn: YOUR COMPLAINTS DEPARTMENT\nI would like to query a charge on my statement. Many thanks, Jane",
    "Dear Sir,\nAttn: YOUR MORTGAGE TEAM\nRe: 12 High Street. Please can you send the redemption statement.",
    "Attention: YOUR COMPLAINTS DEPARTMENT\nI would like to query a charge. Thanks",
    "Important question: CAN I USE MY CARD IN SPAIN? thanks",
    "Urgent query: HAVE I BEEN CHARGED TWICE? thanks",
    "Urgent request: MY NEW CARD HAS NOT ARRIVED YET, could you check the address?",
    "Urgent help: I HAVE LOST MY WALLET, please freeze my card",
    "Urgent matter: MY MOTHER HAS PASSED AWAY and I need to know what to do with her account",
    "Formal complaint: YOUR REF CMP-44821 - I have not had a reply to my letter, could you update me?",
    "Complaint: MY REF IS 12345, any update?",
    "Complaint: MY CARD WAS DECLINED AT TESCO - please could you look into it, thanks",
    # a forwarded text or letter, its label and all
    "I got this text:\nURGENT: YOUR ACCOUNT HAS BEEN SUSPENDED\nIs it you?",
    "I got this text:\nUrgent matter: YOUR ACCOUNT HAS BEEN SUSPENDED\nIs it you?",
    "The letter says:\n\nAttn: YOUR ACCOUNT HAS BEEN SELECTED FOR REVIEW",
    "Is this real?\nURGENT: YOUR CARD HAS BEEN FROZEN, CALL US NOW ON 07700 900123",
    "Is this from you? Important: YOUR ACCOUNT WILL BE CLOSED TODAY. Please advise.",
    "[URGENT]: YOUR PAYEE DETAILS HAVE CHANGED!! confirm here\nis this legit",
    '"URGENT: YOUR CARD HAS BEEN BLOCKED!! Call 0800 123 456 to unblock" - is this really you?',
    "> URGENT: WE HAVE SUSPENDED YOUR ACCOUNT!! Call us now on 0800 111\nDid you send this?",
    "Dear customer, URGENT: YOUR ACCOUNT HAS BEEN SUSPENDED!! Verify now at secure-login.co\nIs this from you?",
    "Dear Mum, URGENT: I HAVE LOST MY PHONE, I NEED YOU TO PAY THIS BILL NOW\nIs this a scam?",
    "Urgent request: MY REFUND HAS NOT ARRIVED, could you check?",
    "Hi, URGENT: MY SALARY MONEY HAS NOT REACHED MY ACCOUNT, can you check please?",
    "Is this you?\nURGENT: WHY HAVE YOU NOT VERIFIED YOUR ACCOUNT. YOU WILL LOSE ACCESS IF YOU DO NOT ACT NOW",
    "\u26a0\ufe0f URGENT: YOUR ACCOUNT HAS BEEN LOCKED!! Call 0800 123 456 now\nis this you?",
    "\u201eURGENT: YOUR ACCOUNT HAS BEEN SUSPENDED!! Log in now\u201c is this real?",
    "- URGENT: YOUR PAYMENT HAS FAILED!! Update your details now",
    "*** Attention: YOUR ACCOUNT WILL BE CLOSED TODAY!! Pay now\ndid you send this",
    "Dear Sir, URGENT: YOUR ACCOUNT HAS BEEN SUSPENDED!! Verify now at secure-login.co\nIs this from you?",
    "Hello, Final complaint: WE HAVE TRIED TO CONTACT YOU!! PAY YOUR OUTSTANDING BALANCE NOW\nis this legit?",
    "My son sent this.\nUrgent request: I NEED YOU TO SEND ME MONEY NOW MUM\nIs this a scam?",
    "I got a text. Urgent matter: YOUR ACCOUNT IS SUSPENDED. Is this you?",
]


@pytest.mark.parametrize("text", ANGRY)
def test_shouting_after_a_label_of_ones_own_is_anger(text: str) -> None:
    assert anger(text).score >= THRESHOLD, anger(text)


@pytest.mark.parametrize("text", CALM)
def test_quoted_or_labelled_capitals_stay_calm(text: str) -> None:
    assert anger(text).score < THRESHOLD, anger(text)
