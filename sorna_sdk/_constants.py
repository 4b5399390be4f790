"""Protocol constants of the Sorna v2 API (spec §1-§4)."""

from __future__ import annotations

from typing import Final

from ._problems import SORNA_BASE

API_VERSION: Final = "v2.20170315"
DEFAULT_ENDPOINT: Final = "https://api.sorna.io"
DEFAULT_HASH: Final = "sha256"
PROBLEM_BASE: Final = SORNA_BASE
PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
#: Content type signed for requests that carry no body (what the reference server assumes).
EMPTY_BODY_CONTENT_TYPE: Final = "application/octet-stream"
#: How far a request's Date may be from the server's clock (spec §3.3).
MAX_CLOCK_SKEW_SECONDS: Final = 15 * 60
