"""One delivery channel per asyncio event loop (see python/src/channel.rs)."""

from __future__ import annotations

import asyncio
import weakref

from . import _native

_channels: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _native.Channel]" = (
    weakref.WeakKeyDictionary()
)


def current_channel() -> "tuple[asyncio.AbstractEventLoop, _native.Channel]":
    """The running loop and the channel its results arrive on (made on first use)."""
    loop = asyncio.get_running_loop()
    channel = _channels.get(loop)
    if channel is None or not channel.usable():
        if channel is not None:
            # Inherited through fork(): the socket pair is the parent's.
            loop.remove_reader(channel.fileno())
        channel = _native.Channel()
        loop.add_reader(channel.fileno(), channel.drain)
        _channels[loop] = channel
    return loop, channel


def waiting(loop: asyncio.AbstractEventLoop) -> int:
    """Futures of ``loop`` still waiting for a lookup (0 when it has no channel)."""
    channel = _channels.get(loop)
    return 0 if channel is None else channel.waiting()
