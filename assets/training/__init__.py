"""Training assets: fleet features, the labelled training set, the registered RUL model and
the blocking check that decides its promotion."""

from assets.training.features import snapshots, training_set
from assets.training.model import battery_rul
from assets.training.promotion import promotion

TRAINING_ASSETS = [snapshots, training_set, battery_rul]
TRAINING_CHECKS = [promotion]
