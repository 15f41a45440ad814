"""``pairchat-server placement …``: the operator's commands on the placement map.

Multi-node mode only (docs/cluster.md). Every change is published on Redis
(``pairchat:placement``) so the nodes drop their cached owners at once; each
command is one step of a failover or a move, which ``deploy/cluster/failover.sh``
and ``move.sh`` run in order around the file copy:

- ``fence NODE`` — the node serves no conversation any more (even if it comes back);
- ``assign --from DEAD --to NODE`` — every pair of a *fenced* node moves (refused
  for a node that is not fenced: pairs never leave a live owner behind its back);
- ``move PAIR --to NODE --begin`` — the pair answers 503 everywhere, after
  ``MOVE_SETTLE`` seconds no node still serves it from a cached answer; then the
  file is copied, and ``move PAIR --to NODE --finish`` places it on NODE.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import click

from backend.core.extras import MULTI_NODE, PLACEMENT, Feature, MissingExtra, require
from backend.services.placement import MOVE_SETTLE, PLACEMENT_CHANNEL, pair_name

if TYPE_CHECKING:
    from backend.storage.placement import PlacementStore

database_option = click.option(
    "--database-url",
    envvar="PAIRCHAT_DATABASE_URL",
    required=True,
    help="postgresql://… of the cluster [env PAIRCHAT_DATABASE_URL].",
)
redis_option = click.option(
    "--redis-url",
    envvar="PAIRCHAT_REDIS_URL",
    default="",
    help="redis://… to tell the nodes at once [env PAIRCHAT_REDIS_URL]; without it they "
    "notice within a couple of seconds.",
)


def _need(feature: Feature) -> None:
    try:
        require(feature)
    except MissingExtra as exc:
        raise click.ClickException(exc.message) from None


def _store(database_url: str) -> PlacementStore:
    _need(PLACEMENT)
    from backend.storage.placement import PlacementStore  # psycopg: only for these commands

    return PlacementStore(database_url)


def _announce(redis_url: str, pair: str | None) -> None:
    """Tell every node to drop its cached owners (``pair``, or all when None)."""
    if not redis_url:
        return
    _need(MULTI_NODE)
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        client.publish(PLACEMENT_CHANNEL, json.dumps({"pair": pair}))
    except redis.RedisError as exc:
        click.echo(f"warning: could not tell the nodes through Redis ({exc})", err=True)
    finally:
        client.close()


def _pair_argument(value: str) -> str:
    low, sep, high = value.removesuffix(".db").partition("_")
    if not sep:
        raise click.BadParameter("a pair is two usernames joined by _, e.g. alice_bob")
    try:
        return pair_name(low, high)
    except Exception as exc:  # invalid names: the contract's own message
        raise click.BadParameter(getattr(exc, "message", str(exc))) from None


@click.group()
def placement() -> None:
    """Multi-node mode: which node owns each pair (docs/cluster.md)."""


@placement.command()
@database_option
def show(database_url: str) -> None:
    """Every node, whether it is fenced, and how many pairs it owns."""
    store = _store(database_url)
    for node in store.nodes():
        fenced = " fenced" if node.fenced else ""
        click.echo(f"{node.name}\t{node.pairs} pairs\t{node.url}{fenced}")


@placement.command()
@database_option
@click.argument("pair")
def owner(database_url: str, pair: str) -> None:
    """The node that owns PAIR (e.g. alice_bob); nothing when it is not placed."""
    found = _store(database_url).owner(_pair_argument(pair))
    if found is not None:
        click.echo(found.node + (" moving" if found.moving else ""))


def _set_fence(database_url: str, redis_url: str, node: str, fenced: bool) -> None:
    _store(database_url).set_fenced(node, fenced)
    _announce(redis_url, None)
    click.echo(f"{'fenced' if fenced else 'unfenced'} {node}")


@placement.command()
@database_option
@redis_option
@click.argument("node")
def fence(database_url: str, redis_url: str, node: str) -> None:
    """NODE serves no conversation from now on (failover step 1)."""
    _set_fence(database_url, redis_url, node, True)


@placement.command()
@database_option
@redis_option
@click.argument("node")
def unfence(database_url: str, redis_url: str, node: str) -> None:
    """NODE may serve its pairs again (after its data folder is known to be current)."""
    _set_fence(database_url, redis_url, node, False)


@placement.command()
@database_option
@redis_option
@click.option("--from", "from_node", required=True, help="The fenced node whose pairs move.")
@click.option("--to", "to_node", required=True, help="The node that takes them.")
def assign(database_url: str, redis_url: str, from_node: str, to_node: str) -> None:
    """Every pair of a fenced node now belongs to another node (failover step 3)."""
    store = _store(database_url)
    if not store.fenced(from_node):
        raise click.ClickException(f"{from_node} is not fenced: fence it first")
    if store.fenced(to_node):
        raise click.ClickException(f"{to_node} is fenced: choose a node that serves")
    moved = store.assign(from_node, to_node)
    _announce(redis_url, None)
    click.echo(f"{moved} pairs moved from {from_node} to {to_node}")


@placement.command()
@database_option
@redis_option
@click.argument("pair")
@click.option("--to", "to_node", required=True, help="The node that takes the pair.")
@click.option("--begin", "phase", flag_value="begin", help="Stop serving it (then copy).")
@click.option("--finish", "phase", flag_value="finish", help="Place it on --to.")
def move(database_url: str, redis_url: str, pair: str, to_node: str, phase: str | None) -> None:
    """Move one pair: --begin, copy its file to the new node, then --finish."""
    if phase is None:
        raise click.UsageError("say --begin (before the copy) or --finish (after it)")
    name = _pair_argument(pair)
    store = _store(database_url)
    if store.fenced(to_node):
        raise click.ClickException(f"{to_node} is fenced: choose a node that serves")
    if phase == "begin":
        current = store.set_moving(name, True)
        if current is None:
            store.move(name, to_node)  # never written: nothing to copy
            click.echo(f"{name} was not placed; it is now on {to_node}")
            return
        _announce(redis_url, name)
        time.sleep(MOVE_SETTLE)
        click.echo(current.node)
        return
    store.move(name, to_node)
    _announce(redis_url, name)
    click.echo(f"{name} is on {to_node}")
