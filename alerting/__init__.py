"""The alert engine: DOMAIN §5's rules over live readings and predictions, held for their
durations and released with hysteresis, kept in a SQLite store that the engine and the
operators write at the same time.

    conditions  the condition frame every rule returns, and the catalogue of alert types
    limits      the thresholds in effect per site and Thai season, as columns on a frame
    rules       one vectorised function per rule of DOMAIN §5
    baselines   each battery's own resistance and float-current baseline from history
    tracking    durations and hysteresis across batches (pending state lives in the store)
    store       the SQLite store: schema, operator actions, queries, Parquet snapshots
    engine      evaluate_telemetry / evaluate_predictions: rules -> tracking -> store
    notify      webhook delivery of new critical alerts through an outbox

Imports only `simulator` and `core` of ours; nothing is imported here, so `import alerting`
stays cheap.
"""
