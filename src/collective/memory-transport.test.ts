import { describe, expect, it } from 'vitest';
import { PeerLostError, createMemoryMesh } from './memory-transport';

const tag = (chunk: number) => ({ round: 1, collective: 0, chunk });

describe('in-memory transport', () => {
  it('delivers by tag, keeping messages that arrive before they are asked for', async () => {
    const [a, b] = createMemoryMesh(2);
    await a.send(1, tag(2), Uint8Array.of(2));
    await a.send(1, tag(1), Uint8Array.of(1));
    expect(b.pendingMessages).toBe(2);
    expect(Array.from(await b.recv(0, tag(1)))).toEqual([1]);
    const later = b.recv(0, tag(3));
    await a.send(1, tag(3), Uint8Array.of(3));
    expect(Array.from(await later)).toEqual([3]);
    expect(Array.from(await b.recv(0, tag(2)))).toEqual([2]);
    expect(b.pendingMessages).toBe(0);
  });

  it('copies on send, like a wire', async () => {
    const [a, b] = createMemoryMesh(2);
    const payload = Uint8Array.of(7, 7);
    await a.send(1, tag(0), payload);
    payload.fill(0);
    expect(Array.from(await b.recv(0, tag(0)))).toEqual([7, 7]);
  });

  it('simulates latency and bandwidth per link', async () => {
    const [a, b] = createMemoryMesh(2, { latencyMs: 30, bytesPerSec: 100_000 });
    const t0 = performance.now();
    const sent = a.send(1, tag(0), new Uint8Array(2000)); // 20 ms on the wire
    const got = b.recv(0, tag(0));
    await sent;
    const leftAfter = performance.now() - t0;
    await got;
    const arrivedAfter = performance.now() - t0;
    expect(leftAfter).toBeGreaterThanOrEqual(18);
    expect(arrivedAfter).toBeGreaterThanOrEqual(48);
  });

  it('rejects receives from and sends to a killed rank, and the dead rank\'s own calls', async () => {
    const [a, b, c] = createMemoryMesh(3);
    const waiting = a.recv(1, tag(0));
    const deadWaiting = b.recv(2, tag(0));
    b.kill();
    await expect(waiting).rejects.toBeInstanceOf(PeerLostError);
    await expect(deadWaiting).rejects.toBeInstanceOf(PeerLostError);
    await expect(a.recv(1, tag(1))).rejects.toThrow(/gone/);
    await expect(c.send(1, tag(0), new Uint8Array(1))).rejects.toThrow(/gone/);
    await expect(b.send(0, tag(0), new Uint8Array(1))).rejects.toBeInstanceOf(PeerLostError);
    // The living keep talking.
    await a.send(2, tag(5), Uint8Array.of(5));
    expect(Array.from(await c.recv(0, tag(5)))).toEqual([5]);
  });

  it('times out a receive that nobody answers', async () => {
    const [a] = createMemoryMesh(2, { recvTimeoutMs: 20 });
    await expect(a.recv(1, tag(0))).rejects.toThrow(/timed out/);
  });

  it('refuses invalid peers', async () => {
    const [a] = createMemoryMesh(2);
    await expect(a.send(0, tag(0), new Uint8Array(1))).rejects.toThrow(/invalid peer/);
    expect(() => a.recv(5, tag(0))).toThrow(/invalid peer/);
    expect(() => createMemoryMesh(0)).toThrow(/world/);
  });
});
