"""The SCIM provider against software no one here wrote: scim2-server and scim2-tester.

scim2-server (a real in-memory SCIM 2.0 server) runs in-process through httpx's WSGI
transport (blocking directories) and ASGI transport (asyncio directories), and over
real HTTP as its own ``scim2-server`` command on 127.0.0.1. scim2-tester checks the
``ScimEmulator`` for RFC conformance. Both packages need Python 3.11 or later.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

import userdir
from userdir import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NewUser,
    PreconditionFailedError,
    ServerError,
    UserChanges,
    UserNotFoundError,
    UserStatus,
)
from userdir.testing import ScimEmulator

from .conftest import Blocking

pytestmark = [
    pytest.mark.scim2,
    pytest.mark.skipif(
        sys.version_info < (3, 11), reason="scim2-server and scim2-tester need Python >= 3.11"
    ),
]

if sys.version_info >= (3, 11):
    from scim2_client.engines.wsgi import WSGISCIMClient
    from scim2_models import ScimProvider, ServiceProviderConfig
    from scim2_server.applications.asgi import ASGIApplication
    from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage
    from scim2_server.service import ScimService
    from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
    from scim2_server.utils import (
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )
    from scim2_tester import Status, check_server

TOKEN = "scim2-S3CR3T-token-000"
BASE = "https://scim.test/v2"


def server_config(
    *, max_results: int | None = None, cursor: bool = False, patch: bool = True
) -> dict[str, Any]:
    """scim2-server's default configuration, capped, with cursors or without PATCH."""
    config: dict[str, Any] = load_default_service_provider_config().model_dump()
    if max_results is not None:
        config["filter"]["maxResults"] = max_results
    if cursor:
        config["pagination"] = {"cursor": True, "index": True, "cursorTimeout": 3600}
    config["patch"]["supported"] = patch
    return config


def scim_provider(config: dict[str, Any]) -> Any:
    spc = ServiceProviderConfig.model_validate(config)
    spc.authentication_schemes = [*(spc.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    return ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=spc
    )


if sys.version_info >= (3, 11):

    class BearerASGI(ASGIApplication):
        """scim2-server's ASGI application with the bearer check of its WSGI one."""

        def check_auth(self, request: Any) -> None:
            BearerTokenApplication.check_auth(self, request)  # type: ignore[arg-type]

        bearer_tokens = frozenset({TOKEN})


@pytest.fixture(params=["wsgi", "asgi"])
def scim2_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``open(**config_and_options)``: a directory on a fresh in-process scim2-server.

    ``wsgi``: a blocking directory over ``httpx.WSGITransport``; ``asgi``: an asyncio
    directory over ``httpx.ASGITransport`` (driven from this sync test body).
    """
    opened: list[Any] = []

    def open_directory(
        *,
        max_results: int | None = None,
        cursor: bool = False,
        patch: bool = True,
        token: str = TOKEN,
        **options: Any,
    ) -> Any:
        provider = scim_provider(server_config(max_results=max_results, cursor=cursor, patch=patch))
        service = ScimService(provider, secret="test-secret")
        if request.param == "wsgi":
            app = BearerTokenApplication(
                InMemoryStorage(), provider, service, bearer_tokens=[TOKEN]
            )
            directory: Any = userdir.connect(
                "scim",
                token=token,
                base_url=BASE,
                transport=httpx.WSGITransport(app=app),
                **options,
            )
        else:
            asgi = BearerASGI(AsyncInMemoryStorage(InMemoryStorage()), provider, service)
            directory = Blocking(
                userdir.connect_async(
                    "scim",
                    token=token,
                    base_url=BASE,
                    transport=httpx.ASGITransport(app=asgi),
                    **options,
                )
            )
        opened.append(directory)
        return directory

    yield open_directory
    for directory in opened:
        directory.close()


def ids(users: Iterable[userdir.DirectoryUser]) -> list[str]:
    """The ids, sorted (scim2-server lists in its own order), duplicates kept."""
    return sorted(u.id for u in users)


def seed(directory: Any, n: int) -> list[userdir.DirectoryUser]:
    return [
        directory.create_user(
            NewUser(email=f"person{i}@example.com", name=f"Person {i}", role="member")
        )
        for i in range(n)
    ]


# -- in-process: WSGI (blocking) and ASGI (asyncio) ----------------------------------


def test_listing_with_a_capped_max_results_loses_nobody(scim2_server: Callable[..., Any]) -> None:
    d = scim2_server(max_results=7, features={"max_results": 100})  # told a wrong cap
    created = seed(d, 23)
    listed = list(d.iter_users())
    assert ids(listed) == ids(created)
    assert {u.email for u in listed} == {f"person{i}@example.com" for i in range(23)}


def test_listing_by_the_announced_cap(scim2_server: Callable[..., Any]) -> None:
    d = scim2_server(max_results=5, concurrency=8)
    created = seed(d, 12)
    assert ids(d.iter_users()) == ids(created)
    assert d.capabilities.max_page_size == 5
    page = d.list_page(page_size=5)
    assert (len(page), page.next_cursor) == (5, "6")


def test_cursor_pagination(scim2_server: Callable[..., Any]) -> None:
    d = scim2_server(max_results=4, cursor=True)
    created = seed(d, 10)
    listed = list(d.iter_users())
    assert d.capabilities.paging == "cursor"
    assert ids(listed) == ids(created)
    first = d.list_page(page_size=4)
    assert first.next_cursor is not None and not first.next_cursor.isdigit()
    assert [u.id for u in d.list_page(first.next_cursor, 4)] == [u.id for u in listed[4:8]]
    with pytest.raises(InvalidRequestError) as bad:
        d.list_page("not-a-cursor-of-this-server", 4)
    assert (bad.value.status_code, bad.value.code) == (400, "invalidCursor")


def test_lookups(scim2_server: Callable[..., Any]) -> None:
    d = scim2_server(max_results=10)
    created = seed(d, 30)
    assert d.find_user_by_email("PERSON7@Example.com").id == created[7].id
    assert d.find_user_by_email("nobody@example.com") is None
    emails = [f"person{i}@example.com" for i in range(0, 30, 2)] + ["ghost@example.com"]
    found = d.find_users_by_email([e.upper() for e in emails])
    assert {k.lower(): v.id for k, v in found.items() if v} == {
        f"person{i}@example.com": created[i].id for i in range(0, 30, 2)
    }
    assert found["GHOST@EXAMPLE.COM"] is None


def test_status_filter(scim2_server: Callable[..., Any]) -> None:
    d = scim2_server()
    created = seed(d, 6)
    for user in created[::2]:
        d.update_user(user.id, UserChanges(status=UserStatus.INACTIVE))
    inactive = list(d.iter_users(status="inactive"))
    assert ids(inactive) == ids(created[::2])
    assert ids(d.iter_users(status="active")) == ids(created[1::2])


def test_the_write_cycle_with_etags(scim2_server: Callable[..., Any]) -> None:
    d = scim2_server()
    user = d.create_user(NewUser(email="ada@example.com", name="Ada Lovelace", role="admin"))
    assert user.version is not None and user.username == "ada@example.com"
    assert (user.role, user.status) == ("admin", UserStatus.ACTIVE)
    changed = d.update_user(
        user.id, UserChanges(name="Ada King", status="inactive"), version=user.version
    )
    assert (changed.name, changed.status) == ("Ada King", UserStatus.INACTIVE)
    assert changed.version not in (None, user.version)
    assert d.get_user(user.id).version == changed.version
    with pytest.raises(PreconditionFailedError) as stale:
        d.update_user(user.id, UserChanges(name="Lost"), version=user.version)
    assert (stale.value.status_code, stale.value.version) == (412, user.version)
    assert d.get_user(user.id).name == "Ada King"  # the server holds the first change
    with pytest.raises(PreconditionFailedError):
        d.delete_user(user.id, version=user.version)
    d.delete_user(user.id, version=changed.version)
    with pytest.raises(UserNotFoundError):
        d.get_user(user.id)


def test_put_where_the_server_has_no_patch(scim2_server: Callable[..., Any]) -> None:
    d = scim2_server(patch=False)
    (user,) = seed(d, 1)
    changed = d.update_user(user.id, UserChanges(role="owner"))
    assert changed.role == "owner"
    assert changed.email == "person0@example.com"  # the rest went back as it was
    assert changed.version != user.version


def test_every_error_status(scim2_server: Callable[..., Any]) -> None:
    d = scim2_server()
    (user,) = seed(d, 1)
    with pytest.raises(UserNotFoundError) as missing:
        d.get_user("no-such-user")
    assert (missing.value.status_code, missing.value.code) == (404, None)
    with pytest.raises(ConflictError) as taken:
        d.create_user(NewUser(email="person0@example.com", name="Again"))
    assert (taken.value.status_code, taken.value.code) == (409, "uniqueness")
    with pytest.raises(PreconditionFailedError):
        d.update_user(user.id, UserChanges(name="x"), version='W/"stale"')
    forced = scim2_server(patch=False, features={"patch": True})  # PATCH where unsupported
    (other,) = seed(forced, 1)
    with pytest.raises(ServerError) as unsupported:
        forced.update_user(other.id, UserChanges(name="x"))
    assert unsupported.value.status_code == 501
    wrong = scim2_server(token="wrong-token")
    with pytest.raises(AuthenticationError) as refused:
        wrong.get_user(user.id)
    assert refused.value.status_code == 401
    assert "wrong-token" not in str(refused.value)


# -- over real HTTP: the scim2-server command ----------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def scim2_server_command(tmp_path: Path, config: dict[str, Any]) -> Iterator[str]:
    """``scim2-server --port P --bearer-token T`` on 127.0.0.1; yields its base URL."""
    command = shutil.which("scim2-server", path=str(Path(sys.executable).parent)) or shutil.which(
        "scim2-server"
    )
    assert command is not None, "the scim2-server command is not installed"
    spc = tmp_path / "spc.json"
    spc.write_text(json.dumps(config))
    port = _free_port()
    process = subprocess.Popen(
        [
            command,
            "--port",
            str(port),
            "--bearer-token",
            TOKEN,
            "--service-provider-config",
            str(spc),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "SCIM2_SERVER_SECRET": "test-secret"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"scim2-server did not start: {output[-2000:]}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def test_over_http_blocking_and_asyncio(tmp_path: Path) -> None:
    with scim2_server_command(tmp_path, server_config(max_results=6, cursor=False)) as url:
        with userdir.connect("scim", token=TOKEN, base_url=url, timeout=10) as d:
            created = seed(d, 15)
            assert ids(d.iter_users()) == ids(created)
            assert d.capabilities.max_page_size == 6
            assert d.find_user_by_email("PERSON3@example.com").id == created[3].id
            changed = d.update_user(
                created[0].id, UserChanges(name="Renamed"), version=created[0].version
            )
            with pytest.raises(PreconditionFailedError):
                d.update_user(created[0].id, UserChanges(name="Stale"), version=created[0].version)
            with pytest.raises(ConflictError):
                d.create_user(NewUser(email="person1@example.com", name="Again"))

        async def with_asyncio() -> tuple[list[str], str | None]:
            async with userdir.connect_async("scim", token=TOKEN, base_url=url, timeout=10) as a:
                listed = sorted([u.id async for u in a.iter_users()])
                found = await a.find_users_by_email(["person5@example.com", "ghost@example.com"])
                await a.delete_user(created[1].id, version=created[1].version)
                with pytest.raises(UserNotFoundError):
                    await a.get_user(created[1].id)
                user = found["person5@example.com"]
                return listed, user.id if user else None

        listed, found_id = asyncio.run(with_asyncio())
        assert listed == ids(created)
        assert found_id == created[5].id
        assert changed.name == "Renamed"
        wrong = userdir.connect("scim", token="wrong", base_url=url, timeout=10)
        with wrong, pytest.raises(AuthenticationError):
            list(wrong.iter_users())


def test_over_http_with_cursors(tmp_path: Path) -> None:
    config = server_config(max_results=4, cursor=True)
    with (
        scim2_server_command(tmp_path, config) as url,
        userdir.connect("scim", token=TOKEN, base_url=url, timeout=10) as d,
    ):
        created = seed(d, 9)
        assert ids(d.iter_users()) == ids(created)
        assert d.capabilities.paging == "cursor"


# -- scim2-tester: the emulator's RFC conformance --------------------------------------


def wsgi_app(emulator: ScimEmulator) -> Callable[..., Iterable[bytes]]:
    """The emulator as a WSGI application (for scim2-client's WSGI engine)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        raw_path = quote(environ["PATH_INFO"].encode("latin-1"), safe="/:@!$&'()*+,;=-._~")
        pending = emulator._arrive(
            environ["REQUEST_METHOD"], raw_path, environ.get("QUERY_STRING", ""), headers, body
        )
        reply = emulator._finish(pending).reply
        assert reply is not None
        start_response(
            f"{reply.status} {http.HTTPStatus(reply.status).phrase}", reply.header_list()
        )
        return [reply.body]

    return app


FAILED = {"ERROR", "CRITICAL", "DEVIATION"}


@pytest.mark.parametrize(
    "options",
    [{}, {"max_results": 50, "cursor": True}, {"patch": False}],
    ids=["default", "capped-cursor", "no-patch"],
)
def test_scim2_tester_finds_no_failed_check_on_the_emulator(options: dict[str, Any]) -> None:
    emulator = ScimEmulator(TOKEN, **options)
    client = WSGISCIMClient(
        wsgi_app(emulator),
        base_url="http://localhost/scim/v2",
        headers={"Authorization": f"Bearer {TOKEN}"},
        provider=ScimProvider(),
    )
    results = check_server(client, resource_types=["User"])
    failed = [f"{r.title}: {r.reason}" for r in results if r.status.name in FAILED]
    assert failed == []
    passed = [r for r in results if r.status is Status.SUCCESS]
    assert len(passed) >= (30 if options.get("patch") is False else 80)
    assert {r.title for r in passed} >= {
        "service_provider_config_endpoint",
        "object_creation",
        "object_query",
        "object_replacement",
        "object_deletion",
        "random_url",
    }
    assert emulator.requests  # the checks went through the emulator's request log
