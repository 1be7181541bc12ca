"""userdir: one user model and one interface over many user directories.

>>> import userdir
>>> d = userdir.connect("notion", token="...")          # doctest: +SKIP
>>> user = d.find_user_by_email("Ada@Example.com")      # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from ._http import Retries
from ._version import __version__
from .directory import AsyncDirectory, AsyncHttpDirectory, Directory, HttpDirectory
from .emails import email_key
from .errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    DirectoryClosedError,
    DirectoryError,
    DuplicateEmailError,
    EndpointNotFoundError,
    InvalidArgumentError,
    InvalidRequestError,
    MalformedResponseError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitedError,
    RedirectError,
    ServerError,
    TransportError,
    UnsupportedOperationError,
    UserNotFoundError,
)
from .models import (
    UNSET,
    Capabilities,
    DirectoryUser,
    NewUser,
    Page,
    UserChanges,
    UserKind,
    UserStatus,
)
from .registry import (
    ProviderInfo,
    available_providers,
    connect,
    connect_async,
    register_provider,
)

if TYPE_CHECKING:
    from .config import load_config, load_config_async
    from .federation import (
        AsyncFederation,
        Diff,
        Difference,
        Federation,
        FindResult,
        Identity,
        Lookup,
        LookupStatus,
    )

# Imported on first use: most programs never touch them, and start-up time counts.
_LAZY = {
    "load_config": "config",
    "load_config_async": "config",
    "AsyncFederation": "federation",
    "Diff": "federation",
    "Difference": "federation",
    "Federation": "federation",
    "FindResult": "federation",
    "Identity": "federation",
    "Lookup": "federation",
    "LookupStatus": "federation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'userdir' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "UNSET",
    "APIError",
    "AsyncDirectory",
    "AsyncFederation",
    "AsyncHttpDirectory",
    "AuthenticationError",
    "Capabilities",
    "ConfigError",
    "ConflictError",
    "Diff",
    "Difference",
    "Directory",
    "DirectoryClosedError",
    "DirectoryError",
    "DirectoryUser",
    "DuplicateEmailError",
    "EndpointNotFoundError",
    "Federation",
    "FindResult",
    "HttpDirectory",
    "Identity",
    "InvalidArgumentError",
    "InvalidRequestError",
    "Lookup",
    "LookupStatus",
    "MalformedResponseError",
    "NewUser",
    "Page",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "ProviderInfo",
    "RateLimitedError",
    "RedirectError",
    "Retries",
    "ServerError",
    "TransportError",
    "UnsupportedOperationError",
    "UserChanges",
    "UserKind",
    "UserNotFoundError",
    "UserStatus",
    "__version__",
    "available_providers",
    "connect",
    "connect_async",
    "email_key",
    "load_config",
    "load_config_async",
    "register_provider",
]
