"""A bounded flood of wrong MLflow passwords through the edge, run on a lab host (test_1d).

Standard library only: the test runs this file's text with `python3 -c` on
the host (`docker exec -i`), with one JSON argument:

    {"host": <edge address>, "port": 443, "path": <MLflow URL path under the
     edge>, "user": <name the guesses are for>,
     "windows": [[from, to], ...] (seconds after the start, when to flood),
     "rate": <guesses per second>, "connections": <parallel connections>,
     "spoofed": [<X-Forwarded-For values to claim>, ...]}

It prints "ready" once its connections are open and reads the start (epoch
seconds: the host shares the control node's clock) from stdin, so that the
windows begin when the caller's do. Then it floods during each window at
`rate` in total (paced: a guess that could not start on time is not made up
later, so the flood never bursts above the rate), each guess a new wrong
password with an X-Forwarded-For taken from `spoofed` in turn, over
keep-alive TLS connections (the certificate is not checked), and finally
prints one JSON line: how many guesses it made, the statuses per window, whom
the 429s said they refused, and the connection errors. It stops after the
last window (the caller wraps it in `timeout`, too).
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import sys
import threading
import time


class Pacer:
    """Hands out start times `1/rate` apart, never earlier than now (no catch-up burst)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = 0.0
        self.lock = threading.Lock()

    def slot(self, not_before: float) -> float:
        with self.lock:
            when = max(self.next, not_before, time.time())
            self.next = when + self.interval
            return when


def main() -> None:
    cfg = json.loads(sys.argv[1])
    pacer = Pacer(float(cfg["rate"]))
    context = ssl._create_unverified_context()  # an attacker does not check whom it floods
    lock = threading.Lock()
    counter = {"sent": 0}
    refused: dict[str, int] = {}
    errors: list[str] = []

    def connect() -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection(cfg["host"], int(cfg["port"]), context=context, timeout=60)
        conn.connect()
        return conn

    connections = [connect() for _ in range(int(cfg["connections"]))]
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    windows = [(start + a, start + b) for a, b in cfg["windows"]]
    end = windows[-1][1]
    statuses: list[dict[str, int]] = [{} for _ in windows]

    def flood(conn: http.client.HTTPSConnection) -> None:
        for number, (begin, finish) in enumerate(windows):
            while True:
                when = pacer.slot(begin)
                if when >= finish:
                    break
                time.sleep(max(0.0, when - time.time()))
                with lock:
                    guess = counter["sent"]
                    counter["sent"] += 1
                token = base64.b64encode(f"{cfg['user']}:wrong-password-{guess}".encode()).decode()
                headers = {
                    "Authorization": f"Basic {token}",
                    "X-Forwarded-For": cfg["spoofed"][guess % len(cfg["spoofed"])],
                }
                status, body = -1, ""
                for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: once more
                    try:
                        conn.request("GET", cfg["path"], headers=headers)
                        resp = conn.getresponse()
                        status, body = resp.status, resp.read().decode(errors="replace").strip()
                        break
                    except (OSError, http.client.HTTPException) as exc:
                        conn.close()  # the next request opens a new connection
                        if attempt == 2:
                            with lock:
                                errors.append(repr(exc)[:200])
                with lock:
                    statuses[number][str(status)] = statuses[number].get(str(status), 0) + 1
                    if status == 429:
                        # whom the limiter refused ("Too many failed sign-ins from <address>"), not when
                        who = body.split(":", 1)[0]
                        refused[who] = refused.get(who, 0) + 1
            if time.time() >= end:
                break

    threads = [threading.Thread(target=flood, args=(conn,), daemon=True) for conn in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, end - time.time()) + 90)
    print(
        json.dumps(
            {
                "sent": counter["sent"],
                "statuses": statuses,
                "refused_429": refused,
                "errors": errors[:10],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
