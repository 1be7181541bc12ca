"""Reconcile, writing: apply a plan to its target.

Every action is a generator of steps (:func:`_create_steps`, :func:`_write_steps`)
that says which directory call to make next and decides from its answer; the blocking
and the asyncio drivers only make those calls, so both apply a plan the same way.
Each outcome is appended to a journal (JSON lines) as it comes, and a run with the
same journal resumes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import threading
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import attrs

from ._reconcile_plan import (
    SNAPSHOT,
    Action,
    Create,
    Deactivate,
    Delete,
    Plan,
    SafetyCheckError,
    Update,
)
from .directory import AsyncDirectory, Directory, check_concurrency
from .errors import (
    APIError,
    ConflictError,
    DirectoryError,
    InvalidArgumentError,
    ServerError,
    TransportError,
    UnsupportedOperationError,
    UserNotFoundError,
)
from .models import DirectoryUser, NewUser, UserChanges

__all__ = ["ActionResult", "ApplyResult", "Journal", "apply", "apply_async"]

Outcome = Literal["done", "skipped", "failed", "not_run"]


# -- results ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ActionResult:
    """What became of one action: ``done``, ``skipped`` (with ``reason``), ``failed``
    (``reason`` is the error) or ``not_run`` (stopped by ``stop_on_error``).
    ``resumed`` is True when a previous run with the same journal did it."""

    index: int
    action: Action
    outcome: Outcome
    user_id: str | None = None
    reason: str | None = None
    resumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "index": self.index,
            "action": self.action.kind,
            "email_key": self.action.email_key,
            "outcome": self.outcome,
            "user_id": self.user_id,
            "reason": self.reason,
            "resumed": self.resumed,
        }


@attrs.frozen(kw_only=True)
class ApplyResult:
    """Every action of the plan and what became of it, in plan order."""

    plan_hash: str
    results: tuple[ActionResult, ...]

    def _where(self, outcome: str) -> list[ActionResult]:
        return [result for result in self.results if result.outcome == outcome]

    @property
    def done(self) -> list[ActionResult]:
        """The actions done (in this run or, ``resumed``, an earlier one)."""
        return self._where("done")

    @property
    def skipped(self) -> list[ActionResult]:
        """The actions not done on purpose (plan skips, targets changed since planning)."""
        return self._where("skipped")

    @property
    def failed(self) -> list[ActionResult]:
        """The actions that failed; a run with the same journal tries them again."""
        return self._where("failed")

    @property
    def not_run(self) -> list[ActionResult]:
        """The actions not started because ``stop_on_error`` stopped the run."""
        return self._where("not_run")

    @property
    def ok(self) -> bool:
        """Whether nothing failed and everything ran."""
        return not self.failed and not self.not_run

    @property
    def counts(self) -> dict[str, int]:
        """How many results each outcome has."""
        out = {"done": 0, "skipped": 0, "failed": 0, "not_run": 0}
        for result in self.results:
            out[result.outcome] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "plan_hash": self.plan_hash,
            "counts": self.counts,
            "results": [result.to_dict() for result in self.results],
        }


# -- the journal --------------------------------------------------------------------


class Journal:
    """JSON lines, one per outcome: the plan's hash, the action, its outcome, the
    account's id, the time. No field values, no secrets."""

    def __init__(self, path: str | os.PathLike[str] | None, plan_hash: str) -> None:
        self.path = None if path is None else Path(path)
        self.plan_hash = plan_hash
        self.lock = threading.Lock()
        self.last: dict[int, dict[str, Any]] = {}
        if self.path is not None and self.path.exists():
            self._read()
        if self.path is not None:
            try:  # before anything is sent: a journal that cannot be written stops the run
                self.path.open("a", encoding="utf-8").close()
            except OSError as exc:
                raise InvalidArgumentError(
                    f"cannot write journal {str(self.path)!r}: {exc.strerror or type(exc).__name__}"
                ) from None

    def _read(self) -> None:
        assert self.path is not None
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(
                f"cannot read journal {str(self.path)!r}: {type(exc).__name__}"
            ) from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                index = entry["index"]
                plan_hash = entry["plan"]
            except (ValueError, KeyError, TypeError):
                if number == len(lines):  # a line cut short by a crash
                    continue
                raise InvalidArgumentError(
                    f"journal {str(self.path)!r} line {number}: not a journal entry"
                ) from None
            if plan_hash != self.plan_hash:
                raise SafetyCheckError(
                    f"journal {str(self.path)!r} belongs to another plan: refusing to resume",
                    check="journal",
                )
            self.last[int(index)] = entry

    def record(
        self, index: int, action: Action, outcome: str, user_id: str | None, reason: str | None
    ) -> None:
        """Append one outcome (and remember it)."""
        entry = {
            "time": dt.datetime.now(dt.timezone.utc).isoformat(),
            "plan": self.plan_hash,
            "index": index,
            "action": action.kind,
            "email_key": action.email_key,
            "user_id": user_id,
            "outcome": outcome,
            "reason": reason,
        }
        with self.lock:
            self.last[index] = entry
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(entry, ensure_ascii=False) + "\n")


# -- the steps of one action (shared by both drivers) ---------------------------------


@attrs.frozen
class _Call:
    """A directory call for the driver to make; its answer (or error) is sent back."""

    method: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class _Unknown:
    """A note for the journal: a create's outcome is unknown (resolved by lookup)."""

    reason: str


@attrs.frozen
class _Done:
    outcome: Outcome
    user_id: str | None = None
    reason: str | None = None
    unknown: bool = False  # failed while a create's outcome is still unknown


Step = _Call | _Unknown
Steps = Generator[Step, Any, _Done]


def _differences(before: Mapping[str, Any], user: DirectoryUser) -> list[str]:
    now = {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "status": user.status.value,
        "updated_at": None if user.updated_at is None else user.updated_at.isoformat(),
    }
    return [key for key in SNAPSHOT if key in before and before[key] != now[key]]


def _after(action: Action) -> dict[str, Any]:
    """The account's fields once the action is applied (timestamps aside)."""
    assert isinstance(action, (Update, Deactivate))
    state = {k: v for k, v in action.before.items() if k != "updated_at"}
    if isinstance(action, Update):
        state.update(action.changes)
    else:
        state["status"] = "inactive"
    return state


def _version(action: Action) -> dict[str, Any]:
    version = getattr(action, "version", None)
    return {} if version is None else {"version": version}


def _precondition_failed(exc: DirectoryError) -> bool:
    return isinstance(exc, APIError) and exc.status_code == 412


def _create_steps(action: Create, prior: str | None, password: str | None) -> Steps:
    assert action.email is not None
    if prior == "unknown":
        try:
            found = yield _Call("find_user_by_email", (action.email,))
        except DirectoryError as exc:
            return _Done("failed", reason=f"outcome still unknown: {exc}", unknown=True)
        if found is not None:
            return _Done("done", found.id, "created by an earlier run (found by email)")
    new_user = NewUser(
        email=action.email,
        name=action.fields.get("name") or action.email,
        role=action.fields.get("role"),
        password=password,
        external_id=action.fields.get("external_id"),
    )
    for attempt in (1, 2):
        # Written ahead: should the run die before the answer, a resume looks first.
        yield _Unknown("create sent, no answer yet")
        try:
            user = yield _Call("create_user", (new_user,))
            return _Done("done", user.id)
        except ConflictError:
            return _Done("skipped", reason="the email exists in the target now (since planning)")
        except (TransportError, ServerError) as exc:
            # A lost answer, or a server that failed while handling it: the user may
            # exist now. Only a request that surely never left is plainly a failure.
            if isinstance(exc, TransportError) and exc.request_not_sent:
                raise
            if attempt == 2:
                return _Done("failed", reason=f"outcome unknown: {exc}", unknown=True)
            yield _Unknown(f"create sent, outcome unknown: {exc}")
            try:
                found = yield _Call("find_user_by_email", (action.email,))
            except DirectoryError as lookup_error:
                return _Done("failed", reason=f"outcome unknown: {lookup_error}", unknown=True)
            if found is not None:
                return _Done("done", found.id, "answer lost; found by email")
            # Not there: the create provably did not happen; it is sent once more.
    raise AssertionError("unreachable")


def _write_steps(action: Update | Deactivate | Delete) -> Steps:
    user_id = action.user_id
    assert user_id is not None
    if action.version is None:
        try:
            current = yield _Call("get_user", (user_id,))
        except UserNotFoundError:
            if isinstance(action, Delete):
                return _Done("done", user_id, "already gone")
            return _Done("skipped", user_id, "the account is gone since planning")
        changed = _differences(action.before, current)
        if changed:
            if not isinstance(action, Delete) and not _differences(_after(action), current):
                return _Done("done", user_id, "already in the planned state")
            return _Done("skipped", user_id, f"changed since planning: {', '.join(changed)}")
    try:
        if isinstance(action, Delete):
            yield _Call("delete_user", (user_id,), _version(action))
        else:
            changes = dict(action.changes) if isinstance(action, Update) else {"status": "inactive"}
            yield _Call("update_user", (user_id, UserChanges(**changes)), _version(action))
    except UserNotFoundError:
        if isinstance(action, Delete):
            return _Done("done", user_id, "already gone")
        return _Done("skipped", user_id, "the account is gone since planning")
    except DirectoryError as exc:
        if not _precondition_failed(exc):
            raise
        if not isinstance(action, Delete):
            # Our own write, whose answer was lost and which was sent again, looks the
            # same as someone else's: the account as it is now tells them apart.
            try:
                current = yield _Call("get_user", (user_id,))
            except UserNotFoundError:
                return _Done("skipped", user_id, "the account is gone since planning")
            if not _differences(_after(action), current):
                return _Done("done", user_id, "already in the planned state")
        return _Done("skipped", user_id, "changed since planning (version differs)")
    return _Done("done", user_id)


def _needs_password(directory: object) -> bool:
    """Whether creating a user there needs a password (``Capabilities.create_requires``)."""
    capabilities = getattr(directory, "capabilities", None)
    return "password" in getattr(capabilities, "create_requires", ())


# -- a run (shared) -------------------------------------------------------------------


_NEEDS = {
    "create": "create_user",
    "update": "update_user",
    "deactivate": "update_user",
    "delete": "delete_user",
}


def _check_capabilities(plan: Plan, target: object) -> None:
    """Refuse, before anything is sent, a plan the target cannot carry out."""
    capabilities = getattr(target, "capabilities", None)
    if capabilities is None:
        return
    provider = getattr(target, "provider", None)
    linking = sum(
        "external_id" in getattr(action, "fields", getattr(action, "changes", {}))
        for action in plan.changes
    )
    if linking and not getattr(capabilities, "external_id", False):
        raise UnsupportedOperationError(
            f"the plan sets the external id of {linking} account(s), but the {provider} "
            "directory keeps none: nothing was changed",
            provider=provider,
        )
    for kind in sorted({action.kind for action in plan.changes}, key=list(_NEEDS).index):
        operation = _NEEDS[kind]
        if not getattr(capabilities, operation, False):
            raise UnsupportedOperationError(
                f"the plan has {plan.counts[kind]} {kind} action(s), but the {provider} "
                f"directory cannot {operation.replace('_', ' ')}s: nothing was changed",
                provider=provider,
            )


class _Run:
    """One application of a plan: its checks, the journal and the results so far."""

    def __init__(
        self,
        plan: Plan,
        target: object,
        journal: str | os.PathLike[str] | None,
        stop_on_error: bool,
        on_result: Callable[[ActionResult], None] | None,
    ) -> None:
        if not isinstance(plan, Plan):
            raise InvalidArgumentError("apply() takes a userdir.Plan")
        if not plan.intact:
            raise SafetyCheckError(
                "the plan's content does not match its hash (edited since it was made): "
                "refusing to apply it",
                check="plan_hash",
            )
        provider = getattr(target, "provider", None)
        if plan.target_provider is not None and provider != plan.target_provider:
            raise SafetyCheckError(
                f"the plan is for a {plan.target_provider} directory ({plan.target!r}), "
                f"not {provider}: refusing to apply it",
                check="wrong_target",
            )
        _check_capabilities(plan, target)
        self.plan = plan
        self.journal = Journal(journal, plan.hash)
        self.stop_on_error = stop_on_error
        self.on_result = on_result
        self.stopped = False
        self.results: dict[int, ActionResult] = {}
        self.password = _needs_password(target)
        self.todo: list[tuple[int, Action, str | None]] = []
        for index, action in enumerate(plan.actions):
            prior = self.journal.last.get(index)
            outcome = None if prior is None else prior.get("outcome")
            if not action.changes_anything:
                self.results[index] = ActionResult(
                    index=index,
                    action=action,
                    outcome="skipped",
                    user_id=action.user_id,
                    reason=getattr(action, "reason", None),
                )
            elif prior is not None and outcome in ("done", "skipped"):
                self.results[index] = ActionResult(
                    index=index,
                    action=action,
                    outcome=outcome,
                    user_id=prior.get("user_id"),
                    reason=prior.get("reason"),
                    resumed=True,
                )
            else:
                self.todo.append((index, action, outcome))

    def steps(self, action: Action, prior: str | None) -> Steps:
        if isinstance(action, Create):
            return _create_steps(
                action, prior, secrets.token_urlsafe(24) if self.password else None
            )
        assert isinstance(action, (Update, Deactivate, Delete))
        return _write_steps(action)

    def note(self, index: int, action: Action, step: _Unknown) -> None:
        self.journal.record(index, action, "unknown", None, step.reason)

    def finish(self, index: int, action: Action, done: _Done | DirectoryError) -> None:
        if isinstance(done, DirectoryError):
            done = _Done("failed", action.user_id, str(done))
        journal_outcome = "unknown" if done.unknown else done.outcome
        self.journal.record(index, action, journal_outcome, done.user_id, done.reason)
        result = ActionResult(
            index=index,
            action=action,
            outcome=done.outcome,
            user_id=done.user_id,
            reason=done.reason,
        )
        self.results[index] = result
        if done.outcome == "failed" and self.stop_on_error:
            self.stopped = True
        if self.on_result is not None:
            self.on_result(result)

    def not_run(self, index: int, action: Action) -> None:
        self.results[index] = ActionResult(
            index=index,
            action=action,
            outcome="not_run",
            user_id=action.user_id,
            reason="not started: an earlier action failed (stop_on_error)",
        )

    def result(self) -> ApplyResult:
        return ApplyResult(
            plan_hash=self.plan.hash,
            results=tuple(self.results[i] for i in sorted(self.results)),
        )


def _concurrency(value: int | None, target: object) -> int:
    if value is None:
        return int(getattr(target, "concurrency", 4))
    return check_concurrency(value)


# -- drivers ------------------------------------------------------------------------


def apply(
    plan: Plan,
    target: Directory,
    *,
    journal: str | os.PathLike[str] | None = None,
    concurrency: int | None = None,
    stop_on_error: bool = False,
    on_result: Callable[[ActionResult], None] | None = None,
) -> ApplyResult:
    """Apply exactly ``plan`` to ``target``; returns what was done, skipped and failed.

    Refuses (:class:`SafetyCheckError`) a plan whose hash does not match its content
    or that was made for another kind of directory. An update, deactivation or
    deletion whose account changed since planning is skipped, with the reason: the
    version is sent as ``If-Match`` where the target has versions, else the account
    is re-read and compared. Writes run ``concurrency`` at a time (default: the
    directory's) within its rate limit. Each outcome is appended to ``journal`` (JSON
    lines); a run with the same journal does not repeat what is done, and a create
    whose answer was lost is looked up by email before anything is sent again. One
    failure does not stop the others unless ``stop_on_error``. ``on_result`` is
    called with each result as it comes (from worker threads).
    """
    run = _Run(plan, target, journal, stop_on_error, on_result)
    workers = _concurrency(concurrency, target)

    def one(index: int, action: Action, prior: str | None) -> None:
        if run.stopped:
            run.not_run(index, action)
            return
        run.finish(index, action, _drive(run, index, action, run.steps(action, prior), target))

    if workers == 1 or len(run.todo) <= 1:
        for item in run.todo:
            one(*item)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(one, *item) for item in run.todo]
            try:
                for future in futures:
                    future.result()
            except BaseException:  # Ctrl-C or a bug: start nothing more
                run.stopped = True
                for future in futures:
                    future.cancel()
                raise
    return run.result()


def _advance(
    run: _Run, index: int, action: Action, steps: Steps, answer: Any, error: DirectoryError | None
) -> _Call | _Done | DirectoryError:
    """Send the last call's answer (or error) into ``steps``: the next call, or the end."""
    try:
        while True:
            step = steps.send(answer) if error is None else steps.throw(error)
            if isinstance(step, _Call):
                return step
            run.note(index, action, step)
            answer, error = None, None
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except DirectoryError as exc:
        return exc


def _drive(
    run: _Run, index: int, action: Action, steps: Steps, target: Any
) -> _Done | DirectoryError:
    step = _advance(run, index, action, steps, None, None)
    while isinstance(step, _Call):
        answer, error = None, None
        try:
            answer = getattr(target, step.method)(*step.args, **step.kwargs)
        except DirectoryError as exc:
            error = exc
        step = _advance(run, index, action, steps, answer, error)
    return step


async def apply_async(
    plan: Plan,
    target: AsyncDirectory,
    *,
    journal: str | os.PathLike[str] | None = None,
    concurrency: int | None = None,
    stop_on_error: bool = False,
    on_result: Callable[[ActionResult], None] | None = None,
) -> ApplyResult:
    """:func:`apply` over an asyncio directory (``concurrency`` writes in flight)."""
    run = _Run(plan, target, journal, stop_on_error, on_result)
    limit = asyncio.Semaphore(_concurrency(concurrency, target))

    async def one(index: int, action: Action, prior: str | None) -> None:
        async with limit:
            if run.stopped:
                run.not_run(index, action)
                return
            done = await _drive_async(run, index, action, run.steps(action, prior), target)
            run.finish(index, action, done)

    await asyncio.gather(*(one(*item) for item in run.todo))
    return run.result()


async def _drive_async(
    run: _Run, index: int, action: Action, steps: Steps, target: Any
) -> _Done | DirectoryError:
    step = _advance(run, index, action, steps, None, None)
    while isinstance(step, _Call):
        answer, error = None, None
        try:
            answer = await getattr(target, step.method)(*step.args, **step.kwargs)
        except DirectoryError as exc:
            error = exc
        step = _advance(run, index, action, steps, answer, error)
    return step
