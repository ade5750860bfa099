"""A signature drawn on the victim's phone, as the image placed on every page.

The page returns strokes (CSS px on its canvas), not a picture: the app draws
them here, in the same ink as the laptop's pad (``ui/signature_pad.py``), on a
transparent background, cropped to what was drawn (with a margin) so the
signature fills the MG11's signature boxes rather than a phone-shaped canvas.
Pillow (reportlab's own dependency), no Qt: this runs on the worker.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from ..domain.phone_signing import PhoneSignature

INK = (11, 31, 75, 255)  # #0b1f4b, the pad's
SCALE = 3  # output px per CSS px
SUPERSAMPLE = 2  # drawn larger, then reduced: smooth edges
PEN_CSS_PX = 2.4
MARGIN_CSS_PX = 8.0


def strokes_png(signature: PhoneSignature) -> bytes:
    """The strokes as a PNG (RGBA), cropped to their bounding box plus a margin."""
    xs = [p[0] for s in signature.strokes for p in s]
    ys = [p[1] for s in signature.strokes for p in s]
    left = max(0.0, min(xs) - MARGIN_CSS_PX)
    top = max(0.0, min(ys) - MARGIN_CSS_PX)
    right = min(signature.width, max(xs) + MARGIN_CSS_PX)
    bottom = min(signature.height, max(ys) + MARGIN_CSS_PX)
    k = SCALE * SUPERSAMPLE
    size = (max(1, round((right - left) * k)), max(1, round((bottom - top) * k)))
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    pen = max(1, round(PEN_CSS_PX * k))
    for stroke in signature.strokes:
        points = [((x - left) * k, (y - top) * k) for x, y, _t in stroke]
        if len(points) > 1:
            draw.line(points, fill=INK, width=pen, joint="curve")
        for x, y in (points[0], points[-1]) if len(points) > 1 else points:  # round caps, and a lone dot
            r = pen / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill=INK)
    image = image.resize((max(1, size[0] // SUPERSAMPLE), max(1, size[1] // SUPERSAMPLE)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()
