"""Find personal data in text with validated recognizers; replace it with keyed, consistent pseudonyms."""

# Entities, in overlap priority:
#   SECRET   API keys by prefix (sk-, ghp_, AKIA, xoxb-, JWTs, private keys), credentials in URLs (user:pass@,
#            token query parameters), high-entropy values right after key/token/secret/password (en/de/fr/es),
#            long random-looking tokens (mixed case and digits) anywhere
#   EMAIL    address syntax
#   IBAN     country length + mod-97
#   CARD     Luhn + issuer prefix (IIN) and the issuer's lengths
#   SSN      US social security number: area/group/serial rules
#   NATIONAL_ID  Spanish DNI/NIE (check letter), French NIR (mod-97 key)
#   DOB      a date right after "born on", "DOB", "date of birth", "geboren am", "né le", "nacido el", ...
#   IP       IPv4 octets / IPv6 via the stdlib `ipaddress`
#   PHONE    candidates by regex and shape (a + or 00, a trunk 0, the NANP shape or a cue word), then the
#            `phonenumbers` numbering plans: international forms of any region, national forms of a list of
#            regions, any region after a cue word ("tél.", "meine Nummer")
#   ADDRESS  "12 Main Street", "Flat 3, 4 Elm Rd", "Hauptstraße 5", "Am Markt 3", "45 rue de Rivoli",
#            "Calle Mayor 15, 2º B", "C/ Alcalá 42"
#   NAME     contextual ("my name is X", "Hi X,", "Regards,\nX", form fields "Kunde: X", ...), given names from a
#            lexicon (not after "my"/"the"/..., not before "Support"/"GmbH"/...), a spaCy model when configured
#            (pii.ner_model); carried to the other turns. ALL CAPS / all-lower-case text is title-cased first.
# Structured entities are validated, so order numbers, SKUs, tracking numbers, versions, prices, timestamps
# and non-Luhn 16-digit numbers survive. Detection runs on a shadow copy of the text (NFKC, zero-width
# characters removed, look-alike letters and non-ASCII digits folded) and the spans are mapped back, so
# "4111\u200b1111..." or a Cyrillic "а" inside an e-mail address is still found.
# A placeholder is <ENTITY_xxxxxxxx>: 8 hex chars of HMAC-SHA256(key, entity + normalized value); with
# replacement "surrogate" it becomes a realistic fake of the same shape (retune.pii_surrogate). Spans
# inside an existing placeholder are never matched, and anonymize_text repeats until nothing is found, so
# anonymizing twice changes nothing. A record whose detection exceeds its time budget is replaced whole
# by <REDACTED_xxxxxxxx> (fail closed: a slow record must not leak).

from __future__ import annotations

import bisect
import hmac
import html.entities
import ipaddress
import math
import operator
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import phonenumbers

from retune.errors import ConfigError

if TYPE_CHECKING:  # pyarrow only where tables are anonymized: the engine itself runs without it
    import pyarrow as pa

ALL_ENTITIES = (  # in overlap priority
    "SECRET", "EMAIL", "IBAN", "CARD", "SSN", "NATIONAL_ID", "DOB", "IP", "PHONE", "ADDRESS", "NAME",
)
PLACEHOLDER_PATTERN = (
    r"<(?:SECRET|EMAIL|IBAN|CARD|SSN|NATIONAL_ID|DOB|IP|PHONE|ADDRESS|NAME|REDACTED)_[0-9a-f]{8}>"
)
_PLACEHOLDER = re.compile(PLACEHOLDER_PATTERN)
# Only for local development: a run with this key says so (load_key returns is_dev_default=True).
DEV_KEY = b"retune-dev-key-NOT-SECRET"


@dataclass(frozen=True)
class PiiMatch:
    entity: str
    start: int
    end: int
    value: str


@dataclass(frozen=True)
class PiiOptions:
    """Knobs of the engine (PiiConfig carries them in the YAML)."""

    default_region: str = "US"  # phone numbers written without a country code are read in this region first
    # national forms with a trunk 0 ("0151 ...", "06 12 ...") are accepted when valid in one of these
    phone_regions: tuple[str, ...] = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "AT", "CH", "IE")
    # "possible": the length fits the region's numbering plan; "valid": also in an allocated range
    # (stricter, but misses new ranges and the fictional ranges used in test data)
    phone_leniency: str = "possible"
    max_seconds_per_record: float = 2.0  # over it, the record is redacted whole
    # "placeholder": <EMAIL_3f2a1b9c>; "surrogate": a realistic fake of the same shape (retune.pii_surrogate)
    replacement: str = "placeholder"
    # a spaCy pipeline the user installed (package name or path, e.g. "en_core_web_sm"): its PERSON/PER entities
    # are added to the NAME recognizer. None: rules and lexicons only. Never downloaded.
    ner_model: str | None = None

    def __post_init__(self) -> None:
        unknown = [r for r in (self.default_region, *self.phone_regions)
                   if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ConfigError(f"unknown phone region(s): {', '.join(unknown)} (use ISO codes such as US, DE)")
        if self.phone_leniency not in ("possible", "valid"):
            raise ConfigError("pii.phone_leniency must be 'possible' or 'valid'")
        if self.max_seconds_per_record <= 0:
            raise ConfigError("pii.max_seconds_per_record must be positive")
        if self.replacement not in ("placeholder", "surrogate"):
            raise ConfigError("pii.replacement must be 'placeholder' or 'surrogate'")
        if self.ner_model:
            _check_ner_model(self.ner_model)

    @classmethod
    def from_config(cls, cfg: object) -> PiiOptions:
        """From a PiiConfig (any object with the same attribute names)."""
        return cls(
            default_region=cfg.default_region,
            phone_regions=tuple(cfg.phone_regions),
            phone_leniency=cfg.phone_leniency,
            max_seconds_per_record=cfg.max_seconds_per_record,
            replacement=getattr(cfg, "replacement", "placeholder"),
            ner_model=getattr(cfg, "ner_model", None),
        )


DEFAULT_OPTIONS = PiiOptions()


# --- optional NER (spaCy, only when the user installed it) ---------------------------------------------------
def _check_ner_model(name: str) -> None:
    """A one-line ConfigError unless spaCy and the model are installed (nothing is ever downloaded)."""
    import importlib.util

    if importlib.util.find_spec("spacy") is None:
        raise ConfigError(f"pii.ner_model is {name!r} but spaCy is not installed: pip install spacy and the model "
                          "package, or set pii.ner_model to null")
    if not Path(name).is_dir() and importlib.util.find_spec(name) is None:
        raise ConfigError(f"pii.ner_model: the spaCy model {name!r} is not installed (install its package, e.g. "
                          f"pip install {name.replace('_', '-')}, or give a model directory, or set it to null)")


@lru_cache(maxsize=4)
def _ner_pipeline(name: str):
    import spacy

    _check_ner_model(name)
    # only the entity recognizer is needed: the parser and lemmatizer would triple the cost
    return spacy.load(name, exclude=["parser", "lemmatizer", "textcat"])


@lru_cache(maxsize=4096)
def _ner_names(name: str, text: str) -> tuple[tuple[int, int], ...]:
    """Spans of person names the model finds, minus words the rules know are not names."""
    spans = []
    for ent in _ner_pipeline(name)(text).ents:
        if ent.label_ not in ("PERSON", "PER"):
            continue
        words = ent.text.split()
        if not words or not ent.text[:1].isupper() or any(w.lower().strip(".,") in _NOT_NAMES for w in words):
            continue
        spans.append((ent.start_char, ent.end_char))
    return tuple(spans)


class PiiTimeout(Exception):
    """Detection in one record took longer than its budget."""


# --- shadow copy ---------------------------------------------------------------------------------
# Characters that render as nothing, and look-alikes NFKC keeps (Cyrillic/Greek letters shaped like Latin).
_ZERO_WIDTH = frozenset("\u00ad\u034f\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064"
                        "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")
_CONFUSABLES = {
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j", "ѕ": "s",
    "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M",
    "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ο": "o", "ν": "v", "ρ": "p", "τ": "t", "υ": "u", "ι": "i", "κ": "k", "Α": "A", "Β": "B",
    "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T",
    "Υ": "Y", "Χ": "X", "ɡ": "g", "ı": "i", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-",
}
_NEEDS_FOLD = re.compile(
    "[" + "".join(sorted(_ZERO_WIDTH | set(_CONFUSABLES))) + r"]|(?![0-9])\d"
)


@dataclass(frozen=True)
class _Shadow:
    """The text detection runs on, and for each of its characters the original span it came from."""

    text: str
    starts: list[int] | None = None  # None: the shadow is the original
    ends: list[int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def _fold(cluster: str) -> str:
    out = []
    for ch in unicodedata.normalize("NFKC", cluster):
        if ch in _ZERO_WIDTH:
            continue
        if ch in _CONFUSABLES:
            ch = _CONFUSABLES[ch]
        elif not ch.isascii() and ch.isdecimal():
            ch = str(unicodedata.decimal(ch))
        out.append(ch)
    return "".join(out)


# HTML character references ("+49&nbsp;30 ...", "anna&#64;example.com", "Ren&eacute;") and the percent-escapes of
# "@", "+" and space in URL-encoded logs ("email=anna%40example.com") are read as the characters they stand for
_ESCAPE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z][A-Za-z0-9]{1,31}));|%(40|2[bB]|20)")
_PERCENT = {"40": "@", "2b": "+", "2B": "+", "20": " "}


def _unescape(m: re.Match) -> str | None:
    if m.group(1) or m.group(2):
        code = int(m.group(1)) if m.group(1) else int(m.group(2), 16)
        return chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else None
    if m.group(3):
        return html.entities.html5.get(m.group(3) + ";")
    return _PERCENT[m.group(4)]


_ASCII_RUN = re.compile(r"[\x00-\x7f]+")
_ASCII_RUN_NO_ESCAPE = re.compile(r"[\x00-\x24\x27-\x7f]+")  # "%" and "&" may start an escape


@lru_cache(maxsize=512)  # names_in, each detection round and the replacement ask for the same texts
def shadow(text: str) -> _Shadow:
    """NFKC + zero-width removal + look-alike folding + HTML/percent escapes, with offsets back into `text`."""
    escaped = ("&" in text or "%" in text) and _ESCAPE.search(text) is not None
    plain = text.isascii() or (unicodedata.is_normalized("NFKC", text) and not _NEEDS_FOLD.search(text))
    if plain and not escaped:
        return _Shadow(text)
    if plain:  # only escapes to read: copy the stretches between them whole
        parts, starts_, ends_, pos = [], [], [], 0
        for m in _ESCAPE.finditer(text):
            decoded = _unescape(m)
            if decoded is None:
                continue
            decoded = _fold(decoded)  # a zero-width character folds to nothing
            parts.append(text[pos:m.start()])
            starts_.extend(range(pos, m.start()))
            ends_.extend(range(pos + 1, m.start() + 1))
            parts.append(decoded)
            starts_.extend([m.start()] * len(decoded))
            ends_.extend([m.end()] * len(decoded))
            pos = m.end()
        parts.append(text[pos:])
        starts_.extend(range(pos, len(text)))
        ends_.extend(range(pos + 1, len(text) + 1))
        return _Shadow("".join(parts), starts_, ends_)
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    ascii_run = _ASCII_RUN_NO_ESCAPE if escaped else _ASCII_RUN
    while i < n:
        run = ascii_run.match(text, i)
        if run:  # ASCII folds to itself: the whole stretch at once (but not a base letter of a following accent)
            j = run.end()
            if j < n and unicodedata.combining(text[j]):
                j -= 1
            if j > i:
                chars.append(text[i:j])
                starts.extend(range(i, j))
                ends.extend(range(i + 1, j + 1))
                i = j
                continue
        if escaped and text[i] in "&%":
            m = _ESCAPE.match(text, i)
            decoded = _unescape(m) if m else None
            if decoded is not None:
                for ch in _fold(decoded):
                    chars.append(ch)
                    starts.append(i)
                    ends.append(m.end())
                i = m.end()
                continue
        j = i + 1
        while j < n and unicodedata.combining(text[j]):  # a base letter and its accents normalize together
            j += 1
        for ch in _fold(text[i:j]):
            chars.append(ch)
            starts.append(i)
            ends.append(j)
        i = j
    return _Shadow("".join(chars), starts, ends)


# --- SECRET --------------------------------------------------------------------------------------
_SECRET_TOKEN = re.compile(
    r"(?=[spgrAxe-])(?:(?<![\w-])(?:"
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
    r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}"  # GitHub
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT: base64url '{"' header and claims
    r")(?![\w-])"
    r"|-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]{0,8000}?-----END (?:[A-Z]+ )*PRIVATE KEY-----)"
)
_URL = re.compile(
    r"(?i)\b(?:https?|s?ftps?|ssh|git|wss?|postgres(?:ql)?|mysql|mongodb(?:\+srv)?|rediss?|amqps?|smtps?|ldaps?|"
    r"smb|cifs|nfs|imaps?|pop3s?|mqtts?|rtsps?|svn|rsync|davs?|webdavs?)"
    r"://[^\s<>\"'`]+"
)
_URL_SCHEME_BEFORE = re.compile(
    r"(?i)\b(?:https?|s?ftps?|ssh|git|wss?|postgres(?:ql)?|mysql|mongodb(?:\+srv)?|rediss?|amqps?|smtps?|ldaps?|"
    r"smb|cifs|nfs|imaps?|pop3s?|mqtts?|rtsps?|svn|rsync|davs?|webdavs?)$"
)


@lru_cache(maxsize=64)  # the SECRET and PHONE recognizers both ask
def _urls(text: str) -> tuple[tuple[int, int], ...]:
    """The spans _URL.finditer would give, found from each "://" (a case-insensitive scan of the whole text for
    the schemes costs more than the text has "://")."""
    spans: list[tuple[int, int]] = []
    pos = 0
    i = text.find("://")
    while i != -1:
        scheme = _URL_SCHEME_BEFORE.search(text, max(pos, i - 12), i)
        if scheme:
            url = _URL.match(text, scheme.start())
            if url:
                spans.append(url.span())
                pos = url.end()
        i = text.find("://", max(i + 1, pos))
    return tuple(spans)


_URL_USERINFO = re.compile(r"://([^/?#@\s:]*(?::[^/\s]*)?)@(?=[\w\[])")
_URL_SECRET_PARAM = re.compile(
    r"(?i)[?&#;](?:[\w.-]*(?:token|secret|signature|credential|passwor[dt]|api_?key)|auth|authorization|"
    r"apikey|key|passwd|pwd|pass|sig|session|sessionid|session_id|sid|jwt|code|otp|magic|t|reset|invite|hash|"
    r"email|e-?mail|mail|e|user|username|login|u|phone|tel)=([^&#\s]{3,})"
)
# a token in the path after a word saying what it unlocks (/reset/<token>), and a user name or e-mail after a
# word naming the person (/users/jane.doe/)
_URL_SECRET_PATH = re.compile(
    r"(?i)/(?:reset(?:[-_]password)?|magic(?:[-_]link)?|verify|verification|confirm|confirmation|activate|"
    r"activation|invite|invitation|unsubscribe|token|login|auth|signin|sign-in|share|s|dl|download)/"
    r"(?:[A-Za-z0-9_-]{1,12}/)?([A-Za-z0-9_-]{16,200})(?![\w-])"  # (Django: /reset/<uid>/<token>/)
)
# a person's profile on a social network: the user name is the path
_SOCIAL_PROFILE = re.compile(
    r"(?i)^https?://(?:[a-z]{2,3}\.|www\.|m\.)?(?:linkedin\.com/in|(?:twitter|x|facebook|instagram|threads|"
    r"mastodon\.social)\.(?:com|net)|tiktok\.com|mastodon\.social)/@?([\w.-]{2,60})(?=[/?#]|$)"
)
_NOT_PROFILE = frozenset("""
    share sharer help about login home intent hashtag search settings i explore watch policies legal privacy pages
    groups events company companies jobs feed messages notifications p reel reels stories tv orgs organizations
    features pricing marketplace topics trending enterprise sponsors login signup join
""".split())
_URL_USER_PATH = re.compile(r"(?i)/(?:users?|u|profiles?|customers?|members?|accounts?|people|~)/([^/?#\s]{3,64})")
_KEYWORD_SECRET = re.compile(
    r"(?i)(?=[pascbtrjkmswh _-])\b(?:(?P<pw>password|passwd|pwd|passcode|passwort|mot de passe|contraseña|kennwort|"
    r"senha|palavra[ -]passe|wachtwoord|parola d'ordine|hasło|haslo|heslo|lösenord|passord|adgangskode|"
    r"salasana|(?:pw|ww|mdp|clave|pass)(?![\w]))"
    r"|(?P<key>api[ _-]?key|apikey|access[ _-]?key|secret(?:[ _-]?key)?|client[ _-]?secret|"
    r"(?:auth|access|api|bearer|refresh)?[ _-]?token|private[ _-]?key|jeton|cl[ée](?:[ _-]?api)?|"
    r"clave(?:[ _-]?api)?|schlüssel|api[ _-]?schlüssel|key))"
    # a word between the cue and its colon ("contraseña actual:", "new password:"), a verb and a colon ("lautet:")
    r"(?:(?:[ \t]+[^\W\d_]{2,12}){1,3}(?=[ \t]*[:=]|[ \t]+(?:is|was|ist|war|est|es|è|é|era|lautet)[ \t]))?"
    r"[\"']?(?:[ \t]*(?:is|was|=|:|ist|est|es|lautet|è|é|e|era|->|→|=>)[ \t]*:?[ \t]*|[ \t]+)[\"'`]?"
    r"(?P<value>[^\s\"'`<>,;&]{6,200})"
    r"|\bbearer[ \t]+(?P<bearer>[A-Za-z0-9._~+/=-]{16,})"
    r"|\bauthorization:[ \t]*basic[ \t]+(?P<basic>[A-Za-z0-9+/]{8,}={0,2})"
)
_COMMON_WORDS = frozenset("""
    expired invalid incorrect wrong required missing reset changed updated correct empty unknown revoked
    forgotten protected encrypted strong weak secure mandatory optional hidden sent
""".split())


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def _secret_value_ok(value: str, is_password: bool) -> bool:
    if value.lower() in _COMMON_WORDS or _PLACEHOLDER.fullmatch(value):
        return False
    classes = sum([any(c.islower() for c in value), any(c.isupper() for c in value),
                   any(c.isdigit() for c in value), any(not c.isalnum() for c in value)])
    if is_password:  # people pick weak passwords: a digit, a symbol or mixed case is enough
        return len(value) >= 6 and classes >= 2
    return len(value) >= 12 and classes >= 2 and _entropy(value) >= 3.0


# a long random-looking token (lower, upper and digits mixed) is a credential wherever it stands; identifiers
# people read out (tracking, order numbers) are upper-case or digits only
_RANDOM_TOKEN = re.compile(r"(?<![\w/+=-])[A-Za-z0-9_-]{24,200}(?![\w/+=-])")


_URL_PATH_TOKEN = re.compile(r"/([A-Za-z0-9_-]{24,200})(?=[/?#]|$)")


def _random_token_ok(value: str) -> bool:
    return (any(c.islower() for c in value) and any(c.isupper() for c in value)
            and sum(c.isdigit() for c in value) >= 2 and _entropy(value) >= 4.0)


# credentials in env files and logs, any case: GITHUB_TOKEN=..., stripe_secret_key: ..., DB_PASSWORD="..."
_ENV_SECRET = re.compile(
    r"(?i)\b[a-z][a-z0-9]*(?:_[a-z0-9]+)*_(?:(?P<pw>password|passwd|pass|pwd)|token|key|secret|apikey|credentials?)"
    r"[\"']?[ \t]*[=:][ \t]*[\"'`]?(?P<value>[^\s\"'`<>,;&]{8,200})"
)
# substrings _KEYWORD_SECRET cannot match without (lower-cased): a substring test is far cheaper than its scan
_KEYWORD_SECRET_HINT = ("pass", "pwd", "kennwort", "contrase", "key", "secret", "token", "jeton", "clé", "cle",
                        "clave", "schlüssel", "bearer", "senha", "wachtwoord", "parola", "hasło", "haslo", "heslo",
                        "lösenord", "passord", "adgangskode", "salasana", "pw", "ww:", "ww =", "mdp", "basic")
_IDENTIFIER_SHAPE = re.compile(r"[A-Z]{2,6}[-/#]\d{3,}(?:[-/]\d+)*")
# short or ambiguous password cues ("pw", "clave"): only with a colon or a verb before the value
_SHORT_PASSWORD_CUES = frozenset(("pw", "ww", "mdp", "clave", "pass"))
_ENV_SECRET_HINT = ("_token", "_key", "_secret", "_pass", "_pwd", "_apikey", "_credential")
# distinctive key prefixes in a text written in capitals: GITHUB_PAT_..., XOXP-..., GLPAT-...
_SECRET_TOKEN_ANY_CASE = re.compile(
    r"(?i)(?<![\w-])(?:github_pat_[a-z0-9_]{40,}|gh[pousr]_[a-z0-9]{30,}|glpat-[a-z0-9_-]{20,}|"
    r"xox[abposr]-[a-z0-9-]{10,}|(?:sk|rk)_(?:live|test)_[a-z0-9]{16,})(?![\w-])"
)


# one-time codes after the words that send them, in the seven languages
_OTP = re.compile(
    r"(?i)(?<![\w])(?:(?:verification|confirmation|security|login|sign-in|2fa|mfa|sms|one[- ]time)[ ]code|otp|tan|"
    r"one[- ]time (?:password|passcode|pin)|2fa|bestätigungscode|einmalcode|sicherheitscode|freigabecode|"
    r"code (?:de (?:vérification|confirmation|sécurité)|à usage unique|otp)|"
    r"código (?:de (?:verificación|verificação|confirmación|confirmação|seguridad|segurança|un solo uso)|otp)|"
    r"codice (?:di verifica|otp|di sicurezza)|verificatiecode|eenmalige code|beveiligingscode|"
    r"pin(?:[ -]?(?:code|number|nummer|número|numero))?|pincode|code pin|código pin|codice pin|"
    r"(?:your|il tuo|il suo|je|uw|o seu|o teu|a sua|votre|ton|tu|su|ihr|dein)"
    r"(?:[ ](?!order|promo|discount|voucher|coupon|gift|tracking|postal|post|zip|area|country|product|error|"
    r"status|ref|bestell|rabatt|gutschein|commande|pedido|descuento|ordine|sconto|bestel|korting|encomenda|"
    r"desconto|cupom|cupón)[^\W\d_]{1,12}){0,3}?[ ]"
    r"(?:code|codice|código|codigo|pin|passcode|tan))"
    r"(?![\w])[ \t]*(?:(?:is|was|ist|lautet|est|es|è|é|:|-|–|=|->|→)[ \t]*){0,2}[\"'“]?"
    r"(\d{4,8}|\d{3}[ -]\d{3})(?![\w]|[.,]?[ -]?\d)"
)
_OTP_HINTS = ("code", "otp", "tan", "2fa", "one-time", "one time", "codice", "código", "pin")
# a card's security code (3 or 4 digits) after its name
_CARD_CODE = re.compile(
    r"(?i)(?<![\w])(?:cvv2?|cvc2?|csc|cid|card security code|security code|kartenprüfnummer|prüfnummer|"
    r"cryptogramme(?: visuel)?|código de seguridad|codice di sicurezza|código de segurança|beveiligingscode)"
    r"[ \t]*(?:[:=#-]|is|ist|est|es|è|é)?[ \t]*(\d{3,4})(?![\w]|[.,]\d)"
)
_CARD_CODE_HINTS = ("cvv", "cvc", "csc", "cid", "security code", "prüfnummer", "cryptogramme", "seguridad",
                    "sicurezza", "segurança", "beveiligingscode")
# a session cookie or session id in a header or a log line
_SESSION_VALUE = re.compile(
    r"(?i)(?<![\w-])(?:session(?:[_-]?id)?|sessid|phpsessid|jsessionid|asp\.net_sessionid|sid|connect\.sid|"
    r"auth[_-]?token|remember[_-]?(?:me|token)|csrftoken|xsrf-token|_session)=([^;\s,&\"']{12,})"
)
@lru_cache(maxsize=8)
def _any_of(hints: tuple[str, ...]) -> Callable[[str], re.Match | None]:
    """A search for any of the substrings, as one trie regex: faster than a substring test per hint."""
    return re.compile(_trie_regex(hints)).search


# the key blob of an SSH public key is public: no random-token secret
_SSH_PUBLIC_KEY = re.compile(r"\b(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp\d{3}|sk-ssh-ed25519@openssh\.com)[ ]"
                             r"AAAA[A-Za-z0-9+/]{20,}={0,2}")


# key shapes whose prefixes start with common letters: searched only where a prefix occurs
_SECRET_TOKEN_MORE = re.compile(
    r"(?<![\w-])(?:SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{30,50}"  # SendGrid
    r"|SK[0-9a-f]{32}"  # Twilio API key
    r"|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50,}|hf_[A-Za-z0-9]{30,})(?![\w-])"  # npm, PyPI, Hugging Face
)
_SECRET_TOKEN_MORE_PREFIXES = ("SG.", "SK", "npm_", "pypi-", "hf_")


def _find_secret(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
    for m in _SECRET_TOKEN.finditer(text):
        yield m.start(), m.end()
    if any(map(text.__contains__, _SECRET_TOKEN_MORE_PREFIXES)):
        for m in _SECRET_TOKEN_MORE.finditer(text):
            yield m.start(), m.end()
    if text.isupper():  # shouted text: the prefixes above are case-sensitive
        for m in _SECRET_TOKEN_ANY_CASE.finditer(text):
            yield m.start(), m.end()
    lower = _lower(text)
    if lower is None:
        lower = text.lower()
    # the case-insensitive patterns run on the lower-cased text; values are read from the text itself
    if _any_of(_ENV_SECRET_HINT)(lower):
        for m in _cue_finditer(_ENV_SECRET_LOWER, _ENV_SECRET, text):
            value = text[m.start("value"):m.end("value")].rstrip(".!?)]}")
            if _PLACEHOLDER.match(value):
                continue
            if m.group("pw") is not None:
                ok = _secret_value_ok(value, is_password=True)
            else:  # a key or token value is random-looking: letters and digits, long, varied
                ok = _random_token_ok(value) or (len(value) >= 16 and any(c.isdigit() for c in value)
                                                 and any(c.isalpha() for c in value) and _entropy(value) >= 3.5)
            if ok:
                yield m.start("value"), m.start("value") + len(value)
    public_keys = [m.span() for m in _SSH_PUBLIC_KEY.finditer(text)] if "AAAA" in text else ()
    for m in _RANDOM_TOKEN.finditer(text):
        if _random_token_ok(m.group()) and not any(s <= m.start() < e for s, e in public_keys):
            yield m.start(), m.end()
    if _any_of(_OTP_HINTS)(lower) and _digit_count(text) >= 4:
        for m in _cue_finditer(_OTP_LOWER, _OTP, text):
            yield m.start(1), m.end(1)
    if _any_of(_CARD_CODE_HINTS)(lower):
        for m in _CARD_CODE.finditer(text):
            yield m.start(1), m.end(1)
    if ("sess" in lower or "sid=" in lower or "token=" in lower or "remember" in lower) and "=" in text:
        for m in _SESSION_VALUE.finditer(text):
            value = m.group(1)
            if any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and _entropy(value) >= 3.0:
                yield m.start(1), m.end(1)
    if "://" in text:
        for url_start, url_end in _urls(text):
            url = text[url_start:url_end]
            u = _URL_USERINFO.search(url)
            if u and u.group(1):
                yield url_start + u.start(1), url_start + u.end(1)
            for p in _URL_SECRET_PARAM.finditer(url):
                yield url_start + p.start(1), url_start + p.end(1)
            for p in _URL_SECRET_PATH.finditer(url):
                value = p.group(1)
                if any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and _entropy(value) >= 3.5:
                    yield url_start + p.start(1), url_start + p.end(1)
            for p in _URL_USER_PATH.finditer(url):
                value = p.group(1)
                if not value.isdigit() and any(c in value for c in ".@_%+") and not value.endswith(
                        (".html", ".htm", ".php", ".pdf", ".json", ".xml", ".js", ".css", ".png", ".jpg")):
                    yield url_start + p.start(1), url_start + p.end(1)
            profile = _SOCIAL_PROFILE.match(url)
            if profile and profile.group(1).lower() not in _NOT_PROFILE:
                yield url_start + profile.start(1), url_start + profile.end(1)
            for p in _URL_PATH_TOKEN.finditer(url):  # an unguessable path segment is a capability
                if _random_token_ok(p.group(1)):
                    yield url_start + p.start(1), url_start + p.end(1)
    if not _any_of(_KEYWORD_SECRET_HINT)(lower):
        return
    for m in _cue_finditer(_KEYWORD_SECRET_LOWER, _KEYWORD_SECRET, text):
        if m.group("basic"):
            yield m.start("basic"), m.end("basic")
            continue
        group = "bearer" if m.group("bearer") else "value"
        value = text[m.start(group):m.end(group)].rstrip(".!?)]}")
        if value.endswith(":") or value[:1] in "([{<":  # a word before its colon; "(hidden)", "[redacted]"
            continue
        is_password = m.group("pw") is not None
        if is_password and m.group("pw").lower() in _SHORT_PASSWORD_CUES and not re.fullmatch(
                r"[\"']?[ \t]*(?:(?:is|=|:|ist|est|es|lautet|è|é|e|era|->|→|=>)[ \t]*)+[\"'`]?",
                text[m.end("pw"):m.start(group)]):
            continue  # "la clave del problema: TCK-11293": a short cue, then other words
        if _IDENTIFIER_SHAPE.fullmatch(value):  # "password for order: TCK-11293" names a ticket, not a password
            continue
        if not m.group("bearer") and m.group("key") and not re.search(r"(?:is|was|=|:|ist|est|es|lautet)[ \t]*"
                                                                      r"[\"'`]?$", text[m.end("key"):m.start(group)]):
            is_password = False  # no verb or colon: only a value that looks random
            if not _random_token_ok(value) and not (len(value) >= 16 and _secret_value_ok(value, False)):
                continue
        if m.group("bearer") or _secret_value_ok(value, is_password=is_password):
            yield m.start(group), m.start(group) + len(value)


# --- EMAIL ---------------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@"
    r"(?:[^\W_](?:[\w-]*[^\W_])?\.)+[A-Za-z]{2,24}(?![\w-])"
)


# "anna [at] example [dot] com", "anna(at)example.com": written that way to dodge scrapers, still an address
_EMAIL_OBFUSCATED = re.compile(
    r"(?i)(?<![\w.%+-])[a-z0-9][a-z0-9._%+-]*[ ]?(?:\[at\]|\(at\)|\{at\}|\[@\]|\(@\))[ ]?"
    r"[a-z0-9-]+(?:[ ]?(?:\[dot\]|\(dot\)|\{dot\}|\.)[ ]?[a-z0-9-]+)*[ ]?(?:\[dot\]|\(dot\)|\{dot\}|\.)[ ]?"
    r"[a-z]{2,24}(?![\w-])"
)
_EMAIL_SPELLED = re.compile(
    r"(?i)(?<![\w.%+-])[a-z0-9][a-z0-9._%+-]*[ ]+(?:at|@|arroba|chez|bei)[ ]+[a-z0-9-]+"
    r"(?:[ ]+(?:dot|\.|punto|punkt|point|ponto|punt)[ ]+[a-z0-9-]+)*[ ]+(?:dot|\.|punto|punkt|point|ponto|punt)[ ]+"
    r"[a-z]{2,24}(?![\w-])"
)


# generic top-level domains people write; any two letters are a country's
_GENERIC_TLDS = frozenset("""
    com net org edu gov mil int info biz name pro mobi app dev io ai co me tv cc shop online site store tech xyz
    email cloud club blog live news page web world art design agency digital studio global group company
    solutions services consulting berlin paris london nyc wien koeln hamburg bayern cat eus gal swiss
""".split())


def _email_end(text: str, start: int, end: int) -> int:
    """End of the address without a word glued on by a sentence's full stop: "anna@sfr.fr.dob=...",
    "iturbe@wanadoo.fr.Kontonummer" end after "fr" (the label before is a top-level domain, the last is none)."""
    labels = text[text.index("@", start) + 1:end].split(".")
    if len(labels) >= 3:
        last, before = labels[-1], labels[-2].lower()
        if (len(last) > 2 and last.lower() not in _GENERIC_TLDS
                and (len(before) == 2 and before.isalpha() or before in _GENERIC_TLDS)):
            return end - len(last) - 1
    return end


def _find_email(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
    if "@" in text:
        for m in _EMAIL.finditer(text):
            yield m.start(), _email_end(text, m.start(), m.end())
    lower = text.lower()
    if "[at]" in lower or "(at)" in lower or "{at}" in lower or "[@]" in text or "(@)" in text:
        for m in _EMAIL_OBFUSCATED.finditer(text):
            yield m.start(), m.end()
    if (" dot " in lower or " . " in lower or " punto " in lower or " punkt " in lower or " point " in lower
            or " ponto " in lower or " punt " in lower):
        for m in _EMAIL_SPELLED.finditer(text):
            tld = m.group().rsplit(" ", 1)[-1].lower()
            if len(tld) == 2 or tld in _GENERIC_TLDS:  # "meet at noon dot the office" is prose
                yield m.start(), m.end()


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
_IBAN = re.compile(r"(?<![\w])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}")


def iban_valid(compact: str) -> bool:
    compact = compact.upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum() or not compact.isascii():
        return False
    numeric = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(numeric) % 97 == 1


@lru_cache(maxsize=64)  # asked by most recognizers for the same text
def _digit_count(text: str) -> int:
    if text.isascii():  # ten str.count calls in C beat a Python-level call per character
        return sum(map(text.count, "0123456789"))
    return sum(map(str.isdigit, text))


@lru_cache(maxsize=64)  # the cue searches of most recognizers ask for the same text
def _lower(text: str) -> str | None:
    """The text lower-cased, or None when that changes its length (offsets would no longer line up)."""
    lower = text.lower()
    return lower if len(lower) == len(text) else None


def _lowered(pattern: re.Pattern) -> re.Pattern:
    """A case-insensitive cue pattern compiled case-sensitively, for the lower-cased text: its alternatives are then
    plain literals the regex engine skips by their first character (about 4x faster than "(?i)")."""
    source = pattern.pattern.removeprefix("(?i)")
    if re.search(r"[A-Z]", re.sub(r"\\.|\(\?P<\w+>|A-Z", "", source)) or "(?i" in source:  # [A-Za-z]: harmless
        raise ValueError(f"not all lower case: {source[:40]}")
    return re.compile(source)


_KEYWORD_SECRET_LOWER = _lowered(_KEYWORD_SECRET)
_ENV_SECRET_LOWER = _lowered(_ENV_SECRET)
_OTP_LOWER = _lowered(_OTP)


def _cue_search(lowered: re.Pattern, pattern: re.Pattern, text: str, pos: int, endpos: int) -> re.Match | None:
    """pattern.search(text, pos, endpos) for a case-insensitive pattern, run as `lowered` on the lower-cased text
    (the same offsets; only whether and where it matches is used)."""
    lower = _lower(text)
    return pattern.search(text, pos, endpos) if lower is None else lowered.search(lower, pos, endpos)


def _cue_finditer(lowered: re.Pattern, pattern: re.Pattern, text: str) -> Iterator[re.Match]:
    lower = _lower(text)
    return pattern.finditer(text) if lower is None else lowered.finditer(lower)


def _find_iban(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
    if _digit_count(text) < 8:  # every country's IBAN has at least 8 digits
        return
    pos = 0
    while (m := _IBAN.search(text, pos)) is not None:
        # a failed candidate may have swallowed the start of a real one ("FR92750797 iban LU56-9267-..."): the
        # search goes on right after the candidate's start, a found IBAN's end after its end
        pos = m.start() + 1
        length = _IBAN_LENGTHS.get(m.group()[:2].upper())
        if length is None:
            continue
        # walk the candidate until the country's length of non-space characters is reached
        seen, end = 0, m.start()
        for end in range(m.start(), m.end()):
            if text[end] not in " -":
                seen += 1
                if seen == length:
                    break
        end += 1
        if seen == length and not (end < len(text) and text[end].isalnum()):
            if iban_valid(re.sub(r"[ -]", "", text[m.start():end])):
                pos = end
                yield m.start(), end


# --- CARD ----------------------------------------------------------------------------------------
# one separator between digit groups: space, dot, dash, slash, underscore, a few spaces, " - "
_SEP = r"(?:[ .\-/_]|[ ]{2,4}|[ ]-[ ])"
_CARD = re.compile(
    # the first digit consumed before the look-behinds: a pattern that starts with one character class is searched
    # from the positions that hold one, not tried at every position
    r"\d(?<![\w+#/.,$€£-]\d)(?<!\d[ .-]\d)"
    r"(?:\d{11,18}"  # unspaced: 12-19 digits
    rf"|\d{{3}}{_SEP}\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{1,3}}(?!{_SEP}\d)"  # 19 digits 4-4-4-4-3
    rf"|\d{{3}}{_SEP}\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{1,7}}(?!{_SEP}\d)"  # 4-4-4-4(-ish); mixed separators too
    rf"|\d{{3}}{_SEP}\d{{4}}{_SEP}\d{{4}}(?!{_SEP}\d)"  # 12-digit Maestro 4-4-4
    rf"|\d{{3}}{_SEP}\d{{6}}{_SEP}\d{{4,5}}(?!{_SEP}\d))"  # Amex / Diners 4-6-5
    r"(?![\w-]|[.,]\d)"
)
# "card" starts its word ("Ricarda" is no cue), "karte" ends German compounds too ("Kreditkarte", "EC-Karte")
_CARD_CUE = re.compile(r"(?i)(?:\b(?:card|maestro|carte|tarjeta)\w*|karte\w*|\bcb|(?:debit|credit)\w*|\bcc|visa|"
                       r"mastercard|amex|charged to|paid with|bezahlt mit|payé avec|pagué con)\b[^\n\d]{0,25}$")
_CARD_CUE_LOWER = _lowered(_CARD_CUE)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_issuer(digits: str) -> str | None:
    """The card scheme whose issuer prefix (IIN) and lengths fit these digits, or None."""
    n, p2, p3, p4, p6 = len(digits), int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if (p2 in (36, 38, 39) or 300 <= p3 <= 305 or p4 == 3095) and 14 <= n <= 19:
        return "diners"
    if (p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or 622126 <= p6 <= 622925) and 16 <= n <= 19:
        return "discover"
    if 3528 <= p4 <= 3589 and 16 <= n <= 19:
        return "jcb"
    if 2200 <= p4 <= 2204 and 16 <= n <= 19:
        return "mir"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    if (p2 in (50, 56, 57, 58) or 60 <= p2 <= 69) and 12 <= n <= 19:
        return "maestro"
    return None


def _find_card(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
    if _digit_count(text) < 12:
        return
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if not (12 <= len(digits) <= 19 and luhn_valid(digits)):
            continue
        cued = _cue_search(_CARD_CUE_LOWER, _CARD_CUE, text, max(0, m.start() - 40), m.start()) is not None
        if card_issuer(digits) is None and not (cued and len(digits) >= 13):  # after "card", Luhn is enough
            continue
        # a 12-digit Luhn-valid number is as often a reference as a Maestro card: only with a card word
        if len(digits) == 12 and not cued:
            continue
        yield m.start(), m.end()


# --- SSN -----------------------------------------------------------------------------------------
_SSN = re.compile(r"(\d(?<![\w-]\d)\d{2})([- ])(\d{2})\2(\d{4})(?![\w-]|[.,]\d)")  # (starts with a digit: see _CARD)
_SSN_CUED = re.compile(r"(?i)\b(?:ssn|social sec(?:urity|\.)?(?: number| no\.?| #)?|ss#)[\s:#.]{0,5}(?:is[ ]|was[ ])?"
                       r"(\d{3}[ -]?\d{2}[ -]?\d{4})(?![\w-]|[.,]\d)")
_SSN_CUED_LOWER = _lowered(_SSN_CUED)


def ssn_valid(digits: str) -> bool:
    """US SSA rules: no area 000, 666 or 900-999, no group 00, no serial 0000 (and two famous examples)."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if len(digits) != 9 or area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return digits not in ("078051120", "219099999")


def _find_ssn(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
    if _digit_count(text) < 9:
        return
    for m in _SSN.finditer(text):
        if ssn_valid(m.group(1) + m.group(3) + m.group(4)) and not _cue_search(
            _NOT_PHONE_CUE_LOWER, _NOT_PHONE_CUE, text, max(0, m.start() - 30), m.start()
        ):
            yield m.start(), m.end()
    for m in _cue_finditer(_SSN_CUED_LOWER, _SSN_CUED, text):
        if ssn_valid(re.sub(r"\D", "", m.group(1))):  # digits: the same in the lower-cased text
            yield m.start(1), m.end(1)


# --- NATIONAL_ID ----------------------------------------------------------------------------------
# Spanish DNI (8 digits + check letter) and NIE (X/Y/Z + 7 digits + letter), French social security number
# (NIR: 13 digits + 2-digit key, mod 97; Corsica 2A/2B), all checksum-validated.
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_DNI = re.compile(r"(?<![\w#-])([XYZxyz]?)-?(\d{7,8})(-?[A-Za-z]|[ ][A-Z])(?![\w-])")
_NIR = re.compile(r"([12])(?<![\w-][12])[ ]?(\d{2})[ ]?(\d{2})[ ]?(\d{2}|2[AB])[ ]?(\d{3})[ ]?(\d{3})[ ]?(\d{2})"
                  r"(?![\w-]|[.,]\d)")  # the first digit before the look-behind: the engine skips to digits


def dni_valid(prefix: str, digits: str, letter: str) -> bool:
    if prefix:
        if len(digits) != 7:
            return False
        digits = str("XYZ".index(prefix.upper())) + digits
    elif len(digits) != 8:
        return False
    return _DNI_LETTERS[int(digits) % 23] == letter.upper()


def nir_valid(groups: tuple[str, ...]) -> bool:
    body = "".join(groups[:6])
    key = int(groups[6])
    body = body.replace("2A", "19").replace("2B", "18")  # Corsica counts as 19/18 in the key
    return key == 97 - int(body) % 97


# IDs with a shape of their own are found anywhere: Italian codice fiscale (16 characters, check letter), UK
# National Insurance number written in groups, Belgian national number written with its dots and dash
# both searched from their digits (a regex that starts with a digit skips most positions at once); the letters
# before are checked in Python
_CODICE_FISCALE_TAIL = re.compile(r"\d{2}[ABCDEHLMPRSTabcdehlmprst]\d{2}[A-Za-z]\d{3}[A-Za-z](?![\w])")
_NINO_TAIL = re.compile(r"\d{2}([ ]?)\d{2}\1\d{2}\1[A-Da-d](?![\w-])")
_NINO_LETTERS = re.compile(r"(?i)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]")
_BE_NATIONAL = re.compile(r"\d(?<![\w.-]\d)\d\.\d{2}\.\d{2}[-. ]\d{3}\.\d{2}(?![\w-]|[.,]\d)")
# IDs that are bare digits (Dutch BSN, Portuguese NIF, Canadian SIN, German tax ID, Austrian social insurance
# number, a Belgian national number without dots) only after a word that names an identity number
_ID_CUE = re.compile(
    r"(?i)\b(?:bsn|burgerservicenummer|sofi-?nummer|nif|nie|dni|nipc|contribuinte|sin|social insurance(?: number| no)?|"
    r"nas|steuer-?id|steuerliche|identifikationsnummer|idnr|id-nr|tin|tax id|tax number|steuernummer|"
    r"sv-?n(?:ummer|r)|sozialversicherungs\w*|versicherungsnummer|vsnr|nino|national insurance(?: number| no)?|"
    r"ni (?:number|no)|codice fiscale|c\.f\.|cod\. fiscale|rijksregister\w*|num[ée]ro national|insz|nn|"
    r"id (?:no|number|card)|identity|identit[ée]|identidad|ausweis\w*|personalausweis|pass(?:port)?|reisepass|"
    r"pasaporte|passeport|documento|cpf|pesel|personnummer|personnr|person(?:al)? number|cpr(?:-nummer| nr)?|"
    r"fødselsnummer|henkilötunnus|hetu)\b\.?[^\d\n]{0,20}$"
)
_ID_CUE_LOWER = _lowered(_ID_CUE)
_ID_DIGITS = re.compile(r"\d(?<![\w.,/-]\d)(?:[ .+-]?\d){7,11}(?![\w-]|[.,]\d)")
_CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8,
                    12, 14, 16, 10, 22, 25, 24, 23), strict=True))


def codice_fiscale_valid(value: str) -> bool:
    value = value.upper()
    total = sum(_CF_ODD[ch] if i % 2 == 0 else (int(ch) if ch.isdigit() else ord(ch) - 65)
                for i, ch in enumerate(value[:15]))
    return value[15] == chr(65 + total % 26)


def nino_valid(letters: str) -> bool:
    return letters.upper() not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")


_WEIGHTS_9_TO_2 = (9, 8, 7, 6, 5, 4, 3, 2)


def bsn_valid(d: str) -> bool:  # Dutch "elfproef"
    d = d.zfill(9)
    return len(d) == 9 and (sum(map(operator.mul, map(int, d[:8]), _WEIGHTS_9_TO_2)) - int(d[8])) % 11 == 0


def nif_pt_valid(d: str) -> bool:
    if len(d) != 9 or d[0] not in "1235689":
        return False
    r = 11 - sum(map(operator.mul, map(int, d[:8]), _WEIGHTS_9_TO_2)) % 11
    return int(d[8]) == (0 if r >= 10 else r)


def be_national_valid(d: str) -> bool:
    return len(d) == 11 and int(d[9:]) in (97 - int(d[:9]) % 97, 97 - int("2" + d[:9]) % 97)


def at_svnr_valid(d: str) -> bool:
    if len(d) != 10 or d[0] == "0" or not (1 <= int(d[4:6]) <= 31 and 1 <= int(d[6:8]) <= 12):
        return False
    check = sum(int(c) * w for c, w in zip(d, (3, 7, 9, 0, 5, 8, 4, 2, 1, 6), strict=True)) % 11
    return check == int(d[3])


def de_tax_id_valid(d: str) -> bool:  # ISO 7064 MOD 11,10; one digit of the first ten repeats
    if len(d) != 11 or d[0] == "0" or max(d[:10].count(c) for c in set(d[:10])) not in (2, 3):
        return False
    product = 10
    for c in d[:10]:
        product = ((int(c) + product) % 10 or 10) * 2 % 11
    return (11 - product) % 10 == int(d[10])


def pesel_valid(d: str) -> bool:  # Polish PESEL: weights 1 3 7 9, a month 1-12 (+20, +40, ... by century)
    if len(d) != 11 or not 1 <= int(d[2:4]) % 20 <= 12:
        return False
    total = sum(int(c) * w for c, w in zip(d[:10], (1, 3, 7, 9, 1, 3, 7, 9, 1, 3), strict=True))
    return (10 - total % 10) % 10 == int(d[10])


def _ddmmyy_ok(d: str) -> bool:
    return 1 <= int(d[:2]) <= 31 and 1 <= int(d[2:4]) <= 12


def personnummer_valid(d: str) -> bool:  # Swedish: YYMMDD + 3 digits + a Luhn digit (a century may lead)
    d = d[2:] if len(d) == 12 else d
    return len(d) == 10 and 1 <= int(d[2:4]) <= 12 and 1 <= int(d[4:6]) % 60 <= 31 and luhn_valid(d)


def cpr_valid(d: str) -> bool:  # Danish CPR: DDMMYY + 4 digits (no check digit since 2007): a date only, cued
    return len(d) == 10 and _ddmmyy_ok(d)


_CUED_ID_CHECKS: dict[int, tuple[Callable[[str], bool], ...]] = {
    8: (bsn_valid,), 9: (bsn_valid, nif_pt_valid, luhn_valid), 10: (at_svnr_valid, personnummer_valid, cpr_valid),
    11: (de_tax_id_valid, be_national_valid, pesel_valid), 12: (personnummer_valid,),
}


_SEVEN_DIGITS = re.compile(r"\d{7,}")
_NON_DIGIT = re.compile(r"\D")
# the cue words of _ID_CUE alone: without one anywhere in the text, no window before a number holds one
_ID_CUE_WORDS = re.compile(_ID_CUE.pattern.replace(r"\b\.?[^\d\n]{0,20}$", r"\b"))
_ID_CUE_WORDS_LOWER = _lowered(_ID_CUE_WORDS)


@lru_cache(maxsize=64)
def _has_id_cue(text: str) -> bool:
    return _cue_search(_ID_CUE_WORDS_LOWER, _ID_CUE_WORDS, text, 0, len(text)) is not None


def _dni_candidates(text: str) -> Iterator[re.Match]:
    """_DNI.finditer(text), tried only where its 7-8 digits can start: at a run of 7 or more digits, or one or two
    characters before it (the X/Y/Z and the dash of an NIE). The look-behind of _DNI makes every other position fail,
    but the regex engine would try them all."""
    last = 0
    for run in _SEVEN_DIGITS.finditer(text):
        for pos in (run.start() - 2, run.start() - 1, run.start()):
            if pos >= last:
                m = _DNI.match(text, pos)
                if m:
                    last = m.end()
                    yield m
                    break


def _find_national_id(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
    if _digit_count(text) < 6:  # the fewest: a UK National Insurance number
        return
    for m in _dni_candidates(text):
        if dni_valid(m.group(1), m.group(2), m.group(3)[-1]):
            yield m.start(), m.end()
    for m in _NIR.finditer(text):
        if nir_valid(m.groups()):
            yield m.start(), m.end()
    for m in _CODICE_FISCALE_TAIL.finditer(text):
        start = m.start() - 6
        letters = text[max(0, start):m.start()]
        if (start >= 0 and letters.isalpha() and letters.isascii() and not (start and _is_word_char(text[start - 1]))
                and codice_fiscale_valid(text[start:m.end()])):
            yield start, m.end()
    for m in _NINO_TAIL.finditer(text):
        start = m.start() - 2 - len(m.group(1))
        if start < 0 or not _NINO_LETTERS.fullmatch(text, start, start + 2) or text[start + 2:m.start()] != m.group(1):
            continue
        if start and (_is_word_char(text[start - 1]) or text[start - 1] == "-"):
            continue
        if nino_valid(text[start:start + 2]) and (m.group(1) or (
                _has_id_cue(text) and _cue_search(_ID_CUE_LOWER, _ID_CUE, text, max(0, start - 40), start))):
            yield start, m.end()
    if "." in text:
        for m in _BE_NATIONAL.finditer(text):
            if be_national_valid(re.sub(r"\D", "", m.group())):
                yield m.start(), m.end()
    if not _has_id_cue(text):  # bare digits are an ID only after a cue word: none in the whole text
        return
    for m in _ID_DIGITS.finditer(text):
        digits = _NON_DIGIT.sub("", m.group())
        checks = _CUED_ID_CHECKS.get(len(digits))
        if checks and any(check(digits) for check in checks) and _cue_search(
                _ID_CUE_LOWER, _ID_CUE, text, max(0, m.start() - 40), m.start()):
            yield m.start(), m.end()


# --- DOB -----------------------------------------------------------------------------------------
_MONTHS = (
    r"(?:jan(?:uary|uar|vier)?|feb(?:ruary|ruar)?|f[ée]v(?:rier)?|mar(?:ch|s)?|m[äa]rz|apr(?:il)?|avr(?:il)?|"
    r"may|mai|jun[ei]?|juin|jul[iy]?|juil(?:let)?|aug(?:ust)?|ao[ûu]t|sep(?:t(?:ember|embre)?)?|"
    r"oct(?:ober|obre)?|okt(?:ober)?|nov(?:ember|iembre|embre)?|dec(?:ember)?|d[ée]c(?:embre)?|dez(?:ember)?|"
    r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|diciembre|"
    # it/nl/pt names and the abbreviations of all seven ("gen.", "mrt", "out.", "dic.", "jui")
    r"gen(?:naio)?|febbraio|aprile|mag(?:gio)?|giu(?:gno)?|lug(?:lio)?|ago|set(?:tembre|embro)?|ott(?:obre)?|"
    r"dic|ene|januari|februari|maart|mrt|mei|augustus|janeiro|fevereiro|março|marco|abr|maio|junho|julho|"
    r"out(?:ubro)?|novembro|dezembro|jui)"
)
# any way a date is written: ISO, compact, numeric with 2- or 4-digit years, written months in en/de/fr/es with
# ordinals ("3rd", "1er", "3.", "3º"), "of"/"de" between the parts
_DATE = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"  # 19850314
    r"|\d{1,2}[ \t]?[./-][ \t]?\d{1,2}[ \t]?[./-][ \t]?(?:\d{4}|\d{2})"
    rf"|\d{{1,2}}(?:st|nd|rd|th|er|e|ème|º|°|\.)?[ \t]*(?:of[ \t]+|de[ \t]+)?{_MONTHS}\.?,?[ \t]+(?:del?[ \t]+)?"
    r"(?:\d{4}|'\d{2})"
    rf"|{_MONTHS}\.?[ \t]+(?:the[ \t]+)?\d{{1,2}}(?:st|nd|rd|th)?,?[ \t]+(?:\d{{4}}|'\d{{2}})"
    rf"|\d{{1,2}}[-/]{_MONTHS}\.?[-/](?:\d{{4}}|\d{{2}}))"  # 10-Jan-77, 3/mar/1985
)
_DOB = re.compile(
    r"(?i)(?<![\w])(?:born(?:[ \t]+(?:on|in))?|date[ \t_-]*of[ \t_-]*birth|d\.?[ \t]?o\.?[ \t]?b\.?|"
    r"birth[ \t_-]?date|birth[ \t_-]?day|b-?day|geboren(?:[ \t]+am)?|geburts(?:datum|tag)|"
    r"geb\.?(?:[ \t-]*dat(?:um|\.)?)?|"
    r"n[ée]e?[ \t]+le|date[ \t_-]+de[ \t_-]+naissance|date[ \t]+(?:de[ \t]+)?naiss\.?|ddn|"
    r"fecha[ \t_-]+(?:de[ \t_-]+)?nac(?:imiento|\.)?|f\.[ \t]*(?:de[ \t]+)?nac(?:imiento|\.)?|"
    r"nac[ií]d?[oa]?[ \t]+(?:el|en)|cumpleaños|ich[ \t]+bin[ \t]+am|data[ \t]+di[ \t]+nascita|nat[oa][ \t]+il|"
    r"geboren[ \t]+op|geboortedatum|geb\.?[ \t]*datum|data[ \t_-]+(?:de[ \t_-]+)?nasc(?:imento|\.)?|"
    r"nascid[oa][ \t]+(?:em|a|no[ \t]+dia))"
    r"(?:[ \t]*\([^)\n]{1,20}\))?(?:[ \t]*</?(?:td|th|tr|b|strong|span|dt|dd|label)(?:[ ][^<>]{0,40})?>)*"
    r"(?:[\"'\]]?[ \t]*(?:is|was|ist|war|est|es|era|:|-|–|,|=|\"|')?[ \t]*[\"']?)?[ \t]*"
    r"(?:</?(?:td|th|tr|b|strong|span|dt|dd)(?:[ ][^<>]{0,40})?>[ \t]*)*"
    r"(?:(?:on|the|am|le|el|en|du|del|il|op|em|dia)[ \t]+){0,2}"
    rf"(?P<date>{_DATE})(?![\w])"
)
_DOB_LOWER = _lowered(_DOB)


def _plausible_birth_year(value: str) -> bool:
    if value.isdigit():  # 19850314
        return 1900 <= int(value[:4]) <= date.today().year
    years = [int(y) for y in re.findall(r"\d{4}", value)] or [int(value[-2:])]  # two-digit years are fine
    return all(y < 100 or 1900 <= y <= date.today().year for y in years)


# what the lower-cased text must hold for one of _DOB's cue words to be there: substring tests are far cheaper
# than the case-insensitive scan ("d.o.b." and "née le" take a small regex)
_DOB_HINTS = ("born", "birth", "bday", "b-day", "geb", "naiss", "ddn", "nac", "cumple", "bin", "nasc", "nato", "nata")
_DOB_HINT = re.compile(r"d\.?[ \t]?o\.?[ \t]?b|n[ée]e?[ \t]+le")


def _find_dob(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
    if _digit_count(text) < 3:  # the fewest: "3 Mar '85"
        return
    lower = text.lower()
    if not any(map(lower.__contains__, _DOB_HINTS)) and not _DOB_HINT.search(lower):
        return
    for m in _cue_finditer(_DOB_LOWER, _DOB, text):
        if _plausible_birth_year(text[m.start("date"):m.end("date")]):
            yield m.start("date"), m.end("date")


# --- IP ------------------------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# not after = < > ~ ^ (a version pin like pkg>=3.10.0.0)
_IPV4 = re.compile(rf"(?<![\w.<>~^])(?<![=<>~!]=)(?:{_OCTET}\.){{3}}{_OCTET}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_VERSION_CUE = re.compile(r"(?i)\b(?:version|release|build|firmware|fw|v)[ .:]*$")
_PRIVATE_IPV4 = re.compile(r"10\.|192\.168\.|169\.254\.|172\.(?:1[6-9]|2\d|3[01])\.")
_VERSION_CUE_LOWER = _lowered(_VERSION_CUE)


def _find_ip(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
    if "." in text and _digit_count(text) >= 4:
        for m in _IPV4.finditer(text):
            if m.group().startswith(("127.", "0.")) or _PRIVATE_IPV4.match(m.group()):
                continue  # loopback, "this host" and private networks (10/8, 172.16/12, 192.168/16, link-local)
                # are shared by millions of networks: they identify nobody
            if _cue_search(_VERSION_CUE_LOWER, _VERSION_CUE, text, max(0, m.start() - 20), m.start()):
                continue
            yield m.start(), m.end()
    if "::" in text or text.count(":") >= 7:
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
# Candidates the phonenumbers matcher does not read in the default region: national forms of other regions
# ("0151 2345678", "06 12 34 56 78") and 00-prefixed international ones; phonenumbers validates each.
_PHONE = re.compile(
    r"(?=[\d+(])(?:(?<=tel:)|(?<=callto:)|(?<![\w+#/.,:@$€£-]))(?:"
    r"(?:\+|\b00)\d{7,15}"  # compact international
    r"|(?:(?:\+|\b00)\d{1,3}(?:[ .-]|[ ]{2}|[ ]?[/-][ ]?)?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,10}"
    r"(?:(?:[ .-]|[ ]{2}|[ ]?[/-][ ]?)\d{1,10}){1,6}"  # groups: "0301 / 234 5678", "0039/02 1234 5678", "0151 - 234"
    r"|0\d{2,5}/[ ]?\d{3,10}"  # German style 0171/1234567
    r"|(?:\+|\b00)\d{1,3}[ .-]?\(\d{1,4}\)[ .-]?\d{4,12}"  # +49 (0)30 12345678
    r"|\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"  # (415) 555-0132
    r"|\(0\d{1,4}\)[ .-]?\d{4,10}"  # (030) 1234567
    r"|\d{7,15}"  # compact: national with trunk 0, or any after a cue word
    # not before ":" and a digit: that group is the hour of a time ("08.08.2026 04:06", "0151 2345678 12:30")
    r")(?![\w]|[.,:-]\d)"
)
_DATE_LIKE = re.compile(r"\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}|\d{1,2}[-./ ]\d{1,2}[-./ ]\d{2,4}")
_NANP = re.compile(r"\+?1?[ .-]?\(\d{3}\) ?\d{3}[-. ]\d{4}|(?:\+?1[ .-])?\d{3}([-. ])\d{3}\1\d{4}")
# words right before a number that say it is not a phone number
_NOT_PHONE_CUE = re.compile(
    r"(?i)\b(?:no|nr|order|invoice|ticket|case|ref|reference|grant|account|acct|id|sku|tracking|serial|"
    r"version|build|parcel|shipment|item|part|model|transaction|confirmation|booking|receipt|bestellung|"
    r"commande|pedido|rechnung|factura|facture|auftrag|auftragsnr|bestellnr|kundennr|kundennummer|vertragsnr|"
    r"vertrag|rechnungsnr|ean|gtin|upc|isbn|sendungsnummer|sendung|paket|colis|envío|env[íi]o|seguimiento|"
    r"suivi|réf|referencia|expediente|dossier|vorgang|aktenzeichen|mitgliedsnr|membership|contract|policy|"
    r"police|póliza|imei|s/n|cde|cmd)"
    # a key in JSON or key=value logs: "order_id": "0786617805", orderNo=0151234567, ticket-ref: ...
    r"(?:[_-]?(?:id|no|nr|num|number|ref))?\b\.?[ ]*"
    r"(?:number|nummer|numéro|número|no\.?|nr\.?|n[°º]|n\.º|núm\.?|#)?[ ]*[\"']?[ ]*[:=]?[ ]*[\"']?[ ]*#?$"
)
_NOT_PHONE_CUE_LOWER = _lowered(_NOT_PHONE_CUE)
# words right before a number that say it is a phone number (then no prefix is needed)
_PHONE_CUE = re.compile(
    r"(?i)\b(?:phone|tel|tél|telephone|mobile|cell|whatsapp|call me|reach me|text me|my number|handy|telefon|"
    r"téléphone|portable|teléfono|móvil|movil|fax|(?:meine|unter der) nummer|rufen sie mich|erreichen sie mich|"
    r"mobil|appelez|joindre|joignable|mon numéro|ll[áa]m\w*|mi número|contacto|ring|reach me|rappelez|festnetz|"
    r"call back(?: on)?|callback|call me back|rückruf\w*|rappel|devolver la llamada|"
    r"handy\w*|tlf|telf|m[óo]vil|n[úu]mero de contacto|portable|durchwahl|ruf\w*|t|m|"
    r"cellulare|telefono|chiam\w*|richiam\w*|mobiel|telefoon|bel(?:len)?(?: me)?(?: op)?|telem[óo]vel|ligu\w*)"
    r"\b[^\d\n]{0,15}$"
)
_PHONE_CUE_LOWER = _lowered(_PHONE_CUE)


_SLASH_DATE = re.compile(r"\d{1,4}/\d{1,2}/\d")
# a key=value log field that holds a phone number ("sms.send to=+27711224091", "msisdn=4915123404933")
_PHONE_KEY = re.compile(r"(?i)(?:\b|_)(?:to|msisdn|recipient|phone|phone_?number|tel|mobile|cell|caller|callee|"
                        r"from|number|sms)[ ]?=$")
_PHONE_EXTENSION = re.compile(r"(?i)[ ]?,?[ ]?(?:ext\.?|x|extension|durchwahl|poste|apdo\.?|ext)[ ]?\d{1,5}(?![\w])")


_DIGIT_GROUPS = re.compile(r"\d+")


def _phone_shape_ok(text: str, start: int, end: int) -> bool:
    """Context and shape rules shared by every phone candidate (the number itself is validated elsewhere)."""
    value = text[start:end]
    groups = _DIGIT_GROUPS.findall(value)
    if not groups or _DATE_LIKE.fullmatch(value) or groups[0] == "0" or sum(len(g) == 1 for g in groups) >= 3:
        return False  # dates, decimals and versions (0.3.33), digit tables (0 1 2 3)
    if "/" in value and (value.count("/") > 1 or _SLASH_DATE.match(value)):
        return False  # a date and a time ("08/01/2026 09:50"), a path of numbers
    not_phone = _cue_search(_NOT_PHONE_CUE_LOWER, _NOT_PHONE_CUE, text, max(0, start - 30), start)
    # "no"/"nr" alone name no kind of number: after a phone word ("Tel. Nr.", "phone no:") it is the phone's
    if not_phone and not (not_phone.group().startswith(("no", "nr"))
                          and _cue_search(_PHONE_CUE_LOWER, _PHONE_CUE, text, max(0, start - 40), start)):
        return False
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    # glued to a word, a path or a currency: "0596194f.png", "/id/0151234567", "$1234567", "1234567%"
    if before.isalnum() or before in "#$€£/_@&?" or after.isalnum() or after in "_%€$/":
        return False
    phone_key = before == "=" and _PHONE_KEY.search(text, max(0, start - 16), start) is not None
    if before == "=" and not phone_key:
        return False
    international = value.startswith(("+", "00"))
    trunk = value.startswith(("0", "(0"))
    cued = phone_key or _cue_search(_PHONE_CUE_LOWER, _PHONE_CUE, text, max(0, start - 40), start)
    # plain digit groups without a + or a trunk 0 are order numbers, amounts, ...: only the North
    # American 3-3-4 shape is common enough to accept without a prefix or a cue word
    return bool(international or trunk or cued or _NANP.fullmatch(value))


@lru_cache(maxsize=4096)  # a second detection round (after a neighbour was replaced) asks again
def _valid_somewhere(value: str, options: PiiOptions) -> bool:
    if value.startswith("00"):
        value = "+" + value[2:]
    elif value.startswith("+00"):  # "+0049 ...": both international prefixes at once
        value = "+" + value[3:]
    regions = (None,) if value.startswith("+") else (options.default_region, *options.phone_regions)
    for region in regions:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if options.phone_leniency == "possible":  # the cheap length check first: a valid number is possible
            if phonenumbers.is_possible_number(number) or phonenumbers.is_valid_number(number):
                return True
        elif phonenumbers.is_valid_number(number):
            return True
    return False


_PHONE_SEPARATORS = re.compile(r"[ .\-/]")


def _find_phone(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
    if _digit_count(text) < 7:
        return
    # a number inside a URL is a path segment or an id (a credential in a URL is a SECRET)
    urls = _urls(text) if "://" in text else ()
    # the cheap regex and shape rules first; the numbering-plan check (phonenumbers.parse) only on survivors
    for m in _PHONE.finditer(text):
        start = m.start()
        if urls and any(start < e and s < m.end() for s, e in urls):
            continue
        if start and text[start - 1] == "=" and not _PHONE_KEY.search(text, max(0, start - 16), start):
            continue  # a key=value field that names no phone (id=..., order=...): not tried, nor its prefixes
        if _phone_ok(text, start, m.end(), options):
            ext = _PHONE_EXTENSION.match(text, m.end())  # "ext. 204" identifies the person's own line
            yield start, ext.end() if ext else m.end()
            continue
        # the candidate may run on into a neighbour written with other separators ("+44 20 7946 0958
        # 203.0.113.42"): when the whole does not pass, its prefixes that end where such a neighbour starts are
        # tried, longest first (not inside a chain of one separator such as the order number 026-2661136-38660)
        value = m.group()
        ends = (start + i for i in range(len(value) - 1, 6, -1)
                if value[i] in " .-/" and value[i - 1].isdigit()
                and set(_PHONE_SEPARATORS.findall(value, i + 1)) - set(_PHONE_SEPARATORS.findall(value, 0, i)))
        for end in ends:
            if _phone_ok(text, start, end, options):
                ext = _PHONE_EXTENSION.match(text, end)  # "ext. 204" identifies the person's own line
                yield start, ext.end() if ext else end
                break


def _phone_ok(text: str, start: int, end: int, options: PiiOptions) -> bool:
    value = text[start:end]
    digits = _NON_DIGIT.sub("", value)
    if not 7 <= len(digits) <= 15 or not _phone_shape_ok(text, start, end):
        return False
    # after a cue word ("tél.", "meine Nummer:") a number of a region outside phone_regions counts too
    return (len(digits) >= 8 and (_cue_search(_PHONE_CUE_LOWER, _PHONE_CUE, text, max(0, start - 40), start)
                                  is not None or (start > 0 and text[start - 1] == "="))) or _valid_somewhere(
        value, options)


# --- ADDRESS -------------------------------------------------------------------------------------
_CAP = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+"
_STREET_TYPES = (r"(?:Street|St\.?|Road|Rd\.?|Avenue|Ave\.?|Lane|Ln\.?|Drive|Dr\.?|Boulevard|Blvd\.?|Way|Court|"
                 r"Ct\.?|Place|Pl\.?|Terrace|Close|Crescent|Square|Sq\.?|Parkway|Pkwy\.?|Row|Gardens|Hill|Parade|Mews|"
                 r"Grove|Walk|Rise|View|Green|Circle|Cir\.?|Trail|Highway|Hwy\.?|Park|Quay|Wharf|Yard|Tce|Pde|Cres|Gdns|"
                 r"Esplanade|Esp)")
# 12, 12a, 12-14, 4/2, 7/B, 112 bis
_HOUSE_NO = r"\d{1,4}[a-zA-Z]?(?:[ ]?[-/][ ]?(?:\d{1,4}[a-zA-Z]?|[A-Za-z](?![\w]))){0,2}(?:[ ](?:bis|ter)(?![\w]))?"
_PARTICLES_FR_ES_IT = (r"(?:[ ]+(?i:de la|de las|de los|de l'|del|de|du|des|la|le|les|d'|dei|degli|della|delle|di|"
                       r"da|das|do|dos))?")
_NOT_STREET_WORD = (r"(?:Also|Pls|Plz|Please|Thanks|Thank|Thx|Merci|Danke|Gracias|Bitte|Svp|And|Und|Et|Or|Oder|Ou|"
                    r"Pour|Por|Para|Für|For|Not|Nicht|Pas|Tel|Phone|Mail|Email|Iban|Ref|Order|Call|Ruf|Appel)(?![\w])")
# Three patterns, so each starts with what the regex engine can skip to quickly: a house number (en, fr), a street
# word with a German/Dutch suffix, a street word first (de, es, it, be).
_ADDRESS_NUMBER_FIRST = re.compile(
    # the first digit and its look-behind shared by both forms: a pattern that starts with one character class is
    # searched by the regex engine from the positions that hold one (not tried at every position)
    r"\d(?<![\w#-]\d)(?:"
    # 12 Main Street, 1234 N Maple Ave, 42 West 42nd Street, 14a Queen's Parade
    rf"\d{{0,4}}[A-Za-z]?,?[ ]+(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?[ ]+)?"
    rf"(?:(?:{_CAP}(?:['’]s)?|\d{{1,3}}(?:st|nd|rd|th|St|Nd|Rd|Th))[ ]+){{1,3}}{_STREET_TYPES}"
    r"(?:[ ](?:NE|NW|SE|SW|N|S|E|W)\.?)?"
    r"(?![\w])"
    # 45 rue de Rivoli, 12, bd de la Liberté, 3 bis avenue Jean-Jaurès
    rf"|\d{{0,3}}(?:[ ]?(?:(?i:bis|ter|quater)|[A-Da-d]))?,?[ ]+(?:[Rr]ue|[Aa]venue|[Aa]v\.|"
    rf"[Bb]oulevard|[Bb]d\.?|[Pp]lace|[Qq]uai|[Cc]hemin|[Aa]llée|[Ii]mpasse|[Cc]ours|[Rr]oute|[Rr]te|[Ss]quare|[Cc]alle|[Vv]ia|"
    rf"[Ff]aubourg|[Rr]ésidence|[Ll]otissement|[Cc]hauss[ée]e)"
    # the street's name: one space between its words (a wider gap ends it), and not a word that starts the next
    # sentence in a title-cased shout ("RUE PASTEUR   ALSO #61", "RUE PASTEUR PLS CALL")
    rf"{_PARTICLES_FR_ES_IT}(?:[ ]+{_CAP}(?:-{_CAP})*(?:[ ](?!{_NOT_STREET_WORD}){_CAP}(?:-{_CAP})*){{0,2}}"
    rf"|[ ]+[a-zà-ÿ]{{3,}}(?:-[a-zà-ÿ]{{2,}})*))"
)
_ADDRESS_SUFFIX = re.compile(
    # Hauptstraße 12, Friedrich-Ebert-Straße 3, Keizersgracht 123, Baerlestraat 12-II; the look-ahead (a word, then
    # a house number) rejects most capitalised words at once
    r"[A-ZÀ-ÖØ-Þ](?<![\w-][A-ZÀ-ÖØ-Þ])(?:(?=[\w-]*\.?[ ]+\d)(?:[a-zß-öø-ÿ]+-[A-ZÀ-ÖØ-Þ])*"
    r"[a-zß-öø-ÿ]*(?:straße|strasse|str\.|weg|gasse|allee|platz|ring|damm|ufer|chaussee|steig|pfad|markt|"
    r"-Straße|-Str\.|-Weg|-Platz|-Allee|-Ring|"
    r"straat|gracht|laan|plein|kade|singel|dijk|steeg|hof|gasse|gässli)"
    rf"[ ]+{_HOUSE_NO}(?:-(?:I{{1,3}}|Ii{{1,2}})|[ ]?hs)?(?![\w])"  # 12-II (title-cased: 12-Ii)
    # Lerchenfelder Gürtel 12, Alte Landstraße 3: an adjective and a street word
    r"|[a-zß-öø-ÿ]+[ ]"
    r"(?:Straße|Str\.|Weg|Gasse|Allee|Platz|Ring|Damm|Ufer|Gürtel|Chaussee|Landstraße|Steig)"
    rf"[ ]+{_HOUSE_NO}(?![\w])"
    r"|[a-zß-öø-ÿ]+[ ](?:Gracht|Markt|Straat|Laan|Plein|Kade|Singel|Dijk|Steenweg|Straße|Str\.|Weg|Gasse|Allee|Platz)"
    rf"[ ]+{_HOUSE_NO}(?:-(?:I{{1,3}}|Ii{{1,2}})|[ ]?hs)?(?![\w]))"
)
# "Van Baerlestraat 12", "Sankt-..." : a Dutch or German prefix word before a suffixed street name
_STREET_PREFIX_BEFORE = re.compile(r"(?<![\w-])(?:Van|De|Den|Van der|Van de|Sankt|St\.)[ ]$")
_ADDRESS_WORD_FIRST = re.compile(
    r"(?=[AIZUHVBCcPpRrTtGgSsLlFf])(?:"
    # Am Markt 5, Unter den Eichen 3, Zum Sportplatz 7
    rf"(?<![\w])(?:Laan van|Laan op|Laan der|Am|An [Dd]er|An [Dd]en|Im|In [Dd]er|In [Dd]en|Auf [Dd]er|Auf [Dd]em|"
    rf"Auf [Dd]en|Zum|Zur|"
    rf"Unter [Dd]en|Hinter [Dd]er|Hinter [Dd]em|Vor [Dd]em|Beim|Bei [Dd]er)[ ]+"
    rf"{_CAP}(?:[ ]{_CAP})?[ ]+{_HOUSE_NO}(?![\w])"
    # Calle Mayor 15, 2º B; C/ de la Paz 23, 3º izq.; Via Garibaldi 15; Corso Vittorio Emanuele II 12; Rue de
    # la Loi 16 (Belgium)
    rf"|(?<![\w])(?:[Cc]alle|C/|c/|[Aa]venida|[Aa]vda\.|[Aa]v\.|[Pp]aseo|P[ºo]\.?|[Pp]laza|[Pp]za\.|[Cc]amino|"
    rf"[Rr]onda|[Cc]arrer|[Tt]raves[ií]a|[Cc]arretera|[Cc]tra\.|[Pp]asseig|[Pp]laça|[Rr]ambla|[Gg]lorieta|"
    rf"[Rr]ua|[Tt]ravessa|[Aa]lameda|[Pp]raça|[Vv]ia|[Vv]iale|[Cc]orso|[Pp]iazza|[Pp]iazzale|[Ll]argo|[Vv]icolo|[Ss]trada|[Ll]ungomare|"
    rf"V\.le|P\.za|P\.zza|C\.so|"
    rf"Rue|Avenue|Chaussée|Boulevard)"
    rf"{_PARTICLES_FR_ES_IT}(?:[ ]+(?:{_CAP}|[IVX]{{1,4}}|\d{{1,2}}[ ]de[ ]{_CAP})){{1,4}},?[ ]+(?:n[ºo°][ ]?|n\.[ ]?)?"
    rf"{_HOUSE_NO}"
    r"(?:(?:,?[ ]+|,)(?:\d{1,2}[ºª°oO]?\.?(?:[ ]?(?:[A-Z](?![\w])|(?:izq(?:da|uierda)?|dcha|der(?:echa)?|ext|int)"
    r"\.?))?|\d{1,2}[ºª°]|bajo|ático|entlo\.?|\d{1,2}n[ ]\d{1,2}a|pta\.?[ ]?\d{1,2}|puerta[ ]\d{1,2}|"
    r"esc\.?[ ]?[A-Z0-9]|(?:piano|int\.)[ ]?\d{1,2})(?![\w]))*(?![\w])"
    r")"
)
# after a street: the postcode and town (and the state or country) are part of the address
_TOWN = (rf"(?:(?:(?:New|San|Santa|Santo|São|Saint|Sainte|St\.|Sankt|Den|Bad|Le|La|Les|Los|Las|El|Port|Fort|"
         rf"Mount|Ciudad|Villa|Porto|Castel|Borgo|Sant['’]|Alcalá|Bergen|Aix|Mont|Neu|Alt)[ -]?)?"
         rf"{_CAP}(?:(?:-|[ ](?:am|an der|im|sur|sous|de|del|la|le|en|ob|bei|in|upon|on)[ ]|-(?:sur|le|la|en)-){_CAP})"
         rf"{{0,2}}(?:[ ](?:Heights|Beach|City|Springs|Falls|Park)(?![\w]))?"
         r"|[A-ZÀ-Þ]{2,}(?:[ -][A-ZÀ-Þ]{2,})?)")
# (title-cased too: shouted text is title-cased before the address rules run, "LONDON NW1 6XE" -> "London Nw1 6Xe")
_UK_POSTCODE = r"[A-Z][A-Za-z]?\d[A-Za-z\d]?[ ]?\d[A-Z][A-Za-z]"
_ADDRESS_TAIL = re.compile(
    # (a "<br>" in any case: title-cased text has "<Br/>")
    r"(?:(?:,[ ]*|[ ]+|[ ]*(?:(?i:<br ?/?>)|\r?\n)[ ]*)"  # unit: ", Apt 5", ", Flat 2"
    r"(?i:apt\.?|apartment|flat|unit|suite|ste\.?|#)[ ]?\w{1,5})?"
    r"(?:,[ ]*|[ ]*[·•|][ ]*|[ ]+[-–][ ]+|[ ]+|[ ]*(?:(?i:<br ?/?>)|\r?\n)[ ]*)(?:"
    # 1015 CJ Amsterdam (title-cased: 1015 Cj), 80331 München, D-80331; after a postcode a town in lower case too
    rf"(?:\d{{4}}[ ]?[A-Z][A-Za-z]|(?:[A-Z]{{1,2}}-)?\d{{4,5}})[ ]+(?:{_TOWN}|[a-zß-öø-ÿ]{{3,}}(?:-[a-zß-öø-ÿ]{{2,}})?)"
    r"(?:[ ]\([A-Z][A-Za-z]\)|[ ](?:MI|RM|FI|BO|GE|VE|PD|BS|BG|MB|TS|PI|VR|CT|Mi|Rm|Fi|Bo|Ge|Ve|Pd|Bs|Bg|Mb|Ts|Pi|"
    r"Vr|Ct)(?![\w]))?"  # 50123 Firenze (FI), 20121 Milano MI
    rf"|(?:{_TOWN},?[ ]+)?{_UK_POSTCODE}(?![\w])"  # Bristol BS1 4DJ
    rf"|{_TOWN},[ ]*[A-Z][A-Za-z][ ]+\d{{5}}(?:-\d{{4}})?"  # Austin, TX 78701 (or "Tx", title-cased)
    r"|Dublin[ ]\d{1,2}(?!\d)(?:,?[ ]+[A-Z]\d{2}[ ]?[A-Z0-9]{4}(?![\w]))?"  # Dublin 9, D09 X2Y4
    rf"|(?:{_TOWN},?[ ]+)?[AC-FHKNPRTV-Y]\d{{2}}[ ]?[AC-FHKNPRTV-Y0-9]{{4}}(?![\w])"  # Cork T12 R2NX (Eircode)
    # Fitzroy VIC 3065; Montréal QC H3A 1B9
    rf"|{_TOWN},?[ ]+(?:NSW|VIC|QLD|WA|SA|TAS|ACT|NT|Nsw|Vic|Qld|Wa|Sa|Tas|Act|Nt)[ ]+\d{{4}}(?![\w])"
    rf"|{_TOWN},?[ ]+(?:QC|ON|BC|AB|MB|NS|NB|NL|PE|SK|Qc|On|Bc|Ab|Mb|Ns|Nb|Nl|Pe|Sk)[ ]+"
    r"[A-Z]\d[A-Z][ ]?\d[A-Z]\d(?![\w])"
    rf"|\d{{4}}-\d{{3}}[ ]+{_TOWN}"  # 4050-265 Porto
    r")"
    # and the country after the town
    r"(?:(?:,[ ]*|[ ]+|[ ]*(?:(?i:<br ?/?>)|\r?\n)[ ]*)(?i:Germany|Deutschland|France|Spain|España|Italy|Italia|"
    r"Portugal|Netherlands|Nederland|Belgium|Belgique|België|Austria|Österreich|Switzerland|Schweiz|Suisse|Svizzera|Ireland|"
    r"UK|U\.K\.|United Kingdom|England|Scotland|Wales|USA|U\.S\.A\.|United States|Poland|Polska|Luxembourg)(?![\w]))?"
)
_UNIT_AFTER = re.compile(
    r",?[ ]+(?:\d{1,2}\.?[ ]?(?:OG|Stock|Etage|étage|e[ ]étage|ème[ ]étage|er[ ]étage|(?:st|nd|rd|th)[ ]floor|piso|"
    r"planta|piano)|(?:Hinterhaus|Vorderhaus|Seitenflügel|Gartenhaus|Dachgeschoss|EG|DG)"
    r"|(?:int|esc|scala)\.?[ ]?\w{1,3}|(?i:apt\.?|apartment|flat|unit|suite|ste\.?)[ ]?\d{1,4}[A-Za-z]?|"
    r"(?i:bus|appt\.?|app\.?|whg\.?|wohnung|bt\.?|bât\.?|bâtiment)[ ]?\w{1,4}|r/c|\d{1,2}[ºª°][ ]?(?:esq|dto|dt|dir|"
    r"drt|fte|frente)\.?|"
    r"(?:étage|floor|piso|piano)[ ]\d{1,2})(?![\w])")
# "Flat 3, 12 Main Street", "Apt 4B, ...": the unit before a street is part of the address
_UNIT_BEFORE = re.compile(r"(?i)\b(?:flat|apt\.?|apartment|unit|suite)[ ]+\w{1,5},?[ ]+$|\bn[°º][ ]?$|\bno\.[ ]?$"
                          r"|\b\d{1,2}(?:st|nd|rd|th)[ ]floor,?[ ]+$")


def _address_candidates(text: str) -> Iterator[re.Match]:
    yield from _ADDRESS_NUMBER_FIRST.finditer(text)
    yield from _ADDRESS_SUFFIX.finditer(text)
    yield from _ADDRESS_WORD_FIRST.finditer(text)


# "wohne in der Hauptstraße 5", "in der Zum Sportplatz 2": the preposition before a street, not a street's name
_PREPOSITION_BEFORE_STREET = re.compile(r"(?:In|Auf|An|Unter|Hinter|Vor|Bei)[ ](?:[Dd]er|[Dd]en|[Dd]em)[ ]+")


# an address after the words that announce one: a form's label ("Address:", "Dirección:", "Morada:", a JSON key),
# a sentence ("I live at", "ich wohne in der", "nos mudamos a", "ik woon op"), or a PO box; the value runs to the
# end of the line or the sentence, or to the words that follow an address ("thanks", "por favor", "since")
_ADDRESS_FORM_CUES = (  # before ":" or "=" (a form's label, a JSON key)
    *(f"{kind} address" for kind in ("shipping", "billing", "delivery", "postal", "mailing", "home", "street", "new")),
    "address", "addr", "adresse", "anschrift", "lieferadresse", "rechnungsadresse", "postanschrift", "wohnadresse",
    "neue adresse", "adresse de livraison", "adresse postale", "adresse de facturation", "nouvelle adresse",
    "dirección", "direccion", "dirección de envío", "direccion de envio", "domicilio", "indirizzo",
    "indirizzo di spedizione", "adres", "afleveradres", "bezorgadres", "morada", "endereço", "endereco", "street",
    "straße", "strasse", "calle", "rue", "via",
)
_CITY_CUES = ("city", "town", "ort", "wohnort", "stadt", "plz", "plz / ort", "plz und ort", "ville", "code postal",
              "ciudad", "localidad", "código postal", "codigo postal", "città", "citta", "cap", "plaats",
              "woonplaats", "postcode", "post code", "zip", "zip code", "localidade", "cidade")
_ADDRESS_PHRASE_CUES = (  # before the address itself
    "i live at", "we live at", "i live in", "i'm at", "ship to", "ship it to", "ship them to", "ship the parcel to",
    "send to", "send it to", "send them to", "send the parcel to", "deliver to", "deliver it to", "we moved to",
    "i moved to", "address is", "ich wohne", "ich wohne in der", "ich wohne in", "ich wohne am", "ich wohne an der",
    "wir wohnen", "wir wohnen in der", "wir wohnen in", "wir sind umgezogen", "wir sind umgezogen, neu",
    "wir sind umgezogen neu", "bitte an", "lieferung an", "j'habite", "j'habite au", "j'habite à", "j'habite a",
    "nous avons déménagé", "nous avons déménagé au", "nous avons déménagé à", "livrer au", "livrer à", "envoyer au",
    "envoyer à", "vivo en", "envíen a", "envíenlo a", "enviar a", "nos mudamos a", "mi dirección es", "abito in",
    "abito a", "spedire a", "ci siamo trasferiti in", "ik woon", "ik woon op", "ik woon aan", "ik woon in",
    "verzenden naar", "we zijn verhuisd naar", "moro na", "moro em", "enviar para", "mudámo-nos para",
    "mudámo-nos para a", "mudamos para", "mudamos para a",
)
_ADDRESS_CUE_KIND = {**dict.fromkeys(_ADDRESS_FORM_CUES, "form"), **dict.fromkeys(_CITY_CUES, "form"),
                     **dict.fromkeys(_ADDRESS_PHRASE_CUES, "phrase")}
_ADDRESS_FORM_AFTER = re.compile(r"(?:[ ]?\([^)\n]{0,20}\))?[\"']?[ \t]*[:=][ \t]*[\"']?")
_ADDRESS_PHRASE_AFTER = re.compile(r"[ \t:]+")


@lru_cache(maxsize=1)
def _form_cue_regex() -> re.Pattern:
    """Every address and name cue (_ADDRESS_CUE_KIND, _NAME_CUE_KIND) once, as a trie over the lower-cased text
    (built on first use: _trie_regex and the name cues come later)."""
    return re.compile(rf"(?<![\w@])(?:{_trie_regex({**_ADDRESS_CUE_KIND, **_NAME_CUE_KIND})})(?![\w])")


@lru_cache(maxsize=64)
def _form_cue_hits(lower: str) -> tuple[tuple[int, int, str], ...]:
    """Where address and name cues occur: one scan for both recognizers."""
    return tuple((m.start(), m.end(), m.group()) for m in _form_cue_regex().finditer(lower))


_ADDRESS_END = (
    r"(?=[ \t]*(?:$|\r?\n|[;!?]|\.(?:[ \t]*(?:$|\r?\n)|[ \t]+[A-ZÀ-Þ](?:[\w-]+[ \t,.!:]|\.|[ \t])|[ \t]+[(\[])|"
    r"[ \t]{2,}|[\"<]|[ \t]+(?:\((?![A-Z]{2}\))|(?:—|–|-|/|\|)[ \t])|"
    r",?[ \t]+(?:(?i:thanks|thank you|thx|please|pls|por favor|merci|danke|bitte|gracias|grazie|obrigad[oa]|bedankt|"
    r"dank je|since|seit|depuis|desde|dal|sinds|tomorrow|morgen|demain|"
    r"mañana|domani|amanhã|asap)|and|und|et|y|e|en|or|oder|ou|o|of)(?![\w])))"
)
# where a cued address ends, searched once from its fifth character (a lazy "{4,120}?" would try the look-ahead at
# every character)
_ADDRESS_STOP = re.compile(_ADDRESS_END.removeprefix("(?=").removesuffix(")") + "|>")
# words after an address's last number that are no town, state or country ("as soon as possible", "on Monday")
_AFTER_ADDRESS = frozenset("""
    as soon on the before after not please pls thanks thank asap by to at for from with until till since if when also
    and or und oder et ou y o e en merci danke bitte gracias grazie por favor obrigado obrigada bedankt tomorrow today
    morgen heute demain mañana domani amanhã monday tuesday wednesday thursday friday saturday sunday is was but
""".split())


_GLUED_SENTENCE = re.compile(r"(?<=\d)\.(?=[A-ZÀ-Þ](?:[a-zß-ÿ]|[\s.,]|$))")


# after an address's number: the words of a unit ("bajo", "Bât. B", "bus 4") and the particles inside a town's name
_UNIT_WORDS = frozenset("bajo ático atico entlo izq izda dcha bât bat scala esc hs bus r/c dto esq bis ter".split())
_TOWN_PARTICLES = frozenset("im am an der sur sous de del la le en upon on-sea ob bei".split())
# words that name another kind of number ("City: Berlin, order 48213")
_IDENTIFIER_WORDS = frozenset("""
    order ticket invoice ref sku tracking bestellung bestellnr commande pedido rechnung facture factura ordine fattura
    bestelling factuur encomenda fatura case vorgang dossier
""".split())
# words that start a new clause after an address has begun
_CLAUSE_WORDS = frozenset("""
    also and und et or oder ou but aber mais pero ma maar mas please pls thanks thank merci danke bitte gracias grazie
    obrigado obrigada bedankt asap born geboren né née nacido nacida nato nata since seit depuis desde because weil
    is was ist war est es è my mein meine mon ma mi mio mia mijn meu minha before after until avant antes prima vor
""".split())


def _address_value_end(text: str, start: int, end: int) -> int:
    """End of a cued address: through its last token with a digit, then the capitalised words of a town, state or
    country (a lower-case town right after a postcode too), not the words of the sentence that follows."""
    glued = _GLUED_SENTENCE.search(text, start, end)  # "c/ Gran Vía, 52.Mail an ...": a sentence glued on
    if glued:
        end = glued.start()
    tokens = list(re.finditer(r"[^\s,]+", text[start:end]))
    for i, token in enumerate(tokens[:-1]):  # "Lindenweg 16. see TV-8625": a full stop, then a new sentence
        word = token.group()
        if (word.endswith(".") and tokens[i + 1].group()[0].islower() and (word[:-1].isdigit() or len(word) > 5)
                and any(c.isdigit() for c in text[start:start + token.end()])):
            tokens = tokens[:i + 1]
            break
    first = next((i for i, t in enumerate(tokens) if any(c.isdigit() for c in t.group())), len(tokens))
    # "645 Pine Hollow Dr, Apt 27 also born 1947", "Berlin, order 48213": a new clause, another kind of number
    named = next((i for i, t in enumerate(tokens) if t.group().casefold() in _IDENTIFIER_WORDS), len(tokens))
    for i in range(min(first + 1, named), len(tokens)):
        word = tokens[i].group().strip(".;:!?")
        if (word.islower() and word in _CLAUSE_WORDS) or word.casefold() in _IDENTIFIER_WORDS:
            tokens = tokens[:i]
            break
    last = max((i for i, t in enumerate(tokens) if any(c.isdigit() for c in t.group())), default=-1)
    if last < 0:
        return start
    cut = tokens[last].start() + len(tokens[last].group().rstrip(".;:!?"))
    postcode = re.fullmatch(r"(?:[A-Za-z]{1,2}-)?\d{4,5}", tokens[last].group()) is not None
    unit = False
    for i, token in enumerate(tokens[last + 1:], start=1):
        word = token.group().strip(".;:!?")
        if word.casefold() in _UNIT_WORDS or (unit and len(word) <= 2):  # "110, BAJO", "Bât. B"
            unit = word.casefold() in _UNIT_WORDS
            cut = token.start() + len(token.group().rstrip(".;:!?"))
            continue
        unit = False
        if (not word or word.casefold() in _AFTER_ADDRESS or len(word) > 30
                or (not postcode and "," in text[start + cut:start + token.start()])):
            break  # (a town after a comma but without a postcode is no part of it: "221B Baker Street, London")
        lower_town = postcode and word.isalpha() and (i == 1 or (i == 2 and len(tokens[last + 1].group()) == 2))
        if word[0].isupper() or word[0] == "(" or lower_town or (
                word in _TOWN_PARTICLES and i < len(tokens) - last - 1 and tokens[last + i + 1].group()[0].isupper()):
            cut = token.start() + len(token.group().rstrip(".;:!?"))
            continue
        break
    return start + cut


# a street word, a number first, or a postcode: what a sentence's address (not "ship to Germany in 3 days") shows
_ADDRESS_SHAPE = re.compile(
    r"(?i)^\d{1,5}[a-z]?\b|\b\d{4,5}\b|\b\d{4}-\d{3}\b|\b[a-z]{1,2}\d[a-z\d]?[ ]?\d[a-z]{2}\b|"
    r"\b[a-z]\d[a-z][ ]?\d[a-z]\d\b|(?:straße|strasse|str\.|weg|gasse|allee|platz|straat|gracht|laan|plein|kade)\b|"
    r"\b(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|close|crescent|gardens|tce|terrace|pde|parade|rue|bd|"
    r"boulevard|allée|impasse|quai|chemin|place|calle|c/|avda|avenida|paseo|plaza|ronda|via|viale|v\.le|corso|"
    r"piazza|rua|travessa|av|largo|markt|bus|box|postfach|postbus|apartado|casella)\b"
)
_PO_BOX = re.compile(
    r"(?<![\w])(?:(?i:p\.?[ ]?o\.?[ ]?box|post[ ]office[ ]box|postfach|postbus|apartado(?:[ ]de[ ]correos)?|apdo\.|"
    r"casella[ ]postale|caixa[ ]postal|bo[îi]te[ ]postale)|BP|B\.P\.|Bp)[ ]?(?:n[°º.][ ]?)?\d{1,6}(?![\w])"
)


# a signature's address block in any case: a line of a postcode and a town (or a town and a UK/IE/CA/AU/US postal
# code) under a line with a house number ("GROTE MARKT 54 BUS 4\nB-9000 GENT", "211 main street\ndublin 9, d09 x2y4")
_TOWN_WORDS = r"[^\W\d_][\w'’.-]*(?:[ -][^\W\d_][\w'’.-]*){0,2}"  # at most three words
_POSTCODE_LINE = re.compile(
    rf"(?i)[ \t]*(?:(?:[a-z]{{1,2}}-)?\d{{4,5}}(?:[ ]?[a-z]{{2}})?[ ]+{_TOWN_WORDS}(?:[ ]\([a-z]{{2}}\))?"
    rf"|\d{{4}}-\d{{3}}[ ]+{_TOWN_WORDS}"
    rf"|{_TOWN_WORDS}(?:[ ]\d{{1,2}})?,?[ ]+(?:[a-z]{{1,2}}\d[a-z\d]?[ ]?\d[a-z]{{2}}|[a-z]\d{{2}}[ ]?[a-z0-9]{{4}}|"
    r"(?:nsw|vic|qld|wa|sa|tas|act|nt)[ ]+\d{4}|[a-z]{2}[ ]+\d{5}(?:-\d{4})?|(?:qc|on|bc|ab|mb|ns|nb|nl|pe|sk)[ ]+"
    r"[a-z]\d[a-z][ ]?\d[a-z]\d))[ \t]*(?=\r?\n|$)"
)
_LINE_WITH_DIGIT = re.compile(r"\n([^\n\d]*\d)")  # (after a line break: a line above it)
_A_DIGIT = re.compile(r"\d")
_STREET_LINE = re.compile(r"[ \t]*(?=[^\n]*\d)(?=[^\n]*[^\W\d_]{3})[^\n]{4,60}?[ \t]*\r?\n[ \t]*$")
_NOT_STREET_LINE = re.compile(r"(?i)order|invoice|ticket|tel|phone|fax|mobile|iban|ref|sku|tracking|\d{1,2}:\d{2}|"
                              r"@|://|www\.|\d{5,}|\d{1,2}[./]\d{1,2}[./]\d{2,4}|:|"
                              # a sentence or a label with the street (the cued and street recognizers take those)
                              r"\b(?:wohnhaft|wohne|wohnen|in der|in den|in dem|live|living|i|we|my|mein|meine|mon|ma|"
                              r"mi|mijn|minha|meu|moro|vivo|abito|woon|habite|address|adresse|anschrift|is|are|was|"
                              r"were|ist|sind|est|sont|es|son|è|sono|zijn|são)\b|\d+\.\d+")


def _signature_addresses(text: str) -> Iterator[tuple[int, int]]:
    # from the lines that hold a digit (few), whose line above holds one too: the postcode pattern tried there only
    for line in _LINE_WITH_DIGIT.finditer(text):
        line_start = line.start()
        prev_start = text.rfind("\n", 0, line_start) + 1
        if not _A_DIGIT.search(text, prev_start, line_start):
            continue
        m = _POSTCODE_LINE.match(text, line_start + 1)
        if not m:
            continue
        street = _STREET_LINE.fullmatch(text, prev_start, line_start + 1)
        if street and not _NOT_STREET_LINE.search(text, prev_start, line_start):
            start = prev_start + len(text[prev_start:line_start]) - len(text[prev_start:line_start].lstrip())
            yield start, m.start() + len(m.group().rstrip())


def _cued_addresses(text: str) -> Iterator[tuple[int, int]]:
    lower = _lower(text)
    if lower is not None:  # (one trie scan is cheaper than testing for each cue's substring first)
        for _, cue_end, cue in _form_cue_hits(lower):
            kind = _ADDRESS_CUE_KIND.get(cue)
            if kind is None or (kind == "form" and ":" not in lower[cue_end:cue_end + 24]
                                and "=" not in lower[cue_end:cue_end + 24]):
                continue
            after = (_ADDRESS_FORM_AFTER if kind == "form" else _ADDRESS_PHRASE_AFTER).match(lower, cue_end)
            if not after:
                continue
            start = after.end()
            stop = _ADDRESS_STOP.search(text, start + 4)
            if (stop is None or stop.start() - start > 120 or len(text) - start < 4
                    or any(c in "\n\"<>" for c in text[start:start + 4])):
                continue
            end = _address_value_end(text, start, stop.start())
            value = text[start:end]
            letters = sum(c.isalpha() for c in value)
            if (letters < 3 or "@" in value or "://" in value or _PLACEHOLDER.search(value)
                    or _digit_count(value) > 14 or (kind == "phrase" and not _ADDRESS_SHAPE.search(value))):
                continue  # no address, an ID or a phone, or a sentence that only mentions a number
            yield start, end
    lower = lower or text.lower()
    if "box" in lower or "postfach" in lower or "postbus" in lower or "apartado" in lower or "apdo" in lower or (
            "casella" in lower or "bp" in lower or "b.p." in lower or "caixa" in lower or "boîte" in lower
            or "boite" in lower):
        for m in _PO_BOX.finditer(text):
            tail = _ADDRESS_TAIL.match(text, m.end())
            yield m.start(), tail.end() if tail else m.end()


def _find_address(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
    if not _digit_count(text):  # every form has a house number
        return
    yield from _cued_addresses(text)
    if "\n" in text:
        yield from _signature_addresses(text)
    for m in _address_candidates(text):
        start = m.start()
        if m.re is _ADDRESS_WORD_FIRST and (prep := _PREPOSITION_BEFORE_STREET.match(text, start)) and (
                _ADDRESS_SUFFIX.match(text, prep.end()) or _ADDRESS_WORD_FIRST.match(text, prep.end())):
            start = prep.end()
        unit = (_UNIT_BEFORE.search(text, max(0, start - 20), start)
                or _STREET_PREFIX_BEFORE.search(text, max(0, start - 12), start))
        end = m.end()
        unit_after = _UNIT_AFTER.match(text, end)
        if unit_after:
            end = unit_after.end()
        tail = _ADDRESS_TAIL.match(text, end)
        yield (unit.start() if unit else start), tail.end() if tail else end


# --- NAME ----------------------------------------------------------------------------------------
_UP, _LOW = "A-ZÀ-ÖØ-ÞĀ-ſ", "a-zß-öø-ÿĀ-ſ"  # Ā-ſ: Łukasz, Dvořák, Yıldız
# Anna, O'Brien, Dell'Acqua, McDonald, Müller-Lüdenscheidt
# (a whole word: "GmbH" is no "Gmb")
_NAME_WORD = (rf"(?:[{_UP}](?:[{_LOW}]{{2,3}})?['’])?[{_UP}][{_LOW}]+(?:[{_UP}][{_LOW}]+)?(?:-[{_UP}][{_LOW}]+){{0,2}}"
              r"(?![\w])")
# particles inside a full name: "Ludwig van Beethoven", "María de la Cruz", "Anna von der Heide"
_PARTICLE = (r"(?i:van|von|der|den|de|del|della|la|le|di|da|dos|das|do|du|ten|ter|zu|vom|ó|ní|al|bin|ibn|abu|"
             r"dal|y|el|ap|ben|bint|bat|mac)")  # any case: "DE LA FUENTE"
_PARTICLE_WORDS = frozenset(_PARTICLE.removeprefix("(?i:").removesuffix(")").split("|"))
_FULL_NAME = rf"{_NAME_WORD}(?:[ ](?:{_PARTICLE}[ ]){{0,2}}{_NAME_WORD}){{0,3}}"
# how people write their name under a message: "Anna Berg", "BERG, Anna" (cased to "Berg, Anna"), "A. Berg"
# ("Berg, Anna" is one family name before the comma: "Mateo Rossi, Finance Department" ends at "Rossi")
# the family name in capitals, a comma, the given name: "PÉREZ DE TUDELA, Iker", "SCHMIDT-ROTTLUFF, Ilse"
# (not before a word in lower case: "this is UPS, Tracking your parcel")
_CAPS_FAMILY_FIRST = (rf"[{_UP}]{{2,}}(?:[ -][{_UP}]{{2,}}){{0,3}},[ ]{_NAME_WORD}(?:[ -]{_NAME_WORD})?"
                      r"(?![ ]+[a-zß-öø-ÿ])")
# an initial and the family name: "A. Berg", "B. del Olmo"
_INITIAL_NAME = rf"[{_UP}]\.[ ]?(?:{_PARTICLE}[ ]){{0,2}}{_NAME_WORD}(?:[ ]{_NAME_WORD})?"
_SIGNED_NAME = (rf"(?:{_NAME_WORD},[ ]{_NAME_WORD}(?:[ -]{_NAME_WORD})?|{_FULL_NAME}"
                rf"|{_CAPS_FAMILY_FIRST}|{_INITIAL_NAME})")
# how people name themselves after "my name is", "c'est", "soy": as they sign, but "Anna, Paris" is no name
_INTRO_NAME = rf"(?:{_CAPS_FAMILY_FIRST}|{_INITIAL_NAME}|{_FULL_NAME})"
# what may follow a sign-off word before the break: up to two words ("Saludos cordiales", "Thanks again"), "." ","
_SIGNOFF_TAIL = r"(?:[ ][^\W\d_]{2,}){0,2}\.?,?"
# a line break in plain text or in HTML
_BREAK = r"(?:[ \t]*(?:\r?\n|(?i:<br[ ]?/?>|</?(?:p|div|span|b|strong|td|tr)(?:[ ][^<>]{0,60})?>)))+[ \t]*"
# cue words match in any case (the name itself must be capitalised: ALL CAPS and all-lower-case text is
# title-cased for the name and address recognizers, see find_pii)
_NAME_CONTEXTS = [
    re.compile(rf"(?=[MmTtIiJjSsYyHhLlVv])\b(?i:my name is|my name's|this is|i am|i'm|ich heiße|ich heisse|"
               rf"mein name ist|je m'appelle|"
               rf"mon nom est|me llamo|mi nombre es|je suis|soy|yo soy|sono|mi chiamo|ik ben|mijn naam is|"
               rf"hier spricht|le habla|vous parlez avec|you're speaking with|you are speaking with)[ ]+"
               rf"(?P<name>{_INTRO_NAME})"),
    # a name field in JSON or key=value logs: "name": "Anna Berg", customer_name=Anna Berg
    re.compile(rf"(?=[FfCcLlDdNnVvHh])(?i:\b(?:full_?name|customer_?name|first_?name|last_?name|display_?name|contact_?name|name|nombre|"
               rf"nom|vorname|nachname|holder|cardholder))[\"']?[ ]?[:=][ ]?[\"']?(?P<name>{_FULL_NAME})[\"'&,\n]"),
    # a form field written in lower case: the label alone on its line is cue enough
    re.compile(r"(?m)^[ \t]*(?i:name|full name|nombre|nom|vor- und nachname|nombre y apellidos|nom complet)[ \t]*:"
               r"[ \t]*(?P<name>[a-zß-öø-ÿ]{2,}(?:[ '-][a-zß-öø-ÿ]+){1,3})[ \t]*\r?$"),
    # a chat transcript: "Agent Loïc:", "[14:02:11] Customer (Anna Berg):", "@Anna please check"
    re.compile(rf"(?=[AaRrOoBbMmCc])\b(?i:agent|advisor|adviser|rep|operator|berater(?:in)?|mitarbeiter(?:in)?|conseill(?:er|ère)|"
               rf"agente|asesor(?:a)?|operador(?:a)?|opérat(?:eur|rice))[ ]+(?P<name>{_NAME_WORD})(?=[ ]?[:(])"),
    re.compile(rf"\((?P<name>{_FULL_NAME})\):"),
    re.compile(rf"(?<![\w.@])@(?P<name>{_NAME_WORD})(?![\w@.-]*@)"),
    # "Name: X" also labels products and packages: only a first and last name count
    re.compile(rf"\b(?i:full name|name)[ ]?:[ ]*(?P<name>{_NAME_WORD}(?:[ ]{_NAME_WORD}){{1,2}})(?![\w.-])"),
    # a form field that labels a person, alone on its line: "Kunde: Lena Weber", "Nombre y apellidos: ..."
    re.compile(rf"(?m)^[ \t]*(?i:customer name|customer|contact person|contact|full name|name|first and last name|"
               rf"kunde|kundin|ansprechpartner(?:in)?|vor- und nachname|vorname und nachname|nachname|vorname|"
               rf"client|cliente|nom complet|nom et prénom|nom|prénom et nom|nombre completo|nombre y apellidos|"
               rf"nombre|titular|account holder|cardholder)[ \t]*:[ \t]*(?P<name>{_FULL_NAME})[ \t]*\r?$"),
    re.compile(rf"(?m)^[ \t]*(?i:hi|hello|hey|dear|good morning|good afternoon|good evening|hallo|liebe[rs]?|moin|"
               rf"servus|sehr geehrte[r]? frau|sehr geehrte[r]? herr|bonjour|bonsoir|salut|cher|chère|hola|buenas|"
               rf"buenos días|estimad[oa]|querid[oa]|thanks|thank you|many thanks|danke|vielen dank|merci|gracias|"
               rf"muchas gracias|ciao|gentile|beste|hoi)"
               rf"[ ,]+(?P<name>{_FULL_NAME})[ ]*[,!]"),
    re.compile(rf"(?=[RrBbTtCcSsGgDdMmAaUuLlVv])(?<![^\W\d_])"  # first letters of the cues: others fail fast
               rf"(?i:regards|best wishes|thanks|thank you|cheers|sincerely|best|grüßen|grüße|gruß|danke|"
               rf"cordialement|cdlt|bien à vous|bonne journée|bonne soirée|merci|saludos|atentamente|atte|gracias|"
               rf"un saludo|un abrazo|mfg|lg|vg){_SIGNOFF_TAIL}"
               rf"{_BREAK}(?P<name>{_SIGNED_NAME})[ \t]*(?:\r?\n|$|<)"),
    # a sign-off "--" line, or a name in lower case alone on the line after a sign-off word
    re.compile(rf"(?m)(?:^|(?<=>))--[ ]?{_BREAK}(?P<name>{_SIGNED_NAME})[ \t]*(?:\r?\n|$|<)"),
    re.compile(r"(?=[RrBbTtCcSsGgDdLlVvMmAaUu])(?<![^\W\d_])(?i:regards|best wishes|thanks|thank you|cheers|sincerely|"
               r"best|grüßen|grüße|gruß|danke|lg|vg|mfg|"
               r"cordialement|cdlt|bien à vous|bonne journée|bonne soirée|merci|saludos|atentamente|atte|gracias|"
               r"un saludo|un abrazo)(?:[ ][^\W\d_]{2,}){0,2}\.?,?"
               r"[ \t]*\r?\n[ \t]*(?P<name>[a-zß-öø-ÿ]{2,}(?:[ '-][a-zß-öø-ÿ]{2,}){0,2})[ \t]*(?:\r?\n|$)"),
    re.compile(rf"\b(?i:account holder|card ?holder|name on the card is|addressed to)[ :]+(?P<name>{_FULL_NAME})"),
    # a display name before an address in angle brackets: "From: Anna Berg <anna@x.de>", "Anna Berg <...> wrote:"
    re.compile(rf"(?P<name>{_FULL_NAME})[ ]*<[^<>\s@]+@[^<>\s]+>"),
    re.compile(rf"\"(?P<name>{_SIGNED_NAME})\"[ ]*<[^<>\s@]+@[^<>\s]+>"),  # "Berg, Anna" <anna@example.com>
    # e-mail headers and quote lines without an address: "From: Anna Berg", "Anna Berg wrote:", "a écrit :"
    re.compile(rf"(?m)^[ \t>]*(?i:From|To|Cc|Von|An|De|À|Para|Van|Aan|Absender|Empfänger|Expéditeur|Remitente|"
               rf"Destinataire|Destinatario)[ ]?:[ \t]*\"?(?P<name>{_SIGNED_NAME})\"?[ \t]*(?=[<\[(;,]|\r?\n|$)"),
    re.compile(rf"(?P<name>{_FULL_NAME})(?:[ ]\([^()\n]{{1,60}}\))?[ ]+(?i:wrote|schrieb|a écrit|escribió|ha escrito|"
               rf"heeft geschreven|scrive|ha scritto)[ ]?:"),
    re.compile(rf"\b(?:schrieb|schreef)[ ]+(?P<name>{_FULL_NAME})[ ]?(?:<[^<>\n]{{1,80}}>)?[ ]?:"),
    # a name written in lower case after the strongest cues: "my name is jana novak and ..."
    re.compile(r"(?=[MmJjIiLl])\b(?i:my name is|my name's|me llamo|je m'appelle|ich heiße|ich heisse|mein name ist|"
               r"mi nombre es|mon nom est)[ ]+(?P<name>[a-zß-öø-ÿ]{2,}(?:[ '-][a-zß-öø-ÿ]+){0,3})"),
    # a title before a name: "Mrs Thompson called", "Frau Müller", "Mme Dupont", "Sr. García"
    re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herrn?|Frau|Mme|Mlle|M(?=\.)|Sra?|Srta|Doña|Don|Sig\.?ra?|Dhr|"
               rf"Mevr|Monsieur|Madame|Mademoiselle|Señora?|Señorita|Signora?|Mister)\.?[ ]+"
               rf"(?P<name>(?:{_PARTICLE}[ ]){{0,2}}{_FULL_NAME})"),
    # chat introductions
    re.compile(rf"(?=[IiCcSsAaHh])\b(?i:it's|it is|its|c'est|ici|soy|aquí|hier ist|hier spricht)[ ]+"
               rf"(?P<name>{_INTRO_NAME})"
               rf"(?=[ ]*(?:[,.!;:)\n]|$|(?i:from|here|speaking|de|von|aus|ici)\b))"),
    # a greeting and an introduction need no punctuation after the name: "hey its Tomasz Laurent 9261 ..."; a
    # greeting, a comma and a name end at a punctuation mark or a number: "HI, ÍÑIGO 1459 ...", "Hi, Declan. about"
    re.compile(rf"(?=[HhSsBb])\b(?i:hey|hi|hello|hallo|salut|hola|bonjour|buenas)[ ,!]+"
               rf"(?i:it's|its|it is|this is|c'est|soy|hier ist|ici|aquí)[ ]+(?P<name>{_INTRO_NAME})"),
    re.compile(rf"(?=[HhSsBb])\b(?i:hey|hi|hello|hallo|salut|hola|bonjour|buenas)[ ]*,[ ]*"
               rf"(?P<name>{_FULL_NAME})(?=[ ]*(?:[,.!:;)\n]|$|\d))"),
    # the same introduction in a lower-case chat: "salut c'est jonas larsen und ...", "hola soy ingrid garcía"
    re.compile(r"(?=[HhSsBb])\b(?i:hey|hi|hello|hallo|salut|hola|bonjour|buenas)[ ,!]+"
               r"(?i:it's|its|it is|this is|c'est|soy|hier ist|ici|aquí|ich bin|im)[ ]+"
               r"(?P<name>[a-zß-öø-ÿ]{2,}(?:[ '-][a-zß-öø-ÿ]+){0,3})"),
    # weaker introductions: "ich bin" also comes before nouns ("ich bin Neukunde"), and "im" after a greeting is
    # "I'm" typed without its apostrophe but also German "in the" ("Hallo, im Anhang"): a name of two words or more
    re.compile(rf"(?=[IiHh])\b(?i:ich bin|(?:hi|hey|hello|hallo)[ ,!]+im)[ ]+(?P<name>{_INTRO_NAME})"),
    # "omar here, how do i cancel": a first name (from the lexicon, in any case) and "here" opening a message
    re.compile(rf"(?m)^[ \t]*(?:(?i:hi|hey|hello|hallo|hola|salut|bonjour)[ ,!]+)?"
               rf"(?P<name>{_NAME_WORD}|[a-zß-öø-ÿ]{{3,}})[ ]+(?i:here|hier|ici|aquí)[ ]*[,.!:;-]"),
    # someone the writer spoke to or lives with: "I spoke to Nomsa Venkataraman", "my neighbour Thi Lan Diallo",
    # "he hablado con ...", "ho parlato con ...", "j'ai parlé avec ...", "telefoniert mit ..." (a name of two words or
    # more: one word after these is as often a company, "spoke to Amazon")
    re.compile(rf"(?=[SsTtCcMmYyOoHhPpGg])\b(?i:spoke (?:to|with)|talked (?:to|with)|chatted with|speaking (?:to|with)|"
               rf"(?:my|your|our) (?:colleague|coworker|co-worker|neighbour|neighbor|husband|wife|partner|son|"
               rf"daughter|brother|sister|mother|father|friend)|hablado con|hablé con|parlato con|parlé (?:avec|à)|"
               rf"gesprochen mit|telefoniert mit|(?:mein(?:e|em)?|meiner) (?:nachbar(?:in)?|kollege|kollegin|frau|mann|"
               rf"sohn|tochter)|(?:mon|ma) (?:voisin(?:e)?|collègue|mari|femme|fils|fille)|"
               rf"(?:mi) (?:vecin[oa]|compañer[oa]|marido|mujer|hij[oa]))[ ]+(?P<name>{_FULL_NAME})"),
]
_WEAK_INTRO = _NAME_CONTEXTS[-3]
# words of the companies people speak to (carriers, shops, banks, telecoms) that look like a person's name
_ORG_WORDS = frozenset("""
    mail post poste posten postnl correos store stores shop markt market depot bank banque banco sparkasse express
    airlines airways air telekom telecom mobile energy insurance versicherung bahn group logistics delivery courier
    parcelforce hermes
""".split())
_HERE_INTRO = _NAME_CONTEXTS[-2]
_SPOKE_TO = _NAME_CONTEXTS[-1]
_SIGNATURE = next(p for p in _NAME_CONTEXTS if "regards" in p.pattern)
_DISPLAY_NAME = next(p for p in _NAME_CONTEXTS if "<[^<>" in p.pattern)
_DASHES = next(p for p in _NAME_CONTEXTS if "--[ ]?" in p.pattern)
_LOWER_AFTER_CUE = next(p for p in _NAME_CONTEXTS if "(?=[MmJjIiLl])" in p.pattern)
_LOWER_INTRO = next(p for p in _NAME_CONTEXTS if p.pattern.startswith("(?=[HhSsBb])") and "(?P<name>[a-z" in p.pattern)
# words that end a lower-case name: "my name is jana novak and i ordered" keeps "jana novak"
_LOWER_STOP = frozenset("""
    on in at to of for from with is was not still correct wrong spelled missing and but also as by or if so
    again encore otra vez nochmal wieder aussi también
    el la de en que y con por para es no ist nicht falsch und aber le est pas et avec sur dans du des
    on the account written misspelled mispelled changed different
""".split())
_MENTION = next(p for p in _NAME_CONTEXTS if "(?<![\\w.@])@" in p.pattern)
# substrings (of the lower-cased text) without which a cue pattern cannot match: `in` is far cheaper than a scan
_CUE_KEYWORDS = {
    _NAME_CONTEXTS[0]: ("name", "this is", "i am", "i'm", "ich hei", "je m'appelle", "mon nom", "me llamo",
                        "mi nombre", "je suis", "soy", "sono", "mi chiamo", "ik ben", "mijn naam", "hier spricht",
                        "le habla", "vous parlez", "speaking with"),
    _NAME_CONTEXTS[1]: ("name", "nom", "holder"),
    _NAME_CONTEXTS[2]: ("name", "nom"),
    _NAME_CONTEXTS[3]: ("agent", "advis", "rep ", "operat", "berater", "mitarbeiter", "conseill", "asesor", "opérat"),
    next(p for p in _NAME_CONTEXTS if p.pattern.startswith(r"\b(?i:full name|name)")): ("name",),
    next(p for p in _NAME_CONTEXTS if "account holder|card ?holder" in p.pattern): ("holder", "name on",
                                                                                  "addressed to"),
    # the sign-offs, in both their capitalised and their lower-case form
    **dict.fromkeys([p for p in _NAME_CONTEXTS if p.pattern.startswith("(?=[RrBbTtCcSsGgDd")],
                    ("regard", "wish", "thank", "cheers", "sincerely", "best", "grü", "gruß", "gruss", "danke", "lg",
                     "vg", "mfg", "cordial", "à vous", "merci", "saludo", "atentamente", "atte", "gracias", "abrazo",
                     "cdlt", "bonne")),
    next(p for p in _NAME_CONTEXTS if "wrote|schrieb" in p.pattern): ("wrote", "schrieb", "écrit", "escribi",
                                                                     "escrito", "geschreven", "scri"),
    next(p for p in _NAME_CONTEXTS if p.pattern.startswith(r"\b(?:schrieb|schreef)")): ("schrieb", "schreef"),
    next(p for p in _NAME_CONTEXTS if "Destinataire|Destinatario" in p.pattern): (":",),
    next(p for p in _NAME_CONTEXTS if "c'est" in p.pattern): ("it's", "it is", "its ", "c'est", "ici", "soy", "aquí",
                                                             "hier ist", "hier spricht"),
}
# The two sign-off patterns are run from the places where a sign-off word occurs (str.find on the lower-cased
# text is far cheaper than trying two dozen words at every position): what must follow each word, per pattern
_SIGNOFF_LOWER_NAME = next(p for p in _NAME_CONTEXTS if p.pattern.startswith("(?=[RrBbTtCcSsGgDdLlVvMmAaUu])"))
_SIGNOFF_WORDS = ("regards", "best wishes", "thanks", "thank you", "cheers", "sincerely", "best", "grüßen", "grüße",
                  "gruß", "danke", "cordialement", "cdlt", "bien à vous", "bonne journée", "bonne soirée", "merci",
                  "saludos", "atentamente", "atte", "gracias", "un saludo", "un abrazo", "mfg", "lg", "vg")
_AFTER_SIGNOFF = {
    _SIGNATURE: (_SIGNOFF_WORDS, re.compile(rf"{_SIGNOFF_TAIL}{_BREAK}(?P<name>{_SIGNED_NAME})[ \t]*(?:\r?\n|$|<)")),
    _SIGNOFF_LOWER_NAME: (_SIGNOFF_WORDS, re.compile(
        rf"{_SIGNOFF_TAIL}[ \t]*\r?\n[ \t]*(?P<name>[a-zß-öø-ÿ]{{2,}}(?:[ '-][a-zß-öø-ÿ]{{2,}}){{0,2}})[ \t]*"
        r"(?:\r?\n|$)")),
}


_STRIPPED_BEFORE_BREAK = re.compile(r"[ \t\r,.]*")


def _after_signoffs(signoff: tuple, text: str, lower: str) -> Iterator[re.Match]:
    """The sign-off word that ends right before a line break (and, for the signature, a tag): from each place a
    sign-off word occurs (a few str.find calls), the name pattern tried right after it."""
    words, after, _breaks = signoff
    seen = set()
    for q, end in _signoff_positions(words, lower):
        m = after.match(text, end)
        # it lies within the 40 characters before the break, as a sign-off is written
        if m and m.start("name") not in seen and q >= _STRIPPED_BEFORE_BREAK.match(text, end).end() - 40:
            seen.add(m.start("name"))
            yield m


@lru_cache(maxsize=64)  # both sign-off patterns ask for the same text
def _signoff_positions(words: tuple[str, ...], lower: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of every sign-off word in the lower-cased text that is a whole word ("Erfolg" ends in no "LG")."""
    found = []
    for word in words:
        q = lower.find(word)
        while q != -1:
            if not (q and lower[q - 1].isalpha()):
                found.append((q, q + len(word)))
            q = lower.find(word, q + 1)
    return tuple(found)


_CUE_KEYWORDS.update({
    next(p for p in _NAME_CONTEXTS if p.pattern.startswith(r"\((?P<name>")): ("):",),
    next(p for p in _NAME_CONTEXTS if p.pattern.startswith(r"\"(?P<name>")): ("\"",),
    next(p for p in _NAME_CONTEXTS if p.pattern.startswith("(?m)^[ \\t]*(?i:customer name")): (":",),
    _LOWER_AFTER_CUE: ("name", "me llamo", "je m'appelle", "ich hei", "mi nombre", "mon nom"),
    _WEAK_INTRO: ("ich bin", "im "),
    _HERE_INTRO: ("here", "hier", "ici", "aquí"),
    _SPOKE_TO: ("spoke", "talked", "chatted", "speaking", "colleague", "coworker", "co-worker", "neighbo", "husband",
                "wife", "partner", "son ", "daughter", "brother", "sister", "mother", "father", "friend", "hablado",
                "hablé", "parlato", "parlé", "gesprochen", "telefoniert", "nachbar", "kolleg", "frau ", "mann ",
                "sohn", "tochter", "voisin", "collègue", "mari ", "femme", "fils", "fille", "vecin", "compañer",
                "marido", "mujer", "hij"),
    **dict.fromkeys([p for p in _NAME_CONTEXTS if p.pattern.startswith("(?=[HhSsBb])")],
                    ("hey", "hi", "hello", "hallo", "salut", "hola", "bonjour", "buenas")),
})
# the titles are case-sensitive: their gate looks at the text itself
_TITLES = next(p for p in _NAME_CONTEXTS if p.pattern.startswith(r"\b(?:Mr|Mrs"))
_TITLE_KEYWORDS = ("Mr", "Ms", "Miss", "Mx", "Dr", "Prof", "Herr", "Frau", "Mme", "Mlle", "M.", "Sr", "Do", "Sig",
                   "Dhr", "Mevr", "Monsieur", "Madame", "Mademoiselle", "Señor", "Mister")
# patterns whose name is in lower case: every word must pass, not only the first ones
_LOWER_CASE_CUES = frozenset(p for p in _NAME_CONTEXTS if "(?P<name>[a-z" in p.pattern
                             and p is not _LOWER_AFTER_CUE and p is not _LOWER_INTRO)
# Capitalised words that follow those cues but are not names, and product/company names that are also first
# names ("Hey Alexa,", "This is Ring support").
_NOT_NAMES = frozenset("""
    a all again also am an and any anyone everyone everybody folks guys here just lumen me not now only
    please really regarding writing sorry still support sure team the there this that very so unable happy
    glad afraid looking contacting following back customer customers sir madam service services hello hi hey
    thanks thank best kind regards good morning afternoon evening dear i yes no ok okay calling trying having
    getting going aura plus app order orders my our your we you they he she it what how why when where who
    which is are was were be been new old great perfect desk hub lamp cam doorbell plug
    sensor strip admin user agent staff true false none null monday tuesday wednesday thursday friday saturday sunday
    alexa siri cortana bixby google echo ring nest tesla dell mercedes ford chevy jaguar wendy wendys harley
    carrie genie juno luna nova skype zoom slack
    ihr ihre euer dein das die der votre vos notre el los las su sus nuestro equipo équipe
    pour por para wegen für mit avec con sans sin ohne und et y or oder ou o zurückrufen rappeler llamar
    see talk soon later speak bye client cliente clienta kunde kundin cliente désolé désolée
    ich wir sie mein meine leider bitte vielen ist habe hatte je nous mon ma mes yo nosotros mi mis tengo
    quiero necesiste necesito estoy gracias merci danke can could would quick question problem issue
    just unfortunately order update urgent question regarding re fw fwd betreff objet asunto
    about case ticket subject ref invoice id spelled misspelled written wrong correct
    its c'est hier soy ici aquí aqui suis née nee wrote schrieb schreef écrit escribió
    kundenservice kundendienst kundenbetreuung serviceteam supportteam soporte servicio atención sav
    gmbh inc ltd llc corp plc sarl sas ag kg moi toi encore nochmal wieder
    grüße grüsse gruß gruss grüßen grüssen zusammen allerseits tardes noches días salutations saludos cordialement
    wishes problem problems problema problemas problème problèmes sehr ihres ihrer ihrem ihren nr namen meiner meinem
    meinen auftrag anhang voraus im
""".split())
# a cued "name" followed by one of these is an organisation or a product: "This is Max Support"
_ORG_AFTER = re.compile(r"[ ]+(?:[Ss]upport|[Tt]eam|[Cc]ustomer|[Ss]ervice|[Ii]nc\b|[Ll]td\b|GmbH|[Aa]pp\b|"
                        r"AG\b|KG\b|SARL\b|SAS\b|S\.[LA]\.|B\.V\.|LLC\b|[Cc]orp\b|[Pp]lc\b|"
                        r"[Ss]peaker|[Dd]evice|[Bb]ot\b|[Aa]ssistant|Boss\b|BOSS\b|"
                        # product lines named like people: "Jules Pro", "Emma Mini"
                        r"(?:Pro|Mini|Max|Plus|Lite|Ultra|Air|Go|Neo|Prime|One|Edition|Series|XL|XS|Hub|Cam|Buds|"
                        r"Pad|Tab|Box|Stick|Smart[ ](?:Hub|Home|Speaker|Plug|Lock|Display|Watch|Cam|Scale|Bulb))\b)")
# a model number after a lexicon name: "Leo 2", "Mila 3S" (a cued name may be followed by any number)
_MODEL_AFTER = re.compile(r"[ ]\d{1,2}[A-Za-z]?(?![\d:.,/])")


def _trim_name(name: str) -> str:
    """Cut a candidate at the first word that is not a name (so 'Anna Here' keeps 'Anna')."""
    words = []
    parts = name.split(" ")
    for i, word in enumerate(parts):
        bare = word.lower().replace("’", "'").removesuffix("'s")  # "Wendy's"
        # but "von", "der" after a given name are particles: "Jörg von der Heydt", "VON DER HEYDT, Mareike" (after a
        # whole name "von" is "from": "Priya Fernández von Acme")
        if (words and bare in _PARTICLE_WORDS and i + 1 < len(parts)
                and sum(w.lower() not in _PARTICLE_WORDS for w in words) <= 1):
            words.append(word)
            continue
        if bare in _NOT_NAMES or (words and bare in _NOT_AFTER_GIVEN):  # "thanks anna for the help"
            break
        words.append(word)
    while len(words) > 1 and words[-1].lower() in _PARTICLE_WORDS:  # "Anna von" of "Anna von Support"
        words.pop()
    return " ".join(words)


def _cue_plan() -> list[tuple]:
    """Per cue pattern, what the loop in _cued_names needs, looked up once (hashing a compiled pattern hashes its
    whole code, so no set or dict is consulted per record)."""
    plan = []
    shared: list[tuple[str, ...] | None] = []
    for pattern in _NAME_CONTEXTS:
        needs: tuple[str, ...] = ()  # substrings of the text, all required
        if pattern is _SIGNATURE:
            needs = ("\n", "<")  # either one (handled below)
        elif pattern in _LOWER_CASE_CUES:
            needs = ("\n",)
        elif pattern is _DISPLAY_NAME:
            needs = ("@", "<")
        elif pattern is _MENTION:
            needs = ("@",)
        elif pattern is _DASHES:
            needs = ("--",)
        keywords = _CUE_KEYWORDS.get(pattern)
        # patterns that share their keywords (the two sign-offs, the two greetings) share one tuple: its test runs
        # once per text
        keywords = next((k for k in shared if k == keywords), keywords)
        shared.append(keywords)
        plan.append((pattern, keywords, _TITLE_KEYWORDS if pattern is _TITLES else None,
                     needs, pattern is _SIGNATURE,
                     (*_AFTER_SIGNOFF[pattern], "\n<" if pattern is _SIGNATURE else "\n")
                     if pattern in _AFTER_SIGNOFF else None,
                     1 if pattern is _LOWER_AFTER_CUE else 2 if pattern is _LOWER_INTRO else 0,
                     pattern in _LOWER_CASE_CUES, pattern.pattern.startswith("(?m)^")))
    return plan


def _at_line_starts(pattern: re.Pattern, text: str) -> Iterator[re.Match]:
    """pattern.finditer(text) for a pattern anchored at a line start ("(?m)^") whose match never crosses a line
    break: tried at the line starts alone, not at every position."""
    pos = 0
    while True:
        m = pattern.match(text, pos)
        if m:
            yield m
        pos = text.find("\n", pos) + 1
        if not pos:
            return


@lru_cache(maxsize=4096)  # names_in and find_pii ask for the same text one after the other
def _cued_names(text: str) -> tuple[tuple[int, str], ...]:
    """(start, name) for every name that follows one of the cues."""
    found = []
    lower = text.lower()
    same_length = len(lower) == len(text)  # (lower() may change the length)
    # only the cues one of whose keywords is in the text (or that have none): most texts hold a few of them
    for (pattern, _keywords, cased_keywords, needs, either_need, signoff, lower_after_cue, lower_line,
         line_start) in _plans_for(frozenset(_cue_keyword_hits(lower))):
        if cased_keywords and not any(map(text.__contains__, cased_keywords)):
            continue
        if needs and not (any(map(text.__contains__, needs)) if either_need else all(map(text.__contains__, needs))):
            continue  # a sign-off needs a line break before the name, a display name an address after it
        if signoff and same_length:
            matches = _after_signoffs(signoff, text, lower)
        else:
            matches = _at_line_starts(pattern, text) if line_start else pattern.finditer(text)
        for m in matches:
            name = _trim_name(m.group("name"))
            if lower_after_cue:
                words = []
                for word in m.group("name").split(" "):
                    if word in _LOWER_STOP or word in _NOT_NAMES:
                        break
                    words.append(word)
                # a chat introduction is weaker than "my name is": one word is a name only from the lexicon
                # ("hola soy nuevo cliente", "hi it's frustrating" are none)
                if lower_after_cue == 2 and len(words) < 2 and not (words and words[0] in _GIVEN_NAMES):
                    words = []
                # "ich bin" and "im" come before adverbs and adjectives too ("hallo ich bin echt sauer"): in lower
                # case a name after them needs a lexicon word
                if (lower_after_cue == 2 and words and text[m.start():m.start("name")].lower().endswith(("bin ", "im "))
                        and words[0] not in _GIVEN_NAMES and words[-1] not in _FAMILY_NAMES):
                    words = []
                name = " ".join(words)
            elif lower_line and name != m.group("name"):
                continue  # "thanks,\nsee you": a lower-case line is a name only when no word of it is a known word
            if name and _ORG_AFTER.match(text, m.start("name") + len(name)):
                # "Elodie Martin de Acme GmbH": the person before the particle that starts the company's name
                words = name.split(" ")
                cut = max((i for i, w in enumerate(words) if i >= 2 and w.lower() in ("de", "von", "di", "da")),
                          default=0)
                name = " ".join(words[:cut])
            if name.endswith(","):  # "this is URGENT, Please help": the word after the comma was no given name
                continue
            if (pattern is _WEAK_INTRO or pattern is _SPOKE_TO) and " " not in name:
                continue
            if pattern is _SPOKE_TO and not _ORG_WORDS.isdisjoint(name.lower().split(" ")):
                continue  # "I talked to Royal Mail", "spoke to Deutsche Post": a company, not a person
            # a title-cased "Ich Bin", "Hi Im": the text was all lower case or shouted, where every word is
            # capitalised ("hallo ich bin echt sauer"): a name needs a lexicon word
            if (pattern is _WEAK_INTRO and text[m.start():m.start("name")].split()[-1][:1].isupper()
                    and "," not in name and "." not in name and not (
                        name.split(" ")[0].lower() in _GIVEN_NAMES or name.split(" ")[-1].lower() in _FAMILY_NAMES)):
                continue
            if pattern is _HERE_INTRO and name.lower() not in _GIVEN_NAMES:  # "Support here,", "nobody here."
                continue
            title = _LEADING_TITLE.match(name)
            if title and title.end() < len(name):  # "Dear Mr Brightman,": the title is not part of the name
                found.append((m.start("name") + title.end(), name[title.end():]))
            elif name:
                found.append((m.start("name"), name))
    return tuple(found)


# a title a cue's name may start with ("Dear Dr O'Sullivan,", "Hallo Frau Weber,"); not "Don", also a given name
_LEADING_TITLE = re.compile(r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Herrn|Frau|Mme|Mlle|Sr|Sra|Srta|Sig|Dhr|Mevr|"
                            r"Monsieur|Madame|Mademoiselle|Señora?|Señorita|Signora?|Mister)[ ]+")


_CUE_PLAN = _cue_plan()


def _trie_regex(words: Iterable[str]) -> str:
    """An alternation of the words as a trie ("t(?:hanks|his is)"): the regex engine follows one path per position
    instead of trying every word, and a greedy path gives the longest word that starts there."""
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a word ends here: what follows is optional (greedy: the longer word first)
            return body + "?" if len(branches) == 1 and len(body) == 1 else "(?:" + body + ")?"
        return body

    return build(trie)


# every cue keyword once, as one trie regex over the lower-cased text; a keyword found at a position also makes
# every keyword that is a prefix of it present there, so per found keyword: the ids of the tuples it satisfies
_CUE_TUPLES = {id(plan[1]): plan[1] for plan in _CUE_PLAN if plan[1]}
_CUE_WORDS = sorted({k for keywords in _CUE_TUPLES.values() for k in keywords})
_CUE_WORD_REGEX = re.compile(_trie_regex(_CUE_WORDS))
_CUE_WORD_TUPLES = {word: frozenset(i for i, keywords in _CUE_TUPLES.items() if any(map(word.startswith, keywords)))
                    for word in _CUE_WORDS}


_PLANS_WITHOUT_KEYWORDS = frozenset(i for i, plan in enumerate(_CUE_PLAN) if not plan[1])
_PLANS_BY_KEYWORDS = {k: frozenset(i for i, plan in enumerate(_CUE_PLAN) if plan[1] and id(plan[1]) == k)
                      for k in _CUE_TUPLES}


@lru_cache(maxsize=1024)  # texts share a few combinations of present keywords
def _plans_for(present: frozenset[int]) -> tuple[tuple, ...]:
    """The entries of _CUE_PLAN to try, in their order, when the keyword tuples with these ids are present."""
    indices = _PLANS_WITHOUT_KEYWORDS.union(*(_PLANS_BY_KEYWORDS[k] for k in present))
    return tuple(_CUE_PLAN[i] for i in sorted(indices))


def _cue_keyword_hits(lower: str) -> set[int]:
    """The ids of the cue keyword tuples one of whose keywords occurs in `lower`: the trie regex tried from every
    position where a keyword starts (a search from the next position after each, so overlapping keywords count)."""
    hits: set[int] = set()
    m = _CUE_WORD_REGEX.search(lower)
    while m is not None:
        hits.update(_CUE_WORD_TUPLES[m.group()])
        m = _CUE_WORD_REGEX.search(lower, m.start() + 1)
    return hits


# Common given names (en/de/fr/es and frequent in those countries), found without a cue word. Left out: names
# that are also everyday words, months or brands (Will, May, Mark, Grace, April, Victoria, Ruby, Mercedes, ...),
# and a lexicon name right after a determiner or possessive ("my Alexa", "the Ring", "mon Hugo Boss") is skipped.
_GIVEN_NAMES = frozenset("""
    james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony
    andrew joshua kevin brian george timothy ronald jason edward jeffrey ryan jacob gary nicholas eric jonathan
    stephen larry justin scott brandon benjamin samuel gregory alexander patrick jack dennis tyler aaron jose
    adam nathan henry douglas zachary peter kyle noah ethan jeremy walter christian keith roger terry austin
    sean gerald carl harold dylan arthur lawrence jordan jesse bryan billy bruce gabriel joe logan albert
    willie alan eugene russell vincent philip bobby johnny bradley liam oliver lucas mason elijah owen
    mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty sandra margaret
    ashley kimberly emily donna michelle carol amanda melissa deborah stephanie rebecca sharon laura cynthia
    kathleen amy angela shirley anna brenda pamela emma nicole helen samantha katherine christine debra
    rachel carolyn janet catherine maria heather diane julie joyce evelyn kelly christina lauren joan
    megan cheryl andrea hannah jacqueline martha gloria teresa sara madison kathryn janice jean abigail
    alice judy sophia isabella olivia ava mia charlotte amelia harper ella chloe lily zoe natalie
    lukas leon finn jonas elias luis felix maximilian paul niklas tim jan moritz julian philipp tobias
    sebastian florian fabian simon dominik stefan matthias andreas markus thorsten jürgen uwe klaus dieter
    wolfgang günter horst helmut frank holger sven björn kai jens dirk torsten lena leonie lea laura
    johanna katharina sophie marie mia hanna emilia lina clara luisa anja sabine petra ute monika ursula
    birgit claudia susanne nicole stefanie katrin heike silke kerstin melanie tanja jana julia franziska
    jean pierre michel philippe alain nicolas christophe patrick françois eric laurent frédéric sébastien
    olivier thierry julien stéphane david pascal guillaume jérôme romain mathieu antoine maxime vincent
    théo hugo louis gabriel raphaël arthur jules adam mathis nathan enzo baptiste clément quentin
    marie nathalie isabelle sylvie catherine françoise monique valérie sandrine christine céline
    sophie aurélie émilie julie camille léa manon chloé inès jade louise alice lina océane élodie margaux
    antonio manuel francisco juan javier josé miguel ángel carlos alejandro rafael pedro pablo sergio
    fernando jorge luis alberto álvaro diego adrián raúl enrique ramón andrés iván rubén óscar mario
    hugo martín daniel marcos gonzalo nicolás lucía sofía martina paula valeria carmen ana isabel pilar
    dolores teresa rosa cristina marta elena raquel beatriz silvia nuria irene alba noelia sara patricia
    mohammed muhammad ahmed ali omar yusuf hassan ibrahim mustafa fatima aisha khadija leila yasmin amina
    arjun rahul priya ananya ravi amit deepak sanjay vikram neha pooja anjali marco giulia giuseppe francesca
    alessandro luca matteo chiara giovanni lorenzo federica ingrid astrid erik lars nils karin sigrid nikolai
    dmitri ivan olga natasha anastasia sergei tatiana sofia wojciech katarzyna agnieszka piotr joão
""".split()) - {"austin", "jordan", "jean"}  # places; "Jean" is also denim
# and as people type them without accents: "Jose", "Ines", "Celine"
# Given names that are also everyday words, months, weekdays, places or brands: never taken without a cue.
_LEXICON_EXCLUDED = frozenset("""
    will may mark grace june april august rose hope joy faith summer autumn dawn ray guy bill pat art sun star page
    florence georgia austin jordan sydney victoria chelsea lincoln regina adelaide madison savannah dakota carolina
    virginia dallas phoenix chad troy china india kenya eden milan salvador santiago rosario guadalupe asunción
    florencia washington wellington paris salem
    mercedes chanel otto oscar casper jasper zara tiffany marshall lexus alexa siri bose
    mai julio juni juli avril agosto domingo noël sabato jun
    can said long lan ping bin gang shun harsh till beat floor odd saga rune octave viola aurora marquis ebony
    destiny precious jasmine ángel angel jesús sultan remedios esperanza fanny
""".split())
_DATA = Path(__file__).parent


def _word_list(name: str) -> frozenset[str]:
    """A lexicon under retune/ (one or more lower-case words a line, "#" comments), with its accent-free
    spellings as people type them ("Jose", "Ines", "Celine")."""
    words = set()
    for line in (_DATA / name).read_text(encoding="utf-8").splitlines():
        words.update(line.split("#", 1)[0].lower().split())
    words |= {unicodedata.normalize("NFKD", w).encode("ascii", "ignore").decode() for w in words}
    return frozenset(w for w in words if len(w) >= 3)  # two letters ("Li", "Na", "Vo") are too often something else


_GIVEN_NAMES = _GIVEN_NAMES | _word_list("pii_given_names.txt")
_GIVEN_NAMES = (_GIVEN_NAMES | {unicodedata.normalize("NFKD", n).encode("ascii", "ignore").decode()
                                for n in _GIVEN_NAMES}) - _LEXICON_EXCLUDED - _NOT_NAMES  # "Óscar" is "Oscar" too
# Family names: a capitalised word before one of these makes a person's name ("Thandiwe Okonkwo"). Left out: the
# particles of multi-word names (van, de, ...), and family names that are also colours, words or brands.
_FAMILY_EXCLUDED = frozenset("""
    van von der den de del della la le di da dos das do du ten ter al el bin
    black gray grey white brown green blue gold silver rose stone love page ball cross hunt price banks fields powers
    mills woods wells bell cook ward rice hart fox winter sommer frank dean bush mack pope sharp wise ray reed little
    west french houston washington jordan austin paris lincoln marshall bose fall ba ho sy oh song moon son fan tan
    long park hill young king lane ford dell lang klein jung frei roth graf otto horn engel stein kaiser vogel wolf
    jesus cruz santos reyes island islam mann moss todd jean marie louis pierre henry simon thomas martin david
    adam george joseph francis paul lucas daniel charles philippe olivier julien benoit gill sen das yu ye su lu
    ren ding jin mak lam ng ko han nam bae jeon hong lim yoon kim lee choi oh
""".split())
_FAMILY_NAMES = _word_list("pii_family_names.txt") - _FAMILY_EXCLUDED - _NOT_NAMES
# Capitalised words that are not a first name before a family name: sentence starts, greetings, street and
# product words, months and weekdays (en/de/fr/es/it/nl).
_NOT_BEFORE_FAMILY = frozenset("""
    mr mrs ms dr prof herr herrn frau mme mlle sr sra srta don doña signor signora señor señora monsieur madame mister
    dear hello hi hey thanks thank please
    street road avenue lane drive close crescent calle avenida rue boulevard via viale piazza laan straat plein
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday montag dienstag mittwoch donnerstag freitag samstag
    sonntag lundi mardi mercredi jeudi vendredi samedi dimanche lunes martes miércoles jueves viernes sábado
    domingo januar februar märz mai juni juli oktober dezember janvier février mars avril juin juillet août
    enero febrero marzo abril mayo junio julio agosto
    new old big small north south east west upper lower great little saint san santa st sankt
    black white gray grey silver gold blue green red rose space midnight jet
    model series edition version pro max mini plus ultra lite air smart home office store shop online
""".split()) | _NOT_NAMES
# Words that follow a first name without being its family name ("thanks anna for the help", title-cased; "Priya
# Yesterday"; "Danke Anna Grüße"): function words, time words, greetings (en/de/fr/es/it/nl)
_NOT_AFTER_GIVEN = frozenset("""
    for from to at in on of off by as if but nor yet or and the a an is was are were has had have will would can
    could should did does do not too also then than that this these those there here when while who whom whose
    yesterday today tomorrow tonight now soon again already still later earlier asap
    gestern heute morgen jetzt bald noch schon auch aber und oder nicht mit von zu bei aus nach für grüße gruß
    danke bitte hallo tschüss liebe lieber viele beste
    hier aujourd demain maintenant encore aussi mais avec pour chez merci bonjour salut cordialement bises
    ayer hoy mañana ahora también pero con para desde gracias hola saludos abrazos besos
    ieri oggi domani adesso anche ma con per grazie ciao saluti
    gisteren vandaag nu ook maar met voor bedankt groeten hoi
    thanks thank cheers regards best hi hello hey dear please sorry ok okay yes no
""".split())
_DETERMINER_BEFORE = re.compile(
    r"(?i)\b(?:my|the|a|an|your|our|their|his|her|this|that|new|old|mein|meine|meinen|dein|der|die|das|den|"
    r"dem|ein|eine|einen|mon|ma|mes|le|la|les|un|une|ton|son|mi|mis|el|los|las|una|su|tu)"
    r"[ \t]+$")
_LEXICON_NAME = re.compile(rf"(?<![\w@./#-])(?:[{_UP}]['’])?[{_UP}][{_LOW}]+(?:-[{_UP}{_LOW}][{_LOW}]+)?(?![\w@-])")
# a family name after a given name, with its particles: "Ludwig van Beethoven", "María de la Cruz"
_FAMILY_NAME = re.compile(rf"[ ](?:{_PARTICLE}[ ]){{0,2}}({_NAME_WORD})(?![\w@-])")
# the capitalised word right before a lexicon family name ("Thandiwe Okonkwo", "Ana de Souza")
_WORD_BEFORE_FAMILY = re.compile(rf"(?<![\w@./#-])({_NAME_WORD})[ ](?:{_PARTICLE}[ ]){{0,2}}$")
# companies, brands and places named after people: "Ralph Lauren", "Morgan Stanley", "Santa Monica"
_BRAND_PAIRS = frozenset(pair.replace("_", " ") for pair in """
    morgan_stanley goldman_sachs bowers_wilkins harman_kardon ralph_lauren calvin_klein tommy_hilfiger hugo_boss
    louis_vuitton marks_spencer dolce_gabbana ernst_young johnson_controls johnson_johnson procter_gamble
    mercedes_benz rolls_royce aston_martin harley_davidson fred_perry ted_baker paul_smith kate_spade michael_kors
    tom_ford jack_wolfskin john_deere wells_fargo charles_schwab bang_olufsen martin_logan ben_sherman dr_martens
    jack_daniels john_lewis tommy_bahama victoria_beckham kenneth_cole marc_jacobs vera_wang estee_lauder
    giorgio_armani stella_mccartney hewlett_packard black_decker lucas_film walt_disney
""".split())
_PLACE_BEFORE = re.compile(r"(?:San|Santa|Santo|São|Saint|Sainte|St\.?|Sankt|Fort|Port|Lake|Mount|Cape)[ ]$")
_PAIR_AROUND = re.compile(rf"({_NAME_WORD})[ ]$")
_PAIR_AFTER = re.compile(rf"[ ]({_NAME_WORD})")


def _brand_or_place(text: str, start: int, end: int) -> bool:
    """A lexicon name that is part of a company, brand or place name ("Ralph Lauren", "Santa Monica")."""
    if _PLACE_BEFORE.search(text, max(0, start - 7), start):
        return True
    word = text[start:end].lower()
    before = _PAIR_AROUND.search(text, max(0, start - 30), start)
    after = _PAIR_AFTER.match(text, end)
    return bool((before and f"{before.group(1).lower()} {word}" in _BRAND_PAIRS)
                or (after and f"{word} {after.group(1).lower()}" in _BRAND_PAIRS))


_DAY_BEFORE = re.compile(r"\d{1,2}\.?[ ]$")
_YEAR_AFTER = re.compile(r"\.?[ ](?:\d{4}|\d{1,2}(?:st|nd|rd|th)?,?[ ]\d{4})(?!\d)")
_SENTENCE_END_BEFORE = re.compile(r"(?:^|[.!?:;\n>\"“(]|\s[-–—])\s*$")


def _lexicon_names(text: str, recased: bool = False) -> Iterator[tuple[int, int]]:
    """Given names from the lexicon (with a capitalised word after them: the family name), and lexicon family
    names with a capitalised word before them (not at a sentence start, not in text that was title-cased)."""
    for m in _LEXICON_NAME.finditer(text):
        word = m.group().lower()
        if (word in _FAMILY_NAMES or word in _GIVEN_NAMES) and _brand_or_place(text, m.start(), m.end()):
            continue
        if word in _FAMILY_NAMES and not recased:
            before = _WORD_BEFORE_FAMILY.search(text, max(0, m.start() - 40), m.start())
            if (before is not None and before.group(1).lower() not in _NOT_BEFORE_FAMILY
                    and not _ORG_AFTER.match(text, m.end()) and not _MODEL_AFTER.match(text, m.end())):
                family = _FAMILY_NAME.match(text, m.end())  # "Zhiwei Tesfaye Moyo"
                end = family.end() if family and family.group(1).lower() in _FAMILY_NAMES else m.end()
                if (before.group(1).lower() in _GIVEN_NAMES
                        or not _SENTENCE_END_BEFORE.search(text, max(0, before.start() - 4), before.start())):
                    yield before.start(), end
                    continue
                if word not in _GIVEN_NAMES:
                    # "Yesterday Adeyemi said": a capitalised sentence start is no evidence of a first name, so the
                    # family name alone
                    yield m.start(), end
                    continue
        if word not in _GIVEN_NAMES:
            continue
        if word in _NOT_NAMES:
            continue
        if _DETERMINER_BEFORE.search(text, max(0, m.start() - 12), m.start()):
            continue
        if _DAY_BEFORE.search(text, max(0, m.start() - 4), m.start()) or _YEAR_AFTER.match(text, m.end()):
            continue
        if _ORG_AFTER.match(text, m.end()) or _MODEL_AFTER.match(text, m.end()):  # "Max Support", "Otto GmbH"
            continue
        family = _FAMILY_NAME.match(text, m.end())
        end = m.end()
        if family and family.group(1).lower() not in _NOT_BEFORE_FAMILY and family.group(1).lower() not in \
                _NOT_AFTER_GIVEN:
            if _ORG_AFTER.match(text, family.end()):  # "Martin Logan Support": a company named after a person
                continue
            end = family.end()
        yield m.start(), end


_NAME_PARTICLES = frozenset("van von der den del della dos das ten ter vom ibn abu dal ben bint bat mac".split())


@lru_cache(maxsize=4096)  # names_in and find_pii ask for the same text one after the other
def _lexicon_spans(text: str, recased: bool) -> tuple[tuple[int, int], ...]:
    return tuple(_lexicon_names(text, recased))


# --- names after a label, an introduction, a sign-off in it/nl/pt, an @-handle --------------------------------
# "Kunde: XAVIER, Sunita", "Titular: sigrún dal bianco", '"last_name": "van den Broek"', "Mi chiamo maria coelho",
# "@ifeoma.quintero": the label says a person is named, so the name may be in any case and outside the lexicons
_NAME_LABELS_GENERIC = (
    "name", "full name", "customer", "customer name", "client", "client name", "contact", "contact person",
    "recipient", "sender", "attn", "passenger", "guest", "kunde", "kundin", "kundenname", "ansprechpartner",
    "ansprechpartnerin", "empfänger", "absender", "nom", "nom complet", "destinataire", "expéditeur", "nombre",
    "nombre completo", "cliente", "destinatario", "remitente", "contacto", "nome", "nome completo",
    "nome e cognome", "mittente", "referente", "naam", "volledige naam", "klant", "ontvanger", "afzender",
    "contactpersoon", "destinatário", "remetente", "contato", "customer_name", "full_name", "fullname",
    "display_name", "displayname", "username_full",
)
_NAME_LABELS_OWNER = (  # whose value is a name even when a single word
    "account holder", "cardholder", "card holder", "kontoinhaber", "kontoinhaberin", "karteninhaber", "titulaire",
    "titulaire du compte", "titular", "titular da conta", "titular de la cuenta", "intestatario", "titolare",
    "rekeninghouder", "tenaamstelling", "first name", "last name", "first_name", "last_name", "firstname",
    "lastname", "given name", "given_name", "family name", "family_name", "surname", "vorname", "nachname",
    "prénom", "prenom", "apellido", "apellidos", "cognome", "voornaam", "achternaam", "apelido", "sobrenome",
)
_NAME_INTROS_STRONG = (  # they name the writer: the name may be in lower case and in no lexicon
    "my name is", "my full name is", "mein name ist", "ich heiße", "ich heisse", "je m'appelle", "mon nom est",
    "me llamo", "mi nombre es", "mi chiamo", "il mio nome è", "mijn naam is", "ik heet", "chamo-me", "me chamo",
    "o meu nome é", "meu nome é",
)
_NAME_INTROS_WEAK = ("this is", "i'm", "i am", "ich bin", "hier ist", "je suis", "c'est", "soy", "sono", "ik ben",
                     "sou", "sou a", "sou o", "falei com", "falei com a", "falei com o", "conversei com",
                     "conversei com a", "conversei com o")
_NAME_SIGNOFFS_MORE = ("cumprimentos", "com os melhores cumprimentos", "obrigado", "obrigada", "atenciosamente",
                       "abraços", "groetjes", "groeten", "met vriendelijke groet", "met vriendelijke groeten",
                       "vriendelijke groeten", "grazie", "cordiali saluti", "distinti saluti", "saluti",
                       "un saluto")  # (those of en/de/fr/es: _SIGNOFF_WORDS)
_NAME_TITLES = ("mr", "mrs", "ms", "mx", "dr", "prof", "mme", "mlle", "m", "herr", "frau", "sr", "sra", "srta",
                "sig", "sig.ra", "dhr", "mevr")
# titles written out: a capitalised family name alone after them is a name ("Geachte mevrouw Jansen,")
_NAME_TITLE_WORDS = ("mevrouw", "meneer", "heer", "dott", "dott.ssa", "dottore", "dottoressa", "signora", "signor",
                     "signore", "senhor", "senhora", "doutor", "doutora", "monsieur", "madame", "señor", "señora")
_NAME_CUE_KIND = {**dict.fromkeys(_NAME_LABELS_GENERIC, "label"), **dict.fromkeys(_NAME_LABELS_OWNER, "owner"),
                  **dict.fromkeys(_NAME_INTROS_STRONG, "strong"), **dict.fromkeys(_NAME_INTROS_WEAK, "weak"),
                  **dict.fromkeys(_NAME_SIGNOFFS_MORE, "signoff"), **dict.fromkeys(_NAME_TITLES, "title"),
                  **dict.fromkeys(_NAME_TITLE_WORDS, "title_word")}
_NAME_LABEL_AFTER = re.compile(r"[\"']?[ \t]*[:=][ \t]*[\"']?[ \t]*")
_NAME_INTRO_AFTER = re.compile(r"[ \t]*[:,]?[ \t]+")
_NAME_TITLE_AFTER = re.compile(r"\.?[ \t]+")
_NAME_SIGNOFF_AFTER = re.compile(r"[ \t]*[,.!]?[ \t]*\r?\n[ \t]*")
_NAME_CUE_AFTER = {"label": _NAME_LABEL_AFTER, "owner": _NAME_LABEL_AFTER, "signoff": _NAME_SIGNOFF_AFTER,
                   "title": _NAME_TITLE_AFTER, "title_word": _NAME_TITLE_AFTER}
_COMPANY_AFTER = re.compile(r"[ ]+(?i:gmbh|ag|inc|ltd|llc|plc|sa|sarl|sas|srl|spa|s\.p\.a|bv|b\.v|nv|kg|sl|s\.l|lda|"
                            r"corp|co|limited|group|gruppe)(?![\w])")
_NAME_TOKEN = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*\.?|,")
# (starts with "@": the regex engine finds it by a fast literal search; what stands before it is checked after)
_HANDLE = re.compile(r"@([^\W\d_]+(?:['-][^\W\d_]+)*(?:[._][^\W\d_]+(?:['-][^\W\d_]+)*){1,2})"
                     r"(?![\w@-]|\.[^\W\d_])")
_NOT_HANDLE_WORDS = frozenset("""
    team support dev devs ops oncall on-call admin admins bot bots info sales help billing all here channel everyone
    service desk it hr finance legal security qa release prod staging eng engineering group
    com net org io de fr es it nl pt co uk eu info app dev
""".split())
# words that end a name or show the value is none ("Customer: premium", "I am waiting", "ik ben blij")
_NOT_NAME_WORDS = frozenset("""
    here there thanks thank please pls from and or but with again also sorry still just now today yes no not the a an
    my your our his her their this that is was are were be been have has had will would can could should i you we
    they he she it me us them who what when where why how which if so very really too much many more most some any
    all none n/a na tbd unknown required optional premium standard basic gold silver business private customer
    client new old dear hello hi hey good great fine ok okay sure happy glad sad angry upset disappointed waiting
    writing calling trying looking contacting having getting still available unavailable interested satisfied
    unhappy confused frustrated sure certain afraid aware able unable back home away late early ready done
    und oder aber mit von zu im am ist bin sind war nicht noch schon auch sehr hier da dort danke bitte kunde
    seit leider gerne froh traurig wütend enttäuscht sauer ihr ihre mein meine unser euer
    et ou mais avec de du des le la les un une est suis sont pas encore aussi très ici là merci client cliente
    depuis content contente déçu déçue désolé désolée
    y o pero con del el los las una es soy está estoy somos no todavía también muy aquí allí gracias cliente
    desde contento contenta enfadado molesto
    e ma con di da il lo gli una è sono siamo non ancora anche molto qui lì grazie cliente contento contenta
    deluso delusa arrabbiato
    en of maar met van het een is ben zijn niet nog ook erg hier daar bedankt klant blij boos teleurgesteld
    ou mas com do da os as um uma é sou somos não ainda também muito aqui ali obrigado obrigada cliente
    contente chateado chateada gmbh ag ltd inc sa sarl srl bv nv llc plc kg spa sl lda corp group
    directrice directeur président présidente maire director directora presidente direttore direttrice ministre
    minister ministro manager gerente responsable
""".split())


def _labelled_name(text: str, start: int, kind: str, recased: bool) -> tuple[int, int] | None:
    """The name that starts at `start` after a cue of this kind: up to four words (particles besides), "FAMILY,
    Given" after a label, ending at the first word that is no name (or in lower case after a capitalised one)."""
    words: list[re.Match] = []
    comma = False
    cased_name = None  # whether the name's first word is capitalised: a lower-case word after it ends the name
    pos = start
    while len(words) < 7:
        m = _NAME_TOKEN.match(text, pos)
        if not m or (m.end() < len(text) and text[m.end()].isalnum()):  # glued to digits: "CP768202357FR"
            break
        word = m.group()
        if word == ",":
            if comma or not words or kind not in ("label", "owner") or len(words) > 3:
                break
            comma = True
        else:
            bare = word.rstrip(".")
            particle = bare.lower() in _NAME_PARTICLES or bare.lower() in _PARTICLE_WORDS
            initial = len(bare) == 1 and word.endswith(".")
            if not words and bare.lower() in _NAME_TITLES and len(bare) > 1:  # "ich bin Frau Dr. Müller"
                pos = m.end() + 1 if text[m.end():m.end() + 1] == " " else m.end()
                if pos == m.end():
                    break
                continue
            if not (particle or initial) and (bare.casefold() in _NOT_NAME_WORDS or bare.lower() in _NOT_NAMES
                                              or bare.lower() in _LOWER_STOP or len(bare) < 2
                                              or (cased_name and bare.islower())):
                break
            company = _COMPANY_AFTER.match(text, m.end())
            if company:  # "Thomas Berg de Globex Inc.": the words before a company's legal form are its name
                break
            if word.endswith(".") and len(bare) > 1:  # a name at a sentence's end: "Mi chiamo Anna Rossi."
                words.append(m)
                break
            if cased_name is None and not particle:
                cased_name = bare[0].isupper()
            words.append(m)
        nxt = m.end()
        gap = text[nxt:nxt + 2]
        if word == ",":
            if not gap.startswith(" "):
                break
            pos = nxt + 1
        elif gap[:1] == " " and gap[1:2] not in ("", " ", "\t", "\n"):
            pos = nxt + 1
        elif gap[:1] == ",":
            pos = nxt
        else:
            break
    while words and (words[-1].group() == "," or words[-1].group().lower() in _PARTICLE_WORDS):
        words.pop()
    if not words:
        return None
    names = [w.group().rstrip(".") for w in words if w.group() != ","]
    real = [n for n in names if n.lower() not in _NAME_PARTICLES and n.lower() not in _PARTICLE_WORDS]
    if not real or len(real) > 4 or any(len(n) > 30 for n in names):
        return None
    end = words[-1].start() + len(words[-1].group().rstrip("."))
    in_lexicon = any(n.lower() in _GIVEN_NAMES or n.lower() in _FAMILY_NAMES for n in real)
    proper = all(n[0].isupper() for n in real) and not all(n.isupper() and len(n) <= 3 for n in real)
    # after a weak cue ("ich bin", "this is") only a title-cased name as written, or one the lexicons know
    title = not recased and all(n[0].isupper() and not n.isupper() for n in real)
    if kind == "weak" and not (2 <= len(real) <= 3 and (in_lexicon or title)):
        return None
    if kind in ("label", "strong", "signoff") and len(real) < 2 and not in_lexicon:
        return None
    if kind == "signoff" and not (proper or in_lexicon):
        return None
    if kind == "title" and not (len(names[0]) == 1 and words[0].group().endswith(".") and len(real) >= 2):
        return None  # "Dear Mrs S. Oyelowo": an initial and a family name (a title and a name alone: _TITLES)
    if kind == "title_word" and not (title or in_lexicon):
        return None
    if kind in ("label", "owner"):
        # a label's value is the whole field ("Kunde: XAVIER, Sunita" and a line break, a comma, a dash): a chat
        # speaker's "Customer: card number 5189..." is a message, no name
        if not re.match(r"[ \t]*(?:$|\r?\n|[,;|\"'(/<]|[ \t][—–-][ \t]|\.[ \t]*(?:$|\r?\n))", text[end:end + 4]) and (
                not re.match(r"[ \t]+(?i:here|thanks|thank you|please|merci|danke|gracias|grazie|obrigad[oa]|bedankt)"
                             r"(?![\w])", text[end:end + 12])):
            return None
        if kind == "label" and all(n.islower() for n in real) and not in_lexicon:
            return None
    return words[0].start(), end


@lru_cache(maxsize=64)
def _labelled_names(text: str, recased: bool = False) -> tuple[tuple[int, str], ...]:
    found: list[tuple[int, str]] = []
    lower = _lower(text)
    if lower is not None:
        for _, cue_end, cue in _form_cue_hits(lower):
            kind = _NAME_CUE_KIND.get(cue)
            if kind is None or (kind in ("label", "owner") and ":" not in lower[cue_end:cue_end + 8]
                                and "=" not in lower[cue_end:cue_end + 8]):
                continue
            after = _NAME_CUE_AFTER.get(kind, _NAME_INTRO_AFTER).match(text, cue_end)
            if after and not text[after.end():after.end() + 1].isalpha():
                continue
            if not after or (kind in ("label", "owner") and ":" not in after.group() and "=" not in after.group()):
                continue
            span = _labelled_name(text, after.end(), kind, recased)
            if span:
                found.append((span[0], text[span[0]:span[1]]))
    if "@" in text:
        for m in _HANDLE.finditer(text):
            if m.start() and not (text[m.start() - 1].isspace() or text[m.start() - 1] in "(,;[{"):
                continue  # an e-mail address, a URL's user info
            if not any(part.lower() in _NOT_HANDLE_WORDS for part in re.split(r"[._]", m.group(1))):
                found.append((m.start(1), m.group(1)))
    return tuple(found)


def _find_name(text: str, known_names: Iterable[str] = (), recased: bool = False) -> Iterable[tuple[int, int]]:
    names: set[str] = {n for n in known_names if n}
    for start, name in _cued_names(text):
        names.add(name)
        yield start, start + len(name)
    for start, name in _labelled_names(text, recased):
        names.add(name)
        yield start, start + len(name)
    for start, end in _lexicon_spans(text, recased):
        yield start, end
        if " " in text[start:end]:  # a whole name ("Thandiwe Okonkwo"): its parts are names too ("Okonkwo said")
            names.add(text[start:end])
    # a name seen in a cue is personal data wherever else it occurs in the text (also its parts)
    tokens = set(names)
    for name in names:
        tokens.update(w for w in name.split(" ")
                      if len(w) >= 3 and w.lower() not in _NOT_NAMES and w.lower() not in _NAME_PARTICLES)
    for token in sorted(tokens, key=len, reverse=True):
        start = text.find(token)
        while start != -1:  # str.find, not a regex: a pattern per name would be compiled for every record
            end = start + len(token)
            if not (start > 0 and _is_word_char(text[start - 1])) and not (end < len(text) and
                                                                          _is_word_char(text[end])):
                yield start, end
            start = text.find(token, start + 1)


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def names_in(text: str, options: PiiOptions | None = None) -> set[str]:
    """The names found by their cues (and the NER model, if configured) in a text, to carry names across the
    turns of a conversation."""
    folded = shadow(text).text
    names = {name for _, name in _cued_names(folded)}
    names.update(name for _, name in _labelled_names(folded))
    cased = _cased(folded)  # whole names from the lexicons too: "Thandiwe Okonkwo" makes "Okonkwo" a name later
    names.update(n for s, e in _lexicon_spans(cased, cased is not folded) if " " in (n := cased[s:e]))
    if options is not None and options.ner_model:
        names.update(folded[s:e] for s, e in _ner_names(options.ner_model, folded))
    return names


# --- tables pasted from spreadsheets ---------------------------------------------------------------
# A block of lines split into the same number of cells by tabs, "|" or ";": the header row is the cue for the
# cells under it ("Geburtsdatum" over "03.03.1985"), which carry no cue of their own.
_IDENTIFIER = "IDENTIFIER"  # not an entity: a column whose cells are no personal data
_COLUMN_ENTITY = [
    ("DOB", re.compile(r"(?i)^(?:dob|d\.o\.b\.?|date of birth|birth ?date|birthday|geburtsdatum|geb\.?(?:-?datum)?|"
                       r"date (?:de )?naiss(?:ance|\.)?|ddn|f(?:echa)?\.? ?(?:de )?nac(?:imiento|\.)?|"
                       r"data di nascita|data (?:de )?nasc(?:imento|\.)?|geboortedatum|geb\.? ?datum|nascimento)$")),
    ("NATIONAL_ID", re.compile(r"(?i)^(?:ssn|sin|nino?|bsn|nif|nie|dni|nir|id(?: no\.?| number| nr\.?)?|"
                               r"national id|passport(?: no\.?)?|ausweis\S*|[\w./-]*steuer[\w./-]*|"
                               r"n° (?:identité|sécu)|"
                               r"documento|identidad|codice fiscale|c\.f\.|svnr|sv-nummer|contribuinte|"
                               r"n\.?º? contribuinte|burgerservicenummer|pesel|personnummer|cpr|"
                               r"rijksregisternummer)$")),
    ("PHONE", re.compile(r"(?i)^(?:phone|tel\.?|tél\.?|telephone|telefon|teléfono|téléphone|mobile|mobil|móvil|"
                         r"handy|cell|portable|fax|telefone|telemóvel|telemovel|telefono|cellulare|telefoon|mobiel|"
                         r"gsm|contacto)(?: (?:no\.?|number|nr\.?|nummer|numero|número))?$")),
    ("ADDRESS", re.compile(r"(?i)^(?:address|street|adresse|anschrift|straße|dirección|direccion|domicilio|rue|"
                           r"indirizzo|adres|morada|endereço|endereco)$")),
    ("NAME", re.compile(r"(?i)^(?:name|full name|customer|customer name|contact|first name|last name|surname|"
                        r"vorname|nachname|kunde|nom|prénom|nom complet|nombre|apellidos?|nombre completo|titular|"
                        r"account holder|cardholder|kontoinhaber(?:in)?|karteninhaber|titulaire|intestatario|titolare|"
                        r"rekeninghouder|naam|nome|cognome|klant|cliente|client|voornaam|achternaam)$")),
    # a column of order, invoice or tracking numbers: its cells are no phone or card numbers however they look
    # ("Commande" over "0912345678"), as such a word before a number says inline
    (_IDENTIFIER, re.compile(r"(?i)^(?:order|orders|order (?:no\.?|number|id|#)|order_id|bestellung|bestellnr\.?|"
                             r"bestellnummer|auftrag|auftragsnr\.?|commande|cde|n° (?:de )?commande|pedido|"
                             r"n[º°] (?:de )?pedido|invoice|invoice (?:no\.?|number)|rechnung|rechnungsnr\.?|facture|"
                             r"factura|ticket|ticket (?:no\.?|number|id)|case|case (?:no\.?|number|id)|vorgang|"
                             r"tracking|tracking (?:no\.?|number)|sendungsnummer|suivi|seguimiento|sku|art\.?-?nr\.?|"
                             r"artikelnummer|ref\.?|reference|référence|referencia|kundennr\.?|kundennummer|"
                             r"customer (?:no\.?|number|id)|contract|vertrag|vertragsnr\.?|contrat|contrato)$")),
]
_CELL_OK = {  # what a cell must look like to be taken on its header's word
    "DOB": re.compile(rf"(?i){_DATE}"),
    "NATIONAL_ID": re.compile(r"(?=(?:\D*\d){5})[A-Za-z0-9][A-Za-z0-9 ./-]{4,24}"),
    "PHONE": re.compile(r"\+?[\d ()./-]{7,22}"),
    "ADDRESS": re.compile(r".{6,120}"),
    "NAME": re.compile(rf"(?:{_NAME_WORD}|[{_UP}]{{2,}}|[a-zß-öø-ÿ]{{2,}})(?:[ ,'-]+(?:{_NAME_WORD}|[{_UP}]{{2,}}|"
                       rf"[a-zß-öø-ÿ]{{2,}}|{_PARTICLE})){{0,4}}"),
    _IDENTIFIER: re.compile(r"[\w ./#-]{3,40}"),
}


@lru_cache(maxsize=256)
def _table_cells(text: str) -> dict[str, tuple[tuple[int, int], ...]]:
    """Spans of cells per entity, from the columns whose header names that entity."""
    found: dict[str, list[tuple[int, int]]] = {}
    for sep in ("\t", "|", ";"):
        if text.count(sep) < 2:
            continue
        header: list[str | None] | None = None
        pos = 0
        for line in text.split("\n"):
            cells = line.split(sep)
            if len(cells) < 2 or (header is not None and len(cells) != len(header)):
                header = None
            if len(cells) >= 2 and header is None:
                entities = []
                for cell in cells:
                    label = cell.strip().strip("*:").strip()
                    entities.append(next((e for e, p in _COLUMN_ENTITY if p.match(label)), None))
                # "Adresse:<tab>Calle Mayor 5": a label with its value on the same line is a form line, not the
                # header of a column (the next line's cells would be taken as addresses)
                form_line = any(cell.rstrip().endswith(":") and i + 1 < len(cells) and cells[i + 1].strip()
                                and not cells[i + 1].rstrip().endswith(":") and entities[i + 1] is None
                                for i, cell in enumerate(cells))
                header = entities if any(entities) and not form_line else None
            elif header is not None:
                start = pos
                for entity, cell in zip(header, cells, strict=True):
                    value = cell.strip()
                    if entity and value and _CELL_OK[entity].fullmatch(value):
                        offset = start + cell.index(value)
                        found.setdefault(entity, []).append((offset, offset + len(value)))
                    start += len(cell) + 1
            pos += len(line) + 1
    return {e: tuple(spans) for e, spans in found.items()}


def _with_table_cells(entity: str, finder: Callable[[str, PiiOptions], Iterable[tuple[int, int]]]):
    def find(text: str, options: PiiOptions) -> Iterable[tuple[int, int]]:
        if "\t" not in text and "|" not in text and ";" not in text:
            yield from finder(text, options)
            return
        cells = _table_cells(text)
        identifiers = cells.get(_IDENTIFIER)
        for start, end in finder(text, options):
            if not (identifiers and any(s <= start and end <= e for s, e in identifiers)):
                yield start, end
        yield from cells.get(entity, ())
    return find


_FINDERS: dict[str, Callable[[str, PiiOptions], Iterable[tuple[int, int]]]] = {
    "SECRET": _find_secret,
    "EMAIL": _find_email,
    "IBAN": _find_iban,
    "CARD": _with_table_cells("CARD", _find_card),
    "SSN": _find_ssn,
    "NATIONAL_ID": _with_table_cells("NATIONAL_ID", _find_national_id),
    "DOB": _with_table_cells("DOB", _find_dob),
    "IP": _find_ip,
    "PHONE": _with_table_cells("PHONE", _find_phone),
    "ADDRESS": _with_table_cells("ADDRESS", lambda text, options: _find_address(_cased(text), options)),
}


_DROP_UPPER = dict.fromkeys(range(ord("A"), ord("Z") + 1))
_DROP_LOWER = dict.fromkeys(range(ord("a"), ord("z") + 1))


@lru_cache(maxsize=256)  # the NAME and ADDRESS recognizers ask for the same text
def _cased(text: str) -> str:
    """ALL CAPS or all-lower-case text title-cased (same length), so the capitalised-word rules for names and
    streets still apply ("REGARDS,\nANNA BERG", "vivo en calle mayor 5"); other text as it is."""
    if text.isascii():  # deleting the other case's letters in C beats a call per character
        upper = len(text) - len(text.translate(_DROP_UPPER))
        lower = len(text) - len(text.translate(_DROP_LOWER))
    else:
        upper = sum(map(str.isupper, text))
        lower = sum(map(str.islower, text))
    if upper + lower < 12 or (upper < 4 * lower and upper > lower / 50):
        return text
    cased = text.title()
    # title() capitalises after an apostrophe ("Don'T"): undo that; keep only a same-length result
    cased = re.sub(r"(?<=\w)['’]([A-Z])(?![a-z])", lambda m: m.group()[0] + m.group(1).lower(), cased)
    return cased if len(cased) == len(text) else text


def find_pii(
    text: str, entities: Iterable[str] | None = None, *, known_names: Iterable[str] = (),
    options: PiiOptions | None = None,
) -> list[PiiMatch]:
    """Non-overlapping PII matches sorted by position; on overlap the higher-priority entity (ALL_ENTITIES
    order), then the longer span, wins. `known_names` are names (from other turns) to also match here.
    Raises PiiTimeout when detection takes longer than options.max_seconds_per_record."""
    return _detect(text, entities, known_names, options)[0]


class _Taken:
    """Disjoint spans sorted by start: overlap look-ups in O(log n), so 10 000 matches in a record stay cheap."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.placeholder: list[bool] = []

    def overlapping(self, start: int, end: int) -> list[tuple[int, int, bool]]:
        i = bisect.bisect_right(self.ends, start)  # spans before i end at or before `start`
        out = []
        while i < len(self.starts) and self.starts[i] < end:
            out.append((self.starts[i], self.ends[i], self.placeholder[i]))
            i += 1
        return out

    def add(self, start: int, end: int, placeholder: bool = False) -> None:
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)
        self.placeholder.insert(i, placeholder)


def _can_come_back(entity: str, text: str, start: int, end: int, won_start: int, won_end: int) -> bool:
    """Whether a candidate that lost to an overlapping match may be found (shorter) once that match is a
    placeholder: only if it sticks out of it, and not an e-mail address whose local part the winner took
    ("https://ines:pw@dav.example.org": the user info is the secret; "<SECRET_x>@dav.example.org" is no address)."""
    if start >= won_start and end <= won_end:
        return False
    if entity == "EMAIL" and start >= won_start:
        at = text.find("@", start, end)
        return not 0 <= at < won_end
    return True


def _detect(text: str, entities: Iterable[str] | None, known_names: Iterable[str],
            options: PiiOptions | None) -> tuple[list[PiiMatch], bool]:
    """find_pii, and whether a candidate lost to an overlapping match (it may come back once that is replaced)."""
    options = options or DEFAULT_OPTIONS
    wanted = set(ALL_ENTITIES if entities is None else entities)
    unknown = wanted - set(ALL_ENTITIES)
    if unknown:
        raise ValueError(f"unknown PII entities: {', '.join(sorted(unknown))}")
    if options.ner_model:
        _ner_pipeline(options.ner_model)  # loaded once per process, before the record's clock starts
    deadline = time.monotonic() + options.max_seconds_per_record
    sh = shadow(text)
    taken = _Taken()
    for m in _PLACEHOLDER.finditer(sh.text):
        taken.add(m.start(), m.end(), placeholder=True)
    contested = False
    accepted: list[PiiMatch] = []
    for entity in ALL_ENTITIES:
        if entity not in wanted:
            continue
        if entity == "NAME":
            cased = _cased(sh.text)
            spans = list(_find_name(cased, known_names, recased=cased is not sh.text))
            if "\t" in sh.text or "|" in sh.text or ";" in sh.text:
                spans += _table_cells(sh.text).get("NAME", ())
            if options.ner_model:
                spans += _ner_names(options.ner_model, sh.text)
        else:
            spans = _FINDERS[entity](sh.text, options)
        for start, end in sorted(set(spans), key=lambda s: (s[0], -(s[1] - s[0]))):
            overlapping = taken.overlapping(start, end)
            if overlapping:
                # only a loser that sticks out of the winner can come back (shorter) once the winner is replaced
                contested = contested or any(not placeholder and _can_come_back(entity, sh.text, start, end, s, e)
                                             for s, e, placeholder in overlapping)
                continue
            taken.add(start, end)
            o_start, o_end = sh.span(start, end)
            accepted.append(PiiMatch(entity, o_start, o_end, text[o_start:o_end]))
        if time.monotonic() > deadline:
            raise PiiTimeout(f"PII detection took longer than {options.max_seconds_per_record} s")
    return sorted(accepted, key=lambda m: m.start), contested


def normalize(entity: str, value: str) -> str:
    """The canonical form hashed into a placeholder: one value spelled two ways gets one pseudonym."""
    value = _as_detected(value)  # look-alikes and zero-width characters do not make a new value
    if entity == "EMAIL":
        return value.lower()
    if entity in ("CARD", "SSN", "NATIONAL_ID"):
        return re.sub(r"\D", "", value)
    if entity == "PHONE":
        digits = re.sub(r"\D", "", value)
        return digits[2:] if value.startswith("00") else digits  # 0044... and +44... are one number
    if entity == "IBAN":
        return re.sub(r"[ -]", "", value).upper()
    if entity == "IP":
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    if entity == "SECRET":
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
        digest = hmac.digest(self._key, f"{entity}\x00{normalize(entity, value)}".encode(), "sha256")  # one-shot
        return f"<{entity}_{digest.hex()[:8]}>"

    def surrogate(self, entity: str, value: str) -> str:
        """A realistic fake of the same kind and shape; the same value always gets the same fake."""
        from retune.pii_surrogate import surrogate

        if entity == "REDACTED":
            return self.placeholder(entity, value)
        return surrogate(self._key, entity, value, normalize(entity, value))


def _replace(text: str, matches: list[PiiMatch], pseudonymizer: Pseudonymizer,
             created: dict[str, tuple[str, str]]) -> str:
    out, pos = [], 0
    for m in matches:
        placeholder = pseudonymizer.placeholder(m.entity, m.value)
        created.setdefault(placeholder, (m.entity, m.value))
        out += [text[pos:m.start], placeholder]
        pos = m.end
    out.append(text[pos:])
    return "".join(out)


# an HTML tag ("<br>", "</p>", '<td class="x">'): no recognizer's match starts or ends inside one or runs through
# one, and look-arounds beside a tag read the tag's own "<" or ">", so a span a tag borders has no neighbour there
_TAG_AFTER = re.compile(r"</?[A-Za-z][A-Za-z0-9]{0,9}(?:[ ][^<>\n]{0,60})?[ ]?/?>")
_TAG_BEFORE = re.compile(r"</?[A-Za-z][A-Za-z0-9]{0,9}(?:[ ][^<>\n]{0,60})?[ ]?/?>$")

_DIGIT_BEFORE_SEPARATOR = re.compile(r"\d[ .\-/_]{1,4}$")
_SEPARATOR_BEFORE_DIGIT = re.compile(r"[ .\-/_]{1,4}\d")
_PORT = re.compile(r":\d{1,5}(?![\w:.])")


def _as_detected(text: str) -> str:
    """The shadow text of a short stretch (ASCII without "&" or "%" is its own shadow: no cache look-up)."""
    if text.isascii() and "&" not in text and "%" not in text:
        return text
    return shadow(text).text


def _touches_neighbour(text: str, start: int, end: int, covered: Callable[[int], bool],
                       title_cased: Callable[[], bool] = lambda: True) -> bool:
    """Whether a candidate beside this span could read it through a look-behind/look-ahead (at most 2 chars).
    `covered(i)`: whether text[i] is inside a match replaced in the same round or an earlier placeholder;
    `title_cased()`: whether the name rules will read the text after the replacement title-cased."""
    left, right = _as_detected(text[max(0, start - 8):start]), _as_detected(text[end:end + 8])
    b1, b2 = left[-1:], left[-2:-1]
    a1, a2 = right[:1], right[1:2]
    # A side where one of the two characters is replaced too (or is a placeholder) has no neighbour to free: a
    # candidate ending (starting) there would overlap that placeholder, and no match is one character long.
    # ("...:Kx9Zq7@10.0.0.5": the secret and the address are replaced together.) Only where detection saw the
    # characters as they are (nothing folded away between them).
    if left == text[max(0, start - 8):start] and (covered(start - 1) or covered(start - 2)):
        b1 = b2 = " "
    if right == text[end:end + 8] and (covered(end) or covered(end + 1)):
        a1 = a2 = " "
    if b1 == ">" and _TAG_BEFORE.search(text, max(0, start - 80), start):
        b1 = b2 = " "
    # "pwd=Kx!...", "user=anna@...": a look-ahead of a word before "=" reads "=" and then the span's first
    # character, and only a "." "," or "-" there makes a look-ahead read on (to a digit); no value class runs
    # from a word over "=" into a span and stops at a placeholder's "<" with a new match
    if b1 == "=" and b2.isalnum():
        b1 = b2 = " "
    # "postgres://app_user:pw@...": no match ends in "://", and a URL that loses its user info to a placeholder
    # only ends there (numbers in it stay behind a "/", "=" or "." that the phone rules refuse)
    if b1 == "/" and left.endswith("://"):
        b1 = b2 = " "
    # "...@10.0.0.5:5432/": the 2-character look-behinds that read "x:" are for "=", "-", "." and space only
    if a1 == ":" and _PORT.match(right):
        a1 = a2 = " "
    if a1 == "<" and _TAG_AFTER.match(text, end):
        a1 = a2 = " "
    # "https://ines:pw@dav.example.org": after "@" only a mention ("@Anna", a capital) starts a candidate that
    # reads the span's last character, and only in text the name rules read as it is written
    if a1 == "@" and a2 and not a2.isupper() and right == text[end:end + 8] and not title_cased():
        a1 = a2 = " "
    return bool(
        b1.isalnum() or b1 == "_" or (b1 and not b1.isspace() and b2 and not b2.isspace())
        # one character after the span, a candidate's 2-character look-behinds and cue words only matter for
        # numbers ("(?<!\d[ .-])", "order no:"); a word there reads that one character alone
        or a1.isalnum() or a1 == "_" or (a1 and a1 in "+(=<@")
        or (a1 and not a1.isspace() and a2 and (a2.isdigit() or a2 in "+("))
        # number groups run on over separators ("0958 - 0151 ...", "1111  4111"): a number beside the span may
        # have been read into it and failed, and be found alone once the span is a placeholder
        or (_DIGIT_BEFORE_SEPARATOR.search(left) is not None and text[start:start + 1].isdigit())
        or (_SEPARATOR_BEFORE_DIGIT.match(right) is not None and text[end - 1:end].isdigit())
    )


def _settled(text: str, matches: list[PiiMatch], replaced: str) -> bool:
    """Whether replacing these matches (giving `replaced`) can leave nothing new to find (see _settle)."""
    spans = [(m.start, m.end) for m in matches]
    if "<" in text:
        spans = sorted(spans + [p.span() for p in _PLACEHOLDER.finditer(text)])
    starts = [s for s, _ in spans]

    def covered(i: int) -> bool:
        k = bisect.bisect_right(starts, i) - 1
        return i >= 0 and k >= 0 and spans[k][1] > i

    def title_cased() -> bool:  # whether the name rules will read the replaced text title-cased
        folded = shadow(replaced).text
        return _cased(folded) is not folded

    return not any(_touches_neighbour(text, m.start, m.end, covered, title_cased) for m in matches)


def anonymize_text(
    text: str, pseudonymizer: Pseudonymizer, entities: Iterable[str] | None = None, *,
    known_names: Iterable[str] = (), options: PiiOptions | None = None,
) -> tuple[str, Counter[str]]:
    """The text with every PII match replaced by its placeholder (or, with options.replacement "surrogate", by a
    realistic fake of the same shape), and the count per entity. A record whose detection runs over its time
    budget becomes one REDACTED placeholder (counted as REDACTED)."""
    options = options or DEFAULT_OPTIONS
    counts: Counter[str] = Counter()
    created: dict[str, tuple[str, str]] = {}  # placeholder -> (entity, original value)
    current = _settle(text, pseudonymizer, entities, known_names, options, counts, created)
    if options.replacement == "surrogate" and created:
        # detection ran on placeholders (they are never re-detected); the fakes go in last
        current = _PLACEHOLDER.sub(
            lambda m: pseudonymizer.surrogate(*created[m.group()]) if m.group() in created else m.group(), current)
    return current, counts


def _settle(text: str, pseudonymizer: Pseudonymizer, entities: Iterable[str] | None, known_names: Iterable[str],
            options: PiiOptions, counts: Counter[str], created: dict[str, tuple[str, str]]) -> str:
    current = text
    # A replacement can change the context of a neighbour ("...78a@b.co": the phone ends at a letter until
    # the e-mail becomes a placeholder), so repeat until nothing is found: anonymizing is then idempotent.
    # A neighbour's context only changes when it touches the replaced span (a letter or digit right beside it)
    # or sits one separator away with digits on both sides ("...4567 4111 1111...": the look-behinds and
    # look-aheads of the recognizers are at most two characters, and placeholders hold no cue word), so the
    # confirming round is skipped when no match has such a neighbour and no candidate lost to an overlapping
    # match (a phone inside "0958-anna@example.com" comes back shorter once the e-mail is a placeholder).
    for _ in range(32):  # each round replaces at least one match; glued values may unlock one per round
        try:
            matches, contested = _detect(current, entities, known_names, options)
        except PiiTimeout:
            counts.clear()
            counts["REDACTED"] = 1
            created.clear()
            return pseudonymizer.placeholder("REDACTED", text)
        if not matches:
            return current
        counts.update(m.entity for m in matches)
        replaced = _replace(current, matches, pseudonymizer, created)
        settled = not contested and _settled(current, matches, replaced)
        current = replaced
        if settled:
            return current
    return current


def _wants_names(entities: Iterable[str] | None) -> bool:
    return entities is None or "NAME" in entities


def anonymize_table(
    table: pa.Table, pseudonymizer: Pseudonymizer, entities: Iterable[str] | None = None, column: str = "text",
    *, options: PiiOptions | None = None,
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
                names_by_conv.setdefault(cid, set()).update(names_in(text, options))
    counts: Counter[str] = Counter()
    new_texts = []
    for i, text in enumerate(texts):
        if text is None:
            new_texts.append(None)
            continue
        known = names_by_conv.get(conv_ids[i], ()) if conv_ids is not None else ()
        new, c = anonymize_text(text, pseudonymizer, entities, known_names=known, options=options)
        new_texts.append(new)
        counts.update(c)
    index = table.column_names.index(column)
    field = table.schema.field(index)
    import pyarrow as pa

    return table.set_column(index, field, pa.array(new_texts, type=field.type)), counts


def load_key(env_var: str = "RETUNE_PII_KEY") -> tuple[bytes, bool]:
    """The pseudonymization key from the environment, and whether it is the development default (unset)."""
    value = os.environ.get(env_var, "")
    if not value:
        return DEV_KEY, True
    return value.encode(), False
