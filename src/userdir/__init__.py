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
    "ActionResult": "_reconcile_apply",
    "ApplyResult": "_reconcile_apply",
    "apply": "_reconcile_apply",
    "apply_async": "_reconcile_apply",
    "plan": "_reconcile",
    "plan_async": "_reconcile",
    "reconcile_settings": "_reconcile_config",
    "Create": "_reconcile_plan",
    "Deactivate": "_reconcile_plan",
    "Delete": "_reconcile_plan",
    "Limits": "_reconcile_plan",
    "Plan": "_reconcile_plan",
    "Protect": "_reconcile_plan",
    "SafetyCheckError": "_reconcile_plan",
    "Skip": "_reconcile_plan",
    "Update": "_reconcile_plan",
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
    "DuplicateEmailError",
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
    "PreconditionFailedError",
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
