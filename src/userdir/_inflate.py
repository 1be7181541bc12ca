"""Content decoding in bounded steps: a compressed answer never inflates all at once.

httpx's decoders inflate each network chunk whole, so a small answer (``gzip`` twice
over a run of zeros) can grow to gigabytes before a size cap is checked. Here every
``decompress`` call gives at most ``STEP`` bytes, stacked encodings are undone lazily
one after the other, and the caller counts what comes out as it comes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

__all__ = ["ACCEPT_ENCODING", "MAX_ENCODINGS", "STEP", "Inflater", "UnsupportedEncoding"]

ACCEPT_ENCODING = "gzip, deflate"
# More layers than any real service sends; each costs a zlib state (about 40 kB).
MAX_ENCODINGS = 4
STEP = 64 * 1024


class UnsupportedEncoding(ValueError):
    """A ``Content-Encoding`` this client does not decode (or too many of them)."""


class _Zlib:
    """One ``gzip`` or ``deflate`` layer, inflated at most ``STEP`` bytes at a time."""

    def __init__(self, encoding: str) -> None:
        self.deflate = encoding == "deflate"
        # deflate is zlib-wrapped by the RFC, raw in some servers (httpx accepts both)
        self.first = self.deflate
        wbits = zlib.MAX_WBITS if self.deflate else zlib.MAX_WBITS | 16
        self.inflater = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while not self.inflater.eof:  # data after the end of the stream is ignored
            try:
                out = self.inflater.decompress(data, STEP)
            except zlib.error:
                if not self.first:
                    raise
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                self.first = False
                continue
            self.first = False
            data = self.inflater.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < STEP:
                return

    def flush(self) -> Iterator[bytes]:
        # the input is drained by feed(); what is left is at most a step's worth
        if not self.inflater.eof:
            out = self.inflater.flush()
            if out:
                yield out


class Inflater:
    """Undoes a ``Content-Encoding`` header's layers, last applied first, lazily.

    Raises :class:`UnsupportedEncoding` for an encoding other than ``gzip``,
    ``deflate`` or ``identity``, and ``zlib.error`` for a body that does not decode.
    """

    def __init__(self, content_encoding: str | None) -> None:
        names = [
            name.strip().lower() for name in (content_encoding or "").split(",") if name.strip()
        ]
        names = [name for name in names if name != "identity"]
        if len(names) > MAX_ENCODINGS:
            raise UnsupportedEncoding(f"{len(names)} stacked Content-Encodings")
        for name in names:
            if name not in ("gzip", "x-gzip", "deflate"):
                raise UnsupportedEncoding(f"unsupported Content-Encoding {name[:40]!r}")
        self.layers = [_Zlib(name) for name in reversed(names)]

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of one raw chunk, in pieces of at most ``STEP`` bytes."""
        return self._through(0, data)

    def flush(self) -> Iterator[bytes]:
        """Whatever the layers still hold once the raw body has ended."""
        for index, layer in enumerate(self.layers):
            for piece in layer.flush():
                yield from self._through(index + 1, piece)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self.layers):
            if data:
                yield data
            return
        for piece in self.layers[index].feed(data):
            yield from self._through(index + 1, piece)
