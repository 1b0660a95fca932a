import { describe, expect, it } from 'vitest';
import { RingBuffer } from './ring-buffer';

describe('RingBuffer', () => {
  it('keeps the newest `capacity` items in order', () => {
    const ring = new RingBuffer<number>(3);
    for (let i = 1; i <= 5; i++) ring.push(i);
    expect(ring.toArray()).toEqual([3, 4, 5]);
    expect(ring.size).toBe(3);
    expect(ring.pushed).toBe(5);
    expect(ring.at(0)).toBe(3);
    expect(ring.last()).toBe(5);
    expect(ring.at(3)).toBeUndefined();
  });

  it('returns what arrived since a sequence number, or what is left of it', () => {
    const ring = new RingBuffer<string>(4);
    ['a', 'b', 'c'].forEach((x) => ring.push(x));
    const cursor = ring.pushed;
    ['d', 'e'].forEach((x) => ring.push(x));
    expect(ring.since(cursor)).toEqual(['d', 'e']);
    expect(ring.since(0)).toEqual(['b', 'c', 'd', 'e']);
    expect(ring.since(ring.pushed)).toEqual([]);
  });

  it('clears but keeps counting sequence numbers', () => {
    const ring = new RingBuffer<number>(2);
    ring.push(1);
    ring.clear();
    expect(ring.size).toBe(0);
    ring.push(7);
    expect(ring.toArray()).toEqual([7]);
    expect(ring.since(1)).toEqual([7]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new RingBuffer(0)).toThrow(/positive integer/);
    expect(() => new RingBuffer(1.5)).toThrow(/positive integer/);
  });
});
