#!/usr/bin/env python3
"""A scripted fake of `codex app-server` (0.169.0 shapes) for faults the real one won't produce.

Newline-delimited JSON over stdio (no "jsonrpc" member). Methods: initialize, thread/start,
thread/resume, turn/start (only on threads started or resumed by this process), turn/interrupt,
thread/compact/start; others get -32601. Non-JSON input is logged and ignored; stdin EOF or
SIGTERM exits 0; an unknown mode (or slow/big_line without a number) exits 2. Turns run one at
a time on a worker thread (a turn/start during a turn is queued) while stdin is still read.
Default reply: "fake reply to: <input, newlines as ' / ', at most 300 chars>".

Environment:
  FAKE_APP_SERVER_LOG    file; one JSON line {"pid", "event", ...} per event: start {argv, cwd,
                         env, mode}, recv {line: object or raw string}, initialized,
                         thread/start {threadId}, thread/resume {threadId, known}, turn {threadId,
                         turnId, text, initialized}, interrupt {threadId, turnId, honoured},
                         compact {threadId}, answer {id, result|error}, no_answer {ids}, exit {code}
  FAKE_APP_SERVER_STATE  directory shared by processes: threads/<id>.json (threads and their
                         turns' input texts) and one-shot markers. Unset: memory, per process.
  FAKE_APP_SERVER_REPLY  fixed reply text instead of the default
  FAKE_APP_SERVER_MODE   comma-separated behaviours, "name" or "name:arg":
    crash_once        first turn ever (a marker in the state dir): os._exit(3) after
                      turn/started and the userMessage item; crash_always: every turn
    crash_at_start    exit 4 right after reading initialize (no answer)
    sick_at_start     like crash_at_start, but only while the state dir holds a file `sick`
    hang              turns never complete on their own; turn/interrupt still works
    ignore_interrupt  turn/interrupt gets no answer and no turn/completed
    slow:<ms>         wait that long before the agentMessage
    garbage           before every response: not json at all, [1,2,3], {"id":"dangling"},
                      {"method":5}, {} and a blank line
    big_line:<bytes>  each turn: a commandExecution item/completed whose aggregatedOutput is
                      that many 'x' (one line)
    foreign_tool_call each turn: request 1900+n item/tool/call of thread thr-gone (no agent's)
    server_request    each turn: requests 900+2n item/tool/unknownThing and 901+2n
                      item/commandExecution/requestApproval (n = turns so far in this process);
                      waits up to 30 s for both answers, else the turn never completes; then
                      the command item ends completed/declined/failed (an error answer), and a
                      "cancel" decision ends the turn interrupted, as codex does
    fail_turn         error (willRetry false, "fake failure") then turn/completed failed
    retry_error       error "Reconnecting... 1/2" (willRetry true), then a normal turn
    multi_message     agentMessage "first part" before the normal reply
    no_reply          turns complete without an agentMessage
    stderr_noise      a few lines on stderr at startup
    stderr_leak       at startup, a stderr line with a URL's credentials and query and an
                      API key in it (LEAKED_STDERR), as a failing HTTP client might print
    overloaded:<n>    the first n requests after initialize (in this process) get codex's
                      -32001 "Server overloaded; retry later." (logged as overloaded {id, method})
"""

import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid

MODES = {"crash_once", "crash_always", "crash_at_start", "sick_at_start", "hang",
         "ignore_interrupt", "slow", "garbage", "big_line", "server_request", "fail_turn",
         "retry_error", "multi_message", "no_reply", "stderr_noise", "stderr_leak", "overloaded",
         "foreign_tool_call"}
GARBAGE = [b"not json at all", b"[1,2,3]", b'{"id":"dangling"}', b'{"method":5}', b"{}", b""]
SANDBOXES = {"read-only": "readOnly", "workspace-write": "workspaceWrite",
             "danger-full-access": "dangerFullAccess"}
FAILURE = {"message": "fake failure", "codexErrorInfo": "internalServerError",
           "additionalDetails": None, "misalignment": None}
RETRY = {"message": "Reconnecting... 1/2", "additionalDetails": "fake retry", "misalignment": None,
         "codexErrorInfo": {"responseStreamDisconnected": {"httpStatusCode": None}}}
USAGE = {"totalTokens": 15, "inputTokens": 10, "cachedInputTokens": 0, "cacheWriteInputTokens": 0,
         "outputTokens": 5, "reasoningOutputTokens": 0}
COMMAND = "/bin/bash -lc 'echo hi'"
LEAKED_STDERR = ("fake: ERROR request to https://user:secret@host.test/x?token=abc failed; "
                 "OPENAI_API_KEY sk-proj-abcdefghijklmnopqrstuvwx")
DECISIONS = ["accept", "acceptForSession", "decline", "cancel"]
ANSWER_WAIT = 30.0


def now_ms():
    return int(time.time() * 1000)


class RpcError(Exception):
    def __init__(self, message, code=-32600):
        super().__init__(message)
        self.code, self.message = code, message


class Turn:
    def __init__(self, thread_id, text, content):
        self.id, self.done, self.started = str(uuid.uuid4()), False, None
        self.thread_id, self.text, self.content = thread_id, text, content
        self.thread = {"threadId": thread_id}  # the ids notifications carry
        self.ids = {"threadId": thread_id, "turnId": self.id}


class Server:
    def __init__(self):
        env = os.environ
        self.log_path = env.get("FAKE_APP_SERVER_LOG")
        self.state = env.get("FAKE_APP_SERVER_STATE")
        self.reply = env.get("FAKE_APP_SERVER_REPLY")
        self.modes = dict((p.strip().partition(":")[0], p.strip().partition(":")[2] or None)
                          for p in env.get("FAKE_APP_SERVER_MODE", "").split(",") if p.strip())
        self.codex_home = env.get("CODEX_HOME", os.path.expanduser("~/.codex"))
        self.lock = threading.RLock()  # guards stdout, turns and answers
        self.cond = threading.Condition(self.lock)
        self.initialized = self.got_initialized = False
        self.client_name = "fake_client"
        self.loaded = {}  # thread id -> record, for threads started or resumed by this process
        self.memory = {}  # stands in for the state dir when there is none
        self.turns = {}  # thread id -> turns not yet completed, oldest first
        self.queue, self.answers, self.turn_count = [], {}, 0
        self.overloads = 0  # -32001 answers given (overloaded:<n>)

    # ---- log and output ---------------------------------------------------------------------
    def log(self, event, **fields):
        if self.log_path:  # one write(2) per line, O_APPEND: whole lines even from many processes
            line = json.dumps({"pid": os.getpid(), "event": event, **fields}) + "\n"
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, line.encode())
            os.close(fd)

    def exit(self, code):
        self.log("exit", code=code)
        os._exit(code)

    def write(self, raw):
        with self.lock:
            try:
                sys.stdout.buffer.write(raw + b"\n")
                sys.stdout.buffer.flush()
            except OSError:  # the client went away
                self.exit(0)

    def send(self, obj):
        self.write(json.dumps(obj, separators=(",", ":")).encode())

    def notify(self, method, params):
        self.send({"method": method, "params": params, "emittedAtMs": now_ms()})

    def respond(self, rid, result=None, error=None):
        with self.lock:
            for raw in GARBAGE if "garbage" in self.modes else []:
                self.write(raw)
            self.send({"id": rid, "error": error} if error else {"id": rid, "result": result})

    # ---- state shared by processes ----------------------------------------------------------
    def load_thread(self, tid):
        try:
            uuid.UUID(tid)  # also keeps odd ids out of file names
            if not self.state:
                return self.memory.get(tid)
            with open(os.path.join(self.state, "threads", tid + ".json")) as f:
                return json.load(f)
        except (TypeError, ValueError, AttributeError, OSError):
            return None

    def save_thread(self, rec):
        if not self.state:
            self.memory[rec["id"]] = rec
            return
        path = os.path.join(self.state, "threads", rec["id"] + ".json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open("%s.%d" % (path, os.getpid()), "w") as f:
            json.dump(rec, f)
        os.replace(f.name, path)

    def claim_marker(self, name):
        """True for the first caller ever (per state dir; per process without one)."""
        if not self.state:
            return self.memory.setdefault("marker:" + name, os.getpid()) == os.getpid()
        os.makedirs(self.state, exist_ok=True)
        try:
            os.close(os.open(os.path.join(self.state, name + ".marker"), os.O_CREAT | os.O_EXCL))
            return True
        except FileExistsError:
            return False

    # ---- shapes -----------------------------------------------------------------------------
    def thread_result(self, rec, params, with_turns):
        tid, cwd, at = rec["id"], rec["cwd"], rec["createdAt"]
        turns = [{"id": t["id"], "rootTurnId": t["id"], "itemsView": "full", "status": "completed",
                  "error": None, "startedAt": at, "completedAt": at, "durationMs": 0,
                  "items": [{"type": "userMessage", "id": t["id"] + "-user", "clientId": None,
                             "content": [{"type": "text", "text": t["text"]}]}]}
                 for t in rec["turns"]] if with_turns else []
        thread = {"id": tid, "environments": [{"environmentId": "local", "cwd": cwd,
                                               "runtimeWorkspaceRoots": [cwd]}],
                  "extra": None, "sessionId": tid, "forkedFromId": None, "parentThreadId": None,
                  "preview": rec["turns"][0]["text"] if rec["turns"] else "", "ephemeral": False,
                  "historyMode": "paginated", "modelProvider": "fake", "model": rec["model"],
                  "reasoningEffort": None, "createdAt": at, "updatedAt": int(time.time()),
                  "status": {"type": "idle"}, "cwd": cwd, "cliVersion": "0.169.0",
                  "path": "%s/sessions/fake/rollout-%s.jsonl" % (self.codex_home, tid),
                  "originator": self.client_name, "source": "vscode", "name": None, "turns": turns}
        return {"thread": thread, "model": rec["model"], "modelProvider": "fake",
                "serviceTier": None, "cwd": cwd, "runtimeWorkspaceRoots": [cwd],
                "instructionSources": [], "approvalPolicy": params.get("approvalPolicy") or "never",
                "approvalsReviewer": "user", "reasoningEffort": None,
                "sandbox": {"type": SANDBOXES.get(params.get("sandbox"), "readOnly"),
                            "networkAccess": False}}

    @staticmethod
    def turn_obj(turn, status, items=(), error=None):
        end = None if status == "inProgress" else int(time.time())
        took = int((time.time() - turn.started) * 1000) if end and turn.started else None
        return {"id": turn.id, "rootTurnId": turn.id, "items": list(items),
                "itemsView": "summary" if items else "notLoaded", "status": status, "error": error,
                "startedAt": turn.started and int(turn.started), "completedAt": end,
                "durationMs": took}

    # ---- client messages --------------------------------------------------------------------
    def handle_line(self, raw):
        text = raw.decode("utf-8", "replace").strip()
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        self.log("recv", line=text if msg is None else msg)
        if not isinstance(msg, dict):
            print("fake: Failed to deserialize JSONRPCMessage: %r" % text[:200], file=sys.stderr)
            return
        method, rid = msg.get("method"), msg.get("id")
        if isinstance(method, str) and rid is not None:
            params = msg.get("params")
            try:
                self.handle_request(rid, method, {} if params is None else params)
            except RpcError as e:
                self.respond(rid, error={"code": e.code, "message": e.message})
            except Exception as e:  # odd params must not kill the fake
                traceback.print_exc()
                self.respond(rid, error={"code": -32603, "message": "fake internal error: %r" % e})
        elif method == "initialized":
            self.got_initialized = True
            self.log("initialized")
        elif method is None and rid is not None and ("result" in msg or "error" in msg):
            kind = "result" if "result" in msg else "error"
            self.log("answer", id=rid, **{kind: msg[kind]})
            with self.cond:
                self.answers[rid] = msg
                self.cond.notify_all()

    def handle_request(self, rid, method, params):
        if not isinstance(params, dict):
            raise RpcError("Invalid request: params must be an object")
        if method == "initialize":
            if "crash_at_start" in self.modes:
                self.exit(4)
            if "sick_at_start" in self.modes and self.state and \
                    os.path.exists(os.path.join(self.state, "sick")):
                self.exit(4)
            if self.initialized:
                raise RpcError("Already initialized")
            self.initialized = True
            self.client_name = (params.get("clientInfo") or {}).get("name") or self.client_name
            self.respond(rid, {"userAgent": "fake/0.0.0", "codexHome": self.codex_home,
                               "platformFamily": "unix", "platformOs": "linux"})
            self.notify("remoteControl/status/changed", {"status": "disabled", "serverName": "fake",
                                                         "installationId": None})
            return
        if not self.initialized:
            raise RpcError("Not initialized")
        if "overloaded" in self.modes and self.overloads < int(self.modes["overloaded"]):
            self.overloads += 1
            self.log("overloaded", id=rid, method=method)
            raise RpcError("Server overloaded; retry later.", -32001)
        handler = {"thread/start": self.thread_start, "thread/resume": self.thread_resume,
                   "turn/start": self.turn_start, "turn/interrupt": self.turn_interrupt,
                   "thread/compact/start": self.compact}.get(method)
        if handler is None:
            raise RpcError("method not found: " + method, -32601)
        handler(rid, params)

    def loaded_thread(self, params):
        tid = params.get("threadId")
        if tid not in self.loaded:
            raise RpcError("thread not found: %s" % tid)
        return tid

    def thread_start(self, rid, params):
        rec = {"id": str(uuid.uuid4()), "cwd": params.get("cwd") or os.getcwd(),
               "model": params.get("model") or "fake-model", "createdAt": int(time.time()),
               "turns": []}
        self.save_thread(rec)
        self.loaded[rec["id"]] = rec
        self.log("thread/start", threadId=rec["id"])
        with self.lock:
            result = self.thread_result(rec, params, False)
            self.respond(rid, result)
            self.notify("thread/started", {"thread": result["thread"]})

    def thread_resume(self, rid, params):
        tid = params.get("threadId")
        rec = self.load_thread(tid)
        self.log("thread/resume", threadId=tid, known=rec is not None)
        if rec is None:
            raise RpcError("no rollout found for thread id %s" % tid)
        rec["cwd"] = params.get("cwd") or rec["cwd"]
        self.loaded[tid] = rec
        with self.lock:
            self.notify("thread/status/changed", {"threadId": tid, "status": {"type": "idle"}})
            self.respond(rid, self.thread_result(rec, params, not params.get("excludeTurns")))

    def turn_start(self, rid, params):
        tid = self.loaded_thread(params)
        if not isinstance(params.get("input"), list):
            raise RpcError("Invalid request: missing field `input`")
        content = [dict(c, text_elements=c.get("text_elements", [])) if c.get("type") == "text"
                   else c for c in params["input"] if isinstance(c, dict)]
        turn = Turn(tid, "\n".join(c.get("text", "") for c in content if c.get("type") == "text"),
                    content)
        with self.cond:
            self.turns.setdefault(tid, []).append(turn)
            self.respond(rid, {"turn": self.turn_obj(turn, "inProgress")})
            self.queue.append(turn)
            self.cond.notify_all()

    def turn_interrupt(self, rid, params):
        tid, turn_id = params.get("threadId"), params.get("turnId")
        with self.cond:
            live = [t for t in self.turns.get(tid, []) if turn_id in (None, t.id)]
            honoured = bool(live) and "ignore_interrupt" not in self.modes
            self.log("interrupt", threadId=tid, turnId=turn_id, honoured=honoured)
            if not live:
                raise RpcError("no active turn to interrupt")
            if honoured:
                self.respond(rid, {})
                self.finish(live[0], "interrupted")

    def compact(self, rid, params):
        tid = self.loaded_thread(params)
        self.log("compact", threadId=tid)
        self.respond(rid, {})
        # codex 0.169 runs a compaction as a turn of its own on the thread (observed).
        turn = {"id": "compact-%s" % uuid.uuid4(), "items": [], "status": "inProgress"}
        self.notify("turn/started", {"threadId": tid, "turn": turn})
        self.notify("turn/completed", {"threadId": tid, "turn": dict(turn, status="completed")})

    # ---- turns ------------------------------------------------------------------------------
    def tsend(self, turn, method, params):
        """Send a notification of a turn unless the turn is over; False if it is."""
        with self.lock:
            if not turn.done:
                self.notify(method, params)
            return not turn.done

    def finish(self, turn, status, items=(), error=None, idle=True):
        with self.cond:
            if turn.done:
                return
            turn.done = True
            self.turns[turn.thread_id].remove(turn)
            if idle:
                self.notify("thread/status/changed", dict(turn.thread, status={"type": "idle"}))
            self.notify("turn/completed", dict(turn.thread, turn=self.turn_obj(
                turn, status, items, error)))
            self.cond.notify_all()

    def wait(self, turn, predicate, timeout):
        """Wait until predicate() or the turn is over; True if the turn goes on."""
        with self.cond:
            self.cond.wait_for(lambda: turn.done or predicate(), timeout)
            return not turn.done

    def item(self, turn, item, started=True, completed=True):
        if started and not self.tsend(turn, "item/started", dict(
                item=dict(item, completedAtMs=None), **turn.ids, startedAtMs=item["startedAtMs"])):
            return False
        t = now_ms()
        return not completed or self.tsend(turn, "item/completed", dict(
            item=dict(item, completedAtMs=t), **turn.ids, contentTokenCount=None, completedAtMs=t))

    def agent_message(self, turn, text):
        item = {"type": "agentMessage", "moderation": None, "id": "msg_" + uuid.uuid4().hex[:12],
                "text": "", "phase": None, "memoryCitation": None, "delivery": None,
                "questions": None, "startedAtMs": now_ms()}
        done = dict(item, text=text)
        ok = (self.item(turn, item, completed=False)
              and self.tsend(turn, "item/agentMessage/delta",
                             dict(turn.ids, itemId=item["id"], delta=text))
              and self.item(turn, done, started=False))
        return dict(done, completedAtMs=now_ms()) if ok else None

    @staticmethod
    def command_item(**fields):
        return dict({"type": "commandExecution", "id": "call_1", "command": COMMAND, "cwd": "/",
                     "processId": None, "source": "agent", "status": "inProgress",
                     "commandActions": [{"type": "unknown", "command": "echo hi"}],
                     "aggregatedOutput": None, "exitCode": None, "durationMs": None,
                     "startedAtMs": now_ms()}, **fields)

    def worker(self):
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.queue)
                turn = self.queue.pop(0)
            try:
                if not turn.done:
                    self.run_turn(turn)
            except Exception as e:  # a bug here must not silently hang every later turn
                traceback.print_exc()
                self.log("worker_error", error=repr(e))

    def run_turn(self, turn):
        n, self.turn_count = self.turn_count, self.turn_count + 1
        modes, rec = self.modes, self.loaded[turn.thread_id]
        rec["turns"].append({"id": turn.id, "text": turn.text})
        self.save_thread(rec)
        self.log("turn", **turn.ids, text=turn.text, initialized=self.got_initialized)
        turn.started = time.time()
        user = {"type": "userMessage", "id": str(uuid.uuid4()), "clientId": None,
                "content": turn.content, "startedAtMs": now_ms()}
        if not (self.tsend(turn, "thread/status/changed",
                           dict(turn.thread, status={"type": "active", "activeFlags": []}))
                and self.tsend(turn, "turn/started",
                               dict(turn.thread, turn=self.turn_obj(turn, "inProgress")))
                and self.item(turn, user)):
            return
        if "crash_always" in modes or ("crash_once" in modes and self.claim_marker("crash_once")):
            self.exit(3)
        if "fail_turn" in modes:  # as codex: systemError, the final error, then turn/completed
            if (self.tsend(turn, "thread/status/changed",
                           dict(turn.thread, status={"type": "systemError"}))
                    and self.tsend(turn, "error", dict(turn.ids, error=FAILURE, willRetry=False))):
                self.finish(turn, "failed", error=FAILURE, idle=False)
            return
        if "hang" in modes:
            self.wait(turn, lambda: False, None)
            return
        if "big_line" in modes:
            item = self.command_item(id="call_big_%d" % n, command="/bin/bash -lc 'big'")
            big = dict(item, status="completed", aggregatedOutput="x" * int(modes["big_line"]),
                       exitCode=0, durationMs=1)
            if not (self.item(turn, item, completed=False) and self.item(turn, big, started=False)):
                return
        if "foreign_tool_call" in modes and not self.foreign_tool_call(turn, n):
            return
        if "server_request" in modes and not self.server_requests(turn, n):
            return
        if "retry_error" in modes and not self.tsend(
                turn, "error", dict(turn.ids, error=RETRY, willRetry=True)):
            return
        if "slow" in modes and not self.wait(turn, lambda: False, int(modes["slow"]) / 1000):
            return
        texts = ["first part"] if "multi_message" in modes else []
        if "no_reply" not in modes:
            texts.append(self.reply if self.reply is not None else
                         "fake reply to: " + turn.text.replace("\n", " / ")[:300])
        items = [self.agent_message(turn, text) for text in texts]
        total = {k: v * len(rec["turns"]) for k, v in USAGE.items()}
        usage = {"total": total, "last": USAGE, "modelContextWindow": 258400}
        if None not in items and self.tsend(turn, "thread/tokenUsage/updated",
                                            dict(turn.ids, tokenUsage=usage)):
            self.finish(turn, "completed", items[-1:])

    def foreign_tool_call(self, turn, n):
        """A dynamic tool call of a thread no agent has, then wait for its answer."""
        rid = 1900 + n
        with self.lock:
            self.send({"id": rid, "method": "item/tool/call",
                       "params": dict(turn.ids, threadId="thr-gone", callId="call_gone",
                                      tool="irc_send",
                                      arguments={"channel": "#general", "message": "not me"})})
        if not self.wait(turn, lambda: rid in self.answers, ANSWER_WAIT):
            return False
        if rid not in self.answers:
            self.log("no_answer", ids=[rid])
            return False
        return True

    def server_requests(self, turn, n):
        """Two server requests, then wait for both answers; False if the turn must not go on."""
        ids = (900 + 2 * n, 901 + 2 * n)
        item = self.command_item()
        with self.lock:
            if not self.item(turn, item, completed=False):
                return False
            self.send({"id": ids[0], "method": "item/tool/unknownThing",
                       "params": dict(turn.ids, tool="unknownThing")})
            self.send({"id": ids[1], "method": "item/commandExecution/requestApproval",
                       "params": dict(turn.ids, kind="command", itemId="call_1", command=COMMAND,
                                      cwd="/", reason="fake", commandActions=item["commandActions"],
                                      availableDecisions=DECISIONS)})
        def answered():
            return all(i in self.answers for i in ids)
        if not self.wait(turn, answered, ANSWER_WAIT):
            return False
        if not answered():
            self.log("no_answer", ids=[i for i in ids if i not in self.answers])
            return False
        for i in ids:
            if not self.tsend(turn, "serverRequest/resolved", dict(turn.thread, requestId=i)):
                return False
        answer = self.answers[ids[1]]
        decision = (answer.get("result") or {}).get("decision") if "result" in answer else None
        status = ("failed" if "error" in answer else
                  "declined" if decision in ("decline", "cancel") else "completed")
        extra = {"aggregatedOutput": "hi\n", "exitCode": 0} if status == "completed" else {}
        if not self.item(turn, dict(item, status=status, durationMs=1, **extra), started=False):
            return False
        if decision == "cancel":  # as codex: the command is declined and the turn interrupted
            self.finish(turn, "interrupted")
            return False
        return True

    # ---- main -------------------------------------------------------------------------------
    def run(self):
        env = {k: os.environ.get(k) for k in ("CULTURE_NICK", "XDG_DATA_HOME", "XDG_STATE_HOME",
                                              "CODEX_HOME")}
        self.log("start", argv=sys.argv, cwd=os.getcwd(), env=env, mode=self.modes)
        bad = sorted(set(self.modes) - MODES) + [m for m in ("slow", "big_line", "overloaded") if m in self.modes
                                                 and not (self.modes[m] or "").isdigit()]
        if bad:
            print("fake: bad FAKE_APP_SERVER_MODE entries: " + ", ".join(bad), file=sys.stderr)
            self.exit(2)
        if "stderr_noise" in self.modes:
            print("fake: starting up\n2026-11-21T12:00:00.000000Z  WARN codex_core: fake noise\n"
                  "fake: bubblewrap not found, using the bundled one", file=sys.stderr)
        if "stderr_leak" in self.modes:
            print(LEAKED_STDERR, file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: self.exit(0))
        threading.Thread(target=self.worker, daemon=True).start()
        while True:
            line = sys.stdin.buffer.readline()
            if not line:
                self.exit(0)
            self.handle_line(line)


if __name__ == "__main__":
    Server().run()
