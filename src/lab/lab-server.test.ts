import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, parseConfig } from './config';
import { linkReachProblem, parseLabServerInfo, roomLink, withDiscoveredSignal, type LabServerInfo } from './lab-server';

const served: LabServerInfo = { signalPath: '/signal', discover: true, shareOrigin: 'https://10.7.0.1:5443' };
const teacherPage = { protocol: 'http:', host: '127.0.0.1:5173', origin: 'http://127.0.0.1:5173', pathname: '/' };
const studentPage = { protocol: 'https:', host: '10.7.0.1:5443', origin: 'https://10.7.0.1:5443', pathname: '/' };

describe('the page and the server that served it', () => {
  it('reads the tag, and treats anything malformed as no lab server', () => {
    expect(parseLabServerInfo(JSON.stringify(served))).toEqual(served);
    expect(parseLabServerInfo(JSON.stringify({ ...served, shareOrigin: null }))).toEqual({ ...served, shareOrigin: null });
    for (const bad of [null, '', '{', '[]', JSON.stringify({ ...served, discover: 'yes' }), JSON.stringify({ ...served, signalPath: 'signal' }), JSON.stringify({ ...served, shareOrigin: 'https://x/path' })]) {
      expect(parseLabServerInfo(bad)).toBeNull();
    }
  });

  it('uses the same-origin signalling when the server says so (wss on https); signal= still wins', () => {
    expect(withDiscoveredSignal(DEFAULT_CONFIG, served, teacherPage).signal).toBe('ws://127.0.0.1:5173/signal');
    expect(withDiscoveredSignal(DEFAULT_CONFIG, served, studentPage).signal).toBe('wss://10.7.0.1:5443/signal');
    const given = { ...DEFAULT_CONFIG, signal: 'wss://elsewhere.example/signal' };
    expect(withDiscoveredSignal(given, served, studentPage).signal).toBe('wss://elsewhere.example/signal');
    expect(withDiscoveredSignal(DEFAULT_CONFIG, { ...served, discover: false }, teacherPage).signal).toBe('');
    expect(withDiscoveredSignal(DEFAULT_CONFIG, null, teacherPage).signal).toBe('');
  });

  it("links the teacher's room on the LAN origin with its signalling and run settings, never the secret nor the teacher's name", () => {
    const config = withDiscoveredSignal(parseConfig([['model', 'mlp'], ['dataset', 'spirals'], ['steps', '6'], ['world', '2'], ['secret', 'hush'], ['name', 'Ms Teacher']]), served, teacherPage);
    const link = roomLink({ room: 'K7QX2M', config, info: served, location: teacherPage, startOnOpen: true });
    const url = new URL(link);
    expect(url.origin).toBe('https://10.7.0.1:5443');
    expect(Object.fromEntries(url.searchParams)).toEqual({ room: 'K7QX2M', dataset: 'spirals', steps: '6', world: '2', autostart: '1', signal: 'wss://10.7.0.1:5443/signal' });
    expect(link).not.toContain('hush');
    expect(link).not.toContain('Teacher');
    expect(linkReachProblem(link)).toBeNull();
    // what a student's tab opened on that link reads back: the same run, in the same room
    const student = withDiscoveredSignal(parseConfig(url.searchParams.entries()), served, studentPage);
    expect({ ...student, secret: 'hush', name: 'Ms Teacher', autostart: false }).toEqual({ ...config, room: 'K7QX2M', signal: 'wss://10.7.0.1:5443/signal' });
  });

  it('says why a link would not reach other machines', () => {
    const alone = roomLink({ room: 'r1', config: DEFAULT_CONFIG, info: null, location: teacherPage, startOnOpen: false });
    expect(alone).toBe('http://127.0.0.1:5173/?room=r1');
    expect(linkReachProblem(alone)).toMatch(/only this machine/);
    expect(linkReachProblem('https://10.0.0.1:5443/?room=r1')).toMatch(/only tabs of this browser/);
  });
});
