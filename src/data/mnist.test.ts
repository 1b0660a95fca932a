import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeMnist, MNIST_FILE, parseMnist } from './mnist';

describe('MNIST binary', () => {
  it('round-trips through encode and parse', () => {
    const train = { labels: Uint8Array.from([1, 2]), pixels: Uint8Array.from({ length: 8 }, (_, i) => i * 30) };
    const test = { labels: Uint8Array.from([9]), pixels: Uint8Array.from([7, 8, 9, 10]) };
    const data = parseMnist(encodeMnist(train, test, 2, 2));
    expect(data.train.count).toBe(2);
    expect(data.test.count).toBe(1);
    expect(Array.from(data.train.labels)).toEqual([1, 2]);
    expect(Array.from(data.test.inputs)).toEqual([7, 8, 9, 10]);
    expect(data.train.image).toEqual({ height: 2, width: 2 });
  });

  it('refuses corrupt files with a clear error', () => {
    const good = encodeMnist({ labels: Uint8Array.from([1]), pixels: new Uint8Array(4) }, { labels: Uint8Array.from([2]), pixels: new Uint8Array(4) }, 2, 2);
    expect(() => parseMnist(good.subarray(0, 10))).toThrow(/too short/);
    expect(() => parseMnist(good.subarray(0, good.length - 1))).toThrow(/header says/);
    const badMagic = good.slice();
    badMagic[0] = 0;
    expect(() => parseMnist(badMagic)).toThrow(/not a lab MNIST/);
    const badLabel = good.slice();
    badLabel[28] = 12;
    expect(() => parseMnist(badLabel)).toThrow(/labels/);
  });

  const prepared = join(process.cwd(), 'public', 'data', MNIST_FILE);
  it('the prepared file holds 10,000 real digits, >= 1,000 held out, every class in both splits', () => {
    // Missing data is a failure, not a skip: the lab and the e2e tests train on this file.
    if (!existsSync(prepared)) throw new Error(`${prepared} is missing: run \`npm run prepare-data\` first`);
    const data = parseMnist(new Uint8Array(readFileSync(prepared)));
    expect(data.train.count + data.test.count).toBe(10000);
    expect(data.test.count).toBeGreaterThanOrEqual(1000);
    for (const split of [data.train, data.test]) {
      const perClass = new Array(10).fill(0);
      for (const l of split.labels) perClass[l]++;
      expect(Math.min(...perClass)).toBeGreaterThan(split.count / 20);
    }
    // Real digits: ink covers roughly 10-25% of the pixels on average.
    let ink = 0;
    for (const p of data.test.inputs) if (p > 127) ink++;
    expect(ink / data.test.inputs.length).toBeGreaterThan(0.05);
    expect(ink / data.test.inputs.length).toBeLessThan(0.3);
  });
});
