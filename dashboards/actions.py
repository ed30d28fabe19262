"""Everything a page can change, each checked on the server against the user's role as the
store holds it at that moment (a hidden button is a courtesy, this is the rule), and each
recorded with the user and the time: alert acknowledgements and resolutions in the alert
store's audit trail, scenario changes in the simulator's control log, user changes in the user
store's audit."""

from __future__ import annotations

from pathlib import Path

from core import users
from core.layout import Layout
from core.settings import Settings


class ActionError(Exception):
    """An action that cannot be done; the message is shown to the user as is."""


def _check(users_db: Path, user: str, action: str) -> None:
    role = users.get_role(users_db, user)
    if role is None:
        raise users.PermissionDenied(f"user {user!r} no longer exists")
    users.require(role, action, user)


def acknowledge_alert(settings: Settings, users_db: Path, user: str, alert_id: int,
                      note: str | None) -> dict:
    from alerting.store import acknowledge

    _check(users_db, user, users.ACK_ALERT)
    return _alert_change(settings, acknowledge, alert_id, user, note)


def resolve_alert(settings: Settings, users_db: Path, user: str, alert_id: int,
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


def apply_scenario(settings: Settings, users_db: Path, user: str, name: str, target: str,
                   duration_s: float | None, params: dict[str, float]) -> dict:
    from core.live import targets
    from simulator.live.scenarios import ScenarioError, check_scenario

    _check(users_db, user, users.CONTROL_SIMULATOR)
    try:
        check_scenario(name, target, params, targets(Layout(settings.data_dir)))
    except ScenarioError as exc:
        raise ActionError(str(exc)) from None
    return _control(settings).apply(name, target, duration_s, params, by=f"dashboard:{user}")


def clear_scenarios(settings: Settings, users_db: Path, user: str,
                    scenario_id: str | None = None) -> list[dict]:
    _check(users_db, user, users.CONTROL_SIMULATOR)
    return _control(settings).clear(scenario_id, by=f"dashboard:{user}")


def adjust(settings: Settings, users_db: Path, user: str, target: str,
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


def start_simulator(settings: Settings, users_db: Path, user: str, tick_s: float = 5.0,
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


def stop_simulator(settings: Settings, users_db: Path, user: str) -> int | None:
    from core.live import stop

    _check(users_db, user, users.CONTROL_SIMULATOR)
    _control(settings).update(lambda s: s["log"].append(
        {"at": _now(), "by": f"dashboard:{user}", "action": "stop", "detail": ""}))
    return stop(Layout(settings.data_dir))


def _now() -> str:
    from simulator.live.control import now_iso

    return now_iso()


def add_user(users_db: Path, actor: str, username: str, role: str, password: str) -> None:
    _check(users_db, actor, users.MANAGE_USERS)
    users.add_user(users_db, username, role, password, by=f"dashboard:{actor}")


def remove_user(users_db: Path, actor: str, username: str) -> None:
    _check(users_db, actor, users.MANAGE_USERS)
    users.remove_user(users_db, username, by=f"dashboard:{actor}")


def set_role(users_db: Path, actor: str, username: str, role: str) -> None:
    _check(users_db, actor, users.MANAGE_USERS)
    users.set_role(users_db, username, role, by=f"dashboard:{actor}")


def set_password(users_db: Path, actor: str, username: str, password: str) -> None:
    """Every user may change their own password; admins reset anyone's, and a reset one must
    be changed by its owner at the next sign-in."""
    _check(users_db, actor, users.READ if actor == username else users.MANAGE_USERS)
    users.set_password(users_db, username, password, by=f"dashboard:{actor}",
                       must_change=actor != username)
