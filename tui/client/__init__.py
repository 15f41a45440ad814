"""The pairchat client library: the HTTP client and the typed wire models (no Textual).

Used by the sync core (:mod:`tui.core`), the tests and scripts. See
docs/architecture.md for where it sits.
"""

from tui.client.http import ApiError, PairchatClient, ServerUnreachable
from tui.client.models import Change, Feed, Friend, FriendList, Message, Page, Sent, Session

__all__ = [
    "ApiError",
    "Change",
    "Feed",
    "Friend",
    "FriendList",
    "Message",
    "Page",
    "PairchatClient",
    "Sent",
    "ServerUnreachable",
    "Session",
]
