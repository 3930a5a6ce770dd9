"""A partition's profiles kept in memory and written through to a changelogged key-value table.

The worker gives each partition one of these over its Faust table (the table and the
changelog writer are passed in, so this module needs no Kafka). Profiles are decoded
once, when a partition is taken over, and the engine works on them in memory. ``flush``
encodes the profiles touched since the last flush and hands those that changed, links
included, to the writer, so a new owner of the partition recovers exactly this state.

The store only reads the table (when it is made). The writer stores each write: the
worker sends it to the changelog and, once the broker has it, puts it in the local table,
so the local copy is never ahead of the changelog; ``into(table)`` stores at once.

Keys carry the partition, because one worker's table holds several partitions:
``<partition>:p:<profile key>`` for profiles, ``<partition>:l:<anonymous key>`` for
links and ``<partition>:m`` for the partition's bookkeeping (how far input was read, the
engine's clock), which ``flush`` writes last. Profiles are stored compressed
(``state/stores/codec.py``: about a quarter of their JSON).

>>> from state.profile import Profile
>>> table: dict[bytes, bytes] = {}
>>> store = ChangelogProfileStore(3, table, into(table))
>>> store.put(Profile(key="c1")); store.link("anon:a1", "c1")
>>> store.flush(), sorted(table)
(2, [b'3:l:anon:a1', b'3:p:c1'])
>>> again = ChangelogProfileStore(3, table, into(table))
>>> again.get("c1").key, again.resolve("anon:a1"), store.flush()
('c1', 'c1', 0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping

import msgspec

from state.profile import Profile
from state.stores.base import PartitionMeta
from state.stores.codec import ProfileCodec
from state.stores.memory import MemoryProfileStore

#: Called for every write: (table key, encoded value, or None to delete).
ChangelogWriter = Callable[[bytes, bytes | None], None]


def into(table: MutableMapping[bytes, bytes]) -> ChangelogWriter:
    """A writer that stores each write in ``table`` at once (tests, the embedded runner)."""

    def write(key: bytes, value: bytes | None) -> None:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value

    return write


_ENCODER = msgspec.json.Encoder()
_META = msgspec.json.Decoder(PartitionMeta)


class ChangelogProfileStore:
    """A partition's profiles in memory, written through to a changelogged table; passes
    the store contract (``tests/state/test_store_contract.py``).

    >>> table: dict[bytes, bytes] = {}
    >>> store = ChangelogProfileStore(0, table, into(table))
    >>> store.put(Profile(key="c1", tags=["vip"])); [key for key, _ in store.stage()]
    ['c1']
    >>> store.flush(), table[b"0:p:c1"][:1]
    (1, b'\\x00')
    >>> ChangelogProfileStore(0, table, into(table)).get("c1").tags
    ['vip']
    """

    def __init__(
        self, partition: int, table: MutableMapping[bytes, bytes], write: ChangelogWriter
    ) -> None:
        self.partition = partition
        self._table = table
        self._write = write
        self._memory = MemoryProfileStore()
        self._profile_prefix = f"{partition}:p:".encode()
        self._link_prefix = f"{partition}:l:".encode()
        self._codec = ProfileCodec()
        #: table key -> the bytes last written (or recovered) under it
        self._written: dict[bytes, bytes] = {}
        #: profile table key -> the JSON of the profile last written (stored compressed),
        #: to tell whether a touched profile changed
        self._json: dict[bytes, bytes] = {}
        self._touched: set[str] = set()
        #: table key -> encoded profile (None: deleted) staged for the next flush
        self._staged: dict[bytes, bytes | None] = {}
        self._links_touched: set[str] = set()
        self._meta_key = f"{partition}:m".encode()
        #: The partition's bookkeeping as last written or recovered.
        self.meta: PartitionMeta = PartitionMeta()
        self._load()

    def _load(self) -> None:
        for raw_key, value in list(self._table.items()):
            key = raw_key if isinstance(raw_key, bytes) else str(raw_key).encode()
            if key.startswith(self._profile_prefix):
                profile = self._codec.decode(value)
                self._memory.put(profile)
                self._written[key] = value
                self._json[key] = self._codec.encode_json(profile)
            elif key.startswith(self._link_prefix):
                self._memory.link(key[len(self._link_prefix) :].decode(), value.decode())
                self._written[key] = value
            elif key == self._meta_key:
                self.meta = _META.decode(value)
                self._written[key] = value

    # --- the ProfileStore protocol --------------------------------------------------------

    def get(self, key: str) -> Profile | None:
        self._touched.add(key)  # the engine changes profiles in place
        return self._memory.get(key)

    def put(self, profile: Profile) -> None:
        self._touched.add(profile.key)
        self._memory.put(profile)

    def delete(self, key: str) -> None:
        self._touched.add(key)
        self._memory.delete(key)

    def resolve(self, key: str) -> str:
        return self._memory.resolve(key)

    def link(self, anonymous_key: str, customer_key: str) -> None:
        self._links_touched.add(anonymous_key)
        self._memory.link(anonymous_key, customer_key)

    def unlink_all(self, customer_key: str) -> None:
        for anonymous_key in self._memory.linked_to(customer_key):
            self._links_touched.add(anonymous_key)
        self._memory.unlink_all(customer_key)

    def sorted_keys(self) -> Iterator[str]:
        return self._memory.sorted_keys()

    def profiles(self) -> Iterator[Profile]:
        return self._memory.profiles()

    def __len__(self) -> int:
        return len(self._memory)

    def encoded_bytes(self) -> int:
        """Bytes of the partition's table as last written (the encoded profiles, links and
        bookkeeping this store keeps to tell what changed): about what its profiles take."""
        return sum(len(value) for value in self._written.values())

    # --- writing through ------------------------------------------------------------------

    def stage(self) -> list[tuple[str, Profile | None]]:
        """Encode the profiles touched since the last call and keep those that changed for
        the next ``flush``; return them (None for a deleted one) so other stores can be
        written first. Nothing is written to the table here."""
        changed: list[tuple[str, Profile | None]] = []
        encode, known = self._codec.encode_json, self._json
        for key in self._touched:
            profile = self._memory.get(key)
            value = None if profile is None else encode(profile)
            table_key = self._profile_prefix + key.encode()
            if known.get(table_key) != value:
                self._staged[table_key] = value
                if value is None:
                    known.pop(table_key, None)
                else:
                    known[table_key] = value
                changed.append((key, profile))
        self._touched.clear()
        return changed

    def flush(self, meta: PartitionMeta | None = None) -> int:
        """Hand the writer every touched profile and link that changed, then ``meta``;
        return how many writes. The bookkeeping goes last, on the same changelog partition: when it is
        stored, so are the profiles it speaks for. If a crash loses it, the events read
        since the previous one count as new, and profiles know them by their recent ids."""
        self.stage()
        writes = 0
        compress = self._codec.compress
        for table_key, value in self._staged.items():
            writes += self._put(table_key, None if value is None else compress(value))
        self._staged.clear()
        for anonymous_key in self._links_touched:
            target = self._memory.resolve(anonymous_key)
            value = None if target == anonymous_key else target.encode()
            writes += self._put(self._link_prefix + anonymous_key.encode(), value)
        self._links_touched.clear()
        if meta is not None:
            self.meta = meta
            writes += self._put(self._meta_key, _ENCODER.encode(meta))
        return writes

    def _put(self, table_key: bytes, value: bytes | None) -> int:
        if self._written.get(table_key) == value:
            return 0
        if value is None:
            self._written.pop(table_key, None)
        else:
            self._written[table_key] = value
        self._write(table_key, value)
        return 1
