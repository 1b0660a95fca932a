import { describe, expect, it } from 'vitest';
import { parseStartArgs } from './start-args';

describe('npm start flags', () => {
  it('defaults: http 5173 on loopback, HTTPS 5443 on every interface, a self-signed certificate, no ICE servers', () => {
    expect(parseStartArgs([])).toMatchObject({ port: 5173, httpsPort: 5443, host: '0.0.0.0', certDir: '.lab-cert', ice: { stun: [], turn: [] } });
  });

  it('reads flags and environment; the TURN secret only from the environment', () => {
    const opts = parseStartArgs(
      ['--https-port', '8443', '--lan-address', '10.0.0.5', '--cache-dir', '/tmp/lab-vite', '--stun', 'stun:10.0.0.5:3478', '--allow-origin', 'https://a.example,https://b.example'],
      { LAB_TURN_URLS: 'turn:10.0.0.5:3478?transport=udp', LAB_TURN_SECRET: 's3cret' },
    );
    expect(opts).toMatchObject({
      httpsPort: 8443,
      lanAddress: '10.0.0.5',
      cacheDir: '/tmp/lab-vite',
      allowOrigins: ['https://a.example', 'https://b.example'],
      ice: { stun: ['stun:10.0.0.5:3478'], turn: ['turn:10.0.0.5:3478?transport=udp'], turnSecret: 's3cret' },
    });
  });

  it('refuses what would start a different server than asked', () => {
    expect(() => parseStartArgs(['--prot', '1'])).toThrow('unknown option --prot');
    expect(() => parseStartArgs(['--port', '70000'])).toThrow('--port must be a port');
    expect(() => parseStartArgs(['--port', '5000', '--https-port', '5000'])).toThrow('must differ');
    expect(() => parseStartArgs(['--cert', 'a.pem'])).toThrow('both --cert and --key');
    expect(() => parseStartArgs(['--turn', 'turn:x:3478'])).toThrow('LAB_TURN_SECRET');
    expect(() => parseStartArgs(['--stun', 'http://x'])).toThrow('must start with stun');
    expect(() => parseStartArgs(['--allow-origin', 'https://x/path'])).toThrow('no path');
    expect(() => parseStartArgs(['--lan-address'])).toThrow('needs a value');
    expect(parseStartArgs(['--help'])).toBe('help');
  });
});
