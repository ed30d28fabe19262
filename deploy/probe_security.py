"""Probe a running dashboard server as the security tester of issue 14 did, from outside, over
HTTP only: response headers, the public and private static routes, open redirects through the
real sign-in form, copied session cookies after sign-out, and whether failed sign-ins from one
loopback address lock the real user out at another. Prints one line per probe (PASS or FAIL)
and exits non-zero on any FAIL.

    uv run python deploy/probe_security.py --base http://127.0.0.1:5006 --user admin

The password is read from RUL_PROBE_PASSWORD (never argv). The lockout probe signs in from
127.0.0.2 and 127.0.0.1 (the whole 127/8 range is this machine), so the server must listen on
127.0.0.1 and the user's name is locked for that second address for a few minutes afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import sys
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}
REDIRECTS = ("/\\attacker.example/", "//attacker.example/", "https://attacker.example/",
             "/\\/attacker.example", "/%5cattacker.example", "/fleet/../\\attacker.example")


class Client:
    """One browser-like client: its own cookies, its own source address, no redirects."""

    def __init__(self, base: str, source: str = "127.0.0.1") -> None:
        parts = urlsplit(base)
        self.host, self.port, self.source = parts.hostname or "127.0.0.1", parts.port, source
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | None = None,
                ) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30,
                                          source_address=(self.source, 0))
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = urlencode(body) if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return response

    def sign_in(self, user: str, password: str, next_path: str = "/fleet",
                ) -> http.client.HTTPResponse:
        self.request("GET", "/login")
        xsrf = self.cookies.get("_xsrf", "")
        return self.request("POST", "/login?" + urlencode({"next": next_path}),
                            {"username": user, "password": password, "_xsrf": xsrf})


def probes(base: str, user: str, password: str) -> list[tuple[str, bool, str]]:
    """(what, passed, detail) for every probe."""
    results = []
    anonymous = Client(base)
    login = anonymous.request("GET", "/login")
    for name, value in HEADERS.items():
        got = login.headers.get(name, "")
        results.append((f"header {name}", got == value, got or "missing"))
    csp = login.headers.get("content-security-policy", "")
    results.append(("CSP frame-ancestors 'none'", "frame-ancestors 'none'" in csp, csp[:60]))
    server = login.headers.get("server", "")
    results.append(("Server header names no software", "tornado" not in server.lower(),
                    server or "absent"))
    css = anonymous.request("GET", "/public/app.css")
    results.append(("sign-in stylesheet public", css.status == 200, str(css.status)))
    private = anonymous.request("GET", "/assets/app.css")
    results.append(("other assets need a session", private.status in (302, 401, 403),
                    str(private.status)))
    for target in REDIRECTS:
        client = Client(base)
        answer = client.sign_in(user, password, target)
        where = answer.headers.get("location", "")
        off_site = bool(re.match(r"^(https?:)?[/\\]{2}|^/[\\]", where)) or "attacker" in where
        results.append((f"sign-in next={target}", answer.status == 302 and not off_site,
                        f"{answer.status} -> {where}"))
    client = Client(base)
    client.sign_in(user, password)
    copied = dict(client.cookies)
    client.request("GET", "/logout")
    replay = Client(base)
    replay.cookies = copied
    page = replay.request("GET", "/fleet")
    results.append(("copied cookie after sign-out refused",
                    page.status == 302 and "/login" in page.headers.get("location", ""),
                    f"{page.status} -> {page.headers.get('location', '')}"))
    guesser = Client(base, source="127.0.0.2")
    for _ in range(6):
        guesser.sign_in(user, "not-the-password-at-all")
    real = Client(base).sign_in(user, password)
    results.append(("guessing from 127.0.0.2 does not lock out 127.0.0.1",
                    real.status == 302, str(real.status)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:5006")
    parser.add_argument("--user", default="admin")
    args = parser.parse_args()
    password = os.environ.get("RUL_PROBE_PASSWORD")
    if not password:
        print("RUL_PROBE_PASSWORD: set it to the user's password", file=sys.stderr)
        return 2
    failed = 0
    for what, passed, detail in probes(args.base, args.user, password):
        failed += not passed
        print(f"{'PASS' if passed else 'FAIL'}  {what}  ({detail})")
    print(f"{failed} of the probes failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
