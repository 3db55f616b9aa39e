"""The length X gives a post: twitter-text's "weighted length", not the number of characters.

X counts a post after NFC normalisation, code point by code point: most Latin, Greek, Cyrillic,
Hebrew, Arabic, Devanagari ... (U+0000-U+10FF) and a few punctuation ranges weigh 1, everything
else (CJK, most emoji) weighs 2, so 280 is 280 Latin letters but only 140 CJK characters. Every
URL counts 23 (its t.co form) however long it is written, and an emoji sequence (a family joined
with zero-width joiners, a flag, a skin tone) counts 2 in all. These are the rules of twitter-text
v3 (its ``config/v3.json``); ``tests/jobs/data/twitter_text_weighted.yml`` holds its official
conformance cases, which this module passes.

URL detection follows twitter-text's rules where they change a count (a host label over 63
characters, in punycode for an internationalised one, is no URL; a URL written without
``http(s)://`` needs a known top-level domain). It is deliberately smaller than twitter-text's
extractor: no full top-level-domain list, so a rare TLD written without a scheme counts as text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_WEIGHTED_LENGTH = 280


@dataclass(frozen=True)
class TextConfig:
    """One twitter-text configuration (``config/v2.json``, ``config/v3.json``)."""

    max_weighted_length: int = MAX_WEIGHTED_LENGTH
    scale: int = 100
    default_weight: int = 200
    # (first, last, weight): inclusive code-point ranges with their own weight.
    ranges: tuple[tuple[int, int, int], ...] = (
        (0, 4351, 100),
        (8192, 8205, 100),
        (8208, 8223, 100),
        (8242, 8247, 100),
    )
    transformed_url_length: int = 23
    emoji_parsing: bool = True


V3 = TextConfig()
V2 = TextConfig(emoji_parsing=False)  # the conformance suite's first section counts with v2


@dataclass(frozen=True)
class ParsedText:
    weighted_length: int
    # Empty, over the limit, or holding a character X refuses (U+FFFE, U+FEFF, U+FFFF).
    valid: bool
    # The weighted length in thousandths of the limit, as twitter-text reports it.
    permillage: int
    # Whether the text holds a URL: X prices such a post differently.
    has_url: bool


_INVALID_CHARS = frozenset("\ufffe\ufeff\uffff")

# -- URLs ---------------------------------------------------------------------------------------
# Characters that may not come right before a URL (twitter-text: "invalid preceding chars").
_BEFORE = r"(?<![\w@#$\uff20\uff03\uff04.\-/])"  # fullwidth @ # $ too
_LABEL = r"[^\W_](?:[\w\-]*[^\W_])?"  # letters/digits, inner '-' and '_'; Unicode allowed
_HOST = rf"(?:{_LABEL}\.)+{_LABEL}"
_PORT = r"(?::[0-9]{1,5})?"
# A path runs until whitespace or a character X does not link; trailing punctuation is cut below.
_PATH = r"(?:[/?#][^\s\"<>\u202a-\u202e\u2066-\u2069]*)?"
_URL = re.compile(
    rf"{_BEFORE}(?P<scheme>https?://)?(?P<host>{_HOST}){_PORT}(?P<path>{_PATH})", re.I
)
_TRAILING = ".,:;!?'\"()[]{}…"
MAX_LABEL_CHARS = 63
# Top-level domains a URL without a scheme may end in: the generic ones in common use and every
# two-letter country code. With a scheme, any alphabetic top-level domain counts.
_GENERIC_TLDS = frozenset(
    {
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "mil",
        "int",
        "info",
        "biz",
        "name",
        "pro",
        "aero",
        "coop",
        "museum",
        "mobi",
        "asia",
        "tel",
        "travel",
        "jobs",
        "xxx",
        "app",
        "dev",
        "io",
        "ai",
        "blog",
        "shop",
        "store",
        "online",
        "site",
        "tech",
        "xyz",
        "club",
        "live",
        "news",
        "page",
        "cloud",
        "art",
        "design",
        "link",
        "top",
        "wiki",
        "media",
        "global",
        "world",
        "today",
        "email",
        "solutions",
        "agency",
        "digital",
        "network",
        "social",
        "studio",
        "space",
        "website",
    }
)


def _label_ok(label: str) -> bool:
    if label.isascii():
        return len(label) <= MAX_LABEL_CHARS
    try:
        return len("xn--" + label.encode("punycode").decode("ascii")) <= MAX_LABEL_CHARS
    except UnicodeError:
        return False


def _is_url(scheme: str | None, host: str) -> bool:
    labels = host.split(".")
    if not all(_label_ok(label) for label in labels):
        return False
    tld = labels[-1].lower()
    if not tld.isalpha() or "_" in labels[-2]:
        return False
    if scheme:
        return len(tld) >= 2
    return tld.isascii() and (len(tld) == 2 or tld in _GENERIC_TLDS)


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) code-point spans of the URLs X would link (and count as 23)."""
    spans = []
    for match in _URL.finditer(text):
        if not _is_url(match["scheme"], match["host"]):
            continue
        end = match.end()
        if match["path"]:
            while end > match.end("host") and text[end - 1] in _TRAILING:
                end -= 1
        spans.append((match.start(), end))
    return spans


# -- emoji --------------------------------------------------------------------------------------
# A pictographic character: the emoji blocks and the older symbols Unicode lists as emoji.
_PICTO = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u23cf"
    "\u23e9-\u23f3\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u27bf"
    "\u2934\u2935\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001faff"
)
_MODIFIER = "[\ufe0f\U0001f3fb-\U0001f3ff]*"
_EMOJI = re.compile(
    "[\U0001f1e6-\U0001f1ff]{2}"  # a flag: two regional indicators
    "|[0-9#*]\ufe0f?\u20e3"  # a keycap
    "|\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f"  # a subdivision flag (tag sequence)
    f"|[{_PICTO}]{_MODIFIER}(?:\u200d[{_PICTO}]{_MODIFIER})*"
)


def _emoji_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _EMOJI.finditer(text)]


# -- counting -----------------------------------------------------------------------------------
def _weight(char: str, config: TextConfig) -> int:
    code = ord(char)
    for first, last, weight in config.ranges:
        if first <= code <= last:
            return weight
    return config.default_weight


def parse_tweet(text: str, config: TextConfig = V3) -> ParsedText:
    """The weighted length of ``text`` as X counts it, and whether X accepts it."""
    text = unicodedata.normalize("NFC", text)
    urls = url_spans(text)
    # What counts as one unit: a URL, then (v3) an emoji sequence; everything else by the char.
    units: dict[int, tuple[int, int]] = {s: (e, config.transformed_url_length * config.scale)
                                         for s, e in urls}  # fmt: skip
    if config.emoji_parsing:
        for start, end in _emoji_spans(text):
            if not any(s <= start < e for s, e in urls):
                units.setdefault(start, (end, config.default_weight))
    total, index = 0, 0
    while index < len(text):
        unit = units.get(index)
        if unit is not None:
            index, weight = unit
            total += weight
            continue
        total += _weight(text[index], config)
        index += 1
    weighted_length = total // config.scale
    limit = config.max_weighted_length
    valid = 0 < weighted_length <= limit and not _INVALID_CHARS.intersection(text)
    return ParsedText(
        weighted_length=weighted_length,
        valid=valid,
        permillage=weighted_length * 1000 // limit,
        has_url=bool(urls),
    )


def has_invalid_characters(text: str) -> bool:
    """Whether ``text`` holds a character X refuses in a post (U+FFFE, U+FEFF, U+FFFF)."""
    return not _INVALID_CHARS.isdisjoint(text)


def weighted_length(text: str) -> int:
    """The weighted length of ``text`` (twitter-text v3): what X compares with its limit."""
    return parse_tweet(text).weighted_length


__all__ = [
    "MAX_WEIGHTED_LENGTH",
    "V2",
    "V3",
    "ParsedText",
    "TextConfig",
    "has_invalid_characters",
    "parse_tweet",
    "url_spans",
    "weighted_length",
]
