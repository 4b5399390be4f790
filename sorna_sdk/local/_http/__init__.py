"""The HTTP face of the local gateway (aiohttp): the only package here that imports it.

One module per wire dialect holds its routes and bodies; the rest is shared: middleware,
authentication, the problem table, uploads, WebSocket bridges and connection limits.
"""
