"""SCIM 2.0 (RFC 7643/7644): one provider for every service that speaks it.

Pure: builds requests and reads answers; the directories do the I/O. The SCIM pieces
are module-level functions — the user mapping, filters and their escaping, email
batches, PATCH and PUT bodies, error bodies, ``/ServiceProviderConfig`` — and
:class:`ScimDialect` puts them together. A directory reads the server's
``/ServiceProviderConfig`` once, lazily, before its first listing, lookup or update
(:meth:`ScimDialect.discovery_request`), and ``features=`` overrides what it announces.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from ..errors import (
    APIError,
    ConfigError,
    ConflictError,
    InvalidArgumentError,
    InvalidRequestError,
    PreconditionFailedError,
    UserNotFoundError,
    error_class_for_status,
)
from ..models import _EMPTY, Capabilities, DirectoryUser, NewUser, UserChanges, UserStatus
from ._base import Dialect, _one_line, check_email, check_id
from ._fields import MAX_NESTING, STR_OR_NONE, Fields, checked_id, nesting_exceeds
from ._paging import CursorPaging, ListPage, OffsetPaging, Paging
from ._wire import Reply, Request

__all__ = [
    "ENTERPRISE_SCHEMA",
    "ERROR_SCHEMA",
    "LIST_SCHEMA",
    "PATCH_SCHEMA",
    "USER_SCHEMA",
    "ScimDialect",
    "ScimError",
    "ScimFeatures",
    "capabilities_of",
    "create_body",
    "email_batches",
    "email_filter",
    "features_of",
    "filter_value",
    "parse_scim_error",
    "parse_scim_user",
    "patch_body",
    "put_body",
    "status_filter",
]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCIM_JSON = "application/scim+json"

NAME = "scim"
F = Fields(NAME)

#: The page size asked for when the server announces no cap (and the largest allowed).
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: Bounds of one email batch: its filter's length (it goes in the URL) and its emails.
MAX_FILTER_LENGTH = 2000
MAX_BATCH = 50

# Core attributes the mapping consumes; every other attribute goes to ``extra``.
_MAPPED = frozenset(
    {
        "schemas",
        "id",
        "userName",
        "name",
        "displayName",
        "emails",
        "active",
        "roles",
        "photos",
        "meta",
        "password",
        ENTERPRISE_SCHEMA,
    }
)
_ACTIVE = UserStatus.ACTIVE
_INACTIVE = UserStatus.INACTIVE
_UNKNOWN = UserStatus.UNKNOWN


# -- filters (RFC 7644 §3.4.2.2) -------------------------------------------------------


def filter_value(value: str) -> str:
    """``value`` as a filter's comparison value: a JSON string, ``"`` and ``\\`` escaped."""
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"a filter value must be a str, not {type(value).__name__}", provider=NAME
        )
    return json.dumps(value, ensure_ascii=False)


#: How an email is looked up: the ``emails`` attribute, or ``userName`` (where the
#: server refuses the first, or holds emails as user names).
EMAIL_FILTERS = ("emails", "userName")


def email_filter(email: str, by: str = "emails") -> str:
    """The filter finding one email: ``emails[value eq "x"]`` or ``userName eq "x"``."""
    if by == "emails":
        return f"emails[value eq {filter_value(email)}]"
    if by == "userName":
        return f"userName eq {filter_value(email)}"
    raise InvalidArgumentError(
        f"email_filter must be one of {', '.join(EMAIL_FILTERS)}, got {by!r}", provider=NAME
    )


def email_batches(
    emails: Iterable[str],
    by: str = "emails",
    *,
    max_length: int = MAX_FILTER_LENGTH,
    max_count: int = MAX_BATCH,
) -> list[tuple[tuple[str, ...], str]]:
    """The emails in batches, each with its ``or`` filter of bounded length and size.

    Every batch holds at least one email; a batch's filter stays within ``max_length``
    characters unless one email's filter alone is longer.
    """
    batches: list[tuple[tuple[str, ...], str]] = []
    group: list[str] = []
    parts: list[str] = []
    length = 0
    for email in emails:
        part = email_filter(email, by)
        if parts and (length + 4 + len(part) > max_length or len(parts) >= max_count):
            batches.append((tuple(group), " or ".join(parts)))
            group, parts, length = [], [], 0
        length += len(part) + (4 if parts else 0)
        group.append(email)
        parts.append(part)
    if parts:
        batches.append((tuple(group), " or ".join(parts)))
    return batches


def status_filter(status: str) -> str:
    """The filter of ``iter_users(status=...)``: ``active eq true`` / ``active eq false``.

    SCIM has no pending state: ``pending`` matches nobody; ``unknown`` matches users
    without ``active``.
    """
    if status == "active":
        return "active eq true"
    if status == "inactive":
        return "active eq false"
    if status == "unknown":
        return "not (active pr)"
    return "active eq true and active eq false"


# -- users ---------------------------------------------------------------------------


def _pick(d: dict[str, Any], key: str, what: str, prefer: str | None) -> str | None:
    """The ``value`` of a multi-valued attribute's primary item, else the first of type
    ``prefer``, else the first (``emails``, ``roles``, ``photos``)."""
    items = d.get(key)
    if items is None:
        return None
    if type(items) is list and len(items) == 1:  # the common case: one value
        only = items[0]
        if type(only) is dict:
            value = only.get("value")
            if value is None or type(value) is str:
                return value
    if type(items) is not list:
        F.list(items, f"{what}.{key}")  # raises, naming the field
    chosen = None
    for i, item in enumerate(items):
        if type(item) is not dict:
            F.object(item, f"{what}.{key}[{i}]")  # raises
        if chosen is None and item.get("primary") is True:
            chosen = i
    if chosen is None and prefer is not None:
        chosen = next((i for i, item in enumerate(items) if item.get("type") == prefer), None)
    if chosen is None:
        if not items:
            return None
        chosen = 0
    value = items[chosen].get("value")
    if value is None or type(value) is str:
        return value
    return F.opt_str(items[chosen], "value", what, f"{key}[{chosen}].value")


def _extra(d: dict[str, Any], enterprise: dict[str, Any] | None, what: str) -> Mapping[str, Any]:
    """Every attribute the mapping did not consume, with the enterprise ones flattened."""
    values = {}
    for key in d:  # a plain loop: cheaper than a comprehension here
        if key not in _MAPPED:
            values[key] = d[key]
    if enterprise:
        for key, value in enterprise.items():
            values.setdefault(key, value)
    if not values:
        return _EMPTY
    for key, value in values.items():  # a flat object is one pass (nesting_exceeds)
        if (type(value) is dict or type(value) is list) and nesting_exceeds(value):
            raise F.error(f"{what}.{key}", f"nested deeper than {MAX_NESTING} levels")
    return MappingProxyType(values)


opt_time = F.opt_time
_fromisoformat = datetime.fromisoformat
_UNPARSED: Any = object()  # a timestamp the inline parse could not take


_NAME_PARTS = ("givenName", "familyName", "formatted")


def parse_scim_user(payload: Any, what: str = "user", etag: str | None = None) -> DirectoryUser:
    """Map a SCIM ``User`` resource (core and enterprise extension) to the shared model.

    ``etag`` (the answer's ``ETag`` header) is the version when ``meta.version`` is
    absent. Raises :class:`~userdir.MalformedResponseError` naming the bad field. Each
    field is checked inline; the field readers run only to explain a wrong one.
    """
    d = payload
    user_id = checked_id(F, d, what)
    get = d.get
    username, display, active = get("userName"), get("displayName"), get("active")
    external_id = get("externalId")
    if not (
        isinstance(username, STR_OR_NONE)
        and isinstance(display, STR_OR_NONE)
        and (active is None or type(active) is bool)
        and isinstance(external_id, STR_OR_NONE)
    ):
        F.opt_str(d, "userName", what)
        F.opt_str(d, "displayName", what)
        F.opt_bool(d, "active", what)
        F.opt_str(d, "externalId", what)
    name = get("name")
    given = family = formatted = None
    if name is not None:
        if type(name) is not dict:
            F.opt_object(d, "name", what)  # raises
        given, family, formatted = (
            name.get("givenName"),
            name.get("familyName"),
            name.get("formatted"),
        )
        if not (
            isinstance(given, STR_OR_NONE)
            and isinstance(family, STR_OR_NONE)
            and isinstance(formatted, STR_OR_NONE)
        ):
            for key in _NAME_PARTS:
                F.opt_str(name, key, what, f"name.{key}")
    meta = get("meta")
    if meta is None:
        meta = {}
    elif type(meta) is not dict:
        F.opt_object(d, "meta", what)  # raises
    mget = meta.get
    version, created, modified = mget("version"), mget("created"), mget("lastModified")
    if not isinstance(version, STR_OR_NONE):
        F.opt_str(meta, "version", what, "meta.version")  # raises
    # The timestamps' common case inline (an aware ISO 8601 string); opt_time below otherwise.
    try:
        created_at = None if created is None else _fromisoformat(created)
        updated_at = None if modified is None else _fromisoformat(modified)
    except (TypeError, ValueError, OverflowError):
        created_at = updated_at = _UNPARSED
    enterprise = get(ENTERPRISE_SCHEMA)
    if enterprise is not None and type(enterprise) is not dict:
        F.opt_object(d, ENTERPRISE_SCHEMA, what)  # raises
    # emails and roles: the common single value inline, _pick for anything else
    emails, roles = get("emails"), get("roles")
    if not (
        type(emails) is list
        and len(emails) == 1
        and type(item := emails[0]) is dict
        and isinstance(email := item.get("value"), STR_OR_NONE)
    ):
        email = _pick(d, "emails", what, "work")
    avatar = _pick(d, "photos", what, "photo")
    if roles is None:
        role = None
    elif not (
        type(roles) is list
        and len(roles) == 1
        and type(item := roles[0]) is dict
        and isinstance(role := item.get("value"), STR_OR_NONE)
    ):
        role = _pick(d, "roles", what, None)
    if (  # not the common case: the reader maps it or raises, after the fields above
        created_at is not None
        and (created_at is _UNPARSED or created_at.tzinfo is None or len(created) > 40)
    ) or (updated_at is not None and (updated_at.tzinfo is None or len(modified) > 40)):
        created_at = opt_time(meta, "created", what, "meta.created")
        updated_at = opt_time(meta, "lastModified", what, "meta.lastModified")
    full = display or formatted or (" ".join(p for p in (given, family) if p) or None)
    fields = {
        "id": user_id,
        "provider": NAME,
        "email": email,
        "name": full,
        "given_name": given,
        "family_name": family,
        "username": username,
        "avatar_url": avatar,
        "role": role,
        "status": _UNKNOWN if active is None else (_ACTIVE if active else _INACTIVE),
        "created_at": created_at,
        "updated_at": updated_at,
        "version": version or etag,
        "external_id": external_id or None,
        "extra": _extra(d, enterprise, what),
        "raw": MappingProxyType(d),
    }
    return DirectoryUser._trusted(fields)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{name} must be a non-empty string", provider=NAME)
    return value


def _attributes(settings: object) -> dict[str, Any]:
    """``settings`` of a NewUser/UserChanges: further SCIM attributes, sent as given."""
    if settings is None:
        return {}
    if not isinstance(settings, Mapping) or not all(isinstance(k, str) for k in settings):
        raise InvalidArgumentError(
            "settings must be a mapping of SCIM attribute names to values", provider=NAME
        )
    return copy.deepcopy(dict(settings))


def create_body(new_user: NewUser) -> dict[str, Any]:
    """The ``POST /Users`` body: ``userName`` is the email unless ``settings`` gives one.

    ``settings`` holds further SCIM attributes (``title``, the enterprise extension
    under its schema URN...), sent as given.
    """
    if not isinstance(new_user, NewUser):
        raise InvalidArgumentError("create_user takes a userdir.NewUser", provider=NAME)
    email = check_email(NAME, new_user.email)
    name = _text("name", new_user.name)
    extra = _attributes(new_user.settings)
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "displayName": name,
        "name": {"formatted": name},
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
    }
    if new_user.role is not None:
        body["roles"] = [{"value": _text("role", new_user.role), "primary": True}]
    if new_user.password is not None:
        body["password"] = _text("password", new_user.password)
    if new_user.external_id is not None:
        body["externalId"] = _text("external_id", new_user.external_id)
    body.update(extra)
    if ENTERPRISE_SCHEMA in body:
        body["schemas"] = [USER_SCHEMA, ENTERPRISE_SCHEMA]
    return body


def _changed(changes: UserChanges, user_name_follows_email: bool = False) -> dict[str, Any]:
    """The changed attributes as SCIM attribute -> value, checked; a new email is the new
    ``userName`` too with ``user_name_follows_email`` (``settings`` may still name one)."""
    if not isinstance(changes, UserChanges):
        raise InvalidArgumentError("update_user takes a userdir.UserChanges", provider=NAME)
    fields = changes.fields_set()
    if not fields:
        raise InvalidArgumentError("UserChanges sets no field", provider=NAME)
    out: dict[str, Any] = {}
    if "name" in fields:
        out["displayName"] = _text("name", fields["name"])
    if "email" in fields:
        email = check_email(NAME, fields["email"])
        out["emails"] = [{"value": email, "type": "work", "primary": True}]
        if user_name_follows_email:
            out["userName"] = email
    if "role" in fields:
        out["roles"] = [{"value": _text("role", fields["role"]), "primary": True}]
    if "status" in fields:
        status = fields["status"]
        if status not in ("active", "inactive"):
            raise InvalidArgumentError(
                f"status must be active or inactive for a SCIM user, got {status!r}",
                provider=NAME,
            )
        out["active"] = status == "active"
    if "password" in fields:
        out["password"] = _text("password", fields["password"])
    if "external_id" in fields:
        out["externalId"] = _text("external_id", fields["external_id"])
    if "settings" in fields:
        out.update(_attributes(fields["settings"]))
    return out


def patch_body(changes: UserChanges, *, user_name_follows_email: bool = False) -> dict[str, Any]:
    """A ``PatchOp`` replacing the changed attributes only (``status`` -> ``active``);
    ``userName`` too when the email changes, with ``user_name_follows_email``."""
    changed = _changed(changes, user_name_follows_email)
    operations = [
        {"op": "replace", "path": path, "value": value} for path, value in changed.items()
    ]
    return {"schemas": [PATCH_SCHEMA], "Operations": operations}


def put_body(
    current: Mapping[str, Any], changes: UserChanges, *, user_name_follows_email: bool = False
) -> dict[str, Any]:
    """The ``PUT`` body: the user as read (``current``, its raw payload), changed.

    For servers without PATCH: PUT replaces the whole resource, so every attribute not
    changed is sent back as it was (``meta`` left out: the server owns it).
    """
    body = {key: copy.deepcopy(value) for key, value in current.items() if key != "meta"}
    body.update(_changed(changes, user_name_follows_email))
    body.setdefault("schemas", [USER_SCHEMA])
    return body


# -- errors --------------------------------------------------------------------------


@attrs.frozen
class ScimError:
    """A SCIM error body (``urn:ietf:params:scim:api:messages:2.0:Error``), read leniently."""

    status: int | None = None
    scim_type: str | None = None
    detail: str | None = None


def _looks_like_error(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    schemas = value.get("schemas")
    if isinstance(schemas, list) and ERROR_SCHEMA in schemas:
        return True
    return "scimType" in value or ("detail" in value and "status" in value)


def _status_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 3:
        return int(value.strip())
    return None


def parse_scim_error(body: bytes) -> ScimError | None:
    """The SCIM error in an error answer's body, or None when there is none.

    Lenient: ``status`` as a string or a number, ``schemas`` missing, and the error
    object wrapped in another object (``{"error": {...}}``).
    """
    try:
        data = json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    if not _looks_like_error(data):
        inner = next((v for v in data.values() if _looks_like_error(v)), None)
        if inner is None:
            if not isinstance(data.get("detail"), str):
                return None
        else:
            data = inner
    return ScimError(
        _status_number(data.get("status")),
        _one_line(data.get("scimType")),
        data["detail"][:2000] if isinstance(data.get("detail"), str) else None,
    )


_BY_SCIM_TYPE: Mapping[str, type[APIError]] = {
    "uniqueness": ConflictError,
    "invalidFilter": InvalidRequestError,
    "invalidValue": InvalidRequestError,
    "invalidSyntax": InvalidRequestError,
    "tooMany": InvalidRequestError,
}


def error_class(status: int, scim_type: str | None) -> type[APIError]:
    """The error class of an answer: ``scimType`` first, then the HTTP status."""
    if scim_type is not None and scim_type in _BY_SCIM_TYPE:
        return _BY_SCIM_TYPE[scim_type]
    if status == 404:
        return UserNotFoundError
    if status == 412:
        return PreconditionFailedError
    return error_class_for_status(status)


# -- /ServiceProviderConfig ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ScimFeatures:
    """What a SCIM server supports, from its ``/ServiceProviderConfig`` (RFC 7643 §5).

    The defaults are what a directory assumes before, or without, discovery. ``list``
    is False for a server that lists only with a filter (no discovery says so: set it
    with ``features={"list": False}``).
    """

    filter: bool = True
    max_results: int | None = None
    patch: bool = True
    etag: bool = False
    sort: bool = False
    bulk: bool = False
    cursor: bool = False
    index: bool = True
    max_page_size: int | None = None
    list: bool = True

    def page_cap(self) -> int | None:
        """The smallest announced cap on a page's size, if any."""
        caps = [c for c in (self.max_results, self.max_page_size) if c is not None]
        return min(caps) if caps else None


_FEATURE_NAMES = tuple(a.name for a in attrs.fields(ScimFeatures))


def _supported(section: Any, default: bool) -> bool:
    if not isinstance(section, dict):
        return default
    value = section.get("supported", default)
    if isinstance(value, str):  # "true"/"false" from lenient servers
        return value.strip().lower() == "true"
    return value if isinstance(value, bool) else default


def _positive(section: Any, key: str) -> int | None:
    if not isinstance(section, dict):
        return None
    value = section.get(key)
    number = _status_number(value) if isinstance(value, str) else value
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        return None
    return number


def features_of(body: Any) -> ScimFeatures:
    """Read a ``/ServiceProviderConfig`` answer; missing or odd sections keep the defaults."""
    data = F.object(body, "ServiceProviderConfig")
    defaults = ScimFeatures()
    pagination = data.get("pagination")
    return ScimFeatures(
        filter=_supported(data.get("filter"), defaults.filter),
        max_results=_positive(data.get("filter"), "maxResults"),
        patch=_supported(data.get("patch"), defaults.patch),
        etag=_supported(data.get("etag"), defaults.etag),
        sort=_supported(data.get("sort"), defaults.sort),
        bulk=_supported(data.get("bulk"), defaults.bulk),
        cursor=isinstance(pagination, dict) and pagination.get("cursor") is True,
        index=not isinstance(pagination, dict) or pagination.get("index") is not False,
        max_page_size=_positive(pagination, "maxPageSize"),
    )


def check_features(overrides: object) -> dict[str, Any]:
    """Validate the ``features=`` option: known names, booleans or positive ints."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ConfigError("scim: features must be a mapping, e.g. {patch = false}")
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in _FEATURE_NAMES:
            raise ConfigError(
                f"scim: unknown feature {key!r} (features: {', '.join(_FEATURE_NAMES)})"
            )
        if key in ("max_results", "max_page_size"):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigError(f"scim: features.{key} must be a positive int")
        elif not isinstance(value, bool):
            raise ConfigError(f"scim: features.{key} must be true or false")
        out[key] = value
    return out


def capabilities_of(features: ScimFeatures) -> Capabilities:
    """What a directory over a server with these features can do."""
    cap = features.page_cap()
    return Capabilities(
        list_users=features.list,
        get_user=True,
        email_lookup="batch" if features.filter else "scan",
        create_user=True,
        update_user=True,
        delete_user=True,
        server_filters=frozenset({"status"}) if features.filter else frozenset(),
        paging="cursor" if features.cursor else "offset",
        max_page_size=min(cap, MAX_PAGE_SIZE) if cap else DEFAULT_PAGE_SIZE,
        etag=features.etag,
        external_id=True,
    )


# -- the dialect ---------------------------------------------------------------------


def _check_base_url(value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            "scim needs base_url= (the SCIM endpoint, e.g. https://api.example.com/scim/v2)"
        )


@attrs.define(repr=False, slots=False)
class ScimDialect(Dialect):
    """Any SCIM 2.0 server's ``/Users``, with ``Authorization: Bearer <token>``.

    ``email_filter`` is ``"emails"`` (``emails[value eq "x"]``, the default) or
    ``"userName"``; ``features`` overrides what ``/ServiceProviderConfig`` announces
    (``{"patch": False}``, ``{"list": False}``, ``{"max_results": 100}``...).
    ``user_name_follows_email=True`` is for a service whose ``userName`` is the email
    (the login): an update that changes the email changes ``userName`` with it (by
    default ``userName``, set to the email at creation, is never changed).
    """

    name: ClassVar[str] = NAME
    #: Before discovery; each dialect then holds its server's own (``self.capabilities``).
    capabilities: ClassVar[Capabilities] = capabilities_of(ScimFeatures())
    #: Before discovery; ``CursorPaging`` where the server announces RFC 9865 cursors.
    paging: ClassVar[Paging] = OffsetPaging(start=1)
    items_key = "Resources"
    conditional_writes: ClassVar[bool] = True

    token: str = attrs.field(kw_only=True)
    base_url: str = attrs.field(kw_only=True, validator=lambda _s, _a, v: _check_base_url(v))
    email_filter: str = attrs.field(default="emails", kw_only=True)
    features: Mapping[str, Any] | None = attrs.field(default=None, kw_only=True)
    user_name_follows_email: bool = attrs.field(default=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token.strip():
            raise InvalidArgumentError("scim needs token= (a bearer token)", provider=NAME)
        if self.email_filter not in EMAIL_FILTERS:
            raise ConfigError(
                f"scim: email_filter must be one of {', '.join(EMAIL_FILTERS)}, "
                f"got {self.email_filter!r}"
            )
        if not isinstance(self.user_name_follows_email, bool):
            raise ConfigError("scim: user_name_follows_email must be true or false")
        self._overrides = check_features(self.features)
        self._lookup_by = self.email_filter
        self.apply(ScimFeatures())

    def apply(self, features: ScimFeatures) -> None:
        """Take a server's features (the ``features=`` option still wins)."""
        self.server = attrs.evolve(features, **self._overrides)
        # instance attributes: this directory's server, not every SCIM server's
        self.__dict__["capabilities"] = capabilities_of(self.server)
        self.__dict__["paging"] = CursorPaging() if self.server.cursor else OffsetPaging(start=1)

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer <token>``."""
        return {"Authorization": f"Bearer {self.token}"}

    def protocol_headers(self) -> dict[str, str]:
        """Ask for SCIM JSON (plain JSON answers are read as well)."""
        return {"Accept": f"{SCIM_JSON}, application/json"}

    # -- discovery --------------------------------------------------------------

    def discovery_request(self) -> Request | None:
        """``GET /ServiceProviderConfig`` (the directory sends it once, before the rest)."""
        return Request("GET", ("ServiceProviderConfig",))

    def discover(self, body: Any, reply: Reply | None = None) -> None:
        """Take the ``/ServiceProviderConfig`` answer (None: the server has none)."""
        self.apply(ScimFeatures() if body is None else features_of(body))

    # -- listing ----------------------------------------------------------------

    @property
    def cursor_paging(self) -> bool:
        """Whether listings page with RFC 9865 cursors rather than ``startIndex``."""
        return self.server.cursor

    def list_request(self, position: Any, page_size: int, filters: Mapping[str, str]) -> Request:
        """``GET /Users`` with ``startIndex`` and ``count`` (or ``cursor``), and a filter.

        ``position`` is the 1-based ``startIndex`` (offset paging) or the cursor (None
        for the first page).
        """
        params: list[tuple[str, str]] = []
        conditions = []
        if "status" in filters:
            conditions.append(status_filter(filters["status"]))
        if "filter" in filters:
            conditions.append(filters["filter"])
        if not conditions and not self.server.list:
            raise self.unsupported("list_users without a filter (this SCIM server needs one)")
        if conditions:
            text = (
                conditions[0]
                if len(conditions) == 1
                else " and ".join(f"({c})" for c in conditions)
            )
            params.append(("filter", text))
        cap = self.server.page_cap()
        count = min(page_size, cap) if cap else page_size
        if self.cursor_paging:
            params.append(("cursor", "" if position is None else _cursor_token(position)))
        else:
            params.append(("startIndex", str(1 if position is None else position)))
        params.append(("count", str(count)))
        return Request("GET", ("Users",), tuple(params))

    #: Map one ``Resources`` entry (the mapping itself: no wrapper per user).
    parse_item = staticmethod(parse_scim_user)

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        """Check a ``ListResponse``: ``totalResults`` and the ``Resources`` that came back
        (the paging steps by those, never by the ``count`` asked), or ``nextCursor``."""
        data, items, total = list_response(body)
        if self.cursor_paging:
            following = F.opt_str(data, "nextCursor", "list answer")
            return ListPage(items, bool(following), following or None, total_items=total)
        return ListPage(items, bool(items), total_items=total)

    # -- single users -----------------------------------------------------------

    def get_request(self, user_id: str) -> Request:
        """``GET /Users/{id}``."""
        return Request("GET", ("Users", check_id(NAME, user_id)))

    def parse_user(self, body: Any, reply: Reply | None = None) -> DirectoryUser:
        """Parse one ``User`` resource (its ``ETag`` is the version where ``meta`` has none)."""
        etag = reply.headers.get("etag") if reply is not None else None
        return parse_scim_user(body, "user answer", etag)

    def lookup_batches(self, emails: Sequence[str]) -> list[tuple[tuple[str, ...], Request]]:
        """The requests finding ``emails``: ``or`` filters of bounded length, one per batch."""
        size = min(MAX_BATCH, self.server.page_cap() or MAX_BATCH)
        out = []
        for group, text in email_batches(emails, self._lookup_by, max_count=size):
            count = max(DEFAULT_PAGE_SIZE, len(group))
            cap = self.server.page_cap()
            params = (
                ("filter", text),
                ("startIndex", "1"),
                ("count", str(min(count, cap or count))),
            )
            # a filter on the collection answers 200 with no match: a 404 is a wrong URL
            out.append((group, Request("GET", ("Users",), params, endpoint_404=True)))
        return out

    def parse_batch(
        self, body: Any, reply: Reply | None = None
    ) -> tuple[list[DirectoryUser], bool]:
        """The users a lookup found, and whether that is all of them (not capped)."""
        _, items, total = list_response(body)
        users = [parse_scim_user(item, f"Resources[{i}]") for i, item in enumerate(items)]
        return users, total is None or total <= len(items)

    def lookup_refused(self, error: APIError) -> bool:
        """Switch lookups to ``userName eq`` when the server refuses ``emails[...]``."""
        if self._lookup_by == "emails" and error.code in ("invalidFilter", "invalidSyntax"):
            self._lookup_by = "userName"
            return True
        return False

    # -- writing ----------------------------------------------------------------

    def create_request(self, new_user: NewUser) -> Request:
        """``POST /Users`` (``userName`` is the email unless ``settings`` gives one)."""
        return Request("POST", ("Users",), json=create_body(new_user), headers=_json_type())

    @property
    def update_reads_first(self) -> bool:
        """Whether an update needs the user as it is (PUT, where PATCH is unsupported)."""
        return not self.server.patch

    def update_request(
        self,
        user_id: str,
        changes: UserChanges,
        *,
        version: str | None = None,
        current: DirectoryUser | None = None,
    ) -> Request:
        """``PATCH /Users/{id}`` replacing the changed attributes; ``PUT`` without PATCH.

        ``If-Match`` carries ``version`` when given, else — for a PUT, which follows a
        read — the version read, where the server supports ETags.
        """
        path = ("Users", check_id(NAME, user_id))
        follows = self.user_name_follows_email
        if self.server.patch:
            body = patch_body(changes, user_name_follows_email=follows)
            return Request("PATCH", path, json=body, headers=_json_type(version))
        if current is None:
            raise InvalidArgumentError("a PUT update needs the user as read", provider=NAME)
        if version is None and self.server.etag:
            version = current.version
        body = put_body(current.raw, changes, user_name_follows_email=follows)
        return Request("PUT", path, json=body, headers=_json_type(version))

    def delete_request(self, user_id: str, *, version: str | None = None) -> Request:
        """``DELETE /Users/{id}`` (``If-Match`` with ``version`` when given)."""
        headers = {"If-Match": _check_version(version)} if version is not None else {}
        return Request("DELETE", ("Users", check_id(NAME, user_id)), headers=headers)

    # -- errors -----------------------------------------------------------------

    def _map_reply(self, answer: Reply) -> APIError:
        """The SCIM error body mapped into the tree; ``code`` is its ``scimType``."""
        error = parse_scim_error(answer.body)
        if error is None:
            return super()._map_reply(answer)
        cls = error_class(answer.status, error.scim_type)
        message = error.detail or f"HTTP {answer.status} from the SCIM server"
        return cls(
            message,
            provider=NAME,
            status_code=answer.status,
            code=error.scim_type,
            request_id=_one_line(answer.headers.get("x-request-id")),
        )


def list_response(body: Any) -> tuple[dict[str, Any], list[Any], int | None]:
    """A ``ListResponse``'s object, its ``Resources`` (missing: none) and ``totalResults``."""
    data = F.object(body, "list answer")
    resources = data.get("Resources", data.get("resources"))
    items = [] if resources is None else F.list(resources, "list answer.Resources")
    total = data.get("totalResults")
    if total is not None and (type(total) is not int or total < 0):
        raise F.wrong("list answer", "totalResults", "a non-negative integer", total)
    return data, items, total


def _cursor_token(cursor: str) -> str:
    if not isinstance(cursor, str) or not cursor or not cursor.isprintable() or len(cursor) > 4096:
        raise InvalidArgumentError(
            f"not a cursor this scim directory gave out: {str(cursor)[:40]!r}", provider=NAME
        )
    return cursor


def _check_version(version: object) -> str:
    if not isinstance(version, str) or not version.strip() or not version.isprintable():
        raise InvalidArgumentError(
            "version must be the non-empty version string of a user (its ETag)", provider=NAME
        )
    return version


def _json_type(version: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": SCIM_JSON}
    if version is not None:
        headers["If-Match"] = _check_version(version)
    return headers
