"""Users: admins add users, change roles, reset passwords and remove users, and read the user
store's audit (every change and sign-in, with who, when and from where). Every signed-in user
can change their own password here, giving the current one; after signing in with a one-time
password, every page is only that form (`must_change`) until it is done. Each change goes
through `dashboards.actions`, which checks the session and the role on the server; the admin
parts are not even built for other roles."""

from __future__ import annotations

import panel as pn
import polars as pl

from core import passwords, users
from dashboards import actions
from dashboards.exports import download_buttons
from dashboards.format import esc, html, notify, to_pandas
from dashboards.pages.alerts import CARD, WHEN

AUDIT_LIMIT = 1000  # newest user-store audit rows shown
USER_TITLES = {"username": "User", "role": "Role", "created_at": "Created (ICT)",
               "updated_at": "Updated (ICT)", "must_change": "Must change password"}
AUDIT_TITLES = {"ts": "Time (ICT)", "actor": "Who", "action": "Action", "target": "User",
                "detail": "Detail", "address": "From"}
RULES = (f"{passwords.MIN_PASSWORD} characters or more, hard to guess, without your user name "
         "or the product's name (a few unrelated words work well).")


def _utc(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """The store's ISO UTC text as UTC datetimes (shown local, exported UTC)."""
    return frame.with_columns(pl.col(c).str.to_datetime(time_zone="UTC") for c in columns)


def users_frame(db) -> pl.DataFrame:
    schema = {"username": pl.String, "role": pl.String, "created_at": pl.String,
              "updated_at": pl.String, "must_change": pl.Boolean}
    return _utc(pl.DataFrame(users.list_users(db), schema=schema), "created_at", "updated_at")


def audit_frame(db) -> pl.DataFrame:
    schema = {"ts": pl.String, "actor": pl.String, "action": pl.String, "target": pl.String,
              "detail": pl.String, "address": pl.String}
    return _utc(pl.DataFrame(users.audit_log(db, AUDIT_LIMIT), schema=schema), "ts")


def _password(label: str, css: str) -> pn.widgets.PasswordInput:
    return pn.widgets.PasswordInput(name=label, width=220, css_classes=[css])


def _form(title: str, *items) -> pn.Column:
    return pn.Column(html(f"<h3>{esc(title)}</h3>"), *items, css_classes=["user-form"], styles=CARD,
                     width=280)


class Outcome:
    """One status pane per form: runs an action, shows its error or its success."""

    def __init__(self, css: str, after) -> None:
        self.pane = html("", css_classes=[css], sizing_mode="stretch_width")
        self.after = after

    def run(self, fn, done: str, *clear: pn.widgets.Widget) -> None:
        try:
            fn()
        except (users.UserStoreError, actions.ActionError) as exc:
            self.pane.object = f'<p class="action-error">{esc(exc)}</p>'
            notify("error", str(exc))
            return
        for widget in clear:
            widget.value = ""
        self.pane.object = f'<p class="action-ok">{esc(done)}</p>'
        notify("success", done)
        self.after()

    def fail(self, text: str) -> None:
        self.pane.object = f'<p class="action-error">{esc(text)}</p>'


def _password_pair(css: str, label: str, outcome: Outcome, change, done) -> tuple:
    """Two password fields and a button that calls `change(password)` once both agree;
    `done()` words the success (it may depend on a picker's value at click time)."""
    new, again = _password("New password", css), _password("Repeat it", f"{css}-2")
    button = pn.widgets.Button(name=label, button_type="primary", css_classes=[f"{css}-button"])

    def click(_) -> None:
        if new.value_input != again.value_input:
            return outcome.fail("The two passwords differ.")
        text = done()
        outcome.run(lambda: change(new.value_input), text, new, again)

    button.on_click(click)
    return new, again, button


def _own_password(session, app, after) -> pn.Column:
    """The own-password form: the current password (checked on the server), the new one twice;
    the user's other sessions end, this one stays."""
    current = _password("Current password", "current-password")

    def changed() -> None:
        current.value = ""
        after()

    outcome = Outcome("own-password-message", changed)
    new, again, button = _password_pair(
        "own-password", "Change my password", outcome,
        lambda password: actions.change_own_password(app.users_db, session.user,
                                                     current.value_input, password),
        lambda: "Your password is changed; your other sessions are signed out.")
    return _form(f"Change my password ({session.user})", html(f'<p class="note">{RULES}</p>'),
                 current, new, again, button, outcome.pane)


def _admin(session, app) -> pn.Column:
    db, actor = app.users_db, session.user
    state = {"users": users_frame(db), "audit": audit_frame(db), "head": users.audit_log(db, 1)}

    def names() -> list[str]:
        return state["users"]["username"].to_list()

    user_table = pn.widgets.Tabulator(
        to_pandas(state["users"]), disabled=True, show_index=False, css_classes=["users-table"],
        sizing_mode="stretch_width", titles=USER_TITLES,
        formatters={"created_at": WHEN, "updated_at": WHEN,
                    "must_change": {"type": "tickCross", "crossElement": False}})
    audit_table = pn.widgets.Tabulator(
        to_pandas(state["audit"]), pagination="local", page_size=50, disabled=True,
        show_index=False, css_classes=["user-audit-table"], sizing_mode="stretch_width",
        titles=AUDIT_TITLES, formatters={"ts": WHEN}, layout="fit_data_stretch")
    pickers = [pn.widgets.Select(name="User", options=names(), width=220, css_classes=[c])
               for c in ("role-user", "password-user", "remove-user")]

    def refresh() -> None:
        state["users"], state["audit"] = users_frame(db), audit_frame(db)
        state["head"] = users.audit_log(db, 1)
        user_table.value = to_pandas(state["users"])
        audit_table.value = to_pandas(state["audit"])
        for picker in pickers:
            picker.options = names()

    name = pn.widgets.TextInput(name="Username", width=220, css_classes=["new-username"])
    role = pn.widgets.Select(name="Role", options=list(users.ROLES), width=220,
                             css_classes=["new-role"])
    first, second = _password("Password", "new-password"), _password("Repeat it", "new-password-2")
    add = pn.widgets.Button(name="Add user", button_type="primary", css_classes=["add-user-button"])
    added = Outcome("add-user-message", refresh)

    def on_add(_) -> None:
        if first.value_input != second.value_input:
            return added.fail("The two passwords differ.")
        who = name.value_input.strip()
        added.run(lambda: actions.add_user(db, actor, who, role.value, first.value_input),
                  f"User {who} added as {role.value}.", name, first, second)

    add.on_click(on_add)

    new_role = pn.widgets.Select(name="New role", options=list(users.ROLES), width=220,
                                 css_classes=["role-new"])
    set_role = pn.widgets.Button(name="Change role", button_type="primary",
                                 css_classes=["set-role-button"])
    roled = Outcome("role-message", refresh)

    def current_role(*_) -> None:
        match = state["users"].filter(pl.col("username") == pickers[0].value)
        if match.height:
            new_role.value = match["role"][0]

    pickers[0].param.watch(current_role, "value")
    current_role()
    set_role.on_click(lambda _: roled.run(
        lambda: actions.set_role(db, actor, pickers[0].value, new_role.value),
        f"{pickers[0].value} is now {new_role.value}."))

    reset_done = Outcome("reset-message", refresh)
    reset_1, reset_2, reset = _password_pair(
        "reset-password", "Reset password", reset_done,
        lambda password: actions.set_password(db, actor, pickers[1].value, password),
        lambda: f"Password of {pickers[1].value} reset: they choose their own at next sign-in.")

    sure = pn.widgets.Checkbox(name="Yes, remove this user", css_classes=["remove-confirm"])
    remove = pn.widgets.Button(name="Remove user", button_type="danger", disabled=True,
                               css_classes=["remove-user-button"])
    sure.param.watch(lambda event: setattr(remove, "disabled", not event.new), "value")
    removed = Outcome("remove-message", refresh)

    def on_remove(_) -> None:
        if not sure.value:
            return removed.fail("Tick the confirmation first.")
        who = pickers[2].value
        if who == actor:
            return removed.fail("You cannot remove yourself: ask another admin.")
        removed.run(lambda: actions.remove_user(db, actor, who), f"User {who} removed.")
        sure.value = False

    remove.on_click(on_remove)

    def tick() -> None:  # another admin's change or a sign-in shows within a tick
        if users.audit_log(db, 1) != state["head"]:
            refresh()

    session.on_tick(tick)
    return pn.Column(
        pn.Row(html("<h2>All users</h2>"),
               download_buttons(session, "users", lambda: state["users"])),
        user_table,
        pn.Row(_form("Add a user", name, role, first, second, add, added.pane),
               _form("Change a role", pickers[0], new_role, set_role, roled.pane),
               _form("Reset a password", pickers[1], reset_1, reset_2, reset, reset_done.pane),
               _form("Remove a user", pickers[2], sure, remove, removed.pane)),
        pn.Row(html("<h2>User audit: every change and sign-in</h2>"),
               download_buttons(session, "user-audit", lambda: state["audit"])),
        audit_table, sizing_mode="stretch_width")


def build(session, app) -> tuple[str, pn.viewable.Viewable]:
    if session.can(users.MANAGE_USERS):
        main = _admin(session, app)
    else:
        main = html('<p class="empty" id="admins-only">Only administrators can manage users.</p>')
    own = _own_password(session, app, lambda: None)
    return "Users", pn.Column(main, html("<h2>Your account</h2>"), own,
                              sizing_mode="stretch_width")


def must_change(session, app) -> tuple[str, pn.viewable.Viewable]:
    """What every page is while the password must be changed: only the own-password form, and
    once it is changed, a link that reloads the page that was asked for (query included)."""
    notice = html('<p class="must-change" id="must-change">You signed in with a one-time '
                  "password: set your own before anything else.</p>")

    def done() -> None:
        notice.object = ('<p class="must-change-done" id="must-change-done">Your password is '
                         'set: <a href="">continue</a>.</p>')

    return "Set your own password", pn.Column(notice, _own_password(session, app, done),
                                              sizing_mode="stretch_width")
