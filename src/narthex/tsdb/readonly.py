"""Read-only access to a TSDB directory for offline tools (``narthex tsdb list|analyze|dump``).

Like Prometheus's ``OpenDBReadOnly``: no lock is taken and nothing is written or deleted, so it works
on the directory of a running server. Blocks are loaded as they are (unfinished ``.tmp-*`` blocks and
blocks already replaced by a compaction are skipped); the WAL (latest checkpoint, then later
segments, up to the first bad frame) is replayed into an in-memory head.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from narthex.tsdb import records
from narthex.tsdb.block import Block
from narthex.tsdb.head import INT64_MAX, Head
from narthex.tsdb.options import TSDBOptions
from narthex.tsdb.querier import Querier
from narthex.tsdb.ulid import is_ulid
from narthex.tsdb.wal import _list_segments, _read_frames, _segment_name


class ReadOnlyDB:
    """Blocks and the replayed head of a TSDB directory; use as a context manager."""

    def __init__(self, path: str | os.PathLike, replay_wal: bool = True) -> None:
        self.dir = Path(path)
        if not self.dir.is_dir():
            raise FileNotFoundError(f"open {self.dir}: no such file or directory")
        self.blocks = self._load_blocks()
        self.head = Head(TSDBOptions().block_range_ms, ooo_window_ms=INT64_MAX // 2)
        if self.blocks:
            self.head.min_valid_time = max(b.meta.max_time for b in self.blocks)
        if replay_wal and (self.dir / "wal").is_dir():
            self._replay(self.dir / "wal")

    def _load_blocks(self) -> list[Block]:
        paths = [
            p for p in self.dir.iterdir() if p.is_dir() and is_ulid(p.name) and (p / "meta.json").is_file()
        ]
        metas = {}
        for p in paths:
            with open(p / "meta.json") as f:
                metas[p] = json.load(f)
        replaced = {
            parent["ulid"] for m in metas.values() for parent in m.get("compaction", {}).get("parents", [])
        }
        blocks = [Block(p) for p, m in metas.items() if m["ulid"] not in replaced]
        return sorted(blocks, key=lambda b: (b.meta.min_time, b.meta.ulid))

    def _frames(self, wal: Path) -> Iterator[memoryview]:
        checkpoints = sorted(
            (int(p.name.split(".", 1)[1]), p)
            for p in wal.iterdir()
            if p.is_dir() and p.name.startswith("checkpoint.") and p.name.split(".", 1)[1].isdigit()
        )
        first = 0
        if checkpoints:
            index, path = checkpoints[-1]
            first = index + 1
            for seg in _list_segments(path):
                yield from _read_frames((path / _segment_name(seg)).read_bytes())[0]
        for seg in _list_segments(wal):
            if seg < first:
                continue
            data = (wal / _segment_name(seg)).read_bytes()
            frames, good = _read_frames(data)
            yield from frames
            if good != len(data):
                return

    def _replay(self, wal: Path) -> None:
        head = self.head
        remap: dict[int, int] = {}
        for body in self._frames(wal):
            kind = records.record_type(body)
            if kind == records.REC_SERIES:
                for ref, got in head.create_logged(records.decode_series_columns(body, head.label_pairs)):
                    remap[ref] = got
                continue
            if kind == records.REC_TOMBSTONES:
                stones = records.decode_tombstones(body)
                refs = np.fromiter(
                    (remap.get(r, r) for r in stones.refs.tolist()), np.int64, len(stones.refs)
                )
                known = (refs >= 0) & (refs < head.num_refs)
                known[known] = head.s_alive[refs[known]]
                head.add_tombstones(refs[known], stones.mint[known], stones.maxt[known])
                continue
            if kind not in (records.REC_SAMPLES, records.REC_OOO_SAMPLES):
                continue
            batch = records.decode_samples(body)
            refs = batch.refs
            if remap:
                refs = np.fromiter((remap.get(r, r) for r in refs.tolist()), dtype=np.int64, count=len(refs))
            known = (refs >= 0) & (refs < head.num_refs)
            known[known] = head.s_alive[refs[known]]
            refs, t, v = refs[known], batch.t[known], batch.v[known]
            if kind == records.REC_SAMPLES:
                head.apply_inorder(refs, t, v, check=True)
            else:
                head.apply_ooo(refs, t, v)

    def querier(self, mint: int, maxt: int) -> Querier:
        """Reads blocks and head in ``[mint, maxt]`` (inclusive)."""
        blocks = self.blocks
        return Querier(self.head, lambda: blocks, mint, maxt)

    def close(self) -> None:
        for block in self.blocks:
            block.close()

    def __enter__(self) -> ReadOnlyDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
