"""Who I am on this computer: the session, my account settings, the chats I muted.

:class:`Account` owns the :class:`~tui.client.models.Session` (the profile is
loaded once when the session has no display name), the account settings on the
server (receipts, …), mute (kept locally in :class:`~tui.core.prefs.Prefs`) and
the end of the session: signing out, or the server no longer accepting the token.
"""

from __future__ import annotations

from typing import Any

from tui.client.http import ApiError, PairchatClient, ServerUnreachable
from tui.client.models import Session
from tui.core.drafts import Drafts
from tui.core.events import FriendsChanged, ProfileLoaded, Publisher, SessionEnded
from tui.core.prefs import Prefs


class Account:
    def __init__(
        self,
        client: PairchatClient,
        session: Session,
        events: Publisher,
        prefs: Prefs,
        drafts: Drafts,
    ) -> None:
        self.client = client
        self.session = session
        self.events = events
        self.prefs = prefs
        self.drafts = drafts

    async def load_profile(self) -> None:
        """Ask who I am (display name) when the session does not say."""
        if not self.session.display_name:
            self.session = await self.client.me()
            self.events.publish(ProfileLoaded())

    async def change_settings(self, **values: bool) -> dict[str, Any]:
        return await self.client.settings(**values)

    def is_muted(self, peer: str) -> bool:
        return peer in self.prefs.muted

    def toggle_mute(self, peer: str) -> bool:
        """Mute or unmute ``peer``'s chat (no bell, toast or notification); the new state."""
        muted = not self.is_muted(peer)
        self.prefs.set_muted(peer, muted)
        self.events.publish(FriendsChanged())
        return muted

    def end_session(self, reason: str) -> None:
        """The token is no longer valid (e.g. signed out everywhere): back to sign-in."""
        self.client.token = None
        self.events.publish(SessionEnded(reason))

    async def sign_out(self) -> bool:
        """Revoke the token on the server; False when it could not be reached (the caller
        forgets the token locally either way)."""
        self.drafts.save()
        try:
            await self.client.logout()
        except (ApiError, ServerUnreachable):
            return False
        finally:
            self.client.token = None
        return True
