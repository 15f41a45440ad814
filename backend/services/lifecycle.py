"""Account lifecycle: change password, sign out everywhere, delete the account.

Each step changes the accounts file through ``Accounts`` and then wakes the
requests it concerns: the user's other sessions, held in a long-poll, are
answered at once (with 401, their token being gone), and on deletion every
peer's feed hears of it.

What deletion means (docs/design.md, "Auth"): the account becomes a tombstone —
no password, tokens, display name, contacts or settings, and a name nobody can
register again, so no newcomer inherits its conversation files. Each peer keeps
their copy of the conversation, readable as before (the deleted user's
messages stay, credited to the old name) but closed: sending to a deleted
account is ``404 unknown_user``. The peer's friend list marks it
``deleted: true``; an operator can erase a pair for good with
``pairchat-server forget``.
"""

from __future__ import annotations

from backend.core.usernames import Username
from backend.services.accounts import Accounts
from backend.wakeups.notify import Notifier, user_key


class AccountLifecycle:
    def __init__(self, accounts: Accounts, notifier: Notifier) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self.notifier = notifier

    def change_password(
        self,
        me: Username,
        password: str,
        new_password: str,
        token: str,
        address: str | None,
    ) -> int:
        """The new password; every other token revoked (returns how many)."""
        revoked = self.accounts.change_password(me, password, new_password, token, address)
        self.notifier.notify([user_key(me)])
        return revoked

    def sign_out(self, me: Username, token: str) -> None:
        """This token revoked; the user's held waits answer now (a held or repeated
        ``/updates`` of that token then gets its 401)."""
        self.accounts.logout(token)
        self.notifier.notify([user_key(me)])

    def sign_out_everywhere(self, me: Username) -> int:
        """Every token of ``me`` revoked, this one included (returns how many)."""
        revoked = self.accounts.logout_everywhere(me)
        self.notifier.notify([user_key(me)])
        return revoked

    def revoke_script_token(self, me: Username, token_id: str) -> None:
        """One of ``me``'s script tokens revoked; the user's held waits and open event
        streams answer now (that token's then end: 401, ``unauthorized``)."""
        self.accounts.revoke_script_token(me, token_id)
        self.notifier.notify([user_key(me)])

    def delete_account(self, me: Username, password: str, address: str | None) -> None:
        peers = self.accounts.delete(me, password, address)
        self.notifier.notify([user_key(me), *(user_key(peer) for peer in peers)])
