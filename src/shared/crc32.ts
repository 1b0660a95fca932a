// CRC-32 (IEEE 802.3, the zlib/PNG polynomial). Every byte of every gradient frame is checksummed
// twice (by the sender and by the receiver) on the tab's main thread, next to the training loop, so
// this is written for speed: slicing-by-8 (Intel's algorithm, as in zlib's braided CRC) folds eight
// bytes per iteration through eight 256-entry tables, about 4x the bytes per second of the one-lookup-
// per-byte loop in V8 (bench/crc32.ts measures both). The tables (8 KiB) are built once at module load.

const POLY = 0xedb88320;

/**
 * TABLES[k * 256 + n] is the CRC register after feeding byte n followed by k zero bytes: eight bytes
 * can then be folded at once, each through the table of its distance from the end of the group.
 */
const TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let k = 1; k < 8; k++) {
    for (let n = 0; n < 256; n++) {
      const prev = t[(k - 1) * 256 + n];
      t[k * 256 + n] = (t[prev & 0xff] ^ (prev >>> 8)) >>> 0;
    }
  }
  return t;
})();

/**
 * Continues a CRC over `bytes`. Start with `crc = 0` (the default) for a fresh checksum; pass the
 * previous result to checksum several ranges as if they were one (header + payload without a copy).
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  const t = TABLES;
  let c = ~crc;
  let i = 0;
  const n = bytes.length;
  const blocks = n - (n % 8);
  for (; i < blocks; i += 8) {
    // The register absorbs the first four bytes; the next four are independent of it.
    const lo = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c =
      t[1792 + (lo & 0xff)] ^
      t[1536 + ((lo >>> 8) & 0xff)] ^
      t[1280 + ((lo >>> 16) & 0xff)] ^
      t[1024 + (lo >>> 24)] ^
      t[768 + bytes[i + 4]] ^
      t[512 + bytes[i + 5]] ^
      t[256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** The plain one-lookup-per-byte CRC-32: the reference the fast one is tested and benchmarked against. */
export function crc32Bytewise(bytes: Uint8Array, crc = 0): number {
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) c = TABLES[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
