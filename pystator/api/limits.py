"""Request body size limit: a body over ``PYSTATOR_API_MAX_BODY_BYTES`` gets 413 before it is
parsed (by ``Content-Length`` when sent, else counted as it streams in: the 413 goes out as soon
as the limit is passed and the app then sees the client gone)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pystator.api.problems import problem


class BodySizeLimit:
    """ASGI middleware refusing bodies larger than ``max_bytes`` with a 413 problem."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer 413 now and tell the app the client left: whatever it answers
                    # after that is dropped.
                    refused = True
                    await self._refuse(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            f"the request body is larger than {self.max_bytes} bytes (PYSTATOR_API_MAX_BODY_BYTES)",
            code="BODY_TOO_LARGE",
        )
        await response(scope, receive, send)


__all__ = ["BodySizeLimit"]
