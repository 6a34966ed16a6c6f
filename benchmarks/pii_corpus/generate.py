"""Generate the committed labelled PII evaluation corpus (corpus.jsonl): en/de/fr/es support conversations.

Run: .venv/bin/python benchmarks/pii_corpus/generate.py [--conversations 700]  (seeded: same output every run)

Each line is one turn: {"conversation_id", "turn", "lang", "text", "pii": [[entity, start, end]],
"negatives": [[kind, start, end]]}. Entities: EMAIL, PHONE, CARD, IBAN, NATIONAL_ID (US SSN, Spanish DNI/NIE,
French NIR), IP, URL_CREDENTIAL (user name/password/token inside a URL), SECRET, ADDRESS, DOB, NAME. Hard
negatives: order numbers, SKUs, tracking numbers, versions, prices, timestamps, non-birth dates, quantities,
gift-card numbers failing Luhn, product and company names that are also first names. The engine may be tuned on
this corpus; the held-out corpus (heldout.py) is a different generator and is not.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

import phonenumbers

sys.path.insert(0, str(Path(__file__).parent))
from labelled import Labelled, iban_for, luhn_break, luhn_complete, random_phone  # noqa: E402

OUT = Path(__file__).parent / "corpus.jsonl"

FIRST = {
    "en": ["Emily", "James", "Olivia", "Daniel", "Grace", "Henry", "Chloe", "Samuel", "Hannah", "Oliver", "Megan"],
    "de": ["Lena", "Jonas", "Katharina", "Maximilian", "Sophie", "Felix", "Anja", "Matthias", "Ute", "Björn"],
    "fr": ["Camille", "Léa", "Hugo", "Manon", "Théo", "Inès", "Julien", "Margaux", "François", "Élodie"],
    "es": ["Lucía", "Javier", "Martina", "Alejandro", "Sofía", "Pablo", "Irene", "Sergio", "Nuria", "Andrés"],
}
LAST = {
    "en": ["Thompson", "O'Connor", "Walker", "Bennett", "Hughes", "MacLeod", "Patel", "Fitzgerald", "Nguyen"],
    "de": ["Müller", "Schneider", "Weber", "Becker", "Zimmermann", "Krüger", "von Bergen", "Schulze-Hahn"],
    "fr": ["Martin", "Bernard", "Lefebvre", "Rousseau", "Fontaine", "Dupont", "Chevalier", "Mercier"],
    "es": ["González", "Rodríguez", "Martínez", "Sánchez", "Romero", "de la Fuente", "Ortega", "Castillo"],
}
# products and companies that are also first names: must survive
NAMELIKE_PRODUCTS = ["Alexa", "Siri", "Ring", "Nest", "Echo", "Cortana", "Ford", "Dell", "Mercedes", "Tesla",
                     "Jaguar", "Wendy's", "Harley", "Ruby", "Victoria", "Lincoln", "Carrie"]
DOMAINS = ["gmail.com", "yahoo.co.uk", "outlook.com", "web.de", "gmx.de", "t-online.de", "orange.fr", "free.fr",
           "laposte.net", "hotmail.es", "telefonica.net", "icloud.com", "proton.me", "company.co.uk"]
REGIONS = {"en": ["US", "GB", "IE", "CA", "AU"], "de": ["DE", "AT", "CH"], "fr": ["FR", "BE", "CH"],
           "es": ["ES", "MX", "AR"]}
OTHER_REGIONS = ["IT", "NL", "PL", "SE", "BR", "IN", "JP", "ZA", "PT", "DK", "NO", "FI", "CZ", "TR"]
STREETS = {
    "en": ["{n} Baker Street", "{n} Elm Road", "{n} Kings Avenue", "{n} Oak Lane", "{n} Maple Drive",
           "Flat 3, {n} Victoria Road"],
    "de": ["Hauptstraße {n}", "Bahnhofstr. {n}", "Lindenweg {n}", "Goethestraße {n}a", "Am Marktplatz {n}",
           "Schillerallee {n}"],
    "fr": ["{n} rue de la Paix", "{n}, avenue Victor Hugo", "{n} boulevard Saint-Michel", "{n} place Bellecour",
           "{n} rue des Lilas"],
    "es": ["Calle Mayor {n}", "C/ Alcalá {n}", "Avenida de la Constitución {n}", "Calle de Serrano {n}, 2º B",
           "Paseo de Gracia {n}"],
}
MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"],
}
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# (lead-in before the value) per language and entity
LEADS = {
    "en": {
        "EMAIL": ["My email is ", "please write to ", "the account is under ", "you can reach me at "],
        "PHONE": ["Call me on ", "my number is ", "phone: ", "you can text me at ", "mobile "],
        "CARD": ["I paid with my card ", "the card number is ", "charged to ", "card ending in full: "],
        "IBAN": ["Please refund to my IBAN ", "bank account (IBAN): ", "send it to "],
        "NATIONAL_ID": ["My SSN is ", "social security number ", "SSN: "],
        "IP": ["the login came from ", "my IP address is ", "blocked IP "],
        "URL_CREDENTIAL": ["the link I used: ", "it fails at ", "webhook URL "],
        "SECRET": ["my API key is ", "token: ", "password: ", "here is the key "],
        "ADDRESS": ["Ship it to ", "my address is ", "deliver to "],
        "DOB": ["my date of birth is ", "I was born on ", "DOB: "],
    },
    "de": {
        "EMAIL": ["Meine E-Mail-Adresse ist ", "schreiben Sie an ", "Konto läuft auf "],
        "PHONE": ["Rufen Sie mich an unter ", "meine Nummer: ", "Tel. ", "Handy: "],
        "CARD": ["bezahlt mit der Karte ", "Kreditkarte: ", "Kartennummer "],
        "IBAN": ["Bitte erstatten auf IBAN ", "meine IBAN lautet ", "Konto: "],
        "NATIONAL_ID": ["meine SSN (US) ist ", "Social Security Number: "],
        "IP": ["Zugriff von IP ", "meine IP-Adresse ist ", "gesperrte IP "],
        "URL_CREDENTIAL": ["der Link: ", "Fehler bei ", "Webhook-URL "],
        "SECRET": ["mein API-Key ist ", "Token: ", "Passwort: ", "der Schlüssel: "],
        "ADDRESS": ["Lieferadresse: ", "ich wohne in der ", "bitte schicken an "],
        "DOB": ["geboren am ", "Geburtsdatum: ", "mein Geburtsdatum ist "],
    },
    "fr": {
        "EMAIL": ["Mon e-mail est ", "écrivez-moi à ", "le compte est au nom de "],
        "PHONE": ["Appelez-moi au ", "mon numéro : ", "tél. ", "portable : "],
        "CARD": ["payé avec la carte ", "numéro de carte : ", "ma carte bancaire "],
        "IBAN": ["Remboursez sur l'IBAN ", "mon IBAN est ", "RIB/IBAN : "],
        "NATIONAL_ID": ["mon numéro de sécurité sociale est ", "n° de sécu : "],
        "IP": ["connexion depuis ", "mon adresse IP est ", "IP bloquée "],
        "URL_CREDENTIAL": ["le lien : ", "erreur sur ", "URL du webhook "],
        "SECRET": ["ma clé API est ", "jeton : ", "mot de passe : ", "la clé "],
        "ADDRESS": ["Livrez au ", "mon adresse : ", "j'habite au "],
        "DOB": ["né le ", "date de naissance : ", "je suis née le "],
    },
    "es": {
        "EMAIL": ["Mi correo es ", "escríbanme a ", "la cuenta está a nombre de "],
        "PHONE": ["Llámenme al ", "mi teléfono: ", "móvil ", "tel. "],
        "CARD": ["pagué con la tarjeta ", "número de tarjeta: ", "mi tarjeta "],
        "IBAN": ["Devuelvan el dinero al IBAN ", "mi IBAN es ", "cuenta: "],
        "NATIONAL_ID": ["mi DNI es ", "DNI: ", "NIE "],
        "IP": ["acceso desde ", "mi IP es ", "IP bloqueada "],
        "URL_CREDENTIAL": ["el enlace: ", "falla en ", "URL del webhook "],
        "SECRET": ["mi clave API es ", "token: ", "contraseña: ", "la clave "],
        "ADDRESS": ["Envíenlo a ", "mi dirección: ", "vivo en "],
        "DOB": ["fecha de nacimiento: ", "nací el ", "nacido el "],
    },
}
OPENERS = {
    "en": ["Hi,", "Hello,", "Hi there,", "Good morning,", "Hey support team,"],
    "de": ["Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,", "Moin,"],
    "fr": ["Bonjour,", "Bonsoir,", "Madame, Monsieur,", "Salut,"],
    "es": ["Hola,", "Buenos días,", "Estimados señores:", "Buenas tardes,"],
}
ISSUES = {
    "en": ["my {p} stopped working after the update", "I was charged twice for order {o}",
           "the parcel {t} never arrived", "I want to return item {s}", "the {p} app keeps crashing"],
    "de": ["mein {p} funktioniert seit dem Update nicht mehr", "Bestellung {o} wurde doppelt abgebucht",
           "das Paket {t} ist nie angekommen", "ich möchte Artikel {s} zurückgeben"],
    "fr": ["mon {p} ne marche plus depuis la mise à jour", "la commande {o} a été débitée deux fois",
           "le colis {t} n'est jamais arrivé", "je veux retourner l'article {s}"],
    "es": ["mi {p} dejó de funcionar tras la actualización", "me cobraron dos veces el pedido {o}",
           "el paquete {t} nunca llegó", "quiero devolver el artículo {s}"],
}
SIGNOFFS = {
    "en": ["Thanks,", "Best regards,", "Cheers,", "Kind regards,"],
    "de": ["Viele Grüße,", "Mit freundlichen Grüßen", "Danke,", "Gruß,"],
    "fr": ["Cordialement,", "Merci,", "Bien à vous,"],
    "es": ["Saludos,", "Gracias,", "Un saludo,", "Atentamente,"],
}
AGENT = {
    "en": ("Hi {first},", "thanks for reaching out. I have updated the ticket.", "Best,\nSam from Support"),
    "de": ("Hallo {first},", "danke für Ihre Nachricht. Wir kümmern uns darum.", "Viele Grüße\nIhr Support-Team"),
    "fr": ("Bonjour {first},", "merci pour votre message. Nous traitons la demande.", "Cordialement,\nLe support"),
    "es": ("Hola {first},", "gracias por escribirnos. Ya estamos en ello.", "Saludos,\nEl equipo de soporte"),
}


class Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def digits(self, n: int) -> str:
        return "".join(self.r.choice("0123456789") for _ in range(n))

    # --- PII values ---
    def email(self, first: str, last: str) -> str:
        import unicodedata

        def plain(s: str) -> str:
            return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower().replace(" ", "")

        f, la = plain(first), plain(last).replace("'", "")
        local = self.r.choice([f"{f}.{la}", f"{f[0]}{la}", f"{f}{self.digits(2)}", f"{la}.{f}+shop", f"{f}_{la}"])
        return f"{local}@{self.r.choice(DOMAINS)}"

    def phone(self, lang: str) -> str:
        r = self.r
        region = r.choice(REGIONS[lang] if r.random() < 0.7 else OTHER_REGIONS)
        number = random_phone(r, region, r.choice([phonenumbers.PhoneNumberType.MOBILE,
                                                   phonenumbers.PhoneNumberType.FIXED_LINE]))
        style = r.choice(["intl", "intl", "national", "national", "e164", "00", "dots"])
        if style == "intl":
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        if style == "national":
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        if style == "e164":
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if style == "00":
            return "00" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)[1:]
        intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        return intl.replace(" ", ".").replace("-", ".").replace("+", "+", 1)

    def card(self) -> str:
        r = self.r
        prefix, length = r.choice([("4", 16), ("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16),
                                   ("2223", 16), ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("3530", 16),
                                   ("36", 14), ("6759", 12), ("6304", 19), ("62", 16)])
        num = luhn_complete(prefix + self.digits(length - len(prefix) - 1))
        style = r.randrange(4)
        if style == 0:
            return num
        sep = " " if style in (1, 3) else "-"
        if length == 15:
            return f"{num[:4]}{sep}{num[4:10]}{sep}{num[10:]}"
        if length == 14:
            return f"{num[:4]}{sep}{num[4:10]}{sep}{num[10:]}"
        return sep.join(num[i:i + 4] for i in range(0, length, 4))

    def iban(self) -> str:
        r = self.r
        country, bban = r.choice([
            ("DE", self.digits(18)), ("FR", self.digits(10) + "ABC" + self.digits(8) + "12"),
            ("ES", self.digits(20)), ("GB", "NWBK" + self.digits(14)), ("NL", "RABO" + self.digits(10)),
            ("IT", "X" + self.digits(10) + self.digits(12)), ("AT", self.digits(16)), ("CH", self.digits(17)),
            ("BE", self.digits(12)), ("PL", self.digits(24)), ("IE", "AIBK" + self.digits(14)),
        ])
        value = iban_for(country, bban)
        return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if r.random() < 0.6 else value

    def national_id(self, lang: str) -> str:
        r = self.r
        if lang == "es":
            if r.random() < 0.7:
                n = r.randint(10**7, 10**8 - 1)
                return f"{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"
            prefix = r.choice("XYZ")
            n = r.randint(10**6, 10**7 - 1)
            return f"{prefix}{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[int(str('XYZ'.index(prefix)) + str(n)) % 23]}"
        if lang == "fr":
            sex, yy, mm = r.choice("12"), f"{r.randint(40, 99):02d}", f"{r.randint(1, 12):02d}"
            dep, com, order = f"{r.randint(1, 95):02d}", f"{r.randint(1, 999):03d}", f"{r.randint(1, 999):03d}"
            body = sex + yy + mm + dep + com + order
            key = 97 - int(body) % 97
            if r.random() < 0.5:
                return f"{sex} {yy} {mm} {dep} {com} {order} {key:02d}"
            return f"{body}{key:02d}"
        area = r.randint(1, 665)
        ssn = f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"
        return ssn if r.random() < 0.8 else ssn.replace("-", " ")

    def ip(self) -> str:
        r = self.r
        if r.random() < 0.35:
            groups = [f"{r.randint(0, 0xffff):x}" for _ in range(8)]
            groups[0] = r.choice(["2001", "2a02", "2600", "2a01"])
            if r.random() < 0.5:
                return ":".join(groups[:3]) + "::" + groups[7]
            return ":".join(groups)
        return f"{r.choice([24, 31, 62, 79, 91, 109, 151, 176, 188, 217])}.{r.randint(0, 255)}." \
               f"{r.randint(0, 255)}.{r.randint(1, 254)}"

    def url_credential(self, msg: Labelled, first: str) -> None:
        r = self.r
        host = r.choice(["shop.example.com", "api.acme.io", "files.mycloud.net", "portal.tienda.es"])
        user = f"{first.lower()[:4]}{self.digits(2)}"
        pw = "".join(r.choice(ALNUM) for _ in range(10)) + "!"
        tok = "".join(r.choice(ALNUM) for _ in range(32))
        kind = r.randrange(3)
        if kind == 0:
            msg.add(f"https://{host}/account/reset?token=").add(tok, pii="URL_CREDENTIAL").add("&lang=en")
        elif kind == 1:
            msg.add("ftp://").add(f"{user}:{pw}", pii="URL_CREDENTIAL").add(f"@{host}/upload/")
        else:
            msg.add(f"https://{host}/v1/orders?api_key=").add(tok, pii="URL_CREDENTIAL")

    def secret(self, lead: str) -> str:
        r = self.r
        rand = "".join(r.choice(ALNUM) for _ in range(40))
        if "pass" in lead.lower() or "wort" in lead or "contraseña" in lead or "mot de passe" in lead:
            return r.choice(["Sommer2024!", "hunter2#Xy", "P@ssw0rd-77", "Zx9!qLm2", "correct-Horse-7"])
        return r.choice([f"sk-proj-{rand[:32]}", f"ghp_{rand[:36]}", f"AKIA{rand.upper()[:16]}",
                         f"xoxb-{self.digits(12)}-{rand[:24]}", f"sk_live_{rand[:24]}", f"AIza{rand[:35]}",
                         f"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOi{rand[:22]}.{rand[5:40]}",
                         rand[:32]])

    def address(self, lang: str) -> str:
        return self.r.choice(STREETS[lang]).format(n=self.r.randint(1, 240))

    def dob(self, lang: str) -> str:
        r = self.r
        d, m, y = r.randint(1, 28), r.randint(1, 12), r.randint(1945, 2006)
        month = MONTHS[lang][m - 1]
        forms = {"en": [f"{month} {d}, {y}", f"{m:02d}/{d:02d}/{y}", f"{d} {month} {y}", f"{y}-{m:02d}-{d:02d}"],
                 "de": [f"{d:02d}.{m:02d}.{y}", f"{d}. {month} {y}", f"{d}.{m}.{y}"],
                 "fr": [f"{d:02d}/{m:02d}/{y}", f"{d} {month} {y}"],
                 "es": [f"{d:02d}/{m:02d}/{y}", f"{d} de {month} de {y}"]}
        return r.choice(forms[lang])

    # --- hard negatives ---
    def negative(self, lang: str) -> tuple[str, str]:
        r = self.r
        kind = r.choice(["order", "sku", "tracking", "version", "price", "timestamp", "date", "quantity",
                         "gift_card", "product"])
        if kind == "order":
            return kind, r.choice([f"#{r.randint(10**5, 10**9)}", f"ORD-{r.randint(2020, 2026)}-{self.digits(6)}",
                                   f"{self.digits(3)}-{self.digits(7)}-{self.digits(7)}", f"A{self.digits(9)}"])
        if kind == "sku":
            return kind, r.choice([f"SKU {self.digits(8)}", f"{r.choice(['HX', 'KB', 'TV'])}-{self.digits(4)}-"
                                   f"{r.choice(['BK', 'WH', 'RD'])}", f"ART.{self.digits(6)}"])
        if kind == "tracking":
            return kind, r.choice([f"1Z{self.digits(3)}{r.choice(['AA', 'E2', 'X6'])}{self.digits(10)}",
                                   f"JVGL{self.digits(16)}", f"9400 1{self.digits(3)} {self.digits(4)} "
                                   f"{self.digits(4)} {self.digits(4)} {self.digits(2)}",
                                   f"{self.digits(12)}", f"LX{self.digits(9)}DE", f"00340434{self.digits(12)}"])
        if kind == "version":
            return kind, r.choice([f"v{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 40)}",
                                   f"{r.randint(1, 20)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(1000, 9999)}",
                                   f"iOS {r.randint(15, 18)}.{r.randint(0, 6)}.{r.randint(1, 3)}",
                                   f"firmware {r.randint(1, 5)}.{r.randint(10, 99)}"])
        if kind == "price":
            return kind, r.choice([f"${r.randint(1, 9)},{self.digits(3)}.{self.digits(2)}",
                                   f"{r.randint(1, 999)},{self.digits(2)} €", f"€{r.randint(1, 999)}.{self.digits(2)}",
                                   f"{r.randint(1, 9)}.{self.digits(3)},{self.digits(2)} EUR",
                                   f"£{r.randint(10, 999)}", f"{r.randint(100, 99999)} MXN"])
        if kind == "timestamp":
            return kind, r.choice([
                f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}"
                f":{r.randint(0, 59):02d}Z", f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
                f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/2026 {r.randint(0, 23):02d}:{r.randint(0, 59):02d}",
                f"{r.randint(1700000000, 1790000000)}"])
        if kind == "date":
            return kind, r.choice([f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.2026",
                                   f"{MONTHS[lang][r.randint(0, 11)]} {r.randint(1, 28)}",
                                   f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"])
        if kind == "quantity":
            return kind, r.choice([f"{r.randint(2, 999)} units", f"{r.randint(1, 50)} kg",
                                   f"{r.randint(100, 20000)} mAh", f"{r.randint(10, 999)} GB"])
        if kind == "gift_card":
            number = luhn_break("6" + self.digits(14))
            return kind, " ".join(number[i:i + 4] for i in range(0, 16, 4))
        return kind, r.choice(NAMELIKE_PRODUCTS)

    # --- messages ---
    def customer(self, lang: str, first: str, last: str) -> Labelled:
        r = self.r
        msg = Labelled()
        opener = r.choice(OPENERS[lang])
        msg.add(opener + r.choice(["\n", " ", "\n\n"]))
        if r.random() < 0.35:
            intro = {"en": "my name is ", "de": "mein Name ist ", "fr": "je m'appelle ", "es": "me llamo "}[lang]
            msg.add(intro[0].upper() + intro[1:]).add(f"{first} {last}", pii="NAME").add(". ")
        issue = r.choice(ISSUES[lang])
        # the issue sentence carries hard negatives in its slots
        parts = issue.replace("{", "\x00{").replace("}", "}\x00").split("\x00")
        for part in parts:
            if part == "{p}":
                msg.add(r.choice(NAMELIKE_PRODUCTS), negative="product")
            elif part == "{o}":
                msg.add(f"#{r.randint(10**5, 10**8)}", negative="order")
            elif part == "{t}":
                msg.add(f"1Z{self.digits(3)}AA{self.digits(10)}", negative="tracking")
            elif part == "{s}":
                msg.add(f"SKU-{self.digits(5)}-{r.choice(['BLK', 'WHT', 'XL'])}", negative="sku")
            else:
                msg.add(part)
        msg.add(". ")
        entities = r.sample(["EMAIL", "PHONE", "CARD", "IBAN", "NATIONAL_ID", "IP", "URL_CREDENTIAL", "SECRET",
                             "ADDRESS", "DOB"], r.randint(1, 3))
        for entity in entities:
            lead = r.choice(LEADS[lang][entity])
            msg.add(lead)
            if entity == "URL_CREDENTIAL":
                self.url_credential(msg, first)
            else:
                value = {
                    "EMAIL": lambda: self.email(first, last), "PHONE": lambda: self.phone(lang),
                    "CARD": self.card, "IBAN": self.iban, "NATIONAL_ID": lambda: self.national_id(lang),
                    "IP": self.ip, "SECRET": lambda lead=lead: self.secret(lead), "ADDRESS": lambda: self.address(lang),
                    "DOB": lambda: self.dob(lang),
                }[entity]()
                msg.add(value, pii=entity)
            msg.add(r.choice([". ", ".\n", " - ", ", and ", "; "]))
            if r.random() < 0.6:
                kind, value = self.negative(lang)
                msg.add(r.choice(["(ref ", "Also: ", "PS ", "see "])).add(value, negative=kind).add(
                    r.choice([") ", ". ", ".\n"]))
        if r.random() < 0.15:  # a pasted log line
            msg.add(f"\n[2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} 08:1{r.randint(0, 9)}:02] ERROR "
                    f"client=")
            msg.add(self.ip(), pii="IP").add(" app=").add(f"{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}",
                                                         negative="version").add(" status=500\n")
        if r.random() < 0.8:
            msg.add("\n" + r.choice(SIGNOFFS[lang]) + "\n")
            msg.add(f"{first} {last}" if r.random() < 0.7 else first, pii="NAME")
        return msg

    def agent(self, lang: str, first: str) -> Labelled:
        greet, body, sign = AGENT[lang]
        msg = Labelled()
        head, tail = greet.split("{first}")
        msg.add(head).add(first, pii="NAME").add(tail + "\n" + body + " ")
        kind, value = self.negative(lang)
        msg.add({"en": "Reference: ", "de": "Vorgang: ", "fr": "Référence : ", "es": "Referencia: "}[lang])
        msg.add(value, negative=kind).add(".\n" + sign)
        return msg


FORM_LABELS = {"en": ["Customer name", "Name", "Contact person"], "de": ["Kunde", "Name", "Ansprechpartner"],
               "fr": ["Client", "Nom complet", "Nom"], "es": ["Cliente", "Nombre completo", "Nombre y apellidos"]}


class Variety(Gen):
    """Surface variety on top of the conversations: form dumps, HTML, JSON/key=value logs, ALL CAPS and
    lower-case, other separators (dots, double spaces, slashes, dashes, non-breaking spaces)."""

    def vary_digits(self, value: str) -> str:
        r = self.r
        x = r.random()
        if x < 0.15 and " " in value:
            return value.replace(" ", "\u00a0")
        if x < 0.3 and " " in value:
            return value.replace(" ", r.choice([".", "  ", "-"]))
        return value

    def form(self, lang: str, first: str, last: str) -> Labelled:
        r = self.r
        msg = Labelled()
        msg.add(r.choice(["[web form]\n", "Formular:\n", "-- formulaire --\n", "Formulario web\n", ""]))
        msg.add(f"{r.choice(FORM_LABELS[lang])}: ").add(f"{first} {last}", pii="NAME").add("\n")
        for entity in r.sample(["EMAIL", "PHONE", "ADDRESS", "DOB", "IBAN", "CARD", "NATIONAL_ID"], 3):
            label = {"EMAIL": "E-mail", "PHONE": r.choice(["Phone", "Telefon", "Téléphone", "Teléfono"]),
                     "ADDRESS": r.choice(["Address", "Adresse", "Dirección"]),
                     "DOB": r.choice(["Date of birth", "Geburtsdatum", "Date de naissance", "Fecha de nacimiento"]),
                     "IBAN": "IBAN", "CARD": r.choice(["Card number", "Kartennummer", "N° de carte", "Tarjeta"]),
                     "NATIONAL_ID": {"en": "SSN", "de": "SSN", "fr": "N° sécurité sociale", "es": "DNI/NIE"}[lang]
                     }[entity]
            value = {"EMAIL": lambda: self.email(first, last), "PHONE": lambda: self.vary_digits(self.phone(lang)),
                     "ADDRESS": lambda: self.address(lang), "DOB": lambda: self.dob(lang),
                     "IBAN": lambda: r.choice([str.lower, lambda v: v.replace(" ", "-"), str])(self.iban()),
                     "CARD": lambda: self.vary_digits(self.card()),
                     "NATIONAL_ID": lambda: self.national_id(lang)}[entity]()
            msg.add(f"{label}:{r.choice([' ', '  ', chr(9)])}").add(value, pii=entity).add("\n")
        kind, value = self.negative(lang)
        msg.add(r.choice(["Message: ", "Nachricht: ", "Message : ", "Mensaje: "])).add(value, negative=kind)
        return msg

    def html(self, lang: str, first: str, last: str) -> Labelled:
        r = self.r
        base = self.customer(lang, first, last)
        msg = Labelled()
        msg.add("<div dir=\"ltr\"><p>")
        shift = len(msg.text)
        msg.text += base.text.replace("\n", "<br/>\n", 0)
        msg.pii += [[e, s + shift, t + shift] for e, s, t in base.pii]
        msg.negatives += [[k, s + shift, t + shift] for k, s, t in base.negatives]
        msg.add("</p>" + r.choice(["", "<p>Sent from my phone</p>", "<p>Envoyé de mon iPhone</p>"]) + "</div>")
        return msg

    def log(self, lang: str, first: str, last: str) -> Labelled:
        r = self.r
        msg = Labelled()
        msg.add(r.choice(["Pasted from the app log:\n", "Auszug aus dem Log:\n", "extrait du journal :\n",
                          "copio el log:\n"]))
        for _ in range(r.randint(2, 4)):
            ts = f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} {r.randint(0, 23):02d}:{r.randint(0, 59):02d}"
            msg.add(ts, negative="timestamp")
            x = r.randrange(3)
            if x == 0:
                msg.add(' {"level": "warn", "email": "').add(self.email(first, last), pii="EMAIL").add('", "ip": "')
                msg.add(self.ip(), pii="IP").add('", "app": "').add(f"{r.randint(1, 9)}.{r.randint(0, 9)}.0",
                                                                      negative="version").add('"}\n')
            elif x == 1:
                msg.add(" level=error user_ip=").add(self.ip(), pii="IP").add(" order=")
                msg.add(f"{self.digits(9)}", negative="order").add("\n")
            else:
                msg.add(" auth failed token=").add(self.secret("token"), pii="SECRET").add(" sku=")
                msg.add(f"{r.choice(['HX', 'KB'])}-{self.digits(4)}", negative="sku").add("\n")
        return msg

    def card(self) -> str:
        number = re.sub(r"\D", "", super().card())
        sep = self.r.choice([" ", "-", ".", "  ", ""])
        return sep.join(number[i:i + 4] for i in range(0, len(number), 4))

    def quoted(self, lang: str, first: str, last: str) -> Labelled:
        """A reply that quotes the earlier mail with its header line."""
        r = self.r
        msg = Labelled()
        msg.add(r.choice(["Still not fixed.\n\n", "Immer noch kaputt.\n\n", "Toujours rien.\n\n",
                          "Sigue sin funcionar.\n\n"]))
        header = {"en": ("On Tue, 3 Mar 2026 at 09:14, ", " wrote:"), "de": ("Am 03.03.2026 um 09:14 schrieb ", ":"),
                  "fr": ("Le mar. 3 mars 2026, ", " a écrit :"), "es": ("El mar, 3 mar 2026, ", " escribió:")}[lang]
        msg.add(header[0]).add(f"{first} {last}", pii="NAME").add(" <").add(self.email(first, last), pii="EMAIL")
        msg.add(">" + header[1] + "\n> ")
        entity = r.choice(["PHONE", "CARD", "IBAN", "ADDRESS"])
        msg.add({"PHONE": "tel ", "CARD": "card ", "IBAN": "IBAN ", "ADDRESS": ""}[entity])
        value = {"PHONE": lambda: self.phone(lang), "CARD": self.card, "IBAN": self.iban,
                 "ADDRESS": lambda: self.address(lang)}[entity]()
        msg.add(value, pii=entity).add("\n> ")
        kind, neg = self.negative(lang)
        return msg.add(neg, negative=kind).add("\n")

    def chat(self, lang: str, first: str, last: str) -> Labelled:
        """A one-line chat message: introduction, a value, no sign-off."""
        r = self.r
        msg = Labelled()
        msg.add({"en": "hey it's ", "de": "hallo, hier ist ", "fr": "salut c'est ", "es": "hola, soy "}[lang])
        msg.add(first if r.random() < 0.5 else f"{first} {last}", pii="NAME").add(r.choice([", ", ". ", " here, "]))
        kind, neg = self.negative(lang)
        msg.add(neg, negative=kind).add(" ")
        entity = r.choice(["PHONE", "EMAIL", "CARD", "DOB"])
        msg.add(r.choice(LEADS[lang][entity]))
        value = {"PHONE": lambda: self.phone(lang), "EMAIL": lambda: self.email(first, last), "CARD": self.card,
                 "DOB": lambda: self.dob(lang)}[entity]()
        return msg.add(value, pii=entity).add(r.choice([" thx", "", " pls", "!"]))

    def note(self, lang: str, first: str, last: str) -> Labelled:
        """An internal call-back note: a title before the family name, an e-mail written to dodge scrapers."""
        r = self.r
        msg = Labelled()
        title = {"en": r.choice(["Mrs ", "Mr ", "Ms "]), "de": r.choice(["Frau ", "Herr "]),
                 "fr": r.choice(["Mme ", "M. "]), "es": r.choice(["Sra. ", "Sr. "])}[lang]
        lead = {"en": "Please call ", "de": "Bitte ", "fr": "Rappeler ", "es": "Llamar a "}[lang]
        msg.add(lead + title).add(last, pii="NAME").add(" ")
        msg.add({"en": "back about ", "de": "zurückrufen wegen ", "fr": "pour ", "es": "por "}[lang])
        kind, neg = self.negative(lang)
        msg.add(neg, negative=kind).add(". ")
        email = self.email(first, last)
        local, domain = email.split("@")
        host, _, tld = domain.rpartition(".")
        at, dot = r.choice([(" [at] ", " [dot] "), ("(at)", "(dot)"), (" (at) ", "."), ("[@]", ".")])
        msg.add({"en": "Mail: ", "de": "Mail: ", "fr": "Courriel : ", "es": "Correo: "}[lang])
        return msg.add(f"{local}{at}{host.replace('.', dot)}{dot}{tld}", pii="EMAIL")

    def message(self, lang: str, first: str, last: str) -> Labelled:
        r = self.r
        msg = r.choice([self.form, self.html, self.log, self.quoted, self.chat, self.note])(lang, first, last)
        x = r.random()
        if x < 0.12:  # only case changes that keep the length, so the spans stay right
            msg.text = "".join(c.upper() if len(c.upper()) == 1 else c for c in msg.text)
        elif x < 0.22:
            msg.text = "".join(c.lower() if len(c.lower()) == 1 else c for c in msg.text)
        return msg


def generate(conversations: int = 700, seed: int = 3, variety: int = 300) -> list[dict]:
    g = Gen(seed)
    rows = []
    for i in range(conversations):
        lang = ["en", "de", "fr", "es"][i % 4]
        first, last = g.r.choice(FIRST[lang]), g.r.choice(LAST[lang])
        for turn, msg in enumerate([g.customer(lang, first, last), g.agent(lang, first)]):
            rows.append({"conversation_id": f"c{i:04d}", "turn": turn, "lang": lang, **msg.to_json()})
    v = Variety(seed + 1)
    for i in range(variety):
        lang = ["en", "de", "fr", "es"][i % 4]
        first, last = v.r.choice(FIRST[lang]), v.r.choice(LAST[lang])
        rows.append({"conversation_id": f"v{i:04d}", "turn": 0, "lang": lang,
                     **v.message(lang, first, last).to_json()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=700)
    parser.add_argument("--variety", type=int, default=300, help="extra one-turn form/HTML/log records")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = generate(args.conversations, variety=args.variety)
    with args.out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} turns to {args.out}")


if __name__ == "__main__":
    main()
