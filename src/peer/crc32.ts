// CRC-32 (IEEE 802.3, the zlib/PNG polynomial), table-driven: one table lookup per byte. The table is
// built once at module load. Used by the frame checksum (frame.ts), so it must be fast on megabytes.

const POLY = 0xedb88320;

const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * Continues a CRC over `bytes`. Start with `crc = 0` (the default) for a fresh checksum; pass the
 * previous result to checksum several ranges as if they were one (header + payload without a copy).
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
