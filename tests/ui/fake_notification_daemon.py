"""A stand-in for the desktop's notification daemon, run as its own process on
a test's private session bus.

It owns ``org.freedesktop.Notifications``, answers ``Notify`` like a real
daemon (a ``uint32`` id; the same id when ``replaces_id`` names a known one) and
appends each call's arguments to a JSON-lines file. It is as strict as GNOME
Shell (GDBus checks every call against the interface): a ``Notify`` whose
signature is not ``susssasa{sv}i`` gets ``InvalidArgs`` and is recorded as
refused.

    python fake_notification_daemon.py BUS_ADDRESS RECORD_FILE [--delay SECONDS]

Prints ``ready`` once it owns the name. ``--delay`` holds every answer back
(a slow or stuck daemon).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
SIGNATURE = "susssasa{sv}i"
ERRORS = "org.freedesktop.DBus.Error"
DO_NOT_QUEUE = 4
PRIMARY_OWNER = 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("record")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()

    conn = open_dbus_connection(bus=args.address)
    (code,) = conn.send_and_get_reply(message_bus.RequestName(NAME, DO_NOT_QUEUE), timeout=10).body
    if code != PRIMARY_OWNER:
        print(f"could not own {NAME}: {code}", file=sys.stderr)
        return 2
    print("ready", flush=True)

    known: set[int] = set()
    next_id = 1
    with open(args.record, "a", encoding="utf-8") as record:

        def write(entry: dict) -> None:
            record.write(json.dumps(entry, default=repr) + "\n")
            record.flush()

        while True:
            msg = conn.receive()
            if msg.header.message_type != MessageType.method_call:
                continue
            fields = msg.header.fields
            member = fields.get(HeaderFields.member)
            signature = fields.get(HeaderFields.signature, "")
            interface = fields.get(HeaderFields.interface)
            if fields.get(HeaderFields.path) != PATH or interface not in (NAME, None):
                conn.send(new_error(msg, f"{ERRORS}.UnknownObject", "s", ("no such object",)))
            elif member == "Notify" and signature != SIGNATURE:
                write({"refused": True, "signature": signature})
                text = f"Type of message ({signature}) does not match expected type ({SIGNATURE})"
                conn.send(new_error(msg, f"{ERRORS}.InvalidArgs", "s", (text,)))
            elif member == "Notify":
                app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout = (
                    msg.body
                )
                if replaces_id in known:
                    nid = replaces_id
                else:
                    nid, next_id = next_id, next_id + 1
                    known.add(nid)
                write(
                    {
                        "signature": signature,
                        "sender": fields.get(HeaderFields.sender),
                        "app_name": app_name,
                        "replaces_id": replaces_id,
                        "app_icon": app_icon,
                        "summary": summary,
                        "body": body,
                        "actions": actions,
                        "hints": {k: [sig, value] for k, (sig, value) in hints.items()},
                        "expire_timeout": expire_timeout,
                        "id": nid,
                    }
                )
                time.sleep(args.delay)
                conn.send(new_method_return(msg, "u", (nid,)))
            elif member == "GetServerInformation":
                conn.send(new_method_return(msg, "ssss", ("fake", "EVR tests", "1", "1.2")))
            elif member == "GetCapabilities":
                conn.send(new_method_return(msg, "as", (["body"],)))
            else:
                conn.send(new_error(msg, f"{ERRORS}.UnknownMethod", "s", (f"no method {member}",)))


if __name__ == "__main__":
    sys.exit(main())
