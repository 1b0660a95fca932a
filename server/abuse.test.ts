// The signalling server probed as a hostile client would, against a REAL server process
// (`node --import tsx server/main.ts --port 0` on loopback, default limits). Each attacker speaks from
// its own loopback address (Linux routes all of 127.0.0.0/8 to `lo`), so per-address limits are
// exercised without one case using up another's share. Every loop is bounded and stops by itself.
//
// Throughout, two honest members (127.0.0.2 and .3, in their own process: abuse-honest-pair.ts) exchange
// a signal every 25 ms; the last cases
// check that their latency stayed low, that the server's RSS stayed bounded, and that the process
// survived (the crash case runs last, so that the others show their own result first).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ServerMessage } from '../src/peer/signal-protocol';

const PAGE_ORIGIN = 'http://127.0.0.1:5173'; // allowed by main.ts when no --allow-origin is given
let server: ChildProcess;
let port: number;
let exited: { code: number | null; signal: string | null } | null = null;
const serverOutput: string[] = [];

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]);
  return kib / 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A ws client from a chosen loopback address that queues what it receives. */
class Client {
  readonly socket: WebSocket;
  readonly received: ServerMessage[] = [];
  private waiters: Array<() => void> = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  peerId = '';

  constructor(local: string, origin: string | null = PAGE_ORIGIN, headers: Record<string, string> = {}) {
    this.socket = new WebSocket(`ws://127.0.0.1:${port}/signal`, {
      localAddress: local,
      headers: { ...(origin ? { origin } : {}), ...headers },
    });
    this.socket.on('message', (data) => {
      this.received.push(JSON.parse(data.toString()) as ServerMessage);
      for (const w of this.waiters.splice(0)) w();
    });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
      this.socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => this.socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Waits until a received message matches, up to `ms`. */
  async waitFor(match: (m: ServerMessage) => boolean, ms = 5000): Promise<ServerMessage> {
    const deadline = performance.now() + ms;
    for (;;) {
      const found = this.received.find(match);
      if (found) return found;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no matching message within ${ms} ms (got ${JSON.stringify(this.received.slice(-3))})`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(Math.min(left, 200))]);
    }
  }

  send(msg: unknown): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  async join(room: string): Promise<string> {
    await this.opened;
    this.send({ type: 'join', room });
    const welcome = await this.waitFor((m) => m.type === 'welcome' || m.type === 'error');
    if (welcome.type !== 'welcome') throw new Error(`join refused: ${JSON.stringify(welcome)}`);
    this.peerId = welcome.peerId;
    return welcome.peerId;
  }

  close(): void {
    this.socket.terminate();
  }
}

/** Resolves true if the promise settles within `ms`, false otherwise. */
const settlesWithin = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), sleep(ms).then(() => false)]);

// --- the honest pair: its own process (server/abuse-honest-pair.ts), a signal every 25 ms ----------
let honest: ChildProcess;
let honestLines: string[] = [];
let rssBefore = 0;

function nextHonestLine(ms: number): Promise<string> {
  const deadline = performance.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => {
      const line = honestLines.shift();
      if (line !== undefined) return resolve(line);
      if (performance.now() > deadline) return reject(new Error(`the honest pair said nothing within ${ms} ms`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

function spawnTsx(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

beforeAll(async () => {
  server = spawnTsx(['server/main.ts', '--port', '0', '--host', '127.0.0.1']);
  server.on('exit', (code, signal) => (exited = { code, signal }));
  server.stderr!.on('data', (d: Buffer) => serverOutput.push(d.toString()));
  port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${serverOutput.join('')}`)), 20_000);
    server.stdout!.on('data', (d: Buffer) => {
      const text = d.toString();
      serverOutput.push(text);
      const m = /on ws:\/\/[^:]+:(\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  honest = spawnTsx(['server/abuse-honest-pair.ts', String(port), PAGE_ORIGIN]);
  honest.stdout!.on('data', (d: Buffer) => honestLines.push(...d.toString().split('\n').filter(Boolean)));
  honest.stderr!.on('data', (d: Buffer) => honestLines.push(`error: ${d.toString()}`));
  expect(await nextHonestLine(20_000)).toBe('ready');
  await sleep(500);
  rssBefore = rssMiB(server.pid!);
}, 45_000);

afterAll(() => {
  honest?.stdin?.end();
  if (!exited) server?.kill('SIGTERM');
});

describe('signalling server under abuse (real process, loopback)', () => {
  it('closes a member that stops reading instead of queueing for it (16 senders, 1 MiB queue cap, < 10 s)', async () => {
    const victim = new Client('127.0.0.20');
    const watcher = new Client('127.0.0.20');
    const victimId = await victim.join('SLOWREAD');
    await watcher.join('SLOWREAD');
    (victim.socket as unknown as { _socket: { pause(): void } })._socket.pause(); // stops reading for good
    const senders: Client[] = [];
    for (let i = 0; i < 16; i++) senders.push(new Client(`127.0.0.${21 + (i % 4)}`));
    await Promise.all(senders.map((s) => s.join('SLOWREAD')));
    const blob = 'x'.repeat(16 * 1024);
    // Each sender pushes most of its byte budget at once (480 KiB of 512), then 2 messages a second: within every
    // per-connection limit, so only the victim's queue can grow.
    for (let round = 0; round < 30; round++) for (const s of senders) s.send({ type: 'signal', to: victimId, data: { blob } });
    let victimDropped = false;
    for (let t = 0; t < 20 && !victimDropped; t++) {
      await sleep(500);
      for (const s of senders) s.send({ type: 'signal', to: victimId, data: { blob } });
      victimDropped = watcher.received.some((m) => m.type === 'peer-left' && m.peerId === victimId);
    }
    console.log(`slow reader: dropped=${victimDropped}, server RSS ${rssMiB(server.pid!).toFixed(1)} MiB`);
    expect(victimDropped).toBe(true);
    for (const s of [...senders, victim, watcher]) s.close();
  }, 30_000);

  it('cannot be made to queue without limit: 4 senders of 30 KB signals at 50/s to a non-reader for 6 s (peak RSS growth < 48 MiB)', async () => {
    const victim = new Client('127.0.0.30');
    const victimId = await victim.join('HOARD');
    (victim.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    const senders = [0, 1, 2, 3].map((i) => new Client(`127.0.0.${31 + i}`));
    await Promise.all(senders.map((s) => s.join('HOARD')));
    const blob = 'y'.repeat(30 * 1024);
    const start = rssMiB(server.pid!);
    let peak = start;
    for (let burst = 0; burst < 200; burst++) for (const s of senders) s.send({ type: 'signal', to: victimId, data: { blob } });
    for (let tick = 0; tick < 24; tick++) {
      await sleep(250);
      for (let k = 0; k < 12; k++) for (const s of senders) s.send({ type: 'signal', to: victimId, data: { blob } });
      if (exited) break;
      peak = Math.max(peak, rssMiB(server.pid!));
    }
    console.log(`hoarding attack: server RSS ${start.toFixed(1)} MiB before, peak ${peak.toFixed(1)} MiB`);
    expect(exited).toBeNull();
    expect(peak - start).toBeLessThan(48);
    for (const s of [...senders, victim]) s.close();
  }, 30_000);

  it('closes a flooder (1008) after at most the refusal burst of error replies', async () => {
    const flooder = new Client('127.0.0.40');
    await flooder.join('FLOOD');
    for (let i = 0; i < 3000; i++) flooder.send({ type: 'signal', to: 'nobody-here', data: {} });
    const closedInTime = await settlesWithin(flooder.closed, 5000);
    const errors = flooder.received.filter((m) => m.type === 'error').length;
    console.log(`flooder: closed=${closedInTime}, error replies=${errors}`);
    expect(closedInTime).toBe(true);
    expect((await flooder.closed).code).toBe(1008);
    expect(errors).toBeLessThanOrEqual(25);
  }, 15_000);

  it('caps connections per address and closes sockets that never join (default 48; 10 s join timeout)', async () => {
    const sockets: Client[] = [];
    for (let i = 0; i < 60; i++) sockets.push(new Client('127.0.0.50'));
    const results = await Promise.allSettled(sockets.map((s) => s.opened));
    const open = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected' && /429/.test(String(r.reason))).length;
    console.log(`one address: ${open} of 60 sockets opened, ${refused} refused with 429`);
    expect(open).toBe(48);
    expect(refused).toBe(12);
    // Another address is not affected.
    const other = new Client('127.0.0.51');
    await other.join('OTHER');
    other.close();
    const opened = sockets.filter((_, i) => results[i].status === 'fulfilled');
    const allClosed = await settlesWithin(Promise.all(opened.map((s) => s.closed)), 14_000);
    console.log(`idle sockets closed by the server: ${allClosed}`);
    expect(allClosed).toBe(true);
    expect((await opened[0].closed).code).toBe(4000);
  }, 30_000);

  it('caps the rooms one address is in (16)', async () => {
    const clients: Client[] = [];
    for (let i = 0; i < 20; i++) clients.push(new Client('127.0.0.60'));
    const joined = await Promise.allSettled(clients.map((c, i) => c.join(`SPREAD${i}`)));
    const ok = joined.filter((r) => r.status === 'fulfilled').length;
    console.log(`one address: joined ${ok} of 20 rooms`);
    expect(ok).toBe(16);
    for (const c of clients) c.close();
  }, 15_000);

  it('rate-limits join/leave spam by someone who knows only the room name (burst 48, then 4 a second)', async () => {
    const member = new Client('127.0.0.70');
    await member.join('SPAM');
    const start = performance.now();
    let welcomes = 0;
    for (let conn = 0; conn < 10 && performance.now() - start < 3000; conn++) {
      const spammer = new Client('127.0.0.71');
      try {
        await spammer.opened;
      } catch {
        continue;
      }
      for (let i = 0; i < 100 && spammer.socket.readyState === WebSocket.OPEN && performance.now() - start < 3000; i++) {
        spammer.send({ type: 'join', room: 'SPAM' });
        const reply = await spammer.waitFor(() => true, 1000).catch(() => undefined);
        spammer.received.length = 0;
        if (reply?.type === 'welcome') welcomes++;
        spammer.send({ type: 'leave' });
      }
      spammer.close();
    }
    const elapsed = (performance.now() - start) / 1000;
    await sleep(200);
    const seen = member.received.filter((m) => m.type === 'peer-joined').length;
    console.log(`join spam: ${welcomes} joins accepted in ${elapsed.toFixed(1)} s, the member saw ${seen} peer-joined`);
    expect(welcomes).toBeLessThanOrEqual(48 + Math.ceil(4 * elapsed) + 2);
    expect(seen).toBe(welcomes);
    member.close();
  }, 15_000);

  it('never lets a client choose an id: no squatting a low id, no taking over a departed id', async () => {
    const owner = new Client('127.0.0.80');
    const ownerId = await owner.join('IDS');
    const attacker = new Client('127.0.0.81');
    await attacker.opened;
    // an id that sorts first would make its holder rank 0 and the elastic room's coordinator
    attacker.send({ type: 'join', room: 'IDS', peerId: '000000000-aaaa' });
    await attacker.waitFor(() => true);
    owner.close();
    await sleep(2);
    attacker.send({ type: 'leave' });
    attacker.send({ type: 'join', room: 'IDS', peerId: ownerId });
    await sleep(300);
    const ids = attacker.received.flatMap((m) => (m.type === 'welcome' ? [m.peerId] : []));
    console.log(`ids the attacker obtained: ${JSON.stringify(ids)} (owner was ${ownerId})`);
    expect(ids).not.toContain('000000000-aaaa');
    expect(ids).not.toContain(ownerId);
    // A plain join gets a server-assigned id that sorts after every member already there.
    const late = new Client('127.0.0.82');
    const member = new Client('127.0.0.83');
    const first = await member.join('IDS2');
    const lateId = await late.join('IDS2');
    expect(lateId > first).toBe(true);
    for (const c of [attacker, late, member]) c.close();
  }, 15_000);

  it('admits only its explicit origins: not any localhost port, not a DNS-rebinding Host', async () => {
    await expect(new Client('127.0.0.90', 'http://localhost:9999').opened).rejects.toThrow(/403/);
    await expect(new Client('127.0.0.90', 'http://evil.example:5173', { host: `evil.example:${port}` }).opened).rejects.toThrow(/403/);
    const page = new Client('127.0.0.90', PAGE_ORIGIN);
    await page.opened;
    page.close();
  });

  it('kept honest signals flowing within a few ms meanwhile (median < 25 ms, p95 < 250 ms: headroom for a loaded 2-core machine)', async () => {
    honestLines = [];
    honest.stdin!.write('report\n');
    const report = JSON.parse(await nextHonestLine(5000)) as { count: number; median: number; p95: number; max: number; open: boolean };
    console.log(`honest signal latency over ${report.count} signals: median ${report.median.toFixed(1)} ms, p95 ${report.p95.toFixed(1)} ms, max ${report.max.toFixed(1)} ms`);
    expect(report.open).toBe(true);
    expect(report.count).toBeGreaterThan(200);
    expect(report.median).toBeLessThan(25);
    expect(report.p95).toBeLessThan(250);
  });

  it('kept its memory bounded (RSS growth < 64 MiB over all the attacks)', async () => {
    await sleep(500);
    const rssAfter = rssMiB(server.pid!);
    console.log(`server RSS: before ${rssBefore.toFixed(1)} MiB, after ${rssAfter.toFixed(1)} MiB`);
    expect(rssAfter - rssBefore).toBeLessThan(64);
  });

  it('survives ~10 KB messages nested 5,000 deep (in data and in type) and keeps serving', async () => {
    const attacker = new Client('127.0.0.100');
    await attacker.join('DEEP');
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    attacker.send(`{"type":"signal","to":"${attacker.peerId}","data":{"x":${deep}}}`);
    attacker.send(`{"type":${deep}}`);
    await sleep(1000);
    expect(exited).toBeNull();
    const after = new Client('127.0.0.101');
    await after.join('DEEP');
    honestLines = [];
    honest.stdin!.write('report\n');
    const first = JSON.parse(await nextHonestLine(5000)) as { count: number };
    await sleep(300);
    honest.stdin!.write('report\n');
    const second = JSON.parse(await nextHonestLine(5000)) as { count: number; open: boolean };
    expect(second.open).toBe(true);
    expect(second.count).toBeGreaterThan(first.count); // the honest pair is still being served
    attacker.close();
    after.close();
  }, 15_000);
});
