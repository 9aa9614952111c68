"""HTTP spoken by hand over a socket, for the tests that send what no HTTP
library would (malformed heads, HTTP/0.9, trickled bytes) and check the
answer byte for byte: that it is well-formed HTTP/1.x, and how it is framed.
"""

import json
import re
import socket
import time

STATUS_LINE = re.compile(rb"^HTTP/1\.[01] ([1-5][0-9][0-9]) [^\r\n]*$")
HEADER_LINE = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$")


class Malformed(AssertionError):
    """The daemon's answer is not well-formed HTTP/1.x."""


class Answer:
    def __init__(self, status, headers, body, raw_head):
        self.status = status
        self.headers = headers  # [(name, value)], in order
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Answer {self.status} {self.headers} {self.body[:200]!r}>"


def connect(port, host="127.0.0.1", source=None, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect((host, port))
    return s


class Reader:
    """Reads answers off one connection, keeping what follows an answer."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False

    def _more(self):
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
        self.buf += data
        return bool(data)

    def answer(self, head_request=False):
        """The next answer; None when the connection closed before one began.

        Raises Malformed for anything that is not HTTP/1.x with a framing
        a client can follow (Content-Length, chunked, or close)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._more():
                if self.buf:
                    raise Malformed(f"connection closed inside a head: {self.buf[:300]!r}")
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        m = STATUS_LINE.match(lines[0])
        if not m:
            raise Malformed(f"bad status line: {lines[0][:200]!r}")
        status = int(m.group(1))
        headers = []
        for line in lines[1:]:
            h = HEADER_LINE.match(line)
            if not h:
                raise Malformed(f"bad header line {line[:200]!r} in {head[:500]!r}")
            headers.append((h.group(1).decode(), h.group(2).decode("latin-1")))
        a = Answer(status, headers, b"", head)
        lengths = {v for k, v in headers if k.lower() == "content-length"}
        te = a.header("Transfer-Encoding")
        if len(lengths) > 1:
            raise Malformed(f"two Content-Lengths: {head!r}")
        if head_request or status in (204, 304) or status < 200:
            return a
        if te is not None:
            if te.lower() != "chunked":
                raise Malformed(f"Transfer-Encoding {te}")
            a.body = self._chunked()
        elif lengths:
            n = lengths.pop()
            if not n.isdigit():
                raise Malformed(f"Content-Length {n!r}")
            n = int(n)
            while len(self.buf) < n:
                if not self._more():
                    raise Malformed(f"closed after {len(self.buf)} of {n} body bytes")
            a.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            # Delimited by the close: only with Connection: close, or HTTP/1.0's default.
            if ((a.header("Connection") or "").lower() != "close"
                    and not lines[0].startswith(b"HTTP/1.0 ")):
                raise Malformed(f"no Content-Length and no close: {head!r}")
            while self._more():
                pass
            a.body, self.buf = self.buf, b""
        return a

    def _chunked(self):
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                if not self._more():
                    raise Malformed("closed inside a chunk size")
            line, self.buf = self.buf.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n" not in self.buf:
                    if not self._more():
                        raise Malformed("closed inside the trailer")
                _, self.buf = self.buf.split(b"\r\n", 1)
                return body
            while len(self.buf) < size + 2:
                if not self._more():
                    raise Malformed("closed inside a chunk")
            body += self.buf[:size]
            self.buf = self.buf[size + 2:]

    def closed_soon(self, timeout=2.0):
        """Whether the peer closes the connection within timeout (no more bytes)."""
        self.sock.settimeout(timeout)
        try:
            while self._more():
                pass
            return True
        except socket.timeout:
            return False


def exchange(port, data, head_request=False, timeout=10, source=None):
    """Sends data on a new connection; returns (answer or None, reader)."""
    s = connect(port, source=source, timeout=timeout)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = Reader(s)
    return r.answer(head_request=head_request), r


def is_problem(a):
    """Whether an answer is problem+json with the status it carries."""
    if (a.header("Content-Type") or "").split(";")[0] != "application/problem+json":
        return False
    try:
        doc = a.json()
    except ValueError:
        return False
    return doc.get("status") == a.status and isinstance(doc.get("type"), str)


def trickle(sock, data, interval):
    """Sends data one byte per interval (seconds); stops quietly when the peer closes."""
    for i in range(len(data)):
        try:
            sock.send(data[i:i + 1])
        except OSError:
            return i
        time.sleep(interval)
    return len(data)
