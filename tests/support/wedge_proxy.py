#!/usr/bin/env python3
"""A wedged codex on demand: runs tests/support/fake_app_server.py (same arguments and
environment) behind a stdin filter that swallows every turn/start whose text contains
"wedge-me", so that request is never answered while everything else still is. Each
swallowed line is logged to FAKE_APP_SERVER_LOG as {"pid", "event": "wedged", "id"}.
stdout and stderr are the fake's own; stdin EOF is passed on, and the fake's exit code is
this one's."""

import json
import os
import subprocess
import sys

TRIGGER = "wedge-me"
FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_app_server.py")


def log(event, **fields):
    path = os.environ.get("FAKE_APP_SERVER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(dict(pid=os.getpid(), event=event, **fields)) + "\n")


def swallowed(line):
    try:
        message = json.loads(line)
    except ValueError:
        return False
    return (isinstance(message, dict) and message.get("method") == "turn/start"
            and TRIGGER in json.dumps(message.get("params")))


def main():
    child = subprocess.Popen([sys.executable, FAKE, *sys.argv[1:]], stdin=subprocess.PIPE)
    for line in sys.stdin.buffer:
        if swallowed(line):
            log("wedged", id=json.loads(line).get("id"))
            continue
        child.stdin.write(line)
        child.stdin.flush()
    child.stdin.close()
    sys.exit(child.wait())


if __name__ == "__main__":
    main()
