"""Multi-node mode: what the router in front said about this request.

HAProxy (deploy/cluster) names the pair it routed a request by in
``X-Pairchat-Pair`` (it strips any such header a client sends). The name goes
into ``backend.services.placement.ROUTED_PAIR`` so that only requests the router sent
here by their pair may place a new pair on this node (docs/cluster.md).
"""

from __future__ import annotations

from flask import request

from backend.services.placement import ROUTED_HEADER, ROUTED_PAIR


def note_routed_pair() -> None:
    """``before_request``: remember the routed pair ("" when the router named none)."""
    ROUTED_PAIR.set(request.headers.get(ROUTED_HEADER, "").strip().lower())
