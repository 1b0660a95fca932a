// Uniform slots for cached bind groups: 256-byte slots (the uniform-binding offset alignment) carved
// out of 64 KiB buffers, so that a training step with hundreds of dispatches needs a few buffers, not
// hundreds. Slots are handed back when a bind group that used them is dropped (its buffer freed).

export interface UniformSlot {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

const SLOT_BYTES = 256;
const SLOTS_PER_BUFFER = 256;

export class UniformArena {
  private readonly buffers: GPUBuffer[] = [];
  private readonly free: UniformSlot[] = [];
  private used = 0; // slots handed out of the newest buffer

  constructor(private readonly device: GPUDevice) {}

  take(): UniformSlot {
    const recycled = this.free.pop();
    if (recycled) return recycled;
    if (this.buffers.length === 0 || this.used === SLOTS_PER_BUFFER) {
      this.buffers.push(
        this.device.createBuffer({
          label: `uniforms #${this.buffers.length}`,
          size: SLOT_BYTES * SLOTS_PER_BUFFER,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        }),
      );
      this.used = 0;
    }
    return { buffer: this.buffers[this.buffers.length - 1], offset: SLOT_BYTES * this.used++, size: SLOT_BYTES };
  }

  release(slot: UniformSlot): void {
    this.free.push(slot);
  }

  bufferCount(): number {
    return this.buffers.length;
  }

  bytes(): number {
    return this.buffers.length * SLOT_BYTES * SLOTS_PER_BUFFER;
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers.length = 0;
    this.free.length = 0;
  }
}
