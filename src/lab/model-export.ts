// Where a streamed model export (session.exportModel) goes in a browser, a chunk at a time, without the
// page ever holding the file as one array:
// - 'picker': a file the user chooses (showSaveFilePicker, Chromium), written through its writable
//   stream; needs a user gesture, so the dashboard's button uses it;
// - 'download': where there is no picker, the chunks become a Blob (the browser keeps a Blob's parts
//   where it likes, on disk for large ones) saved through a download link;
// - 'none': nothing kept (automation: the bytes are only counted and checksummed).
// Every sink also counts the bytes and carries a CRC-32, so a caller can compare exports across tabs.
import { crc32 } from '../shared/crc32';
import type { ByteSink } from '../train/checkpoint-parts';

export type ExportTarget = 'picker' | 'download' | 'none';

export interface ExportResult {
  filename: string;
  bytes: number;
  /** CRC-32 of the whole file, 8 hex digits. */
  crc32: string;
  target: ExportTarget;
}

interface SavePickerWindow {
  showSaveFilePicker?: (options: { suggestedName: string }) => Promise<FileSystemFileHandle>;
}

/** A sink for `target`, and how to finish it. Falls back from 'picker' to 'download' where there is no picker. */
export async function openExportSink(filename: string, target: ExportTarget): Promise<{ sink: ByteSink; finish: () => Promise<ExportResult> }> {
  let bytes = 0;
  let crc = 0;
  const counted = (write: (chunk: Uint8Array) => Promise<void> | void): ByteSink => async (chunk) => {
    bytes += chunk.length;
    crc = crc32(chunk, crc);
    await write(chunk);
  };
  const result = (used: ExportTarget): ExportResult => ({ filename, bytes, crc32: (crc >>> 0).toString(16).padStart(8, '0'), target: used });
  const picker = typeof window !== 'undefined' ? (window as unknown as SavePickerWindow).showSaveFilePicker : undefined;
  if (target === 'picker' && picker) {
    const writable = await (await picker({ suggestedName: filename })).createWritable();
    return {
      sink: counted((chunk) => writable.write(chunk.slice())),
      finish: async () => {
        await writable.close();
        return result('picker');
      },
    };
  }
  if (target === 'none') return { sink: counted(() => undefined), finish: async () => result('none') };
  const parts: Blob[] = [];
  return {
    // Each chunk becomes its own small Blob at once; the page keeps no array of the whole file.
    sink: counted((chunk) => void parts.push(new Blob([chunk.slice()]))),
    finish: async () => {
      const url = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
      const link = Object.assign(document.createElement('a'), { href: url, download: filename });
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      return result('download');
    },
  };
}
