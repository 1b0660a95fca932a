// Checkpoints of a part of the model, and checkpoints written a piece at a time.
//
// - combineCheckpointParts: the parts a room saved (a ZeRO-3 rank's shard each, or a pipeline's
//   stages) re-cut to the flat range another room's rank needs: the parameters and optimizer state of
//   that range only, taken from whichever parts overlap it. The whole range gives the one-tab format.
//   Parts must come from the same run at the same step; anything else is refused with the reason.
// - CheckpointStreamWriter: writes the checkpoint format (checkpoint.ts) to a sink section by section,
//   piece by piece, with the CRC-32 carried along, so that a model no tab holds whole can be exported
//   layer by layer: the bytes equal saveCheckpoint's for the same header and floats.
import type { FlatRange } from '../model/layout';
import { crc32 } from '../shared/crc32';
import { CheckpointError, checkpointPrefix, checkpointTrailer, paramsRangeOf, type Checkpoint, type CheckpointHeader } from './checkpoint';

/** What must agree between the parts of one checkpoint. */
function runIdentity(h: CheckpointHeader): string {
  return JSON.stringify([h.model, h.layout, h.step, h.seed, h.optimizer.config, h.optimizer.buffers, h.world]);
}

function end(r: FlatRange): number {
  return r.offset + r.length;
}

/** Copies `range` out of pieces that each cover some flat range; throws naming the first gap. */
function assemble(range: FlatRange, pieces: { range: FlatRange; data: Float32Array }[], what: string): Float32Array {
  const out = new Float32Array(range.length);
  let covered = range.offset;
  for (const piece of [...pieces].sort((a, b) => a.range.offset - b.range.offset)) {
    const from = Math.max(covered, piece.range.offset);
    const to = Math.min(end(range), end(piece.range));
    if (from > covered) break;
    if (to <= from) continue;
    out.set(piece.data.subarray(from - piece.range.offset, to - piece.range.offset), from - range.offset);
    covered = to;
  }
  if (covered < end(range)) throw new CheckpointError(`the parts given hold no ${what} for [${covered}, ${end(range)}): load every part that overlaps [${range.offset}, ${end(range)})`);
  return out;
}

/**
 * The parameters and optimizer state of `range`, from parts of one checkpoint (any number, any
 * partition): a checkpoint of that range (a part of a one-part partition), or, for the whole vector,
 * the one-tab format. Allocates only the range's floats.
 */
export function combineCheckpointParts(parts: readonly Checkpoint[], range: FlatRange): Checkpoint {
  if (parts.length === 0) throw new CheckpointError('no checkpoint parts given');
  const first = parts[0].header;
  const identity = runIdentity(first);
  for (const p of parts) {
    if (runIdentity(p.header) !== identity) {
      throw new CheckpointError(`the parts are not of one checkpoint: step ${p.header.step}, world ${p.header.world} against step ${first.step}, world ${first.world} (or another model, seed or optimizer)`);
    }
  }
  const total = first.layout.totalLength;
  if (range.offset < 0 || range.length < 1 || end(range) > total) throw new CheckpointError(`range [${range.offset}, ${end(range)}) lies outside the ${total} parameters`);
  const params = assemble(range, parts.map((p) => ({ range: paramsRangeOf(p.header), data: p.params })), 'parameters');
  const state = new Map<string, Float32Array>();
  for (const name of first.optimizer.buffers) {
    state.set(name, assemble(range, parts.map((p) => ({ range: p.header.optimizer.stateRange, data: p.state.get(name)! })), `optimizer state ${name}`));
  }
  const whole = range.offset === 0 && range.length === total;
  const { part: _, ...rest } = first;
  const header: CheckpointHeader = {
    ...rest,
    ...(whole ? {} : { part: { kind: 're-cut', ranges: [{ ...range }], index: 0 } }),
    optimizer: { ...first.optimizer, stateRange: { ...range } },
    sections: [{ name: 'params', length: range.length }, ...first.optimizer.buffers.map((name) => ({ name, length: range.length }))],
  };
  return { header, params, state };
}

/** Where a streamed checkpoint goes: a file, a download, an array in a test. */
export type ByteSink = (chunk: Uint8Array) => Promise<void> | void;

/**
 * Writes one checkpoint to a sink: the prefix and header first, then every section's floats in the
 * header's order, in pieces of any size, then the CRC-32 trailer. Refuses a piece that overruns its
 * section and an end before every section is complete.
 */
export class CheckpointStreamWriter {
  private crc = 0;
  private section = 0;
  private writtenInSection = 0;
  private started = false;

  constructor(
    private readonly header: CheckpointHeader,
    private readonly sink: ByteSink,
  ) {}

  /** Writes the floats that come next in the file (the current section's, possibly across sections). */
  async write(floats: Float32Array): Promise<void> {
    if (!this.started) await this.put(checkpointPrefix(this.header));
    this.started = true;
    let rest = floats;
    while (rest.length > 0) {
      const section = this.header.sections[this.section];
      if (!section) throw new CheckpointError(`streamed checkpoint: ${rest.length} floats past the last section`);
      const n = Math.min(rest.length, section.length - this.writtenInSection);
      const piece = rest.subarray(0, n);
      await this.put(new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength));
      rest = rest.subarray(n);
      this.writtenInSection += n;
      this.skipFullSections();
    }
  }

  /** Writes the trailer. Throws when a section is still short. */
  async close(): Promise<void> {
    if (!this.started) await this.put(checkpointPrefix(this.header));
    this.started = true;
    this.skipFullSections();
    const open = this.header.sections[this.section];
    if (open) throw new CheckpointError(`streamed checkpoint ended with section ${open.name} at ${this.writtenInSection} of ${open.length} floats`);
    await this.sink(checkpointTrailer(this.crc));
  }

  private skipFullSections(): void {
    while (this.header.sections[this.section] && this.writtenInSection === this.header.sections[this.section].length) {
      this.section++;
      this.writtenInSection = 0;
    }
  }

  private async put(bytes: Uint8Array): Promise<void> {
    this.crc = crc32(bytes, this.crc);
    await this.sink(bytes);
  }
}
