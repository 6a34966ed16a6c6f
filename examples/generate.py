"""Writes the synthetic support conversations under examples/ (two batches, PII planted, malformed records)."""

# Deterministic and stdlib only: the same seed always writes byte-identical files.
#   python examples/generate.py [--out DIR] [--seed N]
# Files: batch1/ and batch2/ each with chat.jsonl (OpenAI chat shape) and pairs.csv (customer/agent
# pairs), plus pii_truth.jsonl (per conversation: planted PII values
# as [entity, value] and hard negatives as [kind, value]; used only by tests).

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

FIRST_NAMES = [
    "Anna", "Lukas", "Sofia", "Mateo", "Emma", "Noah", "Olivia", "Liam", "Chloé", "Hugo", "Léa", "Jonas",
    "Mia", "Felix", "Aisha", "Omar", "Priya", "Arjun", "Mei", "Kenji", "Zofia", "Jakub", "Elena", "Marco",
    "Giulia", "Sven", "Ingrid", "Fatima", "Yusuf", "Carmen", "Diego", "Hannah", "Laura", "Daniel", "Grace",
    "Tobias", "Amara", "Nikolai", "Isabel", "Rahul",
]
LAST_NAMES = [
    "Schmidt", "Müller", "García", "Rossi", "Dubois", "Nowak", "Kowalski", "Patel", "Sharma", "Nakamura",
    "Chen", "Johansson", "Andersen", "O'Brien", "Murphy", "Smith", "Johnson", "Martin", "Bernard", "Fischer",
    "Weber", "Silva", "Costa", "Haddad", "Khan", "Novak", "Horvat", "Lindqvist", "Okafor", "Mensah",
]
AGENTS = ["Tom", "Rita", "Samir", "Nadia", "Ole", "Julia"]
EMAIL_DOMAINS = ["example.com", "mail.example.org", "example.net", "post.example.de", "inbox.example.fr"]
STREETS = ["Main", "Oak", "Maple", "Baker", "Elm", "High", "Church", "Mill", "Park", "Station", "Victoria",
           "Willow", "Cedar", "Queen", "Kings"]
STREET_TYPES = ["Street", "Road", "Avenue", "Lane", "Drive", "Way", "Close"]
GERMAN_STREETS = ["Hauptstraße", "Lindenweg", "Bahnhofstraße", "Gartenstraße", "Schillerplatz", "Birkenallee"]
FRENCH_STREETS = ["Rue de Rivoli", "Rue Lafayette", "Avenue Victor Hugo", "Boulevard Voltaire"]
CITIES = ["Springfield, IL 62704", "Leeds LS1 4DY", "Bristol BS1 5TR", "Austin, TX 78701", "Dublin D02 X285"]
GERMAN_CITIES = ["10115 Berlin", "80331 München", "50667 Köln"]
FRENCH_CITIES = ["75001 Paris", "69002 Lyon"]

PRODUCTS_1 = ["Lumen Desk Lamp", "Lumen Smart Plug", "Lumen Hub", "Lumen Motion Sensor", "Lumen Light Strip"]
PRODUCTS_2 = ["Aura Lamp", "Aura Cam", "Aura Doorbell"]
PARTS = ["base", "cover", "cable", "lens", "stand"]
EMOJIS = ["😩", "😤", "🙏", "👋", "✨", "😅", "🤔", "👍", "😡", "🔵"]

SYSTEM_PROMPTS = [
    "You are Lumen's support assistant. Be concise, friendly and precise.",
    "You are a helpful customer support agent for Lumen smart-home products.",
]

# Where each conversation goes in each batch: (topic, weight) and (channel, weight).
BATCHES = {
    "batch1": {
        "month": (2026, 9),
        "topics": [("order_status", 3), ("shipping_delay", 3), ("refund", 3), ("damaged_item", 2)],
        "channels": [("email", 75), ("phone", 15), ("chat", 10)],
        "products": PRODUCTS_1,
    },
    "batch2": {
        "month": (2026, 10),
        "topics": [("subscription", 4), ("login_2fa", 4), ("new_product", 4), ("shipping_delay", 1)],
        "channels": [("chat", 65), ("email", 25), ("phone", 10)],
        "products": PRODUCTS_2,
    },
}
CHAT_CONVERSATIONS = 160  # per batch, in chat.jsonl
CSV_CONVERSATIONS = 80  # per batch, in pairs.csv


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # every second digit from the right, counting the missing check digit
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def iban_check_digits(country: str, bban: str) -> str:
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


@dataclass
class Conversation:
    conversation_id: str
    created_at: str
    channel: str
    topic: str
    system: str | None
    exchanges: list[tuple[str, str]]
    pii: list[tuple[str, str]] = field(default_factory=list)  # (entity, value) planted in the texts
    negatives: list[tuple[str, str]] = field(default_factory=list)  # (kind, value): must not be flagged


class Maker:
    """Draws one conversation's people, identifiers and texts; records every planted value."""

    def __init__(self, rng: random.Random, batch: str):
        self.rng = rng
        self.batch = batch
        self.pii: list[tuple[str, str]] = []
        self.negatives: list[tuple[str, str]] = []

    def pick(self, items):
        return self.rng.choice(items)

    def digits(self, n: int) -> str:
        return "".join(str(self.rng.randint(0, 9)) for _ in range(n))

    def plant(self, entity: str, value: str) -> str:
        self.pii.append((entity, value))
        return value

    def negative(self, kind: str, value: str) -> str:
        self.negatives.append((kind, value))
        return value

    # PII -----------------------------------------------------------------
    def email(self, first: str, last: str) -> str:
        ascii_first = first.replace("é", "e").replace("ü", "u").lower()
        ascii_last = last.replace("'", "").replace("ü", "u").replace("í", "i").lower()
        local = self.pick([
            f"{ascii_first}.{ascii_last}", f"{ascii_first}{ascii_last}{self.rng.randint(1, 99)}",
            f"{ascii_first[0]}.{ascii_last}", f"{ascii_first}_{ascii_last}", f"{ascii_first}+lumen",
        ])
        value = f"{local}@{self.pick(EMAIL_DOMAINS)}"
        if self.rng.random() < 0.15:  # some people type their address capitalised
            value = value[0].upper() + value[1:]
        return self.plant("EMAIL", value)

    def phone(self) -> str:
        r = self.rng
        area = r.choice(["212", "312", "415", "512", "646", "718", "917"])
        d4 = f"0{r.randint(100, 199)}"
        fmt = r.randrange(17)
        value = [
            f"+1 ({area}) 555-{d4}", f"({area}) 555-{d4}", f"{area}-555-{d4}", f"+1 {area} 555 {d4}",
            f"+44 20 7946 0{self.digits(3)}", f"020 7946 0{self.digits(3)}", f"07700 900{self.digits(3)}",
            f"+44 7700 900{self.digits(3)}", f"+49 30 {r.randint(2, 9)}{self.digits(7)}",
            f"0151 {r.randint(2, 9)}{self.digits(7)}", f"+49 (0)30 {r.randint(2, 9)}{self.digits(7)}",
            f"+33 6 {self.digits(2)} {self.digits(2)} {self.digits(2)} {self.digits(2)}",
            f"06 {self.digits(2)} {self.digits(2)} {self.digits(2)} {self.digits(2)}",
            f"+4915{r.randint(1, 9)}{self.digits(8)}", f"0044 7700 900{self.digits(3)}",
            f"+91 98{self.digits(3)} {self.digits(5)}", f"{area}555{d4}",  # the last: no separators at all
        ][fmt]
        return self.plant("PHONE", value)

    def card(self) -> str:
        r = self.rng
        kind = r.randrange(4)
        if kind == 3:  # Amex: 15 digits, grouped 4-6-5
            body = r.choice(["34", "37"]) + self.digits(12)
            num = body + luhn_check_digit(body)
            value = f"{num[:4]} {num[4:10]} {num[10:]}" if r.random() < 0.6 else num
        else:
            prefix = ["4", f"5{r.randint(1, 5)}", "6011"][kind]
            body = prefix + self.digits(15 - len(prefix))
            num = body + luhn_check_digit(body)
            sep = r.choice([" ", " ", "-", ""])
            value = sep.join(num[i:i + 4] for i in range(0, 16, 4))
        return self.plant("CARD", value)

    def iban(self) -> str:
        r = self.rng
        country = r.choice(["DE", "GB", "FR", "NL", "ES", "AT", "BE"])
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        bban = {
            "DE": lambda: self.digits(18),
            "GB": lambda: "".join(r.choice(letters) for _ in range(4)) + self.digits(14),
            "FR": lambda: self.digits(23),
            "NL": lambda: "".join(r.choice(letters) for _ in range(4)) + self.digits(10),
            "ES": lambda: self.digits(20),
            "AT": lambda: self.digits(16),
            "BE": lambda: self.digits(12),
        }[country]()
        compact = country + iban_check_digits(country, bban) + bban
        value = " ".join(compact[i:i + 4] for i in range(0, len(compact), 4)) if r.random() < 0.6 else compact
        return self.plant("IBAN", value)

    def ip(self) -> str:
        r = self.rng
        if r.random() < 0.15:
            value = f"2001:db8:{r.randint(1, 0xffff):x}::{r.randint(1, 0xffff):x}"
        else:
            value = r.choice([
                f"203.0.113.{r.randint(1, 254)}", f"198.51.100.{r.randint(1, 254)}",
                f"{r.randint(11, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
            ])
        return self.plant("IP", value)

    def address(self) -> tuple[str, str]:
        r = self.rng
        style = r.random()
        if style < 0.6:
            street = f"{r.randint(1, 240)}{r.choice(['', '', '', 'B'])} {r.choice(STREETS)} {r.choice(STREET_TYPES)}"
            city = r.choice(CITIES)
        elif style < 0.85:
            street = f"{r.choice(GERMAN_STREETS)} {r.randint(1, 120)}{r.choice(['', '', 'a'])}"
            city = r.choice(GERMAN_CITIES)
        else:
            street = f"{r.randint(1, 120)} {r.choice(FRENCH_STREETS)}"
            city = r.choice(FRENCH_CITIES)
        return self.plant("ADDRESS", street), city

    # identifiers that look like PII but are not (hard negatives) ------------
    def order(self) -> str:
        return self.negative("order_number", f"#A-{self.rng.randint(100000, 999999)}")

    def tracking(self) -> str:
        r = self.rng
        value = r.choice([
            f"1Z{self.digits(3)}AA1{self.digits(10)}", f"JD{self.digits(18)}", f"94001{self.digits(17)}",
        ])
        return self.negative("tracking_number", value)

    def sku(self) -> str:
        return self.negative("sku", f"SKU LM-{self.rng.randint(1000, 9999)}-{self.pick(['WHT', 'BLK', 'GRY'])}")

    def price(self) -> str:
        r = self.rng
        amount = r.choice([19.99, 24.5, 49.99, 89.0, 129.0, 1299.0, 249.99, 9.99])
        value = r.choice([f"${amount:,.2f}", f"€{amount:,.2f}", f"£{amount:,.2f}"])
        return self.negative("price", value)

    def date(self, base: datetime, days: int) -> str:
        d = base + timedelta(days=days)
        value = d.strftime("%Y-%m-%d") if self.rng.random() < 0.7 else d.strftime("%d/%m/%Y")
        return self.negative("date", value)

    def version(self) -> str:
        r = self.rng
        return self.negative("version", f"v{r.randint(2, 4)}.{r.randint(0, 12)}.{r.randint(0, 30)}")

    def gift_card(self) -> str:
        # 16 digits that fail the Luhn check: a card-shaped number that is not a payment card
        body = str(self.rng.randint(1, 9)) + self.digits(14)
        bad = str((int(luhn_check_digit(body)) + 1 + self.rng.randint(0, 8)) % 10)
        num = body + bad
        return self.negative("non_luhn_16", " ".join(num[i:i + 4] for i in range(0, 16, 4)))


# Agent replies are templates per topic with light variation, so that a fine-tune has something to learn.
def agent_email(first: str, agent: str, body: str) -> str:
    return f"Hi {first},\n\n{body}\n\nBest regards,\n{agent}\nLumen Support"


def agent_chat(first: str, body: str) -> str:
    return f"Hi {first}! {body}"


def person_block(m: Maker) -> dict:
    first, last = m.pick(FIRST_NAMES), m.pick(LAST_NAMES)
    return {"first": first, "last": last, "agent": m.pick(AGENTS)}


def formal_signature(m: Maker, p: dict) -> str:
    full = f"{p['first']} {p['last']}"
    style = m.rng.randrange(4)
    if style == 0:
        m.plant("NAME", full)
        return f"Kind regards,\n{full}"
    if style == 1:
        m.plant("NAME", full)
        return f"Best regards,\n{full}\n{m.email(p['first'], p['last'])}"
    if style == 2:
        m.plant("NAME", p["first"])
        return f"Thanks,\n{p['first']}"
    m.plant("NAME", full)
    return f"Many thanks,\n{full}\nPhone: {m.phone()}"


def formal_open(m: Maker) -> str:
    return m.pick(["Hello,", "Hi there,", "Dear Lumen team,", "Good morning,", "Hello Lumen Support,"])


def batch1_topic(m: Maker, topic: str, p: dict, base: datetime, products: list[str]) -> list[tuple[str, str]]:
    first = p["first"]
    product = m.pick(products)
    order = m.order()
    m.plant("NAME", first)  # the agent greets the customer by first name
    if topic == "order_status":
        u1 = (f"I ordered a {product} (order {order}) on {m.date(base, -6)} and I have not received any update "
              f"since. Could you tell me where it is? You can reach me at {m.phone()}.")
        a1 = ("thank you for contacting Lumen Support. Your order " + order + " has been packed and will be "
              "handed to the carrier within 24 hours. You will get an e-mail with the tracking link as soon as "
              "it ships.")
    elif topic == "shipping_delay":
        tracking = m.tracking()
        street, city = m.address()
        u1 = (f"My order {order} was supposed to arrive on {m.date(base, -2)} but the tracking number {tracking} "
              f"has not moved for a week. I'm getting worried. Delivery address: {street}, {city}. "
              f"Phone: {m.phone()}.")
        a1 = (f"I'm sorry for the delay. I have checked tracking number {tracking}: the parcel is at the regional "
              "depot and deliveries are running 3-5 business days late this month. If it has not arrived by "
              f"{m.date(base, 5)}, reply to this e-mail and we will send a replacement free of charge.")
    elif topic == "refund":
        price = m.price()
        if m.rng.random() < 0.5:
            u1 = (f"I returned the {product} from order {order} on {m.date(base, -4)}. Could you please refund "
                  f"the {price} to my card {m.card()}?")
            a1 = (f"thank you, we have received your return for order {order}. I have issued a refund of {price} "
                  "to your card. It usually appears on your statement within 5-7 business days.")
        else:
            u1 = (f"I returned the {product} from order {order} on {m.date(base, -4)}. I paid by bank transfer, "
                  f"so please send the {price} back to my account, IBAN {m.iban()}.")
            a1 = (f"thank you, we have received your return for order {order}. I have issued a refund of {price} "
                  "to the bank account you gave us. Bank transfers arrive within 3 business days.")
    else:  # damaged_item
        part = m.pick(PARTS)
        street, city = m.address()
        u1 = (f"The {product} ({m.sku()}) from order {order} arrived with a cracked {part}. Photos attached. "
              f"I'd like a replacement sent to {street}, {city}.")
        a1 = (f"I'm sorry your {product} arrived damaged. I have created a free replacement for order {order}; "
              "it ships within 2 business days to the address on file. You do not need to send the damaged "
              "item back.")
    exchanges = [(u1, a1)]
    n_extra = m.rng.choice([0, 1, 1, 2])
    if n_extra >= 1:
        follow = m.rng.randrange(4)
        if follow == 3:  # a name with no cue around it
            other = m.plant("NAME", m.pick(FIRST_NAMES))
            u2 = f"Also, {other} will be at home to sign for the parcel if I am out."
            a2 = "Thank you, I have added a note for the courier."
        elif follow == 0:
            street, city = m.address()
            u2 = f"Thanks. Please make sure it goes to {street}, {city}, not my old address."
            a2 = f"I have updated the delivery address on order {order}. No further action is needed on your side."
        elif follow == 1:
            u2 = (f"Also, I still have a gift card ({m.gift_card()}) from last year. Can I use it on my next "
                  "order?")
            a2 = ("Yes, gift cards never expire. Enter the number at checkout and the balance is applied "
                  "automatically.")
        else:
            u2 = f"Could you send the confirmation to {m.email(p['first'], p['last'])} instead?"
            a2 = "Of course. I have sent the confirmation to that address; please check your spam folder too."
        exchanges.append((u2, a2))
    if n_extra >= 2:
        exchanges.append((m.pick(["Great, thank you!", "Perfect, thanks a lot.", "Thank you for the quick help."]),
                          "You're welcome! Is there anything else I can help you with?"))
    return exchanges


def batch2_topic(m: Maker, topic: str, p: dict, products: list[str], channel: str) -> list[tuple[str, str]]:
    first = p["first"]
    r = m.rng
    emoji = m.pick(EMOJIS)
    m.plant("NAME", first)
    if topic == "subscription":
        price = m.price()
        if r.random() < 0.5:
            u1 = f"charged {price} for Lumen Plus again?? i cancelled last month {emoji} card {m.card()}"
        else:
            u1 = f"how do i cancel Lumen Plus? https://lumen.example/account/billing just spins {emoji}"
        a1 = ("I've cancelled your Lumen Plus renewal and refunded any charge after the cancellation; "
              "you'll see it in 3-5 days. Status: https://lumen.example/account/billing")
    elif topic == "login_2fa":
        kind = r.randrange(3)
        if kind == 0:
            u1 = f"cant log in {emoji} the 2fa code never arrives on {m.phone()}, tried https://lumen.example/login"
            a1 = ("I've reset two-factor authentication on your account. Log in at https://lumen.example/login "
                  "and set up 2FA again; codes can take a minute to arrive.")
        elif kind == 1:
            where = m.ip()
            if "." in where and r.random() < 0.3:  # an IPv4 with its port
                where += f":{r.randint(1024, 65535)}"
            u1 = f"got a login alert from {where} wasn't me!! {emoji}"
            a1 = ("Thanks for flagging it. I've signed out all sessions, blocked that login and sent a password "
                  "reset link. Please turn on 2FA at https://lumen.example/account/security")
        else:
            u1 = f"new phone, lost my authenticator app {emoji} email is {m.email(first, p['last'])}"
            a1 = ("I've reset two-factor authentication on your account. Log in at https://lumen.example/login "
                  "and set up 2FA again; codes can take a minute to arrive.")
    elif topic == "new_product":
        product = m.pick(products)
        kind = r.randrange(3)
        if kind == 0:
            u1 = f"just got the {product} {emoji} won't pair with the app ({m.version()})"
        elif kind == 1:
            u1 = f"{product} keeps blinking blue {emoji} what does that mean? https://lumen.example/aura"
        else:
            u1 = f"does the {product} work without Lumen Plus? {emoji}"
        a1 = (f"Update the Lumen app to v4.2 or newer, hold the {product} button for 5 seconds until it blinks "
              "blue, then tap 'Add device'. Guide: https://lumen.example/aura/setup")
    else:  # shipping_delay, carried over from September with a chat voice
        tracking = m.tracking()
        u1 = f"where is my order {m.order()}?? https://lumen.example/track says {tracking} stuck {emoji}"
        a1 = (f"Sorry for the wait! {tracking} is at the regional depot; deliveries are 3-5 business days late. "
              "Track it at https://lumen.example/track")
    # an informal chat opener, sometimes introducing themselves
    if channel != "chat":
        pass
    elif r.random() < 0.35:
        full = f"{first} {p['last']}"
        m.plant("NAME", full)
        u1 = f"hi, I'm {full}, {u1}"
    elif r.random() < 0.15:  # lower-case, no cue: hard for a recognizer
        u1 = f"{m.plant('NAME', first.lower())} here, {u1}"
    else:
        u1 = m.pick(["hi ", "hey ", "hello 👋 ", "", ""]) + u1
    exchanges = [(u1, agent_chat(first, a1))]
    n_extra = r.choice([0, 1, 1, 2])
    if n_extra >= 1:
        if r.random() < 0.5:
            u2 = f"ok done. also my number changed, it's {m.phone()} now"
            a2 = "Got it, I've updated the phone number on your account."
        else:
            u2 = m.pick(["didnt work", "still nothing", "same error"]) + " " + emoji
            if r.random() < 0.5:
                u2 += f" screenshot: https://img.example/{r.getrandbits(32):08x}.png"
            a2 = ("Let's try once more: sign out of the app, reinstall it from https://lumen.example/app "
                  "and log in again.")
        exchanges.append((u2, a2))
    if n_extra >= 2:
        exchanges.append((m.pick(["thx!!", "works now 👍", "ty"]), "Glad it works! Anything else?"))
    return exchanges


def formalize(m: Maker, p: dict, exchanges: list[tuple[str, str]], channel: str) -> list[tuple[str, str]]:
    """Wraps the first exchange in the voice of its channel (e-mail letters, phone transcripts)."""
    (u1, a1), rest = exchanges[0], exchanges[1:]
    if channel != "chat":
        m.plant("NAME", p["agent"])  # the agent signs letters and call notes
    if channel == "email":
        u1 = f"{formal_open(m)}\n\n{u1}\n\n{formal_signature(m, p)}"
        a1 = agent_email(p["first"], p["agent"], a1)
    elif channel == "phone":
        full = f"{p['first']} {p['last']}"
        m.plant("NAME", full)
        u1 = f"Yes, hello, my name is {full}. {u1}"
        a1 = agent_email(p["first"], p["agent"], a1)
    else:
        a1 = agent_chat(p["first"], a1)
    return [(u1, a1), *rest]


def make_conversation(rng: random.Random, batch: str, when: datetime) -> Conversation:
    spec = BATCHES[batch]
    m = Maker(rng, batch)
    topics, topic_w = zip(*spec["topics"], strict=True)
    channels, channel_w = zip(*spec["channels"], strict=True)
    topic = rng.choices(topics, topic_w)[0]
    channel = rng.choices(channels, channel_w)[0]
    p = person_block(m)
    if batch == "batch1":
        exchanges = formalize(m, p, batch1_topic(m, topic, p, when, spec["products"]), channel)
    else:
        exchanges = batch2_topic(m, topic, p, spec["products"], channel)
        if channel != "chat":  # e-mail and phone keep their longer voice in October too
            u1, a1 = exchanges[0]
            a1 = a1.removeprefix(f"Hi {p['first']}! ")
            exchanges = formalize(m, p, [(u1, a1), *exchanges[1:]], channel)
    cid = f"conv-{rng.getrandbits(48):012x}"
    system = rng.choice(SYSTEM_PROMPTS) if rng.random() < 0.3 else None
    return Conversation(cid, when.strftime("%Y-%m-%dT%H:%M:%SZ"), channel, topic, system, exchanges,
                        m.pii, m.negatives)


def drop_absent(conv: Conversation) -> Conversation:
    """Keeps only planted values that really occur in the texts (a template may not use every draw)."""
    text = "\n".join(t for ex in conv.exchanges for t in ex)
    conv.pii = sorted({x for x in conv.pii if x[1] in text})
    conv.negatives = sorted({x for x in conv.negatives if x[1] in text})
    return conv


def chat_record(conv: Conversation) -> dict:
    messages = [{"role": "system", "content": conv.system}] if conv.system else []
    for user, assistant in conv.exchanges:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return {"messages": messages, "conversation_id": conv.conversation_id, "created_at": conv.created_at,
            "channel": conv.channel}


def dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=False)


def malformed_chat_lines(rng: random.Random, batch: str, when: datetime) -> list[bytes]:
    """Records the ingest must quarantine, each for one reason (the reason is in the comment)."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    ok_user = {"role": "user", "content": "Where is my order #A-554433?"}
    ok_agent = {"role": "assistant", "content": "It ships tomorrow."}
    log = "\n".join(f"2026-09-0{i % 9 + 1}T10:{i % 60:02d}:00Z app[{i}]: sync failed, retrying (code 502)"
                    for i in range(160))
    lines = [
        # invalid_json: a truncated line
        '{"messages": [{"role": "user", "content": "my order never arri',
        # missing_field:messages
        dumps({"conversation_id": f"bad-{batch}-1", "created_at": stamp, "channel": "email",
               "turns": [ok_user, ok_agent]}),
        # empty_text
        dumps({"messages": [ok_user, {"role": "assistant", "content": "   "}],
               "conversation_id": f"bad-{batch}-2", "created_at": stamp, "channel": "chat"}),
        # unknown_role:bot
        dumps({"messages": [ok_user, {"role": "bot", "content": "Beep."}],
               "conversation_id": f"bad-{batch}-3", "created_at": stamp, "channel": "chat"}),
        # text_too_long: a pasted log file
        dumps({"messages": [{"role": "user", "content": "The app keeps failing, here is the log:\n" + log},
                            ok_agent], "conversation_id": f"bad-{batch}-4", "created_at": stamp,
               "channel": "email"}),
        # no_assistant_turn
        dumps({"messages": [ok_user], "conversation_id": f"bad-{batch}-5", "created_at": stamp,
               "channel": "chat"}),
    ]
    raw = [line.encode("utf-8") for line in lines]
    # invalid_utf8: a Latin-1 encoded line
    raw.append(dumps({"messages": [{"role": "user", "content": "Bestellung über 5 Stück?"}, ok_agent],
                      "conversation_id": f"bad-{batch}-6", "created_at": stamp,
                      "channel": "email"}).encode("latin-1"))
    return raw


def write_batch(rng: random.Random, batch: str, out: Path) -> tuple[list[dict], dict]:
    year, month = BATCHES[batch]["month"]
    start = datetime(year, month, 1, tzinfo=UTC)
    n = CHAT_CONVERSATIONS + CSV_CONVERSATIONS
    times = sorted(start + timedelta(seconds=rng.randrange(29 * 86400)) for _ in range(n))
    convs = [drop_absent(make_conversation(rng, batch, t)) for t in times]
    chat_convs, csv_convs = convs[:CHAT_CONVERSATIONS], convs[CHAT_CONVERSATIONS:]

    # chat.jsonl: good records, malformed ones spread through the file, 3 exact duplicates
    lines = [dumps(chat_record(c)).encode("utf-8") for c in chat_convs]
    for dup_of in (5, 40, 90):
        lines.insert(dup_of + 50, lines[dup_of])
    bad = malformed_chat_lines(rng, batch, start + timedelta(days=10))
    for i, line in enumerate(bad):
        lines.insert(7 + i * 23, line)
    batch_dir = out / batch
    batch_dir.mkdir(parents=True, exist_ok=True)
    (batch_dir / "chat.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))

    # pairs.csv: one row per exchange; an empty agent answer; one duplicated row
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["conversation_id", "created_at", "channel", "customer", "agent"])
    rows = []
    for c in csv_convs:
        for user, assistant in c.exchanges:
            rows.append([c.conversation_id, c.created_at, c.channel, user, assistant])
    rows.insert(11, rows[10])  # exact duplicate, right after the original
    at = next(i for i in range(30, len(rows)) if rows[i][0] != rows[i - 1][0])  # between two conversations
    rows.insert(at, [f"bad-{batch}-csv", rows[at - 1][1], "email", "Hello, is anyone there?", ""])
    writer.writerows(rows)
    (batch_dir / "pairs.csv").write_text(buf.getvalue(), encoding="utf-8")

    truth = [
        {"batch": batch, "file": file, "conversation_id": c.conversation_id,
         "pii": [list(x) for x in c.pii], "negatives": [list(x) for x in c.negatives]}
        for c, file in [(c, "chat.jsonl") for c in chat_convs] + [(c, "pairs.csv") for c in csv_convs]
    ]
    stats = {"conversations": n, "chat_lines": len(lines), "csv_rows": len(rows), "malformed": len(bad) + 1,
             "duplicates": 4}
    return truth, stats


def generate(out: Path, seed: int = 20260901) -> dict:
    rng = random.Random(seed)
    truth: list[dict] = []
    stats = {}
    for batch in BATCHES:
        batch_truth, stats[batch] = write_batch(rng, batch, out)
        truth += batch_truth
    (out / "pii_truth.jsonl").write_text("".join(dumps(t) + "\n" for t in truth), encoding="utf-8")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=20260901)
    args = parser.parse_args()
    stats = generate(args.out, args.seed)
    for batch, s in stats.items():
        print(batch, s)


def conversation_texts(root: Path) -> dict[tuple[str, str], list[str]]:
    """The texts of every well-formed conversation written under root, keyed by (batch, conversation id):
    what the PII tests and benchmark search for the planted values of pii_truth.jsonl."""
    texts: dict[tuple[str, str], list[str]] = {}
    for batch in ("batch1", "batch2"):
        for raw in (root / batch / "chat.jsonl").read_bytes().splitlines():
            try:
                rec = json.loads(raw)
                texts[(batch, rec["conversation_id"])] = [m["content"] for m in rec["messages"]]
            except (ValueError, KeyError, TypeError):
                continue
        with (root / batch / "pairs.csv").open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                texts.setdefault((batch, row["conversation_id"]), []).extend([row["customer"], row["agent"]])
    return texts


if __name__ == "__main__":
    main()
