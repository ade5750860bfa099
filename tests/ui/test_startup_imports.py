"""What loads before the first paint.

The unlock screen must paint within 1.5x a bare PySide6 window
(``bench/startup.py`` measures it; speed is never asserted here). What keeps
it there is structural, and that is what this test pins down: by the moment
the unlock screen is first painted, none of the heavy parts has been imported,
and PySide6's ``Qt`` namespace, whose first use builds every one of its enums
(~25-40 ms on this machine), has not been touched. A change that pulls one of
them into the start-up path fails here with the module's name, rather than
slowly eroding the benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import OFFICER, PASSPHRASE, REPO

CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import PySide6.QtCore
    from PySide6.QtWidgets import QApplication
    from evr_desktop.config import Paths
    from evr_desktop.services import Workspace
    from evr_desktop.ui.application import run

    def painted():
        print(json.dumps({
            "modules": sorted(sys.modules),
            "qt_namespace_built": "Qt" in vars(PySide6.QtCore),
        }), flush=True)
        QApplication.quit()

    sys.exit(run(Workspace(Paths(profile=Path(sys.argv[1]), demo=True)), on_unlock_painted=painted))
    """
)

# Each of these is needed later (after the unlock, or on first use), never
# for the unlock screen itself.
HEAVY = (
    "cryptography.x509",  # certificates: set-up and signing
    "evr_desktop.call",  # the call engine, aiortc, codecs
    "aiortc",
    "av",
    "cv2",
    "reportlab",  # statements
    "pyhanko",
    "evr_desktop.statement",
    "evr_desktop.store.sqlite",  # the store opens at unlock
    "sqlite3",
    "zxcvbn",  # passphrase strength: the first-run page only
    "evr_desktop.domain.appointment",  # queue and dialogs
    "evr_desktop.ui.queue_screen",
    "evr_desktop.ui.setup_page",
    "evr_desktop.ui.call_controller",
    "evr_desktop.demo",
    "evr_desktop.ui.desktop_notify",  # the first "victim waiting"
    "jeepney",
)


def test_first_paint_loads_no_heavy_module_and_leaves_the_qt_namespace_alone(tmp_path):
    from evr_desktop.config import Paths
    from evr_desktop.services import Workspace
    from tests.conftest import fast_kdf

    profile = tmp_path / "profile"
    ws = Workspace(Paths(profile=profile, demo=True), make_kdf=fast_kdf)
    ws.start()
    ws.create(OFFICER, PASSPHRASE, with_demo_data=False).lock()

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(profile)], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("{"))
    seen = json.loads(line)
    loaded = [m for m in seen["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == [], f"imported before the first paint: {loaded}"
    assert not seen["qt_namespace_built"], (
        "PySide6's Qt namespace was used before the first paint (an enum such as "
        "Qt.AlignmentFlag, or an overload like QAction.setShortcut that resolves through it)"
    )
    # A positive control: the probe does see what the unlock screen needs.
    assert "evr_desktop.ui.unlock_page" in seen["modules"]
