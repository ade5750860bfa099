"""The command line, run as IT would run it (a real subprocess)."""

import subprocess
import sys

from evr_desktop import __version__
from evr_desktop.audit.log import AuditLog, Category


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evr_desktop", *args], capture_output=True, text=True, timeout=60)


def test_version():
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"evr-desktop {__version__}"


def test_audit_verify_names_the_first_bad_entry(tmp_path):
    profile = tmp_path / "profile"
    log = AuditLog.open(profile / "audit")
    for i in range(5):
        log.append("TW 9001", Category.CONSULTATION, f"appt-{i}", "appointment.view")
    ok = cli("audit", "verify", "--profile", str(profile))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # Same with the option before the subcommand.
    assert cli("--profile", str(profile), "audit", "verify").returncode == 0
    path = profile / "audit" / "audit.log"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"appt-2", b"appt-X")
    path.write_bytes(b"".join(lines))
    bad = cli("audit", "verify", "--profile", str(profile))
    assert bad.returncode == 1
    assert "entry 3" in bad.stdout


def test_audit_verify_without_a_log(tmp_path):
    out = cli("audit", "verify", "--profile", str(tmp_path / "nothing"))
    assert out.returncode == 2 and out.stdout.strip()


def test_bad_arguments_give_usage_not_a_traceback():
    out = cli("--passphrase-fd", "notanumber")
    assert out.returncode == 2 and "usage" in out.stderr and "Traceback" not in out.stderr
