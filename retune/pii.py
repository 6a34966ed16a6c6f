"""Find personal data in text (regex + checksums + context) and replace it with keyed, consistent pseudonyms."""

# Entities: EMAIL, PHONE, CARD (Luhn), IBAN (mod-97), IP (v4, basic v6), and two contextual ones:
# NAME ("my name is X", "Hi X,", "Regards,\nX", ...) and ADDRESS ("12 Main Street", "Hauptstraße 5",
# "45 Rue de Rivoli"). Structured entities are validated (checksums, octets, digit counts) so that order
# numbers, SKUs, tracking numbers, versions, prices, dates and non-Luhn 16-digit numbers survive.
# A placeholder is <ENTITY_xxxxxxxx>: 8 hex chars of HMAC-SHA256(key, entity + normalized value). Spans
# inside an existing placeholder are never matched, so anonymizing twice changes nothing.

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

ALL_ENTITIES = ("EMAIL", "IBAN", "CARD", "IP", "PHONE", "ADDRESS", "NAME")  # also the overlap priority
PLACEHOLDER_PATTERN = r"<(?:EMAIL|IBAN|CARD|IP|PHONE|ADDRESS|NAME)_[0-9a-f]{8}>"
_PLACEHOLDER = re.compile(PLACEHOLDER_PATTERN)
# Only for local development: a run with this key says so (load_key returns is_dev_default=True).
DEV_KEY = b"retune-dev-key-NOT-SECRET"


@dataclass(frozen=True)
class PiiMatch:
    entity: str
    start: int
    end: int
    value: str


# --- EMAIL ---------------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)

# --- IBAN ----------------------------------------------------------------------------------------
# Lengths per country (SWIFT IBAN registry): a candidate is cut to its country's length, then mod-97 checked.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}
_IBAN = re.compile(r"(?<![\w])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}")


def iban_valid(compact: str) -> bool:
    compact = compact.upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    numeric = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(numeric) % 97 == 1


def _find_iban(text: str) -> Iterable[tuple[int, int]]:
    for m in _IBAN.finditer(text):
        length = _IBAN_LENGTHS.get(m.group()[:2].upper())
        if length is None:
            continue
        # walk the candidate until the country's length of non-space characters is reached
        seen, end = 0, m.start()
        for end in range(m.start(), m.end()):
            if text[end] != " ":
                seen += 1
                if seen == length:
                    break
        end += 1
        if seen == length and not (end < len(text) and text[end].isalnum()):
            if iban_valid(text[m.start():end].replace(" ", "")):
                yield m.start(), end


# --- CARD ----------------------------------------------------------------------------------------
_CARD = re.compile(
    r"(?<![\w+#/.,$€£-])(?<!\d[ -])"
    r"(?:\d{13,19}"  # unspaced
    r"|\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{1,7}(?![ -]\d)"  # 4-4-4-4(-ish); mixed separators are still a card
    r"|\d{4}[ -]\d{6}[ -]\d{4,5}(?![ -]\d))"  # Amex / Diners 4-6-5
    r"(?![\w-]|[.,]\d)"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _find_card(text: str) -> Iterable[tuple[int, int]]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        # no card number starts with 0 (that is an international phone prefix)
        if 13 <= len(digits) <= 19 and digits[0] != "0" and luhn_valid(digits):
            yield m.start(), m.end()


# --- IP ------------------------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# not after = < > ~ ^ (a version pin like pkg>=3.10.0.0)
_IPV4 = re.compile(rf"(?<![\w.=<>~^])(?:{_OCTET}\.){{3}}{_OCTET}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def _find_ip(text: str) -> Iterable[tuple[int, int]]:
    for m in _IPV4.finditer(text):
        if not m.group().startswith(("127.", "0.")):  # loopback and "this host" identify nobody
            yield m.start(), m.end()
    for m in _IPV6.finditer(text):
        value = m.group()
        groups = [g for g in value.split(":") if g]
        # a time like 10:30:00 is not an address: need '::' or eight groups, and some hex groups
        if len(groups) < 2 or ("::" not in value and len(groups) != 8):
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield m.start(), m.end()


# --- PHONE ---------------------------------------------------------------------------------------
_PHONE = re.compile(
    r"(?<![\w+#/.,:@=$€£-])(?:"
    r"(?:\+|\b00)\d{7,15}"  # compact international
    r"|(?:(?:\+|\b00)\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,8}(?:[ .-]\d{1,8}){1,6}"  # grouped
    r"|(?:\+|\b00)\d{1,3}[ .-]?\(\d{1,4}\)[ .-]?\d{4,12}"  # +49 (0)30 12345678
    r"|\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"  # (415) 555-0132
    r"|\d{7,15}"  # compact: national with trunk 0, or any after a cue word
    r")(?![\w]|[.,-]\d)"
)
_DATE_LIKE = re.compile(r"\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}|\d{1,2}[-./ ]\d{1,2}[-./ ]\d{2,4}")
_NANP = re.compile(r"\(\d{3}\) ?\d{3}[-. ]\d{4}|\d{3}([-. ])\d{3}\1\d{4}")
# words right before a number that say it is not a phone number
_NOT_PHONE_CUE = re.compile(
    r"(?i)\b(?:no|nr|order|invoice|ticket|case|ref|reference|grant|account|acct|id|sku|tracking|serial|"
    r"version|build)\b\.?[ ]*(?:number|no\.?|#)?[ ]*:?[ ]*$"
)
# words right before a number that say it is a phone number (then no prefix is needed)
_PHONE_CUE = re.compile(r"(?i)\b(?:phone|tel|mobile|cell|whatsapp|call me|reach me|text me|my number)\b[^\d\n]{0,15}$")


def _find_phone(text: str) -> Iterable[tuple[int, int]]:
    for m in _PHONE.finditer(text):
        value = m.group()
        digits = re.sub(r"\D", "", value)
        if not 7 <= len(digits) <= 15:
            continue
        groups = re.findall(r"\d+", value)
        if _DATE_LIKE.fullmatch(value) or groups[0] == "0" or sum(len(g) == 1 for g in groups) >= 3:
            continue  # dates, decimals and versions (0.3.33), digit tables (0 1 2 3)
        if _NOT_PHONE_CUE.search(text, max(0, m.start() - 30), m.start()):
            continue
        international = value.startswith(("+", "00"))
        trunk = value.startswith(("0", "(0"))
        cued = _PHONE_CUE.search(text, max(0, m.start() - 40), m.start())
        # plain digit groups without a + or a trunk 0 are order numbers, amounts, ...: only the North
        # American 3-3-4 shape is common enough to accept without a prefix or a cue word
        if international or trunk or cued or _NANP.fullmatch(value):
            yield m.start(), m.end()


# --- ADDRESS -------------------------------------------------------------------------------------
_CAP = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+"
_STREET_TYPES = (r"(?:Street|St\.|Road|Rd\.|Avenue|Ave\.|Lane|Ln\.|Drive|Dr\.|Boulevard|Blvd\.|Way|Court|"
                 r"Ct\.|Place|Pl\.|Terrace|Close|Crescent|Square|Parkway|Row|Gardens|Hill)")
_ADDRESS = re.compile(
    rf"(?<![\w#-])\d{{1,5}}[A-Za-z]?,?[ ]+(?:{_CAP}[ ]+){{1,3}}{_STREET_TYPES}(?![\w])"  # 12 Main Street
    rf"|(?<![\w])[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|allee|platz|ring|damm|ufer)"
    r"[ ]+\d{1,4}[a-z]?(?![\w])"  # Hauptstraße 12
    rf"|(?<![\w#-])\d{{1,4}},?[ ]+(?:[Rr]ue|[Aa]venue|[Bb]oulevard|[Pp]lace|[Cc]alle|[Vv]ia|[Qq]uai)"
    rf"(?:[ ]+(?:de|du|des|la|le|del|d'))?(?:[ ]+{_CAP}){{1,2}}"  # 45 Rue de Rivoli
)


def _find_address(text: str) -> Iterable[tuple[int, int]]:
    for m in _ADDRESS.finditer(text):
        yield m.start(), m.end()


# --- NAME ----------------------------------------------------------------------------------------
_UP, _LOW = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
# Anna, O'Brien, McDonald, Müller-Lüdenscheidt
_NAME_WORD = rf"(?:[{_UP}]['’])?[{_UP}][{_LOW}]+(?:[{_UP}][{_LOW}]+)?(?:-[{_UP}][{_LOW}]+)?"
_FULL_NAME = rf"{_NAME_WORD}(?:[ ]{_NAME_WORD}){{0,2}}"
_NAME_CONTEXTS = [
    re.compile(rf"\b(?:[Mm]y name is|[Mm]y name's|[Tt]his is|I am|I'm)[ ]+(?P<name>{_FULL_NAME})"),
    # "Name: X" also labels products and packages: only a first and last name count
    re.compile(rf"\b(?:[Ff]ull name|[Nn]ame)[ ]?:[ ]*(?P<name>{_NAME_WORD}(?:[ ]{_NAME_WORD}){{1,2}})(?![\w.-])"),
    re.compile(rf"(?m)^[ \t]*(?:[Hh]i|[Hh]ello|[Hh]ey|[Dd]ear|Good (?:morning|afternoon|evening))[ ]+"
               rf"(?P<name>{_FULL_NAME})[ ]*[,!]"),
    re.compile(rf"(?:[Rr]egards|[Bb]est wishes|[Tt]hanks|[Tt]hank you|[Cc]heers|[Ss]incerely|[Bb]est),?"
               rf"[ \t]*\r?\n[ \t]*(?P<name>{_FULL_NAME})[ \t]*(?:\r?\n|$)"),
    re.compile(rf"\b(?:account holder|card ?holder|name on the card is|addressed to)[ :]+(?P<name>{_FULL_NAME})"),
]
# Capitalised words that follow those cues but are not names.
_NOT_NAMES = frozenset("""
    a all again also am an and any anyone everyone everybody folks guys here just lumen me not now only
    please really regarding writing sorry still support sure team the there this that very so unable happy
    glad afraid looking contacting following back customer customers sir madam service services hello hi hey
    thanks thank best kind regards good morning afternoon evening dear i yes no ok okay calling trying having
    getting going aura plus app order orders my our your we you they he she it what how why when where who
    which is are was were be been new old great perfect desk hub lamp cam doorbell plug
    sensor strip admin user agent staff true false none null monday tuesday wednesday thursday friday saturday sunday
""".split())


def _trim_name(name: str) -> str:
    """Cut a candidate at the first word that is not a name (so 'Anna Here' keeps 'Anna')."""
    words = []
    for word in name.split(" "):
        if word.lower() in _NOT_NAMES:
            break
        words.append(word)
    return " ".join(words)


def _cued_names(text: str) -> Iterator[tuple[int, str]]:
    """(start, name) for every name that follows one of the cues."""
    for pattern in _NAME_CONTEXTS:
        for m in pattern.finditer(text):
            name = _trim_name(m.group("name"))
            if name:
                yield m.start("name"), name


def _find_name(text: str, known_names: Iterable[str] = ()) -> Iterable[tuple[int, int]]:
    names: set[str] = {n for n in known_names if n}
    for start, name in _cued_names(text):
        names.add(name)
        yield start, start + len(name)
    # a name seen in a cue is personal data wherever else it occurs in the text (also its parts)
    tokens = set(names)
    for name in names:
        tokens.update(w for w in name.split(" ") if len(w) >= 3 and w.lower() not in _NOT_NAMES)
    for token in sorted(tokens, key=len, reverse=True):
        for m in re.finditer(rf"(?<![\w]){re.escape(token)}(?![\w])", text):
            yield m.start(), m.end()


def names_in(text: str) -> set[str]:
    """The names found by their cues in a text (used to carry names across the turns of a conversation)."""
    return {name for _, name in _cued_names(text)}


_FINDERS: dict[str, Callable[[str], Iterable[tuple[int, int]]]] = {
    "EMAIL": lambda t: ((m.start(), m.end()) for m in _EMAIL.finditer(t)),
    "IBAN": _find_iban,
    "CARD": _find_card,
    "IP": _find_ip,
    "PHONE": _find_phone,
    "ADDRESS": _find_address,
}


def find_pii(text: str, entities: Iterable[str] | None = None, *, known_names: Iterable[str] = ()) -> list[PiiMatch]:
    """Non-overlapping PII matches sorted by position; on overlap the higher-priority entity (ALL_ENTITIES
    order), then the longer span, wins. `known_names` are names (from other turns) to also match here."""
    wanted = set(ALL_ENTITIES if entities is None else entities)
    unknown = wanted - set(ALL_ENTITIES)
    if unknown:
        raise ValueError(f"unknown PII entities: {', '.join(sorted(unknown))}")
    taken = [(m.start(), m.end()) for m in _PLACEHOLDER.finditer(text)]
    accepted: list[PiiMatch] = []
    for entity in ALL_ENTITIES:
        if entity not in wanted:
            continue
        spans = _find_name(text, known_names) if entity == "NAME" else _FINDERS[entity](text)
        for start, end in sorted(set(spans), key=lambda s: (s[0], -(s[1] - s[0]))):
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            accepted.append(PiiMatch(entity, start, end, text[start:end]))
    return sorted(accepted, key=lambda m: m.start)


def normalize(entity: str, value: str) -> str:
    """The canonical form hashed into a placeholder: one value spelled two ways gets one pseudonym."""
    if entity == "EMAIL":
        return value.lower()
    if entity == "CARD":
        return re.sub(r"\D", "", value)
    if entity == "PHONE":
        digits = re.sub(r"\D", "", value)
        return digits[2:] if value.startswith("00") else digits  # 0044... and +44... are one number
    if entity == "IBAN":
        return value.replace(" ", "").upper()
    if entity == "IP":
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    return " ".join(value.split()).casefold()


class Pseudonymizer:
    """Maps a PII value to a stable placeholder under a secret key (HMAC-SHA256)."""

    def __init__(self, key: bytes):
        if not key:
            raise ValueError("the pseudonymization key is empty")
        self._key = key

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymizer(key=***)"

    def placeholder(self, entity: str, value: str) -> str:
        digest = hmac.new(self._key, f"{entity}\x00{normalize(entity, value)}".encode(), hashlib.sha256)
        return f"<{entity}_{digest.hexdigest()[:8]}>"


def anonymize_text(
    text: str, pseudonymizer: Pseudonymizer, entities: Iterable[str] | None = None, *,
    known_names: Iterable[str] = (),
) -> tuple[str, Counter[str]]:
    """The text with every PII match replaced by its placeholder, and the count per entity."""
    counts: Counter[str] = Counter()
    out, pos = [], 0
    for m in find_pii(text, entities, known_names=known_names):
        out += [text[pos:m.start], pseudonymizer.placeholder(m.entity, m.value)]
        pos = m.end
        counts[m.entity] += 1
    out.append(text[pos:])
    return "".join(out), counts


def _wants_names(entities: Iterable[str] | None) -> bool:
    return entities is None or "NAME" in entities


def anonymize_table(
    table: pa.Table, pseudonymizer: Pseudonymizer, entities: Iterable[str] | None = None, column: str = "text",
) -> tuple[pa.Table, Counter[str]]:
    """The table with `column` anonymized (other columns untouched). With a conversation_id column, a name
    found by its cue in one turn is also replaced in the other turns of that conversation."""
    entities = None if entities is None else list(entities)
    texts = table.column(column).to_pylist()
    names_by_conv: dict[object, set[str]] = {}
    conv_ids = table.column("conversation_id").to_pylist() if "conversation_id" in table.column_names else None
    if conv_ids is not None and _wants_names(entities):
        for cid, text in zip(conv_ids, texts, strict=True):
            if text:
                names_by_conv.setdefault(cid, set()).update(names_in(text))
    counts: Counter[str] = Counter()
    new_texts = []
    for i, text in enumerate(texts):
        if text is None:
            new_texts.append(None)
            continue
        known = names_by_conv.get(conv_ids[i], ()) if conv_ids is not None else ()
        new, c = anonymize_text(text, pseudonymizer, entities, known_names=known)
        new_texts.append(new)
        counts.update(c)
    index = table.column_names.index(column)
    field = table.schema.field(index)
    return table.set_column(index, field, pa.array(new_texts, type=field.type)), counts


def _apply_at_path(obj: object, path: list[str], fn: Callable[[str], str]) -> object:
    """Apply fn to the string(s) at a dotted path, walking through lists; missing keys are skipped."""
    if isinstance(obj, list):
        return [_apply_at_path(item, path, fn) for item in obj]
    if not path:
        return fn(obj) if isinstance(obj, str) else obj
    if isinstance(obj, dict) and path[0] in obj:
        obj[path[0]] = _apply_at_path(obj[path[0]], path[1:], fn)
    return obj


def anonymize_jsonl(
    in_path: Path, out_path: Path, fields: list[str], pseudonymizer: Pseudonymizer,
    entities: Iterable[str] | None = None,
) -> tuple[int, Counter[str]]:
    """Copy a JSONL file line by line, anonymizing the strings at `fields` (dotted paths, through lists, e.g.
    "messages.content"); other fields and the line order are kept. A line that is not JSON is anonymized
    as plain text (it may still hold PII). Returns (lines written, counts per entity)."""
    entities = None if entities is None else list(entities)
    paths = [f.split(".") for f in fields]
    counts: Counter[str] = Counter()
    n = 0
    with Path(in_path).open("rb") as src, Path(out_path).open("wb") as dst:
        for raw in src:
            line = raw.decode("utf-8", errors="surrogateescape").rstrip("\r\n")
            ending = raw[len(raw.rstrip(b"\r\n")):]
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                new, c = anonymize_text(line, pseudonymizer, entities)
                counts.update(c)
            else:
                # first gather names over all fields of the record, so a signature name is also
                # replaced in the agent's greeting
                texts: list[str] = []

                def collect(s: str, texts: list[str] = texts) -> str:
                    texts.append(s)
                    return s

                for p in paths:
                    _apply_at_path(record, p, collect)
                known = set().union(*(names_in(t) for t in texts)) if _wants_names(entities) else set()

                def replace(s: str, known: set[str] = known) -> str:
                    new, c = anonymize_text(s, pseudonymizer, entities, known_names=known)
                    counts.update(c)
                    return new

                for p in paths:
                    record = _apply_at_path(record, p, replace)
                new = json.dumps(record, ensure_ascii=False)
            dst.write(new.encode("utf-8", errors="surrogateescape") + ending)
            n += 1
    return n, counts


def load_key(env_var: str = "RETUNE_PII_KEY") -> tuple[bytes, bool]:
    """The pseudonymization key from the environment, and whether it is the development default (unset)."""
    value = os.environ.get(env_var, "")
    if not value:
        return DEV_KEY, True
    return value.encode(), False
