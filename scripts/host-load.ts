// How busy the host's CPUs were over an interval: every process counts (the tabs, their shared GPU
// process, which is SwiftShader when there is no GPU, the network service, this script). The swarm prints
// it beside the overlap figure, because on a saturated host compute and communication share the same
// cores: they take turns instead of running side by side, and the figure then measures the host as much
// as the overlap.
import { cpus } from 'node:os';

/** Cumulative CPU time of all cores since boot (what `os.cpus()` reports), in milliseconds. */
export interface CpuSample {
  busyMs: number;
  totalMs: number;
  cores: number;
}

export interface HostLoad {
  cores: number;
  /** Fraction of all cores' time spent running something (0-1). */
  busy: number;
}

/** A host is treated as saturated from this busy fraction on. */
export const SATURATED = 0.9;

export function sampleCpu(): CpuSample {
  const cores = cpus();
  let busyMs = 0;
  let totalMs = 0;
  for (const { times } of cores) {
    const busy = times.user + times.nice + times.sys + times.irq;
    busyMs += busy;
    totalMs += busy + times.idle;
  }
  return { busyMs, totalMs, cores: cores.length };
}

/** The load between two samples, or null when no CPU time passed between them (or the core count changed). */
export function hostLoadBetween(start: CpuSample, end: CpuSample): HostLoad | null {
  const total = end.totalMs - start.totalMs;
  if (!(total > 0) || start.cores !== end.cores) return null;
  const busy = Math.min(1, Math.max(0, (end.busyMs - start.busyMs) / total));
  return { cores: end.cores, busy };
}
