"""Which lake a stream belongs to, and whether it is still the stream a checkpoint describes.

Entry ids are ``<run>-<index>`` per lake, so two lakes publishing to one stream would collide
(the second one's ids are refused as "already there": it publishes nothing). Each lake gets a
random id at its first publish (``stream/lake_id``); a Redis stream carries its owner's id in
the key ``clickstream:<stream>:lake``, set atomically when the stream is created and checked by
every publish chunk (server-side) and by ``stats`` at start: another lake is refused in one line.

A checkpoint is trusted only for the stream it describes: a Redis stream that is gone (or whose
last id is behind what the checkpoint says went out), or a Kinesis stream created anew under the
same name (another creation time), makes the publisher start that stream over, with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Any

from clickstream.errors import StreamError
from clickstream.stream.tables import StreamLayout

log = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9a-f]{32}$")


def lake_id(layout: StreamLayout, create: bool) -> str | None:
    """The lake's stream identity (created once, atomically, when ``create``)."""
    path = Path(layout.folder) / "lake_id"
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".lake_id.{os.getpid()}.tmp")
        tmp.write_text(uuid.uuid4().hex + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(tmp, path)
        tmp.unlink(missing_ok=True)
    if not path.exists():
        return None
    text = path.read_text(errors="replace").strip()
    if not _ID.match(text):
        raise StreamError(f"{path}: invalid lake id (expected 32 hex digits)")
    return text


def _foreign(endpoint: str, owner: str, ours: str) -> StreamError:
    return StreamError(
        f"{endpoint} holds the events of another lake (lake id {owner[:12]}, this lake is "
        f"{ours[:12]}): give each lake its own stream (e.g. --to redis://host:port/OTHER_NAME)"
    )


def claim_for_publish(transport: Any, layout: StreamLayout, checkpoint: Any) -> bool:
    """Before publishing: refuse another lake's stream; True when the stream is not the one the
    checkpoint describes (deleted, recreated): every run must go out again."""
    ours = lake_id(layout, create=True)
    assert ours is not None
    sent = [r for r in checkpoint.runs if r.published > 0]
    own = getattr(transport, "own", None)
    if own is not None:  # Redis: the owner mark
        owner, exists = own(ours, bool(sent))
        if owner is None:
            raise StreamError(
                f"{transport.endpoint} already holds entries that no clickstream lake published "
                "(no owner mark): publish to another stream name"
            )
        if owner != ours:
            raise _foreign(transport.endpoint, owner, ours)
        if sent and not exists:
            return True
        if sent:
            last = max(sent, key=lambda r: r.seq)
            there = transport.published(last.seq)
            return there is not None and there < last.published
        return False
    identity = getattr(transport, "identity", None)
    if identity is None:
        return False
    now = identity()  # Kinesis: the stream's creation time
    before = checkpoint.stream
    checkpoint.stream = now
    return bool(sent) and before is not None and before != now


def check_for_consume(transport: Any, layout: StreamLayout) -> None:
    """``stats`` commits into this lake only statistics of this lake's events."""
    owner_of = getattr(transport, "owner", None)
    owner = owner_of() if owner_of is not None else None
    if owner is None:
        return
    ours = lake_id(layout, create=False)
    if owner != ours:
        raise StreamError(
            f"{transport.endpoint} holds the events of lake {owner[:12]}, not of this lake "
            f"({(ours or 'never published')[:12]}): consume it with --lake set to the lake that "
            "published it"
        )
