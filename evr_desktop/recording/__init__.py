"""Call recording: encoded frames to encrypted Matroska segments (no Qt).

``Recorder`` (one per call) is the encoded-frame tap's sink; ``recover``
closes, at the next unlock, what a crash left open; ``iter_recording`` reads
a recording back; ``cli`` serves ``evr-desktop evidence``. See
docs/recording.md.
"""
