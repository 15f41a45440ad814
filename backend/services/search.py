"""Whole-history search of one conversation, on the server.

The query is plain words (``parse_query``): every word must appear, each as the
start of a word of the message, case and accents ignored; no operator or quote
of the user's is ever read as FTS5 syntax (``backend/storage/search_index.py``
quotes each one), so no query can fail with a syntax error. Results are whole
message objects, newest first, older than ``before_id`` when given (the next
page), with ``has_more``. A deleted message never matches; an edited one
matches its new text only.
"""

from __future__ import annotations

from backend.core.errors import InvalidField, MissingField
from backend.core.usernames import Pair
from backend.services.accounts import Accounts
from backend.storage import search_index
from backend.storage.conversation import Page
from backend.storage.conversations import ConversationStore

MAX_QUERY = 256
DEFAULT_RESULTS = 20
MAX_RESULTS = 100


def parse_query(value: object) -> str:
    """A search query as typed (1-256 characters, not only spaces, no NUL)."""
    if not isinstance(value, str) or not value.strip():
        raise MissingField("'q' is required: the words to look for")
    if len(value) > MAX_QUERY or "\x00" in value:
        raise InvalidField(f"'q' is at most {MAX_QUERY} characters, no NUL")
    return value


class Search:
    def __init__(self, conversations: ConversationStore, accounts: Accounts) -> None:
        self.conversations = conversations
        self.accounts = accounts

    def search(
        self,
        pair: Pair,
        query: str,
        *,
        before_id: int | None = None,
        limit: int = DEFAULT_RESULTS,
        require_accounts: bool = True,
    ) -> Page:
        """Messages with every word of ``query`` (checked by ``parse_query``), newest first."""
        if require_accounts:
            self.accounts.require_known(pair.low)
            self.accounts.require_known(pair.high)
        terms = search_index.words(query)
        if len(terms) > search_index.MAX_TERMS:
            raise InvalidField(f"'q' has at most {search_index.MAX_TERMS} words")
        conversation = self.conversations.get(pair.low, pair.high, create=False)
        if conversation is None or not terms:
            rev = 0 if conversation is None else conversation.revision()
            return Page([], False, rev)
        return conversation.search(search_index.match_expression(terms), before_id, limit)
