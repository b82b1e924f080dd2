// Spawns berth-helper with its configuration on fd 3 and reads its status line on fd 4.
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { closeSync, read, writeSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { helperPath, pipe, spawnProcess, waitExit } from '../native/index.js';

/** A container process that could not be started; `code` is docker's (125, 126 or 127). */
export class StartError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

export interface Launched {
  /** The helper as a ChildProcess, when it was spawned by child_process (stdin a pipe). */
  child?: ChildProcess;
  /** The helper's stdout and stderr, where they are pipes to this process ('pipe'). */
  stdout?: Readable;
  stderr?: Readable;
  /** Signals the helper (it forwards to the container; SIGKILL takes the container with it). */
  kill(signal: NodeJS.Signals): void;
  /** Host pid of the container's process once exec'd; rejects with StartError. */
  pid: Promise<number>;
  /** Exit code as docker reports it: the code, or 128+signal. */
  exit: Promise<number>;
}

export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

type Stdio = [StdioOptions[number], StdioOptions[number], StdioOptions[number]];

/** One JSON line from the helper's status fd: {pid} once the container runs, or {error, code}. */
function parseStatus(text: string, exit: Promise<number>): Promise<number> {
  const line = text.split('\n')[0] ?? '';
  if (line === '') return exit.then((code) => Promise.reject(new StartError(125, `berth-helper exited (${code}) before starting the container`)));
  const msg = JSON.parse(line) as { pid?: number; error?: string; code?: number };
  if (msg.pid) return Promise.resolve(msg.pid);
  return Promise.reject(new StartError(msg.code ?? 125, msg.error ?? 'unknown error'));
}

export async function launchHelper(mode: 'run' | 'exec', config: object, stdio: Stdio): Promise<Launched> {
  const [stdin, ...output] = stdio;
  if (stdin !== 'pipe' && stdio.every((s) => s === 'inherit' || s === 'ignore' || s === 'pipe')) {
    // Output pipes (a foreground run logs what it shows) are read through net's pipe handles.
    return spawnDirect(mode, config, stdio, output.includes('pipe') ? await import('node:net') : undefined);
  }
  return spawnPiped(mode, config, stdio);
}

/** Reads a file descriptor to its end (a thread-pool read: the helper writes when it is ready). */
function readToEnd(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const next = () =>
      read(fd, Buffer.alloc(4096), 0, 4096, null, (err, n, buf) => {
        if (err) return reject(err);
        if (n === 0) return resolve(Buffer.concat(chunks).toString('utf8'));
        chunks.push(buf.subarray(0, n));
        next();
      });
    next();
  });
}

/**
 * The helper spawned by the addon (posix_spawn, no fork of Node): the start path of a foreground
 * `run`, whose stdin is the terminal's and whose output is the terminal's or pipes to this process.
 * Measured ~9 ms less than child_process.spawn per start.
 */
function spawnDirect(mode: 'run' | 'exec', config: object, stdio: Stdio, net?: typeof import('node:net')): Launched {
  const [configRead, configWrite] = pipe();
  const [statusRead, statusWrite] = pipe();
  const outputs = stdio.map((s) => (s === 'pipe' ? pipe() : undefined));
  let pid: number;
  try {
    pid = spawnProcess(helperPath, [mode], [...stdio.map((s, i) => (s === 'inherit' ? i : s === 'pipe' ? outputs[i]![1] : -1)), configRead, statusWrite]);
  } catch (err) {
    closeSync(configWrite);
    closeSync(statusRead);
    for (const p of outputs) if (p) closeSync(p[0]);
    throw new StartError(125, `${helperPath}: ${(err as Error).message}`);
  } finally {
    closeSync(configRead); // the helper's ends: its own copies live on as its fds 3 and 4
    closeSync(statusWrite);
    for (const p of outputs) if (p) closeSync(p[1]);
  }
  const [, stdout, stderr] = outputs.map((p) => (p ? new net!.Socket({ fd: p[0], readable: true, writable: false }) : undefined));
  try {
    // A few KiB into a fresh pipe: the helper reads it first thing, so this never waits long.
    writeSync(configWrite, JSON.stringify(config));
  } catch {
    // the helper failing early closes it; its status says why
  } finally {
    closeSync(configWrite);
  }
  const exit = waitExit(pid).then(({ code, signal }) => (code !== null ? code : 128 + (signal ?? 0)));
  const started = readToEnd(statusRead).finally(() => closeSync(statusRead)).then((text) => parseStatus(text, exit));
  started.catch(() => undefined); // callers may only await `exit`
  return {
    kill: (signal) => {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    },
    ...(stdout ? { stdout } : {}),
    ...(stderr ? { stderr } : {}),
    pid: started,
    exit,
  };
}

async function spawnPiped(mode: 'run' | 'exec', config: object, stdio: Stdio): Promise<Launched> {
  const { spawn } = await import('node:child_process');
  const child = spawn(helperPath, [mode], { stdio: [...stdio, 'pipe', 'pipe'] as StdioOptions });
  const configPipe = child.stdio[3] as Writable;
  const statusPipe = child.stdio[4] as Readable;
  configPipe.on('error', () => undefined); // the helper failing early closes it; its status says why
  configPipe.end(JSON.stringify(config));
  const exit = new Promise<number>((resolve, reject) => {
    child.on('error', (err) => reject(new StartError(125, `${helperPath}: ${err.message}`)));
    child.on('exit', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
  // A helper that cannot be spawned rejects `exit` at once, before its caller awaits it (it awaits
  // `pid` first): not an unhandled rejection, the caller still gets it.
  exit.catch(() => undefined);
  const pid = new Promise<string>((resolve) => {
    let text = '';
    statusPipe.setEncoding('utf8');
    statusPipe.on('data', (d: string) => (text += d));
    statusPipe.on('close', () => resolve(text));
  }).then((text) => parseStatus(text, exit));
  pid.catch(() => undefined); // callers may only await `exit`
  return { child, ...(child.stdout ? { stdout: child.stdout } : {}), ...(child.stderr ? { stderr: child.stderr } : {}), kill: (signal) => void child.kill(signal), pid, exit };
}
