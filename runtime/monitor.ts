// The per-container monitor of a detached container (`run -d`, `start`): a detached process that
// owns the helper, writes the container's output to its log (docker's json-file format: one JSON
// object per line with log, stream, time) and records the exit. Its stdout carries one JSON line
// to the CLI that started it: {"pid":N} or {"error":...,"code":N}; then it is closed.
import { ContainerStore } from './container-store.js';
import { awaitExit, startContainer } from './lifecycle.js';
import { StartError } from './launch.js';
import { RuntimeLayout } from './runtime-layout.js';
import { closeLog, logStream, openLog } from './log-file.js';

async function main(root: string, id: string): Promise<void> {
  const layout = new RuntimeLayout(root);
  const store = new ContainerStore(layout);
  const config = await store.config(id);
  const log = openLog(layout.containerDir(id));
  const tell = (msg: object) => {
    // The CLI reads one line and goes away; later writes to fd 1 must not raise EPIPE.
    process.stdout.on('error', () => undefined);
    process.stdout.write(JSON.stringify(msg) + '\n');
  };
  let copied: Promise<unknown> = Promise.resolve();
  let started;
  try {
    // With -t the terminal's output reaches the log as stdout, as docker's json-file has it.
    const detached = { ...config, helper: { ...config.helper, ttyStdin: false } };
    started = await startContainer(store, detached, ['ignore', 'pipe', 'pipe'], (l) => {
      copied = Promise.all([logStream(l.stdout!, 'stdout', log), logStream(l.stderr!, 'stderr', log)]);
    });
  } catch (err) {
    const e = err instanceof StartError ? err : new StartError(125, (err as Error).message);
    tell({ error: e.message, code: e.code });
    return;
  }
  tell({ pid: started.state.Pid });
  await copied;
  await closeLog(log);
  await awaitExit(store, config, started);
}

const [root, id] = process.argv.slice(2);
process.on('SIGPIPE', () => undefined);
main(root!, id!).catch((err) => {
  process.stderr.write(String(err?.stack ?? err));
  process.exitCode = 1;
});
