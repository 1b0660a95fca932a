import { describe, expect, it } from 'vitest';
import { AddressLimits, addressKey } from './address-limits';

describe('addressKey', () => {
  it('keeps IPv4 (also IPv4-mapped) and groups IPv6 by /64', () => {
    expect(addressKey('10.0.0.7')).toBe('10.0.0.7');
    expect(addressKey('::ffff:10.0.0.7')).toBe('10.0.0.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey(undefined)).toBe('unknown');
  });
});

describe('AddressLimits', () => {
  const opts = { maxConnections: 2, maxRooms: 2, joinBurst: 3, joinsPerSecond: 1 };

  it('caps connections per address, others unaffected', () => {
    const limits = new AddressLimits(opts);
    expect(limits.connect('a', 0)).toBeUndefined();
    expect(limits.connect('a', 0)).toBeUndefined();
    expect(limits.connect('a', 0)).toMatch(/too many connections/);
    expect(limits.connect('b', 0)).toBeUndefined();
    limits.disconnect('a');
    expect(limits.connect('a', 0)).toBeUndefined();
  });

  it('caps distinct rooms and the join rate per address', () => {
    const limits = new AddressLimits(opts);
    expect(limits.mayJoin('a', 'R1', 0)).toBeUndefined();
    limits.joined('a', 'R1');
    expect(limits.mayJoin('a', 'R2', 0)).toBeUndefined();
    limits.joined('a', 'R2');
    expect(limits.mayJoin('a', 'R3', 0)).toMatch(/too many rooms/);
    expect(limits.mayJoin('a', 'R1', 0)).toBeUndefined(); // third join token, a room it is in
    expect(limits.mayJoin('a', 'R1', 0)).toMatch(/joining too fast/);
    expect(limits.mayJoin('a', 'R1', 1000)).toBeUndefined();
    limits.left('a', 'R2');
    expect(limits.mayJoin('a', 'R3', 2000)).toBeUndefined();
  });

  it('forgets an idle address only once its join bucket is full again', () => {
    const limits = new AddressLimits(opts);
    limits.connect('a', 0);
    limits.mayJoin('a', 'R', 0);
    limits.disconnect('a');
    limits.sweep(500);
    expect(limits.size()).toBe(1);
    limits.sweep(1000);
    expect(limits.size()).toBe(0);
  });
});
