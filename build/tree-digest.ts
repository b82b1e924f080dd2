// The content digest of a folder of the context, for the cache key of a RUN that bind-mounts it
// (`RUN --mount=type=bind,source=…`): paths, types, modes, owners, link targets and file
// contents, in sorted order; not mtimes (a touched file with the same bytes keeps the cache).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export async function treeDigest(path: string): Promise<string> {
  const digest = createHash('sha256');
  const visit = async (host: string, rel: string): Promise<void> => {
    const st = await lstat(host);
    const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
    let content = '';
    if (kind === 'f') {
      const h = createHash('sha256');
      for await (const chunk of createReadStream(host)) h.update(chunk as Buffer);
      content = h.digest('hex');
    } else if (kind === 'l') content = await readlink(host);
    digest.update(`${JSON.stringify([rel, kind, st.mode & 0o7777, st.uid, st.gid, content])}\n`);
    if (kind === 'd') for (const name of (await readdir(host)).sort()) await visit(join(host, name), rel === '' ? name : `${rel}/${name}`);
  };
  await visit(path, '');
  return `sha256:${digest.digest('hex')}`;
}
