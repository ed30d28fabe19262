"""The user store's tables (`core.users`), and how an older store is brought up to them.

Version 2 added server-side sessions, sign-in throttling per client address and the address in
the audit; a version-1 store keeps its users and audit, and its per-name failure counts (short-
lived by nature) are dropped rather than converted.
"""

SCHEMA_VERSION = 2  # 2: sessions, throttling per address, the address in the audit
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        username TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'engineer', 'admin')),
        password_hash TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        must_change INTEGER NOT NULL DEFAULT 0)""",
    # 'Ann' and 'ann' would be two accounts to the store but one person to a reader of the audit
    "CREATE UNIQUE INDEX IF NOT EXISTS users_nocase ON users (username COLLATE NOCASE)",
    # failed sign-ins per attempted name (existing or not) and address inside the window;
    # a pair's lock or success takes its rows out of the pair's count (`pair`) but never out of
    # the address's, or 5 tries per name would spray any number of names
    """CREATE TABLE IF NOT EXISTS login_failures (username TEXT NOT NULL,
        address TEXT NOT NULL, ts INTEGER NOT NULL, pair INTEGER NOT NULL DEFAULT 1)""",
    "CREATE INDEX IF NOT EXISTS login_failures_by_pair ON login_failures (username, address)",
    "CREATE INDEX IF NOT EXISTS login_failures_by_address ON login_failures (address)",
    "CREATE INDEX IF NOT EXISTS login_failures_by_ts ON login_failures (ts)",
    """CREATE TABLE IF NOT EXISTS lockouts (username TEXT NOT NULL, address TEXT NOT NULL,
        locked_until INTEGER NOT NULL, PRIMARY KEY (username, address))""",
    """CREATE TABLE IF NOT EXISTS address_lockouts (
        address TEXT PRIMARY KEY, locked_until INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS audit (ts INTEGER NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, target TEXT, detail TEXT, address TEXT)""",
    # key: SHA-256 of the random token the cookie carries, so a copy of this file opens nothing
    """CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, username TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, address TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (username)",
)
# run on a store of the given version before SCHEMA; version 1 throttled per name only, and
# its transient failure counts are dropped rather than converted
MIGRATIONS = {1: ("DROP TABLE login_failures", "DROP TABLE lockouts",
                  "ALTER TABLE audit ADD COLUMN address TEXT")}
