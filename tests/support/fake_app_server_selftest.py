#!/usr/bin/env python3
"""Self-test of fake_app_server.py: runs it as a subprocess with pipes (stdlib unittest).

    python3 tests/support/fake_app_server_selftest.py
"""

import json
import os
import queue
import subprocess
import tempfile
import threading
import time
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_app_server.py")
PATIENCE = 15.0  # deadline for anything the fake should do
QUIET = 0.4  # how long "nothing happens" is watched
TURN_ORDER = ["thread/status/changed", "turn/started", "item/started", "item/completed",
              "item/started", "item/agentMessage/delta", "item/completed",
              "thread/tokenUsage/updated", "thread/status/changed", "turn/completed"]


class Fake:
    """One fake process; received lines are parsed JSON, or the raw text if not JSON."""

    def __init__(self, tmp, mode="", **env):
        self.log_path = os.path.join(tmp, "log.jsonl")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_APP_SERVER")}
        full_env.update(FAKE_APP_SERVER_LOG=self.log_path, FAKE_APP_SERVER_MODE=mode,
                        FAKE_APP_SERVER_STATE=os.path.join(tmp, "state"), **env)
        self.proc = subprocess.Popen([SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env, cwd=tmp)
        self.lines, self.stderr, self.next_id = queue.Queue(), [], 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            text = raw.decode().rstrip("\n")
            try:
                self.lines.put(json.loads(text))
            except ValueError:
                self.lines.put(text)
        self.lines.put(EOFError)

    def send(self, msg):
        self.proc.stdin.write((msg if isinstance(msg, str) else json.dumps(msg)).encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout=PATIENCE):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("nothing from the fake within %.1f s" % timeout) from None

    def until(self, pred):
        """Messages up to and including the first one matching pred."""
        seen = []
        while True:
            msg = self.recv()
            if msg is EOFError:
                raise AssertionError("EOF before the expected message; got %r" % seen)
            seen.append(msg)
            if pred(msg):
                return seen

    def quiet(self, seconds=QUIET):
        """Everything received within `seconds` (expected to be nothing)."""
        got, end = [], time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                got.append(self.lines.get(timeout=left))
            except queue.Empty:
                break
        return got

    def request(self, method, params=None):
        """Send a request; returns (response, messages before it)."""
        rid, self.next_id = self.next_id, self.next_id + 1
        self.send({"id": rid, "method": method, "params": params or {}})
        seen = self.until(lambda m: has_id(rid)(m) and "method" not in m)
        return seen[-1], seen[:-1]

    def handshake(self):
        response, _ = self.request("initialize", {"clientInfo": {"name": "selftest",
                                                                 "version": "0"}})
        self.send({"method": "initialized"})
        return response

    def start_thread(self):
        self.handshake()
        response, _ = self.request("thread/start", {"cwd": "/tmp", "approvalPolicy": "never"})
        return response["result"]["thread"]["id"]

    def turn(self, tid, text):
        """Start a turn; returns (turn id, notifications up to its turn/completed)."""
        response, _ = self.request("turn/start", {"threadId": tid,
                                                  "input": [{"type": "text", "text": text}]})
        return response["result"]["turn"]["id"], self.until(completed)

    def close(self, timeout=PATIENCE):
        self.proc.stdin.close()
        return self.proc.wait(timeout)

    def events(self, name=None):
        """This process's log events (all of them, or those called `name`)."""
        with open(self.log_path) as f:
            events = [json.loads(line) for line in f]
        return [e for e in events if e["pid"] == self.proc.pid and name in (None, e["event"])]


def is_method(name):
    return lambda msg: isinstance(msg, dict) and msg.get("method") == name


def has_id(rid):
    return lambda msg: isinstance(msg, dict) and msg.get("id") == rid


completed = is_method("turn/completed")


def methods(msgs):
    return [m.get("method") for m in msgs if isinstance(m, dict)]


def with_method(msgs, method):
    return [m["params"] for m in msgs if isinstance(m, dict) and m.get("method") == method]


class FakeAppServerTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-app-server-")
        self.tmp = self._tmp.name
        self.fakes = []

    def tearDown(self):
        for fake in self.fakes:
            if fake.proc.poll() is None:
                fake.proc.kill()
            fake.proc.wait()
            for pipe in (fake.proc.stdin, fake.proc.stdout, fake.proc.stderr):
                pipe.close()
        self._tmp.cleanup()

    def fake(self, mode="", **env):
        self.fakes.append(Fake(self.tmp, mode, **env))
        return self.fakes[-1]

    def test_handshake(self):
        fake = self.fake(CULTURE_NICK="spark-alpha", CODEX_HOME="/codex/home")
        response = fake.handshake()
        self.assertEqual(response["result"], {"userAgent": "fake/0.0.0", "codexHome": "/codex/home",
                                              "platformFamily": "unix", "platformOs": "linux"})
        again, _ = fake.request("initialize", {"clientInfo": {"name": "x", "version": "0"}})
        self.assertEqual(again["error"], {"code": -32600, "message": "Already initialized"})
        other, _ = fake.request("no/such/method")
        self.assertEqual(other["error"], {"code": -32601,
                                          "message": "method not found: no/such/method"})
        self.assertEqual(fake.close(), 0)
        start = fake.events("start")[0]
        self.assertEqual(start["env"]["CULTURE_NICK"], "spark-alpha")
        self.assertEqual(start["cwd"], os.path.realpath(self.tmp))
        self.assertEqual(fake.events("recv")[1]["line"], {"method": "initialized"})
        self.assertEqual(len(fake.events("initialized")), 1)
        self.assertEqual(fake.events("exit"), [{"pid": fake.proc.pid, "event": "exit", "code": 0}])

    def test_not_initialized(self):
        fake = self.fake()
        response, _ = fake.request("thread/start", {})
        self.assertEqual(response["error"], {"code": -32600, "message": "Not initialized"})

    def test_turn_order_and_reply(self):
        fake = self.fake()
        fake.handshake()
        response, _ = fake.request("thread/start", {"cwd": "/tmp", "sandbox": "read-only"})
        thread = response["result"]["thread"]
        self.assertEqual((thread["status"], thread["turns"], thread["cwd"]),
                         ({"type": "idle"}, [], "/tmp"))
        self.assertEqual(fake.recv()["params"]["thread"]["id"], thread["id"])  # thread/started
        turn_id, msgs = fake.turn(thread["id"], "hello\nworld")
        self.assertEqual(methods(msgs), TURN_ORDER)
        self.assertEqual(msgs[0]["params"]["status"]["type"], "active")
        self.assertEqual(msgs[1]["params"]["turn"]["id"], turn_id)
        self.assertEqual(msgs[3]["params"]["item"]["type"], "userMessage")
        agent = msgs[6]["params"]
        self.assertEqual(agent["item"]["type"], "agentMessage")
        self.assertEqual(agent["item"]["text"], "fake reply to: hello / world")
        self.assertEqual((agent["threadId"], agent["turnId"]), (thread["id"], turn_id))
        usage = msgs[7]["params"]["tokenUsage"]
        self.assertEqual((usage["last"]["inputTokens"], usage["last"]["outputTokens"],
                          usage["modelContextWindow"]), (10, 5, 258400))
        done = msgs[-1]["params"]
        self.assertEqual((done["turn"]["id"], done["turn"]["status"], done["turn"]["error"]),
                         (turn_id, "completed", None))
        self.assertEqual(done["turn"]["items"][0]["text"], "fake reply to: hello / world")
        _, msgs = fake.turn(thread["id"], "x" * 400)
        self.assertEqual(with_method(msgs, "item/agentMessage/delta")[0]["delta"],
                         "fake reply to: " + "x" * 300)
        compact, _ = fake.request("thread/compact/start", {"threadId": thread["id"]})
        self.assertEqual(compact["result"], {})
        self.assertEqual(fake.close(), 0)
        turns = fake.events("turn")
        self.assertEqual([(t["threadId"], t["text"]) for t in turns][0],
                         (thread["id"], "hello\nworld"))
        self.assertTrue(turns[0]["initialized"])
        self.assertEqual(fake.events("compact")[0]["threadId"], thread["id"])

    def test_resume_across_processes(self):
        first = self.fake()
        tid = first.start_thread()
        first.turn(tid, "remember me")
        self.assertEqual(first.close(), 0)
        second = self.fake()
        second.handshake()
        unloaded, _ = second.request("turn/start", {"threadId": tid, "input": []})
        self.assertEqual(unloaded["error"]["code"], -32600)
        response, _ = second.request("thread/resume", {"threadId": tid})
        thread = response["result"]["thread"]
        self.assertEqual(thread["id"], tid)
        self.assertEqual(thread["turns"][0]["items"][0]["content"][0]["text"], "remember me")
        lean, _ = second.request("thread/resume", {"threadId": tid, "excludeTurns": True})
        self.assertEqual(lean["result"]["thread"]["turns"], [])
        unknown = "00000000-0000-0000-0000-000000000000"
        response, _ = second.request("thread/resume", {"threadId": unknown})
        self.assertEqual(response["error"], {
            "code": -32600, "message": "no rollout found for thread id " + unknown})
        _, msgs = second.turn(tid, "after resume")
        self.assertEqual(msgs[-1]["params"]["turn"]["status"], "completed")

    def test_crash_once(self):
        first = self.fake("crash_once")
        tid = first.start_thread()
        first.request("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "boom"}]})
        rest = []
        while (msg := first.recv()) is not EOFError:
            rest.append(msg)
        self.assertEqual(methods(rest), ["thread/status/changed", "turn/started", "item/started",
                                         "item/completed"])
        self.assertEqual(first.proc.wait(PATIENCE), 3)
        self.assertEqual(first.events("exit")[-1]["code"], 3)
        second = self.fake("crash_once")
        second.handshake()
        second.request("thread/resume", {"threadId": tid, "excludeTurns": True})
        _, msgs = second.turn(tid, "again")
        self.assertEqual(methods(msgs), TURN_ORDER)

    def test_crash_always_and_at_start(self):
        fake = self.fake("crash_always")
        tid = fake.start_thread()
        fake.request("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "x"}]})
        self.assertEqual(fake.proc.wait(PATIENCE), 3)
        again = self.fake("crash_always")
        tid = again.start_thread()
        again.request("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "x"}]})
        self.assertEqual(again.proc.wait(PATIENCE), 3)
        early = self.fake("crash_at_start")
        early.send({"id": 0, "method": "initialize", "params": {}})
        self.assertEqual(early.proc.wait(PATIENCE), 4)
        self.assertIs(early.recv(), EOFError)

    def test_hang_and_interrupt(self):
        fake = self.fake("hang")
        tid = fake.start_thread()
        response, _ = fake.request("turn/start", {"threadId": tid,
                                                  "input": [{"type": "text", "text": "wait"}]})
        turn_id = response["result"]["turn"]["id"]
        fake.until(is_method("item/completed"))  # the userMessage
        self.assertEqual(fake.quiet(), [])
        response, before = fake.request("turn/interrupt", {"threadId": tid, "turnId": turn_id})
        self.assertEqual((response["result"], before), ({}, []))
        msgs = fake.until(completed)
        self.assertEqual(methods(msgs), ["thread/status/changed", "turn/completed"])
        self.assertEqual(msgs[-1]["params"]["turn"]["id"], turn_id)
        self.assertEqual(msgs[-1]["params"]["turn"]["status"], "interrupted")
        again, _ = fake.request("turn/interrupt", {"threadId": tid, "turnId": turn_id})
        self.assertEqual(again["error"], {"code": -32600, "message": "no active turn to interrupt"})

    def test_ignore_interrupt(self):
        fake = self.fake("hang,ignore_interrupt")
        tid = fake.start_thread()
        response, _ = fake.request("turn/start", {"threadId": tid,
                                                  "input": [{"type": "text", "text": "wait"}]})
        fake.until(is_method("turn/started"))
        fake.send({"id": 77, "method": "turn/interrupt",
                   "params": {"threadId": tid, "turnId": response["result"]["turn"]["id"]}})
        self.assertEqual(methods(fake.quiet()), ["item/started", "item/completed"])
        self.assertEqual(fake.quiet(), [])
        self.assertFalse(fake.events("interrupt")[0]["honoured"])

    def test_garbage(self):
        fake = self.fake("garbage")
        fake.send("this is not json")
        fake.send("")
        response, before = fake.request("initialize", {"clientInfo": {"name": "g", "version": "0"}})
        self.assertEqual(before, ["not json at all", [1, 2, 3], {"id": "dangling"},
                                  {"method": 5}, {}, ""])
        self.assertEqual(response["result"]["userAgent"], "fake/0.0.0")
        fake.close()
        self.assertEqual(fake.events("recv")[0]["line"], "this is not json")
        self.assertIn("Failed to deserialize", b"".join(fake.stderr).decode())

    def test_big_line(self):
        size = 10 * 1024 * 1024
        fake = self.fake("big_line:%d" % size)
        tid = fake.start_thread()
        _, msgs = fake.turn(tid, "big")
        commands = [p["item"] for p in with_method(msgs, "item/completed")
                    if p["item"]["type"] == "commandExecution"]
        self.assertEqual(len(commands), 1)
        self.assertEqual(len(commands[0]["aggregatedOutput"]), size)
        self.assertEqual(set(commands[0]["aggregatedOutput"]), {"x"})
        self.assertEqual(msgs[-1]["params"]["turn"]["status"], "completed")

    def test_server_request(self):
        fake = self.fake("server_request")
        tid = fake.start_thread()
        response, _ = fake.request("turn/start", {"threadId": tid,
                                                  "input": [{"type": "text", "text": "ask"}]})
        turn_id = response["result"]["turn"]["id"]
        msgs = fake.until(has_id(901))
        unknown, approval = msgs[-2], msgs[-1]
        self.assertEqual((unknown["id"], unknown["method"]), (900, "item/tool/unknownThing"))
        self.assertEqual(unknown["params"]["turnId"], turn_id)
        self.assertEqual(approval["method"], "item/commandExecution/requestApproval")
        params = approval["params"]
        self.assertEqual((params["threadId"], params["turnId"], params["itemId"]),
                         (tid, turn_id, "call_1"))
        self.assertEqual(params["command"], "/bin/bash -lc 'echo hi'")
        self.assertEqual(params["availableDecisions"], ["accept", "acceptForSession", "decline",
                                                        "cancel"])
        fake.send({"id": 901, "result": {"decision": "accept"}})
        self.assertEqual(fake.quiet(), [])  # still waiting for 900
        fake.send({"id": 900, "error": {"code": -32601, "message": "unsupported"}})
        msgs = fake.until(completed)
        self.assertEqual(methods(msgs)[:3], ["serverRequest/resolved", "serverRequest/resolved",
                                             "item/completed"])
        self.assertEqual(msgs[2]["params"]["item"]["status"], "completed")
        self.assertEqual(msgs[-1]["params"]["turn"]["status"], "completed")
        fake.send({"id": 5, "method": "turn/start",
                   "params": {"threadId": tid, "input": [{"type": "text", "text": "again"}]}})
        msgs = fake.until(has_id(903))
        self.assertEqual(msgs[-2]["id"], 902)
        fake.send({"id": 902, "error": {"code": -32601, "message": "unsupported"}})
        fake.send({"id": 903, "result": {"decision": "decline"}})
        msgs = fake.until(completed)
        statuses = [p["item"]["status"] for p in with_method(msgs, "item/completed")
                    if p["item"]["type"] == "commandExecution"]
        self.assertEqual(statuses, ["declined"])
        self.assertEqual(msgs[-1]["params"]["turn"]["status"], "completed")
        fake.close()
        answers = fake.events("answer")
        self.assertEqual([(a["id"], "result" in a) for a in answers],
                         [(901, True), (900, False), (902, False), (903, True)])
        self.assertEqual(answers[0]["result"], {"decision": "accept"})

    def test_server_request_cancel_and_interrupt(self):
        fake = self.fake("server_request")
        tid = fake.start_thread()
        fake.send({"id": 5, "method": "turn/start",
                   "params": {"threadId": tid, "input": [{"type": "text", "text": "x"}]}})
        fake.until(has_id(901))
        fake.send({"id": 900, "error": {"code": -32601, "message": "no"}})
        fake.send({"id": 901, "result": {"decision": "cancel"}})
        self.assertEqual(fake.until(completed)[-1]["params"]["turn"]["status"], "interrupted")
        response, _ = fake.request("turn/start", {"threadId": tid,
                                                  "input": [{"type": "text", "text": "y"}]})
        fake.until(has_id(903))
        fake.request("turn/interrupt", {"threadId": tid,
                                        "turnId": response["result"]["turn"]["id"]})
        self.assertEqual(fake.until(completed)[-1]["params"]["turn"]["status"], "interrupted")

    def test_fail_turn(self):
        fake = self.fake("fail_turn")
        tid = fake.start_thread()
        _, msgs = fake.turn(tid, "fail")
        self.assertEqual(methods(msgs)[4:], ["thread/status/changed", "error", "turn/completed"])
        self.assertNotIn("item/agentMessage/delta", methods(msgs))
        error = msgs[-2]["params"]
        self.assertFalse(error["willRetry"])
        self.assertEqual((error["error"]["message"], error["error"]["codexErrorInfo"]),
                         ("fake failure", "internalServerError"))
        turn = msgs[-1]["params"]["turn"]
        self.assertEqual((turn["status"], turn["error"]["message"]), ("failed", "fake failure"))

    def test_reply_modes(self):
        fake = self.fake("retry_error,multi_message,slow:300,stderr_noise",
                         FAKE_APP_SERVER_REPLY="fixed")
        tid = fake.start_thread()
        started = time.monotonic()
        _, msgs = fake.turn(tid, "anything")
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        errors = with_method(msgs, "error")
        self.assertEqual([(e["willRetry"], e["error"]["message"]) for e in errors],
                         [(True, "Reconnecting... 1/2")])
        texts = [p["item"]["text"] for p in with_method(msgs, "item/completed")
                 if p["item"]["type"] == "agentMessage"]
        self.assertEqual(texts, ["first part", "fixed"])
        self.assertEqual(msgs[-1]["params"]["turn"]["status"], "completed")
        fake.close()
        self.assertIn("fake: starting up", b"".join(fake.stderr).decode())
        quiet = self.fake("no_reply")
        _, msgs = quiet.turn(quiet.start_thread(), "hi")
        self.assertNotIn("item/agentMessage/delta", methods(msgs))
        self.assertEqual(msgs[-1]["params"]["turn"]["status"], "completed")

    def test_unknown_mode(self):
        fake = self.fake("no_such_mode")
        self.assertEqual(fake.proc.wait(PATIENCE), 2)

    def test_eof_exits_quickly(self):
        idle = self.fake()
        idle.handshake()
        started = time.monotonic()
        self.assertEqual(idle.close(), 0)
        self.assertLess(time.monotonic() - started, 1.0)
        busy = self.fake("hang")
        tid = busy.start_thread()
        busy.request("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "x"}]})
        busy.until(is_method("turn/started"))
        started = time.monotonic()
        self.assertEqual(busy.close(), 0)
        self.assertLess(time.monotonic() - started, 1.0)


if __name__ == "__main__":
    unittest.main()
