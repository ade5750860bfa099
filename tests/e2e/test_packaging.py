"""The PyInstaller build (build.spec) builds, and the built app starts and works.

Slow (a real build, ~30-60 s) but part of the normal suite and CI: a module the
bundle lacks (a lazy import PyInstaller did not see, a data file not listed)
only shows up in the frozen app, so only a build can catch it.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from evr_desktop import __version__
from tests.e2e.conftest import app_env

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple 42\n"
READY = "queue ready: 12 appointments"
BUILD_TIMEOUT = 600
START_TIMEOUT = 60

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUILD_TIMEOUT + 4 * START_TIMEOUT)]


def folder_size(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def minimal_env(tmp: Path) -> dict[str, str]:
    """As under ``env -i``: a fixed PATH (nothing from the venv), and HOME,
    XDG_RUNTIME_DIR and TMPDIR inside ``tmp``; Qt offscreen."""
    return app_env(tmp, PATH="/usr/local/bin:/usr/bin:/bin", QT_QPA_PLATFORM="offscreen")


def wait_for_line(stream, needle: str, timeout: float) -> tuple[bool, list[str]]:
    """Read ``stream`` line by line (in a thread, so the timeout holds even when
    the app prints nothing) until a line contains ``needle``."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:  # the app exited
            break
        seen.append(line)
        if needle in line:
            return True, seen
    return False, seen


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build once for the tests below; yields the dist/evr-desktop folder and
    removes the build (~200 MB) afterwards."""
    if sys.platform.startswith("linux"):
        assert shutil.which("objdump"), "PyInstaller needs objdump on Linux: install binutils"
    tmp = tmp_path_factory.mktemp("pyinstaller")
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable, "-m", "PyInstaller", "--noconfirm",
            "--distpath", str(tmp / "dist"), "--workpath", str(tmp / "build"),
            "build.spec",
        ],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    seconds = time.monotonic() - started
    assert proc.returncode == 0, (
        f"PyInstaller failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    )
    dist = tmp / "dist" / "evr-desktop"
    size = folder_size(dist)
    print(
        f"\nPyInstaller build: {seconds:.0f} s, "
        f"dist/evr-desktop: {size / 1e6:.0f} MB ({size:,} bytes)"
    )
    yield dist
    shutil.rmtree(tmp, ignore_errors=True)


def test_version(built, tmp_path):
    out = subprocess.run(
        [str(built / "evr-desktop"), "--version"],
        env=minimal_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"evr-desktop {__version__}"


def test_bundle_contents(built):
    internal = built / "_internal"
    # every file under resources/ is shipped, at the same relative path
    resources = REPO / "resources"
    for src in resources.rglob("*") if resources.is_dir() else ():
        if src.is_file() and src.name != ".gitkeep" and "__pycache__" not in src.parts:
            rel = src.relative_to(REPO)
            assert (internal / rel).is_file(), f"{rel} not in the bundle"
    # the excludes work: no Chromium, no Qt 3D, no QtPdf, no Tk
    names = [p.name.lower() for p in internal.rglob("*")]
    for unwanted in ("webengine", "qt63d", "qt6pdf", "_tkinter", "libtcl", "libtk"):
        assert not [n for n in names if unwanted in n], f"{unwanted} is in the bundle"


def test_audit_verify_runs(built, tmp_path):
    """`audit verify` loads its code lazily (evr_desktop.audit.log): no log -> 2."""
    out = subprocess.run(
        [str(built / "evr-desktop"), "audit", "verify", "--profile", str(tmp_path / "empty")],
        env=minimal_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_demo_starts_and_shows_the_queue(built, tmp_path):
    """First run in demo mode: creates the demo officer and data, unlocks, shows
    the queue, all in the frozen app and a bare environment."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            str(built / "evr-desktop"), "--demo",
            "--profile", str(tmp_path / "profile"), "--passphrase-fd", "0",
        ],
        env=minimal_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    try:
        proc.stdin.write(PASSPHRASE)
        proc.stdin.close()
        # After the queue, the media process (the frozen app started as
        # `evr-desktop __media__`) comes up: the call engine is ready.
        engine_ready, lines = wait_for_line(proc.stderr, "call engine ready", START_TIMEOUT)
        seconds = time.monotonic() - started
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    ready = any(READY in line for line in lines)
    assert ready, f"no {READY!r} within {START_TIMEOUT} s; stderr:\n{''.join(lines)[-6000:]}"
    assert engine_ready, f"the media process did not start; stderr:\n{''.join(lines)[-6000:]}"
    print(f"\nfrozen app: queue shown and media process ready {seconds:.1f} s after start"
          " (first run, with demo set-up)")
    records = [json.loads(line) for line in lines if line.startswith("{")]  # JSON lines (evr_desktop/logs.py)
    media_pid = next(int(r["msg"].split("media process ")[1].split()[0]) for r in records
                     if r["process"] == "app" and r["msg"].startswith("media process") and r["msg"].endswith("ready"))
    deadline = time.monotonic() + 10
    while Path(f"/proc/{media_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{media_pid}").exists() or "Z" in Path(f"/proc/{media_pid}/stat").read_text().split()[2]
    assert not [line for line in lines if "Traceback" in line], "".join(lines)
    assert (tmp_path / "profile" / "vault.json").is_file()


def test_statement_render_sign_and_verify_in_the_frozen_app(built, tmp_path):
    """The statement stack (reportlab with the bundled fonts, pyHanko) works
    frozen: a statement rendered and signed here verifies with the built app's
    `statement verify`, and a tampered copy does not."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from evr_desktop.domain.officer import OfficerIdentity
    from evr_desktop.domain.statement_doc import StatementContent
    from evr_desktop.statement.pdf import render_statement_pages
    from evr_desktop.statement.signing import sign_statement
    from evr_desktop.statement.templates import load_templates
    from evr_desktop.vault import pki

    officer = OfficerIdentity("PC Frozen Tester", "FZ 1", "Testshire Police", "Testford")
    ca_key, ca_cert = pki.make_demo_ca(officer.force)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki.issue_officer_certificate(ca_key, ca_cert, officer, key)
    rendered = render_statement_pages(
        StatementContent(narrative="Zofia Wiśniewska saw it. 你好. محمد", fields={"statement_of": "Invented Person"}),
        load_templates(), officer,
    )
    signed = sign_statement(
        rendered.pdf, signing_key_pem=pki.key_pem(key), certificate_pem=pki.cert_pem(cert),
        chain_pem=[pki.cert_pem(ca_cert)], signer_name=officer.display, page=rendered.last_statement_page,
    )
    (tmp_path / "ca.pem").write_text(pki.cert_pem(ca_cert))
    (tmp_path / "s.pdf").write_bytes(signed)
    tampered = bytearray(signed)
    tampered[len(signed) // 3] ^= 0x01
    (tmp_path / "t.pdf").write_bytes(bytes(tampered))

    def verify(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(built / "evr-desktop"), "statement", "verify", str(tmp_path / name), "--ca", str(tmp_path / "ca.pem")],
            env=minimal_env(tmp_path), capture_output=True, text=True, timeout=START_TIMEOUT, check=False,
        )

    good = verify("s.pdf")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = verify("t.pdf")
    assert bad.returncode in (1, 2) and "Traceback" not in bad.stderr, bad.stdout + bad.stderr
