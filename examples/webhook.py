#!/usr/bin/env python3
"""The classic vmq_webhooks example endpoint, for hookd's quick start.

Only user `joe` with password `secret` may register; every publish is
allowed but to topics under `readonly/` (where it is registered for
auth_on_publish); every subscribe is allowed; notifications are printed.
Standard library only.

    python3 examples/webhook.py [--port 8080]

It speaks exactly what VerneMQ's vmq_webhooks speaks: a POST with a JSON body
and the hook's name in the `vernemq-hook` header, answered with
{"result": "ok"}, {"result": "next"} or {"result": {"error": "..."}}.
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def decide(hook, body):
    """The answer to one hook call."""
    if hook in ("auth_on_register", "auth_on_register_m5"):
        if body.get("username") == "joe" and body.get("password") == "secret":
            return {"result": "ok"}
        return {"result": {"error": "not_allowed"}}
    if hook in ("auth_on_publish", "auth_on_publish_m5") and body.get("topic", "").startswith("readonly/"):
        return {"result": {"error": "read_only"}}
    if hook.startswith("auth_on_"):
        return {"result": "ok"}
    print(f"{hook}: {json.dumps(body)}", flush=True)
    return {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as hookd pools connections
    # Buffered, so headers and body leave in one write (flushed after each
    # request): written apart, the body waits for the ACK of the headers
    # (Nagle's algorithm vs the client's delayed ACK), ~40 ms per request
    # on a reused connection.
    wbufsize = 64 * 1024

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.send_error(400, "body is not JSON")
            return
        answer = json.dumps(decide(self.headers.get("vernemq-hook", ""), body)).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
