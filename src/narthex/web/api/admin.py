"""``/api/v1/admin/tsdb/*`` (only with ``--web.enable-admin-api``): snapshot, delete, clean tombstones.

A snapshot hard-links every persisted block into ``<data>/snapshots/<name>/`` and, unless
``skip_head`` is true, writes the head's samples there as one more block, as Prometheus does.
``delete_series`` tombstones the samples of matching series (:meth:`DB.delete`) and
``clean_tombstones`` rewrites the blocks that have tombstones (:meth:`DB.clean_tombstones`).
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from narthex.model.matcher import Matcher
from narthex.tsdb.block import BlockMeta, write_block
from narthex.tsdb.chunks import ChunkCodec
from narthex.tsdb.head import SeriesData
from narthex.tsdb.ulid import new_ulid
from narthex.web.api.core import ApiDeps, ApiResult, require_db, run_blocking
from narthex.web.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ApiError,
    Form,
    bad_data,
    invalid_param,
    parse_selectors,
    time_param,
)

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_LINK_ATTEMPTS = 3


def _require_admin(deps: ApiDeps) -> None:
    if not deps.enable_admin:
        raise ApiError("unavailable", "admin APIs disabled")


def go_parse_bool(text: str) -> bool:
    """``strconv.ParseBool``."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def _link_tree(src: Path, dst: Path) -> None:
    """Recreate ``src`` under ``dst`` with hard links (copies where linking is impossible)."""
    for root, _dirs, files in os.walk(src):
        target = dst / Path(root).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                os.link(Path(root) / name, target / name)
            except OSError:
                shutil.copy2(Path(root) / name, target / name)


def _head_data(db: Any) -> SeriesData:
    """The head's samples, series in label order, empty series dropped."""
    head = db.head
    with head.lock:
        data = head.read(head.alive_refs(), _INT64_MIN, _INT64_MAX)
    counts = np.diff(data.offsets)
    order = sorted((i for i in range(len(data.labels)) if counts[i] > 0), key=lambda i: data.labels[i])
    if not order:
        return SeriesData([], data.t[:0], data.v[:0], np.zeros(1, dtype=np.int64))
    pieces = [slice(int(data.offsets[i]), int(data.offsets[i + 1])) for i in order]
    t = np.concatenate([data.t[p] for p in pieces])
    v = np.concatenate([data.v[p] for p in pieces])
    offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(counts[order], out=offsets[1:])
    return SeriesData([data.labels[i] for i in order], t, v, offsets)


def snapshot_db(db: Any, directory: Path, with_head: bool) -> None:
    """Hard-link the blocks into ``directory``; with ``with_head``, persist the head there too.

    The head is read before the blocks are listed: a head cut publishes its block before truncating the
    head, so every sample lands in the snapshot at least once (overlaps are merged when read).
    """
    directory.mkdir(parents=True, exist_ok=True)
    data = _head_data(db) if with_head else None
    for attempt in range(_LINK_ATTEMPTS):
        try:
            for block in list(db.blocks):
                _link_tree(Path(block.path), directory / Path(block.path).name)
            break
        except FileNotFoundError:  # compaction replaced a block meanwhile: start over
            for child in directory.iterdir():
                shutil.rmtree(child, ignore_errors=True)
            if attempt == _LINK_ATTEMPTS - 1:
                raise
    if data is None or len(data.t) == 0:
        return
    meta = BlockMeta(ulid=new_ulid(), min_time=int(data.t.min()), max_time=int(data.t.max()) + 1)
    meta.sources = [meta.ulid]
    write_block(directory, meta, data, ChunkCodec())


async def snapshot(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult:
    """``POST|PUT /api/v1/admin/tsdb/snapshot[?skip_head=true]``: ``{"name": "<dir>"}``."""
    _require_admin(deps)
    skip_head = False
    text = form.get("skip_head")
    if text:
        try:
            skip_head = go_parse_bool(text)
        except ValueError as exc:
            raise invalid_param("skip_head", f"unable to parse boolean: {exc}") from None
    db = require_db(deps)
    name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{random.getrandbits(63):016x}"
    directory = Path(deps.data_dir) / "snapshots" / name
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ApiError("internal", f"create snapshot directory: {exc}") from None
    try:
        await run_blocking(snapshot_db, db, directory, not skip_head)
    except OSError as exc:
        raise ApiError("internal", f"create snapshot: {exc}") from None
    return ApiResult({"name": name})


def _delete_series(db: Any, start: int, end: int, selectors: list[list[Matcher]]) -> None:
    """One :meth:`DB.delete` per selector, as upstream."""
    for matchers in selectors:
        db.delete(start, end, matchers)


async def delete_series(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult | None:
    """``POST|PUT /api/v1/admin/tsdb/delete_series?match[]=...[&start=][&end=]``: 204 when done.

    Samples of the matching series in ``[start, end]`` are tombstoned; every selector is parsed
    before anything is deleted.
    """
    _require_admin(deps)
    selectors = form.getall("match[]")
    if not selectors:
        raise bad_data("no match[] parameter provided")
    start = time_param(form, "start", MIN_TIME_MS)
    end = time_param(form, "end", MAX_TIME_MS)
    parsed = []
    for text in selectors:
        try:
            parsed.extend(parse_selectors([text]))
        except ValueError as exc:
            raise invalid_param("match[]", str(exc)) from None
    db = require_db(deps)
    try:
        await run_blocking(_delete_series, db, start, end, parsed)
    except (OSError, ValueError) as exc:
        raise ApiError("internal", str(exc)) from None
    return None


async def clean_tombstones(request: web.Request, form: Form, deps: ApiDeps) -> ApiResult | None:
    """``POST|PUT /api/v1/admin/tsdb/clean_tombstones``: rewrite blocks without deleted data; 204."""
    _require_admin(deps)
    db = require_db(deps)
    try:
        await run_blocking(db.clean_tombstones)
    except (OSError, ValueError) as exc:
        raise ApiError("internal", str(exc)) from None
    return None
