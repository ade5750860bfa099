"""Live call benchmark (issue 4): set-up time and glass-to-glass latency,
the EVR officer app against Chromium calling Chromium in the same run.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/call.py              # 5 runs, 1280x720
    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/call.py --runs 9 --sizes 640x480,1280x720

Officer = the app's ``EmbeddedCalls`` (call engine + loopback rendezvous) with
a real ``CallScreen`` painting offscreen; victim = ``resources/web/join.html``
in headless Debian Chromium (phone emulation). Reference = a second Chromium
page acting as the officer (as ``tests/e2e/test_victim_page.py`` does) through
a second instance of the same rendezvous code (the embedded one's officer
socket belongs to the engine).

A. Set-up: ``page.goto(link)`` to the first remote frame at the officer (app:
   the first ``VideoView.painted`` of the call window; reference: the officer
   page's first ``requestVideoFrameCallback``). The consent and permission
   clicks are inside the clock; the officer starts the call as soon as the
   victim is waiting.
B. Glass-to-glass: the sender draws the wall-clock ms as the block strip of
   ``evr_desktop/capture/synthetic.py``; the receiver reads it back from each
   new frame (app: the QImage painted in the call window, ``read_timestamp``;
   browser: ``requestVideoFrameCallback`` + canvas ``getImageData``, the same
   decoder in JavaScript) and subtracts it from the wall clock at receipt.
   Frames received 1-3 s after the first one; per run the median, then the
   median / min / max of those over runs.
C. GUI responsiveness: a 5 ms precise QTimer on the GUI thread records how
   late each tick fires (a stall of the Qt event loop), first with the call
   window idle for up to 10 s (the reference: the same process and event
   loop with no call), then during an app call of ``--stall-seconds``
   (default 60) at ``--stall-size`` both ways (default 640x480, the app's
   camera default; 1280x720 is the stress case: both ends' codecs at 720p
   on this machine's 2 cores). Goal: the longest stall under 50 ms.

D. In process vs media process (``--matrix``, issue 9): the stall meter of C
   (and A/B at the stall size) for the engine in the GUI's process
   (``--engine in-process``, ``EmbeddedCalls``) and in the media process
   (``--engine media``, the app's default: ``MediaCalls``), each with the
   victim's Chromium confined to one core (``taskset``, so it stands in for the
   phone instead of competing like a second app on the laptop) and again with
   a co-located CPU load (one busy process pinned to each core); each
   configuration a run of this script in a process of its own. Also the CPU
   per second of call of the officer's side (GUI process, plus the media
   process when there is one; Chromium not counted). ``--rounds N`` runs the
   four configurations N times interleaved; the table gives each cell's
   median over the rounds with its range, then the media process against in
   process as ratios taken round by round (median and range).

Simplified: Chromium's fake camera carries no timestamp, so on every Chromium
sender the video track is replaced (an init script wrapping ``getUserMedia``)
by a ``canvas.captureStream`` drawing a moving pattern and the strip at the
requested size; audio is still Chromium's fake microphone. Prints a table,
asserts nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import queue  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import uuid  # noqa: E402
from datetime import date, datetime, timedelta, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from _report import bootstrap_median, stats, table  # noqa: E402  bench/ is sys.path[0] when run as a script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

WEB_ROOT = ROOT / "resources" / "web"
REF_SECRET = "bench-reference-officer-secret-0123456789"
WAIT_S = 20.0
WINDOW = (1000.0, 3000.0)  # ms after the first remote frame: frames sampled for latency
FPS = 30
TICK_MS = 5  # the stall meter's timer

from tests.e2e.browser import CHROMIUM_FLAGS  # noqa: E402  one list of flags (RECIPES.md)

# -- JavaScript: the timestamp strip (synthetic.py's layout) both ways ----------------

STAMP_JS = r"""
(() => {
  const W = %(w)d, H = %(h)d, FPS = %(fps)d, COLS = 26, ROWS = 2, ROWF = 24;
  const CRC = [];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) ? (0xEDB88320 ^ (c >>> 1)) : (c >>> 1);
    CRC.push(c >>> 0);
  }
  function check(ms) {
    let crc = 0xFFFFFFFF;
    for (let i = 5; i >= 0; i--) {
      const b = Math.floor(ms / Math.pow(2, 8 * i)) %% 256;
      crc = CRC[(crc ^ b) & 0xFF] ^ (crc >>> 8);
    }
    return ((crc ^ 0xFFFFFFFF) >>> 0) & 0x3F;
  }
  function bits(ms) {
    const out = [1, 0];
    for (let i = 43; i >= 0; i--) out.push(Math.floor(ms / Math.pow(2, i)) %% 2);
    const ck = check(ms);
    for (let i = 5; i >= 0; i--) out.push((ck >> i) & 1);
    return out;
  }
  function draw(ctx, n) {
    const t = n / FPS;
    const g = ctx.createLinearGradient(0, 0, W, H);
    g.addColorStop(0, 'hsl(' + ((n * 3) %% 360) + ',60%%,40%%)');
    g.addColorStop(1, 'hsl(' + ((n * 3 + 180) %% 360) + ',60%%,60%%)');
    ctx.fillStyle = g; ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = '#fc3';
    const bw = W / 6, x = (Math.sin(t) * 0.5 + 0.5) * (W - bw), y = (Math.cos(t * 1.3) * 0.5 + 0.5) * (H - bw);
    ctx.fillRect(x, y, bw, bw);
    ctx.fillStyle = '#000'; ctx.font = (H / 12) + 'px sans-serif'; ctx.fillText('frame ' + n, W / 20, H * 0.9);
    const ms = Date.now(), b = bits(ms), rowH = H / ROWF;
    for (let i = 0; i < b.length; i++) {
      const r = Math.floor(i / COLS), c = i %% COLS;
      const x0 = Math.round(c * W / COLS), x1 = Math.round((c + 1) * W / COLS);
      const y0 = Math.round(r * rowH), y1 = Math.round((r + 1) * rowH);
      ctx.fillStyle = b[i] ? '#fff' : '#000'; ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
    }
  }
  function stampedTrack() {
    const canvas = document.createElement('canvas');
    canvas.width = W; canvas.height = H;
    const ctx = canvas.getContext('2d');
    let n = 0;
    draw(ctx, n++);
    setInterval(() => draw(ctx, n++), 1000 / FPS);
    return canvas.captureStream(FPS).getVideoTracks()[0];
  }
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia) {
    const orig = md.getUserMedia.bind(md);
    md.getUserMedia = async (c) => {
      c = c || {};
      if (!c.video) return orig(c);
      const s = c.audio ? await orig({audio: c.audio, video: false}) : new MediaStream();
      s.addTrack(stampedTrack());
      return s;
    };
  }
  // Reading the strip back: the middle half of each block, as read_timestamp does.
  const CW = 520;
  function read(video, cv) {
    const vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) return null;
    const CH = Math.round(CW * vh / vw);
    if (cv.width !== CW || cv.height !== CH) { cv.width = CW; cv.height = CH; }
    const ctx = cv.getContext('2d', {willReadFrequently: true});
    ctx.drawImage(video, 0, 0, CW, CH);
    const rowH = CH / ROWF, colW = CW / COLS;
    const rows = Math.min(CH, Math.ceil(rowH * ROWS) + 2);
    const d = ctx.getImageData(0, 0, CW, rows).data;
    const got = [];
    for (let i = 0; i < ROWS * COLS; i++) {
      const r = Math.floor(i / COLS), c = i %% COLS;
      const y0 = Math.floor(r * rowH + rowH / 4), y1 = Math.min(rows, Math.floor(r * rowH + rowH * 3 / 4) + 1);
      const x0 = Math.floor(c * colW + colW / 4), x1 = Math.floor(c * colW + colW * 3 / 4) + 1;
      let sum = 0, cnt = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
        const k = (y * CW + x) * 4; sum += (d[k] + d[k + 1] + d[k + 2]) / 3; cnt++;
      }
      got.push(sum / cnt >= 128 ? 1 : 0);
    }
    if (got[0] !== 1 || got[1] !== 0) return null;
    let ms = 0;
    for (let i = 2; i < 46; i++) ms = ms * 2 + got[i];
    let ck = 0;
    for (let i = 46; i < 52; i++) ck = ck * 2 + got[i];
    return ck === check(ms) ? ms : null;
  }
  // Every new frame of a <video>: the first one's wall-clock time, and
  // (receipt time, latency) for each new timestamp read back.
  window.__bench = {first: null, samples: [], width: 0, height: 0, sampling: false};
  window.__benchWatch = (video, decode) => {
    const cv = document.createElement('canvas');
    let last = null;
    const tick = (now, meta) => {
      const at = Date.now();
      const B = window.__bench;
      if (B.first === null) B.first = at;
      B.width = meta.width; B.height = meta.height;
      if (B.sampling) {
        const ms = read(video, cv);
        if (ms !== null && ms !== last) { last = ms; B.samples.push([at, at - ms]); }
      }
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  };
})();
"""

# The reference officer: a Chromium page that offers as the app's engine does
# (candidates in the SDP, data channel "evr"), holding its resolution.
REF_OFFER = """async ([w, h]) => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: w, height: h}});
  const pc = new RTCPeerConnection({iceServers: []});
  window.pc = pc;
  pc.createDataChannel('evr', {ordered: true});
  pc.ontrack = (ev) => {
    if (ev.track.kind !== 'video') return;
    const v = document.createElement('video');
    v.muted = true; v.playsInline = true; v.autoplay = true;
    v.srcObject = ev.streams[0] || new MediaStream([ev.track]);
    document.body.appendChild(v);
    window.__benchWatch(v);
    v.play();
  };
  stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  for (const s of pc.getSenders()) {
    if (!s.track || s.track.kind !== 'video') continue;
    const p = s.getParameters(); p.degradationPreference = 'maintain-resolution';
    try { await s.setParameters(p); } catch (e) {}
  }
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
      setTimeout(resolve, 2000);
    });
  }
  return pc.localDescription.sdp;
}"""

VICTIM_WATCH = """() => {
  const v = document.getElementById('remote-video');
  window.__benchWatch(v);
  window.__bench.sampling = true;
}"""


# -- helpers ------------------------------------------------------------------------------


def qimage_rgb(img: Any) -> np.ndarray:
    """A QImage as VideoView holds it (RGB32 for the victim's frames, RGB888
    otherwise) as an (h, w, 3) RGB array view."""
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=h * bpl)
    if img.depth() == 32:  # bytes B, G, R, A on little-endian
        return buf.reshape(h, bpl)[:, : w * 4].reshape(h, w, 4)[:, :, 2::-1]
    return buf.reshape(h, bpl)[:, : w * 3].reshape(h, w, 3)


def window_median(samples: list[tuple[float, float]], first: float) -> tuple[float | None, int]:
    vals = [lat for at, lat in samples if first + WINDOW[0] <= at <= first + WINDOW[1]]
    return (statistics.median(vals) if vals else None), len(vals)


def machine_info(browser_version: str) -> str:
    import aiortc
    import PySide6

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, PySide6 {PySide6.__version__}, "
            f"aiortc {aiortc.__version__}, Chromium {browser_version}")


class RefRendezvous:
    """A second instance of the app's rendezvous (same code, web root and
    protocol) with an officer socket this script holds, on its own loop."""

    def __init__(self) -> None:
        import aiohttp

        from evr_desktop.rendezvous.server import create_app, start
        from evr_desktop.rendezvous.tokens import TokenRegistry

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ref-rendezvous", daemon=True)
        self.thread.start()
        self.registry = TokenRegistry()
        self.inbox: queue.Queue[dict] = queue.Queue()

        async def go() -> Any:
            runner, port = await start(create_app(self.registry, REF_SECRET, web_root=WEB_ROOT), "127.0.0.1", 0)
            http = aiohttp.ClientSession()
            ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws/officer",
                                       headers={"Authorization": f"Bearer {REF_SECRET}"})

            async def reader() -> None:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        self.inbox.put(json.loads(msg.data))

            self.loop.create_task(reader())
            return runner, port, http, ws

        self.runner, port, self.http, self.ws = self.run(go())
        self.base = f"http://127.0.0.1:{port}"

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def link(self, appt: str) -> str:
        now = datetime.now(timezone.utc)
        token, _ = self.registry.issue(appt, now, now + timedelta(minutes=45), now)
        return f"{self.base}/j/{token}"

    def send(self, msg: dict) -> None:
        self.run(self.ws.send_json(msg))

    def recv(self, kind: str, appt: str, on_other: Any = None, timeout: float = WAIT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            if msg.get("type") == kind and msg.get("appointment") == appt:
                return msg
            if on_other is not None:
                on_other(msg)

    def close(self) -> None:
        async def go() -> None:
            await self.ws.close()
            await self.http.close()
            await self.runner.cleanup()

        try:
            self.run(go())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


# -- the officer's side, shared with bench/recording.py ----------------------------------


def new_victim(browser: Any, phone: dict, stamp: str) -> tuple[Any, Any]:
    """A fresh phone-emulated Chromium context whose camera is the stamped canvas."""
    ctx = browser.new_context(**phone)
    ctx.add_init_script(stamp)
    return ctx, ctx.new_page()


def launch_chromium(p: Any, cores: str, tmp: str) -> tuple[Any, dict]:
    """Debian's headless Chromium (the flags of tests/e2e/browser.py, its temporary files in
    ``tmp``) and the Pixel 7 emulation the victim's contexts use."""
    browser = p.chromium.launch(executable_path=chromium_path(cores, tmp), headless=True,
                                args=list(CHROMIUM_FLAGS), env={**os.environ, "TMPDIR": tmp})
    phone = dict(p.devices["Pixel 7"])
    phone.pop("default_browser_type", None)
    return browser, phone


class Officer:
    """The officer's side of an app call as the benchmarks drive it: the app's
    engine (``media``: ``MediaCalls``, its own process, as the app runs it;
    ``in-process``: ``EmbeddedCalls``) with a real ``CallScreen`` painting
    offscreen, the stall meter of C on the GUI thread, and the time stamp read
    back from every victim frame painted (``st["samples"]``: wall-clock ms at
    paint, latency ms).

    Made on the main thread, whose Qt event loop :meth:`run` turns while a
    driver thread (Playwright's sync API must not share the GUI thread) calls
    the rest; everything that touches Qt goes through :meth:`on_gui`.
    ``on_call_start(appointment)``, if set, runs on the GUI thread when the
    victim is waiting, just before the call starts: where the app sends
    ``record_start``. bench/recording.py imports this to measure the same
    calls with recording off and on."""

    def __init__(self, engine: str, size: tuple[int, int]) -> None:
        from PySide6.QtCore import QObject, Qt, QTimer, Signal, qInstallMessageHandler
        from PySide6.QtWidgets import QApplication

        from evr_desktop.call import events as ev
        from evr_desktop.capture.synthetic import read_timestamp
        from evr_desktop.ui.call_screen import CallScreen

        class Bridge(QObject):
            call = Signal(object)  # a callable, run on the GUI thread
            event = Signal(object)  # an engine event

        class StallMeter(QObject):
            """A precise TICK_MS timer on the GUI thread; each tick's lateness
            (time since the previous tick minus TICK_MS) is how long the event loop
            could not run anything: a stall the officer would feel."""

            def __init__(self) -> None:
                super().__init__()
                self.timer = QTimer(self)
                self.timer.setTimerType(Qt.TimerType.PreciseTimer)
                self.timer.setInterval(TICK_MS)
                self.timer.timeout.connect(self._tick)
                self.late: list[float] = []
                #: Per tick, how long the GUI thread waited in the kernel's run
                #: queue since the previous tick (ms; Linux schedstat): a late tick
                #: that is mostly run-queue wait is the scheduler giving the CPU to
                #: other tasks, not the GUI thread working or waiting on a lock.
                self.queued: list[float] = []
                self._last = 0.0
                self._fd: int | None = None
                self._wait = 0.0

            def _run_queue_ns(self) -> float:
                """NaN where the kernel does not say (not Linux): "unknown", never "none"."""
                if self._fd is None:
                    return float("nan")
                try:
                    return int(os.pread(self._fd, 128, 0).split()[1])
                except (OSError, IndexError, ValueError):
                    return float("nan")

            def start(self) -> None:  # on the GUI thread: the schedstat read is this thread's
                self.late, self.queued = [], []
                if self._fd is None:
                    try:
                        self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
                    except OSError:
                        self._fd = None
                self._wait = self._run_queue_ns()
                self._last = time.perf_counter()
                self.timer.start()

            def stop(self) -> list[float]:
                self.timer.stop()
                return list(self.late)

            def _tick(self) -> None:
                now = time.perf_counter()
                wait = self._run_queue_ns()
                self.late.append(max(0.0, (now - self._last) * 1000 - TICK_MS))
                self.queued.append((wait - self._wait) / 1e6)
                self._last, self._wait = now, wait

        default_handler = None

        def quiet(mode: Any, context: Any, message: str) -> None:
            if "propagateSizeHints" in message:  # the offscreen platform, once per shown window
                return
            if default_handler is not None:
                default_handler(mode, context, message)
            else:
                print(message, file=sys.stderr)

        default_handler = qInstallMessageHandler(quiet)
        self.app = QApplication.instance() or QApplication(sys.argv)
        self.current = {"size": size}
        if engine == "in-process":
            from evr_desktop.call.embedded import EmbeddedCalls
            from evr_desktop.capture.devices import choose_sources

            self.calls: Any = EmbeddedCalls(sources=lambda: choose_sources(
                False, width=self.current["size"][0], height=self.current["size"][1], fps=FPS))
        else:
            from evr_desktop.media.proxy import MediaCalls

            self.calls = MediaCalls(synthetic=(size[0], size[1], FPS))
        self.calls.start()
        self.screen = CallScreen(self.calls.engine)
        self.screen.resize(1280, 800)
        self.screen.show()
        self.bridge = Bridge()
        self.bridge.call.connect(lambda fn: fn())
        self.meter = StallMeter()
        self.on_call_start: Any = None
        # State of the app call in progress (touched on the GUI thread).
        self.st: dict[str, Any] = {"appt": None, "first": None, "samples": [], "last": None, "res": None,
                                   "call_start": None}
        self.first_painted = threading.Event()
        screen, st = self.screen, self.st

        def on_event(e: Any) -> None:  # GUI thread
            if isinstance(e, ev.VictimWaiting) and e.appointment == st["appt"] and screen.appointment is None:
                st["call_start"] = time.time() * 1000
                if self.on_call_start is not None:
                    self.on_call_start(e.appointment)
                screen.start(e.appointment)
            screen.on_event(e)

        self.bridge.event.connect(on_event)
        self.calls.engine.add_listener(lambda e: self.bridge.event.emit(e))

        def on_paint() -> None:  # GUI thread, inside VideoView.paintEvent
            now = time.time() * 1000
            if st["appt"] is None:
                return
            if st["first"] is None:
                st["first"] = now
                self.first_painted.set()
            img = screen.remote._image
            if img is None:
                return
            frame = qimage_rgb(img)
            st["res"] = (frame.shape[1], frame.shape[0])
            ts = read_timestamp(frame[::2, ::2])
            if ts is not None and ts != st["last"]:
                st["last"] = ts
                st["samples"].append((now, now - ts))

        screen.remote.painted.connect(on_paint)

    @property
    def pid(self) -> int | None:
        """The media process's pid (None with the engine in process)."""
        return getattr(self.calls, "pid", None)

    def on_gui(self, fn: Any, timeout: float = 5.0) -> Any:
        """Run ``fn`` on the GUI thread and wait for its result."""
        box: list[Any] = []
        done = threading.Event()
        self.bridge.call.emit(lambda: (box.append(fn()), done.set()))
        if not done.wait(timeout):
            raise RuntimeError("the GUI thread did not answer")
        return box[0]

    def use_size(self, size: tuple) -> None:
        self.current["size"] = size
        if hasattr(self.calls, "set_synthetic"):  # the media process: tell the child
            self.calls.set_synthetic(size[0], size[1], FPS)

    def record_start(self, appointment: str, folder: Path, officer_recipient: str, escrow_recipient: str) -> None:
        """What the app sends before ``start_call`` (GUI thread, blocking: the
        meters are not running then)."""
        engine = self.calls.engine
        if not hasattr(engine, "record_start"):
            raise SystemExit("recording needs --engine media")
        engine.record_start(appointment, str(folder), officer_recipient, escrow_recipient).result(10)

    def start_call(self, browser: Any, phone: dict, stamp: str) -> tuple[Any, Any, float]:
        """Book, open the link in Chromium, consent: returns once the first
        victim frame is painted in the call window."""
        from evr_desktop.domain.appointment import Appointment, OffenceType, VictimDetails

        appt = Appointment(slot=datetime.now().astimezone() + timedelta(minutes=5), urn="99CR0000001",
                           offence=OffenceType.BURGLARY_THEFT,
                           victim=VictimDetails("Bench Invented-Victim", date(1980, 1, 1), "07700 900000"))
        link = self.calls.issue_link(appt)
        done = threading.Event()

        def reset() -> None:
            self.st.update(appt=appt.id, first=None, samples=[], last=None, res=None, call_start=None)
            done.set()

        self.first_painted.clear()
        self.bridge.call.emit(reset)
        done.wait(5)
        ctx, page = new_victim(browser, phone, stamp)
        try:
            t0 = time.time() * 1000
            page.goto(link)
            page.locator("#consent-agree").click()
            page.locator("#perm-start").click()
            if not self.first_painted.wait(WAIT_S):
                raise RuntimeError("no frame painted in the call window")
        except BaseException:
            self.end_call(ctx)
            raise
        return ctx, page, t0

    def end_call(self, ctx: Any) -> None:
        ended = threading.Event()

        def end() -> None:
            self.screen.end_call()
            self.st["appt"] = None
            ended.set()

        self.bridge.call.emit(end)
        ended.wait(5)
        time.sleep(0.3)
        ctx.close()

    def run(self, driver: Any) -> None:
        """Turn the Qt event loop until ``driver`` (on a thread of its own)
        returns, then close the window and stop the engine."""

        def drive() -> None:
            try:
                driver()
            finally:
                self.bridge.call.emit(self.app.quit)

        thread = threading.Thread(target=drive, name="playwright", daemon=True)
        thread.start()
        self.app.exec()
        thread.join(10)
        self.screen.close()
        self.calls.stop()


# -- the benchmark ------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--record", action="store_true",
                    help="record every app call as the app does (media process; throw-away keys, a temp folder)")
    ap.add_argument("--sizes", default="1280x720", help="comma-separated WxH, e.g. 640x480,1280x720")
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--stall-seconds", type=float, default=60.0,
                    help="length of the call whose Qt event-loop stalls are measured (0: skip)")
    ap.add_argument("--stall-size", default="640x480",
                    help="video size both ways for that call (default: the app's camera default)")
    ap.add_argument("--engine", choices=("media", "in-process"), default="media",
                    help="where the officer's call engine runs (media: its own process, as the app does)")
    ap.add_argument("--chromium-cores", default="", help="confine Chromium to these cores (taskset -c), e.g. 1")
    ap.add_argument("--load", type=int, default=0, help="busy processes alongside (one pinned per core)")
    ap.add_argument("--json", default="", help="also write the results to this file")
    ap.add_argument("--rounds", type=int, default=1,
                    help="D: times the four configurations run, interleaved (medians and ratios over them)")
    ap.add_argument("--loads", default="0,2",
                    help="D: the added loads to run (busy processes; 0,2: none, and one on each core)")
    ap.add_argument("--matrix", action="store_true",
                    help="D: in-process vs media process, Chromium on one core, without and with a CPU load")
    args = ap.parse_args()
    try:
        loads = [int(v) for v in args.loads.split(",") if v.strip()]
    except ValueError:
        loads = []
    if not loads or any(v not in (0, 2) for v in loads):
        ap.error(f"--loads {args.loads!r}: give 0, 2 or 0,2 (none, and one busy process on each core)")
    args.loads = loads
    if args.matrix:
        return matrix(args)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",") if s]
    stall_size = tuple(int(v) for v in args.stall_size.lower().split("x"))

    officer = Officer(args.engine, sizes[0])
    calls, screen, meter, st, on_gui = officer.calls, officer.screen, officer.meter, officer.st, officer.on_gui
    start_app_call, end_app_call = officer.start_call, officer.end_call
    load = [busy(i % (os.cpu_count() or 1)) for i in range(args.load)]
    record_root: Path | None = None
    if args.record:  # as the app does: record_start before start_call (media process only)
        from evr_desktop.vault.age import X25519Identity

        root = record_root = Path(tempfile.mkdtemp(prefix="evr-bench-rec-"))
        keys = [X25519Identity.generate().recipient, X25519Identity.generate().recipient]
        officer.on_call_start = lambda appointment: officer.record_start(
            appointment, root / uuid.uuid4().hex, keys[0], keys[1])

    results: dict[str, Any] = {}
    failure: list[str] = []

    def driver() -> None:
        from playwright.sync_api import sync_playwright

        ref = RefRendezvous()
        tmp = tempfile.mkdtemp(prefix="evr-bench-call-")
        try:
            with sync_playwright() as p:
                browser, phone = launch_chromium(p, args.chromium_cores, tmp)
                results["browser"] = browser.version
                use_size = officer.use_size

                try:
                    if args.stall_seconds > 0:
                        use_size(stall_size)
                        results["stall"] = stall_run(
                            browser, phone, STAMP_JS % {"w": stall_size[0], "h": stall_size[1], "fps": FPS},
                            args.stall_seconds)
                        results["stall"]["size"] = stall_size
                    for size in sizes:
                        use_size(size)
                        stamp = STAMP_JS % {"w": size[0], "h": size[1], "fps": FPS}
                        key = f"{size[0]}x{size[1]}"
                        res: dict[str, list] = {k: [] for k in (
                            "app_setup", "ref_setup", "app_call", "ref_call",
                            "app_o2v", "app_v2o", "ref_o2v", "ref_v2o",
                            "n_app_o2v", "n_app_v2o", "n_ref_o2v", "n_ref_v2o", "res_app", "res_ref")}
                        results[key] = res
                        for i in range(args.runs + (0 if args.no_warmup else 1)):
                            keep = args.no_warmup or i > 0
                            a = app_run(browser, phone, stamp)
                            r = ref_run(browser, phone, stamp, ref, size, i)
                            if not keep:
                                continue
                            res["app_setup"].append(a["setup"])
                            res["ref_setup"].append(r["setup"])
                            res["app_call"].append(a["call"])
                            res["ref_call"].append(r["call"])
                            for name, d in (("app", a), ("ref", r)):
                                for direction in ("o2v", "v2o"):
                                    if d[direction] is not None:
                                        res[f"{name}_{direction}"].append(d[direction])
                                    res[f"n_{name}_{direction}"].append(d[f"n_{direction}"])
                                res[f"res_{name}"].append(d["res"])
                            print(f"  {key} run {len(res['app_setup'])}: set-up app {a['setup']:.0f} ms, "
                                  f"ref {r['setup']:.0f} ms", file=sys.stderr, flush=True)
                finally:
                    browser.close()
        except Exception:
            failure.append(traceback.format_exc())
        finally:
            ref.close()
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)

    def stall_run(browser: Any, phone: dict, stamp: str, seconds: float) -> dict:
        """Event-loop stalls: the call window idle (same process, engine
        running, no call) for the reference, then during an app call."""
        idle_s = min(seconds, 10.0)
        on_gui(meter.start)
        time.sleep(idle_s)
        idle = on_gui(meter.stop)
        ctx, page = start_app_call(browser, phone, stamp)[:2]
        try:
            painted0 = on_gui(lambda: screen.remote.frames_painted)
            cpu0 = cpu_seconds(getattr(calls, "pid", None))
            on_gui(meter.start)
            time.sleep(seconds)
            during = on_gui(meter.stop)
            queued = list(meter.queued)
            cpu1 = cpu_seconds(getattr(calls, "pid", None))
            painted = on_gui(lambda: screen.remote.frames_painted) - painted0
        finally:
            end_app_call(ctx)
        print(f"  stalls: idle {idle_s:.0f} s, call {seconds:.0f} s measured", file=sys.stderr, flush=True)
        return {"idle": idle, "idle_s": idle_s, "call": during, "call_queued": queued, "call_s": seconds,
                "painted": painted,
                "cpu_gui": (cpu1[0] - cpu0[0]) / seconds, "cpu_media": (cpu1[1] - cpu0[1]) / seconds}

    def app_run(browser: Any, phone: dict, stamp: str) -> dict:
        ctx, page, t0 = start_app_call(browser, phone, stamp)
        try:
            first = st["first"]
            page.locator("#screen-call").wait_for(state="visible", timeout=WAIT_S * 1000)
            page.evaluate(VICTIM_WATCH)
            time.sleep(max(0.0, (first + WINDOW[1] + 150 - time.time() * 1000) / 1000))
            b = page.evaluate("window.__bench")
            o2v, n_o2v = window_median(b["samples"], first)
            v2o, n_v2o = window_median(list(st["samples"]), first)
            out = {"setup": first - t0, "call": first - st["call_start"], "o2v": o2v, "n_o2v": n_o2v,
                   "v2o": v2o, "n_v2o": n_v2o, "res": (st["res"], (b["width"], b["height"]))}
        finally:
            end_app_call(ctx)
        return out

    def ref_run(browser: Any, phone: dict, stamp: str, ref: RefRendezvous, size: tuple, i: int) -> dict:
        appt = f"bench-ref-{size[0]}x{size[1]}-{i}"
        link = ref.link(appt)
        octx = browser.new_context(bypass_csp=True)
        octx.add_init_script(stamp)
        opage = octx.new_page()
        opage.goto(f"{ref.base}/web/neutral.html")  # a secure context; "the officer's app is open"
        ctx, page = new_victim(browser, phone, stamp)
        pending: list[dict] = []
        try:
            t0 = time.time() * 1000
            page.goto(link)
            page.locator("#consent-agree").click()
            page.locator("#perm-start").click()
            ref.recv("victim_waiting", appt)
            t_call = time.time() * 1000
            offer = opage.evaluate(REF_OFFER, list(size))
            ref.send({"type": "offer", "appointment": appt, "sdp": offer})
            answer = ref.recv("answer", appt, on_other=pending.append)["sdp"]
            opage.evaluate("(sdp) => window.pc.setRemoteDescription({type: 'answer', sdp})", answer)
            deadline = time.monotonic() + WAIT_S
            first = None
            while first is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("reference: no remote frame at the officer page")
                while True:
                    try:
                        pending.append(ref.inbox.get_nowait())
                    except queue.Empty:
                        break
                for m in pending:
                    if m.get("type") == "ice" and m.get("appointment") == appt and m.get("candidate"):
                        opage.evaluate("(c) => window.pc.addIceCandidate(c).catch(() => {})", {
                            "candidate": m["candidate"], "sdpMid": m.get("sdpMid"),
                            "sdpMLineIndex": m.get("sdpMLineIndex")})
                pending.clear()
                first = opage.evaluate("window.__bench.first")
                if first is None:
                    time.sleep(0.01)
            opage.evaluate("window.__bench.sampling = true")
            page.locator("#screen-call").wait_for(state="visible", timeout=WAIT_S * 1000)
            page.evaluate(VICTIM_WATCH)
            time.sleep(max(0.0, (first + WINDOW[1] + 150 - time.time() * 1000) / 1000))
            bo = opage.evaluate("window.__bench")
            bv = page.evaluate("window.__bench")
            o2v, n_o2v = window_median(bv["samples"], first)
            v2o, n_v2o = window_median(bo["samples"], first)
            out = {"setup": first - t0, "call": first - t_call, "o2v": o2v, "n_o2v": n_o2v,
                   "v2o": v2o, "n_v2o": n_v2o, "res": ((bo["width"], bo["height"]), (bv["width"], bv["height"]))}
        finally:
            try:
                ref.send({"type": "bye", "appointment": appt})
            except Exception:  # noqa: BLE001
                pass
            time.sleep(0.2)
            ctx.close()
            octx.close()
            while True:  # forget what this run left in the inbox
                try:
                    ref.inbox.get_nowait()
                except queue.Empty:
                    break
        return out

    started = time.monotonic()
    officer.run(driver)
    if record_root is not None:
        import shutil

        shutil.rmtree(record_root, ignore_errors=True)
    for proc in load:
        proc.kill()
        proc.wait()
    total = time.monotonic() - started
    if args.json and not failure:
        Path(args.json).write_text(json.dumps({"engine": args.engine, "load": args.load,
                                               "chromium_cores": args.chromium_cores, **results}))
    if failure:
        print("benchmark failed:\n" + failure[0], file=sys.stderr)
        return 1

    report(results, sizes, args.runs, total, machine_info(results.get("browser", "?")))
    return 0


def ms(v: float) -> str:
    return f"{v:.0f}"


def busy(core: int) -> Any:
    """One process spinning on one core: the co-located load of D."""
    import subprocess

    return subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-c", "while True: pass"])


def chromium_path(cores: str, tmp: str) -> str:
    """Chromium, or a wrapper confining it (and every process it starts) to ``cores``."""
    if not cores:
        return "/usr/bin/chromium"
    wrapper = Path(tmp) / "chromium-taskset"
    wrapper.write_text(f'#!/bin/sh\nexec taskset -c {cores} /usr/bin/chromium "$@"\n')
    wrapper.chmod(0o700)
    return str(wrapper)


def cpu_seconds(media_pid: int | None) -> tuple[float, float]:
    """CPU time so far of this process and of the media process (0 when in process)."""
    child = 0.0
    if media_pid:
        try:
            fields = Path(f"/proc/{media_pid}/stat").read_text().rsplit(")", 1)[1].split()
            child = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return time.process_time(), child


def matrix(args: Any) -> int:
    """D: each configuration in a process of its own, ``--rounds`` times
    interleaved (in-process, media, in-process under load, media under load,
    then again with media first in each load, and so on), so that a machine
    that drifts hits every configuration alike.
    One table of medians over the rounds (with the range where there are
    several), then the media process against in process round by round: the
    ratio of each round's figures, whose median and range are the comparison
    the issue asks for (same machine, minutes apart, not a best single run)."""
    import subprocess

    loads: list[int] = args.loads  # checked by main(): 0 (no added load) and/or 2 (one busy process per core)
    configs = [(engine, load) for load in loads for engine in ("in-process", "media")]
    out: dict[tuple[str, int], list[dict]] = {c: [] for c in configs}
    tmp = Path(tempfile.mkdtemp(prefix="evr-bench-matrix-"))
    started = time.monotonic()
    failed = 0
    try:
        for rnd in range(args.rounds):
            # Odd rounds run media first: a machine that drifts within a round favours neither.
            engines = ("in-process", "media") if rnd % 2 == 0 else ("media", "in-process")
            for engine, load in [(engine, load) for load in loads for engine in engines]:
                result = tmp / f"{engine}-{load}-{rnd}.json"
                cmd = [sys.executable, str(Path(__file__).resolve()), "--engine", engine, "--load", str(load),
                       "--chromium-cores", "1", "--runs", str(args.runs), "--sizes", args.stall_size,
                       "--stall-size", args.stall_size, "--stall-seconds", str(args.stall_seconds),
                       "--json", str(result)] + (["--no-warmup"] if args.no_warmup else [])
                print(f"D: round {rnd + 1}/{args.rounds}: {engine}, load {load} ...", file=sys.stderr, flush=True)
                proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, timeout=900)
                if proc.returncode != 0 or not result.exists():
                    print(f"  failed (exit {proc.returncode})", file=sys.stderr)
                    failed += 1
                    continue
                out[(engine, load)].append(matrix_row(json.loads(result.read_text()), args.stall_size))
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nD. In process vs media process at {args.stall_size} both ways, the victim's Chromium on core 1 "
          f"(taskset); {args.stall_seconds:.0f} s call per row and round, {args.rounds} round(s) interleaved; "
          f"total {time.monotonic() - started:.0f} s")
    print(("Load: one busy Python process pinned to each core. " if any(loads) else "No added load. ")
          + f"Load average at the end: {os.getloadavg()[0]:.1f}.")
    rows = []
    for engine, load in configs:
        got = out[(engine, load)]
        if not got:
            continue
        rows.append([f"{engine}, {'load on both cores' if load else 'no added load'}"]
                    + [spread([g[k] for g in got], fmt) for k, fmt in MATRIX_COLUMNS])
    print(table(["engine, load", *(k for k, _ in MATRIX_COLUMNS)], rows))
    print("'of which queued': ticks over 16 ms for at least half of which the GUI thread was runnable but waiting")
    print("in the kernel's run queue (/proc/thread-self/schedstat): the scheduler serving other tasks, not our code.")
    print("CPU = cores used per second of call by the officer's side (Chromium not counted); g2g = glass-to-glass")
    print(f"median ms over {args.runs} run(s) at the same size (A/B of this script). Cells: the median over the "
          "rounds [min-max].")
    ratio_rows, interval_rows, diff_rows = [], [], []
    for load in loads:
        a, b = out[("in-process", load)], out[("media", load)]
        pairs = list(zip(a, b, strict=False))  # round by round (a failed run shortens the list)
        if not pairs:
            continue
        label = f"{'load on both cores' if load else 'no added load'} ({len(pairs)} rounds)"
        cells, intervals = [], []
        for key in RATIO_KEYS:
            ratios = [y[key] / x[key] for x, y in pairs if x[key] and x[key] == x[key] and y[key] == y[key]]
            cells.append(spread(ratios, "{:.2f}") if ratios else "-")
            if len(ratios) >= 3:
                _med, lo, hi = bootstrap_median(ratios)
                intervals.append(f"{lo:.2f}-{hi:.2f}")
            else:
                intervals.append("-")
        ratio_rows.append([label, *cells])
        interval_rows.append([label, *intervals])
        diffs_cells = []
        for key in DIFF_KEYS:
            diffs = [y[key] - x[key] for x, y in pairs if x[key] == x[key] and y[key] == y[key]]
            if len(diffs) >= 3:
                med, lo, hi = bootstrap_median(diffs)
                diffs_cells.append(f"{med:+.3f} [{lo:+.3f}, {hi:+.3f}]" if key == "CPU total"
                                   else f"{med:+.1f} [{lo:+.1f}, {hi:+.1f}]")
            else:
                diffs_cells.append("-")
        diff_rows.append([label, *diffs_cells])
    print("\nMedia process / in process, round by round (under 1: the media process is lower; median [min-max]):")
    print(table(["load", *RATIO_KEYS], ratio_rows))
    print("\nThe same ratios' median, 90% bootstrap interval (rounds drawn with replacement; needs 3 rounds):")
    print(table(["load", *RATIO_KEYS], interval_rows))
    print("\nMedia process - in process, round by round: the differences' median [90% bootstrap interval]")
    print("(CPU in cores per second of call, glass-to-glass in ms; needs 3 rounds). 'No worse' is shown when the")
    print("whole interval is at or under 0:")
    print(table(["load", *DIFF_KEYS], diff_rows))
    return 0 if failed == 0 else 1


#: D's columns: (header, format) of what ``matrix_row`` returns.
MATRIX_COLUMNS: list[tuple[str, str]] = [
    ("p99 ms", "{:.1f}"), ("longest ms", "{:.0f}"), ("> 16 ms", "{:.0f}"), ("of which queued", "{:.0f}"),
    ("> 50 ms", "{:.0f}"),
    ("CPU GUI", "{:.2f}"), ("CPU media", "{:.2f}"), ("CPU total", "{:.3f}"), ("fps", "{:.1f}"),
    ("g2g o->v", "{:.0f}"), ("g2g v->o", "{:.0f}"),
]


#: D's paired differences (media process - in process, round by round).
DIFF_KEYS = ["CPU total", "g2g o->v", "g2g v->o"]


#: D's ratio columns (media process / in process, round by round).
RATIO_KEYS = ["CPU total", "g2g o->v", "g2g v->o", "longest ms", "p99 ms", "> 16 ms"]


def matrix_row(r: dict, size: str) -> dict[str, float]:
    """One configuration's run of this script (its ``--json``) as D's figures."""
    stall = r["stall"]
    late = sorted(stall["call"]) or [0.0]
    queued = stall.get("call_queued") or []
    known = len(queued) == len(stall["call"]) and all(q == q for q in queued)  # schedstat read (no NaN)
    g2g = [stats(r[size][k])[0] if r[size][k] else float("nan") for k in ("app_o2v", "app_v2o")]
    return {"p99 ms": late[min(len(late) - 1, int(len(late) * 0.99))], "longest ms": late[-1],
            "> 16 ms": sum(v > 16 for v in late),
            "of which queued": (sum(v > 16 and q >= v / 2 for v, q in zip(stall["call"], queued, strict=True))
                                if known else float("nan")),
            "> 50 ms": sum(v > 50 for v in late),
            "CPU GUI": stall["cpu_gui"], "CPU media": stall["cpu_media"],
            "CPU total": stall["cpu_gui"] + stall["cpu_media"], "fps": stall["painted"] / stall["call_s"],
            "g2g o->v": g2g[0], "g2g v->o": g2g[1]}


def spread(values: list[float], fmt: str) -> str:
    """``median [min-max]`` (just the value when there is one)."""
    values = [v for v in values if v == v]  # no NaN (a run without samples)
    if not values:
        return "-"
    med, lo, hi = stats(values)
    return fmt.format(med) if len(values) == 1 else f"{fmt.format(med)} [{fmt.format(lo)}-{fmt.format(hi)}]"


def report(results: dict, sizes: list, runs: int, total: float, info: str) -> None:
    print(f"\nLive call benchmark ({runs} runs per row, one untimed warm-up each; total {total:.0f} s)")
    print(f"Machine: {info}\n")
    print("Simplified: every Chromium sender's camera is a canvas.captureStream carrying the time-stamp strip")
    print("(init script over getUserMedia; Chromium's fake camera has no timestamp); Chromium audio is its fake")
    print("microphone. The reference uses a second instance of the same rendezvous code (the embedded one's")
    print("officer socket is the engine's). Latency = median over frames received 1-3 s after the first frame,")
    print("then median/min/max over runs; receipt time = wall clock at paint (app) or requestVideoFrameCallback.")
    print("'Call start' = victim_waiting seen by the officer (app: CallScreen.start on the GUI thread; reference:")
    print("the script's officer socket), so the reference's officer getUserMedia and offer are inside it too.")
    print(f"Load average at the end: {os.getloadavg()[0]:.1f} (other jobs share this machine).\n")
    met_setup, met_g2g = [], []
    for size in sizes:
        key = f"{size[0]}x{size[1]}"
        r = results[key]
        if not r["app_setup"]:  # --runs 0: the stall call only
            continue
        ref_med = stats(r["ref_setup"])[0]
        rows = []
        call_ref = stats(r["ref_call"])[0]
        for label, vals, base in (
            ("EVR app officer <- Chromium victim (first CallScreen paint)", r["app_setup"], ref_med),
            ("reference: Chromium officer <- Chromium victim (first rVFC)", r["ref_setup"], ref_med),
            ("  of which call start -> first frame, EVR app", r["app_call"], call_ref),
            ("  of which call start -> first frame, reference", r["ref_call"], call_ref),
        ):
            med, lo, hi = stats(vals)
            rows.append([label, ms(med), ms(lo), ms(hi), f"{med / base:.2f}"])
        print(f"A. Set-up at {key}: page.goto(link) -> first remote frame at the officer "
              f"(consent + permission clicks and call start included)")
        print(table(["", "median ms", "min ms", "max ms", "x ref"], rows))
        print()
        app_med = stats(r["app_setup"])[0]
        met_setup.append((key, app_med, ref_med))

        rows = []
        res_app = r["res_app"][-1] if r["res_app"] else ((0, 0), (0, 0))
        res_ref = r["res_ref"][-1] if r["res_ref"] else ((0, 0), (0, 0))

        def fmt_res(t: Any) -> str:
            return f"{t[0]}x{t[1]}" if t else "?"

        for label, k, rr in (
            ("officer->victim: EVR synthetic -> Chromium page", "app_o2v", fmt_res(res_app[1])),
            ("victim->officer: Chromium -> EVR CallScreen paint", "app_v2o", fmt_res(res_app[0])),
            ("reference officer->victim: Chromium -> Chromium", "ref_o2v", fmt_res(res_ref[1])),
            ("reference victim->officer: Chromium -> Chromium", "ref_v2o", fmt_res(res_ref[0])),
        ):
            vals = r[k]
            frames = sum(r["n_" + k])
            if vals:
                med, lo, hi = stats(vals)
                rows.append([label, ms(med), ms(lo), ms(hi), str(len(vals)), str(frames), rr])
            else:
                rows.append([label, "n/a", "", "", "0", str(frames), rr])
        print(f"B. Glass-to-glass at {key} (sent {key} at {FPS} fps; 'received' = last decoded size seen)")
        print(table(["", "median ms", "min ms", "max ms", "runs", "frames", "received"], rows))
        print()
        for direction in ("app_o2v", "app_v2o"):
            if r[direction] and size == (1280, 720):
                met_g2g.append((direction, stats(r[direction])[0]))
    stall = results.get("stall")
    if stall:
        rows = []
        for label, key, secs in (("Qt event loop, call window idle (reference)", "idle", stall["idle_s"]),
                                 ("Qt event loop during an app call", "call", stall["call_s"])):
            late = sorted(stall[key]) or [0.0]
            p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
            rows.append([label, f"{secs:.0f}", str(len(late)), f"{late[len(late) // 2]:.1f}", f"{p99:.1f}",
                         f"{late[-1]:.0f}", str(sum(v > 16 for v in late)), str(sum(v > 50 for v in late))])
        fps = stall["painted"] / stall["call_s"]
        size = "x".join(str(v) for v in stall["size"])
        print(f"C. GUI responsiveness: lateness of a {TICK_MS} ms precise timer on the GUI thread; call at "
              f"{size} both ways (victim video painted at {fps:.1f} fps; each paint also decodes the stamp)")
        print(table(["", "s", "ticks", "median ms", "p99 ms", "longest ms", "> 16 ms", "> 50 ms"], rows))
        print()
    print("Reference (issue 4, 7 runs, measured earlier on this kind of machine): first remote frame after the")
    print("call starts Chromium->Chromium 263 ms at 640x480, 349 ms at 1280x720; aiortc->Chromium 256 / 324 ms;")
    print("glass-to-glass Chromium->Chromium 34 / 106 ms, aiortc->Chromium 44 / 65 ms.\n")
    print("Goals:")
    for key, app_med, ref_med in met_setup:
        verdict = "met" if app_med <= ref_med else "NOT met"
        print(f"  set-up no slower than browser to browser ({key}): {app_med:.0f} ms vs {ref_med:.0f} ms -> {verdict}")
    if met_g2g:
        names = {"app_o2v": "officer->victim", "app_v2o": "victim->officer (at paint)"}
        for direction, med in met_g2g:
            verdict = "met" if med < 100 else "NOT met"
            print(f"  glass-to-glass < 100 ms at 1280x720, {names[direction]}: {med:.0f} ms -> {verdict}")
    else:
        print("  glass-to-glass < 100 ms at 1280x720: not measured (run with --sizes including 1280x720)")
    if stall:
        longest = max(stall["call"] or [0.0])
        verdict = "met" if longest < 50 else "NOT met"
        size = "x".join(str(v) for v in stall["size"])
        print(f"  longest Qt event-loop stall during a {stall['call_s']:.0f} s call at {size} < 50 ms: "
              f"{longest:.0f} ms -> {verdict}")


if __name__ == "__main__":
    sys.exit(main())
