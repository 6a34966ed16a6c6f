"""Benchmark of the PII engine: recall, precision, over-redaction per entity, messages/s, Presidio beside it.

Run: .venv/bin/python benchmarks/pii.py [--presidio-python PATH]
(prints a table, writes benchmarks/results/pii.json)

Two labelled corpora:
- "examples": the planted PII and hard negatives of examples/ (examples/pii_truth.jsonl), which the engine's
  tests use, i.e. the engine was tuned on it;
- "held_out": generated here with its own templates and values (seeded, deterministic), used by no test:
  en/de/fr/es support messages with case, spacing, separator and locale variety, HTML, pasted logs,
  signatures,
  invisible characters, full-width digits, and hard negatives (order/tracking numbers, SKUs, versions, prices,
  timestamps, product names that are first names).
A labelled PII span counts as caught when detected spans cover all of it (any entity type: what matters
is that it does not leak). A detected span is a true positive when it overlaps a labelled PII span. A hard
negative is over-redacted when a detected span touches it. Presidio (regex recognizers only, a blank spaCy
pipeline: its NER model is an internet download) runs in its own virtualenv, given by --presidio-python, on
the same messages.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from retune.pii import find_pii, luhn_valid, names_in

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RESULTS = Path(__file__).parent / "results" / "pii.json"


@dataclass
class Message:
    text: str
    pii: list[tuple[str, int, int]] = field(default_factory=list)  # (entity, start, end)
    negatives: list[tuple[str, int, int]] = field(default_factory=list)  # (kind, start, end)
    known_names: set[str] = field(default_factory=set)


# --- corpus 1: the examples --------------------------------------------------------------------------
def _load_generator():
    """examples/generate.py is a script, not a package: load it by path."""
    spec = importlib.util.spec_from_file_location("examples_generate", EXAMPLES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def _conversation_texts() -> dict[tuple[str, str], list[str]]:
    return _load_generator().conversation_texts(EXAMPLES)


def examples_corpus() -> list[Message]:
    import re

    texts = _conversation_texts()
    messages = []
    for line in (EXAMPLES / "pii_truth.jsonl").read_text().splitlines():
        truth = json.loads(line)
        conv = texts[(truth["batch"], truth["conversation_id"])]
        known = set().union(*(names_in(t) for t in conv))
        for text in conv:
            msg = Message(text, known_names=known)
            for entity, value in truth["pii"]:
                msg.pii += [
                    (entity, o.start(), o.end())
                    for o in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text)
                ]
            for kind, value in truth["negatives"]:
                msg.negatives += [(kind, o.start(), o.end()) for o in re.finditer(re.escape(value), text)]
            messages.append(msg)
    return messages


# --- corpus 2: held out ------------------------------------------------------------------------------
FIRST = [
    "Jürgen",
    "Amélie",
    "Søren",
    "María José",
    "Chloé",
    "Dmitri",
    "Aisha",
    "Mateo",
    "Ingrid",
    "Yusuf",
    "Noémie",
    "Lukas",
    "Carmen",
    "Bastien",
    "Freya",
    "Tobias",
    "Lucía",
    "Mathis",
    "Greta",
    "Álvaro",
]
LAST = [
    "Schäfer",
    "Lefèvre",
    "García-López",
    "Van der Berg",
    "Kowalczyk",
    "Dubois",
    "Fernández",
    "Hoffmann",
    "Moreau",
    "Jiménez",
    "Lindqvist",
    "Rossi",
    "Meier",
    "Navarro",
    "Girard",
]
PRODUCTS = ["Alexa", "Siri", "Ring", "Nest", "Echo Dot", "Lumen Aura", "Tesla"]


class HeldOut:
    """Builds labelled messages piece by piece, so every span is known exactly."""

    def __init__(self, seed: int = 20261101):
        self.r = random.Random(seed)

    def digits(self, n: int) -> str:
        return "".join(self.r.choice("0123456789") for _ in range(n))

    def card(self) -> str:
        r = self.r
        prefix = r.choice(["4", "4", "51", "53", "55", "2221", "6011", "65", "3528", "36", "34", "37"])
        length = {"34": 15, "37": 15, "36": 14}.get(
            prefix, r.choice([16, 16, 16, 19]) if prefix == "4" else 16
        )
        body = prefix + self.digits(length - len(prefix) - 1)
        check = next(d for d in "0123456789" if luhn_valid(body + d))
        num = body + check
        style = r.randrange(5)
        if style == 0:
            return num
        if style == 1:
            return " ".join(num[i : i + 4] for i in range(0, len(num), 4))
        if style == 2:
            return "-".join(num[i : i + 4] for i in range(0, len(num), 4))
        if style == 3:  # full-width digits (pasted from a CJK input method)
            return "".join(chr(0xFF10 + int(c)) for c in num)
        return "\u200b".join(num[i : i + 4] for i in range(0, len(num), 4))  # invisible separators

    def bad_card(self) -> str:  # card-shaped, fails Luhn: a gift card / loyalty number
        body = "4" + self.digits(14)
        check = next(d for d in "0123456789" if not luhn_valid(body + d))
        return " ".join((body + check)[i : i + 4] for i in range(0, 16, 4))

    def phone(self) -> str:
        r = self.r
        return r.choice(
            [
                f"+1 {r.choice(['202', '303', '617', '206'])}-{r.randint(200, 999)}-{self.digits(4)}",
                f"({r.choice(['202', '303', '617'])}) {r.randint(200, 999)} {self.digits(4)}",
                f"+49 {r.choice(['171', '160', '89', '40'])} {self.digits(7)}",
                f"0{r.choice(['171', '160', '89', '40'])}/{self.digits(7)}",
                f"+33 {r.choice(['6', '7', '1'])}." + ".".join(self.digits(2) for _ in range(4)),
                f"0{r.choice(['6', '7'])}-" + "-".join(self.digits(2) for _ in range(4)),
                f"+34 6{self.digits(2)} {self.digits(2)} {self.digits(2)} {self.digits(2)}",
                f"+44 7{self.digits(3)} {self.digits(6)}",
                f"+31 6 {self.digits(8)}",
                f"0041 79 {self.digits(3)} {self.digits(2)} {self.digits(2)}",
            ]
        )

    def email(self, first: str, last: str) -> str:
        import unicodedata

        def ascii_(s: str) -> str:
            return (
                unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower().replace(" ", "")
            )

        local = self.r.choice(
            [f"{ascii_(first)}.{ascii_(last)}", f"{ascii_(first)[0]}{ascii_(last)}{self.digits(2)}"]
        )
        value = (
            f"{local}@{self.r.choice(['web.de', 'orange.fr', 'gmx.net', 'correo.es', 'corp.example.co.uk'])}"
        )
        style = self.r.randrange(4)
        if style == 0:
            return value.upper()
        if style == 1:
            return value.replace("@", "\u200b@")
        return value

    def iban(self) -> str:
        country, bban = self.r.choice(
            [
                ("DE", self.digits(18)),
                ("FR", self.digits(23)),
                ("ES", self.digits(20)),
                ("NL", "ABNA" + self.digits(10)),
            ]
        )
        numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
        value = f"{country}{98 - int(numeric) % 97:02d}{bban}"
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if self.r.random() < 0.6 else value

    def ssn(self) -> str:
        return f"{self.r.randint(1, 665):03d}-{self.r.randint(1, 99):02d}-{self.r.randint(1, 9999):04d}"

    def ip(self) -> str:
        if self.r.random() < 0.3:
            return (
                f"2a02:{self.r.randint(256, 9999):x}:{self.r.randint(1, 999):x}::{self.r.randint(1, 255):x}"
            )
        first = self.r.choice([11, 23, 46, 81, 94, 185, 203, 212])  # not 127: loopback identifies nobody
        return f"{first}.{self.r.randint(0, 255)}.{self.r.randint(0, 255)}.{self.r.randint(1, 254)}"

    def secret(self) -> str:
        alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        rand = "".join(self.r.choice(alnum) for _ in range(36))
        return self.r.choice(
            [
                f"ghp_{rand}",
                f"sk-{rand[:32]}",
                f"AKIA{rand.upper()[:16]}",
                f"xoxp-{self.digits(11)}-{rand[:20]}",
                f"eyJhbGciOiJIUzI1NiJ9.eyJ{rand[:20]}.{rand[10:36]}",
            ]
        )

    def dob(self) -> str:
        d, m, y = self.r.randint(1, 28), self.r.randint(1, 12), self.r.randint(1940, 2005)
        months = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ]
        return self.r.choice(
            [f"{d:02d}.{m:02d}.{y}", f"{y}-{m:02d}-{d:02d}", f"{months[m - 1]} {d}, {y}", f"{d}/{m}/{y}"]
        )

    def negative(self) -> tuple[str, str]:
        r = self.r
        return r.choice(
            [
                (
                    "order_number",
                    f"{r.choice(['#', 'No. ', 'Bestellung ', 'commande n° '])}{r.randint(10**6, 10**9)}",
                ),
                ("tracking", f"1Z{self.digits(3)}AA{self.digits(10)}"),
                ("tracking", f"JJD{self.digits(18)}"),
                ("sku", f"SKU-{r.randint(100, 999)}-{r.choice(['BLK', 'WHT'])}-{r.randint(10, 99)}"),
                ("version", f"v{r.randint(1, 12)}.{r.randint(0, 30)}.{r.randint(0, 99)}"),
                (
                    "version",
                    f"firmware {r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(100, 999)}",
                ),
                (
                    "price",
                    r.choice(
                        [
                            f"{r.randint(1, 2000)},{r.randint(0, 99):02d} €",
                            f"${r.randint(1, 9)},{r.randint(100, 999)}.00",
                            f"{r.randint(10, 999)}.{r.randint(0, 99):02d} EUR",
                        ]
                    ),
                ),
                (
                    "timestamp",
                    f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} "
                    f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:"
                    f"{r.randint(0, 59):02d}",
                ),
                (
                    "timestamp",
                    f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/2026 "
                    f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}",
                ),
                ("gift_card", self.bad_card()),
                ("product", r.choice(PRODUCTS)),
                ("quantity", f"{r.randint(2, 5000)} units"),
            ]
        )

    def message(self) -> Message:
        r = self.r
        first, last = r.choice(FIRST), r.choice(LAST)
        msg = Message("")

        def add(piece: str, label: tuple[str, str] | None = None) -> None:
            start = len(msg.text)
            msg.text += piece
            if label is not None:
                kind, which = label
                (msg.pii if which == "pii" else msg.negatives).append((kind, start, len(msg.text)))

        lang = r.choice(["en", "de", "fr", "es"])
        greet = {"en": "Hello,", "de": "Guten Tag,", "fr": "Bonjour,", "es": "Hola,"}[lang]
        html = r.random() < 0.15
        add(f"<p>{greet}</p>\n" if html else f"{greet}\n")
        n_pii = r.randint(1, 3)
        kinds = r.sample(["EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP", "SECRET", "DOB"], n_pii)
        lead = {
            "en": {
                "EMAIL": "you can email me at ",
                "PHONE": "best number to reach me: ",
                "CARD": "I paid with ",
                "IBAN": "please refund to IBAN ",
                "SSN": "my SSN is ",
                "IP": "the login came from ",
                "SECRET": "my API token is ",
                "DOB": "my date of birth is ",
            },
            "de": {
                "EMAIL": "meine E-Mail: ",
                "PHONE": "Sie erreichen mich unter ",
                "CARD": "bezahlt mit Karte ",
                "IBAN": "bitte auf IBAN ",
                "SSN": "SSN ",
                "IP": "Zugriff von IP ",
                "SECRET": "der Token lautet: ",
                "DOB": "geboren am ",
            },
            "fr": {
                "EMAIL": "mon adresse est ",
                "PHONE": "mon numéro : ",
                "CARD": "payé avec la carte ",
                "IBAN": "remboursez sur l'IBAN ",
                "SSN": "SSN: ",
                "IP": "connexion depuis ",
                "SECRET": "clé API : ",
                "DOB": "date de naissance : ",
            },
            "es": {
                "EMAIL": "mi correo es ",
                "PHONE": "mi teléfono: ",
                "CARD": "pagué con la tarjeta ",
                "IBAN": "devolución al IBAN ",
                "SSN": "SSN ",
                "IP": "acceso desde ",
                "SECRET": "mi token: ",
                "DOB": "fecha de nacimiento: ",
            },
        }[lang]
        for kind in kinds:
            value = {
                "EMAIL": lambda: self.email(first, last),
                "PHONE": self.phone,
                "CARD": self.card,
                "IBAN": self.iban,
                "SSN": self.ssn,
                "IP": self.ip,
                "SECRET": self.secret,
                "DOB": self.dob,
            }[kind]()
            add(lead[kind])
            add(value, (kind, "pii"))
            add(r.choice([". ", ", ", " - ", ".\n", " "]))
            if r.random() < 0.8:
                neg_kind, neg = self.negative()
                add(r.choice(["(ref ", "about ", "re: ", "- "]))
                add(neg, (neg_kind, "negative"))
                add(r.choice([") ", ". ", " "]))
        if r.random() < 0.2:  # a pasted log line
            add("\n[2026-10-03 12:00:01] INFO request from ")
            add(self.ip(), ("IP", "pii"))
            add(" build ")
            add(f"{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 99)}", ("version", "negative"))
        sign = {
            "en": "Best regards,",
            "de": "Mit freundlichen Grüßen,",
            "fr": "Cordialement,",
            "es": "Saludos,",
        }[lang]
        add(f"\n{sign}\n")
        add(f"{first} {last}", ("NAME", "pii"))
        add("\n")
        return msg


def held_out_corpus(n: int = 600) -> list[Message]:
    gen = HeldOut()
    return [gen.message() for _ in range(n)]


# --- scoring -----------------------------------------------------------------------------------------
def score(messages: list[Message], predictions: list[list[tuple[str, int, int]]]) -> dict:
    caught, total = Counter(), Counter()
    tp, predicted = Counter(), Counter()
    neg_hit, neg_total = Counter(), Counter()
    for msg, spans in zip(messages, predictions, strict=True):
        for entity, s, e in msg.pii:
            total[entity] += 1
            covered = sum(max(0, min(e, pe) - max(s, ps)) for _, ps, pe in spans)
            caught[entity] += covered >= e - s
        for entity, ps, pe in spans:
            predicted[entity] += 1
            tp[entity] += any(ps < e and s < pe for _, s, e in msg.pii)
        for kind, s, e in msg.negatives:
            neg_total[kind] += 1
            neg_hit[kind] += any(ps < e and s < pe for _, ps, pe in spans)
    recall = {e: round(caught[e] / total[e], 4) for e in sorted(total)}
    precision = {e: round(tp[e] / predicted[e], 4) for e in sorted(predicted)}
    over = {k: round(neg_hit[k] / neg_total[k], 4) for k in sorted(neg_total)}
    return {
        "recall": recall,
        "precision": precision,
        "over_redaction": over,
        "recall_overall": round(sum(caught.values()) / max(1, sum(total.values())), 4),
        "precision_overall": round(sum(tp.values()) / max(1, sum(predicted.values())), 4),
        "over_redaction_overall": round(sum(neg_hit.values()) / max(1, sum(neg_total.values())), 4),
        "labelled_pii": sum(total.values()),
        "hard_negatives": sum(neg_total.values()),
    }


def run_retune(messages: list[Message]) -> tuple[list[list[tuple[str, int, int]]], float]:
    start = time.perf_counter()
    out = [
        [(m.entity, m.start, m.end) for m in find_pii(msg.text, known_names=msg.known_names)]
        for msg in messages
    ]
    return out, time.perf_counter() - start


PRESIDIO_SCRIPT = r"""
import json, os, sys, tempfile, time
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
import spacy
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NlpEngineProvider
model = os.path.join(tempfile.mkdtemp(), "blank_en")
spacy.blank("en").to_disk(model)
provider = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy",
                                                "models": [{"lang_code": "en", "model_name": model}]})
engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
texts = json.load(sys.stdin)
entities = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS", "PERSON",
            "DATE_TIME", "CRYPTO", "US_BANK_NUMBER"]
engine.analyze(texts[0], language="en", entities=entities)  # warm-up
start = time.perf_counter()
out = [[(r.entity_type, r.start, r.end) for r in engine.analyze(t, language="en", entities=entities)]
       for t in texts]
json.dump({"spans": out, "seconds": time.perf_counter() - start}, sys.stdout)
"""


def run_presidio(
    python: str, messages: list[Message]
) -> tuple[list[list[tuple[str, int, int]]], float] | None:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(PRESIDIO_SCRIPT)
    proc = subprocess.run(
        [python, f.name],
        input=json.dumps([m.text for m in messages]),
        capture_output=True,
        text=True,
        env={"TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "", "PATH": "/usr/bin:/bin"},
    )
    if proc.returncode != 0:
        print("presidio failed:", proc.stderr.strip().splitlines()[-1:], file=sys.stderr)
        return None
    data = json.loads(proc.stdout)
    return [[tuple(s) for s in spans] for spans in data["spans"]], data["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presidio-python", help="python of a virtualenv with presidio-analyzer and spacy")
    parser.add_argument("--held-out", type=int, default=600, help="messages in the held-out corpus")
    args = parser.parse_args()
    corpora = {"examples": examples_corpus(), "held_out": held_out_corpus(args.held_out)}
    summary: dict = {"machine": platform.platform(), "python": platform.python_version(), "corpora": {}}
    for name, messages in corpora.items():
        find_pii("warm up +44 20 7946 0958")
        spans, seconds = run_retune(messages)
        chars = sum(len(m.text) for m in messages)
        entry = {
            "messages": len(messages),
            "retune": {
                **score(messages, spans),
                "messages_per_s": round(len(messages) / seconds, 1),
                "mb_per_s": round(chars / seconds / 1e6, 3),
            },
        }
        if args.presidio_python:
            result = run_presidio(args.presidio_python, messages)
            if result is not None:
                p_spans, p_seconds = result
                entry["presidio_regex_only"] = {
                    **score(messages, p_spans),
                    "messages_per_s": round(len(messages) / p_seconds, 1),
                    "mb_per_s": round(chars / p_seconds / 1e6, 3),
                }
        summary["corpora"][name] = entry
    for name, entry in summary["corpora"].items():
        print(f"\n== {name}: {entry['messages']} messages ==")
        engines = [k for k in ("retune", "presidio_regex_only") if k in entry]
        print(f"{'metric':<34}" + "".join(f"{e:>22}" for e in engines))
        rows = [
            ("messages/s", "messages_per_s"),
            ("MB/s", "mb_per_s"),
            ("recall (no leak), all", "recall_overall"),
            ("precision, all", "precision_overall"),
            ("over-redaction, all", "over_redaction_overall"),
        ]
        for label, key in rows:
            print(f"{label:<34}" + "".join(f"{entry[e][key]:>22}" for e in engines))
        for section in ("recall", "over_redaction"):
            for key in sorted(set().union(*(entry[e][section] for e in engines))):
                print(
                    f"{section + ' ' + key:<34}"
                    + "".join(f"{entry[e][section].get(key, '-'):>22}" for e in engines)
                )
        print(
            f"{'precision (retune entity)':<34}"
            + "".join(f"{k}={v}" + " " for k, v in entry["retune"]["precision"].items())
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
