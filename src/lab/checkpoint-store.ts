// Where a tab keeps its checkpoints between page loads: IndexedDB, one record per run key, the newest
// save overwriting the last (autosave every K steps must not fill the disk). The bytes stored are the
// checkpoint file itself (src/train/checkpoint.ts), verified again when read back.
import type { LabConfig } from './config';

export interface StoredCheckpointInfo {
  key: string;
  step: number;
  bytes: number;
  savedAt: string;
}

export interface CheckpointStore {
  put(key: string, bytes: Uint8Array, step: number): Promise<void>;
  /** The stored file, or null when there is none under `key`. */
  get(key: string): Promise<Uint8Array | null>;
  list(): Promise<StoredCheckpointInfo[]>;
  delete(key: string): Promise<void>;
}

/**
 * The key a run saves under and resumes from: what must match for a resume to continue the same
 * trajectory (model, data, seed, world) and the rank, because under ZeRO each rank holds a different
 * slice of the optimizer state. The room name is left out on purpose: a resumed run may meet in a
 * new room.
 */
export function checkpointKey(config: Pick<LabConfig, 'model' | 'dataset' | 'seed'>, world: number, rank: number): string {
  return `${config.model}/${config.dataset}/seed${config.seed}/world${world}/rank${rank}`;
}

const DB_NAME = 'webgpu-lab-checkpoints';
const STORE = 'checkpoints';

interface Record_ {
  key: string;
  step: number;
  savedAt: string;
  data: ArrayBuffer;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

export class IndexedDbCheckpointStore implements CheckpointStore {
  private db: Promise<IDBDatabase> | null = null;

  constructor(private readonly factory: IDBFactory = indexedDB) {}

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise((resolve, reject) => {
      const req = this.factory.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'key' });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(new Error(`cannot open IndexedDB "${DB_NAME}": ${req.error?.message ?? 'unknown error'}`));
      req.onblocked = () => reject(new Error(`IndexedDB "${DB_NAME}" is blocked by another tab's older version`));
    });
    return this.db;
  }

  private async store(mode: IDBTransactionMode): Promise<IDBObjectStore> {
    return (await this.open()).transaction(STORE, mode).objectStore(STORE);
  }

  async put(key: string, bytes: Uint8Array, step: number): Promise<void> {
    const record: Record_ = { key, step, savedAt: new Date().toISOString(), data: bytes.slice().buffer };
    await request((await this.store('readwrite')).put(record));
  }

  async get(key: string): Promise<Uint8Array | null> {
    const record = (await request((await this.store('readonly')).get(key))) as Record_ | undefined;
    return record ? new Uint8Array(record.data) : null;
  }

  async list(): Promise<StoredCheckpointInfo[]> {
    const records = (await request((await this.store('readonly')).getAll())) as Record_[];
    return records.map((r) => ({ key: r.key, step: r.step, bytes: r.data.byteLength, savedAt: r.savedAt }));
  }

  async delete(key: string): Promise<void> {
    await request((await this.store('readwrite')).delete(key));
  }
}

/** The browser's store, or null where there is no IndexedDB (Node tests, some private modes). */
export function defaultCheckpointStore(): CheckpointStore | null {
  return typeof indexedDB === 'undefined' ? null : new IndexedDbCheckpointStore();
}
