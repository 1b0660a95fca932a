// The machine's addresses on the local network, for `npm start`: which URLs other machines of a class
// can open, and which one the room links carry (the teacher's pick, or the first private IPv4 address).
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { isIP } from 'node:net';

export interface LanAddress {
  /** Interface name, e.g. "eth0" or "wlan0". */
  iface: string;
  address: string;
}

/** Every non-internal IPv4 address of this machine, in interface order. */
export function lanAddresses(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): LanAddress[] {
  const out: LanAddress[] = [];
  for (const [iface, infos] of Object.entries(interfaces)) {
    for (const info of infos ?? []) {
      if (info.family === 'IPv4' && !info.internal) out.push({ iface, address: info.address });
    }
  }
  return out;
}

/** 10/8, 172.16/12, 192.168/16: where a school network usually lives. */
export function isPrivateIPv4(address: string): boolean {
  const [a, b] = address.split('.').map(Number);
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

const LOOPBACK = /^(127\.|localhost$|::1$|\[::1\]$)/;

/**
 * The address room links carry. The teacher's `wanted` (an IP address or a host name) wins, but never
 * a loopback one: other machines cannot reach it. Without it: the first private address, else the
 * first address at all; null when the machine has no LAN address (then only localhost works).
 */
export function chooseLanAddress(addresses: readonly LanAddress[], wanted?: string): string | null {
  if (wanted !== undefined) {
    if (wanted === '' || LOOPBACK.test(wanted)) {
      throw new Error(`--lan-address ${JSON.stringify(wanted)}: give an address other machines can reach, not loopback`);
    }
    if (!isIP(wanted) && !/^[A-Za-z0-9.-]{1,253}$/.test(wanted)) throw new Error(`--lan-address ${JSON.stringify(wanted)} is neither an IPv4 address nor a host name`);
    return wanted;
  }
  return (addresses.find((a) => isPrivateIPv4(a.address)) ?? addresses[0])?.address ?? null;
}

/** `https://ADDRESS:PORT/` (IPv6 literals bracketed). */
export function httpsUrl(address: string, port: number): string {
  const host = isIP(address) === 6 ? `[${address}]` : address;
  return `https://${host}:${port}/`;
}
