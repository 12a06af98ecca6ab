"""One HTTP request per delivery: the stored body, signed for webhooks, with short timeouts.

A failure of any kind (no response, a timeout, a non-2xx status, a secret not set in this
process's environment) is an `Attempt` with its error: the caller records it and retries
later; nothing here raises for a receiver's sake.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx

from alphatrace import __version__
from alphatrace.errors import InputError
from alphatrace.notify import signing
from alphatrace.notify.config import env_value
from alphatrace.notify.outbox import Attempt, Delivery, now

# Connect fast or not at all; a receiver has a few seconds to answer. A hanging receiver
# costs the dispatcher at most this per attempt, never the writer.
TIMEOUT = httpx.Timeout(5.0, connect=2.0)


def client(timeout: httpx.Timeout = TIMEOUT) -> httpx.Client:
    return httpx.Client(timeout=timeout, follow_redirects=False,
                        headers={"User-Agent": f"alphatrace/{__version__}"})


def request(d: Delivery, t: int, environ: Mapping[str, str] | None = None
            ) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) of delivery `d` sent at unix time `t`; InputError when an
    environment variable it names is not set."""
    env = dict(environ) if environ is not None else None
    url = d.url if d.url is not None else env_value(str(d.url_env), "its URL", d.target, env)
    body = d.payload.encode("utf-8")
    headers = {"Content-Type": "application/json",
               signing.DELIVERY_HEADER: str(d.id),
               signing.IDEMPOTENCY_HEADER: d.record_hash}
    if d.kind == "webhook":
        secret = env_value(str(d.secret_env), "its signing secret", d.target, env)
        headers[signing.SIGNATURE_HEADER] = signing.sign(secret, body, t)
    return url, headers, body


def send(http: httpx.Client, d: Delivery, environ: Mapping[str, str] | None = None) -> Attempt:
    at = now()
    t0 = time.perf_counter()
    try:
        url, headers, body = request(d, int(time.time()), environ)
        resp = http.post(url, content=body, headers=headers)
    except InputError as e:
        return Attempt(None, str(e), 0.0, at)
    except httpx.HTTPError as e:
        return Attempt(None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__,
                       (time.perf_counter() - t0) * 1000.0, at)
    ms = (time.perf_counter() - t0) * 1000.0
    if 200 <= resp.status_code < 300:
        return Attempt(resp.status_code, None, ms, at)
    text = resp.text.strip().replace("\n", " ")[:200]
    return Attempt(resp.status_code, f"HTTP {resp.status_code}" + (f": {text}" if text else ""),
                   ms, at)
