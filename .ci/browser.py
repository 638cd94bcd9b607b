"""A tiny Chromium DevTools Protocol client over --remote-debugging-pipe, standard library only.

Chromium reads commands on fd 3 and writes replies and events on fd 4, each message one JSON
object followed by a NUL byte. One Browser is one headless Chromium process with a fresh profile
folder; `page()` opens a tab and returns a Page bound to its flat session.

    with Browser() as b:
        page = b.page()
        page.goto(Path("form.html").as_uri())
        page.eval("document.title")
"""
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars")
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


class BrowserError(RuntimeError):
    """A CDP error reply, a time-out, or a browser that died."""


def find_chromium():
    """The browser to run: $CHROMIUM if set (empty: none), else the first installed candidate."""
    if "CHROMIUM" in os.environ:
        path = os.environ["CHROMIUM"]
        return path if path and os.access(path, os.X_OK) else None
    return next((p for p in CANDIDATES if os.access(p, os.X_OK)), None)


class Browser:
    """One headless Chromium process driven over its DevTools pipe."""

    def __init__(self, executable=None, timeout=20):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError("no Chromium found (set CHROMIUM to its path)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="cdp-profile-")
        self.next_id = 0
        self.events = []                     # (sessionId, method, params), in arrival order
        self.buffer = b""
        cmd_r, cmd_w = os.pipe()             # we write commands; Chromium reads them on fd 3
        res_r, res_w = os.pipe()             # Chromium writes on fd 4; we read
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (cmd_r, res_w)]
        for fd in (cmd_r, res_w):
            os.close(fd)

        def wire():                          # in the child, before exec: put the pipe ends on 3 and 4
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)
        self.proc = subprocess.Popen(
            [self.executable, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire, pass_fds=(3, 4), start_new_session=True)
        for fd in high:
            os.close(fd)
        self.write_fd, self.read_fd = cmd_w, res_r
        try:
            self.version = self.send("Browser.getVersion")
        except BaseException:
            self.close()
            raise

    # -- the wire

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("timed out waiting for Chromium")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed its pipe (exit code {self.proc.poll()})")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=None, timeout=None):
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.write_fd, data):]
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')} {reply['error'].get('data', '')}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append((reply.get("sessionId"), reply["method"], reply.get("params", {})))

    def wait_for(self, predicate, timeout=None):
        """The first kept or arriving event (session, method, params) for which predicate holds;
        it is removed from the list."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for k, event in enumerate(self.events):
                if predicate(*event):
                    return self.events.pop(k)
            reply = self._read_message(deadline)
            if "method" in reply:
                self.events.append((reply.get("sessionId"), reply["method"], reply.get("params", {})))

    # -- pages

    def page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, target, session)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except (BrowserError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for fd in (self.write_fd, self.read_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.write_fd = self.read_fd = -1
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Page:
    """One tab: navigation, evaluation, input, and the errors it reported."""

    def __init__(self, browser, target, session):
        self.browser, self.target, self.session = browser, target, session
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def send(self, method, params=None, timeout=None):
        return self.browser.send(method, params, self.session, timeout)

    def goto(self, url, timeout=None):
        """Load `url` and wait for its load event; forget the errors of the page before."""
        self.browser.events = [e for e in self.browser.events if e[0] != self.session]
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.browser.wait_for(lambda s, m, p: s == self.session and m == "Page.loadEventFired", timeout)

    def errors(self):
        """Console errors, uncaught exceptions and error log entries reported so far."""
        out = []
        for session, method, params in self.browser.events:
            if session != self.session:
                continue
            if method == "Runtime.exceptionThrown":
                d = params["exceptionDetails"]
                out.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append("log: " + params["entry"].get("text", ""))
        return out

    def eval(self, expression, timeout=None):
        """The value of a JavaScript expression (promises awaited); a thrown error raises."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True, "userGesture": True}, timeout)
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            raise BrowserError(f"{expression[:80]!r}: {d.get('exception', {}).get('description', d.get('text'))}")
        return result["result"].get("value")

    def call(self, function, *args, timeout=None):
        """Call `function` (JavaScript source) with JSON arguments; return its value."""
        return self.eval(f"({function})(...{json.dumps(list(args))})", timeout)

    def object_id(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression})
        if "objectId" not in result["result"]:
            raise BrowserError(f"{expression!r} is not an object")
        return result["result"]["objectId"]

    def focus(self, selector):
        self.call("s => { const e = document.querySelector(s); e.scrollIntoView(); e.focus(); "
                  "return document.activeElement === e; }", selector)

    def type(self, selector, text):
        """Focus the element and type `text` as a keyboard would (input events included)."""
        self.focus(selector)
        self.send("Input.insertText", {"text": text})

    def key(self, key, code=None, key_code=0, modifiers=0):
        """Press and release one key (for example 'Tab', 'ArrowDown', ' ')."""
        base = {"key": key, "code": code or key, "windowsVirtualKeyCode": key_code,
                "nativeVirtualKeyCode": key_code, "modifiers": modifiers}
        self.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", **base})
        if len(key) == 1:
            self.send("Input.dispatchKeyEvent", {"type": "char", "text": key, **base})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", **base})

    def set_files(self, selector, paths):
        """Choose files in an <input type=file> (a 'change' event follows)."""
        self.send("DOM.setFileInputFiles", {"files": [str(p) for p in paths],
                                            "objectId": self.object_id(f"document.querySelector({json.dumps(selector)})")})

    def pdf(self, **options):
        import base64
        return base64.b64decode(self.send("Page.printToPDF", {"preferCSSPageSize": True, **options},
                                          timeout=60)["data"])

    def close(self):
        self.browser.send("Target.closeTarget", {"targetId": self.target})
