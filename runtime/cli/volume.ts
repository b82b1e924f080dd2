// `berth volume create|ls|inspect|rm|prune`: named volumes (runtime/volumes.ts).
import { inspectTemplateError, writeInspect } from '../../client/cli/inspect-output.js';
import { ContainerStore } from '../container-store.js';
import { RuntimeLayout } from '../runtime-layout.js';
import { VolumeStore } from '../volumes.js';
import { writeStdout } from '../../client/cli/stdout.js';

/** Mountpoints used by any container (running or not), as docker keeps them until `rm`. */
async function volumesInUse(store: ContainerStore): Promise<Map<string, string>> {
  const used = new Map<string, string>();
  for (const id of await store.ids()) {
    const c = await store.config(id).catch(() => undefined);
    for (const m of c?.helper.mounts ?? []) used.set(m.source, id);
  }
  return used;
}

/** `berth volume SUB`: sub is create, ls, inspect, rm or prune (flags declared in bin/commands.ts). */
export async function volumeVerb(sub: 'create' | 'ls' | 'inspect' | 'rm' | 'prune', operands: string[], p: { quiet?: boolean; force?: boolean; all?: boolean; format?: string }): Promise<number> {
  const layout = new RuntimeLayout();
  const volumes = new VolumeStore(layout);
  const store = new ContainerStore(layout);
  try {
    switch (sub) {
      case 'create': {
        const v = await volumes.ensure(operands[0]);
        writeStdout(`${v.Name}\n`);
        return 0;
      }
      case 'ls': {
        const list = await volumes.list();
        if (p.format !== undefined && p.format !== '' && !(p.quiet && p.format === 'table')) {
          const [f, { volumeContext, VOLUME_FORMAT }] = await Promise.all([import('../../client/cli/format.js'), import('./format-contexts.js')]);
          return f.writeFormatted(() => f.formatList(p.format!, list.map(volumeContext), VOLUME_FORMAT));
        }
        if (p.quiet) list.forEach((v) => writeStdout(`${v.Name}\n`));
        else writeStdout(['DRIVER    VOLUME NAME', ...list.map((v) => `${v.Driver.padEnd(10)}${v.Name}`)].join('\n') + '\n');
        return 0;
      }
      case 'inspect': {
        let code = 0;
        const out = [];
        const templateError = await inspectTemplateError(p.format);
        if (templateError !== undefined) return templateError;
        for (const name of operands) {
          const v = await volumes.get(name);
          if (v) out.push(v);
          else {
            process.stderr.write(`Error: no such volume: ${name}\n`);
            code = 1;
          }
        }
        return Math.max(code, await writeInspect(out, p.format));
      }
      case 'rm': {
        const used = await volumesInUse(store);
        let code = 0;
        for (const name of operands) {
          const v = await volumes.get(name);
          if (!v) {
            if (!p.force) {
              process.stderr.write(`Error: no such volume: ${name}\n`);
              code = 1;
            }
            continue;
          }
          const by = used.get(v.Mountpoint);
          if (by) {
            process.stderr.write(`Error response from daemon: remove ${name}: volume is in use - [${by}]\n`);
            code = 1;
            continue;
          }
          await volumes.remove(name);
          writeStdout(`${name}\n`);
        }
        return code;
      }
      case 'prune': {
        // docker prunes only anonymous volumes unless --all.
        const used = await volumesInUse(store);
        const removed: string[] = [];
        for (const v of await volumes.list()) {
          if (used.has(v.Mountpoint)) continue;
          if (!p.all && !/^[0-9a-f]{64}$/.test(v.Name)) continue;
          await volumes.remove(v.Name);
          removed.push(v.Name);
        }
        writeStdout(['Deleted Volumes:', ...removed, ''].join('\n'));
        return 0;
      }
    }
  } catch (err) {
    process.stderr.write(`berth: ${(err as Error).message}\n`);
    return 1;
  }
}
