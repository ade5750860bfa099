"""``python -m evr_desktop.media``: the media process (started by the app, never by hand)."""

import sys

from .child import main

sys.exit(main())
