"""A rotation whose answer is lost: `POST /sandbox/users/{userId}/lose-next-reset-reply`.

The next `resetUserSecret` of that user rotates the secret as usual and then loses the answer,
the way a proxy or a dropped connection does after the provider has acted:

    {"mode": "502"}                     a gateway's 502 (an HTML body, not SnapTrade's JSON)
    {"mode": "hang", "seconds": 3600}   no answer for `seconds`, past any client's timeout

Only one reset is affected; later ones answer normally.
"""

from __future__ import annotations

import asyncio
import math

from starlette.responses import Response

from brokerlink.sandbox.snaptrade._routing import Ctx, json_response
from brokerlink.sandbox.snaptrade.state import LostReply, User, invalid, not_found

__all__ = ["lose_next_reset_reply", "reset_reply"]

_MODES = ("502", "hang")
_BAD_GATEWAY = (
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)


async def lose_next_reset_reply(ctx: Ctx) -> Response:
    user_id = ctx.params["userId"]
    if user_id not in ctx.state.users:
        raise not_found(f"User {user_id} not found")
    body = ctx.body_dict()
    mode = str(body.get("mode", "502"))
    if mode not in _MODES:
        raise invalid(f"mode: expected one of {', '.join(_MODES)}, got {mode!r}")
    seconds = body.get("seconds", 3600)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        raise invalid("seconds: expected a non-negative number")
    ctx.state.lost_reset_replies[user_id] = LostReply(mode, float(seconds))
    return json_response({"userId": user_id, "mode": mode, "seconds": seconds})


async def reset_reply(ctx: Ctx, user: User) -> Response:
    """The answer to a reset that has rotated `user`'s secret: sent, or lost once."""
    lost = ctx.state.lost_reset_replies.pop(user.user_id, None)
    if lost is not None:
        if lost.mode == "hang":
            await asyncio.sleep(lost.seconds)
        return Response(_BAD_GATEWAY, 502, media_type="text/html")
    return json_response({"userId": user.user_id, "userSecret": user.secret})
