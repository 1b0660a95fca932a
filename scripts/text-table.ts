// Plain-text tables for the scripts' figures (swarm-tensor.ts, swarm-expert.ts): cells padded to their
// column's widest, two spaces between columns, and a measured figure's distance from its formula.

/** The rows of `table` (the first is the header) with every cell padded to its column's width. */
export function alignColumns(table: readonly (readonly string[])[]): string[] {
  const widths = (table[0] ?? []).map((_, c) => Math.max(...table.map((row) => (row[c] ?? '').length)));
  return table.map((row) => row.map((cell, c) => cell.padEnd(widths[c])).join('  '));
}

/** How far `measured` is from `formula`, in percent of the formula ('0%' when both are 0, 'inf' when only the formula is). */
export function offBy(measured: number, formula: number): string {
  if (formula === 0) return measured === 0 ? '0%' : 'inf';
  return `${((100 * (measured - formula)) / formula).toFixed(2)}%`;
}
