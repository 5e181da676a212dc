"""Immutable on-disk blocks: ``<dir>/<ULID>/{meta.json, index, chunks/000001}``.

``chunks/000001``: the magic ``NRTXCHK1`` followed by compressed chunks (see :mod:`chunks`) back
to back; the index holds each chunk's offset, size and CRC32.

``index``: the magic ``NRTXIDX1``, then raw little-endian numpy sections, then a JSON table of
contents (name, dtype, shape, offset, crc32 per section), then ``toc_offset u64, toc_crc u32`` and
the magic again. Sections:

* ``symbols_blob`` / ``symbols_off``: every label name and value, sorted, UTF-8 concatenated;
* ``series_pairs`` ([n, 2] int32 symbol ids) / ``series_pair_off``: each series' labels; series
  are numbered in label-sorted order;
* ``series_chunk_off``, ``chunk_mint``, ``chunk_maxt``, ``chunk_pos``, ``chunk_size``,
  ``chunk_count``, ``chunk_crc``: chunk metadata, grouped by series in time order;
* ``postings_keys`` ([k, 2] int32 (name id, value id), sorted) / ``postings_off`` /
  ``postings_data`` (sorted series numbers): the inverted index.

An optional ``tombstones`` file (see :mod:`tombstones`) lists deleted intervals by series number;
they are masked out on read and dropped when the block is rewritten.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import shutil
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from narthex.model.labels import Labels
from narthex.tsdb.chunkcache import ChunkCache, LabelSetBudget
from narthex.tsdb.chunks import ChunkCodec, split_runs
from narthex.tsdb.head import SeriesData
from narthex.tsdb.postings import EMPTY
from narthex.tsdb.tombstones import Tombstones, read_file, write_file

INDEX_MAGIC = b"NRTXIDX1"
CHUNKS_MAGIC = b"NRTXCHK1"
_TAIL = struct.Struct("<QI")
META_VERSION = 1


@dataclass(slots=True)
class BlockMeta:
    """meta.json in Prometheus's shape."""

    ulid: str
    min_time: int
    max_time: int
    num_samples: int = 0
    num_series: int = 0
    num_chunks: int = 0
    num_tombstones: int = 0
    level: int = 1
    sources: list[str] = field(default_factory=list)
    parents: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        compaction: dict = {"level": self.level, "sources": self.sources}
        if self.parents:
            compaction["parents"] = self.parents
        stats = {"numSamples": self.num_samples, "numSeries": self.num_series, "numChunks": self.num_chunks}
        if self.num_tombstones:
            stats["numTombstones"] = self.num_tombstones
        return {
            "ulid": self.ulid,
            "minTime": self.min_time,
            "maxTime": self.max_time,
            "stats": stats,
            "compaction": compaction,
            "version": META_VERSION,
        }

    @classmethod
    def from_json(cls, doc: dict) -> BlockMeta:
        stats = doc.get("stats", {})
        comp = doc.get("compaction", {})
        return cls(
            ulid=doc["ulid"],
            min_time=int(doc["minTime"]),
            max_time=int(doc["maxTime"]),
            num_samples=int(stats.get("numSamples", 0)),
            num_series=int(stats.get("numSeries", 0)),
            num_chunks=int(stats.get("numChunks", 0)),
            num_tombstones=int(stats.get("numTombstones", 0)),
            level=int(comp.get("level", 1)),
            sources=list(comp.get("sources", [doc["ulid"]])),
            parents=list(comp.get("parents", [])),
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlockWriter:
    """Writes a block incrementally: series batches in label order, then the index and meta.

    Everything goes to ``<ULID>.tmp-for-creation`` and is renamed into place by :meth:`finish`.
    """

    def __init__(self, root: Path, ulid: str, codec: ChunkCodec) -> None:
        self.root = root
        self.ulid = ulid
        self._codec = codec
        self._tmp = root / f"{ulid}.tmp-for-creation"
        shutil.rmtree(self._tmp, ignore_errors=True)
        (self._tmp / "chunks").mkdir(parents=True)
        self._file = open(self._tmp / "chunks" / "000001", "wb")  # noqa: SIM115
        self._file.write(CHUNKS_MAGIC)
        self._pos = len(CHUNKS_MAGIC)
        self._labels: list[Labels] = []
        self._chunks_per_series: list[np.ndarray] = []
        self._cols: dict[str, list[np.ndarray]] = {
            k: [] for k in ("chunk_mint", "chunk_maxt", "chunk_pos", "chunk_size", "chunk_count", "chunk_crc")
        }
        self.num_samples = 0

    def add(self, data: SeriesData) -> None:
        """Append series (label-sorted, after every series added before)."""
        series_idx, starts, counts = split_runs(data.offsets)
        payloads = self._codec.encode(data.t, data.v, starts, counts)
        sizes = np.fromiter((len(p) for p in payloads), dtype=np.int64, count=len(payloads))
        cols = self._cols
        cols["chunk_pos"].append(self._pos + np.cumsum(sizes) - sizes)
        cols["chunk_size"].append(sizes)
        cols["chunk_count"].append(counts)
        cols["chunk_crc"].append(
            np.fromiter((zlib.crc32(p) for p in payloads), dtype=np.uint32, count=len(payloads))
        )
        cols["chunk_mint"].append(data.t[starts])
        cols["chunk_maxt"].append(data.t[starts + counts - 1])
        self._file.writelines(payloads)
        self._pos += int(sizes.sum())
        self._labels.extend(data.labels)
        self._chunks_per_series.append(np.bincount(series_idx, minlength=len(data.labels)))
        self.num_samples += len(data.t)

    def finish(self, meta: BlockMeta) -> Path:
        """Write index and meta.json, then atomically move the block into place."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        sections = _index_sections(self._labels)
        per_series = np.concatenate([np.zeros(1, dtype=np.int64), *self._chunks_per_series])
        sections["series_chunk_off"] = np.cumsum(per_series).astype(np.int64)
        for name, parts in self._cols.items():
            dtype = np.uint32 if name == "chunk_crc" else np.int64
            sections[name] = np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)
        _write_index(self._tmp / "index", sections)
        meta.num_series = len(self._labels)
        meta.num_samples = self.num_samples
        meta.num_chunks = len(sections["chunk_pos"])
        with open(self._tmp / "meta.json", "w") as f:
            json.dump(meta.to_json(), f, indent="\t")
            f.flush()
            os.fsync(f.fileno())
        final = self.root / meta.ulid
        os.replace(self._tmp, final)
        _fsync_dir(self.root)
        return final

    def abort(self) -> None:
        self._file.close()
        shutil.rmtree(self._tmp, ignore_errors=True)


def write_block(root: Path, meta: BlockMeta, data: SeriesData, codec: ChunkCodec) -> Path:
    """Write a block from label-sorted series data in one go."""
    writer = BlockWriter(root, meta.ulid, codec)
    try:
        writer.add(data)
        return writer.finish(meta)
    except BaseException:
        writer.abort()
        raise


def _index_sections(labels: list[Labels]) -> dict[str, np.ndarray]:
    symbols = sorted({s for lset in labels for pair in lset for s in pair})
    sym_id = {s: i for i, s in enumerate(symbols)}
    encoded = [s.encode("utf-8") for s in symbols]
    sym_off = np.zeros(len(symbols) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=sym_off[1:])
    pair_counts = [len(lset) for lset in labels]
    pairs = np.fromiter(
        (sym_id[s] for lset in labels for pair in lset for s in pair),
        dtype=np.int32,
        count=2 * sum(pair_counts),
    ).reshape(-1, 2)
    pair_off = np.zeros(len(labels) + 1, dtype=np.int64)
    np.cumsum(pair_counts, out=pair_off[1:])
    owner = np.repeat(np.arange(len(labels), dtype=np.int32), pair_counts)
    order = np.lexsort((owner, pairs[:, 1], pairs[:, 0])) if len(pairs) else np.zeros(0, dtype=np.int64)
    spairs = pairs[order]
    if len(spairs):
        new_key = np.r_[True, np.any(spairs[1:] != spairs[:-1], axis=1)]
        key_starts = np.flatnonzero(new_key)
    else:
        key_starts = np.zeros(0, dtype=np.int64)
    return {
        "symbols_blob": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "symbols_off": sym_off,
        "series_pairs": pairs,
        "series_pair_off": pair_off,
        "postings_keys": spairs[key_starts] if len(spairs) else np.zeros((0, 2), dtype=np.int32),
        "postings_off": np.r_[key_starts, len(spairs)].astype(np.int64),
        "postings_data": owner[order].astype(np.int32),
    }


def _write_index(path: Path, sections: dict[str, np.ndarray]) -> None:
    toc = []
    with open(path, "wb") as f:
        f.write(INDEX_MAGIC)
        for name, arr in sections.items():
            arr = np.ascontiguousarray(arr)
            raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            toc.append(
                {
                    "name": name,
                    "dtype": arr.dtype.newbyteorder("<").str,
                    "shape": list(arr.shape),
                    "offset": f.tell(),
                    "crc32": zlib.crc32(raw),
                }
            )
            f.write(raw)
        toc_raw = json.dumps(toc).encode()
        toc_offset = f.tell()
        f.write(toc_raw)
        f.write(_TAIL.pack(toc_offset, zlib.crc32(toc_raw)))
        f.write(INDEX_MAGIC)
        f.flush()
        os.fsync(f.fileno())


def _read_index(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    tail = len(data) - len(INDEX_MAGIC) - _TAIL.size
    if data[: len(INDEX_MAGIC)] != INDEX_MAGIC or data[-len(INDEX_MAGIC) :] != INDEX_MAGIC or tail < 0:
        raise ValueError(f"{path}: not a narthex index")
    toc_offset, toc_crc = _TAIL.unpack_from(data, tail)
    toc_raw = data[toc_offset:tail]
    if zlib.crc32(toc_raw) != toc_crc:
        raise ValueError(f"{path}: table of contents checksum mismatch")
    out = {}
    for entry in json.loads(toc_raw):
        dtype = np.dtype(entry["dtype"])
        count = int(np.prod(entry["shape"])) if entry["shape"] else 1
        raw = data[entry["offset"] : entry["offset"] + count * dtype.itemsize]
        if zlib.crc32(raw) != entry["crc32"]:
            raise ValueError(f"{path}: section {entry['name']} checksum mismatch")
        out[entry["name"]] = np.frombuffer(raw, dtype=dtype).reshape(entry["shape"])
    return out


class Block:
    """A loaded block: index arrays in memory, chunks memory-mapped and decoded on demand.

    Decoded chunks go through ``cache`` (shared by the DB's blocks; None: decode every time);
    each series' labels tuple is built once, on first use.
    """

    def __init__(
        self, path: Path, cache: ChunkCache | None = None, label_budget: LabelSetBudget | None = None
    ) -> None:
        self.path = path
        self._cache = cache
        self._label_budget = label_budget  # None: keep every label set built
        self._labels_kept = 0
        self._labels_lock = threading.Lock()
        self._key_base = cache.new_base() if cache is not None else 0
        with open(path / "meta.json") as f:
            self.meta = BlockMeta.from_json(json.load(f))
        ix = _read_index(path / "index")
        self._ix = ix
        blob = ix["symbols_blob"].tobytes()
        off = ix["symbols_off"].tolist()
        self.symbols = [blob[off[i] : off[i + 1]].decode("utf-8") for i in range(len(off) - 1)]
        self._sym_id = {s: i for i, s in enumerate(self.symbols)}
        keys = ix["postings_keys"]
        names = keys[:, 0] if len(keys) else np.zeros(0, dtype=np.int32)
        self._name_ranges: dict[str, tuple[int, int]] = {}
        if len(names):
            starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
            ends = np.r_[starts[1:], len(names)]
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                self._name_ranges[self.symbols[int(names[s])]] = (s, e)
        self._chunk_file = open(path / "chunks" / "000001", "rb")  # noqa: SIM115
        size = os.fstat(self._chunk_file.fileno()).st_size
        self._chunks = mmap.mmap(self._chunk_file.fileno(), size, access=mmap.ACCESS_READ)
        self.size_bytes = sum(
            os.path.getsize(os.path.join(r, name)) for r, _d, files in os.walk(path) for name in files
        )
        self.num_series = len(ix["series_pair_off"]) - 1
        self._labels: list[Labels | None] = [None] * self.num_series
        self.tombstones: Tombstones = read_file(path)
        self.meta.num_tombstones = self.tombstones.num_intervals()

    def add_tombstones(self, ids: np.ndarray, mint: int, maxt: int) -> None:
        """Persist ``[mint, maxt]`` as deleted for the given series, then publish it to readers.

        ``meta.json`` gets the new ``stats.numTombstones`` (the number of intervals), as upstream.
        """
        stones = self.tombstones.with_added(ids, mint, maxt)
        write_file(self.path, stones)
        self.tombstones = stones
        self.meta.num_tombstones = stones.num_intervals()
        tmp = self.path / "meta.json.tmp"
        with open(tmp, "w") as f:
            json.dump(self.meta.to_json(), f, indent="\t")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / "meta.json")

    def series_bounds(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and last sample time of the given series (``(0, -1)`` for a series without chunks)."""
        coff = self._ix["series_chunk_off"]
        first, last = coff[ids], coff[ids + 1] - 1
        has = last >= first
        mint = np.zeros(len(ids), dtype=np.int64)
        maxt = np.full(len(ids), -1, dtype=np.int64)
        mint[has] = self._ix["chunk_mint"][first[has]]
        maxt[has] = self._ix["chunk_maxt"][last[has]]
        return mint, maxt

    # IndexReader ------------------------------------------------------------------------------

    def all_postings(self) -> np.ndarray:
        return np.arange(self.num_series, dtype=np.int64)

    def postings(self, name: str, value: str) -> np.ndarray:
        rng = self._name_ranges.get(name)
        vid = self._sym_id.get(value)
        if rng is None or vid is None:
            return EMPTY
        keys = self._ix["postings_keys"]
        k = rng[0] + int(np.searchsorted(keys[rng[0] : rng[1], 1], vid))
        if k >= rng[1] or keys[k, 1] != vid:
            return EMPTY
        off = self._ix["postings_off"]
        return self._ix["postings_data"][off[k] : off[k + 1]].astype(np.int64)

    def label_values_of(self, name: str) -> list[str]:
        rng = self._name_ranges.get(name)
        if rng is None:
            return []
        return [self.symbols[i] for i in self._ix["postings_keys"][rng[0] : rng[1], 1].tolist()]

    def label_names(self) -> list[str]:
        return list(self._name_ranges)

    def series_labels(self, ids: np.ndarray, cache: bool = True) -> list[Labels]:
        """Labels of the given series; built tuples are kept unless ``cache`` is false."""
        known = self._labels
        idl = ids.tolist()
        out = [known[i] for i in idl]
        if None not in out:
            return out  # type: ignore[return-value]
        off = self._ix["series_pair_off"]
        pairs = self._ix["series_pairs"]
        sym = self.symbols
        for k, i in enumerate(idl):
            if out[k] is None:
                rows = pairs[off[i] : off[i + 1]].tolist()
                out[k] = tuple((sym[a], sym[b]) for a, b in rows)
        if cache:
            self._keep_labels(idl, out)  # type: ignore[arg-type]
        return out  # type: ignore[return-value]

    def _keep_labels(self, idl: list[int], built: list[Labels]) -> None:
        """Keep the label sets of series not kept yet, as far as the budget allows."""
        budget = self._label_budget
        if budget is not None and budget.used >= budget.max_sets:
            return
        with self._labels_lock:
            known = self._labels
            fresh = {i: lset for i, lset in zip(idl, built, strict=True) if known[i] is None}
            keep = len(fresh) if self._label_budget is None else self._label_budget.take(len(fresh))
            for i, lset in list(fresh.items())[:keep]:
                known[i] = lset
            self._labels_kept += keep

    def label_pairs(self, ids: np.ndarray) -> np.ndarray:
        """All (name id, value id) rows of the given series."""
        off = self._ix["series_pair_off"]
        counts = off[ids + 1] - off[ids]
        first = np.repeat(off[ids] - np.cumsum(counts) + counts, counts)
        rows = first + np.arange(int(counts.sum()))
        return self._ix["series_pairs"][rows]

    def _chunks_in_range(self, ids: np.ndarray, mint: int, maxt: int) -> tuple[np.ndarray, np.ndarray]:
        """The chunks of the given series overlapping ``[mint, maxt]`` and their owner index."""
        ix = self._ix
        coff = ix["series_chunk_off"]
        counts = coff[ids + 1] - coff[ids]
        first = np.repeat(coff[ids] - np.cumsum(counts) + counts, counts)
        chunk_ids = first + np.arange(int(counts.sum()))
        owner = np.repeat(np.arange(len(ids)), counts)
        keep = (ix["chunk_mint"][chunk_ids] <= maxt) & (ix["chunk_maxt"][chunk_ids] >= mint)
        return chunk_ids[keep], owner[keep]

    def overlapping(self, ids: np.ndarray, mint: int, maxt: int) -> np.ndarray:
        """Which of the given series have a chunk overlapping ``[mint, maxt]`` (metadata only, as
        upstream's series lookups: no chunk is read)."""
        _chunk_ids, owner = self._chunks_in_range(ids, mint, maxt)
        return np.bincount(owner, minlength=len(ids)) > 0

    def read(
        self,
        ids: np.ndarray,
        mint: int,
        maxt: int,
        codec: ChunkCodec,
        deleted: bool = False,
        use_cache: bool = True,
    ) -> SeriesData:
        """Samples in ``[mint, maxt]`` of the given series; only overlapping chunks are decoded.

        Samples covered by tombstones are left out unless ``deleted`` is true. With ``use_cache``
        false (one-off full reads such as compaction) the chunk cache is neither read nor filled.
        """
        stones = self.tombstones
        ix = self._ix
        chunk_ids, owner = self._chunks_in_range(ids, mint, maxt)
        ccount = ix["chunk_count"][chunk_ids]
        if self._cache is not None and use_cache and len(chunk_ids):
            t, v = self._decode_cached(chunk_ids, ccount, codec)
        else:
            t, v = self._decode(chunk_ids, ccount, codec)
        inside = (t >= mint) & (t <= maxt)
        if inside.all():
            kept = ccount
        else:
            t, v = t[inside], v[inside]
            kept = np.add.reduceat(inside, np.cumsum(ccount) - ccount, dtype=np.int64)
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, weights=kept, minlength=len(ids)).astype(np.int64), out=offsets[1:])
        data = SeriesData(self.series_labels(ids), t, v, offsets)
        return data.without_deleted(ids, stones) if stones and not deleted else data

    def _decode(
        self, chunk_ids: np.ndarray, ccount: np.ndarray, codec: ChunkCodec
    ) -> tuple[np.ndarray, np.ndarray]:
        """Check the chunks' CRCs and decode them into flat timestamps and values."""
        ix = self._ix
        pos = ix["chunk_pos"][chunk_ids].tolist()
        size = ix["chunk_size"][chunk_ids].tolist()
        crc = ix["chunk_crc"][chunk_ids].tolist()
        view = memoryview(self._chunks)
        payloads = []
        for p, s, c in zip(pos, size, crc, strict=True):
            payload = view[p : p + s]
            if zlib.crc32(payload) != c:
                raise ValueError(f"{self.path}: chunk checksum mismatch at {p}")
            payloads.append(payload)
        return codec.decode(payloads, ccount)

    def _decode_cached(
        self, chunk_ids: np.ndarray, ccount: np.ndarray, codec: ChunkCodec
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_decode` through the chunk cache: only the misses are decoded (in one batch)."""
        cache = self._cache
        assert cache is not None
        keys = (chunk_ids + self._key_base).tolist()
        got = cache.get_many(keys)
        miss = [i for i, e in enumerate(got) if e is None]
        if miss:
            idx = np.asarray(miss, dtype=np.int64)
            t, v = self._decode(chunk_ids[idx], ccount[idx], codec)
            tv = np.empty((2, len(t)), dtype=np.int64)
            tv[0] = t
            tv[1] = v.view(np.int64)
            ends = np.cumsum(ccount[idx]).tolist()
            fresh = []
            start = 0
            for i, end in zip(miss, ends, strict=True):
                entry = tv[:, start:end].copy()
                got[i] = entry
                fresh.append(entry)
                start = end
            cache.put_many([keys[i] for i in miss], fresh)
            if len(miss) == len(got):
                return t, v
        # A copy even for one chunk: callers own (and may modify) what they get.
        tv = got[0].copy() if len(got) == 1 else np.concatenate(got, axis=1)  # type: ignore[union-attr,arg-type]
        return tv[0], tv[1].view(np.float64)

    def drop_cached(self) -> None:
        """Forget this block's decoded chunks and label sets (it is being closed or removed)."""
        if self._cache is not None:
            self._cache.drop(self._key_base, len(self._ix["chunk_pos"]))
        with self._labels_lock:
            if self._labels_kept and self._label_budget is not None:
                self._label_budget.give(self._labels_kept)
            self._labels_kept = 0
            self._labels = [None] * self.num_series

    def close(self) -> None:
        self.drop_cached()
        # A reader may still hold a view; the mapping then goes away with it.
        with contextlib.suppress(BufferError):
            self._chunks.close()
        self._chunk_file.close()
