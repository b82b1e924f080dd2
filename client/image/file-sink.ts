// The last stage of a pipeline writing into an open FileHandle the caller fsyncs and closes: a
// FileHandle write stream with autoClose off never emits 'close', which pipeline() waits for.
import type { FileHandle } from 'node:fs/promises';

export function into(fh: FileHandle): (src: AsyncIterable<Uint8Array>) => Promise<void> {
  return async (src) => {
    for await (const c of src) {
      let off = 0;
      while (off < c.length) off += (await fh.write(c, off, c.length - off)).bytesWritten;
    }
  };
}
