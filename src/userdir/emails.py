"""The one email normalisation that every match in ``userdir`` uses."""

from __future__ import annotations

import unicodedata

from .errors import InvalidArgumentError

__all__ = ["MAX_EMAIL_LENGTH", "email_key", "try_email_key"]

# RFC 5321's limit on a path (256 octets) less its angle brackets; like ids, emails are
# capped before anything else is done with them.
MAX_EMAIL_LENGTH = 254


def _invalid(email: object, why: str) -> InvalidArgumentError:
    shown = email if isinstance(email, str) and len(email) <= 80 else "<value>"
    return InvalidArgumentError(f"not an email address ({why}): {shown!r}")


def _domain_key(domain: str, email: str) -> str:
    if domain.isascii():
        labels = domain.lower().split(".")
        if any(not label for label in labels):
            raise _invalid(email, "empty label in the domain")
        return ".".join(labels)
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise _invalid(email, "the domain is not a valid internationalised name") from None
    # IDNA's NFKC step can turn a symbol into a space or punctuation (U+00A8 -> " \u0308").
    if not all(ch.isalnum() or ch in "-." for ch in ascii_domain):
        raise _invalid(email, "the domain is not a valid internationalised name")
    return ascii_domain


def email_key(email: str) -> str:
    """Return the key two addresses share when they reach the same mailbox.

    Strips surrounding white space, applies Unicode NFC, lower-cases the local part,
    and IDNA-normalises (to its ASCII form) and lower-cases the domain. Dots and
    ``+tags`` are kept: ``a.b+x@example.com`` and ``ab@example.com`` differ. The local
    part is lower-cased, never case-folded: folding joins different mailboxes
    (``straße@`` and ``strasse@``, ``\ufb01nance@`` and ``finance@``).

    Raises :class:`~userdir.InvalidArgumentError` for anything that is not an email
    address: no ``@``, an empty local part or domain, inner white space, control
    characters, or more than :data:`MAX_EMAIL_LENGTH` (254) characters.
    """
    if not isinstance(email, str):
        raise InvalidArgumentError(f"an email address must be a str, not {type(email).__name__}")
    text = email.strip()
    if len(text) > MAX_EMAIL_LENGTH:
        raise InvalidArgumentError(
            f"an email address must be at most {MAX_EMAIL_LENGTH} characters, got {len(text)}"
        )
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if not text.isprintable():
        raise _invalid(email, "control characters")
    if any(ch.isspace() for ch in text):
        raise _invalid(email, "white space inside")
    local, at, domain = text.rpartition("@")
    if not at:
        raise _invalid(email, "no @")
    if not local:
        raise _invalid(email, "empty local part")
    if not domain:
        raise _invalid(email, "empty domain")
    if "@" in local and not (local.startswith('"') and local.endswith('"')):
        raise _invalid(email, "more than one @")
    local = local.lower()
    if not local.isascii():  # lower-casing can undo NFC (U+0130 -> "i" + U+0307)
        local = unicodedata.normalize("NFC", local)
    return f"{local}@{_domain_key(domain, email)}"


def try_email_key(email: str | None) -> str | None:
    """Like :func:`email_key`, but ``None`` for a missing or invalid address."""
    if email is None:
        return None
    # Fast path for the common case: a plain lower-case ASCII address.
    if (
        email.isascii()
        and email.islower()
        and email.isprintable()
        and len(email) <= MAX_EMAIL_LENGTH
    ):
        local, _at, domain = email.partition("@")
        if (
            local
            and domain
            and "@" not in domain
            and " " not in email
            and "\t" not in email
            and ".." not in domain
            and not domain.startswith(".")
            and not domain.endswith(".")
        ):
            return email
    try:
        return email_key(email)
    except InvalidArgumentError:
        return None
