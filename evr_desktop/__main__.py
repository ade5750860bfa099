"""Command line: ``evr-desktop`` starts the app; subcommands serve IT.

Kept import-light: PySide6 and the crypto stack load only when the command
needs them, so ``--version`` and ``audit verify`` start instantly and the GUI's
first paint is not delayed by modules it does not use yet.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from . import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evr-desktop",
        description="EVR Desktop: video appointments, statements and evidence for police officers.",
    )
    p.add_argument("--version", action="version", version=f"evr-desktop {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: so `evr-desktop --profile X audit verify` keeps X (a subparser's
    # own default would otherwise overwrite the value given before it).
    common.add_argument("--profile", metavar="DIR", default=argparse.SUPPRESS, help="data folder")
    common.add_argument("--demo", action="store_true", default=argparse.SUPPRESS, help="the demo profile")
    p.add_argument("--profile", metavar="DIR", help="data folder (default: the per-user folder for this OS)")
    p.add_argument("--demo", action="store_true", help="use the demo profile (invented officer and appointments)")
    p.add_argument(
        "--passphrase-fd",
        type=int,
        metavar="N",
        help="read the passphrase from file descriptor N (scripted demos and kiosks): unlocks, "
        "or in demo mode creates the demo officer on first run",
    )
    sub = p.add_subparsers(dest="command")
    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_verify = audit_sub.add_parser(
        "verify", parents=[common], help="check the audit log's hash chain, checkpoint and signed checkpoints")
    audit_verify.add_argument(
        "--ca", metavar="CA.pem", help="the force CA certificate (PEM) the signed checkpoints must chain to "
        "(default: the profile's, after its passphrase authenticates it; without either, signatures are "
        "checked but not their CA)")
    statement = sub.add_parser("statement", help="signed witness statements")
    statement_sub = statement.add_subparsers(dest="statement_command", required=True)
    statement_verify = statement_sub.add_parser(
        "verify", parents=[common], help="check a signed statement PDF's signatures against the force CA"
    )
    statement_verify.add_argument("file", metavar="FILE.pdf", help="the signed statement")
    statement_verify.add_argument(
        "--ca", metavar="CA.pem", help="the force CA certificate, PEM or DER (default: the profile's force CA, "
        "once the profile's passphrase authenticates it: asked for, or --passphrase-fd N)"
    )
    evidence = sub.add_parser("evidence", help="recordings and evidence bundles, for the evidence team")
    evidence_sub = evidence.add_subparsers(dest="evidence_command", required=True)
    decrypt = evidence_sub.add_parser(
        "decrypt",
        help="decrypt an age file, or a recording folder into one Matroska file (checked against its manifest)",
    )
    decrypt.add_argument("-i", "--identity", action="append", required=True, metavar="IDENTITY_FILE",
                         help="an age identity file (AGE-SECRET-KEY-1...), as for `age -d -i`")
    decrypt.add_argument("-o", "--output", required=True, metavar="OUT",
                         help="where to write the plaintext (- for stdout)")
    decrypt.add_argument("file", metavar="FILE", help="a segment or other age file, or a recording folder")
    recover_p = evidence_sub.add_parser(
        "recover", help="recover the authenticated part of a segment or recording left unfinished by a crash"
    )
    recover_p.add_argument("-i", "--identity", action="append", required=True, metavar="IDENTITY_FILE")
    recover_p.add_argument("-o", "--output", metavar="OUT", help="also write the recovered plaintext here")
    recover_p.add_argument("file", metavar="FILE", help="an unfinished segment, or an unfinished recording folder")
    verify_p = evidence_sub.add_parser(
        "verify", help="check an evidence bundle: every hash, the manifest's signature, every signed PDF, "
        "the recordings and the audit extract (exit 1 naming every problem)")
    verify_p.add_argument("bundle", metavar="BUNDLE", help="the exported bundle: its folder, or its .zip")
    verify_p.add_argument("--ca", metavar="CA.pem", help="your copy of the force CA (without it, the bundle's own "
                          "copy is used and the result says it is not anchored)")
    verify_p.add_argument("--json", action="store_true", help="the report as JSON")
    verify_p.add_argument("-i", "--identity", action="append", default=[], metavar="IDENTITY_FILE",
                          help="also decrypt every segment and still with this age identity (the escrow's), "
                          "checking each against its recorded plaintext hash")
    return p


def _read_fd(fd: int) -> str:
    with os.fdopen(fd, "r", encoding="utf-8", closefd=True) as fh:
        return fh.readline().rstrip("\r\n")


def _trusted_ca(args: argparse.Namespace, paths: Any, *, required: bool) -> tuple[bytes | None, str]:
    """The force CA to trust: ``--ca``, or the profile's, taken from its vault
    only once the passphrase (``--passphrase-fd``, or asked on a terminal)
    authenticates it: the header alone could have been swapped. (None, "")
    when neither is at hand and it is not ``required``."""
    if getattr(args, "ca", None):
        try:
            return Path(args.ca).read_bytes(), ""
        except OSError as exc:
            return None, f"cannot read the CA file {args.ca}: {exc.strerror or exc}"
    if args.passphrase_fd is not None:
        passphrase = _read_fd(args.passphrase_fd)
    elif sys.stdin.isatty() and (required or (paths.vault.exists())):
        import getpass

        passphrase = getpass.getpass("Passphrase (to trust this profile's force CA; Enter to skip): ")
        if not passphrase and not required:
            return None, ""
    elif required:
        return None, ("no CA to check against: pass --ca CA.pem, or the profile's passphrase "
                      "(--passphrase-fd N) to trust its force CA")
    else:
        return None, ""
    from .vault.vault import VaultError, unlock

    try:
        unlocked = unlock(paths.profile, passphrase)
    except VaultError as exc:
        return None, f"the profile's force CA could not be authenticated ({exc})"
    ca = unlocked.header.force_ca_pem.encode("ascii")
    unlocked.close()
    return ca, ""


def _harden_process() -> None:
    """No core dumps of a process holding keys and victim data (Linux)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_DUMPABLE = 4
            ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        except (OSError, AttributeError):
            pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["__media__"]:
        # The media process of the frozen app (evr_desktop/media/proxy.py
        # media_command); unfrozen, it is `python -m evr_desktop.media`.
        from .media.child import main as media_main

        return media_main(argv[1:])
    args = _parser().parse_args(argv)
    from .logs import configure

    configure("app")
    if args.command == "evidence" and args.evidence_command == "verify":
        from .evidence.verify import run_verify as run_bundle_verify

        return run_bundle_verify(args.bundle, args.ca, args.json, identity_files=args.identity)
    if args.command == "evidence":
        from .recording import cli as evidence_cli

        if args.evidence_command == "decrypt":
            return evidence_cli.run_decrypt(args.identity, args.file, args.output)
        return evidence_cli.run_recover(args.identity, args.file, args.output)
    from .config import resolve_paths

    paths = resolve_paths(args.profile, args.demo)
    if args.command == "audit":
        from cryptography import x509

        from .audit.signed import run_verify_signed

        ca_pem, problem = _trusted_ca(args, paths, required=False)
        if problem:
            print(f"evr-desktop: {problem}", file=sys.stderr)
            return 2
        try:
            ca = x509.load_pem_x509_certificate(ca_pem) if ca_pem else None
        except ValueError:
            print("evr-desktop: the CA file is not a PEM certificate", file=sys.stderr)
            return 2
        return run_verify_signed(paths.audit, ca)
    if args.command == "statement":
        from .statement.verify import run_verify as run_statement_verify

        if args.ca:
            return run_statement_verify(Path(args.file), ca_path=Path(args.ca))
        ca_pem, problem = _trusted_ca(args, paths, required=True)
        if problem:
            print(f"evr-desktop: {problem}", file=sys.stderr)
            return 2
        return run_statement_verify(Path(args.file), ca_pem=ca_pem)
    _harden_process()
    passphrase = _read_fd(args.passphrase_fd) if args.passphrase_fd is not None else None
    from .app import run_gui

    return run_gui(paths, passphrase)


if __name__ == "__main__":
    sys.exit(main())
