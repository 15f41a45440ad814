"""A signed-in user as the conversation-feature tests speak: one call per route, plain JSON.

``Person`` sends its requests through the shared ``http`` client (both tiers) with
its own bearer token and returns the parsed reply after checking the status, so a
test reads as what people do: ``alice.send("bob", "hi")``, ``bob.feed(cursor)``.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import Server, bearer, http, register

JSON = dict[str, Any]


class Person:
    def __init__(self, server: Server, name: str, token: str | None = None) -> None:
        self.server = server
        self.name = name
        self.token = token or register(server.url, name)

    # -- raw ---------------------------------------------------------------------------
    def post(self, path: str, **data: Any) -> httpx.Response:
        fields = {key: value for key, value in data.items() if value is not None}
        return http.post(self.server.url + path, data=fields, headers=bearer(self.token))

    def ok(self, path: str, **data: Any) -> JSON:
        reply = self.post(path, **data)
        assert reply.status_code == 200, (path, reply.status_code, reply.text)
        body: JSON = reply.json()
        return body

    def refused(self, path: str, status: int, code: str, **data: Any) -> None:
        reply = self.post(path, **data)
        assert (reply.status_code, reply.json()["error"]) == (status, code), reply.text

    def pair(self, other: str) -> dict[str, str]:
        return {"user_one": self.name, "user_two": other}

    # -- conversations -----------------------------------------------------------------
    def send(self, to: str, text: str, **extra: Any) -> JSON:
        return self.ok(f"/send_message/{to}", author=self.name, message=text, **extra)

    def history(self, other: str, **fields: Any) -> JSON:
        return self.ok("/get_message_history", **self.pair(other), **fields)

    def messages(self, other: str) -> list[JSON]:
        found: list[JSON] = self.history(other)["history"]
        return found

    def edit(self, other: str, message_id: int, text: str) -> JSON:
        body = self.ok("/edit_message", **self.pair(other), id=message_id, message=text)
        changed: JSON = body["message"]
        return changed

    def delete(self, other: str, message_id: int) -> JSON:
        changed: JSON = self.ok("/delete_message", **self.pair(other), id=message_id)["message"]
        return changed

    def react(self, other: str, message_id: int, emoji: str) -> JSON:
        body = self.ok("/react", **self.pair(other), id=message_id, emoji=emoji)
        changed: JSON = body["message"]
        return changed

    def search(self, other: str, q: str, **fields: Any) -> JSON:
        return self.ok("/search_messages", **self.pair(other), q=q, **fields)

    # -- friends, the feed, presence ---------------------------------------------------
    def add(self, other: str) -> None:
        self.ok("/add_friend", username=other)

    def friends(self) -> JSON:
        reply = http.get(self.server.url + "/friends", headers=bearer(self.token))
        assert reply.status_code == 200, reply.text
        body: JSON = reply.json()
        return body

    def friend(self, other: str) -> JSON:
        """``other``'s row in my friend list or my requests (a KeyError if neither)."""
        body = self.friends()
        rows = {f["username"]: f for f in body["friends"] + body["requests"]}
        return rows[other]

    def feed(self, since: str | None = None, wait: float | None = None) -> JSON:
        params = {key: value for key, value in (("since", since), ("wait", wait)) if value}
        reply = http.get(
            self.server.url + "/updates", params=params, headers=bearer(self.token), timeout=60
        )
        assert reply.status_code == 200, reply.text
        body: JSON = reply.json()
        return body

    def cursor(self) -> str:
        cursor: str = self.feed()["cursor"]
        return cursor

    def changes(self, since: str) -> dict[str, JSON]:
        return {c["username"]: c for c in self.feed(since)["changed"]}

    def settings(self, **values: Any) -> JSON:
        settings: JSON = self.ok("/settings", **values)["settings"]
        return settings


def meet(server: Server, *names: str) -> dict[str, Person]:
    """Registered users who are all each other's friends."""
    people = {name: Person(server, name) for name in names}
    for person in people.values():
        for other in names:
            if other != person.name:
                person.add(other)
    return people
