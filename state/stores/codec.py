"""How a profile is kept in a partition's table and changelog: its JSON, compressed with
Zstandard against a dictionary made from the profile's schema.

A profile's JSON is mostly names (``"last_touched_at":``), repeated event kinds and
timestamps; a few kilobytes is too little for a compressor to learn them on its own. The
dictionary gives it those names up front. It is not trained on any data: it is the JSON
of two sample profiles built from the schema (every collection with one entry, optional
fields present and then absent) and the contract's event kinds, so it fits whatever
shop and identifiers a deployment has (docs/decisions.md measures it).

Every stored value says how it was written: ``\\x00`` and the dictionary's version, then
the frame; a value that starts with ``{`` is plain JSON, as tables before version 1 held,
and is still read. A dictionary is never changed once released: a new one (when the
schema has moved on enough to matter) gets the next version, and the old ones stay, so
every table ever written can be read.

>>> from state.profile import Profile
>>> codec = ProfileCodec()
>>> stored = codec.encode(Profile(key="c1", tags=["vip"]))
>>> stored[:2], codec.decode(stored).tags, codec.decode(b'{"key":"c2"}').key
(b'\\x00\\x02', ['vip'], 'c2')
"""

from __future__ import annotations

import threading
from importlib.resources import files
from typing import Any

import msgspec
import zstandard
from msgspec import inspect

from schemas.events import EVENT_TYPES
from state.profile import Profile

#: The dictionary new values are written with.
CURRENT = 2
#: Zstandard level: 3 is the library's default, about as fast as 1 here and smaller.
LEVEL = 3
_MARK = 0x00
_Contexts = tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]


def _dictionary_bytes(version: int) -> bytes:
    return files("state.stores").joinpath(f"profile-{version}.zdict").read_bytes()


class ProfileCodec:
    """Encodes and decodes stored profiles; one per thread of use (zstd contexts are not
    shared between threads)."""

    def __init__(self) -> None:
        self._json = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(Profile)
        self._local = threading.local()

    def _contexts(self) -> dict[int, _Contexts]:
        contexts: dict[int, _Contexts] | None = getattr(self._local, "contexts", None)
        if contexts is None:
            contexts = self._local.contexts = {}
        return contexts

    def _context(self, version: int) -> _Contexts:
        contexts = self._contexts()
        pair = contexts.get(version)
        if pair is None:
            data = zstandard.ZstdCompressionDict(
                _dictionary_bytes(version), dict_type=zstandard.DICT_TYPE_RAWCONTENT
            )
            data.precompute_compress(level=LEVEL)
            pair = contexts[version] = (
                zstandard.ZstdCompressor(dict_data=data, write_checksum=False, write_dict_id=False),
                zstandard.ZstdDecompressor(dict_data=data),
            )
        return pair

    def encode_json(self, profile: Profile) -> bytes:
        """The profile's JSON, as compressed by ``compress`` (to tell what changed)."""
        return self._json.encode(profile)

    def compress(self, json: bytes) -> bytes:
        """The stored form of a profile's JSON."""
        compressor = self._context(CURRENT)[0]
        return bytes((_MARK, CURRENT)) + compressor.compress(json)

    def encode(self, profile: Profile) -> bytes:
        return self.compress(self.encode_json(profile))

    def decode(self, stored: bytes) -> Profile:
        """A stored profile, in any format ever written; ``ValueError`` if it is none."""
        if stored[:1] == b"{":
            return self._decoder.decode(stored)
        if len(stored) < 2 or stored[0] != _MARK:
            raise ValueError(f"not a stored profile: starts with {stored[:4]!r}")
        try:
            decompressor = self._context(stored[1])[1]
        except FileNotFoundError:
            raise ValueError(
                f"stored with dictionary {stored[1]}, which this version lacks"
            ) from None
        return self._decoder.decode(decompressor.decompress(stored[2:]))


def build_dictionary() -> bytes:
    """The content of a new dictionary from the schema as it is now (a release adds it as
    the next version; released ones never change)."""
    info = inspect.type_info(Profile)
    kinds = b" ".join(kind.encode() for kind in EVENT_TYPES)
    return (
        kinds
        + msgspec.json.encode(sample_value(info, absent=False))
        + msgspec.json.encode(sample_value(info, absent=True))
    )


def sample_value(t: Any, absent: bool) -> Any:
    """A value of type ``t`` with one entry in every collection; optional fields ``None``
    when ``absent``."""
    if isinstance(t, inspect.StructType):
        return t.cls(**{f.name: sample_value(f.type, absent) for f in t.fields})
    if isinstance(t, inspect.UnionType):
        present = [x for x in t.types if not isinstance(x, inspect.NoneType)]
        if (absent and len(present) < len(t.types)) or not present:
            return None
        return sample_value(present[0], absent)
    if isinstance(t, inspect.DictType):
        return {sample_value(t.key_type, absent): sample_value(t.value_type, absent)}
    if isinstance(
        t, inspect.ListType | inspect.SetType | inspect.FrozenSetType | inspect.VarTupleType
    ):
        return [sample_value(t.item_type, absent)]
    if isinstance(t, inspect.TupleType):
        return tuple(sample_value(x, absent) for x in t.item_types)
    if isinstance(t, inspect.LiteralType):
        return t.values[0]
    scalars: dict[type, object] = {
        inspect.StrType: "",
        inspect.IntType: 0,
        inspect.FloatType: 0.0,
        inspect.BoolType: False,
        inspect.BytesType: b"",
    }
    return scalars.get(type(t))
