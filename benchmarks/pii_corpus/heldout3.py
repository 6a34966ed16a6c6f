"""A third held-out labelled PII corpus (held_out_3): written from the issue's wording alone and never tuned on.

Independent of the engine and of the other corpora (own names, phrasings, layouts and value formats). Support
conversations in en/de/fr/es (some it/nl/pt) in many surface forms: plain chat, e-mails with signatures, forwarded
mail headers, HTML snippets, pasted logs and stack traces, markdown tables, JSON blobs, timestamped chat
transcripts, short lower-case messages with typos, ALL CAPS. Labelled PII: EMAIL, PHONE, CARD (Luhn), IBAN
(mod 97 and national checks), NATIONAL_ID (US SSN, DE tax ID, FR NIR, ES DNI/NIE, IT codice fiscale, NL BSN,
PT NIF, BE national number, UK NINO, CH AHV, AT social insurance number, PL PESEL), IP (public v4/v6),
URL_CREDENTIAL (the user names, passwords, tokens and e-mails inside a URL, not the host and path around them),
SECRET, ADDRESS (street, house number and unit; postcode and town are not part of the span), DOB (the date, beside
a birth cue), NAME. Hard negatives: order, sku, tracking, version, price, timestamp, date, product, company,
gift_card (fails Luhn), invoice, ticket.
benchmarks/pii.py scores it as "held_out_3"; its first run is kept as "held_out_3_first_run". No test uses it.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import phonenumbers

sys.path.insert(0, str(Path(__file__).parent))
from labelled import Labelled, iban_for, luhn_break, luhn_complete, random_phone  # noqa: E402

SEED = 3_303_2026
LANG_WEIGHTS = {"en": 26, "de": 22, "fr": 18, "es": 18, "it": 6, "nl": 5, "pt": 5}


@dataclass
class V:
    """One slot value: its text and its label (a PII entity or a hard-negative kind), or plain text."""

    text: str
    pii: str | None = None
    neg: str | None = None
    parts: list[tuple[str, str | None]] | None = None  # pieces with their own labels (a URL's credentials)

    def write(self, doc: Labelled) -> None:
        for piece, label in self.parts or [(self.text, self.pii)]:
            doc.add(piece, pii=label, negative=None if self.parts else self.neg)


SLOT = re.compile(r"\{(\w+)\}")


def fill(doc: Labelled, template: str, noise=None, **slots: V | str) -> Labelled:
    """Add template to doc, the {slot}s labelled; noise(piece) may alter the literal text between slots."""
    pos = 0
    for m in SLOT.finditer(template):
        literal = template[pos:m.start()]
        doc.add(noise(literal) if noise else literal)
        value = slots[m.group(1)]
        if isinstance(value, V):
            value.write(doc)
        else:
            doc.add(value)
        pos = m.end()
    tail = template[pos:]
    doc.add(noise(tail) if noise else tail)
    return doc


def ascii_fold(s: str) -> str:
    s = s.replace("ß", "ss").replace("ø", "o").replace("ł", "l").replace("ı", "i")
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


# --- people: (given, family, order) where order "fg" writes the family name first ---------------------------
PEOPLE = [
    ("Jürgen", "Weißmann", "gf"), ("Anneliese", "Krämer", "gf"), ("Torsten", "Vogelsang", "gf"),
    ("Henrike", "Oßwald", "gf"), ("Kai-Uwe", "Brinkhoff", "gf"), ("Amélie", "Lefèvre", "gf"),
    ("Grégoire", "Duplantier", "gf"), ("Solène", "Marchetti", "gf"), ("Thibault", "Roux-Chevalier", "gf"),
    ("Maëlle", "Guérin", "gf"), ("Benoît", "Lacombe", "gf"), ("Ximena", "Olivares", "gf"),
    ("Joaquín", "Etxeberria", "gf"), ("Itziar", "Goñi", "gf"), ("Rodrigo", "Castañeda Ruiz", "gf"),
    ("Begoña", "Villalobos", "gf"), ("Iñaki", "Arrieta", "gf"), ("Ludovica", "Bellandi", "gf"),
    ("Gianmarco", "Esposito", "gf"), ("Chiara", "Lo Russo", "gf"), ("Sanne", "van der Heijden", "gf"),
    ("Joost", "Bakker", "gf"), ("Femke", "de Vries", "gf"), ("João", "Gonçalves", "gf"),
    ("Inês", "Magalhães", "gf"), ("Thiago", "Albuquerque", "gf"), ("Declan", "McAllister", "gf"),
    ("Tyrone", "Whitfield", "gf"), ("Brooke", "Hollingsworth", "gf"), ("Niamh", "O'Callaghan", "gf"),
    ("Mehmet", "Yılmaz", "gf"), ("Ayşe", "Çelik", "gf"), ("Emre", "Öztürk", "gf"),
    ("Katarzyna", "Wiśniewska", "gf"), ("Grzegorz", "Zieliński", "gf"), ("Youssef", "El Amrani", "gf"),
    ("Khalid", "Al-Hashimi", "gf"), ("Nour", "Haddad", "gf"), ("Priyanka", "Raghunathan", "gf"),
    ("Venkatesh", "Subramaniam", "gf"), ("Aarav", "Chaudhary", "gf"), ("Xiaoling", "Chen", "gf"),
    ("Zhang", "Zhiwei", "fg"), ("Nguyễn", "Thị Lan", "fg"), ("Haruto", "Takahashi", "gf"),
    ("Yui", "Nakamura", "gf"), ("Ji-woo", "Park", "gf"), ("Chukwuemeka", "Okonkwo", "gf"),
    ("Adaeze", "Nwosu", "gf"), ("Babatunde", "Adeyemi", "gf"), ("Eleftheria", "Papadopoulou", "gf"),
    ("Dimitris", "Kouris", "gf"), ("Linnea", "Sjöberg", "gf"), ("Björn", "Lindqvist", "gf"),
    ("Anastasia", "Volkova", "gf"), ("Wanjiru", "Kamau", "gf"), ("Zsófia", "Kovács", "gf"),
    ("Oluwaseun", "Bankole", "gf"), ("Mariana", "Ferreira da Silva", "gf"), ("Pádraig", "Ó Briain", "gf"),
    ("Søren", "Kjærgaard", "gf"), ("Ruairí", "Dunne", "gf"), ("Leocadia", "Pruszyńska", "gf"),
    ("Rafael", "de la Fuente", "gf"), ("Vítor", "Sarmento", "gf"), ("Ottilie", "Grünewald", "gf"),
    ("Quentin", "Beauchamp", "gf"), ("Dolores", "Quintanilla", "gf"), ("Farhan", "Siddiqui", "gf"),
    ("Tamar", "Ben-David", "gf"), ("Kwame", "Asante", "gf"), ("Hiroshi", "Watanabe", "gf"),
]
AGENTS = [
    ("Lukas", "Hartmann"), ("Camille", "Baudry"), ("Lucía", "Montenegro"), ("Ethan", "Blackwood"),
    ("Greta", "Fahrenholz"), ("Mathis", "Perrault"), ("Alba", "Sandoval"), ("Tommaso", "Ricci"),
    ("Daan", "Visser"), ("Beatriz", "Moura"), ("Connor", "Ashby"), ("Yasmin", "Kaya"),
]
TITLES = {"en": ("Mr", "Ms"), "de": ("Herr", "Frau"), "fr": ("M.", "Mme"), "es": ("Sr.", "Sra."),
          "it": ("Sig.", "Sig.ra"), "nl": ("dhr.", "mevr."), "pt": ("Sr.", "Sra.")}

# --- hard negatives that look like names or PII ---------------------------------------------------------------
PRODUCTS = ["Alexa", "Siri", "Renault Zoe", "Seat Leon", "Kia Ceed", "Julia", "Ruby", "Fiat Ducato", "Ford Ka",
            "Opel Adam", "Dacia Sandero", "Amazon Echo", "Galaxy Buds", "Philips Sonicare", "Sonos Ray"]
COMPANIES = ["Zara", "Mercedes-Benz", "Hugo Boss", "Jack Wolfskin", "Tommy Hilfiger", "Marc O'Polo", "Wendy's",
             "Victoria's Secret", "Ben & Jerry's", "Kiehl's", "Carhartt", "Lufthansa", "Decathlon", "Mango"]
SHOPS = ["Nordlicht Versand", "Maison Clément", "Tiendas Arcoíris", "Brightpath Telecom", "Fernwärme Ost",
         "Ciclomundo", "Verdeluz Energía", "Kastell Möbel"]


class Values:
    """Random but valid values of every type, and hard negatives, from one seeded generator."""

    def __init__(self, r: random.Random):
        self.r = r

    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def alnum(self, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    # --- names
    def person(self):
        return self.r.choice(PEOPLE)

    @staticmethod
    def full(p) -> str:
        return f"{p[1]} {p[0]}" if p[2] == "fg" else f"{p[0]} {p[1]}"

    # --- e-mail
    def email(self, p) -> str:
        r = self.r
        g, f = ascii_fold(p[0]).lower().replace(" ", ""), ascii_fold(p[1]).lower().replace(" ", "").replace("'", "")
        local = r.choice([f"{g}.{f}", f"{g[0]}.{f}", f"{g}{f}{r.randint(60, 99)}", f"{f}_{g}", f"{g}+shop",
                          f"{g}.{f}-{r.randint(1, 9)}", f"{f}{g[0]}"])
        domain = r.choice(["gmx.de", "web.de", "t-online.de", "orange.fr", "laposte.net", "free.fr",
                           "telefonica.net", "yahoo.es", "gmail.com", "outlook.com", "icloud.com", "libero.it",
                           "ziggo.nl", "sapo.pt", "proton.me", "posteo.de", "kanzlei-brandt.de",
                           "mail.uni-freiburg.de", "boulangerie-roux.fr", "hotmail.co.uk", "btinternet.com"])
        value = f"{local}@{domain}"
        x = r.random()
        if x < 0.1:
            value = value.upper()
        elif x < 0.2:
            value = value[0].upper() + value[1:]
        return value

    # --- phone
    REGIONS = ["DE", "AT", "CH", "FR", "BE", "ES", "IT", "NL", "PT", "GB", "IE", "US", "CA", "MX", "BR", "AR",
               "PL", "SE", "DK", "TR", "MA", "IN", "AU", "ZA", "NG", "JP", "CO", "CL"]

    def phone(self, region: str | None = None) -> str:
        """A number of region (national forms allowed), or of any region in an international form."""
        r = self.r
        national_ok = region is not None
        region = region or r.choice(self.REGIONS)
        kind = r.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
        number = random_phone(r, region, kind)
        fmt = r.random()
        if not national_ok and 0.3 <= fmt < 0.55:
            fmt = 0.0
        if fmt < 0.3:
            s = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        elif fmt < 0.55:
            s = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        elif fmt < 0.7:
            s = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        elif fmt < 0.8:
            intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            s = "00" + intl[1:]
        elif fmt < 0.9:
            intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            s = intl.replace(" ", r.choice([".", "-", "/"]))
        else:
            national = str(number.national_number)
            if region in ("DE", "AT", "CH", "GB"):
                s = f"+{number.country_code} (0) {national[:3]} {national[3:]}"
            elif national_ok:
                s = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL).replace(" ", "")
            else:
                s = f"+{number.country_code}{national}"
        return s

    # --- payment card
    def card(self) -> str:
        r = self.r
        kind = r.choice(["visa", "visa", "mc", "mc2", "amex", "discover", "jcb"])
        if kind == "amex":
            n = luhn_complete(r.choice(["34", "37"]) + self.digits(12))
            return r.choice([f"{n[:4]} {n[4:10]} {n[10:]}", n, f"{n[:4]}-{n[4:10]}-{n[10:]}"])
        prefix = {"visa": "4", "mc": str(r.randint(51, 55)), "mc2": str(r.randint(2221, 2720)), "discover": "6011",
                  "jcb": str(r.randint(3528, 3589))}[kind]
        n = luhn_complete(prefix + self.digits(15 - len(prefix)))
        sep = r.choice([" ", " ", "-", "", ".", "  "])
        return sep.join(n[i:i + 4] for i in range(0, 16, 4))

    # --- IBAN
    def iban(self) -> str:
        r = self.r
        country = r.choice(["DE", "DE", "FR", "ES", "IT", "NL", "PT", "BE", "AT", "CH", "GB", "IE", "PL"])
        if country == "DE":
            bban = self.digits(8) + self.digits(10)
        elif country == "FR":
            bank, branch, acct = self.digits(5), self.digits(5), self.digits(11)
            key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(acct)) % 97
            bban = f"{bank}{branch}{acct}{key:02d}"
        elif country == "ES":
            bank, branch, acct = self.digits(4), self.digits(4), self.digits(10)
            bban = bank + branch + _es_ccc("00" + bank + branch) + _es_ccc(acct) + acct
        elif country == "IT":
            bban = r.choice(string.ascii_uppercase) + self.digits(10) + self.digits(12)
        elif country == "NL":
            bban = r.choice(["ABNA", "INGB", "RABO", "TRIO", "SNSB"]) + self.digits(10)
        elif country == "PT":
            body = self.digits(19)
            bban = body + f"{98 - int(body) * 100 % 97:02d}"
        elif country == "BE":
            body = self.digits(10)
            check = int(body) % 97 or 97
            bban = body + f"{check:02d}"
        elif country == "AT":
            bban = self.digits(16)
        elif country == "CH":
            bban = self.digits(17)
        elif country == "GB":
            bban = r.choice(["NWBK", "BARC", "LOYD", "HBUK"]) + self.digits(14)
        elif country == "IE":
            bban = r.choice(["AIBK", "BOFI"]) + self.digits(14)
        else:
            bban = self.digits(24)
        iban = iban_for(country, bban)
        x = r.random()
        if x < 0.55:
            return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        if x < 0.85:
            return iban
        if x < 0.93:
            return iban.lower()
        return "-".join(iban[i:i + 4] for i in range(0, len(iban), 4))

    # --- national IDs
    def national_id(self, lang: str) -> tuple[str, str]:
        """(value, label of the ID for the cue text)."""
        r = self.r
        pool = {"en": ["ssn", "ssn", "nino", "ssn"], "de": ["steuer", "steuer", "svnr", "ahv"],
                "fr": ["nir", "nir", "be", "ahv"], "es": ["dni", "nie", "dni"], "it": ["cf", "cf"],
                "nl": ["bsn", "bsn", "be"], "pt": ["nif", "nif"]}[lang]
        kind = r.choice(pool + ["pesel"] if r.random() < 0.08 else pool)
        return getattr(self, f"_id_{kind}")(), kind

    def _id_ssn(self) -> str:
        area = self.r.choice([a for a in range(1, 900) if a != 666])
        group, serial = self.r.randint(1, 99), self.r.randint(1, 9999)
        sep = self.r.choice(["-", "-", " ", ""])
        return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"

    def _id_steuer(self) -> str:
        r = self.r
        while True:
            pool = r.sample(range(10), 9)
            pool.append(r.choice(pool))
            r.shuffle(pool)
            if pool[0] != 0:
                break
        product = 10
        for d in pool:
            total = (d + product) % 10 or 10
            product = total * 2 % 11
        check = (11 - product) % 10
        s = "".join(map(str, pool)) + str(check)
        return r.choice([s, f"{s[:2]} {s[2:5]} {s[5:8]} {s[8:]}", f"{s[:2]}/{s[2:5]}/{s[5:8]}/{s[8:]}"])

    def _id_svnr(self) -> str:
        r = self.r
        while True:
            serial = f"{r.randint(100, 999)}"
            birth = f"{r.randint(1, 28):02d}{r.randint(1, 12):02d}{r.randint(40, 99):02d}"
            digits = serial + "0" + birth
            check = sum(int(d) * w for d, w in zip(digits, [3, 7, 9, 0, 5, 8, 4, 2, 1, 6], strict=True)) % 11
            if check < 10:
                return r.choice([f"{serial}{check} {birth}", f"{serial}{check}{birth}"])

    def _id_ahv(self) -> str:
        body = "756" + self.digits(9)
        total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
        n = body + str((10 - total % 10) % 10)
        return f"{n[:3]}.{n[3:7]}.{n[7:11]}.{n[11:]}"

    def _id_nir(self) -> str:
        r = self.r
        body = (f"{r.choice('12')}{r.randint(50, 99):02d}{r.randint(1, 12):02d}{r.randint(1, 95):02d}"
                f"{r.randint(1, 990):03d}{r.randint(1, 999):03d}")
        key = 97 - int(body) % 97
        if r.random() < 0.5:
            return f"{body}{key:02d}"
        return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:]} {key:02d}"

    def _id_be(self) -> str:
        r = self.r
        body = f"{r.randint(50, 99):02d}{r.randint(1, 12):02d}{r.randint(1, 28):02d}{r.randint(1, 997):03d}"
        check = 97 - int(body) % 97
        return f"{body[:2]}.{body[2:4]}.{body[4:6]}-{body[6:]}.{check:02d}"

    def _id_dni(self) -> str:
        n = self.r.randint(10_000_000, 99_999_999)
        letter = "TRWAGMYFPDXBNJZSQVHLCKE"[n % 23]
        return self.r.choice([f"{n}{letter}", f"{n}-{letter}", f"{n} {letter}"])

    def _id_nie(self) -> str:
        prefix = self.r.choice("XYZ")
        n = self.r.randint(1_000_000, 9_999_999)
        letter = "TRWAGMYFPDXBNJZSQVHLCKE"[int(f"{'XYZ'.index(prefix)}{n}") % 23]
        return self.r.choice([f"{prefix}{n}{letter}", f"{prefix}-{n}-{letter}"])

    def _id_cf(self) -> str:
        r = self.r
        cons = "BCDFGHLMNPRSTVZ"
        body = ("".join(r.choice(cons) for _ in range(6)) + f"{r.randint(50, 99):02d}" + r.choice("ABCDEHLMPRST")
                + f"{r.choice([r.randint(1, 28), r.randint(41, 68)]):02d}" + r.choice("ABCDEFGHLMZ")
                + f"{r.randint(1, 999):03d}")
        odd = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
        total = 0
        for i, c in enumerate(body):
            v = int(c) if c.isdigit() else ord(c) - 65
            total += odd[v] if i % 2 == 0 else v
        return body + chr(65 + total % 26)

    def _id_bsn(self) -> str:
        while True:
            d = self.digits(8)
            if d[0] == "0":
                continue
            s = sum(int(c) * (9 - i) for i, c in enumerate(d)) % 11
            if s < 10:
                n = d + str(s)
                return self.r.choice([n, f"{n[:4]}.{n[4:6]}.{n[6:]}"])

    def _id_nif(self) -> str:
        d = self.r.choice("12356") + self.digits(7)
        check = 11 - sum(int(c) * (9 - i) for i, c in enumerate(d)) % 11
        n = d + str(0 if check >= 10 else check)
        return self.r.choice([n, f"{n[:3]} {n[3:6]} {n[6:]}"])

    def _id_nino(self) -> str:
        r = self.r
        first = r.choice("ABCEGHJKLMNOPRSTWXYZ")
        second = r.choice("ABCEGHJKLMNPRSTWXYZ")
        if first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
            second = "A"
        n = self.digits(6)
        suffix = r.choice("ABCD")
        return r.choice([f"{first}{second}{n}{suffix}", f"{first}{second} {n[:2]} {n[2:4]} {n[4:]} {suffix}"])

    def _id_pesel(self) -> str:
        r = self.r
        body = f"{r.randint(50, 99):02d}{r.randint(1, 12):02d}{r.randint(1, 28):02d}" + self.digits(4)
        check = (10 - sum(int(c) * w for c, w in zip(body, [1, 3, 7, 9, 1, 3, 7, 9, 1, 3], strict=True)) % 10) % 10
        return body + str(check)

    # --- network
    def ipv4(self) -> str:
        r = self.r
        while True:
            a = r.randint(1, 223)
            b = r.randint(0, 255)
            if a in (10, 127, 0, 100, 169, 172, 192, 198, 203):  # private, shared, link-local, documentation
                continue
            return f"{a}.{b}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def ipv6(self) -> str:
        r = self.r
        prefix = r.choice(["2a02:810d", "2001:16b8", "2a01:cb19", "2600:1700", "2a0c:5a80", "2003:e6",
                           "2a01:e0a", "2806:2f0"])
        free = 8 - (prefix.count(":") + 1)  # groups left after the prefix
        if r.random() < 0.4:  # written out in full
            value = prefix + ":" + ":".join(f"{r.randint(1, 0xffff):x}" for _ in range(free))
        else:  # zeros compressed: "::" stands for at least one group
            value = prefix + "::" + ":".join(f"{r.randint(1, 0xffff):x}" for _ in range(r.randint(1, free - 1)))
        return value.upper() if r.random() < 0.15 else value

    def ip(self) -> str:
        return self.ipv6() if self.r.random() < 0.35 else self.ipv4()

    def url(self, p) -> list[tuple[str, str | None]]:
        """A URL in pieces: the user names, passwords, tokens and e-mails in it are URL_CREDENTIAL, the scheme, host
        and path around them are not (the span is the credential, nothing around it)."""
        r = self.r
        cred = "URL_CREDENTIAL"
        given, family = (re.sub(r"[^a-z]", "", ascii_fold(x).lower()) for x in p[:2])
        user = given + r.choice(["", str(r.randint(1, 99)), "." + family[:4]])
        host = r.choice(["portal.nordlicht-versand.de", "app.brightpath.io", "mon-espace.verdeluz.es",
                         "files.kastell-moebel.de", "cloud.maison-clement.fr", "support.ciclomundo.com"])
        token = self.alnum(r.choice([24, 32, 40]), string.ascii_letters + string.digits + "-_")
        return r.choice([
            [(f"https://{host}/account/reset?token=", None), (token, cred)],
            [("https://", None), (user, cred), (":", None), (self.alnum(10), cred), (f"@{host}/webdav/", None)],
            [(f"https://{host}/u/", None), (user, cred), ("/settings", None)],
            [(f"https://{host}/login?user=", None), (user, cred), ("&session=", None), (token, cred)],
            [("ftp://", None), (user, cred), (":", None), (self.alnum(8), cred), (f"@{host}/export", None)],
            [(f"https://{host}/share/", None), (token, cred), ("?email=", None), (f"{user}%40gmail.com", cred)],
            [(f"https://{host}/api/v2/orders?access_token=", None), (token, cred)],
        ])

    def secret(self) -> str:
        r = self.r
        kind = r.choice(["aws", "github", "stripe", "slack", "google", "openai", "jwt", "gitlab", "hex", "password"])
        if kind == "aws":
            return "AKIA" + self.alnum(16, string.ascii_uppercase + "234567")
        if kind == "github":
            return "ghp_" + self.alnum(36)
        if kind == "stripe":
            return r.choice(["sk_live_", "rk_live_"]) + self.alnum(24)
        if kind == "slack":
            return f"xoxb-{self.digits(11)}-{self.digits(12)}-{self.alnum(24)}"
        if kind == "google":
            return "AIza" + self.alnum(35, string.ascii_letters + string.digits + "-_")
        if kind == "openai":
            return "sk-proj-" + self.alnum(48, string.ascii_letters + string.digits + "-_")
        if kind == "gitlab":
            return "glpat-" + self.alnum(20, string.ascii_letters + string.digits + "-_")
        if kind == "hex":
            return self.alnum(r.choice([32, 40, 64]), "0123456789abcdef")
        if kind == "password":
            return r.choice(["Sommer", "Kirsche", "Soleil", "Girasol", "Tulpe", "Marea"]) + r.choice("!#$%&") + \
                self.digits(r.randint(2, 4)) + r.choice(["", "x", "Q"])
        return self.jwt()

    def jwt(self) -> str:
        def b64(obj) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

        header = b64({"alg": self.r.choice(["HS256", "RS256"]), "typ": "JWT"})
        payload = b64({"sub": self.digits(8), "iat": 1_760_000_000 + self.r.randint(0, 9_000_000),
                       "scope": self.r.choice(["orders:read", "profile", "admin"])})
        return f"{header}.{payload}.{self.alnum(43, string.ascii_letters + string.digits + '-_')}"

    # --- address: the street line (street, number, unit); postcode and town follow unlabelled
    def address(self, lang: str) -> tuple[str, str]:
        r = self.r
        n = r.randint(1, 240)
        if lang == "de":
            street = r.choice(["Lindenallee", "Am Mühlbach", "Hölderlinstraße", "Kastanienweg", "Untere Torgasse",
                               "Bgm.-Reuter-Str.", "An der Alten Ziegelei"])
            line = f"{street} {n}{r.choice(['', '', 'a', 'b', ' c'])}"
            town = r.choice(["70173 Stuttgart", "04109 Leipzig", "24103 Kiel", "79098 Freiburg im Breisgau"])
        elif lang == "fr":
            street = r.choice(["rue des Glycines", "avenue Jean-Jaurès", "impasse du Moulin", "bd Voltaire",
                               "allée des Tilleuls", "chemin de la Croix-Rousse"])
            line = f"{n}{r.choice(['', '', ' bis', ' ter'])} {street}"
            if r.random() < 0.3:
                line += f", apt {r.randint(1, 60)}"
            town = r.choice(["69004 Lyon", "33000 Bordeaux", "75011 Paris", "1000 Bruxelles", "44000 Nantes"])
        elif lang == "es":
            street = r.choice(["Calle de la Princesa", "Avda. Blasco Ibáñez", "C/ Sant Pere Més Alt",
                               "Paseo de Zorrilla", "Calle Larios"])
            line = f"{street} {n}{r.choice(['', ', 3º B', ', 2º izq.', ', bajo', ', 5-1'])}"
            town = r.choice(["28015 Madrid", "46010 València", "08003 Barcelona", "47006 Valladolid"])
        elif lang == "it":
            line = f"{r.choice(['Via Garibaldi', 'Corso Vittorio Emanuele II', 'Viale dei Mille'])} {n}"
            town = r.choice(["20121 Milano", "50123 Firenze"])
        elif lang == "nl":
            line = f"{r.choice(['Kerkstraat', 'Prinsengracht', 'Oude Delft', 'Burgemeester de Withstraat'])} {n}"
            line += r.choice(["", "-II", " A", "hs"])
            town = r.choice(["1017 GD Amsterdam", "2611 HB Delft"])
        elif lang == "pt":
            line = f"{r.choice(['Rua das Flores', 'Avenida da Liberdade', 'Travessa do Carmo'])}, {n}"
            line += r.choice(["", ", 2.º Esq.", ", 1.º Dto."])
            town = r.choice(["1250-096 Lisboa", "4050-262 Porto"])
        else:
            street = r.choice(["Maple Ridge Dr", "Pembroke Road", "Harbour View Lane", "W 43rd St",
                               "Chestnut Avenue", "Old Mill Close"])
            line = f"{n}{r.randint(0, 9) if r.random() < 0.5 else ''} {street}"
            line += r.choice(["", "", ", Apt 4B", " #210", ", Flat 3", ", Suite 1100"])
            town = r.choice(["Portland, OR 97205", "Leeds LS6 2AB", "Dublin D04 X2P3", "Austin, TX 78701",
                             "Cardiff CF10 1EP"])
        return line, town

    # --- dates
    MONTHS = {
        "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December"],
        "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
               "November", "Dezember"],
        "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
               "novembre", "décembre"],
        "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
               "noviembre", "diciembre"],
        "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
               "ottobre", "novembre", "dicembre"],
        "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
               "november", "december"],
        "pt": ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
               "novembro", "dezembro"],
    }

    def date(self, lang: str, years: tuple[int, int]) -> str:
        r = self.r
        y, m, d = r.randint(*years), r.randint(1, 12), r.randint(1, 28)
        month = self.MONTHS[lang][m - 1]
        numeric = {"en": [f"{m:02d}/{d:02d}/{y}", f"{d:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{d:02d}"],
                   "de": [f"{d:02d}.{m:02d}.{y}", f"{d}.{m}.{y}"], "nl": [f"{d:02d}-{m:02d}-{y}"]}
        words = {"en": [f"{month} {d}, {y}", f"{d} {month} {y}", f"{month} {d}{_ordinal(d)} {y}"],
                 "de": [f"{d}. {month} {y}"], "fr": [f"{d} {month} {y}"], "es": [f"{d} de {month} de {y}"],
                 "it": [f"{d} {month} {y}"], "nl": [f"{d} {month} {y}"], "pt": [f"{d} de {month} de {y}"]}
        options = numeric.get(lang, [f"{d:02d}/{m:02d}/{y}"]) + words[lang]
        if r.random() < 0.15:
            options = [f"{y}-{m:02d}-{d:02d}"]
        return r.choice(options)

    # --- hard negatives
    def order(self) -> str:
        r = self.r
        return r.choice([f"#{self.digits(7)}", f"A-{self.digits(3)}-{self.digits(5)}", f"{self.digits(10)}",
                         f"ORD-{r.randint(2024, 2026)}-{self.digits(6)}",
                         f"{self.digits(3)}-{self.digits(7)}-{self.digits(7)}",
                         f"WEB{self.digits(8)}", f"CMD{self.digits(9)}"])

    def sku(self) -> str:
        r = self.r
        return r.choice([f"{self.alnum(2, string.ascii_uppercase)}-{self.digits(2)}-"
                         f"{r.choice(['BLK', 'WHT', 'RED', 'NVY'])}-{r.choice(['S', 'M', 'L', 'XL'])}",
                         f"SKU{self.digits(6)}", f"{self.digits(4)}.{self.digits(3)}.{self.digits(2)}",
                         self.alnum(3, string.ascii_uppercase) + self.digits(5) + self.alnum(1, string.ascii_uppercase),
                         f"{self.digits(2)}-{self.digits(4)}-{self.alnum(2, string.ascii_uppercase)}"])

    def tracking(self) -> str:
        r = self.r
        return r.choice([f"1Z{self.alnum(6, string.ascii_uppercase + string.digits)}{self.digits(10)}",
                         f"00340434{self.digits(12)}", f"JJD{self.digits(18)}", f"9400{self.digits(18)}",
                         f"{self.alnum(2, string.ascii_uppercase)}{self.digits(9)}{r.choice(['DE', 'FR', 'ES', 'GB'])}",
                         f"6A{self.digits(11)}", self.digits(14), f"PK{self.digits(10)}{self.alnum(3, 'ABCDEFX')}"])

    def version(self) -> str:
        r = self.r
        return r.choice([f"v{r.randint(1, 14)}.{r.randint(0, 30)}.{r.randint(0, 9)}",
                         f"{r.randint(1, 5)}.{r.randint(0, 20)}.{r.randint(0, 99)}-rc{r.randint(1, 4)}",
                         f"10.0.{r.randint(17000, 26000)}.{r.randint(100, 5000)}",
                         f"{r.randint(2, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(1000, 9999)}",
                         f"build {r.randint(2024, 2026)}.{r.randint(1, 12):02d}.{r.randint(1, 28):02d}",
                         f"iOS {r.randint(16, 18)}.{r.randint(0, 6)}.{r.randint(1, 3)}"])

    def price(self, lang: str) -> str:
        r = self.r
        whole, cents = r.randint(2, 2400), r.randint(0, 99)
        if lang == "en":
            return r.choice([f"${whole:,}.{cents:02d}", f"£{whole}.{cents:02d}", f"USD {whole}.{cents:02d}"])
        return r.choice([f"{whole:,}".replace(",", ".") + f",{cents:02d} €", f"€{whole},{cents:02d}",
                         f"{whole},{cents:02d} EUR", f"CHF {whole}.–"])

    def timestamp(self) -> str:
        r = self.r
        y, mo, d, h, mi, s = (r.randint(2025, 2026), r.randint(1, 12), r.randint(1, 28), r.randint(0, 23),
                              r.randint(0, 59), r.randint(0, 59))
        return r.choice([f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z", f"{y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}",
                         f"{d:02d}.{mo:02d}.{y} {h:02d}:{mi:02d}", f"{h:02d}:{mi:02d}:{s:02d}.{r.randint(0, 999):03d}",
                         f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}+01:00"])

    def gift_card(self) -> str:
        n = luhn_break("6" + self.digits(14))
        return " ".join(n[i:i + 4] for i in range(0, 16, 4))

    def invoice(self) -> str:
        return self.r.choice([f"RE-{self.digits(8)}", f"INV-{self.r.randint(2025, 2026)}-{self.digits(5)}",
                              f"F{self.digits(9)}", f"FAC/{self.digits(4)}/{self.digits(3)}"])

    def ticket(self) -> str:
        return self.r.choice([f"#{self.digits(6)}", f"TCK-{self.digits(7)}", f"CS-{self.digits(5)}",
                              f"[{self.alnum(3, string.ascii_uppercase)}-{self.digits(4)}]"])


def _ordinal(d: int) -> str:
    return "th" if 10 < d < 14 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")


def _es_ccc(digits: str) -> str:
    weights = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
    d = 11 - sum(int(c) * w for c, w in zip(digits, weights, strict=True)) % 11
    return str({11: 0, 10: 1}.get(d, d))


# --- phrasing per language: {v} is the value; other slots are labelled where they are filled -----------------
ID_NAMES = {
    "ssn": {"en": ["SSN", "social security number", "Social Security #"]},
    "nino": {"en": ["National Insurance number", "NI number", "NINO"]},
    "steuer": {"de": ["Steuer-ID", "steuerliche Identifikationsnummer", "Steuer-IdNr."]},
    "svnr": {"de": ["Sozialversicherungsnummer", "SV-Nummer"]},
    "ahv": {"de": ["AHV-Nummer", "AHV-Nr."], "fr": ["numéro AVS", "n° AVS"]},
    "nir": {"fr": ["numéro de sécurité sociale", "n° de sécu", "NIR"]},
    "be": {"fr": ["numéro de registre national", "n° national"], "nl": ["rijksregisternummer"]},
    "dni": {"es": ["DNI", "número de DNI", "documento de identidad"]},
    "nie": {"es": ["NIE", "número de extranjero (NIE)"]},
    "cf": {"it": ["codice fiscale", "C.F."]},
    "bsn": {"nl": ["BSN", "burgerservicenummer"]},
    "nif": {"pt": ["NIF", "número de contribuinte"]},
    "pesel": {"en": ["PESEL number"], "de": ["PESEL-Nummer"], "fr": ["numéro PESEL"], "es": ["número PESEL"],
              "it": ["numero PESEL"], "nl": ["PESEL-nummer"], "pt": ["número PESEL"]},
}

TEXT: dict[str, dict[str, list[str]]] = {
    "en": {
        "hello": ["Hello,", "Hi there,", "Good morning,", "Hey support team,", "To whom it may concern,", "Hi,"],
        "hello_name": ["Hi {name},", "Dear {title} {family},", "Hello {given},", "Good afternoon {given},"],
        "open": ["I ordered the {product} (order {order}) on {date} and it still hasn't shown up.",
                 "My order {order} was charged {price} but the invoice {invoice} says something else.",
                 "The parcel with tracking number {tracking} has been stuck in transit for a week.",
                 "Since updating the app to {version} I cannot log in any more.",
                 "I'm writing about ticket {ticket}, which was closed without an answer."],
        "email": ["You can reach me at {v} any time.", "Please use {v} for everything from now on.",
                  "my email is {v} (the old one is closed)", "Send the confirmation to {v}, please."],
        "phone": ["My mobile is {v}.", "Call me back on {v} after 5pm.", "phone: {v}", "or text me at {v}"],
        "card": ["The payment went through on my card {v} twice.", "card number {v}, exp 09/28",
                 "Please stop charging {v}."],
        "iban": ["Please refund it to my account, IBAN {v}.", "IBAN: {v}", "the direct debit from {v} bounced"],
        "natid": ["My {idname} is {v}, as requested.", "{idname}: {v}", "for the tax form, my {idname} is {v}"],
        "ip": ["The failed logins came from {v}, which is not me.", "my router's public address is {v}",
               "your system blocked {v} for some reason"],
        "url": ["The reset link {v} says it has expired.", "I shared the folder here: {v}",
                "clicking {v} gives me a 403"],
        "secret": ["Our integration uses the key {v} and it returns 401.", "api_key={v}",
                   "I accidentally pasted my token {v} in the last ticket, can you delete it?",
                   "the password I set was {v}"],
        "address": ["Please ship it to {v}, {town} instead.", "New address: {v}, {town}",
                    "I moved to {v} ({town}) last month."],
        "dob": ["My date of birth is {v}.", "DOB: {v}", "I was born on {v}, if you need it for verification."],
        "intro": ["My name is {name} and I have been a customer for years.", "this is {name} again.",
                  "I'm {name}, the account holder."],
        "neg": ["The {product} shows firmware {version}.", "Tracking says {tracking}, last scan {timestamp}.",
                "I paid {price} for item {sku}.", "The gift card {gift_card} was rejected at checkout.",
                "It happened at {timestamp} according to the app.", "I bought it at {company} in the city centre.",
                "Is the {product} covered by the warranty? I bought it on {date}."],
        "filler": ["I have tried restarting everything twice and the problem is still there.",
                   "Honestly this is the third time I have had to write to you about the same thing.",
                   "Could you please look into it and let me know what the next steps are?",
                   "The delivery driver apparently left a note but there was nothing in the letterbox.",
                   "I would appreciate a quick answer because I need this sorted before the weekend.",
                   "Everything else about the service has been fine so far.",
                   "I also checked the FAQ on your website but it did not cover this case."],
        "bye": ["Thanks,\n{name}", "Best regards,\n{name}", "Cheers, {given}", "Kind regards\n\n{name}",
                "-- \n{name}"],
        "agent_body": ["Thanks for getting in touch. I have checked order {order} and a replacement is on its way.",
                       "I'm sorry for the trouble. Your refund of {price} has been approved under {invoice}.",
                       "Our courier confirms the parcel {tracking} will be delivered on {date}.",
                       "I've escalated ticket {ticket} to our technical team; version {version} has a known fix."],
        "agent_bye": ["Best wishes,\n{agent}\n{shop} Customer Care", "Kind regards, {agent} ({shop} support)"],
    },
    "de": {
        "hello": ["Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,", "Moin,", "Hallo zusammen,"],
        "hello_name": ["Hallo {given},", "Liebe/r {given} {family},", "Guten Tag {title} {family},"],
        "open": ["Ich habe am {date} den {product} bestellt (Bestellnummer {order}), aber nichts ist angekommen.",
                 "Mir wurden für Auftrag {order} {price} abgebucht, laut Rechnung {invoice} aber weniger.",
                 "Die Sendung {tracking} hängt seit Tagen im Paketzentrum fest.",
                 "Seit dem Update auf {version} stürzt die App ständig ab.",
                 "Es geht um mein Ticket {ticket}, auf das ich keine Antwort bekommen habe."],
        "email": ["Meine E-Mail-Adresse lautet {v}.", "Bitte schreiben Sie mir an {v}.", "E-Mail: {v}",
                  "erreichbar bin ich unter {v}"],
        "phone": ["Meine Handynummer ist {v}.", "Rufen Sie mich gern unter {v} zurück.", "Tel.: {v}",
                  "tagsüber unter {v}"],
        "card": ["Die Zahlung lief über meine Kreditkarte {v}.", "Kartennummer {v}, gültig bis 11/27",
                 "Bitte belasten Sie die Karte {v} nicht mehr."],
        "iban": ["Bitte erstatten Sie den Betrag auf mein Konto, IBAN {v}.", "IBAN: {v}",
                 "Die Lastschrift von {v} ist zurückgegangen."],
        "natid": ["Meine {idname} lautet {v}.", "{idname}: {v}", "anbei meine {idname} {v}"],
        "ip": ["Die Anmeldeversuche kamen von {v}, das war nicht ich.", "Meine IP-Adresse ist {v}.",
               "Ihr System hat {v} gesperrt."],
        "url": ["Der Link {v} funktioniert leider nicht.", "Hier der Freigabelink: {v}",
                "bei {v} kommt nur eine Fehlermeldung"],
        "secret": ["Unser API-Schlüssel {v} wird abgelehnt.", "token: {v}",
                   "Ich habe aus Versehen mein Passwort {v} gesendet, bitte löschen.", "apikey={v}"],
        "address": ["Bitte liefern Sie an {v}, {town}.", "Neue Anschrift: {v}, {town}",
                    "Ich wohne jetzt in der {v} in {town}."],
        "dob": ["Mein Geburtsdatum ist der {v}.", "Geburtsdatum: {v}", "geboren am {v}", "geb. {v}"],
        "intro": ["Mein Name ist {name}, ich bin seit Jahren Kundin.", "hier schreibt {name}.",
                  "Ich heiße {name} und bin Inhaber des Kontos."],
        "neg": ["Auf dem {product} läuft Firmware {version}.", "Laut Sendungsverfolgung {tracking}, Stand {timestamp}.",
                "Ich habe {price} für Artikel {sku} bezahlt.", "Der Gutschein {gift_card} wurde nicht akzeptiert.",
                "Das war um {timestamp} laut Protokoll.", "Gekauft habe ich es bei {company}.",
                "Gilt die Garantie noch für den {product}? Kaufdatum {date}."],
        "filler": ["Ich habe das Gerät schon mehrfach neu gestartet, leider ohne Erfolg.",
                   "Das ist jetzt schon das dritte Mal, dass ich mich deswegen melde.",
                   "Könnten Sie sich das bitte ansehen und mir sagen, wie es weitergeht?",
                   "Der Zusteller hat angeblich eine Karte hinterlassen, im Briefkasten war aber nichts.",
                   "Ich wäre für eine schnelle Antwort dankbar, da ich das Gerät dringend brauche.",
                   "Ansonsten bin ich mit Ihrem Service eigentlich sehr zufrieden."],
        "bye": ["Viele Grüße\n{name}", "Mit freundlichen Grüßen\n\n{name}", "LG {given}", "Beste Grüße, {name}"],
        "agent_body": ["vielen Dank für Ihre Nachricht. Ihre Bestellung {order} wird heute neu versendet.",
                       "Die Erstattung über {price} wurde unter {invoice} veranlasst.",
                       "Laut DHL wird die Sendung {tracking} am {date} zugestellt.",
                       "Ich habe Ticket {ticket} an die Technik weitergegeben; in Version {version} ist das behoben."],
        "agent_bye": ["Freundliche Grüße\n{agent}\nKundenservice {shop}", "Viele Grüße, {agent} ({shop})"],
    },
    "fr": {
        "hello": ["Bonjour,", "Madame, Monsieur,", "Bonsoir,", "Salut,", "Bonjour à l'équipe,"],
        "hello_name": ["Bonjour {given},", "Bonjour {title} {family},", "Chère cliente, cher client {family},"],
        "open": ["J'ai commandé le {product} le {date} (commande {order}) et je n'ai toujours rien reçu.",
                 "On m'a débité {price} pour la commande {order}, alors que la facture {invoice} indique moins.",
                 "Le colis {tracking} est bloqué au centre de tri depuis une semaine.",
                 "Depuis la mise à jour {version}, l'application plante au démarrage.",
                 "Je reviens vers vous au sujet du ticket {ticket}, resté sans réponse."],
        "email": ["Mon adresse e-mail est {v}.", "Merci de m'écrire à {v}.", "courriel : {v}",
                  "vous pouvez me joindre sur {v}"],
        "phone": ["Mon numéro de portable est le {v}.", "Vous pouvez me rappeler au {v}.", "Tél : {v}",
                  "joignable au {v} en journée"],
        "card": ["Le paiement a été fait avec ma carte {v}.", "numéro de carte {v}, expire 04/29",
                 "Merci de ne plus débiter la carte {v}."],
        "iban": ["Merci de rembourser sur mon compte, IBAN {v}.", "IBAN : {v}", "le prélèvement sur {v} a été rejeté"],
        "natid": ["Mon {idname} est le {v}.", "{idname} : {v}", "voici mon {idname} {v}"],
        "ip": ["Les connexions suspectes venaient de {v}, ce n'était pas moi.", "mon adresse IP est {v}",
               "votre système a bloqué {v}"],
        "url": ["Le lien {v} ne fonctionne plus.", "voici le lien de partage : {v}", "en ouvrant {v} j'ai une erreur"],
        "secret": ["Notre clé d'API {v} est refusée.", "token={v}",
                   "J'ai envoyé par erreur mon mot de passe {v}, pouvez-vous l'effacer ?", "clé secrète : {v}"],
        "address": ["Merci de livrer au {v}, {town}.", "Nouvelle adresse : {v}, {town}",
                    "J'habite désormais {v}, {town}."],
        "dob": ["Ma date de naissance est le {v}.", "né le {v}", "née le {v}", "date de naissance : {v}"],
        "intro": ["Je m'appelle {name} et je suis cliente depuis longtemps.", "c'est {name} à nouveau.",
                  "Je suis {name}, titulaire du contrat."],
        "neg": ["Le {product} affiche la version {version}.", "Suivi {tracking}, dernier scan le {timestamp}.",
                "J'ai payé {price} pour l'article {sku}.", "La carte cadeau {gift_card} a été refusée.",
                "C'était à {timestamp} d'après l'application.", "Je l'ai acheté chez {company}.",
                "Le {product} est-il encore sous garantie ? Acheté le {date}."],
        "filler": ["J'ai déjà redémarré l'appareil plusieurs fois, sans résultat.",
                   "C'est la troisième fois que je vous écris pour le même problème.",
                   "Pourriez-vous regarder et me dire quelles sont les prochaines étapes ?",
                   "Le livreur aurait laissé un avis de passage, mais il n'y avait rien dans la boîte aux lettres.",
                   "Je vous remercie d'avance pour votre retour rapide.",
                   "Pour le reste, je suis plutôt satisfaite de votre service."],
        "bye": ["Cordialement,\n{name}", "Bien à vous,\n{name}", "Merci d'avance, {given}", "Bonne journée\n{name}"],
        "agent_body": ["Merci pour votre message. Votre commande {order} a été réexpédiée aujourd'hui.",
                       "Le remboursement de {price} a été validé (facture {invoice}).",
                       "Le transporteur confirme une livraison du colis {tracking} le {date}.",
                       "J'ai transmis le ticket {ticket} à l'équipe technique ; la version {version} corrige cela."],
        "agent_bye": ["Bien cordialement,\n{agent}\nService client {shop}", "Cordialement, {agent} – {shop}"],
    },
    "es": {
        "hello": ["Hola,", "Buenos días,", "Buenas tardes,", "Estimados señores:", "Hola equipo,"],
        "hello_name": ["Hola {given},", "Estimado/a {title} {family}:", "Buenas {given},"],
        "open": ["Pedí el {product} el {date} (pedido {order}) y todavía no ha llegado.",
                 "Me cobraron {price} por el pedido {order}, pero la factura {invoice} dice otra cosa.",
                 "El envío {tracking} lleva una semana parado en el centro logístico.",
                 "Desde que actualicé a la versión {version} la app se cierra sola.",
                 "Escribo por la incidencia {ticket}, que se cerró sin respuesta."],
        "email": ["Mi correo es {v}.", "Por favor, escríbanme a {v}.", "email: {v}", "me pueden contactar en {v}"],
        "phone": ["Mi móvil es el {v}.", "Pueden llamarme al {v} por la tarde.", "Tlf: {v}", "o al {v}"],
        "card": ["El cargo se hizo en mi tarjeta {v}.", "número de tarjeta {v}, caduca 02/28",
                 "No vuelvan a cargar la tarjeta {v}, por favor."],
        "iban": ["Por favor, hagan la devolución a mi cuenta IBAN {v}.", "IBAN: {v}", "el recibo domiciliado en {v}"],
        "natid": ["Mi {idname} es {v}.", "{idname}: {v}", "les paso mi {idname}, {v}"],
        "ip": ["Los accesos raros venían de {v}, no era yo.", "mi IP pública es {v}", "su sistema bloqueó la IP {v}"],
        "url": ["El enlace {v} ya no funciona.", "aquí tienen la carpeta: {v}", "al abrir {v} sale un error"],
        "secret": ["Nuestra clave de API {v} da error 401.", "access_token={v}",
                   "Les mandé sin querer mi contraseña {v}, ¿pueden borrarla?", "secret: {v}"],
        "address": ["Envíenlo a {v}, {town}, por favor.", "Nueva dirección: {v}, {town}",
                    "Ahora vivo en {v} ({town})."],
        "dob": ["Mi fecha de nacimiento es el {v}.", "fecha de nacimiento: {v}", "nací el {v}", "F. nac.: {v}"],
        "intro": ["Me llamo {name} y soy cliente desde hace años.", "soy {name} otra vez.",
                  "Mi nombre es {name}, titular de la cuenta."],
        "neg": ["El {product} tiene el firmware {version}.", "Seguimiento {tracking}, último escaneo {timestamp}.",
                "Pagué {price} por el artículo {sku}.", "La tarjeta regalo {gift_card} fue rechazada.",
                "Pasó a las {timestamp} según la app.", "Lo compré en {company}.",
                "¿El {product} sigue en garantía? Lo compré el {date}."],
        "filler": ["Ya he reiniciado el aparato varias veces y nada.",
                   "Es la tercera vez que les escribo por lo mismo.",
                   "¿Podrían revisarlo y decirme cuáles son los siguientes pasos?",
                   "El repartidor dice que dejó un aviso, pero en el buzón no había nada.",
                   "Les agradecería una respuesta rápida porque lo necesito para el trabajo.",
                   "Por lo demás estoy contento con el servicio."],
        "bye": ["Saludos,\n{name}", "Un saludo,\n{name}", "Gracias, {given}", "Atentamente,\n\n{name}"],
        "agent_body": ["Gracias por escribirnos. Hemos vuelto a enviar el pedido {order} hoy mismo.",
                       "Le confirmo el reembolso de {price} con la factura {invoice}.",
                       "La agencia confirma la entrega del envío {tracking} el {date}.",
                       "He pasado la incidencia {ticket} al equipo técnico; la versión {version} lo soluciona."],
        "agent_bye": ["Un saludo,\n{agent}\nAtención al cliente {shop}", "Saludos, {agent} ({shop})"],
    },
    "it": {
        "hello": ["Buongiorno,", "Salve,", "Gentile servizio clienti,"],
        "hello_name": ["Gentile {title} {family},", "Ciao {given},"],
        "open": ["Ho ordinato il {product} il {date} (ordine {order}) ma non è ancora arrivato.",
                 "Il pacco {tracking} è fermo da giorni."],
        "email": ["La mia email è {v}.", "scrivetemi a {v}"],
        "phone": ["Il mio cellulare è {v}.", "tel. {v}"],
        "card": ["Il pagamento è stato fatto con la carta {v}."],
        "iban": ["Vi prego di rimborsare sull'IBAN {v}."],
        "natid": ["Il mio {idname} è {v}.", "{idname}: {v}"],
        "ip": ["Gli accessi venivano da {v}."],
        "url": ["Il link {v} non funziona."],
        "secret": ["La nostra chiave API {v} non funziona."],
        "address": ["Spedite a {v}, {town}."],
        "dob": ["Sono nata il {v}.", "data di nascita: {v}"],
        "intro": ["Mi chiamo {name}."],
        "neg": ["Ho pagato {price} per l'articolo {sku}.", "Il {product} ha la versione {version}."],
        "filler": ["Ho già provato a riavviare tutto, senza risultato.",
                   "Vi sarei grata per una risposta veloce."],
        "bye": ["Cordiali saluti,\n{name}", "Grazie, {given}"],
        "agent_body": ["Grazie per il messaggio: l'ordine {order} è stato rispedito oggi."],
        "agent_bye": ["Cordiali saluti,\n{agent}\nAssistenza {shop}"],
    },
    "nl": {
        "hello": ["Goedemiddag,", "Hallo,", "Beste klantenservice,"],
        "hello_name": ["Beste {given},", "Geachte {title} {family},"],
        "open": ["Ik heb op {date} de {product} besteld (bestelling {order}) maar niets ontvangen.",
                 "Het pakket {tracking} staat al dagen stil."],
        "email": ["Mijn e-mailadres is {v}.", "mail me op {v}"],
        "phone": ["Mijn mobiele nummer is {v}.", "tel: {v}"],
        "card": ["De betaling ging via mijn creditcard {v}."],
        "iban": ["Graag terugstorten op IBAN {v}."],
        "natid": ["Mijn {idname} is {v}.", "{idname}: {v}"],
        "ip": ["De inlogpogingen kwamen van {v}."],
        "url": ["De link {v} werkt niet."],
        "secret": ["Onze API-sleutel {v} wordt geweigerd."],
        "address": ["Stuur het naar {v}, {town}."],
        "dob": ["Mijn geboortedatum is {v}.", "geboren op {v}"],
        "intro": ["Mijn naam is {name}."],
        "neg": ["Ik betaalde {price} voor artikel {sku}.", "De {product} draait versie {version}."],
        "filler": ["Ik heb alles al opnieuw opgestart, zonder resultaat.", "Ik hoor graag snel van u."],
        "bye": ["Met vriendelijke groet,\n{name}", "Groetjes, {given}"],
        "agent_body": ["Bedankt voor uw bericht; bestelling {order} is vandaag opnieuw verzonden."],
        "agent_bye": ["Met vriendelijke groet,\n{agent}\nKlantenservice {shop}"],
    },
    "pt": {
        "hello": ["Bom dia,", "Olá,", "Boa tarde,"],
        "hello_name": ["Olá {given},", "Caro {title} {family},"],
        "open": ["Encomendei o {product} no dia {date} (encomenda {order}) e ainda não chegou.",
                 "A encomenda {tracking} está parada há dias."],
        "email": ["O meu email é {v}.", "escrevam para {v}"],
        "phone": ["O meu telemóvel é o {v}.", "tlm: {v}"],
        "card": ["O pagamento foi feito com o cartão {v}."],
        "iban": ["Por favor devolvam o valor para o IBAN {v}."],
        "natid": ["O meu {idname} é {v}.", "{idname}: {v}"],
        "ip": ["Os acessos vieram de {v}."],
        "url": ["O link {v} não funciona."],
        "secret": ["A nossa chave de API {v} é recusada."],
        "address": ["Enviem para {v}, {town}."],
        "dob": ["A minha data de nascimento é {v}.", "nascido a {v}"],
        "intro": ["Chamo-me {name}."],
        "neg": ["Paguei {price} pelo artigo {sku}.", "O {product} tem a versão {version}."],
        "filler": ["Já reiniciei tudo e o problema continua.", "Agradeço uma resposta rápida."],
        "bye": ["Cumprimentos,\n{name}", "Obrigado, {given}"],
        "agent_body": ["Obrigado pela mensagem; a encomenda {order} foi reenviada hoje."],
        "agent_bye": ["Com os melhores cumprimentos,\n{agent}\nApoio ao cliente {shop}"],
    },
}
PII_KEYS = ["email", "phone", "card", "iban", "natid", "ip", "url", "secret", "address", "dob", "intro"]
PII_WEIGHTS = [8, 8, 12, 8, 16, 10, 12, 10, 10, 10, 8]  # the rarer layouts' types made up for here

HEADERS = {  # forwarded-mail header words
    "en": ("---------- Forwarded message ---------", "From", "Date", "Subject", "To"),
    "de": ("-------- Weitergeleitete Nachricht --------", "Von", "Gesendet", "Betreff", "An"),
    "fr": ("-------- Message transféré --------", "De", "Envoyé", "Objet", "À"),
    "es": ("---------- Mensaje reenviado ---------", "De", "Enviado", "Asunto", "Para"),
    "it": ("---------- Messaggio inoltrato ---------", "Da", "Inviato", "Oggetto", "A"),
    "nl": ("---------- Doorgestuurd bericht ---------", "Van", "Verzonden", "Onderwerp", "Aan"),
    "pt": ("---------- Mensagem encaminhada ---------", "De", "Enviada", "Assunto", "Para"),
}
COLUMNS = {  # table headers: name, e-mail, phone, birth date, street, IBAN, order, item
    "en": ("Name", "Email", "Phone", "Date of birth", "Street", "IBAN", "Order", "Item"),
    "de": ("Name", "E-Mail", "Telefon", "Geburtsdatum", "Straße", "IBAN", "Bestellung", "Artikel"),
    "fr": ("Nom", "Courriel", "Téléphone", "Date de naissance", "Adresse", "IBAN", "Commande", "Article"),
    "es": ("Nombre", "Correo", "Teléfono", "Fecha de nacimiento", "Dirección", "IBAN", "Pedido", "Artículo"),
    "it": ("Nome", "Email", "Telefono", "Data di nascita", "Indirizzo", "IBAN", "Ordine", "Articolo"),
    "nl": ("Naam", "E-mail", "Telefoon", "Geboortedatum", "Adres", "IBAN", "Bestelling", "Artikel"),
    "pt": ("Nome", "Email", "Telefone", "Data de nascimento", "Morada", "IBAN", "Encomenda", "Artigo"),
}
LOG_INTRO = {
    "en": "Here is what the app logged, maybe it helps:", "de": "Hier der Auszug aus dem Log:",
    "fr": "Voici l'extrait du journal :", "es": "Les pego el log por si ayuda:", "it": "Ecco il log:",
    "nl": "Hier is het logbestand:", "pt": "Segue o log:",
}
CRASH = {
    "en": "the app ({version}) crashes with this:", "de": "die App ({version}) stürzt mit diesem Fehler ab:",
    "fr": "l'application ({version}) plante avec cette erreur :", "es": "la app ({version}) falla con este error:",
    "it": "l'app ({version}) si blocca con questo errore:", "nl": "de app ({version}) crasht met deze fout:",
    "pt": "a app ({version}) falha com este erro:",
}
PHONE_REGION = {"en": ["GB", "US", "IE", "CA", "AU", "IN", "NG", "ZA"], "de": ["DE", "DE", "AT", "CH"],
                "fr": ["FR", "FR", "BE", "CH", "MA"], "es": ["ES", "ES", "MX", "AR", "CO", "CL"], "it": ["IT"],
                "nl": ["NL", "BE"], "pt": ["PT", "BR"]}


class HeldOut3:
    """Conversations built from the pieces above; every labelled span is recorded as it is written."""

    def __init__(self, seed: int = SEED):
        self.r = random.Random(seed)
        self.v = Values(self.r)

    # --- surface noise on the literal text between values (never inside a value)
    def noise(self, piece: str) -> str:
        r = self.r
        if len(piece) > 14 and r.random() < 0.12:  # a typo: two neighbouring letters swapped
            words = [m for m in re.finditer(r"[^\W\d_]{5,}", piece)]
            if words:
                w = r.choice(words)
                i = r.randint(w.start() + 1, w.end() - 2)
                piece = piece[:i] + piece[i + 1] + piece[i] + piece[i + 2:]
        if piece.endswith(": ") and r.random() < 0.15:
            piece = piece[:-1] if r.random() < 0.5 else piece[:-1] + "\t"
        elif piece.endswith(" ") and r.random() < 0.06:
            piece = piece[:-1] + r.choice(["  ", "\u00a0"])
        return piece

    def name_text(self, p, style: str | None = None) -> str:
        r = self.r
        style = style or r.choices(["plain", "upper_family", "comma", "lower", "initial"], [70, 8, 8, 6, 8])[0]
        full = Values.full(p)
        if style == "upper_family" and p[2] == "gf":
            return f"{p[0]} {p[1].upper()}"
        if style == "comma" and p[2] == "gf":
            return f"{p[1]}, {p[0]}"
        if style == "lower":
            return full.lower()
        if style == "initial" and p[2] == "gf":
            return f"{p[0][0]}. {p[1]}"
        return full

    def slot(self, name: str, lang: str, ctx: dict) -> V | str:
        v, r = self.v, self.r
        p = ctx["person"]
        makers = {
            "name": lambda: V(self.name_text(p, ctx.get("name_style")), pii="NAME"),
            "given": lambda: V(p[0] if p[2] == "gf" else Values.full(p), pii="NAME"),
            "family": lambda: V(p[1] if p[2] == "gf" else p[0], pii="NAME"),
            "agent": lambda: V(" ".join(ctx["agent"]) if r.random() < 0.7 else ctx["agent"][0], pii="NAME"),
            "title": lambda: r.choice(TITLES[lang]),
            "shop": lambda: ctx["shop"],
            "town": lambda: ctx.get("town", ""),
            "idname": lambda: ctx.get("idname", ""),
            "product": lambda: V(r.choice(PRODUCTS), neg="product"),
            "company": lambda: V(r.choice(COMPANIES), neg="company"),
            "order": lambda: V(v.order(), neg="order"),
            "sku": lambda: V(v.sku(), neg="sku"),
            "tracking": lambda: V(v.tracking(), neg="tracking"),
            "version": lambda: V(v.version(), neg="version"),
            "price": lambda: V(v.price(lang), neg="price"),
            "timestamp": lambda: V(v.timestamp(), neg="timestamp"),
            "date": lambda: V(v.date(lang, (2025, 2026)), neg="date"),
            "gift_card": lambda: V(v.gift_card(), neg="gift_card"),
            "invoice": lambda: V(v.invoice(), neg="invoice"),
            "ticket": lambda: V(v.ticket(), neg="ticket"),
        }
        return makers[name]()

    def say(self, doc: Labelled, lang: str, template: str, ctx: dict, value: V | None = None) -> Labelled:
        slots = {n: (value if n == "v" else self.slot(n, lang, ctx)) for n in SLOT.findall(template)}
        return fill(doc, template, self.noise, **slots)

    def pii_value(self, key: str, lang: str, ctx: dict) -> V:
        v, p = self.v, ctx["person"]
        if key == "email":
            return V(v.email(p), pii="EMAIL")
        if key == "phone":
            return V(v.phone(self.r.choice(PHONE_REGION[lang]) if self.r.random() < 0.7 else None), pii="PHONE")
        if key == "card":
            return V(v.card(), pii="CARD")
        if key == "iban":
            return V(v.iban(), pii="IBAN")
        if key == "natid":
            value, kind = v.national_id(lang)
            names = ID_NAMES[kind]
            ctx["idname"] = self.r.choice(names.get(lang) or next(iter(names.values())))
            return V(value, pii="NATIONAL_ID")
        if key == "ip":
            return V(v.ip(), pii="IP")
        if key == "url":
            parts = v.url(p)
            return V("".join(piece for piece, _ in parts), parts=parts)
        if key == "secret":
            return V(v.secret(), pii="SECRET")
        if key == "address":
            line, ctx["town"] = v.address(lang)
            return V(line, pii="ADDRESS")
        if key == "dob":
            return V(v.date(lang, (1941, 2006)), pii="DOB")
        raise KeyError(key)

    def pii_sentence(self, doc: Labelled, lang: str, key: str, ctx: dict) -> None:
        t = TEXT[lang]
        if key == "intro":
            self.say(doc, lang, self.r.choice(t["intro"]), ctx)
            return
        value = self.pii_value(key, lang, ctx)
        self.say(doc, lang, self.r.choice(t[key]), ctx, value)

    def sep(self) -> str:
        return self.r.choice([" ", " ", "\n", "\n\n", "  "])

    # --- layouts ---------------------------------------------------------------------------------------------
    def plain(self, lang: str, ctx: dict, n_pii: int | None = None) -> Labelled:
        r, t = self.r, TEXT[lang]
        doc = Labelled()
        self.say(doc, lang, r.choice(t["hello"]), ctx).add("\n\n" if r.random() < 0.6 else " ")
        n = n_pii or r.choice([1, 1, 2, 2, 3])
        keys = list(dict.fromkeys(r.choices(PII_KEYS, PII_WEIGHTS, k=4 * n)))[:n]
        self.say(doc, lang, r.choice(t["open"]), ctx).add(self.sep())
        for key in keys:
            self.pii_sentence(doc, lang, key, ctx)
            doc.add(self.sep() if doc.text[-1] in ".?!" else ". " if r.random() < 0.5 else ", ")
            if r.random() < 0.5:
                self.say(doc, lang, r.choice(t["filler"]), ctx).add(self.sep())
        if r.random() < 0.7:
            self.say(doc, lang, r.choice(t["neg"]), ctx).add(self.sep())
        self.say(doc, lang, r.choice(t["filler"]), ctx).add("\n\n")
        self.say(doc, lang, r.choice(t["bye"]), ctx)
        if r.random() < 0.35:  # a signature block under the name
            doc.add("\n")
            for key in r.sample(["phone", "email", "address"], r.randint(1, 2)):
                value = self.pii_value(key, lang, ctx)
                label = {"phone": r.choice(["Tel", "Mob.", "M:", "📞"]), "email": r.choice(["E-Mail:", "mail:", ""]),
                         "address": ""}[key]
                doc.add(f"{label} " if label else "").add(value.text, pii=value.pii)
                if key == "address":
                    doc.add(f"\n{ctx['town']}")
                doc.add("\n")
            doc.text = doc.text.rstrip("\n")
        return doc

    def agent(self, lang: str, ctx: dict) -> Labelled:
        r, t = self.r, TEXT[lang]
        doc = Labelled()
        self.say(doc, lang, r.choice(t["hello_name"]), ctx).add("\n\n")
        self.say(doc, lang, r.choice(t["agent_body"]), ctx).add(" ")
        if r.random() < 0.4:  # the first two are the product and tracking lines, which an agent may write too
            self.say(doc, lang, r.choice(t["neg"][:2]), ctx).add(" ")
        self.say(doc, lang, r.choice(t["agent_bye"]), ctx)
        return doc

    def forwarded(self, lang: str, ctx: dict) -> Labelled:
        r = self.r
        rule, frm, date, subject, to = HEADERS[lang]
        p = ctx["person"]
        doc = Labelled()
        doc.add(r.choice(["FYI, see below.\n\n", "", "Fwd from my colleague:\n\n", "siehe unten\n\n"]))
        doc.add(f"{rule}\n{frm}: ").add(self.name_text(p, "plain"), pii="NAME").add(" <")
        doc.add(self.v.email(p), pii="EMAIL").add(f">\n{date}: ").add(self.v.timestamp(), negative="timestamp")
        doc.add(f"\n{subject}: ").add(r.choice(["Re: ", "AW: ", "RE: ", "TR: ", ""]) + r.choice(
            ["order", "Bestellung", "commande", "pedido", "refund"]) + " ").add(self.v.order(), negative="order")
        doc.add(f"\n{to}: ").add(r.choice(["service@", "kundenservice@", "sav@", "soporte@"]) + "nordlicht-versand.de")
        doc.add("\n\n")
        body = self.plain(lang, ctx)
        _append(doc, body)
        return doc

    def html(self, lang: str, ctx: dict) -> Labelled:
        r, t = self.r, TEXT[lang]
        doc = Labelled()
        doc.add('<div dir="ltr"><p>')
        self.say(doc, lang, r.choice(t["hello"]), ctx).add("</p>\n<p>")
        self.say(doc, lang, r.choice(t["open"]), ctx).add("</p>\n<p>")
        self.pii_sentence(doc, lang, r.choice(["card", "iban", "dob", "natid", "phone"]), ctx)
        doc.add("</p>\n")
        if r.random() < 0.5:
            email = self.pii_value("email", lang, ctx)
            doc.add('<p><a href="mailto:').add(email.text, pii="EMAIL").add('">').add(email.text, pii="EMAIL")
            doc.add("</a></p>\n")
        else:
            iban = self.pii_value("iban", lang, ctx)
            doc.add(f"<table><tr><td>{COLUMNS[lang][5]}</td><td>").add(iban.text, pii="IBAN")
            doc.add(f"</td></tr><tr><td>{COLUMNS[lang][6]}</td><td>").add(self.v.order(), negative="order")
            doc.add("</td></tr></table>\n")
        doc.add("<p>")
        self.say(doc, lang, r.choice(t["bye"]).replace("\n", "<br>"), ctx).add("</p></div>")
        return doc

    def log(self, lang: str, ctx: dict) -> Labelled:
        r, v = self.r, self.v
        doc = Labelled()
        doc.add(LOG_INTRO[lang] + "\n\n" + r.choice(["```\n", "", "<pre>\n"]))
        opener = doc.text[-4:]
        lines = r.sample(["login", "pay", "auth", "access", "profile", "dob"], r.randint(2, 4))
        for kind in lines:
            doc.add(v.timestamp(), negative="timestamp").add(" " + r.choice(["INFO ", "WARN ", "ERROR", "DEBUG"]) + " ")
            if kind == "login":
                doc.add(f"[http-nio-8080-exec-{r.randint(1, 40)}] c.n.auth.LoginService - login failed for ")
                doc.add(v.email(ctx["person"]), pii="EMAIL").add(" from ").add(v.ip(), pii="IP")
                doc.add(" client=app/").add(v.version(), negative="version")
            elif kind == "pay":
                doc.add("payment.gateway - declined pan=").add(v.card(), pii="CARD").add(" order_id=")
                doc.add(v.order(), negative="order").add(" amount=").add(v.price(lang), negative="price")
            elif kind == "auth":
                doc.add("api.client - request GET /v2/orders headers={'Authorization': 'Bearer ")
                doc.add(v.jwt(), pii="SECRET").add("'}")
            elif kind == "access":
                doc.add("nginx - ").add(v.ip(), pii="IP").add(' "POST /checkout/confirm HTTP/1.1" 502 sku=')
                doc.add(v.sku(), negative="sku")
            elif kind == "profile":
                doc.add("profile.sync - updated customer name=\"").add(self.name_text(ctx["person"], "plain"),
                                                                        pii="NAME")
                doc.add('" phone="').add(v.phone(), pii="PHONE").add('"')
            else:
                doc.add("kyc.check - mismatch dob=").add(v.date(lang, (1941, 2006)), pii="DOB").add(" expected ")
                doc.add("format DD.MM.YYYY")
            doc.add("\n")
        doc.add({"```\n": "```", "pre>\n": "</pre>"}.get(opener, "").strip())
        doc.add("\n\n")
        self.say(doc, lang, r.choice(TEXT[lang]["bye"]), ctx)
        return doc

    def trace(self, lang: str, ctx: dict) -> Labelled:
        r, v = self.r, self.v
        doc = Labelled()
        self.say(doc, lang, r.choice(TEXT[lang]["hello"]), ctx).add(" ")
        self.say(doc, lang, CRASH[lang], ctx).add("\n\n")
        if r.random() < 0.5:
            doc.add('Traceback (most recent call last):\n  File "/usr/lib/python3.11/site-packages/nordlicht_sdk/'
                    f'client.py", line {r.randint(40, 900)}, in _request\n    resp.raise_for_status()\n'
                    "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: ")
            for piece, label in v.url(ctx["person"]):
                doc.add(piece, pii=label)
            doc.add("\n")
        else:
            doc.add("java.lang.IllegalStateException: no default address for customer ")
            doc.add(v.email(ctx["person"]), pii="EMAIL").add(" (account ").add(v.order(), negative="order")
            doc.add(")\n\tat com.kastell.checkout.AddressResolver.resolve(AddressResolver.java:"
                    f"{r.randint(20, 400)})\n\tat com.kastell.checkout.Checkout.run(Checkout.java:"
                    f"{r.randint(20, 400)})\n")
        doc.add("\n")
        self.say(doc, lang, r.choice(TEXT[lang]["secret"]), ctx, V(v.secret(), pii="SECRET"))
        doc.add("\n")
        self.say(doc, lang, r.choice(TEXT[lang]["bye"]), ctx)
        return doc

    def table(self, lang: str, ctx: dict) -> Labelled:
        r, v = self.r, self.v
        cols = COLUMNS[lang]
        picks = sorted(r.sample(range(1, 6), r.randint(2, 4)))
        header = [cols[0]] + [cols[i] for i in picks] + [cols[6], cols[7]]
        doc = Labelled()
        self.say(doc, lang, r.choice(TEXT[lang]["hello"]), ctx).add("\n\n")
        doc.add("| " + " | ".join(header) + " |\n|" + "|".join("---" for _ in header) + "|\n")
        people = [ctx["person"]] + r.sample(PEOPLE, r.randint(0, 2))
        for p in people:
            row_ctx = {**ctx, "person": p}
            doc.add("| ").add(self.name_text(p), pii="NAME")
            for i in picks:
                key = {1: "email", 2: "phone", 3: "dob", 4: "address", 5: "iban"}[i]
                value = self.pii_value(key, lang, row_ctx)
                doc.add(" | ").add(value.text, pii=value.pii)
            doc.add(" | ").add(v.order(), negative="order").add(" | ").add(v.sku(), negative="sku").add(" |\n")
        doc.add("\n")
        self.say(doc, lang, r.choice(TEXT[lang]["filler"]), ctx)
        return doc

    def json_blob(self, lang: str, ctx: dict) -> Labelled:
        r, v = self.r, self.v
        p = ctx["person"]
        doc = Labelled()
        self.say(doc, lang, r.choice(TEXT[lang]["open"]), ctx).add(" " + LOG_INTRO[lang] + "\n")
        indent = r.choice(["", "  "])
        nl = "\n" if indent else " "

        def field(key: str, value: str, pii: str | None = None, neg: str | None = None, last: bool = False):
            doc.add(f'{indent}{indent}"{key}": "').add(value, pii=pii, negative=neg).add('"' + ("" if last else ","))
            doc.add(nl)

        doc.add("{" + nl + f'{indent}"customer": {{' + nl)
        field(r.choice(["name", "fullName", "customer_name"]), self.name_text(p, "plain"), pii="NAME")
        field("email", v.email(p), pii="EMAIL")
        extra = r.sample(["phone", "dob", "iban", "ip", "address"], 2)
        for i, key in enumerate(extra):
            value = self.pii_value(key, lang, ctx)
            field({"phone": "mobile", "dob": "birthDate", "iban": "iban", "ip": "last_login_ip",
                   "address": "street"}[key], value.text, pii=value.pii, last=i == len(extra) - 1)
        doc.add(indent + "}," + nl + f'{indent}"order": {{' + nl)
        field("id", v.order(), neg="order")
        field("sku", v.sku(), neg="sku")
        field("total", v.price(lang), neg="price")
        field("created_at", v.timestamp(), neg="timestamp", last=True)
        doc.add(indent + "}" + nl + "}")
        return doc

    def transcript(self, lang: str, ctx: dict) -> Labelled:
        r, t = self.r, TEXT[lang]
        p, agent = ctx["person"], ctx["agent"]
        doc = Labelled()
        h, m = r.randint(8, 20), r.randint(0, 50)
        who_c = self.name_text(p, r.choice(["plain", "plain", "lower"]))
        style = r.choice(["[{t}] {w}: ", "{t} - {w}: ", "{w} ({t}): "])
        turns = [("c", "open"), ("a", "ask"), ("c", "pii"), ("a", "agent_body"), ("c", "pii2")]
        for who, what in turns:
            stamp = f"{h:02d}:{m:02d}" + (f":{r.randint(0, 59):02d}" if r.random() < 0.3 else "")
            m += r.randint(0, 3)
            name = V(who_c, pii="NAME") if who == "c" else V(agent[0], pii="NAME")
            fill(doc, style, None, t=V(stamp, neg="timestamp"), w=name)
            if what == "ask":
                doc.add({"en": "Can you confirm your details please?", "de": "Können Sie mir Ihre Daten bestätigen?",
                         "fr": "Pouvez-vous confirmer vos coordonnées ?", "es": "¿Me confirma sus datos?",
                         "it": "Mi conferma i suoi dati?", "nl": "Kunt u uw gegevens bevestigen?",
                         "pt": "Pode confirmar os seus dados?"}[lang])
            elif what in ("pii", "pii2"):
                self.pii_sentence(doc, lang, r.choice(["email", "phone", "dob", "address", "iban", "natid",
                                                       "card"]), ctx)
            else:
                self.say(doc, lang, r.choice(t[what]), ctx)
            doc.add("\n")
        doc.text = doc.text.rstrip("\n")
        return doc

    def sms(self, lang: str, ctx: dict) -> Labelled:
        r, v = self.r, self.v
        p = ctx["person"]
        doc = Labelled()
        given = V(p[0].lower() if r.random() < 0.6 else p[0], pii="NAME")
        template = {
            "en": ["hi its {g} again, pls call me on {ph} re order {o} thx", "hey, {g} here. new number {ph}",
                   "{g} here - still waiting on {o}!! call {ph}"],
            "de": ["hi hier ist {g}, bitte ruft mich unter {ph} an wegen {o}", "{g} hier, neue nummer {ph} lg"],
            "fr": ["slt c'est {g}, rappelez moi au {ph} pour la commande {o} svp", "{g} ici, nouveau num {ph}"],
            "es": ["hola soy {g}, llamadme al {ph} por el pedido {o} porfa", "soy {g}, mi nuevo num es {ph}"],
            "it": ["ciao sono {g}, chiamatemi al {ph} per l'ordine {o}"],
            "nl": ["hoi met {g}, bel me op {ph} over bestelling {o}"],
            "pt": ["olá é a {g}, liguem para {ph} sobre a encomenda {o}"],
        }[lang]
        fill(doc, r.choice(template), self.noise, g=given, o=V(v.order(), neg="order"),
             ph=V(v.phone(r.choice(PHONE_REGION[lang])), pii="PHONE"))
        return doc

    # --- conversations -----------------------------------------------------------------------------------------
    LAYOUTS = {"plain": 30, "forwarded": 9, "html": 8, "log": 8, "trace": 6, "table": 7, "json_blob": 7,
               "transcript": 9, "sms": 8}

    def conversation(self, i: int) -> list[dict]:
        r = self.r
        lang = r.choices(list(LANG_WEIGHTS), list(LANG_WEIGHTS.values()))[0]
        ctx = {"person": self.v.person(), "agent": r.choice(AGENTS), "shop": r.choice(SHOPS)}
        layout = r.choices(list(self.LAYOUTS), list(self.LAYOUTS.values()))[0]
        turns = [getattr(self, layout)(lang, ctx)]
        if layout not in ("transcript",) and r.random() < 0.75:
            turns.append(self.agent(lang, ctx))
            if r.random() < 0.35:
                turns.append(self.plain(lang, ctx, n_pii=1) if r.random() < 0.6 else self.sms(lang, ctx))
        rows = []
        for t, doc in enumerate(turns):
            x = r.random()
            if x < 0.06:  # shouted; only case changes that keep the length, so the spans stay exact
                doc.text = "".join(c.upper() if len(c.upper()) == 1 else c for c in doc.text)
            elif x < 0.12:
                doc.text = "".join(c.lower() if len(c.lower()) == 1 else c for c in doc.text)
            rows.append({"conversation_id": f"h3-{i:04d}", "turn": t, "lang": lang, "layout": layout,
                         **doc.to_json()})
        return rows


def _append(doc: Labelled, other: Labelled) -> None:
    offset = len(doc.text)
    doc.text += other.text
    doc.pii += [[e, s + offset, t + offset] for e, s, t in other.pii]
    doc.negatives += [[k, s + offset, t + offset] for k, s, t in other.negatives]


def held_out_3(conversations: int = 260) -> list[dict]:
    gen = HeldOut3()
    return [row for i in range(conversations) for row in gen.conversation(i)]


if __name__ == "__main__":  # a look at the corpus: sizes and label counts
    from collections import Counter

    rows = held_out_3()
    print(len(rows), "records,", len({r["conversation_id"] for r in rows}), "conversations")
    print(Counter(e for r in rows for e, _, _ in r["pii"]))
    print(Counter(k for r in rows for k, _, _ in r["negatives"]))
    print(Counter(r["lang"] for r in rows), Counter(r["layout"] for r in rows))
