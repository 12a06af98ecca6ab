"""A small receiver of alphatrace decision webhooks that verifies them (standard library only).

    ALPHATRACE_HOOK_SECRET=... python examples/webhook_receiver.py [--port 8787]

and in the policy:

    notify:
      targets:
        - {name: local, url: "http://127.0.0.1:8787/hook", secret_env: ALPHATRACE_HOOK_SECRET}

It does what any receiver should (docs/governance.md §Notifications):
1. recompute HMAC-SHA256(secret, "<t>.<raw body>") and compare it in constant time with the
   v1 value of X-Alphatrace-Signature (answer 401 if it differs: the body was changed, or the
   secret is wrong);
2. refuse a timestamp more than 5 minutes from now (a replayed request);
3. drop an Idempotency-Key already processed (delivery is at least once), answering 200 so the
   sender stops retrying;
4. answer 2xx quickly and do the slow work elsewhere (the sender times out after 5 s).
It prints one line per decision: action, scope, subject, rule, and how long after the record
was written it arrived.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 300


def signature_ok(secret: str, header: str, body: bytes, now: float) -> bool:
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    t = (fields.get("t") or [""])[0]
    if not t.isdigit() or abs(now - int(t)) > TOLERANCE_S:
        return False
    want = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(want, v) for v in fields.get("v1", []))


def make_handler(secret: str, seen: set[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not signature_ok(secret, self.headers.get("X-Alphatrace-Signature", ""), body,
                                time.time()):
                self._answer(401, "bad signature")
                return
            key = self.headers.get("Idempotency-Key", "")
            if key in seen:
                self._answer(200, "duplicate")
                return
            seen.add(key)
            doc = json.loads(body)
            rec = doc["record"]
            delay = ""
            if rec.get("created_at"):
                made = dt.datetime.fromisoformat(rec["created_at"].replace("Z", "+00:00"))
                delay = f" ({(dt.datetime.now(dt.UTC) - made).total_seconds():.3f} s after it was recorded)"
            print(f"{doc['type']}: {rec['action']} {rec['scope']} {rec['subject']} "
                  f"rule={rec.get('rule')} seq={rec['seq']} "
                  f"delivery={self.headers.get('X-Alphatrace-Delivery')}{delay} {doc['link']}",
                  flush=True)
            self._answer(200, "ok")

        def _answer(self, code: int, text: str) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8787)
    ap.add_argument("--secret-env", default="ALPHATRACE_HOOK_SECRET")
    args = ap.parse_args()
    secret = os.environ.get(args.secret_env)
    if not secret:
        sys.exit(f"set {args.secret_env} to the secret the policy's secret_env names")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(secret, set()))
    print(f"listening on http://127.0.0.1:{args.port}/hook", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
