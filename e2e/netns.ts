// "Machines" for the across-machines e2e tests: Linux network namespaces made by the test (as root),
// joined by a bridge in a private address range that exists only inside them, each with a default
// route (without one Chromium's WebRTC gathers no host candidates). Processes are started inside with
// `ip netns exec`; a Chromium inside one is launched by Playwright through a tiny wrapper script.
// Everything made here is removed by `remove()`, which the tests call on success and failure alike.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why namespaces cannot be made here, or null when they can. The tests fail with this reason (CI runs as root). */
export function namespacesUnavailable(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root: run the across-machines tests as root (CI does)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'the `ip` command (iproute2) is missing: apt-get install iproute2';
  }
  return null;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface Machine {
  name: string;
  /** Namespace name (for `ip netns exec`). */
  netns: string;
  address: string;
}

export class NamespaceLab {
  readonly machines: Machine[] = [];
  private readonly hub: string;
  private readonly processes = new Set<ChildProcess>();
  /** A temporary folder of this lab's own (wrapper scripts, certificates); removed with it. */
  readonly scratchDir = mkdtempSync(join(tmpdir(), 'lab-netns-'));

  /** `prefix` keeps names unique per run (several runs may share a machine); `subnet` like "10.77.0". */
  constructor(
    private readonly prefix: string,
    private readonly subnet: string,
  ) {
    this.hub = `${prefix}hub`;
    ip('netns', 'add', this.hub);
    try {
      ip('-n', this.hub, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', this.hub, 'link', 'set', 'br0', 'up');
    } catch (error) {
      this.remove();
      throw error;
    }
  }

  /** A namespace on the bridge with address subnet.<host>/24 and a default route. */
  addMachine(name: string, host: number): Machine {
    const netns = `${this.prefix}${name}`;
    const port = `p${this.machines.length}`;
    ip('netns', 'add', netns);
    ip('link', 'add', port, 'netns', this.hub, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
    ip('-n', this.hub, 'link', 'set', port, 'master', 'br0');
    ip('-n', this.hub, 'link', 'set', port, 'up');
    const address = `${this.subnet}.${host}`;
    ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('-n', netns, 'link', 'set', 'eth0', 'up');
    ip('-n', netns, 'link', 'set', 'lo', 'up');
    ip('-n', netns, 'route', 'add', 'default', 'dev', 'eth0');
    const machine = { name, netns, address };
    this.machines.push(machine);
    return machine;
  }

  /**
   * A namespace behind `router` on a network of its own (`subnet`.2, router side `subnet`.1), with its
   * default route through the router. A new namespace does not forward packets, so machines behind the
   * same router reach the router's addresses but never each other: only a relay on the router joins them.
   */
  addMachineBehind(router: Machine, name: string, subnet: string): Machine {
    const netns = `${this.prefix}${name}`;
    const routerPort = `r${this.machines.length}`;
    ip('netns', 'add', netns);
    ip('link', 'add', routerPort, 'netns', router.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
    ip('-n', router.netns, 'addr', 'add', `${subnet}.1/24`, 'dev', routerPort);
    ip('-n', router.netns, 'link', 'set', routerPort, 'up');
    const address = `${subnet}.2`;
    ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('-n', netns, 'link', 'set', 'eth0', 'up');
    ip('-n', netns, 'link', 'set', 'lo', 'up');
    ip('-n', netns, 'route', 'add', 'default', 'via', `${subnet}.1`);
    const machine = { name, netns, address };
    this.machines.push(machine);
    return machine;
  }

  /** Starts a command inside a machine; its output goes to `onLine` line by line. Killed by remove(). */
  spawn(machine: Machine, command: string[], onLine: (line: string) => void, env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', machine.netns, ...command], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.processes.add(child);
    child.on('exit', () => this.processes.delete(child));
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = '';
      stream?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) onLine(line);
      });
    }
    return child;
  }

  /** Stops a process started by spawn() (its whole process group) and waits for it to exit. */
  async stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      return;
    }
    await exited;
  }

  /** An executable that runs `binary` inside the machine: Playwright's `executablePath` for a browser there. */
  wrapper(machine: Machine, binary: string): string {
    const path = join(this.scratchDir, `in-${machine.netns}.sh`);
    writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${machine.netns} ${binary} "$@"\n`);
    chmodSync(path, 0o755);
    return path;
  }

  /** Kills what was started here, deletes every namespace (their links go with them) and the scratch folder. */
  remove(): void {
    for (const child of this.processes) {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const netns of [...this.machines.map((m) => m.netns), this.hub]) {
      if (existsSync(`/run/netns/${netns}`)) {
        try {
          ip('netns', 'del', netns);
        } catch (error) {
          console.error(`could not delete namespace ${netns}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
    rmSync(this.scratchDir, { recursive: true, force: true });
  }
}
