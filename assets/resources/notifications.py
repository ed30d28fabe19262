"""Where alert notifications go; built from `core.settings` (RUL_ALERT_WEBHOOK_URL)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class Notifications(dg.ConfigurableResource):
    webhook_url: str | None = Field(default=None, description="Webhook that receives new "
                                    "critical alerts as JSON; none: notifications are off.")
