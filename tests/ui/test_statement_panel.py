"""The statement panel and the signature pad, driven by typing and clicking."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from evr_desktop.domain.statement_doc import SignatureKind, StatementContent, StatementType
from evr_desktop.statement.templates import load_templates
from evr_desktop.ui.signature_pad import SignaturePadDialog
from evr_desktop.ui.statement_panel import PROMPT_KEY_ROLE, StatementPanel


@pytest.fixture(scope="module")
def templates():
    return load_templates()


@pytest.fixture
def panel(qtbot, templates):
    p = StatementPanel(templates)
    qtbot.addWidget(p)
    p.set_content(StatementContent(offence="assault"))
    p.show()
    return p


def tick(panel: StatementPanel, key: str) -> None:
    for row in range(panel.prompt_model.rowCount()):
        item = panel.prompt_model.item(row)
        if item.data(PROMPT_KEY_ROLE) == key:
            item.setCheckState(Qt.CheckState.Checked)
            return
    raise AssertionError(f"no prompt {key}")


def test_typing_updates_content_word_count_and_signals(qtbot, panel):
    with qtbot.waitSignal(panel.changed):
        qtbot.keyClicks(panel.narrative, "On Friday I was punched outside my home.")
    assert panel.word_count.text() == "8 words"
    qtbot.keyClicks(panel.editors["occupation"].widget, "Florist")
    c = panel.content()
    assert c.narrative == "On Friday I was punched outside my home."
    assert c.fields["occupation"] == "Florist" and c.offence == "assault"


def test_offence_prompts_and_the_prompt_text_at_hand(qtbot, panel):
    keys = {panel.prompt_model.item(r).data(PROMPT_KEY_ROLE) for r in range(panel.prompt_model.rowCount())}
    assert "assault.injury_size" in keys and "victims_code.written_confirmation" in keys
    assert not any(k and k.startswith("advokate.") for k in keys)
    panel.suspect_identified.setChecked(True)
    keys = {panel.prompt_model.item(r).data(PROMPT_KEY_ROLE) for r in range(panel.prompt_model.rowCount())}
    assert any(k and k.startswith("advokate.") for k in keys)
    tick(panel, "assault.injury_size")
    assert "assault.injury_size" in panel.content().ticked_prompts
    # The prompt's text shows beside the list, not in the statement.
    index = next(
        panel.prompt_model.index(r, 0) for r in range(panel.prompt_model.rowCount())
        if panel.prompt_model.item(r).data(PROMPT_KEY_ROLE) == "assault.injury_size"
    )
    panel.prompt_view.setCurrentIndex(index)
    assert "centimetres" in panel.prompt_text.text()
    assert "centimetres" not in panel.content().narrative


def test_completeness_lists_what_is_missing_in_words(panel):
    assert "The narrative is empty." in panel.missing_items()
    assert "Before signing" in panel.missing.text()
    assert any("occupation" in m for m in panel.missing_items())


def test_round_trip_of_content(panel, templates):
    c = StatementContent(
        offence="fraud", narrative="Zofia Wiśniewska called me.\nلا\n你好",
        fields={"occupation": "Teacher", "consent_c_medical_records_police": "n/a", "no_dates_to_avoid": True},
        ticked_prompts=frozenset({"fraud." + templates.offences[4].prompts[0].id}),
    )
    panel.set_content(c)
    assert panel.content().narrative == c.narrative
    assert panel.content().fields["consent_c_medical_records_police"] == "n/a"
    assert panel.content().fields["no_dates_to_avoid"] is True
    assert panel.content().ticked_prompts == c.ticked_prompts


def test_read_only_refuses_edits(qtbot, panel):
    panel.set_read_only(True)
    qtbot.keyClicks(panel.narrative, "added later")
    assert panel.content().narrative == ""
    assert not panel.editors["visually_recorded"].widget.isEnabled()


def test_vps_uses_its_own_prompts(panel, templates):
    panel.set_content(StatementContent(statement_type=StatementType.VPS))
    keys = {panel.prompt_model.item(r).data(PROMPT_KEY_ROLE) for r in range(panel.prompt_model.rowCount())}
    assert keys - {None} and all(k.startswith("vps.") for k in keys - {None})


def test_focus_leaving_the_narrative_is_reported(qtbot, panel):
    panel.narrative.setFocus()
    with qtbot.waitSignal(panel.focus_left, timeout=2000):
        panel.editors["occupation"].widget.setFocus()


DECLARATION = "This statement (consisting of 3 page(s) each signed by me) is true."


def test_drawn_signature(qtbot):
    d = SignaturePadDialog("Nerys Invented", DECLARATION)
    qtbot.addWidget(d)
    d.show()
    d.confirmed.setChecked(True)
    c = d.canvas
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=QPoint(30, 100))
    for x in range(30, 300, 10):
        qtbot.mouseMove(c, QPoint(x, 100 + (x % 40) - 20))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=QPoint(300, 100))
    assert c.points >= 10
    d.accept()
    assert d.result() == d.DialogCode.Accepted
    assert d.signature.kind is SignatureKind.DRAWN and d.signature.png.startswith(b"\x89PNG")


def test_empty_pad_is_refused_and_typed_needs_a_reason(qtbot):
    d = SignaturePadDialog("Nerys Invented", DECLARATION)
    qtbot.addWidget(d)
    d.show()
    d.confirmed.setChecked(True)
    d.accept()
    assert d.signature is None and "draw a signature" in d.message.text()
    d.typed.setChecked(True)
    d.reason.setCurrentIndex(d.reason.count() - 1)  # "Other": must say why
    d.accept()
    assert d.signature is None and "reason" in d.message.text()
    qtbot.keyClicks(d.other_reason, "Witness's hand is in plaster")
    d.accept()
    assert d.signature.kind is SignatureKind.TYPED
    assert d.signature.reason == "Witness's hand is in plaster" and d.signature.typed_name == "Nerys Invented"


def test_typed_signature_fits_a_long_name(qtbot):
    from PySide6.QtGui import QImage

    from evr_desktop.ui.signature_pad import typed_signature_png

    image = QImage.fromData(typed_signature_png("Bartholomew Ndiaye-Winter-Abernethy-Cole"))
    # The rightmost inked column must be inside the image, not cut at its edge.
    right = max(
        (x for x in range(image.width()) for y in range(0, image.height(), 4) if image.pixelColor(x, y).alpha() > 0),
        default=0,
    )
    assert 0 < right < image.width() - 10
