"""userdir: one user model and one interface over many user directories.

>>> import userdir
>>> d = userdir.connect("notion", token="...")          # doctest: +SKIP
>>> user = d.find_user_by_email("Ada@Example.com")      # doctest: +SKIP
"""

from ._http import Retries
from ._reconcile import plan, plan_async
from ._reconcile_apply import ActionResult, ApplyResult, apply, apply_async
from ._reconcile_config import reconcile_settings
from ._reconcile_plan import (
    Create,
    Deactivate,
    Delete,
    Limits,
    Plan,
    Protect,
    SafetyCheckError,
    Skip,
    Update,
)
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
    "ActionResult",
    "ApplyResult",
    "AsyncDirectory",
    "AsyncFederation",
    "AsyncHttpDirectory",
    "AuthenticationError",
    "Capabilities",
    "ConfigError",
    "ConflictError",
    "Create",
    "Deactivate",
    "Delete",
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
    "Limits",
    "Lookup",
    "LookupStatus",
    "MalformedResponseError",
    "NewUser",
    "Page",
    "PermissionDeniedError",
    "Plan",
    "Protect",
    "ProviderInfo",
    "RateLimitedError",
    "RedirectError",
    "Retries",
    "SafetyCheckError",
    "ServerError",
    "Skip",
    "TransportError",
    "UnsupportedOperationError",
    "Update",
    "UserChanges",
    "UserKind",
    "UserNotFoundError",
    "UserStatus",
    "__version__",
    "apply",
    "apply_async",
    "available_providers",
    "connect",
    "connect_async",
    "email_key",
    "load_config",
    "load_config_async",
    "plan",
    "plan_async",
    "reconcile_settings",
    "register_provider",
]
