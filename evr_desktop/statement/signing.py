"""Sign a witness statement PDF with the officer's key (PAdES, visible).

The officer's key and certificate come from the unlocked vault as PEM text;
they are parsed in memory and never written to disk. The signature is PAdES
baseline (``ETSI.CAdES.detached``, SHA-256) with the signing time in the
signature dictionary, the officer's certificate and the chain up to and
including the force CA embedded, and a visible box on the statement's last
page saying who signed and when. With ``timestamp_url`` a timestamp from that
TSA (RFC 3161) is added as well (PAdES B-T).

Only pyHanko and cryptography are used here: no Qt, no files.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence

DEFAULT_REASON = "Witness statement: signature witnessed by the officer"
FIELD_NAME = "OfficerSignature"

# The default visible box, in the bottom right corner of the page: 185 x 38 pt,
# 50 pt in from the right edge (the statement's side margin) and 24 pt up from
# the bottom. On an MG11 statement page that is the free space under "Page X
# of Y", right of the bottom classification marking and below the witnessing
# officer's name; on a page with ordinary 1-inch margins it is inside the
# bottom margin. Callers who know their layout pass ``box``.
BOX_WIDTH = 185.0
BOX_HEIGHT = 38.0
BOX_RIGHT_MARGIN = 50.0
BOX_BOTTOM_MARGIN = 24.0

_STAMP_TEXT = "Digitally signed by\n%(officer)s\n%(ts)s"
_TIME_FORMAT = "%d %b %Y %H:%M:%S UTC"


class SigningError(Exception):
    """The statement could not be signed; the message says why in plain words."""


def sign_statement(
    pdf: bytes,
    *,
    signing_key_pem: str,
    certificate_pem: str,
    chain_pem: Sequence[str] = (),
    signer_name: str,
    reason: str = DEFAULT_REASON,
    location: str = "",
    timestamp_url: str | None = None,
    page: int | None = None,
    box: tuple[float, float, float, float] | None = None,
) -> bytes:
    """Return ``pdf`` with the officer's PAdES signature appended.

    ``page`` is 0-based (negative counts from the end); the default is the last
    page. ``box`` is ``(x1, y1, x2, y2)`` in PDF points from the page's lower
    left corner; the default is the bottom right corner of that page.
    ``chain_pem`` holds intermediates and/or the force CA (each string may hold
    several PEM certificates); they are embedded so a validator needs only the
    force CA as its trust root.
    """
    if not isinstance(pdf, (bytes, bytearray)) or b"%PDF-" not in pdf[:1024]:
        raise SigningError("The statement to sign is not a PDF file.")
    if not signer_name.strip():
        raise SigningError("The signer's name is required for the signature box.")

    key_info, cert, chain = _load_identity(signing_key_pem, certificate_pem, chain_pem)

    # pyHanko takes ~0.5 s to import: only when a statement is signed.
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.sign import fields, signers
    from pyhanko.sign.general import SigningError as HankoSigningError
    from pyhanko.sign.timestamps import HTTPTimeStamper
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError
    from pyhanko.stamp import TextStampStyle
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(bytes(pdf)), strict=False)
        page_index, page_box = _page_and_box(writer, page, box)
        field_name = _free_field_name(writer)
    except SigningError:
        raise
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise SigningError(f"The statement PDF is damaged or incomplete and cannot be signed ({exc}).") from exc

    signer = signers.SimpleSigner(
        signing_cert=cert,
        signing_key=key_info,
        cert_registry=SimpleCertificateStore.from_certs(chain),
        embed_roots=True,
    )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason or None,
        location=location or None,
        name=signer_name,
    )
    style = TextStampStyle(
        stamp_text=_STAMP_TEXT,
        timestamp_format=_TIME_FORMAT,
        border_width=1,
        text_box_style=TextBoxStyle(font_size=9),
        background=None,
    )
    timestamper = HTTPTimeStamper(timestamp_url, timeout=15) if timestamp_url else None
    pdf_signer = signers.PdfSigner(
        meta,
        signer=signer,
        timestamper=timestamper,
        stamp_style=style,
        new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=page_index, box=page_box),
    )
    try:
        out = pdf_signer.sign_pdf(
            writer,
            # %(ts)s in the box is pyHanko's signing time (UTC), the same
            # moment it writes into the signature dictionary's /M.
            appearance_text_params={"officer": _winansi(signer_name)},
        )
    except TimestampRequestError as exc:
        raise SigningError(
            f"The timestamp server at {timestamp_url} did not give a timestamp ({exc}); "
            "the statement was not signed."
        ) from exc
    except HankoSigningError as exc:
        raise SigningError(f"The statement could not be signed: {exc}") from exc
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise SigningError(f"The statement PDF is damaged or incomplete and cannot be signed ({exc}).") from exc
    return out.getvalue()


def sign_with_vault(pdf: bytes, unlocked, **kwargs) -> bytes:
    """``sign_statement`` with the officer's key, certificate and chain from an
    ``UnlockedVault``: the force CA is embedded too (a demo vault's chain is
    otherwise empty), and the box names the officer with their collar number.
    ``kwargs``: ``reason``, ``location``, ``timestamp_url``, ``page``, ``box``."""
    kwargs.setdefault("signer_name", unlocked.header.officer.display)
    return sign_statement(
        pdf,
        signing_key_pem=unlocked.signing_key_pem,
        certificate_pem=unlocked.header.certificate_pem,
        chain_pem=(*unlocked.chain_pem, unlocked.header.force_ca_pem),
        **kwargs,
    )


def _load_identity(signing_key_pem: str, certificate_pem: str, chain_pem: Sequence[str]):
    """PEM text to pyHanko's asn1crypto objects, checking the key fits the certificate."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        key = serialization.load_pem_private_key(signing_key_pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise SigningError(
            "The officer's signing key is not a readable unencrypted PEM private key."
        ) from exc
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise SigningError("The officer's signing key must be RSA or ECDSA to sign a statement.")
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise SigningError("The officer's certificate is not a readable PEM certificate.") from exc
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, pub) != key.public_key().public_bytes(der, pub):
        raise SigningError("The signing key does not belong to the officer's certificate.")
    chain: dict[bytes, x509.Certificate] = {}  # by DER: the CA may be given twice
    for i, text in enumerate(chain_pem, start=1):
        try:
            for c in x509.load_pem_x509_certificates(text.encode("ascii")):
                chain.setdefault(c.public_bytes(der), c)
        except (ValueError, UnicodeEncodeError) as exc:
            raise SigningError(f"Certificate {i} of the officer's chain is not a readable PEM certificate.") from exc

    key_info = asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return (
        key_info,
        asn1_x509.Certificate.load(cert.public_bytes(der)),
        [asn1_x509.Certificate.load(d) for d in chain],
    )


def _page_and_box(writer, page: int | None, box):
    count = int(writer.root["/Pages"]["/Count"])
    if count < 1:
        raise SigningError("The statement PDF has no pages.")
    index = count - 1 if page is None else page
    if index < 0:
        index += count
    if not 0 <= index < count:
        raise SigningError(f"The statement has {count} pages; there is no page {page} to sign on.")
    if box is None:
        page_obj = writer.find_page_for_modification(index)[0].get_object()
        media = _media_box(page_obj)
        x2 = media[2] - BOX_RIGHT_MARGIN
        y1 = media[1] + BOX_BOTTOM_MARGIN
        box = (x2 - BOX_WIDTH, y1, x2, y1 + BOX_HEIGHT)
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 - x1 < 20 or y2 - y1 < 10:
        raise SigningError("The signature box is too small to show who signed and when.")
    # pyHanko writes the box into /Rect as numbers; whole points are plenty.
    return index, (round(x1), round(y1), round(x2), round(y2))


def _media_box(page_obj) -> tuple[float, float, float, float]:
    node = page_obj
    while node is not None:
        if "/MediaBox" in node:
            return tuple(float(v) for v in node["/MediaBox"])  # type: ignore[return-value]
        node = node.get("/Parent")
        node = node.get_object() if node is not None else None
    return (0.0, 0.0, 595.0, 842.0)  # A4, the statement's paper size


def _free_field_name(writer) -> str:
    from pyhanko.sign.fields import enumerate_sig_fields

    taken = {name for name, _value, _ref in enumerate_sig_fields(writer.prev)}
    name, n = FIELD_NAME, 1
    while name in taken:
        n += 1
        name = f"{FIELD_NAME}{n}"
    return name


_PUNCTUATION = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                              "\u2013": "-", "\u2014": "-", "\u2010": "-", "\u2011": "-",
                              "\u0141": "L", "\u0142": "l", "\u0110": "D", "\u0111": "d", "\u0131": "i"})


def _winansi(text: str) -> str:
    """Text the box's standard font can show: Latin-1 letters as they are,
    other accented letters without the accent, anything else as '?'.
    (The signature dictionary's /Name keeps the name exactly as given.)"""
    out = []
    for ch in " ".join(text.split()).translate(_PUNCTUATION):
        if 0x20 <= ord(ch) <= 0x7E or 0xA0 <= ord(ch) <= 0xFF:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and all(0x20 <= ord(c) <= 0xFF for c in base) else "?")
    return "".join(out)

