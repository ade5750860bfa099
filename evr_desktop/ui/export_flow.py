"""Export evidence (issue 12, item 3) as the officer does it: pick a folder,
watch a progress bar with Cancel, then see the bundle checked by the same
verifier a third party runs, with its result in plain words.

The export runs on the worker (``Session.export_case``); progress comes back
through ``Worker.on_gui`` at most every 1%, and Cancel sets a flag the
export reads between chunks: a cancelled export leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog, QWidget

from .operations import Operation, Worker

if TYPE_CHECKING:
    from ..domain.appointment import Appointment
    from ..services import Session


WORKING_COPY_TIMEOUT = 4 * 3600.0  # s: an hour's call encodes in minutes; this only stops a hang


def choose_folder(parent: QWidget) -> str:
    """The folder to export into (empty: the officer cancelled)."""
    return QFileDialog.getExistingDirectory(parent, "Export the evidence bundle into…")


def choose_format(parent: QWidget) -> str | None:
    """"folder" or "zip" (one file holding the same folder, for a case-file
    system that takes one upload); None: the officer cancelled."""
    box = QMessageBox(QMessageBox.Icon.Question, "Export evidence",
                      "Export the bundle as a folder, or as one zip file holding that folder "
                      "(for a case system that takes a single upload)? Both are checked the same way.",
                      QMessageBox.StandardButton.NoButton, parent)
    box.setObjectName("exportFormat")
    folder = box.addButton("A folder", QMessageBox.ButtonRole.AcceptRole)
    folder.setObjectName("exportAsFolder")
    zipped = box.addButton("One zip file", QMessageBox.ButtonRole.AcceptRole)
    zipped.setObjectName("exportAsZip")
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(folder)
    box.exec()
    clicked = box.clickedButton()
    box.deleteLater()  # asked once per export: never kept as a hidden child of the window
    return "folder" if clicked is folder else "zip" if clicked is zipped else None


def ask_decrypted_reason(parent: QWidget) -> str | None:
    """Where the force allows it: the reason for a decrypted copy of the
    recordings in the bundle (None: no decrypted copy)."""
    from PySide6.QtWidgets import QInputDialog

    text, ok = QInputDialog.getText(
        parent, "Decrypted copy?",
        "The recordings go in encrypted for the evidence office. To include a decrypted copy as well,\n"
        "give the reason (it goes in the bundle's manifest and the audit log). Leave empty for none:")
    return text.strip() or None if ok else None


def confirm_remove(parent: QWidget) -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, "Remove the laptop's copy?",
                      "The bundle holds the recordings and verifies. Remove the laptop's copy of this "
                      "appointment's recordings and stills now? This cannot be undone here; the bundle keeps them.",
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
    return box.exec() == QMessageBox.StandardButton.Yes


def export_evidence(parent: QWidget, worker: Worker, session: Session, a: Appointment,
                    show_error: Callable[[BaseException], None], status: Callable[[str], None],
                    engine: Any = None) -> None:
    """``engine``: the media process's (``MediaEngine``), which makes each
    recording's working copy first if it was not made after the call; None (or
    the engine in the GUI's process) exports without one, and the manifest says so."""
    folder = choose_folder(parent)
    if not folder:
        return
    form = choose_format(parent)
    if form is None:
        return
    reason = ask_decrypted_reason(parent) if session.settings.allow_decrypted_export else None
    progress = QProgressDialog("Exporting the evidence bundle…", "Cancel", 0, 1000, parent)
    progress.setObjectName("exportProgress")
    progress.setWindowTitle("Export evidence")
    progress.setWindowModality(Qt.WindowModality.WindowModal)
    progress.setMinimumDuration(0)
    progress.setAutoClose(False)
    progress.setAutoReset(False)
    progress.setValue(0)
    cancel = threading.Event()
    progress.canceled.connect(cancel.set)
    shown = [-1]

    def moved(done: int, total: int) -> None:  # on the worker
        permille = 1000 if total <= 0 else min(1000, done * 1000 // total)
        if permille - shown[0] >= 10 or permille == 1000:
            shown[0] = permille
            worker.on_gui(lambda: progress.setValue(permille) if not cancel.is_set() else None)

    def run() -> tuple[Path, Any]:
        from ..evidence.verify import verify_bundle

        if engine is not None and hasattr(engine, "working_copy") and engine.running:
            for plan, recipients in session.working_copy_jobs(a.id):
                if cancel.is_set():
                    break
                worker.on_gui(lambda: progress.setLabelText("Making the recording's working copy…"))
                engine.working_copy(plan.recording_id, str(plan.folder), [s.message() for s in plan.segments],
                                    recipients).result(WORKING_COPY_TIMEOUT)
            worker.on_gui(lambda: progress.setLabelText("Exporting the evidence bundle…"))
        bundle = session.export_case(a.id, folder, progress=moved, cancelled=cancel.is_set, decrypted_reason=reason,
                                     as_zip=form == "zip")
        # The same checks a prosecutor or a defence expert runs, against the vault's force CA.
        return bundle, verify_bundle(bundle, session.vault.header.force_ca_pem.encode("ascii"))

    def done(result: tuple[Path, Any]) -> None:
        progress.close()
        bundle, report = result
        if report.ok:
            box = QMessageBox(QMessageBox.Icon.Information, "Evidence exported",
                              f"The evidence bundle was exported and checked: every file, signature and audit "
                              f"proof verifies.\n\n{bundle}", QMessageBox.StandardButton.Ok, parent)
        else:
            box = QMessageBox(QMessageBox.Icon.Warning, "Evidence exported, but it does not verify",
                              "The bundle was written but its check found problems. Do not use it; export again "
                              "or call IT.\n\n" + "\n".join(f"- {p}" for p in report.problems[:8]),
                              QMessageBox.StandardButton.Ok, parent)
        box.setObjectName("exportDone")
        if report.ok and session.settings.allow_remove_after_export:
            remove = box.addButton("Remove the laptop's copy of the recordings…", QMessageBox.ButtonRole.ActionRole)
            remove.setObjectName("removeAfterExport")
            remove.clicked.connect(lambda: remove_copy(bundle))
        box.open()
        status(f"Evidence bundle written: {bundle.name}")

    def remove_copy(bundle: Path) -> None:
        if not confirm_remove(parent):
            return
        Operation(worker, parent, lambda: session.remove_exported_recordings(a.id, bundle)).success(
            lambda n: status(f"The laptop's copy of {n} recording(s) was removed; the bundle keeps them.")).failure(
            show_error).run()

    def failed(exc: BaseException) -> None:
        progress.close()
        from ..evidence.bundle import ExportCancelled

        if isinstance(exc, ExportCancelled):
            status("The export was cancelled; nothing was left behind.")
            return
        show_error(exc)

    Operation(worker, parent, run).success(done).failure(failed).run()
