"""The embedded Sorna gateway: the Sorna v2 API served on this machine.

Kernels are local processes (python3, lua5, bash, nodejs when ``node`` exists). With
bubblewrap installed each kernel runs in namespaces of its own (``--sandbox auto``, the
default); without it kernels run as the local user and the gateway is **not a sandbox**.
It binds 127.0.0.1 unless told otherwise.

    >>> from sorna_sdk.local import LocalGateway
    >>> with LocalGateway.start_in_thread() as gw:  # doctest: +SKIP
    ...     config = gw.config()

From a shell: ``python -m sorna_sdk.local serve`` (or ``sorna local serve``).
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("aiohttp") is None:
    raise ImportError(
        "sorna_sdk.local needs the optional dependencies of the local gateway: "
        "pip install 'sorna-sdk[local]'"
    )

from .gateway import GatewaySettings as GatewaySettings
from .gateway import LocalGateway as LocalGateway
from .gateway import RunningGateway as RunningGateway

__all__ = ["GatewaySettings", "LocalGateway", "RunningGateway"]
