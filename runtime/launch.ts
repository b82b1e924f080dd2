// Spawns berth-helper with its configuration on fd 3 and reads its status line on fd 4.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { helperPath } from '../native/index.js';

/** A container process that could not be started; `code` is docker's (125, 126 or 127). */
export class StartError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

export interface Launched {
  child: ChildProcess;
  /** Host pid of the container's process once exec'd; rejects with StartError. */
  pid: Promise<number>;
  /** Exit code as docker reports it: the code, or 128+signal. */
  exit: Promise<number>;
}

export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

export function launchHelper(mode: 'run' | 'exec', config: object, stdio: [StdioOptions[number], StdioOptions[number], StdioOptions[number]]): Launched {
  const child = spawn(helperPath, [mode], { stdio: [...stdio, 'pipe', 'pipe'] as StdioOptions });
  const configPipe = child.stdio[3] as Writable;
  const statusPipe = child.stdio[4] as Readable;
  configPipe.on('error', () => undefined); // the helper failing early closes it; its status says why
  configPipe.end(JSON.stringify(config));
  const exit = new Promise<number>((resolve, reject) => {
    child.on('error', (err) => reject(new StartError(125, `${helperPath}: ${err.message}`)));
    child.on('exit', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
  const pid = new Promise<number>((resolve, reject) => {
    let text = '';
    statusPipe.setEncoding('utf8');
    statusPipe.on('data', (d: string) => (text += d));
    statusPipe.on('close', () => {
      const line = text.split('\n')[0] ?? '';
      if (line === '') {
        exit.then((code) => reject(new StartError(125, `berth-helper exited (${code}) before starting the container`)), reject);
        return;
      }
      const msg = JSON.parse(line) as { pid?: number; error?: string; code?: number };
      if (msg.pid) resolve(msg.pid);
      else reject(new StartError(msg.code ?? 125, msg.error ?? 'unknown error'));
    });
  });
  pid.catch(() => undefined); // callers may only await `exit`
  return { child, pid, exit };
}
