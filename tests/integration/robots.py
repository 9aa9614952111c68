"""Local receivers that act as the three group robots and as an SMTP server,
for the channel tests. Each robot checks what its vendor documents and
answers as the vendor does:

- DingTalk (钉钉) custom robot, 加签: the URL carries timestamp (ms) and
  sign = urlEncode(base64(HmacSHA256(secret, timestamp + "\\n" + secret))),
  encoded once; a wrong sign answers {"errcode": 310000, "errmsg": "sign
  not match"}; the body is {"msgtype": "markdown", "markdown": {"title",
  "text"}}.
- WeCom (企业微信) group robot: the key in the URL; {"msgtype": "markdown",
  "markdown": {"content"}} with content at most 4096 bytes (else errcode
  40058).
- Feishu (飞书) custom bot, 签名校验: "timestamp" (seconds, a string) and
  sign = base64(HmacSHA256(key = timestamp + "\\n" + secret, message = ""))
  in the body; a wrong sign answers {"code": 19021, "msg": "sign match
  fail ..."}.

The expected signatures are computed here, with Python's hmac, never by the
code under test. The SMTP server is Debian's aiosmtpd.
"""

import base64
import email
import email.policy
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from harness import free_port


class Robot:
    """One robot of a kind on a local port. `refuse` answers the next n
    messages with the vendor's refusal of a missing keyword; down() stops
    listening (connections are refused) until up()."""

    def __init__(self, kind, secret=None):
        self.kind = kind
        self.secret = secret
        self.messages = []  # accepted: {"body", "text", "title", "query", "at"}
        self.refusals = []  # refused bodies
        self.refuse = 0
        self.lock = threading.Lock()
        self.port = free_port()
        self.server = None
        self.up()

    # ---- the vendor's rules ----

    def _check(self, query, body):
        """(accepted, answer) for one POST."""
        if self.kind == "dingtalk":
            if self.secret:
                ts = query.get("timestamp", [""])[0]
                expected = base64.b64encode(hmac.new(
                    self.secret.encode(), f"{ts}\n{self.secret}".encode(),
                    hashlib.sha256).digest()).decode()
                sign = query.get("sign", [""])[0]
                fresh = ts.isdigit() and abs(time.time() * 1000 - int(ts)) < 3600 * 1000
                if not fresh or not hmac.compare_digest(sign, expected):
                    return False, {"errcode": 310000, "errmsg": "sign not match"}
            md = body.get("markdown") or {}
            if body.get("msgtype") != "markdown" or not md.get("title") or not md.get("text"):
                return False, {"errcode": 40035, "errmsg": "missing parameter"}
            return True, {"errcode": 0, "errmsg": "ok"}
        if self.kind == "wecom":
            content = (body.get("markdown") or {}).get("content")
            if body.get("msgtype") != "markdown" or not content:
                return False, {"errcode": 40008, "errmsg": "invalid message type"}
            if len(content.encode()) > 4096:
                return False, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
            return True, {"errcode": 0, "errmsg": "ok"}
        # feishu
        if self.secret:
            ts = body.get("timestamp", "")
            expected = base64.b64encode(hmac.new(
                f"{ts}\n{self.secret}".encode(), b"", hashlib.sha256).digest()).decode()
            fresh = isinstance(ts, str) and ts.isdigit() and abs(time.time() - int(ts)) < 3600
            if not fresh or not hmac.compare_digest(body.get("sign", ""), expected):
                return False, {"code": 19021, "msg": "sign match fail or timestamp is not "
                                                     "within one hour from current time"}
        if body.get("msg_type") != "text" or not (body.get("content") or {}).get("text"):
            return False, {"code": 9499, "msg": "Bad Request"}
        return True, {"code": 0, "msg": "success", "data": {}}

    @staticmethod
    def text_of(body):
        if "markdown" in body:
            return body["markdown"].get("text") or body["markdown"].get("content")
        return body["content"]["text"]

    # ---- the server ----

    def up(self):
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                parsed = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parsed.query)
                try:
                    body = json.loads(raw)
                    ok, answer = robot._check(query, body)
                except ValueError:
                    body, ok, answer = None, False, {"errcode": 40001, "errmsg": "invalid json"}
                with robot.lock:
                    if ok and robot.refuse > 0:
                        robot.refuse -= 1
                        ok, answer = False, ({"code": 19024, "msg": "Key Words Not Found"}
                                             if robot.kind == "feishu" else
                                             {"errcode": 310000,
                                              "errmsg": "keywords not in content"})
                    entry = {"body": body, "raw": raw, "query": query, "path": parsed.path,
                             "headers": dict(self.headers.items()), "at": time.time()}
                    if ok:
                        entry["text"] = robot.text_of(body)
                        entry["title"] = (body.get("markdown") or {}).get("title")
                        robot.messages.append(entry)
                    else:
                        robot.refusals.append(entry)
                out = json.dumps(answer).encode()
                self.send_response(200)  # robots refuse in the body, with 200
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self):
        self.server.shutdown()
        self.server.server_close()

    def stop(self):
        if self.server is not None:
            self.down()
            self.server = None

    @property
    def url(self):
        if self.kind == "dingtalk":
            return f"http://127.0.0.1:{self.port}/robot/send?access_token=tok{self.port}"
        if self.kind == "wecom":
            return f"http://127.0.0.1:{self.port}/cgi-bin/webhook/send?key=key{self.port}"
        return f"http://127.0.0.1:{self.port}/open-apis/bot/v2/hook/hook{self.port}"

    def texts(self):
        with self.lock:
            return [m["text"] for m in self.messages]


class Mailbox:
    """An SMTP server (aiosmtpd) that keeps every message it is given."""

    def __init__(self):
        self.messages = []  # {"from", "to", "message": email.message.EmailMessage, "raw"}
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                box.messages.append({
                    "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                    "raw": envelope.content,
                    "message": email.message_from_bytes(envelope.content,
                                                        policy=email.policy.default)})
                return "250 OK queued"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        self.controller.stop()


def robot_config(mailbox=None, **extra):
    """The [notify], [console] (and [smtp]) settings of the channel tests:
    retries in tenths of a second instead of minutes."""
    lines = ["[notify]", "retry_initial_ms = 100", "retry_max_ms = 400", "timeout_ms = 2000"]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    lines += ["[console]", "public_url = https://kj.example.gov.cn/"]
    if mailbox is not None:
        lines += ["[smtp]", "host = 127.0.0.1", f"port = {mailbox.port}", "starttls = false",
                  "from = incubatord@kj.example.gov.cn"]
    return "\n".join(lines)
