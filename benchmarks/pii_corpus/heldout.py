"""A held-out labelled PII corpus, generated in memory by a generator unlike generate.py (never tuned on).

Other templates, other values and more surface variety than the committed corpus: web-form dumps, HTML
e-mails, pasted JSON and key=value logs, chat one-liners, ALL CAPS and lower-case, doubled spaces, tabs and
non-breaking spaces, unusual separators, full-width digits and zero-width characters, quoted replies, phone
numbers of regions and formats the committed corpus does not use. benchmarks/pii.py scores it; no test uses it.
Its first run before any engine change is recorded in benchmarks/results/pii.json as "held_out_first_run".
"""

from __future__ import annotations

import random
import sys
import unicodedata
from pathlib import Path

import phonenumbers

sys.path.insert(0, str(Path(__file__).parent))
from labelled import Labelled, iban_for, luhn_break, luhn_complete, random_phone  # noqa: E402

GIVEN = ["Rosalind", "Kwame", "Ines", "Wolfgang", "Solène", "Íñigo", "Priya", "Cormac", "Hedwig", "Anaïs",
         "Xavier", "Zofia", "Ramón", "Gunnar", "Beatriz", "Tomasz", "Odile", "Declan", "Friederike", "Consuelo"]
FAMILY = ["Okafor", "Brandt", "Delacroix", "Iturbe", "Sharma", "Ó Briain", "Kowalski", "Vasseur", "Haugen",
          "Peñalosa", "Stein", "Laurent", "de Vries", "Albrecht", "Quintero", "Nakamura", "Lemaire", "Ferreira"]
# company/product words that are first names too (other ones than generate.py's)
NAMEISH = ["Casper", "Oscar", "Jasper", "Hugo Boss", "Marco Polo", "Philips", "Bose", "Otto", "Ben & Jerry's",
           "Chanel", "Georgia", "Zara", "Lidl", "Tommy Hilfiger", "Lego", "Roomba"]
PHONE_REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "AT", "CH", "IE", "PT", "PL", "MX", "CO",
                 "AR", "CA", "AU", "NZ", "SG", "IN", "MA", "SN", "LU"]
HOSTS = ["mail.de", "posteo.net", "sfr.fr", "wanadoo.fr", "terra.es", "movistar.es", "btinternet.com",
         "fastmail.fm", "firma-schmidt.de", "universidad.edu.es", "example-shop.com"]
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def ascii_fold(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()


class HeldOutGen:
    def __init__(self, seed: int = 99173):
        self.r = random.Random(seed)

    def d(self, n: int) -> str:
        return "".join(self.r.choice("0123456789") for _ in range(n))

    def mangle_digits(self, value: str) -> str:
        """Surface noise on a digit string: full-width digits or zero-width joiners, sometimes."""
        x = self.r.random()
        if x < 0.06:
            return "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in value)
        if x < 0.10:
            return value.replace(" ", " \u200b") if " " in value else "\u200c".join(value[i:i + 4] for i in
                                                                                     range(0, len(value), 4))
        return value

    def email(self, g: str, f: str) -> str:
        r = self.r
        g2, f2 = ascii_fold(g).lower(), ascii_fold(f).lower().replace(" ", "").replace("'", "")
        local = r.choice([f"{g2}{f2}", f"{g2[:1]}.{f2}", f"{f2}{self.d(4)}", f"{g2}-{f2}",
                          f"{g2}+support", f"{g2}.{f2}.{self.d(2)}"])
        value = f"{local}@{r.choice(HOSTS)}"
        x = r.random()
        if x < 0.15:
            return value.upper()
        if x < 0.22:
            return value.replace("@", "\uff20") if r.random() < 0.5 else value.replace(".", "\u200b.", 1)
        if x < 0.28:  # Cyrillic look-alike letters
            return value.replace("a", "\u0430", 1).replace("o", "\u043e", 1)
        return value

    def phone(self) -> str:
        r = self.r
        region = r.choice(PHONE_REGIONS)
        num = random_phone(r, region, r.choice([phonenumbers.PhoneNumberType.MOBILE,
                                                phonenumbers.PhoneNumberType.FIXED_LINE]))
        intl = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        nat = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL)
        style = r.randrange(8)
        if style == 0:
            value = intl.replace(" ", "-")
        elif style == 1:
            value = intl.replace(" ", "")
        elif style == 2:
            value = nat
        elif style == 3:
            cc, rest = intl.split(" ", 1)
            value = f"{cc} ({rest.split(' ', 1)[0]}) {rest.split(' ', 1)[1] if ' ' in rest else ''}".strip()
        elif style == 4:
            value = intl.replace(" ", "\u00a0")
        elif style == 5:
            value = "00" + intl[1:].replace(" ", "/", 1)
        elif style == 6:
            value = nat.replace(" ", ".")
        else:
            value = intl
        return self.mangle_digits(value)

    def card(self) -> str:
        r = self.r
        prefix, n = r.choice([("4", 16), ("4", 16), ("5", 16), ("22", 16), ("37", 15), ("6011", 16),
                              ("35", 16), ("4", 19), ("67", 18), ("62", 17)])
        if prefix == "5":
            prefix = r.choice(["51", "52", "53", "54", "55"])
        num = luhn_complete(prefix + self.d(n - len(prefix) - 1))
        style = r.randrange(6)
        if style == 0:
            value = num
        elif style == 1:
            value = "  ".join(num[i:i + 4] for i in range(0, n, 4))
        elif style == 2:
            value = ".".join(num[i:i + 4] for i in range(0, n, 4))
        elif style == 3:
            value = "-".join(num[i:i + 4] for i in range(0, n, 4))
        else:
            value = " ".join(num[i:i + 4] for i in range(0, n, 4))
        return self.mangle_digits(value)

    def iban(self) -> str:
        r = self.r
        country, bban = r.choice([("DE", self.d(18)), ("ES", self.d(20)), ("FR", self.d(23)), ("PT", self.d(21)),
                                  ("LU", self.d(16)), ("BE", self.d(12)), ("GB", "BARC" + self.d(14)),
                                  ("NL", "INGB" + self.d(10)), ("IT", "K" + self.d(22)), ("SE", self.d(20))])
        value = iban_for(country, bban)
        style = r.randrange(4)
        if style == 0:
            return value.lower()
        if style == 1:
            return " ".join(value[i:i + 4] for i in range(0, len(value), 4))
        if style == 2:
            return "-".join(value[i:i + 4] for i in range(0, len(value), 4))
        return value

    def national_id(self) -> tuple[str, str]:
        r = self.r
        kind = r.randrange(3)
        if kind == 0:
            return "SSN", f"{r.randint(100, 665)}{r.choice(['-', ' ', ''])}{r.randint(10, 99)}" \
                          f"{r.choice(['-', ' ', ''])}{r.randint(1000, 9999)}".replace("--", "-")
        if kind == 1:
            n = r.randint(10**7, 10**8 - 1)
            return "DNI", f"{n:08d}-{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"
        body = f"{r.choice('12')}{r.randint(50, 99)}{r.randint(1, 12):02d}{r.randint(1, 95):02d}" \
               f"{r.randint(1, 999):03d}{r.randint(1, 999):03d}"
        return "NIR", f"{body}{97 - int(body) % 97:02d}"

    def ip(self) -> str:
        r = self.r
        if r.random() < 0.3:
            return f"2a0{r.randint(0, 9)}:{r.randint(0x100, 0xffff):x}:{r.randint(0, 0xffff):x}:" \
                   f"{r.randint(0, 0xffff):x}::{r.randint(1, 0xffff):x}"
        return f"{r.randint(2, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}".replace(
            "127.", "128.", 1).replace("10.", "11.", 1)

    def secret(self) -> tuple[str, str]:
        r = self.r
        rnd = "".join(r.choice(ALNUM) for _ in range(48))
        return r.choice([
            ("Authorization: Bearer ", f"eyJ{rnd[:18]}.eyJ{rnd[18:40]}.{rnd[:30]}"),
            ("aws_access_key_id=", f"AKIA{rnd.upper()[:16]}"),
            ("STRIPE_KEY=", f"sk_test_{rnd[:26]}"),
            ('"api_token": "', f"{rnd[:40]}"),
            ("pwd=", f"Kx!{rnd[:9]}"),
            ("my password is ", f"{r.choice(['Madrid', 'Paris', 'Berlin'])}{r.randint(1970, 2020)}!"),
            ("GITHUB_TOKEN=", f"github_pat_{rnd[:22]}_{rnd[10:48]}{rnd[:21]}"),
            ("slack: ", f"xoxp-{self.d(11)}-{self.d(11)}-{rnd[:32]}"),
        ])

    def address(self) -> str:
        r = self.r
        return r.choice([f"{r.randint(1, 999)} {r.choice(['Highfield', 'Church', 'Station', 'Mill'])} "
                         f"{r.choice(['Rd', 'St', 'Road', 'Street', 'Avenue', 'Close'])}",
                         f"{r.choice(['Berliner', 'Kirch', 'Garten', 'Mozart'])}str. {r.randint(1, 150)}",
                         f"{r.choice(['Am Anger', 'Im Winkel', 'An der Linde'])} {r.randint(1, 40)}",
                         f"{r.randint(1, 120)} bis, rue {r.choice(['Pasteur', 'Victor Hugo', 'de Verdun'])}",
                         f"{r.randint(1, 99)} av. {r.choice(['Jean Jaurès', 'Foch', 'de la République'])}",
                         f"c/ {r.choice(['Gran Vía', 'Mayor', 'Princesa', 'Sol'])}, {r.randint(1, 200)}",
                         f"Avda. {r.choice(['Diagonal', 'de América', 'Andalucía'])} {r.randint(1, 600)}"])

    def dob(self) -> tuple[str, str]:
        r = self.r
        d, m, y = r.randint(1, 28), r.randint(1, 12), r.randint(1938, 2007)
        return r.choice([("Birthdate: ", f"{y}/{m:02d}/{d:02d}"), ("born ", f"{d}-{m}-{y}"),
                         ("Geb.-Datum: ", f"{d:02d}.{m:02d}.{str(y)[2:]}"),
                         ("date de naissance ", f"{d:02d}.{m:02d}.{y}"),
                         ("F. nacimiento: ", f"{d:02d}-{m:02d}-{y}"), ("dob=", f"{y}{m:02d}{d:02d}"),
                         ("I was born ", f"on the {d}th of {['May', 'June', 'July'][m % 3]} {y}")])

    def negative(self) -> tuple[str, str]:
        r = self.r
        return r.choice([
            ("order", f"Order No. {self.d(3)}-{self.d(4)}"), ("order", f"Auftragsnr. {self.d(10)}"),
            ("order", f"n° de commande FR{self.d(8)}"), ("order", f"#{self.d(7)}"),
            ("sku", f"EAN {self.d(13)}"), ("sku", f"{r.choice(['GX', 'ZR', 'PB'])}{self.d(5)}/{r.randint(1, 9)}"),
            ("tracking", f"{self.d(4)} {self.d(4)} {self.d(4)}"),
            ("tracking", f"CP{self.d(9)}FR"), ("tracking", f"JJD{self.d(18)}"),
            ("tracking", f"9261 2901 {self.d(4)} {self.d(4)} {self.d(4)} {self.d(2)}"),
            ("version", f"build {r.randint(1, 30)}.{r.randint(0, 12)}.{r.randint(0, 99)}"),
            ("version", f"Android {r.randint(9, 15)}"),
            ("version", f"{r.randint(1, 3)}.{r.randint(0, 9)}.{r.randint(0, 9)}-rc{r.randint(1, 4)}"),
            ("price", f"EUR {r.randint(1, 9)}.{self.d(3)},{self.d(2)}"), ("price", f"USD {r.randint(10, 999)}.99"),
            ("price", f"{r.randint(1, 99)}€{self.d(2)}"), ("price", f"{r.randint(1000, 99999):,} COP"),
            ("timestamp", f"{r.randint(1, 12)}/{r.randint(1, 28)}/26 {r.randint(1, 12)}:{self.d(1)}{self.d(1)} PM"),
            ("timestamp", f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} {r.randint(10, 23)}:"
                          f"{r.randint(10, 59)}:{r.randint(10, 59)}.{self.d(3)}"),
            ("timestamp", f"{r.randint(1, 28)} {['Jan', 'Feb', 'Mar'][r.randint(0, 2)]} 2026 "
                          f"{r.randint(10, 23)}h{self.d(2)}"),
            ("gift_card", "-".join(luhn_break("7" + self.d(14))[i:i + 4] for i in range(0, 16, 4))),
            ("invoice_amount", f"{r.randint(2, 40)} x {r.randint(1, 99)},{self.d(2)}"),
            ("product", r.choice(NAMEISH)),
            ("case", f"Case ID: {self.d(8)}"), ("ticket", f"INC{self.d(7)}"),
        ])

    # --- message shapes ---
    def _pii(self, msg: Labelled, g: str, f: str, kind: str) -> None:
        r = self.r
        if kind == "EMAIL":
            msg.add(r.choice(["e-mail ", "mail: ", "correo ", "Mail an ", "contact: "])).add(self.email(g, f),
                                                                                         pii="EMAIL")
        elif kind == "PHONE":
            msg.add(r.choice(["tel ", "Tel.: ", "Tél : ", "whatsapp ", "call back on ", "Rückruf unter "]))
            msg.add(self.phone(), pii="PHONE")
        elif kind == "CARD":
            msg.add(r.choice(["CC ", "Visa ", "tarjeta nº ", "Karte ", "numéro CB "])).add(self.card(), pii="CARD")
        elif kind == "IBAN":
            msg.add(r.choice(["IBAN: ", "iban ", "Kontonummer ", "cuenta "])).add(self.iban(), pii="IBAN")
        elif kind == "NATIONAL_ID":
            which, value = self.national_id()
            lead = {"SSN": r.choice(["SSN ", "social sec no ", "ssn#"]), "DNI": r.choice(["DNI ", "D.N.I. "]),
                    "NIR": r.choice(["numéro de sécu ", "NIR "])}[which]
            msg.add(lead).add(value, pii="NATIONAL_ID")
        elif kind == "IP":
            msg.add(r.choice(["from ", "remote_addr=", "IP ", "client "])).add(self.ip(), pii="IP")
        elif kind == "SECRET":
            lead, value = self.secret()
            msg.add(lead).add(value, pii="SECRET")
            if lead.endswith('"'):
                msg.add('"')
        elif kind == "URL_CREDENTIAL":
            rnd = "".join(r.choice(ALNUM) for _ in range(24))
            x = r.randrange(3)
            if x == 0:
                msg.add("https://").add(f"{ascii_fold(g).lower()}:{rnd[:8]}", pii="URL_CREDENTIAL").add(
                    "@dav.example.org/remote.php")
            elif x == 1:
                msg.add("http://tracking.example.net/confirm?uid=42&auth_token=").add(rnd, pii="URL_CREDENTIAL")
            else:
                msg.add("postgres://").add(f"app_user:{rnd[:12]}", pii="URL_CREDENTIAL").add("@10.0.0.5:5432/prod")
        elif kind == "ADDRESS":
            msg.add(r.choice(["address: ", "Adresse: ", "dirección: ", "adresse : "])).add(self.address(),
                                                                                        pii="ADDRESS")
        elif kind == "DOB":
            lead, value = self.dob()
            msg.add(lead).add(value, pii="DOB")

    def form(self, g: str, f: str) -> Labelled:
        """A web-form dump: 'Field: value' lines."""
        r = self.r
        msg = Labelled()
        msg.add(r.choice(["--- Contact form ---\n", "Formulaire de contact\n", "Kontaktformular\n", ""]))
        label = r.choice(["Name", "Nom", "Nombre", "Full name", "Vor- und Nachname"])
        msg.add(f"{label}: ").add(f"{g} {f}", pii="NAME").add("\n")
        for kind in r.sample(["EMAIL", "PHONE", "ADDRESS", "DOB", "IBAN", "CARD"], r.randint(2, 4)):
            self._pii(msg, g, f, kind)
            msg.add("\n")
        kind, value = self.negative()
        msg.add("Subject: ").add(value, negative=kind).add("\n")
        return msg

    def html_mail(self, g: str, f: str) -> Labelled:
        r = self.r
        msg = Labelled()
        msg.add(f"<html><body><p>{r.choice(['Dear team', 'Liebes Team', 'Bonjour', 'Buenas'])},</p><p>")
        kind, value = self.negative()
        msg.add("about ").add(value, negative=kind).add(" &mdash; ")
        for kind in r.sample(["EMAIL", "PHONE", "CARD", "IBAN", "IP", "NATIONAL_ID", "SECRET"], r.randint(1, 3)):
            self._pii(msg, g, f, kind)
            msg.add("<br>")
        msg.add("</p><p>--<br>").add(f"{g} {f}", pii="NAME").add("<br>")
        if r.random() < 0.5:
            msg.add(r.choice(["Sent from my iPhone", "Enviado desde mi Android", "Von meinem iPad gesendet"]))
        msg.add("</p></body></html>")
        return msg

    def log_paste(self, g: str, f: str) -> Labelled:
        r = self.r
        msg = Labelled()
        msg.add(r.choice(["here is the log:\n", "Log anbei:\n", "voici les logs :\n", "adjunto el log:\n"]))
        for _ in range(r.randint(2, 4)):
            ts = f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}" \
                 f":{r.randint(0, 59):02d}.{self.d(3)}Z"
            msg.add(ts, negative="timestamp").add(f" {r.choice(['INFO', 'WARN', 'ERROR'])} ")
            kind = r.choice(["IP", "SECRET", "EMAIL", "URL_CREDENTIAL"])
            if kind == "EMAIL":
                msg.add("user=").add(self.email(g, f), pii="EMAIL")
            else:
                self._pii(msg, g, f, kind)
            msg.add(" v=").add(f"{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 9)}", negative="version")
            msg.add(f" req={self.d(6)}\n")
        return msg

    def chat(self, g: str, f: str) -> Labelled:
        r = self.r
        msg = Labelled()
        intro = r.choice(["hey its ", "Hi, ", "hola soy ", "salut c'est ", "Hallo, hier ist ", "This is "])
        msg.add(intro).add(g if r.random() < 0.5 else f"{g} {f}", pii="NAME").add(r.choice([" ", ". ", "! "]))
        kind, value = self.negative()
        msg.add(r.choice(["my ", "re ", "", "about "])).add(value, negative=kind).add(r.choice([" ", ", "]))
        for kind in r.sample(["PHONE", "EMAIL", "CARD", "DOB", "ADDRESS", "NATIONAL_ID", "IBAN"], r.randint(1, 2)):
            self._pii(msg, g, f, kind)
            msg.add(r.choice([" pls", " thx", ".", " !!", "  "]))
        if r.random() < 0.5:
            kind, value = self.negative()
            msg.add(" also ").add(value, negative=kind)
        return msg

    def quoted_reply(self, g: str, f: str) -> Labelled:
        r = self.r
        msg = Labelled()
        msg.add(r.choice(["Thanks, that worked.\n\n", "Danke!\n\n", "Merci.\n\n", "Gracias.\n\n"]))
        msg.add("> On Mon, ").add(f"{g} {f}", pii="NAME").add(" <")
        msg.add(self.email(g, f), pii="EMAIL").add("> wrote:\n> ")
        kind, value = self.negative()
        msg.add(value, negative=kind).add("\n> ")
        self._pii(msg, g, f, r.choice(["PHONE", "IBAN", "CARD", "ADDRESS"]))
        msg.add("\n")
        return msg

    def message(self) -> Labelled:
        r = self.r
        g, f = r.choice(GIVEN), r.choice(FAMILY)
        shape = r.choice([self.form, self.html_mail, self.log_paste, self.chat, self.quoted_reply])
        msg = shape(g, f)
        x = r.random()
        if x < 0.1:  # shouted (only case changes that keep the length, so the spans stay right)
            msg.text = "".join(c.upper() if len(c.upper()) == 1 else c for c in msg.text)
        elif x < 0.18:  # lower-cased
            msg.text = "".join(c.lower() if len(c.lower()) == 1 else c for c in msg.text)
        elif x < 0.25:  # tabs for some spaces (span lengths do not change)
            msg.text = msg.text.replace(": ", ":\t")
        return msg


def held_out(n: int = 800) -> list[dict]:
    g = HeldOutGen()
    return [{"conversation_id": f"h{i:04d}", "turn": 0, **g.message().to_json()} for i in range(n)]
