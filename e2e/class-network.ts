// Helpers of the across-machines e2e tests: the lab server as `npm start` runs it, inside the teacher's
// network namespace, and a Chromium inside a student's namespace that trusts that server's certificate
// by its SPKI fingerprint (and nothing else beyond Chromium's own checks).
import { chromium, type Browser } from '@playwright/test';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { CHROMIUM_ARGS, requireChromium } from '../scripts/chromium';
import type { Machine, NamespaceLab } from './netns';

export const HTTP_PORT = 5173;
export const HTTPS_PORT = 5443;

/**
 * Starts the lab server in the teacher's namespace; resolves with its SPKI fingerprint once it listens,
 * and its output so far and from then on (for a failing test to show). It gets its own Vite dependency
 * cache: sharing node_modules/.vite with the suite's dev server let two servers re-optimise dependencies
 * under each other.
 */
export function startLabServer(
  lab: NamespaceLab,
  teacher: Machine,
  opts: { certDir: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv },
): Promise<{ spki: string; server: ChildProcess; output: string[] }> {
  return new Promise((resolve, reject) => {
    let spki: string | undefined;
    const output: string[] = [];
    const timer = setTimeout(() => reject(new Error(`the lab server did not start within 120 s:\n${output.join('\n')}`)), 120_000);
    const child = lab.spawn(
      teacher,
      ['npx', 'tsx', 'scripts/start.ts', '--port', String(HTTP_PORT), '--https-port', String(HTTPS_PORT), '--lan-address', teacher.address, '--cert-dir', opts.certDir, '--cache-dir', `${opts.certDir}-vite-cache`, ...(opts.extraArgs ?? [])],
      (line) => {
        output.push(line);
        const found = /SPKI SHA-256 \(base64\): (\S+)/.exec(line);
        if (found) spki = found[1];
        if (line.includes('Ctrl-C stops')) {
          clearTimeout(timer);
          if (spki) resolve({ spki, server: child, output });
          else reject(new Error(`the lab server printed no SPKI fingerprint:\n${output.join('\n')}`));
        }
      },
      { ...process.env, LAB_NO_HMR: '1', ...opts.env },
    );
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the lab server exited (${code}):\n${output.join('\n')}`));
    });
  });
}

export function launchIn(lab: NamespaceLab, machine: Machine, spki: string): Promise<Browser> {
  return chromium.launch({
    executablePath: lab.wrapper(machine, requireChromium()),
    args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spki}`],
    headless: true,
  });
}


/**
 * From inside `machine`, what a TCP connection to host:port meets: 'open' (something listens),
 * 'refused' (the host is reachable, the port closed) or 'unreachable' (no answer within 2 s).
 */
export function tcpProbe(machine: Machine, host: string, port: number): 'open' | 'refused' | 'unreachable' {
  const script = `const s = require('node:net').connect(${port}, ${JSON.stringify(host)});
s.setTimeout(2000, () => { console.log('unreachable'); process.exit(0); });
s.on('connect', () => { console.log('open'); process.exit(0); });
s.on('error', (e) => { console.log(e.code === 'ECONNREFUSED' ? 'refused' : 'unreachable'); process.exit(0); });`;
  return execFileSync('ip', ['netns', 'exec', machine.netns, process.execPath, '-e', script], { encoding: 'utf8' }).trim() as 'open' | 'refused' | 'unreachable';
}
