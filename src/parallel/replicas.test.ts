import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { exchangeHashes } from './replicas';

describe('exchangeHashes', () => {
  it('gives every rank every hash, and names the ranks that differ from rank 0', async () => {
    const mesh = createMemoryMesh(4);
    const hashes = ['0123456789abcdef', '0123456789abcdef', 'fedcba9876543210', '0123456789abcdef'];
    const results = await Promise.all(mesh.map((t) => exchangeHashes(t, 7, hashes[t.rank])));
    for (const result of results) {
      expect(result.hashes).toEqual(hashes);
      expect(result.agree).toBe(false);
      expect(result.outliers).toEqual([2]);
    }
    const same = await Promise.all(mesh.map((t) => exchangeHashes(t, 8, hashes[0])));
    expect(same.every((r) => r.agree && r.outliers.length === 0)).toBe(true);
  });

  it('carries one float64 per rank with the hash (a step\'s loss): every rank gets every value, NaN where none was sent', async () => {
    const mesh = createMemoryMesh(3);
    const results = await Promise.all(mesh.map((t) => exchangeHashes(t, 2, '0123456789abcdef', undefined, t.rank === 1 ? undefined : 0.25 + t.rank)));
    for (const result of results) expect(result.values).toEqual([0.25, Number.NaN, 2.25]);
  });

  it('takes one ring all-gather: N-1 messages per rank, 24 bytes each (the hash and a float64)', async () => {
    const mesh = createMemoryMesh(5);
    const sent: number[] = [];
    await Promise.all(
      mesh.map((t) => exchangeHashes(t, 1, '00000000000000aa', (e) => e.direction === 'send' && t.rank === 0 && sent.push(e.bytes))),
    );
    expect(sent).toEqual([24, 24, 24, 24]);
  });

  it('compares only the ranks it is told to (the holders of a step some tabs sat out): a parked rank\'s older hash is no disagreement, a holder\'s is', async () => {
    const mesh = createMemoryMesh(3);
    const held = '0123456789abcdef';
    const parked = 'fedcba9876543210';
    const agree = await Promise.all(mesh.map((t) => exchangeHashes(t, 4, t.rank === 1 ? held : parked, undefined, undefined, [1])));
    for (const result of agree) expect(result).toMatchObject({ agree: true, outliers: [] });
    const differ = await Promise.all(mesh.map((t) => exchangeHashes(t, 5, t.rank === 2 ? parked : held, undefined, undefined, [1, 2])));
    for (const result of differ) expect(result).toMatchObject({ agree: false, outliers: [2] });
    await expect(exchangeHashes(mesh[0], 6, held, undefined, undefined, [])).rejects.toThrow(/compared ranks/);
  });

  it('refuses a hash that is not 16 hex digits before sending anything', async () => {
    const [t] = createMemoryMesh(1);
    await expect(exchangeHashes(t, 1, 'not a hash')).rejects.toThrow(/16 hex digits/);
  });
});
