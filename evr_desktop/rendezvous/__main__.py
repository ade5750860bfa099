"""``evr-rendezvous``: the rendezvous as a force service.

    evr-rendezvous --host 0.0.0.0 --port 8443 \\
        --cert /etc/evr/tls.crt --key /etc/evr/tls.key \\
        --public-url https://meet.example.police.uk \\
        --officer-secret-file /etc/evr/officer-secret \\
        --turn-url turn:turn.example.police.uk:3478 \\
        --turn-url turns:turn.example.police.uk:5349?transport=tcp \\
        --turn-secret-file /etc/evr/turn-secret

The officer and TURN secrets are read from files (never from the command line, where
other users could see them in the process list). See docs/rendezvous.md.
"""

from __future__ import annotations

import argparse
import logging
import ssl
import sys
from pathlib import Path

from cryptography import x509

from ..logs import configure
from .guard import ConnectionGuard
from .officers import CertificateAuth, officer_tls_context
from .server import DEFAULT_NEUTRAL_URL, create_app, run
from .tokens import TokenRegistry
from .turn import TurnConfig


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="evr-rendezvous", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument("--cert", type=Path, help="TLS certificate chain (PEM)")
    p.add_argument("--key", type=Path, help="TLS private key (PEM)")
    p.add_argument("--public-url", help="the https:// address phones use to reach this server")
    p.add_argument("--officer-ca", type=Path, metavar="PEM",
                   help="force mode: officers authenticate with their own certificates issued by this "
                        "CA (mutual TLS on --officer-port); needs --cert/--key")
    p.add_argument("--crl", type=Path, metavar="FILE",
                   help="the force CA's certificate revocation list (PEM or DER), re-read when it changes")
    p.add_argument("--officer-port", type=int, default=9443,
                   help="force mode: the officers' port (mutual TLS; default 9443)")
    p.add_argument("--officer-secret-file", type=Path,
                   help="a single shared officer secret instead of certificates (one officer; tests "
                        "and trials only)")
    p.add_argument("--turn-url", action="append", default=[], metavar="URL",
                   help="a turn: or turns: URL of coturn (repeatable); needs --turn-secret-file")
    p.add_argument("--turn-secret-file", type=Path,
                   help="file holding coturn's static-auth-secret (use-auth-secret)")
    p.add_argument("--turn-ttl", type=int, default=3600,
                   help="seconds a TURN credential stays good (default 3600)")
    p.add_argument("--web-root", type=Path, help="the victim's page (default: resources/web)")
    p.add_argument("--neutral-url", default=DEFAULT_NEUTRAL_URL,
                   help="where Quick exit sends the phone: an everyday page on another site "
                        f"(default {DEFAULT_NEUTRAL_URL})")
    p.add_argument("--metrics-token-file", type=Path,
                   help="file holding the bearer token /metrics asks for (without one, /metrics "
                        "answers this machine only)")
    p.add_argument("--max-connections-per-address", type=int, default=64, metavar="N",
                   help="connections one address may hold at once (default 64; 0 behind a reverse proxy, "
                        "which must then limit them)")
    p.add_argument("--request-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="a request's headers and body must arrive within this (default 10)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    configure("rendezvous", args.log_level)
    if bool(args.cert) != bool(args.key):
        print("evr-rendezvous: --cert and --key go together", file=sys.stderr)
        return 2
    if bool(args.officer_ca) == bool(args.officer_secret_file):
        print("evr-rendezvous: give --officer-ca (force mode) or --officer-secret-file, not both",
              file=sys.stderr)
        return 2
    secret, officer_auth, officer_ctx = None, None, None
    if args.officer_ca:
        if not args.cert:
            print("evr-rendezvous: --officer-ca needs --cert and --key (mutual TLS)", file=sys.stderr)
            return 2
        try:
            ca = x509.load_pem_x509_certificate(args.officer_ca.read_bytes())
            officer_ctx = officer_tls_context(args.cert, args.key, args.officer_ca)
        except (OSError, ValueError, ssl.SSLError) as exc:
            print(f"evr-rendezvous: cannot load the officer CA or TLS files: {exc}", file=sys.stderr)
            return 2
        # Officer tokens (the apps' media processes, which hold no key) name this
        # server's public address; without one, only mutual TLS is accepted.
        officer_auth = CertificateAuth(ca, args.crl, audience=args.public_url or None)
        if not args.public_url:
            print("evr-rendezvous: warning: no --public-url, so officer tokens are refused "
                  "(officers must connect with their certificates on --officer-port)", file=sys.stderr)
    else:
        try:
            secret = args.officer_secret_file.read_text("utf-8").strip()
        except OSError as exc:
            print(f"evr-rendezvous: cannot read the officer secret file: {exc.strerror}", file=sys.stderr)
            return 2
        if len(secret) < 16:
            print("evr-rendezvous: the officer secret must be at least 16 characters", file=sys.stderr)
            return 2
    if args.public_url and not args.public_url.startswith(("https://", "http://")):
        print("evr-rendezvous: --public-url must start with https://", file=sys.stderr)
        return 2
    turn = None
    if bool(args.turn_url) != bool(args.turn_secret_file):
        print("evr-rendezvous: --turn-url and --turn-secret-file go together", file=sys.stderr)
        return 2
    if args.turn_url:
        try:
            turn_secret = args.turn_secret_file.read_text("utf-8").strip()
        except OSError as exc:
            print(f"evr-rendezvous: cannot read the TURN secret file: {exc.strerror}",
                  file=sys.stderr)
            return 2
        try:
            turn = TurnConfig(args.turn_url, turn_secret, args.turn_ttl)
        except ValueError as exc:
            print(f"evr-rendezvous: {exc}", file=sys.stderr)
            return 2
    ctx = None
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(args.cert, args.key)
        except (OSError, ssl.SSLError) as exc:
            print(f"evr-rendezvous: cannot load the TLS certificate and key: {exc}", file=sys.stderr)
            return 2
    elif args.host not in ("127.0.0.1", "::1", "localhost"):
        print("evr-rendezvous: warning: serving without TLS on a non-loopback address; "
              "put a TLS proxy in front or pass --cert/--key", file=sys.stderr)
    metrics_token = None
    if args.metrics_token_file:
        try:
            metrics_token = args.metrics_token_file.read_text("utf-8").strip()
        except OSError as exc:
            print(f"evr-rendezvous: cannot read the metrics token file: {exc.strerror}", file=sys.stderr)
            return 2
    if args.max_connections_per_address < 0 or not 0.5 <= args.request_timeout <= 300:
        print("evr-rendezvous: --max-connections-per-address must be 0 or more and --request-timeout "
              "0.5-300 seconds", file=sys.stderr)
        return 2
    guard = ConnectionGuard(header_timeout=args.request_timeout, per_address=args.max_connections_per_address)
    try:
        app = create_app(TokenRegistry(), secret, public_url=args.public_url, web_root=args.web_root,
                         turn=turn, neutral_url=args.neutral_url, guard=guard, metrics_token=metrics_token,
                         officer_auth=officer_auth)
    except ValueError as exc:
        print(f"evr-rendezvous: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("evr_desktop.rendezvous").info(
        "listening on %s:%d (%s)", args.host, args.port, "TLS" if ctx else "no TLS")
    run(app, args.host, args.port, ssl_context=ctx, officer_port=args.officer_port if officer_ctx else None,
        officer_ssl_context=officer_ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
