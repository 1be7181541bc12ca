"""userdir: one user model and one interface over many user directories.

>>> import userdir
>>> d = userdir.connect("notion", token="...")          # doctest: +SKIP
>>> user = d.find_user_by_email("Ada@Example.com")      # doctest: +SKIP
"""

from ._http import Retries
from ._version import __version__
from .config import load_config, load_config_async
from .directory import AsyncDirectory, AsyncHttpDirectory, Directory, HttpDirectory
from .emails import email_key
from .errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    DirectoryClosedError,
    DirectoryError,
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
