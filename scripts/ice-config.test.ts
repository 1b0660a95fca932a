import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkIceConfig, iceResponse, turnCredentials } from './ice-config';

describe('ICE servers for pages', () => {
  it("hands out TURN credentials in coturn's REST-API form that expire, never the secret", () => {
    const now = Date.UTC(2026, 0, 1);
    const { username, credential } = turnCredentials('s3cret', 'lab', now, 600);
    expect(username).toBe(`${now / 1000 + 600}:lab`);
    expect(credential).toBe(createHmac('sha1', 's3cret').update(username).digest('base64'));
    const answer = iceResponse({ stun: ['stun:10.0.0.1:3478'], turn: ['turn:10.0.0.1:3478?transport=udp'], turnSecret: 's3cret', ttlSeconds: 600 }, now);
    expect(answer).toEqual({ iceServers: [{ urls: ['stun:10.0.0.1:3478'] }, { urls: ['turn:10.0.0.1:3478?transport=udp'], username, credential }], ttlSeconds: 600 });
    expect(JSON.stringify(answer)).not.toContain('s3cret');
    expect(iceResponse({ stun: [], turn: [], ttlSeconds: 600 }, now).iceServers).toEqual([]);
  });

  it('refuses a TURN server without its secret and malformed URLs', () => {
    expect(() => checkIceConfig({ stun: [], turn: ['turn:x:3478'], ttlSeconds: 600 })).toThrow('LAB_TURN_SECRET');
    expect(() => checkIceConfig({ stun: ['x'], turn: [], ttlSeconds: 600 })).toThrow('expected stun:');
    expect(() => checkIceConfig({ stun: [], turn: [], ttlSeconds: 5 })).toThrow('at least 60');
  });
});
