"""Small files that are expensive to decode, made on the fly (tests and scripts/eval/fuzz_images.py).

* `scan_bomb`: a progressive JPEG of `width`×`height` (4096² by default) whose luma plane is
  sent as one DC scan and then `scans` AC scans made only of end-of-band runs. Each scan is a
  dozen bytes, yet libjpeg walks every 8×8 block of the image once per scan: ~3.5 ms per scan
  at 4096² here, so 4,000 scans (61 KB) take ~14 s.
* `zlib_bomb`: a PNG of 64×64 pixels whose IDAT zlib stream inflates to `inflated` bytes of
  zeros. Built from one full-flush deflate segment repeated (each segment inflates to 1 MiB on
  its own), so making a stream that inflates to gigabytes takes milliseconds. libpng inflates
  the surplus to the end just to throw it away: 5 GB took 15-20 s.
* `cut_with_eoi`: a JPEG cut inside its scan data and closed with an end-of-image marker, so
  that every structural check passes and only the decoder notices.
"""

from __future__ import annotations

import struct
import zlib


def _segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


class _BitWriter:
    """Entropy-coded bits, MSB first, with 0xFF bytes stuffed and the last byte padded with ones."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.count = 0

    def put(self, value: int, bits: int) -> None:
        for shift in range(bits - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> shift) & 1)
            self.count += 1
            if self.count == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0x00)
                self.acc = self.count = 0

    def finish(self) -> bytes:
        if self.count:
            pad = 8 - self.count
            self.put((1 << pad) - 1, pad)
        return bytes(self.out)


def scan_bomb(width: int = 4096, height: int = 4096, scans: int = 4000) -> bytes:
    """A greyscale progressive JPEG: one real DC scan, then `scans` empty AC scans (see the module doc)."""
    quant = _segment(0xDB, b"\x00" + bytes([1] * 64))
    frame = _segment(0xC2, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    # One Huffman code each: DC table 0 = {difference category 0}, AC table 0 = {EOB run of 2^14+}.
    dc_table = _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
    ac_table = _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\xe0")
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    dc = _BitWriter()
    for _ in range(blocks):
        dc.put(0, 1)  # every DC difference is 0
    dc_scan = _segment(0xDA, bytes([1, 1, 0x00, 0, 0, 0])) + dc.finish()
    ac = _BitWriter()
    left = blocks
    while left > 0:
        ac.put(0, 1)  # EOB14 ...
        ac.put(0x3FFF, 14)  # ... + 16383: 32767 blocks with nothing in band 1-63
        left -= 32767
    ac_scan = _segment(0xDA, bytes([1, 1, 0x00, 1, 63, 0])) + ac.finish()
    return b"\xff\xd8" + quant + frame + dc_table + ac_table + dc_scan + ac_scan * scans + b"\xff\xd9"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def zlib_bomb(inflated: int = 4 * 1024**3, width: int = 64, height: int = 64) -> bytes:
    """A `width`×`height` RGB PNG whose one IDAT inflates to about `inflated` bytes (a valid zlib stream)."""
    mib = 1 << 20
    packer = zlib.compressobj(9)
    segment = packer.compress(b"\x00" * mib) + packer.flush(zlib.Z_FULL_FLUSH)
    header, segment = segment[:2], segment[2:]  # the zlib header comes once
    count = max(1, inflated // mib)
    # Adler-32 of n zero bytes: a stays 1, b grows by a per byte.
    adler = ((count * mib) % 65521) << 16 | 1
    final = b"\x03\x00"  # an empty final block with fixed codes
    stream = header + segment * count + final + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b"")


def png_with_zlib_tail(png: bytes, inflated: int = 1024**3) -> bytes:
    """A real 8-bit PNG whose IDAT stream, after its real rows, goes on to inflate `inflated`
    more bytes of zeros: the picture decodes as before, and libpng inflates the tail to discard it."""
    pos, head, rows_stream = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IDAT":
            rows_stream += body
        elif kind != b"IEND":
            head += png[pos : pos + 12 + length]
        pos += 12 + length
    rows = zlib.decompress(rows_stream)
    mib = 1 << 20
    packer = zlib.compressobj(9)
    stream = packer.compress(rows) + packer.flush(zlib.Z_FULL_FLUSH)
    zeros = packer.compress(b"\x00" * mib) + packer.flush(zlib.Z_FULL_FLUSH)
    count = max(1, inflated // mib)
    stream += zeros * count + b"\x03\x00"
    adler = zlib.adler32(rows)
    a, b = adler & 0xFFFF, adler >> 16
    b = (b + a * count * mib) % 65521  # each zero byte adds a to b
    stream += struct.pack(">I", (b << 16) | a)
    return png[:8] + head + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b"")


def cut_with_eoi(jpeg: bytes, fraction: float = 0.5) -> bytes:
    """`jpeg` cut at `fraction` of its length (inside the scan data) and closed with EOI."""
    cut = int(len(jpeg) * fraction)
    body = jpeg[:cut]
    while body.endswith(b"\xff"):  # a dangling 0xFF would join the EOI marker
        body = body[:-1]
    return body + b"\xff\xd9"


__all__ = ["cut_with_eoi", "png_chunk", "png_with_zlib_tail", "scan_bomb", "zlib_bomb"]


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk CRC, so mutations reach the decoder instead of the CRC check."""
    buf = bytearray(data)
    pos = 8
    while pos + 12 <= len(buf):
        length = struct.unpack_from(">I", buf, pos)[0]
        end = pos + 12 + length
        if end > len(buf):
            break
        struct.pack_into(">I", buf, end - 4, zlib.crc32(bytes(buf[pos + 4 : end - 4])))
        pos = end
    return bytes(buf)
