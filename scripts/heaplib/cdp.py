"""A small Chrome DevTools Protocol client, standard library only, for the
tests of scripts/heap-timeline: start a headless Chromium, open a page, run
JavaScript in it, press keys, take a screenshot, read the PNG.

    with cdp.Browser(limit=60) as b:           # a watchdog kills it after 60 s
        page = b.open("file:///tmp/page.html")
        page.wait_for("document.body.dataset.ready === '1'", 20)
        n = page.evaluate("document.querySelectorAll('[data-event]').length")
        page.key("ArrowRight")
        png = page.screenshot()
    width, height, rows, bpp = cdp.decode_png(png)   # rows of RGB(A) bytes

Chromium runs as `--headless --remote-debugging-port=0` with a temporary
profile; it writes the port it chose to DevToolsActivePort there, and the
browser's WebSocket is spoken here (RFC 6455: the handshake, masked client
frames, server frames of any length, ping, close).  Pages are reached
through Target.attachToTarget's flat sessions.  Every read has a timeout,
and the browser (its whole process group: it was started in a new session)
is killed by the watchdog, by close() and at exit.
"""

import atexit
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zlib


class CDPError(Exception):
    pass


def find_chromium():
    """The Chromium binary to run: $CHROMIUM if set (None if that is not
    an executable: CHROMIUM=none runs no browser), else Debian's, else one on
    the PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for path in ("/usr/lib/chromium/chromium",):
        if os.access(path, os.X_OK):
            return path
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return None


# ---------------------------------------------------------------- WebSocket

class WebSocket:
    def __init__(self, host, port, path, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key))
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            part = self.sock.recv(4096)
            if not part:
                raise CDPError("the browser closed the connection during the WebSocket handshake")
            head += part
        head, _, self.buf = head.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise CDPError("WebSocket handshake refused: %s" % status.decode("latin-1"))

    def send_text(self, text):
        data = text.encode()
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data)) if n < 4096 else _mask(data, mask)
        self.sock.sendall(head + mask + masked)

    def _read(self, n):
        while len(self.buf) < n:
            part = self.sock.recv(max(65536, n - len(self.buf)))
            if not part:
                raise CDPError("the browser closed the connection")
            self.buf += part
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next text message (pings answered, fragments joined)."""
        parts = []
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = _mask(data, mask)
            if op == 0x8:
                raise CDPError("the browser closed the WebSocket")
            if op == 0x9:
                self._send_frame(0xA, data)
                continue
            if op == 0xA:
                continue
            parts.append(data)
            if b0 & 0x80:
                return b"".join(parts).decode("utf-8", "replace")

    def _send_frame(self, op, data):
        mask = os.urandom(4)
        self.sock.sendall(struct.pack("!BB", 0x80 | op, 0x80 | len(data)) + mask + _mask(data, mask))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _mask(data, mask):
    n = len(data)
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(m, "little")).to_bytes(n, "little")


# ------------------------------------------------------------------ browser

class Browser:
    """A headless Chromium driven over its DevTools WebSocket."""

    def __init__(self, binary=None, limit=60.0, width=1280, height=900, log=None):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise CDPError("no Chromium found (Debian: apt-get install chromium)")
        self.width, self.height = width, height
        self.dir = tempfile.mkdtemp(prefix="heap-timeline-chromium.")
        self.log_path = log or os.path.join(self.dir, "chromium.log")
        self.proc = None
        self.ws = None
        self.next_id = 0
        self.events = []
        self.killed_by_watchdog = False
        args = [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--remote-debugging-port=0", "--user-data-dir=" + self.dir, "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-sync", "--disable-component-update", "--mute-audio", "--hide-scrollbars",
                "--window-size=%d,%d" % (width, height), "about:blank"]
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
                                     start_new_session=True)
        self.watchdog = threading.Timer(limit, self._watchdog)
        self.watchdog.daemon = True
        self.watchdog.start()
        atexit.register(self.close)
        try:
            port, path = self._active_port(20.0)
            self.ws = WebSocket("127.0.0.1", port, path, timeout=20.0)
        except Exception:
            self.close()
            raise

    def _watchdog(self):
        self.killed_by_watchdog = True
        self._kill()

    def _kill(self):
        """SIGKILL to the browser's process group (its session, started
        here), which also ends helpers that outlive the browser itself."""
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def _active_port(self, timeout):
        f = os.path.join(self.dir, "DevToolsActivePort")
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise CDPError("Chromium exited with status %s before it listened: %s"
                               % (self.proc.returncode, self.log_tail()))
            try:
                with open(f) as fh:
                    lines = fh.read().split("\n")
                if len(lines) >= 2 and lines[0].strip().isdigit() and lines[1].startswith("/"):
                    return int(lines[0]), lines[1].strip()
            except OSError:
                pass
            time.sleep(0.1)
        raise CDPError("Chromium wrote no DevToolsActivePort in %g s: %s" % (timeout, self.log_tail()))

    def log_tail(self, n=8):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return " | ".join(lines[-n:]) or "(no output)"
        except OSError:
            return "(no log)"

    def call(self, method, params=None, session=None, timeout=20.0):
        if self.ws is None:
            raise CDPError("the browser is closed")
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send_text(json.dumps(msg))
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                raise CDPError("%s: no answer in %g s" % (method, timeout))
            self.ws.sock.settimeout(left)
            try:
                reply = json.loads(self.ws.recv())
            except socket.timeout:
                raise CDPError("%s: no answer in %g s" % (method, timeout))
            except OSError as e:
                raise CDPError("%s: %s%s" % (method, e, " (killed by the watchdog)"
                                             if self.killed_by_watchdog else ""))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise CDPError("%s: %s" % (method, reply["error"].get("message", reply["error"])))
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def open(self, url, timeout=30.0):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False})
        page.navigate(url, timeout)
        return page

    def close(self):
        if self.ws is not None:
            try:
                self.ws.sock.settimeout(2)
                self.next_id += 1
                self.ws.send_text(json.dumps({"id": self.next_id, "method": "Browser.close"}))
            except Exception:
                pass
            self.ws.close()
            self.ws = None
        if self.proc is not None:
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                pass
            self._kill()
            self.proc = None
        self.watchdog.cancel()
        if not self.logf.closed:
            self.logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


KEYS = {"ArrowLeft": 37, "ArrowUp": 38, "ArrowRight": 39, "ArrowDown": 40, "Home": 36, "End": 35,
        "PageUp": 33, "PageDown": 34, "Enter": 13, "Escape": 27}


class Page:
    def __init__(self, browser, session):
        self.b, self.session = browser, session

    def call(self, method, params=None, timeout=20.0):
        return self.b.call(method, params, self.session, timeout)

    def navigate(self, url, timeout=30.0):
        self.b.events = [e for e in self.b.events if e.get("sessionId") != self.session]
        res = self.call("Page.navigate", {"url": url}, timeout)
        if res.get("errorText"):
            raise CDPError("cannot open %s: %s" % (url, res["errorText"]))
        self.wait_for("document.readyState === 'complete'", timeout)

    def evaluate(self, expr, timeout=20.0):
        """expr's value (JSON-able values come back as Python values; a
        promise is awaited)."""
        res = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                             "awaitPromise": True, "timeout": int(timeout * 1000)},
                        timeout + 5)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            raise CDPError("JavaScript: %s\n  in: %s" % (text, expr[:200]))
        return res.get("result", {}).get("value")

    def wait_for(self, expr, timeout=20.0, every=0.1):
        end = time.time() + timeout
        while True:
            if self.evaluate("!!(%s)" % expr):
                return True
            if time.time() > end:
                raise CDPError("waited %g s for: %s" % (timeout, expr))
            time.sleep(every)

    def key(self, key, shift=False):
        code = KEYS.get(key, ord(key.upper()[0]) if len(key) == 1 else 0)
        base = {"key": key, "code": key if key in KEYS else "Key" + key.upper(),
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code,
                "modifiers": 8 if shift else 0}
        down = dict(base, type="rawKeyDown" if key in KEYS else "keyDown")
        if key not in KEYS:
            down["text"] = key
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", dict(base, type="keyUp"))

    def click(self, x, y):
        for t in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": t, "x": x, "y": y, "button": "left",
                                                   "clickCount": 1})

    def screenshot(self):
        res = self.call("Page.captureScreenshot", {"format": "png"}, 30.0)
        return base64.b64decode(res["data"])

    def errors(self):
        """Uncaught exceptions and console errors of the page so far."""
        out = []
        for e in self.b.events:
            if e.get("sessionId") != self.session:
                continue
            if e["method"] == "Runtime.exceptionThrown":
                d = e["params"]["exceptionDetails"]
                out.append(d.get("exception", {}).get("description") or d.get("text"))
            elif e["method"] == "Runtime.consoleAPICalled" and e["params"].get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description", "")))
                                    for a in e["params"].get("args", [])))
        return out


# ---------------------------------------------------------------------- PNG

def decode_png(data):
    """(width, height, rows, bpp): rows of bytes, bpp = 3 (RGB) or 4 (RGBA) per pixel.
    8-bit truecolour, not interlaced: what Chromium's screenshots are."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, w = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError("PNG of depth %d, colour type %d, interlace %d: not read here"
                                 % (depth, ctype, interlace))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    if w is None:
        raise ValueError("PNG without IHDR")
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif f == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def colours(png):
    """{(r, g, b): pixel count} of a PNG."""
    w, h, rows, bpp = decode_png(png)
    count = {}
    for line in rows:
        for i in range(0, len(line), bpp):
            px = line[i:i + 3]
            count[px] = count.get(px, 0) + 1
    return {tuple(k): v for k, v in count.items()}
