"""The provider extension API, and the built-in providers.

A provider is one pure module: a :class:`Dialect` subclass that builds
:class:`Request` values, reads decoded answers (and :class:`Reply` headers) into
:class:`~userdir.DirectoryUser` values with the typed :class:`Fields` readers, maps
error answers, and names its paging strategy — :class:`CursorPaging`,
:class:`PageNumberPaging`, :class:`OffsetPaging` or :class:`NextLinkPaging`. The
generic directories give it a blocking and an asyncio interface, retries, rate
limits, concurrency and the walk. Nothing here imports an HTTP library.
"""

from typing import TYPE_CHECKING, Any

from ._base import Dialect, check_email, check_id, check_page_size, error_fields, parse_datetime
from ._fields import Fields
from ._paging import (
    CursorPaging,
    ListPage,
    NextLinkPaging,
    OffsetPaging,
    PageNumberPaging,
    Paging,
    Plan,
)
from ._wire import Reply, Request, next_link

if TYPE_CHECKING:
    from .notion import NotionDialect
    from .org_api import OrgApiDialect
    from .rest import RestDialect

_BUILT_IN = {"NotionDialect": "notion", "OrgApiDialect": "org_api", "RestDialect": "rest"}


def __getattr__(name: str) -> Any:
    """The built-in dialects, imported on first use."""
    module = _BUILT_IN.get(name)
    if module is None:
        raise AttributeError(f"module 'userdir.providers' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CursorPaging",
    "Dialect",
    "Fields",
    "ListPage",
    "NextLinkPaging",
    "NotionDialect",
    "OffsetPaging",
    "OrgApiDialect",
    "PageNumberPaging",
    "Paging",
    "Plan",
    "Reply",
    "Request",
    "RestDialect",
    "check_email",
    "check_id",
    "check_page_size",
    "error_fields",
    "next_link",
    "parse_datetime",
]
