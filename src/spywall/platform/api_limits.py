"""Bounds on what one HTTP request may make the server hold: the body's bytes (checked
before the application sees it, whether or not a ``Content-Length`` was sent) and the
events of a batch (counted while the array is split, before any event is decoded).

``split_array`` walks the top level of a JSON array with the standard library's C
scanner one element at a time, so a body of ten million one-byte elements is refused at
element 10,001 instead of becoming ten million objects; each element's text is kept as
sent, for the contract's validator and for storage.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_WHITESPACE = " \t\n\r"
_decoder = json.JSONDecoder()


class BodyError(ValueError):
    """A request body that cannot be used; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def split_array(body: bytes, max_items: int) -> list[str]:
    """The texts of the elements of the JSON array ``body`` (``BodyError`` 400 when it is
    not JSON, 422 when it is not an array, 413 when it has more than ``max_items``)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(400, "the body is not UTF-8") from None
    end = len(text)
    pos = _skip(text, 0)
    if pos == end:
        raise BodyError(400, "the body is empty; expected a JSON array of events")
    if text[pos] != "[":
        raise BodyError(422, "expected a JSON array of events")
    pos = _skip(text, pos + 1)
    items: list[str] = []
    if pos < end and text[pos] == "]":
        return _done(text, pos, items)
    while True:
        if len(items) == max_items:
            raise BodyError(413, f"more than {max_items} events in one request")
        try:
            _, after = _decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            raise BodyError(400, f"not valid JSON at element {len(items)}: "
                                 f"{str(exc)[:200]}") from None
        items.append(text[pos:after])
        pos = _skip(text, after)
        if pos < end and text[pos] == ",":
            pos = _skip(text, pos + 1)
            continue
        if pos < end and text[pos] == "]":
            return _done(text, pos, items)
        raise BodyError(400, f"not valid JSON: expected ',' or ']' at character {pos}")


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _done(text: str, pos: int, items: list[str]) -> list[str]:
    if _skip(text, pos + 1) != len(text):
        raise BodyError(400, "not valid JSON: text after the array")
    return items


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 before the
    application reads any of it (declared length) or as soon as it grows past the cap
    (chunked). The body is buffered here, so the application reads it from memory.

    Memory is bounded by bytes, not by connections: the bodies buffered at one time may
    hold at most ``budget`` bytes together (a declared length is reserved in full before
    the first byte is read). A request that would pass it gets 503 with Retry-After, so
    thousands of small gate requests can be in flight while a few large batches wait
    their turn."""

    def __init__(self, app: App, max_bytes: int, budget: int | None = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.budget = budget if budget is not None else 32 * max_bytes
        self.held = 0          # bytes reserved by requests in flight (one event loop)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        reserved = 0
        try:
            if declared is not None:
                if not self._reserve(int(declared)):
                    await _busy(send)
                    return
                reserved = int(declared)
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    await _too_large(send, self.max_bytes)
                    return
                if size > reserved:      # chunked, or more than declared
                    if not self._reserve(size - reserved):
                        await _busy(send)
                        return
                    reserved = size
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            self.held -= reserved

    def _reserve(self, size: int) -> bool:
        if self.held + size > self.budget:
            return False
        self.held += size
        return True


async def _busy(send: Send) -> None:
    await _answer(send, 503, "the server holds its limit of request bodies; try again",
                  [(b"retry-after", b"1")])


async def _too_large(send: Send, cap: int) -> None:
    await _answer(send, 413, f"request body larger than {cap} bytes",
                  [(b"connection", b"close")])


async def _answer(send: Send, status: int, detail: str,
                  headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()), *headers]})
    await send({"type": "http.response.body", "body": payload})
