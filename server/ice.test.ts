import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { applyIceFlag, iceConfigFromEnv, iceServersFor, turnCredential, validateIceConfig } from './ice';

describe('TURN credentials in coturn REST-API form', () => {
  it('are expiry:name and base64(HMAC-SHA1(secret, username)), as computed independently', () => {
    const { username, credential } = turnCredential('s3cret', 'peer-x', 1_800_000_000);
    expect(username).toBe('1800000000:peer-x');
    // the reference value, from node:crypto directly (what coturn's use-auth-secret computes)
    expect(credential).toBe(createHmac('sha1', 's3cret').update('1800000000:peer-x').digest('base64'));
    expect(Buffer.from(credential, 'base64')).toHaveLength(20);
  });

  it('expire ttlSeconds after now and carry no secret in any URL', () => {
    const config = validateIceConfig({ stun: ['stun:lab.local:3478'], turn: ['turn:lab.local:3478?transport=udp'], turnSecret: 'S', ttlSeconds: 3600 });
    const servers = iceServersFor(config, 'peer-y', 1_700_000_000_500);
    expect(servers).toEqual([
      { urls: ['stun:lab.local:3478'] },
      { urls: ['turn:lab.local:3478?transport=udp'], username: '1700003600:peer-y', credential: createHmac('sha1', 'S').update('1700003600:peer-y').digest('base64') },
    ]);
    expect(JSON.stringify(servers)).not.toContain('"S"');
  });

  it('refuses unusable configurations with a clear message', () => {
    const base = { stun: [], turn: [], ttlSeconds: 3600 };
    expect(() => validateIceConfig({ ...base, turn: ['turn:x'] })).toThrow(/shared secret/);
    expect(() => validateIceConfig({ ...base, stun: ['http://x'] })).toThrow(/STUN URL/);
    expect(() => validateIceConfig({ ...base, turn: ['turn:x?secret=S'], turnSecret: 'S' })).toThrow(/carries a secret/);
    expect(() => validateIceConfig({ ...base, ttlSeconds: 5 })).toThrow(/lifetime/);
    expect(iceServersFor(validateIceConfig(base), 'p')).toEqual([]);
  });

  it('reads LAB_STUN_URLS, LAB_TURN_URLS, LAB_TURN_SECRET and LAB_TURN_TTL_SECONDS', () => {
    expect(iceConfigFromEnv({ LAB_STUN_URLS: 'stun:a, stun:b', LAB_TURN_URLS: 'turns:t:5349', LAB_TURN_SECRET: 'k', LAB_TURN_TTL_SECONDS: '600' })).toEqual({
      stun: ['stun:a', 'stun:b'],
      turn: ['turns:t:5349'],
      turnSecret: 'k',
      ttlSeconds: 600,
    });
  });
});

describe('ICE flags', () => {
  it('apply --stun, --turn, --turn-secret and --turn-ttl, and leave other flags alone', () => {
    const config = iceConfigFromEnv({});
    expect(applyIceFlag(config, '--stun', 'stun:a:3478')).toBe(true);
    expect(applyIceFlag(config, '--turn', 'turn:a:3478,turns:a:5349')).toBe(true);
    expect(applyIceFlag(config, '--turn-secret', 'k')).toBe(true);
    expect(applyIceFlag(config, '--turn-ttl', '900')).toBe(true);
    expect(applyIceFlag(config, '--port', '1')).toBe(false);
    expect(validateIceConfig(config)).toEqual({ stun: ['stun:a:3478'], turn: ['turn:a:3478', 'turns:a:5349'], turnSecret: 'k', ttlSeconds: 900 });
    applyIceFlag(config, '--turn-ttl', 'soon');
    expect(() => validateIceConfig(config)).toThrow(/lifetime/);
  });
});
