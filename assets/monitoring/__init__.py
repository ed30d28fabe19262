"""Monitoring: the alert engine over live readings and predictions, and the daily Evidently
drift report with its check."""

from assets.monitoring.alerts import alerts
from assets.monitoring.drift import daily_drift, drift_report, drifted_share

MONITORING_ASSETS = [alerts, drift_report]
MONITORING_CHECKS = [drifted_share]
MONITORING_SCHEDULES = [daily_drift]
