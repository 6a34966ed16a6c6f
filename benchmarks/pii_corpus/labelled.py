"""A labelled message built piece by piece, so every PII span and hard negative is known exactly."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import phonenumbers


@dataclass
class Labelled:
    text: str = ""
    pii: list[list] = field(default_factory=list)  # [entity, start, end]
    negatives: list[list] = field(default_factory=list)  # [kind, start, end]

    def add(self, piece: str, pii: str | None = None, negative: str | None = None) -> Labelled:
        start = len(self.text)
        self.text += piece
        if pii:
            self.pii.append([pii, start, len(self.text)])
        if negative:
            self.negatives.append([negative, start, len(self.text)])
        return self

    def to_json(self) -> dict:
        return {"text": self.text, "pii": self.pii, "negatives": self.negatives}


def luhn_complete(body: str) -> str:
    """body + the Luhn check digit."""
    for d in "0123456789":
        total = 0
        for i, ch in enumerate(reversed(body + d)):
            n = int(ch)
            if i % 2 == 1:
                n = n * 2 - 9 if n > 4 else n * 2
            total += n
        if total % 10 == 0:
            return body + d
    raise AssertionError("unreachable")


def luhn_break(body: str) -> str:
    """body + a digit that makes the number fail Luhn (gift cards, loyalty numbers)."""
    good = luhn_complete(body)[-1]
    return body + str((int(good) + 3) % 10)


def iban_for(country: str, bban: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def random_phone(r: random.Random, region: str, kind=phonenumbers.PhoneNumberType.MOBILE):
    """A valid number of the region (its example number with randomized trailing digits), or None."""
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    if example is None:
        return None
    national = str(example.national_number)
    for _ in range(50):
        keep = max(2, len(national) - 5)
        candidate = national[:keep] + "".join(r.choice("0123456789") for _ in range(len(national) - keep))
        number = phonenumbers.parse(f"+{example.country_code}{candidate}")
        if phonenumbers.is_valid_number(number):
            return number
    return example
