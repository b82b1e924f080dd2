// Networks end to end, as root for real: user-defined bridges, name resolution through /etc/hosts,
// isolation between networks, connect/disconnect on running containers, --network container:,
// --volumes-from, `port`, docker's refusals, and nothing left on the host afterwards. Subnets are
// chosen by the test among 10.200-249.x.0/24 where the host has no route.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostsContent, peerEntries, rewriteInPlace } from './hosts-file.js';
import { contains, formatSubnet, macFor, overlaps, parseAddress, parseSubnet } from './ipv4.js';
import { portLines } from './network.js';
import { buildImage, busyboxLayer } from './test-images.js';

const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const isRoot = process.getuid?.() === 0;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
let root: string;
let image: string;

function berth(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BERTH, ...args], { env: { ...process.env, BERTH_ROOT: root }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function ok(args: string[]): Promise<string> {
  const r = await berth(args);
  assert.equal(r.code, 0, `berth ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const taken: string[] = [];
/** A /24 of 10.200-249.x.0 that overlaps no route of this host and none handed out before. */
function freeSubnet(): string {
  const routes = execFileSync('ip', ['-4', '-o', 'route', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((r) => r && r !== 'default')
    .map((r) => parseSubnet(r.includes('/') ? r : `${r}/32`)!);
  for (;;) {
    const s = parseSubnet(`10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}.0/24`)!;
    if (!routes.some((r) => overlaps(r, s)) && !taken.includes(formatSubnet(s))) {
      taken.push(formatSubnet(s));
      return formatSubnet(s);
    }
  }
}

interface NetworkInspect {
  Name: string;
  Id: string;
  Driver: string;
  IPAM: { Config: { Subnet: string; Gateway?: string }[] };
  Containers: Record<string, { Name: string; IPv4Address: string; MacAddress: string }>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

async function inspectNetwork(name: string): Promise<NetworkInspect> {
  return (JSON.parse(await ok(['network', 'inspect', name])) as NetworkInspect[])[0]!;
}

async function addressOn(container: string, network: string): Promise<string> {
  const info = JSON.parse(await ok(['inspect', container])) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[];
  return info[0]!.NetworkSettings.Networks[network]!.IPAddress;
}

/** Host links whose name starts with `prefix`. */
function links(prefix: string): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

/** The host end of a container's veth on a network (`bv` + 13 hex digits of its endpoint id). */
async function hostVeth(container: string, network: string): Promise<string> {
  const info = JSON.parse(await ok(['inspect', container])) as { NetworkSettings: { Networks: Record<string, { EndpointID: string }> } }[];
  return `bv${info[0]!.NetworkSettings.Networks[network]!.EndpointID.slice(0, 13)}`;
}

/** Waits for a link to go: the kernel frees a namespace's veths shortly after its last process. */
async function gone(link: string): Promise<void> {
  for (let i = 0; i < 50 && links(link).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(links(link), [], `${link} left behind`);
}

/** A command in the container, retried while it fails (a server started with -d needs a moment). */
async function eventually(args: string[], attempts = 40): Promise<Result> {
  let r: Result | undefined;
  for (let i = 0; i < attempts; i++) {
    r = await berth(args);
    if (r.code === 0) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
  return r!;
}

describe('addresses and /etc/hosts (no root needed)', () => {
  test('subnets: parsing, containment, overlap, docker MACs', () => {
    const s = parseSubnet('10.1.2.3/24')!;
    assert.equal(formatSubnet(s), '10.1.2.0/24');
    assert.equal(contains(s, parseAddress('10.1.2.254')!), true);
    assert.equal(contains(s, parseAddress('10.1.3.1')!), false);
    assert.equal(overlaps(s, parseSubnet('10.1.0.0/16')!), true);
    assert.equal(overlaps(s, parseSubnet('10.1.3.0/24')!), false);
    for (const bad of ['10.1.2.0', '10.1.2.0/33', '300.1.1.1/8', 'bogus', '10.1.2/24']) assert.equal(parseSubnet(bad), undefined, bad);
    assert.equal(macFor(parseAddress('10.211.0.2')!), '02:42:0a:d3:00:02'); // what dockerd gave the same address
  });

  test('a hosts file is rewritten in place: same inode, never a torn line, shorter content truncated', async () => {
    const d = await mkdtemp(join(tmpdir(), 'berth-hosts-'));
    try {
      const path = join(d, 'hosts');
      const long = hostsContent('me', ['10.0.0.2'], [{ address: '10.0.0.3', names: ['web', 'www', 'abcdef012345'] }]);
      writeFileSync(path, long);
      const inode = statSync(path).ino;
      const fd = openSync(path, 'r'); // as a bind mount holds the inode
      const short = hostsContent('me', ['10.0.0.2'], []);
      assert.equal(rewriteInPlace(path, short), true);
      assert.equal(statSync(path).ino, inode);
      assert.equal(readFileSync(path, 'utf8'), short);
      assert.equal(readFileSync(fd, 'utf8'), short);
      closeSync(fd);
      assert.equal(rewriteInPlace(join(d, 'gone'), short), false);
      assert.match(short, /^127\.0\.0\.1\tlocalhost\n/);
      assert.match(long, /\n10\.0\.0\.3\tweb www abcdef012345\n$/);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  test('peers: running containers of shared user networks, not the default bridge\'s', () => {
    const ep = (Name: string, IPAddress: string) => ({ Name, EndpointID: 'e', MacAddress: 'm', IPAddress, Aliases: [], Interface: 'eth0', HostVeth: 'bv', Seq: 1 });
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    const c = 'c'.repeat(64);
    const nets = [
      { Name: 'bridge', Id: '1', Created: '', Driver: 'bridge' as const, Labels: {}, Endpoints: { [a]: ep('a', '10.89.0.2'), [b]: ep('b', '10.89.0.3') } },
      { Name: 'front', Id: '2', Created: '', Driver: 'bridge' as const, Labels: {}, Endpoints: { [a]: ep('a', '10.5.0.2'), [b]: ep('b', '10.5.0.3'), [c]: ep('c', '10.5.0.4') } },
    ];
    assert.deepEqual(peerEntries(a, nets, (id) => id !== c), [{ address: '10.5.0.3', names: ['b', 'bbbbbbbbbbbb'] }]);
  });

  test('port lines as docker prints them', () => {
    const bindings = [
      { hostIp: '0.0.0.0', hostPort: 18081, containerPort: 81, protocol: 'udp' as const },
      { hostIp: '127.0.0.1', hostPort: 18080, containerPort: 80, protocol: 'tcp' as const },
    ];
    assert.deepEqual(portLines(bindings), ['80/tcp -> 127.0.0.1:18080', '81/udp -> 0.0.0.0:18081']);
    assert.deepEqual(portLines(bindings, '80'), ['127.0.0.1:18080']);
    assert.deepEqual(portLines(bindings, '81/udp'), ['0.0.0.0:18081']);
    assert.equal(portLines(bindings, '81'), undefined);
  });
});

describe('berth network', { skip: !isRoot && 'needs root (bridges, veths, namespaces)' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-net-'));
    root = join(dir, 'root');
    const layout = join(dir, 'images');
    await buildImage(layout, 'busybox', [[...busyboxLayer(), { name: 'bin/ping', type: 'symlink', linkname: 'busybox' }]], { Cmd: ['sh'] });
    image = `oci:${layout}:busybox`;
  });
  after(async () => {
    if (!dir) return;
    // Whatever a failed test left: containers first (their endpoints), then the networks.
    const ids = (await berth(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await berth(['rm', '-f', ...ids]);
    await berth(['network', 'prune', '-f']);
    await rm(dir, { recursive: true, force: true });
  });

  test('ls lists bridge, host and none; create/inspect show docker\'s shape; refusals use docker\'s words', async () => {
    const ls = await ok(['network', 'ls']);
    assert.match(ls, /^NETWORK ID {5}NAME {6}DRIVER {4}SCOPE\n/);
    for (const [name, driver] of [['bridge', 'bridge'], ['host', 'host'], ['none', 'null']]) assert.match(ls, new RegExp(`^[0-9a-f]{12}   ${name}\\s+${driver}\\s+local$`, 'm'));
    const subnet = freeSubnet();
    const gateway = subnet.replace(/0\/24$/, '254');
    const id = (await ok(['network', 'create', '--subnet', subnet, '--gateway', gateway, '--label', 'team=web', 'alpha'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const n = await inspectNetwork('alpha');
    assert.equal(n.Id, id);
    assert.equal(n.Driver, 'bridge');
    assert.deepEqual(n.IPAM.Config, [{ Subnet: subnet, Gateway: gateway }]);
    assert.deepEqual(n.Labels, { team: 'web' });
    assert.deepEqual(n.Containers, {});
    const bridge = n.Options['com.docker.network.bridge.name']!;
    assert.match(execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', bridge], { encoding: 'utf8' }), new RegExp(`inet ${gateway.replace(/\./g, '\\.')}/24`));
    assert.equal((await inspectNetwork(id.slice(0, 12))).Name, 'alpha'); // by id prefix too

    const refusals: [string[], RegExp, number][] = [
      [['network', 'create', 'alpha'], /^Error response from daemon: network with name alpha already exists\n$/, 1],
      [['network', 'create', '--subnet', subnet.replace(/\/24$/, '/16'), 'beta'], /^Error response from daemon: Pool overlaps with other one on this address space\n$/, 1],
      [['network', 'create', '--subnet', 'bogus', 'beta'], /^Error response from daemon: Invalid subnet bogus : invalid CIDR address: bogus\n$/, 1],
      [['network', 'create', '--subnet', subnet, '--gateway', '192.0.2.77', 'beta'], /^no matching subnet for gateway 192\.0\.2\.77\n$/, 1],
      [['network', 'create', '--driver', 'foo', 'beta'], /^Error response from daemon: plugin "foo" not found\n$/, 1],
      [['network', 'rm', 'bridge'], /^Error response from daemon: bridge is a pre-defined network and cannot be removed\n$/, 1],
      [['network', 'rm', 'nope'], /^Error response from daemon: network nope not found\n$/, 1],
      [['network', 'inspect', 'nope'], /^Error response from daemon: network nope not found\n$/, 1],
      [['run', '--rm', '--network', 'nope', image, 'true'], /network nope not found/, 125],
      [['run', '--rm', '--network-alias', 'x', image, 'true'], /network-scoped aliases are only supported for user-defined networks/, 125],
      [['run', '--rm', '--network', 'bridge', '--ip', '10.89.7.7', image, 'true'], /user specified IP address is supported on user defined networks only/, 125],
      [['run', '--rm', '--network', 'alpha', '--ip', '192.0.2.9', image, 'true'], /Invalid address 192\.0\.2\.9: It does not belong to any of this network's subnets/, 125],
      [['run', '--rm', '--network', 'alpha', '--ip', gateway, image, 'true'], /Address already in use/, 125],
      [['run', '--rm', '--network', 'alpha', '--network-alias', 'evil\n10.0.0.1 victim', image, 'true'], /invalid network alias/, 125],
    ];
    for (const [args, message, code] of refusals) {
      const r = await berth(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    assert.equal((JSON.parse((await berth(['network', 'inspect', 'nope'])).stdout) as unknown[]).length, 0);
    assert.deepEqual((await ok(['network', 'ls', '-q'])).split('\n').filter(Boolean).length, 4);
    assert.equal(await ok(['network', 'ls', '-q', '--no-trunc', '--filter', 'label=team=web']), `${id}\n`);
    assert.equal(await ok(['network', 'ls', '-q', '-f', 'type=custom', '-f', 'name=alp']), `${id.slice(0, 12)}\n`);
    assert.equal((await ok(['network', 'ls', '--filter', 'driver=null'])).split('\n')[1]!.split(/\s+/)[1], 'none');
    // Without --subnet: the first of docker's pools that overlaps nothing here.
    await ok(['network', 'create', 'auto']);
    const auto = (await inspectNetwork('auto')).IPAM.Config[0]!.Subnet;
    assert.match(auto, /^(172\.(1[89]|2\d|3[01])\.0\.0\/16|192\.168\.\d+\.0\/20)$/);
    assert.ok(![subnet].some((s) => overlaps(parseSubnet(s)!, parseSubnet(auto)!)));
    await ok(['network', 'rm', 'auto']);
    assert.equal((await ok(['network', 'rm', 'alpha'])).trim(), 'alpha');
    assert.deepEqual(links(bridge), []);
  });

  test('containers of one network reach each other by name and alias; another network cannot reach them; nothing is left after rm', async () => {
    const front = freeSubnet();
    const back = freeSubnet();
    await ok(['network', 'create', '--subnet', front, 'front']);
    await ok(['network', 'create', '--subnet', back, 'back']);
    const frontBridge = (await inspectNetwork('front')).Options['com.docker.network.bridge.name']!;
    const webId = (await ok(['run', '-d', '--name', 'web', '--network', 'front', '--network-alias', 'www', image, 'httpd', '-f', '-p', '80', '-h', '/etc'])).trim();
    const webIp = await addressOn('web', 'front');
    assert.ok(contains(parseSubnet(front)!, parseAddress(webIp)!), webIp);

    // By name (ping and HTTP), by alias and by short id, from a second container of the network.
    const r = await eventually(['run', '--rm', '--name', 'client', '--network', 'front', image, 'sh', '-c', `ping -c1 -W2 web >/dev/null && wget -qO- http://web/hostname && wget -qO- http://www/hostname && wget -qO- http://${webId.slice(0, 12)}/hostname`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${webId.slice(0, 12)}\n`.repeat(3));

    // network inspect lists the running members with their addresses.
    await ok(['run', '-d', '--name', 'peer', '--network', 'front', image, 'sleep', '300']);
    const peerIp = await addressOn('peer', 'front');
    const members = (await inspectNetwork('front')).Containers;
    assert.deepEqual(Object.values(members).map((m) => [m.Name, m.IPv4Address]).sort(), [['peer', `${peerIp}/24`], ['web', `${webIp}/24`]].sort());
    // The peer that started first learned of the later one: its /etc/hosts was rewritten.
    assert.match(await ok(['exec', 'web', 'cat', '/etc/hosts']), new RegExp(`^${peerIp.replace(/\./g, '\\.')}\\tpeer [0-9a-f]{12}$`, 'm'));

    // Another network: no route through the host between bridges, and no name for them.
    const outsider = await berth(['run', '--rm', '--network', 'back', image, 'sh', '-c', `ping -c1 -W1 ${webIp}; echo ping=$?; grep -c web /etc/hosts; echo grep=$?`]);
    assert.match(outsider.stdout, /ping=1\n/, outsider.stdout + outsider.stderr);
    assert.match(outsider.stdout, /^0\ngrep=1\n$/m);

    // Stopping a container takes it out of its peers' /etc/hosts; removing it frees its address.
    const peerVeth = await hostVeth('peer', 'front');
    assert.deepEqual(links(peerVeth), [peerVeth]);
    await ok(['stop', '-t', '1', 'peer']);
    assert.doesNotMatch(await ok(['exec', 'web', 'cat', '/etc/hosts']), /\tpeer /);
    await ok(['rm', 'peer']);
    const again = await ok(['run', '-d', '--name', 'peer2', '--network', 'front', image, 'sleep', '300']);
    assert.ok(again);
    assert.equal(await addressOn('peer2', 'front'), peerIp);

    // rm refuses while containers are attached, then everything goes: veths, bridge, rules.
    const refused = await berth(['network', 'rm', 'front']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^Error response from daemon: error while removing network: network front id [0-9a-f]{64} has active endpoints\n$/);
    const veths = [peerVeth, await hostVeth('web', 'front'), await hostVeth('peer2', 'front')];
    await ok(['rm', '-f', 'web', 'peer2']);
    await ok(['network', 'rm', 'front', 'back']);
    assert.deepEqual(links(frontBridge), []);
    for (const v of veths) await gone(v);
    assert.doesNotMatch(execFileSync('iptables', ['-S'], { encoding: 'utf8' }), new RegExp(frontBridge));
  });

  test('connect and disconnect a running container: interfaces, /etc/hosts and reachability follow', async () => {
    await ok(['network', 'create', '--subnet', freeSubnet(), 'red']);
    await ok(['network', 'create', '--subnet', freeSubnet(), 'blue']);
    await ok(['run', '-d', '--name', 'srv', '--network', 'red', image, 'httpd', '-f', '-p', '80', '-h', '/etc']);
    await ok(['run', '-d', '--name', 'mover', '--network', 'blue', image, 'sleep', '300']);
    const srvShort = (await ok(['inspect', 'srv'])).match(/"Id": "([0-9a-f]{12})/)![1]!;

    const srvIp = await addressOn('srv', 'red');
    // Not on its network: neither a name (wget would wait for the host's DNS) nor a route.
    assert.doesNotMatch(await ok(['exec', 'mover', 'cat', '/etc/hosts']), /srv/);
    assert.equal((await berth(['exec', 'mover', 'ping', '-c1', '-W1', srvIp])).code, 1);
    assert.equal((await ok(['network', 'connect', '--alias', 'mv', 'red', 'mover'])), '');
    const moverRed = await addressOn('mover', 'red');
    const addrs = await ok(['exec', 'mover', 'ip', 'addr']);
    assert.match(addrs, new RegExp(`eth1.*\\n(.*\\n)*.*inet ${moverRed.replace(/\./g, '\\.')}/24`));
    assert.equal((await eventually(['exec', 'mover', 'wget', '-qO-', 'http://srv/hostname'])).stdout, `${srvShort}\n`);
    assert.match(await ok(['exec', 'srv', 'cat', '/etc/hosts']), new RegExp(`^${moverRed.replace(/\./g, '\\.')}\\tmover mv [0-9a-f]{12}$`, 'm'));
    const twice = await berth(['network', 'connect', 'red', 'mover']);
    assert.match(twice.stderr, /^Error response from daemon: endpoint with name mover already exists in network red\n$/);

    // Leaving its first network moves the default route to the one it stays on.
    await ok(['network', 'disconnect', 'blue', 'mover']);
    const routes = await ok(['exec', 'mover', 'ip', 'route']);
    assert.match(routes, /^default via \S+ dev eth1/m);
    await ok(['network', 'disconnect', 'red', 'mover']);
    assert.doesNotMatch(await ok(['exec', 'mover', 'ip', 'addr']), /eth\d/);
    assert.doesNotMatch(await ok(['exec', 'srv', 'cat', '/etc/hosts']), /mover/);
    const unreachable = await berth(['exec', 'mover', 'ping', '-c1', '-W1', srvIp]);
    assert.equal(unreachable.code, 1, unreachable.stderr);
    assert.match(unreachable.stderr + unreachable.stdout, /Network is unreachable|100% packet loss/);
    const notOn = await berth(['network', 'disconnect', 'red', 'mover']);
    assert.match(notOn.stderr, /^Error response from daemon: container [0-9a-f]{64} is not connected to network red\n$/);

    // Connected while stopped: plugged in at its next start.
    await ok(['stop', '-t', '1', 'mover']);
    await ok(['network', 'connect', 'red', 'mover']);
    await ok(['start', 'mover']);
    assert.equal((await eventually(['exec', 'mover', 'wget', '-qO-', 'http://srv/hostname'])).stdout, `${srvShort}\n`);
    await ok(['rm', '-f', 'srv', 'mover']);
    await ok(['network', 'rm', 'red', 'blue']);
  });

  test('--network container: shares the interfaces, addresses and localhost of a running container', async () => {
    await ok(['network', 'create', '--subnet', freeSubnet(), 'shared']);
    await ok(['run', '-d', '--name', 'owner', '--network', 'shared', image, 'httpd', '-f', '-p', '127.0.0.1:8080', '-h', '/etc']);
    const ownerAddrs = (await ok(['exec', 'owner', 'ip', 'addr'])).replace(/ \(.*\)$/gm, '');
    const r = await eventually(['run', '--rm', '--network', 'container:owner', image, 'sh', '-c', 'ip addr; echo ---; wget -qO- http://127.0.0.1:8080/hostname; hostname']);
    assert.equal(r.code, 0, r.stderr);
    const [addrs, rest] = r.stdout.split('---\n');
    assert.equal(addrs, ownerAddrs);
    const ownerShort = (await ok(['inspect', 'owner'])).match(/"Id": "([0-9a-f]{12})/)![1]!;
    assert.equal(rest, `${ownerShort}\n${ownerShort}\n`);
    // --net is the same flag; the joiner is not a member of the network of its own.
    assert.equal((await berth(['run', '--rm', '--net', `container:${ownerShort}`, image, 'true'])).code, 0);
    assert.equal(Object.keys((await inspectNetwork('shared')).Containers).length, 1);

    for (const [args, message] of [
      [['--network', 'container:nope'], /No such container: nope/],
      [['--network', 'container:owner', '--hostname', 'x'], /conflicting options: hostname and the network mode/],
      [['--network', 'container:owner', '-p', '8081:80'], /conflicting options: port publishing and the container type network mode/],
    ] as [string[], RegExp][]) {
      const bad = await berth(['run', '--rm', ...args, image, 'true']);
      assert.equal(bad.code, 125);
      assert.match(bad.stderr, message);
    }
    await ok(['stop', '-t', '1', 'owner']);
    const stopped = await berth(['run', '--rm', '--network', 'container:owner', image, 'true']);
    assert.equal(stopped.code, 125);
    assert.match(stopped.stderr, /cannot join network namespace of a non running container: container owner is exited/);
    await ok(['rm', 'owner']);
    await ok(['network', 'rm', 'shared']);
  });

  test('run --volumes-from: the other container\'s volumes and binds, :ro refusing writes', async () => {
    const hostDir = join(dir, 'bound');
    await mkdir(hostDir);
    await ok(['run', '-d', '--name', 'store', '-v', 'vf-data:/data', '-v', `${hostDir}:/host`, image, 'sleep', '300']);
    const ro = await berth(['run', '--rm', '--volumes-from', 'store:ro', image, 'sh', '-c', 'touch /data/x; echo data=$?; touch /host/x; echo host=$?']);
    assert.match(ro.stdout, /data=1\nhost=1\n/);
    assert.match(ro.stderr, /Read-only file system/);
    const rw = await berth(['run', '--rm', '--volumes-from', 'store', image, 'sh', '-c', 'echo hi > /data/x && echo yo > /host/y']);
    assert.equal(rw.code, 0, rw.stderr);
    assert.equal(readFileSync(join(hostDir, 'y'), 'utf8'), 'yo\n');
    assert.equal((await ok(['exec', 'store', 'cat', '/data/x'])), 'hi\n');
    // A mount of its own wins over an inherited one at the same path.
    const own = await berth(['run', '--rm', '--volumes-from', 'store', '-v', 'vf-other:/data', image, 'cat', '/data/x']);
    assert.equal(own.code, 1);
    const info = JSON.parse(await ok(['run', '-d', '--name', 'reader', '--volumes-from', 'store:ro', image, 'sleep', '300']).then(() => ok(['inspect', 'reader']))) as { HostConfig: { VolumesFrom: string[] }; Mounts: { Destination: string; RW: boolean }[] }[];
    assert.deepEqual(info[0]!.HostConfig.VolumesFrom, ['store:ro']);
    assert.deepEqual(info[0]!.Mounts.map((m) => [m.Destination, m.RW]).sort(), [['/data', false], ['/host', false]]);
    for (const [spec, message] of [['nope', /No such container: nope/], ['store:xx', /invalid mode: xx/]] as [string, RegExp][]) {
      const bad = await berth(['run', '--rm', '--volumes-from', spec, image, 'true']);
      assert.equal(bad.code, 125);
      assert.match(bad.stderr, message);
    }
    await ok(['rm', '-f', 'store', 'reader']);
  });

  test('port lists published ports as docker does', async () => {
    await ok(['network', 'create', '--subnet', freeSubnet(), 'ports']);
    await ok(['run', '-d', '--name', 'pub', '--network', 'ports', '-p', '127.0.0.1:18480:80', '-p', '18481:81/udp', image, 'httpd', '-f', '-p', '80', '-h', '/etc']);
    assert.equal(await ok(['port', 'pub']), '80/tcp -> 127.0.0.1:18480\n81/udp -> 0.0.0.0:18481\n');
    assert.equal(await ok(['port', 'pub', '80']), '127.0.0.1:18480\n');
    assert.equal(await ok(['port', 'pub', '81/udp']), '0.0.0.0:18481\n');
    const none = await berth(['port', 'pub', '82']);
    assert.equal(none.code, 1);
    assert.equal(none.stderr, "Error: No public port '82' published for pub\n");
    const missing = await berth(['port', 'nope']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'Error response from daemon: No such container: nope\n');
    // Published from the user network: the proxy forwards to its address there.
    const short = (await ok(['inspect', 'pub'])).match(/"Id": "([0-9a-f]{12})/)![1]!;
    let body = '';
    for (let i = 0; i < 50 && body === ''; i++) {
      body = await fetch('http://127.0.0.1:18480/hostname').then((res) => res.text(), () => '');
      if (body === '') await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(body, `${short}\n`);
    await ok(['stop', '-t', '1', 'pub']);
    assert.equal(await ok(['port', 'pub']), ''); // docker: nothing for a stopped container
    await ok(['rm', 'pub']);
    await ok(['network', 'rm', 'ports']);
  });

  test('an endpoint left by a run killed before it wrote its container does not pin the network', async () => {
    await ok(['network', 'create', '--subnet', freeSubnet(), 'orphaned']);
    const statePath = join(root, 'networks', 'state.json');
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { networks: { Name: string; Endpoints: Record<string, object> }[] };
    // What a run killed between joining and writing its container leaves: its pid is gone, no state dir.
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    const ghost = { Name: 'ghost', EndpointID: 'f'.repeat(64), MacAddress: '02:42:0a:00:00:09', IPAddress: '10.0.0.9', Aliases: [], Interface: 'eth0', HostVeth: 'bvfffffffffffff', Seq: 999, Owner: dead.pid };
    state.networks.find((n) => n.Name === 'orphaned')!.Endpoints['e'.repeat(64)] = ghost;
    // A live owner (this test) still creating its container: kept.
    state.networks.find((n) => n.Name === 'orphaned')!.Endpoints['d'.repeat(64)] = { ...ghost, Name: 'creating', Owner: process.pid };
    writeFileSync(statePath, JSON.stringify(state));
    const busy = await berth(['network', 'rm', 'orphaned']);
    assert.match(busy.stderr, /has active endpoints/);
    delete state.networks.find((n) => n.Name === 'orphaned')!.Endpoints['d'.repeat(64)];
    writeFileSync(statePath, JSON.stringify(state));
    assert.equal(await ok(['network', 'rm', 'orphaned']), 'orphaned\n');
  });

  test('concurrent runs on one network get distinct addresses (the network lock)', async () => {
    await ok(['network', 'create', '--subnet', freeSubnet(), 'busy']);
    const names = ['c1', 'c2', 'c3', 'c4', 'c5'];
    const runs = await Promise.all(names.map((n) => berth(['run', '-d', '--name', n, '--network', 'busy', image, 'sleep', '300'])));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const addresses = await Promise.all(names.map((n) => addressOn(n, 'busy')));
    assert.equal(new Set(addresses).size, names.length, addresses.join(' '));
    await Promise.all(names.map((n) => berth(['rm', '-f', n])));
    assert.deepEqual(Object.keys((await inspectNetwork('busy')).Containers), []);
    await ok(['network', 'rm', 'busy']);
  });
});
