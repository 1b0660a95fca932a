import { describe, expect, it } from 'vitest';
import { chooseLanAddress, httpsUrl, isPrivateIPv4, lanAddresses } from './lan';

import type { NetworkInterfaceInfo } from 'node:os';

const info = (address: string, family: 'IPv4' | 'IPv6', internal: boolean): NetworkInterfaceInfo =>
  family === 'IPv4' ? { address, family, internal, netmask: '', mac: '', cidr: null } : { address, family, internal, netmask: '', mac: '', cidr: null, scopeid: 0 };

describe('LAN addresses', () => {
  it('lists non-internal IPv4 addresses only', () => {
    const found = lanAddresses({
      lo: [info('127.0.0.1', 'IPv4', true)],
      eth0: [info('192.168.1.20', 'IPv4', false), info('fe80::1', 'IPv6', false)],
      tun0: [info('100.64.0.2', 'IPv4', false)],
    });
    expect(found).toEqual([
      { iface: 'eth0', address: '192.168.1.20' },
      { iface: 'tun0', address: '100.64.0.2' },
    ]);
  });

  it('prefers a private address, honours the teacher\'s pick, refuses loopback', () => {
    const list = [
      { iface: 'tun0', address: '100.64.0.2' },
      { iface: 'eth0', address: '10.1.2.3' },
    ];
    expect(chooseLanAddress(list)).toBe('10.1.2.3');
    expect(chooseLanAddress(list, 'lab.school.example')).toBe('lab.school.example');
    expect(chooseLanAddress([])).toBeNull();
    expect(() => chooseLanAddress(list, '127.0.0.1')).toThrow(/not loopback/);
    expect(() => chooseLanAddress(list, 'localhost')).toThrow(/not loopback/);
    expect(() => chooseLanAddress(list, 'a b')).toThrow(/neither/);
  });

  it('knows the private ranges and writes URLs', () => {
    expect(['10.0.0.1', '172.16.5.5', '172.31.0.1', '192.168.0.9'].every(isPrivateIPv4)).toBe(true);
    expect(['172.32.0.1', '8.8.8.8', '192.169.0.1'].some(isPrivateIPv4)).toBe(false);
    expect(httpsUrl('10.0.0.1', 5443)).toBe('https://10.0.0.1:5443/');
    expect(httpsUrl('fd00::1', 5443)).toBe('https://[fd00::1]:5443/');
  });
});
