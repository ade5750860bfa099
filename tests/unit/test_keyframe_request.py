"""The recorder's keyframe requests reach aiortc (1.16.0 internals, pinned here
as the tap's are): a forced keyframe on our video sender, a PLI per victim
video stream."""

from __future__ import annotations

import asyncio

from evr_desktop.call.tap import request_keyframe


def test_the_aiortc_internals_are_there_and_used():
    from aiortc import RTCPeerConnection

    async def run() -> tuple[int, int, bool, list[int]]:
        pc = RTCPeerConnection()
        try:
            video = pc.addTransceiver("video")
            pc.addTransceiver("audio")
            sent = await request_keyframe(pc, "sent")
            forced = video.sender._RTCRtpSender__force_keyframe
            received = await request_keyframe(pc, "received")  # no stream heard yet: nothing to ask
            plis: list[int] = []

            async def pli(ssrc: int) -> None:
                plis.append(ssrc)

            video.receiver._send_rtcp_pli = pli
            video.receiver._RTCRtpReceiver__remote_streams[1234] = object()
            await request_keyframe(pc, "received")
            return sent, received, forced, plis
        finally:
            await pc.close()

    sent, received, forced, plis = asyncio.run(run())
    assert (sent, received, forced, plis) == (1, 0, True, [1234])
