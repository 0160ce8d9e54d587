"""The control socket: a newline-delimited JSON protocol (see docs/api.md).

:mod:`.server` holds the asyncio server the daemon runs, :mod:`.client` the synchronous
client the CLI uses. The client imports nothing but the standard library.
"""
