// Helper process of server/abuse.test.ts: two honest members of one room (from 127.0.0.2 and .3) that
// exchange a signal every 25 ms and measure its latency at the receiver. It runs in its own process
// so that the attackers' loops in the test process cannot stall it: what it measures is the server.
// Usage: node --import tsx server/abuse-honest-pair.ts PORT ORIGIN. Prints `ready` once both joined;
// each line `report` on stdin prints one JSON line { count, median, p95, max, open }; exits when
// stdin closes.
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import type { ServerMessage } from '../src/peer/signal-protocol';

const [port, origin] = process.argv.slice(2);

function member(local: string): Promise<{ socket: WebSocket; peerId: string }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/signal`, { localAddress: local, origin });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('open', () => socket.send(JSON.stringify({ type: 'join', room: 'HONEST' })));
    socket.once('message', (data) => {
      const msg = JSON.parse(data.toString()) as ServerMessage;
      if (msg.type === 'welcome') resolve({ socket, peerId: msg.peerId });
      else reject(new Error(`join refused: ${data.toString()}`));
    });
  });
}

async function main(): Promise<void> {
  const a = await member('127.0.0.2');
  const b = await member('127.0.0.3');
  const latencies: number[] = [];
  b.socket.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as ServerMessage;
    if (msg.type === 'signal' && typeof msg.data.sentAt === 'number') latencies.push(performance.now() - msg.data.sentAt);
  });
  const probe = setInterval(() => {
    if (a.socket.readyState === WebSocket.OPEN) a.socket.send(JSON.stringify({ type: 'signal', to: b.peerId, data: { sentAt: performance.now() } }));
  }, 25);
  console.log('ready');
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() !== 'report') return;
    const sorted = [...latencies].sort((x, y) => x - y);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
    const open = a.socket.readyState === WebSocket.OPEN && b.socket.readyState === WebSocket.OPEN;
    console.log(JSON.stringify({ count: sorted.length, median: q(0.5), p95: q(0.95), max: sorted[sorted.length - 1] ?? NaN, open }));
  });
  lines.on('close', () => {
    clearInterval(probe);
    a.socket.terminate();
    b.socket.terminate();
    process.exit(0);
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
