import { describe, expect, it } from 'vitest';
import { VIEW_ALIGNMENT } from '../engine/backend';
import { buildLayout, entry, groupRange, paramsHash } from './layout';

const ZERO = { kind: 'constant', value: 0 } as const;
const specs = [
  { name: 'a.w', shape: [3, 5], group: 'a', decay: true, init: ZERO },
  { name: 'a.b', shape: [5], group: 'a', decay: false, init: ZERO },
  { name: 'b.w', shape: [100], group: 'b', decay: true, init: ZERO },
];

describe('buildLayout', () => {
  it('aligns every offset and sums lengths', () => {
    const layout = buildLayout(specs);
    for (const e of layout.entries) expect(e.offset % VIEW_ALIGNMENT).toBe(0);
    expect(entry(layout, 'a.w')).toMatchObject({ offset: 0, length: 15 });
    expect(entry(layout, 'a.b')).toMatchObject({ offset: 64, length: 5 });
    expect(entry(layout, 'b.w')).toMatchObject({ offset: 128, length: 100 });
    expect(layout.totalLength).toBe(256);
    expect(layout.paramCount).toBe(120);
  });

  it('gives each layer group one contiguous range', () => {
    const layout = buildLayout(specs);
    expect(groupRange(layout, 'a')).toEqual({ offset: 0, length: 128 });
    expect(groupRange(layout, 'b')).toEqual({ offset: 128, length: 128 });
  });

  it('refuses bad input with a clear error', () => {
    expect(() => buildLayout([specs[0], specs[0]])).toThrow(/duplicate/);
    expect(() => buildLayout([{ name: 'x', shape: [0], group: 'g', decay: true, init: ZERO }])).toThrow(/invalid shape/);
    expect(() => buildLayout([specs[0], specs[2], { ...specs[1], name: 'a.c' }])).toThrow(/not contiguous/);
    expect(() => entry(buildLayout(specs), 'nope')).toThrow(/no tensor/);
  });
});

describe('paramsHash', () => {
  it('matches the published FNV-1a 64 test vectors', () => {
    expect(paramsHash(new Uint8Array([]))).toBe('cbf29ce484222325');
    expect(paramsHash(new TextEncoder().encode('a'))).toBe('af63dc4c8601ec8c');
    expect(paramsHash(new TextEncoder().encode('foobar'))).toBe('85944171f73967e8');
  });

  it('changes when one bit changes and respects subarray bounds', () => {
    const a = new Float32Array([1, 2, 3, 4]);
    const b = new Float32Array([1, 2, 3, 4.000001]);
    expect(paramsHash(a)).not.toBe(paramsHash(b));
    expect(paramsHash(a.subarray(1, 3))).toBe(paramsHash(new Float32Array([2, 3])));
  });

  it('hashes a million floats quickly', () => {
    const big = new Float32Array(1 << 20).map((_, i) => Math.sin(i));
    const t0 = performance.now();
    paramsHash(big);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
