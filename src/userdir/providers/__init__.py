"""Provider dialects: pure request builders, parsers and error maps, one per service."""

from ._base import Dialect, ListPage
from .notion import NotionDialect
from .org_api import OrgApiDialect
from .rest import RestDialect

__all__ = ["Dialect", "ListPage", "NotionDialect", "OrgApiDialect", "RestDialect"]
