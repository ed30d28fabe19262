"""Password policy and hashing for the dashboard user store (`core.users`).

A password must be 8 to 1024 characters, must not contain the user's name, and must be hard
to guess by zxcvbn's estimate (score 3 or more: ~10^8 guesses), with the user's name and the
product's own words as context, so `password`, `12345678` and `ThaiBattery1` are refused.
zxcvbn's word lists ship with the package: nothing is fetched. Hashes are argon2id with the
library's (RFC 9106) defaults.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD, MAX_PASSWORD = 8, 1024
MIN_SCORE = 3  # zxcvbn: 3 is "safely unguessable" against online guessing with throttling
SCORED_CHARS = 72  # zxcvbn refuses longer input; a long password is judged by its start
MIN_NAME_IN_PASSWORD = 3  # shorter names ("al") occur in too many good passwords by chance
PRODUCT_WORDS = ("thai", "battery", "fleet", "rul", "admin", "dashboard", "bess", "ups")
_HASHER = PasswordHasher()


class PasswordRejected(ValueError):
    """The password breaks the policy; the message is one line saying why."""


def check(password: str, username: str) -> None:
    """Raise PasswordRejected unless `password` is acceptable for `username`."""
    from zxcvbn import zxcvbn

    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise PasswordRejected(f"password: use {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    name = username.lower()
    if len(name) >= MIN_NAME_IN_PASSWORD and name in password.lower():
        raise PasswordRejected("password: it contains the user name; choose another")
    verdict = zxcvbn(password[:SCORED_CHARS], user_inputs=[name, *PRODUCT_WORDS])
    if verdict["score"] < MIN_SCORE:
        feedback = verdict["feedback"]
        why = feedback["warning"] or next(iter(feedback["suggestions"]), "")
        raise PasswordRejected(f"password: too easy to guess. {why or 'Add more words.'}".strip())


def generate() -> str:
    """A one-time password (16 random URL-safe characters, ~96 bits) that passes `check`."""
    return secrets.token_urlsafe(12)


def hash_password(password: str, username: str) -> str:
    """The argon2id hash of a password the policy accepts (~50 ms: call before write locks)."""
    check(password, username)
    return _HASHER.hash(password)


def verify(digest: str, password: str) -> bool:
    """Whether `password` matches `digest`; a malformed digest matches nothing."""
    try:
        return _HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(digest: str) -> bool:
    return _HASHER.check_needs_rehash(digest)


def rehash(password: str) -> str:
    """A fresh hash of a password already verified (no policy check: it is the user's own)."""
    return _HASHER.hash(password)


@functools.cache
def dummy_hash() -> str:
    """A hash no password matches, so an unknown name costs a verify like a known one."""
    return _HASHER.hash(secrets.token_urlsafe(32))
