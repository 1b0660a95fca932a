import { describe, expect, it } from 'vitest';
import { OriginPolicy, normalizeOrigin } from './origins';

describe('OriginPolicy', () => {
  const policy = new OriginPolicy(['https://192.168.1.20:5173', 'http://localhost:5173/']);

  it('admits exactly the listed origins, and programs that send none', () => {
    expect(policy.allowsOrigin('https://192.168.1.20:5173')).toBe(true);
    expect(policy.allowsOrigin('http://localhost:5173')).toBe(true);
    expect(policy.allowsOrigin(undefined)).toBe(true);
  });

  it('refuses other ports of localhost, other schemes, null and look-alikes', () => {
    for (const origin of ['http://localhost:9999', 'http://127.0.0.1:5173', 'http://192.168.1.20:5173', 'null', 'file://', 'https://192.168.1.20:5173.evil.example']) {
      expect(policy.allowsOrigin(origin), origin).toBe(false);
    }
  });

  it('never admits because of the Host header, and refuses page-only requests addressed to another host', () => {
    expect(policy.allowsOrigin('http://evil.example:8787')).toBe(false);
    expect(policy.allowsHost('192.168.1.20:8787')).toBe(true);
    expect(policy.allowsHost('localhost')).toBe(true);
    expect(policy.allowsHost('evil.example:5173')).toBe(false);
    expect(policy.allowsHost(undefined)).toBe(false);
  });

  it('normalizes origins and explains what is not one', () => {
    expect(normalizeOrigin('HTTPS://Lab.Example.org:443')).toBe('https://lab.example.org');
    expect(() => normalizeOrigin('lab.example.org')).toThrow(/not an origin/);
    expect(() => normalizeOrigin('https://lab.example.org/app')).toThrow(/no path/);
    expect(() => normalizeOrigin('ftp://x')).toThrow(/http\(s\)/);
  });
});
