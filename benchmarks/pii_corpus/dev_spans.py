"""A development corpus for span boundaries: how much non-PII text survives around each piece of PII (in memory).

Written for PII round 3 from the issue's description of surface variety, not from any held-out generator: PII
embedded in running text, e-mail headers and quoted threads, signatures (plain and HTML) with job titles and
company lines under the name, pasted logs, tables (tabs, ";", "|", HTML cells), chat transcripts, in en/de/fr/es,
with the words right before and after each value being the hard part (titles, weekdays, "Tel.", "ext.",
"please", capitalised sentence starts, shouted and lower-cased text). Addresses are labelled whole (street,
postcode, town, country). Tuned on (a development set): benchmarks/pii.py scores it only with --only dev_spans.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from labelled import Labelled, iban_for  # noqa: E402

GIVEN = ["Anna", "Lukas", "Camille", "Javier", "Priya", "Kwame", "Ingrid", "Mateo", "Sophie", "Jonas", "Lucía",
         "Thomas", "Elodie", "Carmen", "Oliver", "Hannah"]
FAMILY = ["Berg", "Schneider", "Dubois", "García", "Patel", "Mensah", "Larsen", "Rossi", "Martin", "Weber",
          "Fernández", "Keller", "Moreau", "López", "Smith", "Novak"]
TITLES = ["Senior Support Engineer", "Head of Customer Success", "Team Lead Billing", "Kundenservice",
          "Responsable Service Client", "Atención al Cliente", "Account Manager", "Customer Care Agent",
          "Leiterin Vertrieb", "Chargée de clientèle"]
COMPANIES = ["Acme GmbH", "Northwind Ltd", "Fabrikam SARL", "Contoso S.L.", "Globex Inc.", "Initech AG"]
STREETS = {  # (street, postcode + town, country)
    "en": [("221 Baker Street", "London NW1 6XE", "United Kingdom"), ("742 Evergreen Terrace", "Springfield, IL 62704",
                                                                      "USA")],
    "de": [("Hauptstraße 12", "10115 Berlin", "Deutschland"), ("Lindenallee 7a", "80331 München", "Germany")],
    "fr": [("45 rue de Rivoli", "75001 Paris", "France"), ("12 avenue Jean Jaurès", "69007 Lyon", "France")],
    "es": [("Calle Mayor 15", "28013 Madrid", "España"), ("Avenida de la Paz 8", "41001 Sevilla", "Spain")],
}
PHONES = {"en": ["+44 20 7946 0958", "+1 415-555-0132", "020 7946 0321"], "de": ["+49 30 12345678", "0151 23456789"],
          "fr": ["+33 6 12 34 56 78", "06 12 34 56 78"], "es": ["+34 612 345 678", "612 345 678"]}
# words that follow or precede PII in real messages and must survive
AFTER_PHONE = {"en": ["between 9 and 5", "ext. desk", "after 6pm please", "(mobile)"],
               "de": ["(Mo-Fr 9-17 Uhr)", "ab 18 Uhr", "bitte zurückrufen"],
               "fr": ["après 18h", "(portable)", "merci de rappeler"], "es": ["por la tarde", "(móvil)", "gracias"]}
SUBJECTS = ["Order 48213 not delivered", "Refund for invoice INV-2026-0042", "Bestellung 55120 beschädigt",
            "Commande 99321 en retard", "Pedido 77410 incompleto"]
WEEKDAYS = {"en": "Monday, March 3, 2026 10:15", "de": "Montag, 3. März 2026 10:15",
            "fr": "lundi 3 mars 2026 10:15", "es": "lunes, 3 de marzo de 2026 10:15"}
SENT = {"en": "Sent", "de": "Gesendet", "fr": "Envoyé", "es": "Enviado"}
WROTE = {"en": "wrote", "de": "schrieb", "fr": "a écrit", "es": "escribió"}
THANKS = {"en": "Best regards", "de": "Viele Grüße", "fr": "Cordialement", "es": "Saludos"}


class DevSpansGen:
    def __init__(self, seed: int = 5531):
        self.r = random.Random(seed)

    def person(self) -> tuple[str, str]:
        return self.r.choice(GIVEN), self.r.choice(FAMILY)

    def email(self, g: str, f: str) -> str:
        local = f"{g}.{f}".lower().replace("í", "i").replace("é", "e").replace("á", "a").replace("ó", "o")
        return f"{local}@{self.r.choice(['example.com', 'mail.de', 'orange.fr', 'correo.es'])}"

    def address(self, msg: Labelled, lang: str, sep: str) -> None:
        street, town, country = self.r.choice(STREETS[lang])
        whole = street + sep + town + (sep + country if self.r.random() < 0.5 else "")
        msg.add(whole, pii="ADDRESS")

    def running_text(self, msg: Labelled, lang: str) -> None:
        r = self.r
        g, f = self.person()
        phone = r.choice(PHONES[lang])
        lead = {"en": "Hi, this is ", "de": "Hallo, hier ist ", "fr": "Bonjour, c'est ", "es": "Hola, soy "}[lang]
        msg.add(lead).add(f"{g} {f}", pii="NAME")
        msg.add({"en": ". Please send the parcel to ", "de": ". Bitte schicken Sie das Paket an ",
                 "fr": ". Merci d'envoyer le colis au ", "es": ". Por favor envíen el paquete a "}[lang])
        self.address(msg, lang, ", ")
        msg.add(r.choice([" tomorrow", " as soon as possible", ". Thanks", " bitte", " merci", " gracias"]))
        msg.add({"en": ". You can call me on ", "de": ". Sie erreichen mich unter ", "fr": ". Joignable au ",
                 "es": ". Pueden llamarme al "}[lang])
        msg.add(phone, pii="PHONE").add(" " + r.choice(AFTER_PHONE[lang]))
        msg.add({"en": " or write to ", "de": " oder schreiben Sie an ", "fr": " ou écrivez à ",
                 "es": " o escriban a "}[lang]).add(self.email(g, f), pii="EMAIL").add(r.choice([".", "!", " :)"]))

    def email_thread(self, msg: Labelled, lang: str) -> None:
        r = self.r
        g, f = self.person()
        msg.add("From: ").add(f"{g} {f}", pii="NAME").add(" <").add(self.email(g, f), pii="EMAIL").add(">\n")
        # a role address is still an address the engine replaces (its policy): labelled as one
        msg.add(f"{SENT[lang]}: {WEEKDAYS[lang]}\nTo: ").add(f"support@{r.choice(['acme.com', 'northwind.co.uk'])}",
                                                             pii="EMAIL").add("\n")
        msg.add(f"Subject: {r.choice(SUBJECTS)}\n\n")
        msg.add({"en": "Hello Support Team,\nthe package never arrived.\n",
                 "de": "Hallo Kundenservice,\ndas Paket ist nie angekommen.\n",
                 "fr": "Bonjour le Service Client,\nle colis n'est jamais arrivé.\n",
                 "es": "Hola Equipo de Soporte,\nel paquete nunca llegó.\n"}[lang])
        msg.add(f"\n{THANKS[lang]},\n").add(f"{g} {f}", pii="NAME").add("\n")
        g2, f2 = self.person()
        msg.add(f"\nOn {WEEKDAYS['en']}, ").add(f"{g2} {f2}", pii="NAME").add(f" {WROTE[lang]}:\n")
        msg.add("> Thank you for your order. Tracking: 1Z999AA10123456784\n")

    def signature(self, msg: Labelled, lang: str) -> None:
        r = self.r
        g, f = self.person()
        phone = r.choice(PHONES[lang])
        title, company = r.choice(TITLES), r.choice(COMPANIES)
        if r.random() < 0.5:  # plain text
            msg.add(f"{THANKS[lang]}\n\n--\n").add(f"{g} {f}", pii="NAME").add(f"\n{title}\n{company}\n")
            msg.add("Tel. ").add(phone, pii="PHONE").add("\n")
            msg.add(f"www.{company.split()[0].lower()}.com | Mo-Fr 9:00-17:00\n")
        else:  # HTML
            msg.add(f"<p>{THANKS[lang]},</p><p><b>").add(f"{g} {f}", pii="NAME").add(f"</b><br>{title}<br>")
            msg.add(f"{company}<br>").add(self.email(g, f), pii="EMAIL").add("<br>T ").add(phone, pii="PHONE")
            msg.add("</p>")

    def log(self, msg: Labelled, lang: str) -> None:
        r = self.r
        g, f = self.person()
        for _ in range(3):
            ts = f"2026-0{r.randint(1, 9)}-1{r.randint(0, 9)}T1{r.randint(0, 9)}:2{r.randint(0, 9)}:0{r.randint(0, 9)}Z"
            kind = r.randint(0, 2)
            msg.add(f"{ts} {r.choice(['INFO', 'WARN', 'ERROR'])} ")
            if kind == 0:
                msg.add("user=").add(self.email(g, f), pii="EMAIL")
                msg.add(f" action=login status={r.choice([200, 401])} latency={r.randint(5, 90)}ms\n")
            elif kind == 1:
                msg.add("client=").add(f"{r.choice([31, 62, 91, 151])}.{r.randint(1, 254)}.{r.randint(1, 254)}."
                                       f"{r.randint(1, 254)}", pii="IP")
                msg.add(f" path=/api/v2/orders/{r.randint(10000, 99999)} method=GET build=4.{r.randint(0, 9)}.1\n")
            else:
                msg.add("retry customer=").add(f"{g} {f}", pii="NAME")
                msg.add(f" order={r.randint(100000, 999999)} queue=billing-eu\n")

    def table(self, msg: Labelled, lang: str) -> None:
        r = self.r
        sep = r.choice(["\t", ";", " | "])
        head = {"en": ["Name", "Email", "Phone", "Order", "Amount", "Status"],
                "de": ["Name", "E-Mail", "Telefon", "Bestellung", "Betrag", "Status"],
                "fr": ["Nom", "Email", "Téléphone", "Commande", "Montant", "Statut"],
                "es": ["Nombre", "Email", "Teléfono", "Pedido", "Importe", "Estado"]}[lang]
        msg.add(sep.join(head) + "\n")
        for _ in range(2):
            g, f = self.person()
            msg.add(f"{g} {f}", pii="NAME").add(sep).add(self.email(g, f), pii="EMAIL").add(sep)
            msg.add(r.choice(PHONES[lang]), pii="PHONE").add(sep)
            msg.add(f"{r.randint(10000, 99999)}{sep}{r.randint(10, 999)},{r.randint(10, 99)} EUR{sep}"
                    f"{r.choice(['shipped', 'versendet', 'expédiée', 'enviado', 'open'])}\n")

    def chat(self, msg: Labelled, lang: str) -> None:
        r = self.r
        g, f = self.person()
        agent = r.choice(["Lena", "Marc", "Sofia", "Tom"])
        msg.add(f"[10:0{r.randint(0, 9)}] Agent ").add(agent, pii="NAME").add(": How can I help?\n")
        msg.add(f"[10:1{r.randint(0, 9)}] Customer (").add(f"{g} {f}", pii="NAME").add("): ")
        msg.add({"en": "My IBAN is ", "de": "Meine IBAN lautet ", "fr": "Mon IBAN est ", "es": "Mi IBAN es "}[lang])
        bban = "".join(r.choice("0123456789") for _ in range(18))
        iban = iban_for("DE", bban)
        iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        msg.add(iban, pii="IBAN").add(r.choice([" BIC COBADEFFXXX", " and the amount was 49,99 EUR", " thanks"]))
        msg.add({"en": ", born on ", "de": ", geboren am ", "fr": ", né le ", "es": ", nacido el "}[lang])
        msg.add(r.choice(["12.03.1985", "1985-03-12", "3 March 1985"]), pii="DOB")
        msg.add(r.choice([" in Berlin", " if that helps", ". Order 48213 please"]) + "\n")

    def one_liners(self, msg: Labelled, lang: str) -> None:
        """Names, addresses and numbers with capitalised or unusual neighbours on the same line."""
        r = self.r
        g, f = self.person()
        title, company = r.choice(TITLES), r.choice(COMPANIES)
        street, town, _ = r.choice(STREETS[lang])
        phone = r.choice(PHONES[lang])
        form = r.randint(0, 7)
        if form == 0:  # a signature line with separators
            msg.add(f"{r.choice(['--', '—'])} ").add(f"{g} {f}", pii="NAME").add(f" | {title} | {company}\n")
        elif form == 1:  # a one-line letterhead
            msg.add(f"{company} · ").add(f"{street} · {town}", pii="ADDRESS").add(" · Tel. ").add(phone, pii="PHONE")
            msg.add(" · Mo-Fr\n")
        elif form == 2:  # JSON
            msg.add('{"name": "').add(f"{g} {f}", pii="NAME").add('", "plan": "Premium", "email": "')
            msg.add(self.email(g, f), pii="EMAIL").add(f'", "order": {r.randint(10000, 99999)}, "city": "Berlin"}}\n')
        elif form == 3:  # lower-case chat
            msg.add(r.choice(["hi its ", "hey, this is ", "hallo hier ist ", "salut c'est ", "hola soy "]))
            msg.add(f"{g} {f}".lower(), pii="NAME")
            msg.add(r.choice([" again, order 48213 still missing", " from acme support", " und die lieferung fehlt",
                              " encore, la commande n'est pas arrivée", " otra vez, falta el pedido"]) + "\n")
        elif form == 4:  # introduction with the company after the name
            msg.add(r.choice(["This is ", "My name is ", "Je m'appelle ", "Me llamo ", "Mein Name ist "]))
            msg.add(f"{g} {f}", pii="NAME").add(r.choice([" from ", " de ", " von "]) + company)
            msg.add(r.choice([" and my order is late.", ". Monday works for me.", ", Premium customer since 2019."]))
            msg.add("\n")
        elif form == 5:  # cc list
            g2, f2 = self.person()
            msg.add("cc: ").add(f"{g} {f}", pii="NAME").add(", ").add(f"{g2} {f2}", pii="NAME")
            msg.add(r.choice(["; Team Billing", "; Finance Department", " (Support)", "; Service Client"]) + "\n")
        elif form == 6:  # HTML and markdown table rows
            if r.random() < 0.5:
                msg.add("<tr><td>").add(f"{g} {f}", pii="NAME").add("</td><td>Premium Plan</td><td>")
                msg.add(phone, pii="PHONE").add(f"</td><td>{r.randint(10, 99)},99 €</td></tr>\n")
            else:
                msg.add("| ").add(f"{g} {f}", pii="NAME").add(" | Premium | ").add(self.email(g, f), pii="EMAIL")
                msg.add(f" | {r.randint(10, 99)},99 € |\n")
        else:  # a name, then a weekday or product on the same line
            msg.add(r.choice(["Thanks ", "Danke ", "Merci ", "Gracias "])).add(f"{g} {f}", pii="NAME")
            msg.add(r.choice([", Tuesday works", " - Galaxy S21 arrived broken", ", see you Monday",
                              ". Samsung said no", "! Order 48213 is fine now"]) + "\n")
        msg.add(r.choice(["Sent from my iPhone\n", "Von meinem iPhone gesendet\n", "Enviado desde mi iPhone\n", ""]))

    def record(self, i: int) -> list[dict]:
        r = self.r
        lang = r.choice(["en", "de", "fr", "es"])
        kind = [self.running_text, self.email_thread, self.signature, self.log, self.table, self.chat,
                self.one_liners, self.one_liners][i % 8]
        msg = Labelled()
        kind(msg, lang)
        shout = r.random()
        cased = msg.text.upper() if shout < 0.08 else msg.text.lower() if shout < 0.14 else msg.text
        if len(cased) == len(msg.text):  # shouted or lower-cased ("ß" -> "SS" would move the labels: not then)
            msg.text = cased
        return [{"conversation_id": f"dev-spans-{i}", **msg.to_json()}]


def dev_spans(n: int = 800) -> list[dict]:
    gen = DevSpansGen()
    return [row for i in range(n) for row in gen.record(i)]
