// Reads `--name value` options of a Node script's command line (process.argv) for the simulation
// scripts (comm-sim.ts, pipeline-sim.ts). A missing option, or one given last with no value, takes its
// fallback; an integer option that is not an integer of at least its minimum throws a RangeError that
// names the option, before the script does any work.

/** The value after `--name`, or `fallback` when the option is absent or has no value. */
export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** `--name` as an integer >= `min`, or `fallback` when absent. */
export function integer(name: string, fallback: number, min: number): number {
  const value = Number(option(name, String(fallback)));
  if (!Number.isInteger(value) || value < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${option(name, '')}`);
  return value;
}
