"""Everything a page can change, each checked on the server against the user store at that
moment (a hidden button is a courtesy, this is the rule): the session the page was opened with
must still be alive (not signed out, not ended by a password or role change or a removal), the
role must allow the action, and a user with a one-time password may do nothing but change it.
Each action is recorded with the user and the time: alert acknowledgements and resolutions in
the alert store's audit trail, scenario changes in the simulator's control log, user changes in
the user store's audit."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from core import sessions, users
from core.layout import Layout
from core.settings import Settings


class ActionError(Exception):
    """An action that cannot be done; the message is shown to the user as is."""


class Actor(str):
    """A signed-in user's name bound to the token of the server-side session it acts through:
    pages pass it wherever a user name goes, and every action here checks the session."""

    token: str

    def __new__(cls, name: str, token: str) -> Self:
        actor = super().__new__(cls, name)
        actor.token = token
        return actor


def _check(users_db: Path, user: Actor, action: str, *, own_password: bool = False) -> None:
    """Refuse unless `user` acts through a live session of theirs whose role allows `action`;
    while the password must be changed, only the own-password change (`own_password`) is."""
    # a bare name (no token) is refused like an ended session: fail closed
    account = sessions.resolve(users_db, getattr(user, "token", None))
    if account is None or account.username != user:
        raise users.PermissionDenied("your session has ended: sign in again")
    if account.must_change and not own_password:
        raise users.PermissionDenied("set your own password first: the one you signed in with "
                                     "was for one use")
    users.require(account.role, action, user)


def acknowledge_alert(settings: Settings, users_db: Path, user: Actor, alert_id: int,
                      note: str | None) -> dict:
    from alerting.store import acknowledge

    _check(users_db, user, users.ACK_ALERT)
    return _alert_change(settings, acknowledge, alert_id, user, note)


def resolve_alert(settings: Settings, users_db: Path, user: Actor, alert_id: int,
                  note: str | None) -> dict:
    from alerting.store import resolve

    _check(users_db, user, users.RESOLVE_ALERT)
    return _alert_change(settings, resolve, alert_id, user, note)


def _alert_change(settings: Settings, change, alert_id: int, user: str,
                  note: str | None) -> dict:
    """Apply an acknowledgement or resolution, then republish the warehouse's Parquet
    snapshot of the store (as `rul alerts` does), so every reader agrees."""
    from alerting.store import AlertError, export_snapshot

    layout = Layout(settings.data_dir)
    try:
        row = change(layout.alerts_db, int(alert_id), user,
                     note.strip() if note and note.strip() else None)
    except AlertError as exc:
        raise ActionError(str(exc)) from None
    export_snapshot(layout.alerts_db, layout.lake_dir)
    return row


def _control(settings: Settings):
    from simulator.live.control import Control

    return Control(Layout(settings.data_dir).live_dir)


def apply_scenario(settings: Settings, users_db: Path, user: Actor, name: str, target: str,
                   duration_s: float | None, params: dict[str, float]) -> dict:
    from core.live import targets
    from simulator.live.scenarios import ScenarioError, check_scenario

    _check(users_db, user, users.CONTROL_SIMULATOR)
    try:
        check_scenario(name, target, params, targets(Layout(settings.data_dir)))
    except ScenarioError as exc:
        raise ActionError(str(exc)) from None
    return _control(settings).apply(name, target, duration_s, params, by=f"dashboard:{user}")


def clear_scenarios(settings: Settings, users_db: Path, user: Actor,
                    scenario_id: str | None = None) -> list[dict]:
    _check(users_db, user, users.CONTROL_SIMULATOR)
    return _control(settings).clear(scenario_id, by=f"dashboard:{user}")


def adjust(settings: Settings, users_db: Path, user: Actor, target: str,
           values: dict[str, float], reset: bool) -> dict:
    from core.live import targets
    from simulator.live.scenarios import ScenarioError, check_offset

    _check(users_db, user, users.CONTROL_SIMULATOR)
    try:
        known = targets(Layout(settings.data_dir))
        for name, value in values.items():
            check_offset(name, value, target, known)
    except ScenarioError as exc:
        raise ActionError(str(exc)) from None
    return _control(settings).adjust(target, values, reset, by=f"dashboard:{user}")


def start_simulator(settings: Settings, users_db: Path, user: Actor, tick_s: float = 5.0,
                    speed: float = 60.0) -> int:
    from core.live import start_detached

    _check(users_db, user, users.CONTROL_SIMULATOR)
    _control(settings).update(lambda s: s["log"].append(
        {"at": _now(), "by": f"dashboard:{user}", "action": "start",
         "detail": f"tick {tick_s:g} s, speed {speed:g}x"}))
    try:
        return start_detached(Layout(settings.data_dir), tick_s, speed)
    except RuntimeError as exc:
        raise ActionError(str(exc)) from None


def stop_simulator(settings: Settings, users_db: Path, user: Actor) -> int | None:
    from core.live import stop

    _check(users_db, user, users.CONTROL_SIMULATOR)
    _control(settings).update(lambda s: s["log"].append(
        {"at": _now(), "by": f"dashboard:{user}", "action": "stop", "detail": ""}))
    return stop(Layout(settings.data_dir))


def _now() -> str:
    from simulator.live.control import now_iso

    return now_iso()


def add_user(users_db: Path, actor: Actor, username: str, role: str, password: str) -> None:
    """An admin adds a user; the admin knows the password, so its owner replaces it at the
    first sign-in."""
    _check(users_db, actor, users.MANAGE_USERS)
    users.add_user(users_db, username, role, password, by=f"dashboard:{actor}", must_change=True)


def remove_user(users_db: Path, actor: Actor, username: str) -> None:
    _check(users_db, actor, users.MANAGE_USERS)
    users.remove_user(users_db, username, by=f"dashboard:{actor}")


def set_role(users_db: Path, actor: Actor, username: str, role: str) -> None:
    _check(users_db, actor, users.MANAGE_USERS)
    users.set_role(users_db, username, role, by=f"dashboard:{actor}")


def set_password(users_db: Path, actor: Actor, username: str, password: str) -> None:
    """An admin resets another user's password: their sessions end and they must choose their
    own at the next sign-in. One's own goes through `change_own_password`."""
    if username == actor:
        raise ActionError("to change your own password, give the current one under "
                          "'Your account'")
    _check(users_db, actor, users.MANAGE_USERS)
    users.set_password(users_db, username, password, by=f"dashboard:{actor}", must_change=True)


def change_own_password(users_db: Path, actor: Actor, current: str, new: str) -> None:
    """Every user may change their own password, giving the current one; their other sessions
    end, the one making the change stays signed in."""
    _check(users_db, actor, users.READ, own_password=True)
    users.change_own_password(users_db, actor, current, new,
                              keep_session=sessions.key(actor.token))
