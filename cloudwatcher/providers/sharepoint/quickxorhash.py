"""QuickXorHash: the only content hash OneDrive for Business and SharePoint report.

Microsoft's published algorithm (OneDrive docs, "QuickXorHash", C# reference code): a 160-bit
state; byte ``n`` of the input is XORed into the state at bit offset ``11·n mod 160``, wrapping
around the 160 bits as a circular register; at the end the state is written little-endian
(20 bytes), the total length (64-bit little-endian) is XORed into the last 8 bytes, and the
result is base64-encoded. The driveItem's ``file.hashes.quickXorHash`` is that base64 text.

The reference code loops over every byte. Here each update is folded first: bytes whose
positions are congruent modulo 160 land on the same bit offset, so XORing 160-byte blocks
together (as integers) and then placing the 160 folded bytes costs one big-integer operation
per 160 input bytes instead of one Python operation per byte.
"""

from __future__ import annotations

import base64

__all__ = ["QuickXorHash", "quickxorhash"]

WIDTH_BITS = 160
SHIFT = 11
_BLOCK = WIDTH_BITS  # bytes per fold: after 160 bytes the bit offset repeats
_MASK = (1 << WIDTH_BITS) - 1


class QuickXorHash:
    """Incremental QuickXorHash, in the style of :mod:`hashlib` objects."""

    name = "quickxor"
    digest_size = WIDTH_BITS // 8

    def __init__(self, data: bytes = b"") -> None:
        self._state = 0  # the 160-bit circular register
        self._length = 0  # bytes hashed so far
        if data:
            self.update(data)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Hash more bytes; any split of the input gives the same digest."""
        view = memoryview(data).cast("B")
        size = len(view)
        if not size:
            return
        folded = 0
        for start in range(0, size, _BLOCK):
            folded ^= int.from_bytes(view[start : start + _BLOCK], "little")
        columns = folded.to_bytes(_BLOCK, "little")
        shift = (self._length * SHIFT) % WIDTH_BITS
        state = self._state
        for column in range(min(size, _BLOCK)):
            value = columns[column]
            if value:
                offset = (shift + column * SHIFT) % WIDTH_BITS
                placed = value << offset
                state ^= (placed | (placed >> WIDTH_BITS)) & _MASK
        self._state = state
        self._length += size

    def digest(self) -> bytes:
        """The 20-byte hash: the state little-endian, with the length XORed into its last 8 bytes."""
        length_bits = (self._length & 0xFFFFFFFFFFFFFFFF) << (WIDTH_BITS - 64)
        return (self._state ^ length_bits).to_bytes(self.digest_size, "little")

    def b64digest(self) -> str:
        """The digest as Graph reports it (``file.hashes.quickXorHash``)."""
        return base64.b64encode(self.digest()).decode("ascii")

    def copy(self) -> QuickXorHash:
        clone = QuickXorHash()
        clone._state, clone._length = self._state, self._length
        return clone


def quickxorhash(data: bytes) -> str:
    """The base64 QuickXorHash of ``data`` in one call."""
    return QuickXorHash(data).b64digest()
