"""HTTP hardening of the dashboard server: security headers on every response, and the only
files served without a session (the sign-in page's own stylesheet and logo).

The headers are added by a Tornado output transform on the server's application, so they reach
every response, whoever wrote its handler: our pages and sign-in, Panel's static folders, and
Bokeh's own `/static`, autoload and websocket routes (a per-handler hook would miss the ones
Bokeh and Panel define). Why each header:

- `X-Content-Type-Options: nosniff`: a browser does not run a report or an uploaded-looking
  file as a script or a page because its bytes look like one; it trusts the declared type.
- `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: no other site can frame a page
  and trick a signed-in engineer into clicking "acknowledge" through it (clickjacking); the
  first for older browsers, the second is the standard one.
- `Content-Security-Policy`: even if user text ever slips through as HTML again (issue 14's
  tooltip), its `<script>`s and `on...=` handlers do not run (inline script needs this
  response's nonce), a script or object from elsewhere cannot load, forms cannot post
  elsewhere, the page cannot talk to any host but this server, and `<base>` cannot re-root its
  links. See `SCRIPT_SRC` and `STYLE_SRC` for what Bokeh and Panel still need.
- `Referrer-Policy: same-origin`: battery and site ids in our URLs do not leak to another
  site through a link.
- no `Server` header: Tornado names itself and its version there, which only helps someone
  looking for a known hole in that version.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import tornado.web
from tornado.httputil import HTTPHeaders, HTTPServerRequest

# Measured in Chromium on every page (tests/test_http_security.py), each relaxation because
# the pages break without it:
# - 'unsafe-eval': Panel's ReactiveHTML components, here the notification area that
#   `pn.extension(notifications=True)` adds to every page, compile their scripts with
#   `new Function`; without it Bokeh stops rendering the page ("Error rendering Bokeh items:
#   EvalError").
# - blob: es-module-shims (loaded by Panel for its ES-module components) starts by running a
#   one-line helper from a blob: URL it creates itself; blocked, it is a console error on every
#   page. Only script already running here can create such a URL.
# - no 'unsafe-inline': the page Bokeh writes starts the document with inline `<script>`s that
#   carry a per-session token, so no hash can pin them; they get a fresh nonce per response
#   (`_with_nonce`) instead, which keeps injected markup's scripts and `on...=` handlers inert.
SCRIPT_SRC = "'self' 'unsafe-eval' blob:"
# Bokeh lays out every model with inline `style` attributes and `<style>` elements it writes
# into each component's shadow root at run time: without 'unsafe-inline' nothing is laid out.
STYLE_SRC = "'self' 'unsafe-inline'"
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])", re.IGNORECASE)


def content_security_policy(host: str, nonce: str) -> str:
    """The policy for a response to a request for `host` (the request's Host header: the
    websocket goes back to the host the page came from), whose own inline scripts carry
    `nonce`. A Host that is not a plain host name or address adds no websocket source at all,
    rather than anything of the client's."""
    sockets = f" ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""
    return "; ".join([
        "default-src 'self'",
        f"script-src {SCRIPT_SRC} 'nonce-{nonce}'",
        f"style-src {STYLE_SRC}",
        "img-src 'self' data: blob:",
        f"connect-src 'self'{sockets}",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def security_headers(host: str, nonce: str) -> dict[str, str]:
    """The headers every response carries (the module docstring says why)."""
    return {
        "Content-Security-Policy": content_security_policy(host, nonce),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }


def _with_nonce(headers: HTTPHeaders, chunk: bytes, nonce: str) -> bytes:
    """The page with `nonce` on each of its own `<script>` tags. Bokeh's pages are written in
    one piece and carry no user text in markup (the document arrives over the websocket), so
    every tag in the body is the server's own. The ETag is dropped: it was computed before the
    nonce, and a page revalidated from the cache would carry a stale one."""
    chunk, tags = _SCRIPT_TAG.subn(b'<script nonce="%s"' % nonce.encode(), chunk)
    if tags:  # an empty body (HEAD, 304) keeps its headers
        headers["Content-Length"] = str(len(chunk))
        headers.pop("Etag", None)
    return chunk


class SecurityHeaders(tornado.web.OutputTransform):
    """Sets `security_headers` on the first chunk of every response, nonces a whole HTML page's
    scripts, and drops `Server`. A page sent in pieces or compressed gets no nonce and so runs
    no inline script: it fails closed."""

    def __init__(self, request: HTTPServerRequest) -> None:
        self.host = request.host

    def transform_first_chunk(self, status_code: int, headers: HTTPHeaders, chunk: bytes,
                              finishing: bool) -> tuple[int, HTTPHeaders, bytes]:
        nonce = secrets.token_urlsafe(16)
        if (finishing and headers.get("Content-Type", "").startswith("text/html")
                and "Content-Encoding" not in headers):
            chunk = _with_nonce(headers, chunk, nonce)
        for name, value in security_headers(self.host, nonce).items():
            headers[name] = value
        headers.pop("Server", None)
        return status_code, headers, chunk


def harden(application: tornado.web.Application) -> None:
    """Add the headers to every response of `application` (the Tornado application of a
    Bokeh server, `server._tornado`)."""
    application.add_transform(SecurityHeaders)


# The sign-in page's own assets, exactly these files: the page is styled before a session.
PUBLIC_FILES = ("app.css", "favicon.svg")


def public_patterns(folder: Path) -> list[tuple]:
    """A route serving `PUBLIC_FILES` from `folder` at `/public/<name>` without a session.
    The route matches only those names, so nothing else in the folder (nor outside it) is
    reachable through it; every other file stays behind sign-in."""
    names = "|".join(re.escape(name) for name in PUBLIC_FILES)
    return [(rf"/public/({names})", tornado.web.StaticFileHandler, {"path": str(folder)})]
