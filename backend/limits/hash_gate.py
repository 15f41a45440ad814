"""A bound on password hashing: few argon2 computations at once, fair between addresses and
between accounts.

Each argon2id computation holds its memory cost (64 MiB by default) for its
whole run and, with argon2's default 4 lanes, keeps every core of a small
machine busy; a worker had no other limit on how many run together: 48
concurrent registrations once meant 3 GB of RSS and 6-8 s for every other
login. ``HashGate.slot(address)`` lets ``concurrency`` computations run and
queues a few more; the rest are refused at once with ``RateLimited`` (so a
waiting request never ties up a worker thread for long):

- at most ``per_address`` checks running or queued from one client address;
- at most ``queue`` waiting in all, each for at most ``timeout`` seconds; when
  the queue is full, a check for an account (the caller names it with
  :func:`for_account`) that holds fewer places than the account holding the
  most takes the place of that account's newest waiting check, which is told to
  retry. Five addresses looping logins of one account once filled the queue and
  kept a login of another account at 429; now they share one account's places
  and the other login is let in;
- a freed slot goes to the waiting check whose address and account were served
  least recently, not to the oldest ticket: a flooding address, or an account
  looped from many addresses, gets its turn and then waits behind everyone
  else, so a real login from elsewhere is next in line.

How many run and wait is told to ``on_change(running, queued)`` at every change, under
the gate's lock (the ``pairchat_password_checks_*`` gauges: each change is a password
check, ~100 ms of argon2, so a call per change costs nothing that shows).

Nothing is capped per account outright: someone hammering *your* account from
addresses of their own cannot keep your login (from your own address) out of
the queue, only make it the one shed if your account fills the queue.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from backend.core.errors import RateLimited

BUSY = "the server is busy checking passwords; retry in a moment"
SHED = "the server is busy checking passwords for this account; retry in a moment"
_ACCOUNT: ContextVar[str | None] = ContextVar("pairchat_hash_account", default=None)


@contextmanager
def for_account(name: str | None) -> Iterator[None]:
    """Password checks inside count against ``name``'s share of the gate too."""
    token = _ACCOUNT.set(name.strip().lower() if name and name.strip() else None)
    try:
        yield
    finally:
        _ACCOUNT.reset(token)


@dataclass(order=True)
class _Ticket:
    served: int  # when its address or account last got a slot (0: never): lower goes first
    number: int  # arrival order among equals
    address: str = field(compare=False)
    account: str | None = field(compare=False, default=None)
    shed: bool = field(compare=False, default=False)  # its place went to another account


class HashGate:
    def __init__(
        self, concurrency: int, *, queue: int = 16, per_address: int = 2, timeout: float = 5.0
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.queue = max(0, queue)
        self.per_address = max(1, per_address)
        self.timeout = timeout
        self._cond = threading.Condition()
        self._running = 0
        self._waiting: list[_Ticket] = []
        self._by_address: dict[str, int] = {}
        self._served: dict[str, int] = {}  # address or "acct:NAME" -> turn it was last served
        self._turns = itertools.count(1)
        self._arrivals = itertools.count()
        self.on_change: Callable[[int, int], None] | None = None
        """Told (checks running, checks queued) whenever either moves (metrics)."""

    def _changed(self) -> None:
        """With the lock held: the figures moved."""
        on_change = self.on_change
        if on_change is not None:
            on_change(self._running, len(self._waiting))

    def _next(self) -> _Ticket | None:
        live = [ticket for ticket in self._waiting if not ticket.shed]
        return min(live) if live else None

    def _make_room(self, account: str | None) -> bool:
        """The queue is full: shed the newest waiting check of the account holding the most
        places, if ``account`` holds fewer. True if a place was freed."""
        if account is None:
            return False
        held = Counter(t.account for t in self._waiting if t.account is not None and not t.shed)
        if not held:
            return False
        heaviest, count = held.most_common(1)[0]
        if heaviest == account or count <= held.get(account, 0) + 1:
            return False
        victim = max(
            (t for t in self._waiting if t.account == heaviest and not t.shed),
            key=lambda t: t.number,
        )
        victim.shed = True
        self._waiting.remove(victim)
        self._cond.notify_all()
        self._changed()
        return True

    @contextmanager
    def slot(self, address: str | None) -> Iterator[None]:
        """Run the body as one password computation, or raise ``RateLimited``."""
        key = address or "unknown"
        account = _ACCOUNT.get()
        with self._cond:
            if self._by_address.get(key, 0) >= self.per_address:
                raise RateLimited(
                    "a password check from your address is already under way; retry in a moment",
                    retry_after=1,
                )
            if (
                self._running >= self.concurrency
                and len(self._waiting) >= self.queue
                and not self._make_room(account)
            ):
                raise RateLimited(BUSY, retry_after=1)
            self._by_address[key] = self._by_address.get(key, 0) + 1
            served = max(self._served.get(key, 0), self._served.get(f"acct:{account}", 0))
            ticket = _Ticket(served, next(self._arrivals), key, account)
            self._waiting.append(ticket)
            self._changed()
            ready = self._cond.wait_for(
                lambda: (
                    ticket.shed or (self._next() is ticket and self._running < self.concurrency)
                ),
                self.timeout,
            )
            ready = ready and not ticket.shed
            if ticket in self._waiting:
                self._waiting.remove(ticket)
            if ready:
                self._running += 1
                turn = next(self._turns)
                self._served[key] = turn
                if account is not None:
                    self._served[f"acct:{account}"] = turn
                for other in self._waiting:  # its address and account now wait behind others
                    if other.address == key or (account and other.account == account):
                        other.served = turn
                if len(self._served) > 4096:
                    self._served = {key: turn}
            else:
                self._release_address(key)
            self._changed()
            self._cond.notify_all()
            if not ready:
                raise RateLimited(SHED if ticket.shed else BUSY, retry_after=1)
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._release_address(key)
                self._changed()
                self._cond.notify_all()

    def _release_address(self, key: str) -> None:
        count = self._by_address[key] - 1
        if count:
            self._by_address[key] = count
        else:
            del self._by_address[key]
