"""Realistic, format-preserving fake values for PII, drawn deterministically from a keyed HMAC stream."""

# A model fine-tuned on <EMAIL_3f2a> placeholders learns to write placeholders; with surrogates it sees text of
# the usual shape instead. Each surrogate is a pure function of (key, entity, normalized value), so one value
# gets one surrogate across the dataset and conversations stay coherent. Fakes are chosen so they cannot be
# somebody's real data where a reserved range exists: e-mails at example.com/.org/.net (RFC 2606), IPs in the
# documentation ranges (RFC 5737 / RFC 3849), US SSNs with area 9xx (never issued).

from __future__ import annotations

import hashlib
import hmac
import re

FIRST_NAMES = ["Alex", "Sam", "Robin", "Kim", "Jordan", "Maria", "Jonas", "Lea", "Lucas", "Emma", "Noah", "Mia",
               "Paul", "Clara", "Hugo", "Sofia", "Elena", "David", "Laura", "Martin", "Julia", "Pablo", "Marie",
               "Felix", "Nora", "Oscar", "Ines", "Leon", "Alba", "Louis"]
LAST_NAMES = ["Smith", "Miller", "Weber", "Schmidt", "Martin", "Bernard", "Garcia", "Lopez", "Brown", "Wagner",
              "Dubois", "Moreno", "Fischer", "Petit", "Ruiz", "Taylor", "Becker", "Durand", "Romero", "Wilson",
              "Keller", "Laurent", "Navarro", "Clarke", "Hoffmann", "Roux", "Torres", "Walsh", "Koch", "Leroy"]
STREET_NAMES = ["Oak", "Maple", "Linden", "Cedar", "Birch", "Willow", "Rose", "Mill", "Park", "Lake", "River",
                "Garden", "Meadow", "Orchard", "Forest", "Hill", "Spring", "Bridge"]
_STREET_SUFFIX = re.compile(r"(?i)(straße|strasse|str\.|weg|gasse|allee|platz|ring|damm|ufer|straat|gracht|laan|"
                            r"plein|kade|singel|dijk)$")
_KEEP_WORDS = re.compile(
    r"(?i)^(?:street|st\.?|road|rd\.?|avenue|ave\.?|av\.?|lane|ln\.?|drive|dr\.?|boulevard|blvd\.?|bd|way|court|"
    r"ct\.?|place|pl\.?|terrace|close|crescent|square|parkway|row|gardens|hill|rue|calle|c/|avenida|avda\.?|paseo|"
    r"plaza|camino|via|quai|chemin|allée|impasse|cours|de|du|des|la|le|del|los|las|am|an|der|im|in|auf|zum|zur|"
    r"flat|apt\.?|apartment|unit|suite|bis|ter|dcha\.?|izq\.?|izda\.?|izquierda|derecha|bajo|ático|piso|puerta|"
    r"pta\.?|esc\.?|carrer|corso|viale|piazza|via|avda\.?|av|bd|rte|route|chaussée|apt)$"
)
_SECRET_PREFIX = re.compile(r"^(?:sk-(?:proj-|ant-)?|[spr]k_(?:live|test)_|gh[pousr]_|github_pat_|glpat-|AKIA|ASIA|"
                            r"xox[abposr]-|AIza|eyJ)")


class _Stream:
    """Deterministic pseudo-random integers from HMAC-SHA256(key, label, counter)."""

    def __init__(self, key: bytes, label: str):
        self._key, self._label, self._counter, self._buf = key, label.encode(), 0, b""

    def _byte(self) -> int:
        if not self._buf:
            self._buf = hmac.new(self._key, self._label + b"\x00" + str(self._counter).encode(),
                                 hashlib.sha256).digest()
            self._counter += 1
        b, self._buf = self._buf[0], self._buf[1:]
        return b

    def below(self, n: int) -> int:
        value = (self._byte() << 16) | (self._byte() << 8) | self._byte()
        return value % n

    def choice(self, items):
        return items[self.below(len(items))]

    def digits(self, n: int, first_nonzero: bool = False) -> str:
        out = [str(self.below(10)) for _ in range(n)]
        if first_nonzero and out:
            out[0] = str(1 + self.below(9))
        return "".join(out)


_PARTICLES = frozenset("van von der den de del della la le di da dos das do du ten ter zu vom ó ní al bin ibn abu "
                       "dal y".split())


def _english_ordinal(n: int) -> str:
    return "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _same_case(template: str, value: str) -> str:
    if template.isupper() and any(c.isalpha() for c in template):
        return value.upper()
    if template.islower():
        return value.lower()
    return value


def _redigit(value: str, stream: _Stream, keep: int = 0) -> str:
    """The value with every digit after the first `keep` digits replaced; separators and letters stay."""
    out, seen = [], 0
    for ch in value:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= keep else str(stream.below(10)))
        else:
            out.append(ch)
    return "".join(out)


def _luhn_fix(digits: str) -> str:
    from retune.pii import luhn_valid

    for d in "0123456789":
        if luhn_valid(digits[:-1] + d):
            return digits[:-1] + d
    return digits


def _apply_digits(template: str, digits: str) -> str:
    it = iter(digits)
    return "".join(next(it) if ch.isdigit() else ch for ch in template)


def surrogate(key: bytes, entity: str, value: str, normalized: str) -> str:
    """A fake value of the same kind and shape as `value` (normalized: its canonical form, for consistency)."""
    s = _Stream(key, f"surrogate\x00{entity}\x00{normalized}")
    from retune.pii import shadow

    # as detection saw it: full-width digits and "＋" → ASCII, zero-width characters dropped, look-alikes folded
    value = shadow(value).text
    ascii_digits = value
    if entity == "EMAIL":
        local = f"{s.choice(FIRST_NAMES)}.{s.choice(LAST_NAMES)}{s.digits(2)}".lower()
        return _same_case(value.split("@")[0], f"{local}@example.{s.choice(['com', 'org', 'net'])}")
    if entity == "PHONE":
        stripped = ascii_digits.lstrip("+( ")
        keep = 0
        if ascii_digits.startswith(("+", "00")):  # the country code and the first digit after it stay
            keep = (2 if stripped.startswith("00") else 0) + 3
        elif stripped.startswith("0"):
            keep = 2  # trunk 0 and the first digit of the area/mobile prefix
        return _redigit(ascii_digits, s, keep)
    if entity == "CARD":
        digits = re.sub(r"\D", "", ascii_digits)
        fake = _luhn_fix(digits[:1] + s.digits(len(digits) - 1))
        return _apply_digits(ascii_digits, fake)
    if entity == "IBAN":
        from retune.pii import _IBAN_LENGTHS

        compact = re.sub(r"[\s-]", "", ascii_digits).upper()
        country = compact[:2] if compact[:2] in _IBAN_LENGTHS else "DE"
        bban = "".join(str(s.below(10)) if c.isdigit() else chr(65 + s.below(26)) for c in compact[4:])
        numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
        fake = f"{country}{98 - int(numeric) % 97:02d}{bban}"
        it = iter(fake)
        out = "".join(ch if ch in " -" else next(it, "") for ch in ascii_digits)
        return out.lower() if value.islower() else out
    if entity == "SSN":
        digits = "9" + s.digits(8)  # area 9xx: never issued
        return _apply_digits(ascii_digits, digits)
    if entity == "NATIONAL_ID":
        if re.fullmatch(r"[A-Za-z]{6}\d{2}[A-Za-z]\d{2}[A-Za-z]\d{3}[A-Za-z]", ascii_digits):  # codice fiscale
            from retune.pii import _CF_ODD

            body = "".join(chr(65 + s.below(26)) for _ in range(6)) + s.digits(2) + s.choice("ABCDEHLMPRST") + \
                f"{1 + s.below(28):02d}" + chr(65 + s.below(26)) + s.digits(3)
            total = sum(_CF_ODD[ch] if i % 2 == 0 else (int(ch) if ch.isdigit() else ord(ch) - 65)
                        for i, ch in enumerate(body))
            return _same_case(ascii_digits, body + chr(65 + total % 26))
        nino = re.fullmatch(r"([A-Za-z]{2})([ ]?)(\d{2})\2(\d{2})\2(\d{2})\2([A-Da-d])", ascii_digits)
        if nino:  # UK National Insurance number: prefix letters of an allocated series, suffix A-D
            sep = nino.group(2)
            return _same_case(ascii_digits, sep.join([s.choice(["AB", "CE", "JG", "KL", "PR", "TW"]), s.digits(2),
                                                      s.digits(2), s.digits(2), s.choice("ABCD")]))
        letters = "TRWAGMYFPDXBNJZSQVHLCKE"
        if ascii_digits[:1].upper() in "XYZ":  # NIE
            prefix, n = ascii_digits[0], s.digits(7)
            letter = letters[int(str("XYZ".index(prefix.upper())) + n) % 23]
            return re.sub(r"\d{7}", n, ascii_digits[:-1]) + _same_case(ascii_digits[-1], letter)
        if ascii_digits[-1:].isalpha():  # DNI
            n = s.digits(8, first_nonzero=True)
            return _apply_digits(ascii_digits[:-1], n) + _same_case(ascii_digits[-1], letters[int(n) % 23])
        body = ascii_digits.replace(" ", "")
        fake_body = body[:1] + s.digits(12)
        return _apply_digits(ascii_digits, fake_body + f"{97 - int(fake_body) % 97:02d}")
    if entity == "IP":
        if ":" in value:
            return f"2001:db8:{s.below(0xffff):x}::{s.below(0xffff):x}"
        return f"{s.choice(['192.0.2', '198.51.100', '203.0.113'])}.{1 + s.below(254)}"
    if entity == "DOB":
        groups = re.findall(r"\d+", ascii_digits)
        fake = []
        for g in groups:
            if len(g) == 4:
                fake.append(str(1950 + s.below(53)))
            elif len(g) == 8:  # 19850314
                fake.append(f"{1950 + s.below(53)}{1 + s.below(12):02d}{1 + s.below(12):02d}")
            else:  # day or month: 1..12 is valid for both, whichever order the writer used
                n = 1 + s.below(12)
                fake.append(f"{n:0{len(g)}d}" if len(g) == 2 else str(n))
        it = iter(fake)
        out = re.sub(r"\d+", lambda _: next(it), ascii_digits)
        # the ordinal written after a day follows the new day: "3rd" → "9th", "1er mars" → "9 mars"
        out = re.sub(r"(?i)(?<!\d)(\d{1,2})(st|nd|rd|th)\b", lambda m: m.group(1) + _same_case(
            m.group(2), _english_ordinal(int(m.group(1)))), out)
        return re.sub(r"(?<!\d)(\d{1,2})er\b", lambda m: m.group() if m.group(1) == "1" else m.group(1), out)
    if entity == "ADDRESS":
        def word(m: re.Match) -> str:
            w = m.group()
            if _KEEP_WORDS.match(w) or (len(w) <= 2 and w.islower()) or w in "ºª°":
                return w
            if w.isupper() and len(w) <= 4 and not w.isdigit():  # postcode parts and state codes: BS1, 4DJ, TX
                return "".join(chr(65 + s.below(26)) if c.isalpha() else c for c in w)
            suffix = _STREET_SUFFIX.search(w)
            if suffix:
                return s.choice(STREET_NAMES) + ("-" if w[:suffix.start()].endswith("-") else "") + suffix.group(1)
            return s.choice(STREET_NAMES)

        out = re.sub(r"[^\W\d_ºª][\w'’.-]*", word, ascii_digits)
        return re.sub(r"\d+", lambda m: s.digits(len(m.group()), first_nonzero=True), out)
    if entity == "NAME":
        # word by word, so "Anna" in a greeting and "Anna Berg" in the signature stay the same person; in
        # "BERG, Anna" the words before the comma are the family name; particles and initials keep their shape
        family_first = "," in value
        out, given_done = [], False
        for w in value.split():
            bare = w.rstrip(",")
            if bare.casefold() in _PARTICLES:
                out.append(w)
                continue
            if re.fullmatch(r"[^\W\d_]\.", bare):  # an initial
                ws = _Stream(key, f"surrogate\x00NAME\x00{bare.casefold()}")
                out.append(chr(65 + ws.below(26)) + "." + w[len(bare):])
                given_done = True
                continue
            is_family = w.endswith(",") or (given_done and not family_first) or (family_first and not out)
            parts = []
            for part in bare.split("-"):  # Jean-Baptiste, Schulze-Hahn
                ws = _Stream(key, f"surrogate\x00NAME\x00{part.casefold()}")
                parts.append(_same_case(part, ws.choice(LAST_NAMES if is_family else FIRST_NAMES)))
            out.append("-".join(parts) + w[len(bare):])
            given_done = given_done or not is_family
        return " ".join(out)
    if entity == "SECRET":
        prefix = _SECRET_PREFIX.match(value)
        head = prefix.group() if prefix else ""
        body = []
        for ch in value[len(head):]:
            if ch.isdigit():
                body.append(str(s.below(10)))
            elif ch.islower() and ch.isascii():
                body.append(chr(97 + s.below(26)))
            elif ch.isupper() and ch.isascii():
                body.append(chr(65 + s.below(26)))
            else:
                body.append(ch)
        return head + "".join(body)
    return f"<{entity}>"
