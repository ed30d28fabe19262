"""Alerts, for the engineer on duty: every alert the engine raised, filtered by site, severity,
type, status and opening date; counts by type for the filtered set; acknowledge (with a note)
or resolve the selected alert; and the audit trail of who did what. Other pages link here with
`?site=ID` or `?battery=ID`. The tables follow the alert store within a tick: new rows are
streamed in and changed rows patched, so a selection survives an update."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import panel as pn
import polars as pl
from bokeh.models.widgets.tables import DateFormatter

from alerting.conditions import ALERT_TYPES
from alerting.store import ALERTS, STATUSES
from core import users
from dashboards import actions
from dashboards.exports import download_buttons
from dashboards.format import LOCAL, badge, esc, html, link, notify, to_pandas

LIMIT = 5000  # newest alerts read per view; the page says when a view holds more
EVENT_LIMIT = 500  # newest audit rows shown
SEVERITIES = ("critical", "warning")
CARD = {"background": "#fff", "border": "1px solid #dde3ea", "border-radius": "8px",
        "padding": "4px 12px"}  # Panel layouts sit in shadow roots: the .card rule misses them
WHEN = DateFormatter(format="%Y-%m-%d %H:%M", nan_format="—")
SHOWN = {"alert_id": "ID", "_severity": "Severity", "_status": "Status",
         "opened_at": "Opened (ICT)", "last_seen_at": "Last seen (ICT)", "_site": "Site",
         "_entity": "Battery / string", "type": "Type", "_value": "Value / limit",
         "message": "Message", "acknowledged_by": "Ack. by", "acknowledged_at": "Ack. at (ICT)",
         "note": "Note"}
# Long text wraps in its cell (Tabulator's "textarea" formatter escapes it). No cell tooltips:
# Tabulator inserts a tooltip's text as HTML, so a note such as `<img onerror=...>` would run.
WRAPPED = {c: {"type": "textarea"} for c in ("message", "note")}
EVENTS_SHOWN = {"event_id": "#", "ts": "Time (ICT)", "alert_id": "Alert", "actor": "Who",
                "action": "Action", "_change": "From → to", "note": "Note"}


def _value(row: dict) -> str:
    kind = ALERT_TYPES.get(row["type"])
    digits, unit = (kind.digits, kind.unit) if kind else (2, "")
    if row["value"] is None:
        return "—"
    limit = "—" if row["threshold"] is None else f"{row['threshold']:.{digits}f}"
    return esc(f"{row['value']:.{digits}f} / {limit} {unit}".rstrip())


def table_frame(alerts: pl.DataFrame) -> pl.DataFrame:
    """The alert table's columns (HTML helpers start with `_`; exports drop them). The helpers
    are shown as HTML, so every value in them is escaped here; user text (notes, names) stays
    in the plain columns, which the table shows as text."""
    rows = alerts.to_dicts()

    def entity(r: dict) -> str:
        if r["battery_id"]:
            return link(f"/battery?id={r['battery_id']}", r["battery_id"])
        return esc(r["string_id"] or "site")

    return alerts.with_columns(
        _severity=pl.Series([badge(r["severity"]) for r in rows], dtype=pl.String),
        _site=pl.Series([link(f"/site?id={r['site_id']}", r["site_id"]) for r in rows],
                        dtype=pl.String),
        _entity=pl.Series([entity(r) for r in rows], dtype=pl.String),
        _value=pl.Series([_value(r) for r in rows], dtype=pl.String),
        _status=pl.Series([badge(r["status"]) for r in rows], dtype=pl.String))


def events_frame(events: pl.DataFrame) -> pl.DataFrame:
    return events.with_columns(_change=pl.concat_str(
        pl.col("from_status").fill_null("—"), pl.lit(" → "), pl.col("to_status")))


def counts_html(alerts: pl.DataFrame, limited: bool) -> str:
    """Alerts per type and severity in the filtered set, with a bar scaled to the largest."""
    if alerts.is_empty():
        return '<p class="empty" id="alert-counts">No alerts match these filters.</p>'
    counts = (alerts.group_by("type").agg(critical=(pl.col("severity") == "critical").sum(),
                                          warning=(pl.col("severity") == "warning").sum(),
                                          total=pl.len())
              .sort(["total", "type"], descending=[True, False]))
    top = counts["total"].max()
    rows = "".join(
        f'<tr><td>{esc(r["type"])}</td><td class="num">{r["critical"]:,}</td>'
        f'<td class="num">{r["warning"]:,}</td><td class="num"><b>{r["total"]:,}</b></td>'
        f'<td class="bar"><span class="crit" style="width:{100 * r["critical"] / top:.1f}%">'
        f'</span><span class="warn" style="width:{100 * r["warning"] / top:.1f}%"></span></td>'
        f"</tr>" for r in counts.iter_rows(named=True))
    crit = int((alerts["severity"] == "critical").sum())
    note = f" (the newest {LIMIT:,} only: narrow the filters)" if limited else ""
    return (f'<p id="alert-total">{alerts.height:,} alerts{note} · {badge("critical")} {crit:,}'
            f' · {badge("warning")} {alerts.height - crit:,}</p>'
            '<table class="alert-counts" id="alert-counts"><thead><tr><th>Type</th>'
            '<th>Critical</th><th>Warning</th><th>Total</th><th></th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def update_table(table: pn.widgets.Tabulator, new: pd.DataFrame, key: str) -> None:
    """Patch the rows that changed and stream the new ones; replace the whole value only when
    rows left the view, keeping the selected row selected if it is still there."""
    old = table.value
    old_keys = old[key].tolist()
    if old.empty or list(old.columns) != list(new.columns) or not set(old_keys) <= set(new[key]):
        chosen = [old[key].iloc[i] for i in table.selection if i < len(old)]
        table.value = new
        table.selection = [i for i, k in enumerate(new[key]) if k in chosen]
        return
    aligned = new.set_index(key).loc[old_keys].reset_index()[list(old.columns)]
    aligned.index = old.index
    differs = (aligned != old) & ~(aligned.isna() & old.isna())
    changed = aligned[differs.any(axis=1)]
    if not changed.empty:
        table.patch(changed, as_index=True)
    fresh = new[~new[key].isin(old_keys)]
    if not fresh.empty:
        table.stream(fresh, follow=False)


def _local_bounds(dates) -> tuple[dt.datetime | None, dt.datetime | None]:
    """A range of local dates as UTC instants [first midnight, midnight after the last)."""
    if not dates or dates[0] is None:
        return None, None
    start, end = dates
    since = dt.datetime.combine(start, dt.time(), LOCAL).astimezone(dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), LOCAL).astimezone(dt.UTC)
    return since, until


def build(session, app) -> tuple[str, pn.viewable.Viewable]:
    data = session.data
    args = {k: v[0].decode() for k, v in (pn.state.session_args or {}).items() if v}
    sites = data("slow", "table", "sites")
    site_ids = sites["site_id"].to_list() if not sites.is_empty() else []
    site = pn.widgets.MultiChoice(name="Site", options=site_ids, placeholder="all sites",
                                  value=[args["site"]] if args.get("site") in site_ids else [],
                                  width=260, css_classes=["filter-site"])
    kind = pn.widgets.MultiChoice(name="Type", options=list(ALERT_TYPES), placeholder="all types",
                                  width=260, css_classes=["filter-type"])
    severity = pn.widgets.CheckButtonGroup(name="Severity", options=list(SEVERITIES),
                                           value=list(SEVERITIES), button_type="primary",
                                           button_style="outline", css_classes=["filter-severity"])
    status = pn.widgets.CheckButtonGroup(name="Status", options=list(STATUSES),
                                         value=["open", "acknowledged"], button_type="primary",
                                         button_style="outline", css_classes=["filter-status"])
    dates = pn.widgets.DateRangePicker(name="Opened between (local dates)", width=230,
                                       css_classes=["filter-dates"])
    battery = pn.widgets.TextInput(name="Battery id", value=args.get("battery", ""), width=230,
                                   placeholder="all batteries", css_classes=["filter-battery"])
    unknown = args.get("site") if args.get("site") and args["site"] not in site_ids else None

    def read() -> pl.DataFrame:
        if not severity.value or not status.value:
            return pl.DataFrame(schema=ALERTS)
        since, until = _local_bounds(dates.value)
        filters = {"severity": tuple(severity.value), "status": tuple(status.value),
                   "site_id": tuple(site.value), "type": tuple(kind.value),
                   "battery_id": (battery.value.strip(),) if battery.value.strip() else ()}
        return data("alerts", "alerts", since=since, until=until, limit=LIMIT,
                    **{k: v for k, v in filters.items() if v})

    state = {"frame": table_frame(read()), "settle": True}  # see `reread`
    state["version"] = data("alerts", "alerts_version")
    counts = html(counts_html(state["frame"], state["frame"].height >= LIMIT),
                  sizing_mode="stretch_width")
    table = pn.widgets.Tabulator(
        to_pandas(state["frame"].select(list(SHOWN))), pagination="local", page_size=50,
        disabled=True, show_index=False, selectable=1, sizing_mode="stretch_width",
        css_classes=["alerts-table"], titles=SHOWN, sorters=[{"field": "alert_id", "dir": "desc"}],
        formatters={"opened_at": WHEN, "last_seen_at": WHEN, "acknowledged_at": WHEN,
                    **WRAPPED, **{c: {"type": "html"} for c in SHOWN if c.startswith("_")}},
        widths={"_severity": 105, "_status": 125, "message": 280, "note": 220},
        frozen_columns=["alert_id"])

    def selected() -> dict | None:
        if not table.selection or table.selection[0] >= len(table.value):
            return None
        alert_id = int(table.value["alert_id"].iloc[table.selection[0]])
        match = state["frame"].filter(pl.col("alert_id") == alert_id)
        return match.row(0, named=True) if match.height else None

    def events() -> pl.DataFrame:
        row = selected()
        ids = (row["alert_id"],) if row else None
        return events_frame(data("alerts", "alert_events", ids, EVENT_LIMIT))

    state["events"] = events()
    audit = pn.widgets.Tabulator(
        to_pandas(state["events"].select(list(EVENTS_SHOWN))), pagination="local", page_size=50,
        disabled=True, show_index=False, sizing_mode="stretch_width", css_classes=["audit-table"],
        titles=EVENTS_SHOWN, formatters={"ts": WHEN}, sorters=[{"field": "event_id", "dir": "desc"}],
        layout="fit_data_stretch")
    audit_title = html("", sizing_mode="stretch_width")

    can_ack, can_resolve = session.can(users.ACK_ALERT), session.can(users.RESOLVE_ALERT)
    refused = "" if can_ack or can_resolve else "Viewers cannot act on alerts"
    note = pn.widgets.TextInput(name="Note", placeholder="what you saw or did (optional)",
                                max_length=500, disabled=not can_ack and not can_resolve,
                                width=420, css_classes=["ack-note"])
    ack = pn.widgets.Button(name="Acknowledge", button_type="warning", disabled=True,
                            description=None if can_ack else "Viewers cannot act on alerts",
                            css_classes=["ack-button"])
    resolve = pn.widgets.Button(name="Resolve", button_type="success", disabled=True,
                                description=None if can_resolve else "Viewers cannot act on alerts",
                                css_classes=["resolve-button"])
    chosen = html("", sizing_mode="stretch_width", css_classes=["selected-alert"])
    message = html("", sizing_mode="stretch_width", css_classes=["action-message"])

    def show_selected() -> None:
        row = selected()
        ack.disabled = not (can_ack and row and row["status"] == "open")
        resolve.disabled = not (can_resolve and row and row["status"] != "resolved")
        text = ('<p class="note">Select an alert in the table below to act on it.</p>'
                if row is None else
                f'<p><b>Alert {row["alert_id"]}</b> {badge(row["severity"])} '
                f'{esc(row["type"])} · {esc(row["battery_id"] or row["string_id"] or row["site_id"])}'
                f' · {badge(row["status"])}</p><p class="note">{esc(row["message"])}</p>')
        if refused:
            text += f'<p class="note" id="viewer-note">{refused}: ask an engineer.</p>'
        if chosen.object != text:
            chosen.object = text
        which = f"alert {row['alert_id']} (unselect the row to see all)" if row else \
            f"all alerts (newest {EVENT_LIMIT})"
        if audit_title.object != (text := f"<h2>Audit trail: {esc(which)}</h2>"):
            audit_title.object = text

    def refresh_events() -> None:
        state["events"] = events()
        update_table(audit, to_pandas(state["events"].select(list(EVENTS_SHOWN))), "event_id")

    def refresh(*_) -> None:
        state["version"] = data("alerts", "alerts_version")
        state["frame"] = table_frame(read())
        text = counts_html(state["frame"], state["frame"].height >= LIMIT)
        if counts.object != text:
            counts.object = text
        update_table(table, to_pandas(state["frame"].select(list(SHOWN))), "alert_id")
        refresh_events()
        show_selected()

    def reread(*_) -> None:
        """Refresh now and once more at the next tick: this read may be the shared cache's
        stale copy (served while it refreshes in the background), which would otherwise stay on
        screen until the store changes again, hiding an acknowledgement made elsewhere."""
        refresh()
        state["settle"] = True

    def on_select(*_) -> None:
        show_selected()
        refresh_events()

    def act(fn, done: str) -> None:
        row = selected()
        if row is None:
            return
        try:
            fn(app.settings, app.users_db, session.user, row["alert_id"], note.value_input)
        except (users.UserStoreError, actions.ActionError) as exc:
            message.object = f'<p class="action-error">{esc(exc)}</p>'
            notify("error", str(exc))
            return
        data.cache.clear()
        note.value = ""
        text = f"Alert {row['alert_id']} {done} by {session.user}."
        message.object = f'<p class="action-ok">{esc(text)}</p>'
        notify("success", text)
        refresh()

    ack.on_click(lambda _: act(actions.acknowledge_alert, "acknowledged"))
    resolve.on_click(lambda _: act(actions.resolve_alert, "resolved"))
    for widget in (site, kind, severity, status, dates, battery):
        widget.param.watch(reread, "value")
    table.param.watch(on_select, "selection")
    show_selected()

    def tick() -> None:
        if data("alerts", "alerts_version") != state["version"]:
            reread()
        elif state.pop("settle", False):
            refresh()

    session.on_tick(tick)
    warning = html(f'<p class="empty">No site {esc(unknown)}: showing every site.</p>') \
        if unknown else html("")
    actions_card = pn.Column(html("<h2>Selected alert</h2>"), chosen, note,
                             pn.Row(ack, resolve), message, css_classes=["alert-actions"],
                             styles=CARD, sizing_mode="stretch_width")
    content = pn.Column(
        warning,
        pn.Row(site, kind, battery, dates, sizing_mode="stretch_width"),
        pn.Row(html('<span class="filter-label">Severity</span>'), severity,
               html('<span class="filter-label">Status</span>'), status,
               sizing_mode="stretch_width"),
        pn.Row(pn.Column(html("<h2>By type</h2>"), counts, sizing_mode="stretch_width"),
               actions_card, sizing_mode="stretch_width"),
        pn.Row(html("<h2>Alerts</h2>"), download_buttons(session, "alerts", lambda: state["frame"])),
        html('<p class="note">Opened and last seen are reading times (simulated while the '
             "simulator runs); acknowledgements and the audit trail are wall-clock times. "
             "Click a row to select it.</p>"),
        table,
        pn.Row(audit_title, download_buttons(session, "alert-audit", lambda: state["events"])),
        audit, sizing_mode="stretch_width")
    return "Alerts", content
