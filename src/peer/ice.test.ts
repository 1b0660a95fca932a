import { describe, expect, it, vi } from 'vitest';
import { iceEndpointFor, iceServersFor, parseIceAnswer, selectedPath } from './ice';
import type { Signalling } from './signalling';

const ws = (url: string) => ({ kind: 'websocket', url }) as unknown as Signalling;
const answer = (body: unknown, status = 200) => vi.fn(async () => new Response(JSON.stringify(body), { status }));

describe('ICE servers from the signalling server', () => {
  it('finds the endpoint next to a /signal socket only', () => {
    expect(iceEndpointFor('wss://10.0.0.1:5443/signal')).toBe('https://10.0.0.1:5443/signal/ice');
    expect(iceEndpointFor('ws://127.0.0.1:5173/signal/')).toBe('http://127.0.0.1:5173/signal/ice');
    expect(iceEndpointFor('ws://127.0.0.1:8787')).toBeNull();
    expect(iceEndpointFor('nonsense')).toBeNull();
  });

  it('takes well-formed servers and refreshes before the credentials expire', async () => {
    const body = { iceServers: [{ urls: ['turn:10.0.0.1:3478?transport=udp'], username: '1700000000:lab', credential: 'abc=' }, { urls: 'stun:10.0.0.1:3478' }], ttlSeconds: 600 };
    const fetchImpl = answer(body);
    const before = performance.now();
    const got = await iceServersFor(ws('wss://h/signal'), () => {}, fetchImpl as unknown as typeof fetch);
    expect(fetchImpl).toHaveBeenCalledWith('https://h/signal/ice', expect.anything());
    expect(got.servers).toEqual([body.iceServers[0], { urls: ['stun:10.0.0.1:3478'] }]);
    expect(got.refreshAfter).toBeGreaterThanOrEqual(before + 300_000);
  });

  it('falls back to direct paths, saying why, on a bad answer; asks nothing without a server', async () => {
    const warnings: string[] = [];
    const bad = await iceServersFor(ws('wss://h/signal'), (m) => warnings.push(m), answer({ iceServers: [{ urls: ['http://x'] }], ttlSeconds: 60 }) as unknown as typeof fetch);
    expect(bad.servers).toEqual([]);
    expect(warnings[0]).toMatch(/no ICE servers from https:\/\/h\/signal\/ice \(iceServers\[0\]\.urls must be stun:\/turn: URLs\)/);
    const missing = await iceServersFor(ws('wss://h/signal'), (m) => warnings.push(m), answer({}, 404) as unknown as typeof fetch);
    expect(missing.servers).toEqual([]);
    expect(warnings).toHaveLength(1);
    const fetchImpl = vi.fn();
    await iceServersFor({ kind: 'broadcast' } as unknown as Signalling, () => {}, fetchImpl);
    expect(fetchImpl).not.toHaveBeenCalled();
    expect(() => parseIceAnswer({ iceServers: [], ttlSeconds: -1 })).toThrow('ttlSeconds');
  });
});

describe('the path a link took', () => {
  const report = (local: string, remote: string, viaTransport: boolean) => {
    const entries: Record<string, unknown>[] = [
      { id: 'L', type: 'local-candidate', candidateType: local },
      { id: 'R', type: 'remote-candidate', candidateType: remote },
      { id: 'P', type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R', nominated: !viaTransport, state: 'succeeded' },
      { id: 'X', type: 'candidate-pair', localCandidateId: 'R', remoteCandidateId: 'R', nominated: false, state: 'failed' },
    ];
    if (viaTransport) entries.push({ id: 'T', type: 'transport', selectedCandidatePairId: 'P' });
    return { getStats: async () => new Map(entries.map((e) => [e.id, e])) as unknown as RTCStatsReport };
  };
  it('names the selected pair: relay over NAT over host', async () => {
    expect(await selectedPath(report('host', 'host', true))).toBe('host');
    expect(await selectedPath(report('srflx', 'host', false))).toBe('srflx');
    expect(await selectedPath(report('host', 'relay', true))).toBe('relay');
    expect(await selectedPath({ getStats: async () => new Map() as unknown as RTCStatsReport })).toBeUndefined();
  });
});
