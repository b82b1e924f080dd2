// Isolation between bridge networks, as docker's (its DOCKER-ISOLATION-STAGE-1/2 chains): the
// host routes between its bridges when ip_forward is on, so a packet from one network to
// another is dropped in FORWARD. Stage 1 sends what enters from a berth bridge and leaves by
// another interface to stage 2, which drops it when that interface is a berth bridge (`berth+`:
// berth0 and every `berth-…` of a user network); traffic within one bridge is accepted, so
// containers of a network reach each other even where FORWARD's policy is DROP (br_netfilter
// passes bridged frames through FORWARD). The host itself (the gateway on every bridge) still
// reaches every container, as with docker.
//
// Without iptables (the command missing) networks still work but are not isolated: a warning
// says so once per command.
const STAGE1 = 'BERTH-ISOLATION-STAGE-1';
const STAGE2 = 'BERTH-ISOLATION-STAGE-2';

let missingWarned = false;

async function iptables(args: string[]): Promise<boolean> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) =>
    execFile('iptables', ['-w', ...args], (err, _stdout, stderr) => {
      if (!err) return resolve(true);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(err);
      // -C answers 1 for "no such rule" (and so does -N for an existing chain): not an error here.
      if (args[0] === '-C' || args[0] === '-N') return resolve(false);
      reject(new Error(`iptables ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
    }),
  );
}

async function ensureRule(chain: string, rule: string[], insertFirst = false): Promise<void> {
  if (await iptables(['-C', chain, ...rule])) return;
  await iptables(insertFirst ? ['-I', chain, '1', ...rule] : ['-A', chain, ...rule]);
}

function bridgeRules(bridge: string): string[][] {
  return [
    ['-i', bridge, '-o', bridge, '-j', 'ACCEPT'],
    ['-i', bridge, '!', '-o', bridge, '-j', STAGE2],
  ];
}

/** Puts `bridges` under the isolation rules (idempotent; chains made on first use). */
export async function isolate(bridges: string[]): Promise<void> {
  try {
    await iptables(['-N', STAGE1]);
    await iptables(['-N', STAGE2]);
    await ensureRule(STAGE2, ['-o', 'berth+', '-j', 'DROP']);
    for (const b of bridges) for (const rule of bridgeRules(b)) await ensureRule(STAGE1, rule);
    await ensureRule('FORWARD', ['-j', STAGE1], true);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!missingWarned) process.stderr.write('berth: warning: iptables not found: containers of different networks are not isolated from each other\n');
    missingWarned = true;
  }
}

/** Removes a deleted network's rules. */
export async function unisolate(bridge: string): Promise<void> {
  for (const rule of bridgeRules(bridge)) {
    try {
      while (await iptables(['-C', STAGE1, ...rule])) await iptables(['-D', STAGE1, ...rule]);
    } catch {
      return; // no iptables, or no chain: nothing to remove
    }
  }
}
