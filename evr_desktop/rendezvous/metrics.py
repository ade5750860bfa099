"""What the rendezvous tells a force's monitoring (issue 11, item 8):
Prometheus text exposition of counts only. No appointment id, link id,
address or anything else about a person is ever a label: the labels are
reason and error codes from fixed sets.

``/healthz`` says the service is up (and how many sockets it holds);
``/metrics`` is this module's text. See docs/rendezvous.md "Operations" for
who may read them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    links_issued: int = 0
    links_claimed: int = 0
    links_refused: Counter[str] = field(default_factory=Counter)  # by refusal code
    calls_started: int = 0  # the officer's first offer to a waiting victim
    calls_ended: int = 0  # the officer's bye
    quick_exits: int = 0
    flags: int = 0  # "I can't talk freely"
    protocol_errors: Counter[str] = field(default_factory=Counter)  # by error code

    def render(self, *, officers: int, victims_waiting: int, in_call: int, connections_refused: int,
               requests_timed_out: int) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, int]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{name}{labels} {value}" for labels, value in samples)

        metric("evr_officers_connected", "gauge", "Officer apps connected now.", [("", officers)])
        metric("evr_victims_waiting", "gauge", "Victims connected and not yet in a call.",
               [("", victims_waiting)])
        metric("evr_victims_in_call", "gauge", "Victims connected whose call has started.", [("", in_call)])
        metric("evr_links_issued_total", "counter", "Join links issued.", [("", self.links_issued)])
        metric("evr_links_claimed_total", "counter", "Join links claimed by the victim's consent.",
               [("", self.links_claimed)])
        metric("evr_links_refused_total", "counter", "Join links refused, by reason.",
               [(f'{{reason="{r}"}}', n) for r, n in sorted(self.links_refused.items())] or [('{reason="none"}', 0)])
        metric("evr_calls_started_total", "counter", "Calls started (the officer's first offer).",
               [("", self.calls_started)])
        metric("evr_calls_ended_total", "counter", "Calls ended by the officer.", [("", self.calls_ended)])
        metric("evr_quick_exits_total", "counter", "Quick exits pressed by victims.", [("", self.quick_exits)])
        metric("evr_cant_talk_flags_total", "counter", "'I can't talk freely' signals from victims.",
               [("", self.flags)])
        metric("evr_protocol_errors_total", "counter", "Messages refused, by error code.",
               [(f'{{code="{c}"}}', n) for c, n in sorted(self.protocol_errors.items())] or [('{code="none"}', 0)])
        metric("evr_connections_refused_total", "counter", "Connections closed by the per-address cap.",
               [("", connections_refused)])
        metric("evr_requests_timed_out_total", "counter", "Connections aborted by the request deadline.",
               [("", requests_timed_out)])
        return "\n".join(out) + "\n"
