"""Credentials checked before use, and kept out of every text built from server data.

A :class:`Scrubber` is built from the secrets a directory holds and replaces each of
them in a text, however it came back: as sent, upper- or lower-cased, percent-encoded,
base64-encoded (alone or inside a longer value such as ``user:password``), escaped by
``repr`` or JSON, or broken across lines. :meth:`Scrubber.finish` scrubs every text
field of an error and only then bounds it, so no cut can keep part of a secret.

Messages that quote a server value quote at most a short prefix of it, cut with
:data:`CUT` (see :func:`quote`); the scrubber also masks the start of a secret that
such a cut left behind.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping

from .errors import DirectoryError, InvalidArgumentError

__all__ = ["CUT", "MASK", "Scrubber", "check_credential", "quote", "shorten"]

MASK = "***"
#: Marks where a quoted value or a message was cut short.
CUT = "…"
MAX_MESSAGE = 2000
MAX_FIELD = 200
WINDOW = 64 * 1024
#: A quoted server value shows at most this many characters.
MAX_QUOTED = 40
# Shorter secrets are only masked as whole words (else every "ab" in a text would go).
_SHORT = 4
# What may come between two characters of an echoed secret: whitespace (a line break
# or a wrapped line), or the same escaped by repr() or JSON.
_GAP = r"(?:\s|\\[rnt])*"
_ESCAPED = frozenset("\\'\"/")  # what repr() or JSON may put a backslash before
_BASE64 = (base64.b64encode, base64.urlsafe_b64encode)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with :data:`CUT` when it was cut."""
    return text if len(text) <= limit else text[:limit] + CUT


def quote(value: str, limit: int = MAX_QUOTED) -> str:
    """A server value for a message: ``repr`` of at most ``limit`` characters of it."""
    return repr(value[:limit]) + (CUT if len(value) > limit else "")


def check_credential(provider: str, option: str, value: object) -> str:
    """A credential as it goes on the wire: stripped; refused with whitespace inside.

    Leading and trailing whitespace (the new line a secrets file ends with) is dropped.
    Whitespace, control or non-ASCII characters inside are refused, naming ``option``
    and never the value: they cannot travel in a header. Providers call it on each
    credential option when they are built, so ``connect()`` and config files refuse it.
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"{option} must be a string, not {type(value).__name__}", provider=provider
        )
    cleaned = value.strip()
    if not cleaned:
        raise InvalidArgumentError(f"{option} must not be empty", provider=provider)
    if not (cleaned.isascii() and cleaned.isprintable()) or any(c.isspace() for c in cleaned):
        raise InvalidArgumentError(
            f"{option} holds whitespace, control or non-ASCII characters inside "
            "(check the secret's source: only its ends are trimmed)",
            provider=provider,
        )
    return cleaned


def _char(c: str) -> str:
    """A pattern for one character of a secret: as is, escaped, or percent-encoded (any
    character may be, though most encoders leave letters and digits alone)."""
    encoded = "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
    forms = [re.escape(c), encoded]
    if c == " ":
        forms.append(r"\+")
    pattern = "(?:" + "|".join(forms) + ")"
    return r"\\?" + pattern if c in _ESCAPED else pattern


def _spread(text: str) -> str:
    return _GAP.join(_char(c) for c in text)


def _base64_cores(secret: str) -> list[str]:
    """What every base64 encoding of a text holding ``secret`` contains, whatever its
    position: one stable run of characters for each of the three byte alignments."""
    data = secret.encode("utf-8", "surrogatepass")
    cores = []
    for encode in _BASE64:
        for offset in range(3):
            encoded = encode(b"\0" * offset + data).decode("ascii").rstrip("=")
            # characters that hold bits of the bytes before or after the secret differ
            # from one text to another: keep only the ones made of the secret alone
            start = -(-offset * 4 // 3)
            end = (offset + len(data)) * 4 // 3
            core = encoded[start:end]
            if len(core) >= _SHORT and core not in cores:
                cores.append(core)
    return cores


class Scrubber:
    """Replaces known secrets in texts; ``secrets`` maps each to its replacement.

    A secret's pattern is compiled on first use, so building a scrubber costs nothing
    until a text needs scrubbing (errors only).
    """

    def __init__(self, secrets: Mapping[str, str] | Iterable[str] = ()) -> None:
        if not isinstance(secrets, Mapping):
            secrets = dict.fromkeys(secrets, MASK)
        # longest first: a secret that contains another is replaced whole
        self._secrets = sorted(
            ((s, r) for s, r in secrets.items() if s), key=lambda item: -len(item[0])
        )
        self._patterns: dict[str, re.Pattern[str]] = {}

    def __repr__(self) -> str:
        return f"<Scrubber of {len(self._secrets)} secret(s)>"

    def plus(self, extra: Iterable[str]) -> Scrubber:
        """This scrubber with more secrets (masked with :data:`MASK`)."""
        known = dict(self._secrets)
        more = {s: MASK for s in extra if s and s not in known}
        if not more:
            return self
        merged = Scrubber({**known, **more})
        merged._patterns = dict(self._patterns)  # a copy: ours never learn the extras
        return merged

    def _pattern(self, secret: str) -> re.Pattern[str]:
        pattern = self._patterns.get(secret)
        if pattern is None:
            if len(secret) < _SHORT:
                text = r"(?<![A-Za-z0-9])" + re.escape(secret) + r"(?![A-Za-z0-9])"
            else:
                variants = [_spread(secret), *(_spread(c) for c in _base64_cores(secret))]
                text = "|".join(f"(?:{v})" for v in variants)
            pattern = self._patterns[secret] = re.compile(text, re.IGNORECASE)
        return pattern

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced, including one cut short by :data:`CUT`."""
        if not self._secrets or not text:
            return text
        for secret, replacement in self._secrets:
            text = self._pattern(secret).sub(replacement, text)
            if CUT in text and len(secret) >= _SHORT:
                text = _mask_cut_prefix(text, secret, replacement)
        return text

    def finish(self, error: DirectoryError) -> DirectoryError:
        """Scrub every text field of ``error``, then bound their length; returns it.

        Only the first :data:`WINDOW` characters of a field are scrubbed (a server's
        message may be megabytes long): far more than is kept, so whatever is shown
        was scrubbed whole, secrets running past the cut included.
        """
        error.message = shorten(self(error.message[:WINDOW]), MAX_MESSAGE)
        if error.code is not None:
            error.code = _one_line(self(error.code[:WINDOW]))
        if error.request_id is not None:
            error.request_id = _one_line(self(error.request_id[:WINDOW]))
        return error


def _one_line(text: str) -> str:
    return shorten(" ".join(text.split()), MAX_FIELD)


def _mask_cut_prefix(text: str, secret: str, replacement: str) -> str:
    """Mask the start of ``secret`` where a quoted value was cut right after it."""
    wanted = secret.lower()
    parts, done = [], 0
    at = text.find(CUT)
    while at >= 0:
        end = at - 1 if at and text[at - 1] in "'\"" else at
        for length in range(min(len(wanted) - 1, end - done), _SHORT - 1, -1):
            if text[end - length : end].lower() == wanted[:length]:
                parts.append(text[done : end - length])
                parts.append(replacement)
                done = end
                break
        at = text.find(CUT, at + 1)
    parts.append(text[done:])
    return "".join(parts)
