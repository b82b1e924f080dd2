// The Go template engine and docker's --format behaviour. Expected strings are what docker's CLI
// (Go's text/template) printed for the same template and data; the docker interop test compares
// against a live dockerd as well (conformance-tests/docker-format.test.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GoTemplate, TemplateExecError, TemplateParseError, goFloat, goMap, goSprintf } from './go-template.js';
import { FormatError, formatContext, formatInspect, formatList, formatValue, goStruct, goTimeString, humanDuration, tabwrite, withGoTypes } from './format.js';

/** A container as `docker inspect` printed it (dockerd 20.10, `docker create --name c1 -e A=1 -v /tmp:/mnt bb:1 sleep 100`). */
function container(): Record<string, unknown> {
  return {
    Id: '83371434e06aaa1d24eafcda2a3ee4c021e60fbe59711a0ed4f0ec733e5ef021',
    Path: 'sleep',
    Args: ['100'],
    State: { Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z' },
    Name: '/c1',
    ExecIDs: null,
    HostConfig: { Binds: ['/tmp:/mnt'], LogConfig: { Type: 'json-file', Config: {} }, CapAdd: null, PortBindings: {} },
    Mounts: [{ Type: 'bind', Source: '/tmp', Destination: '/mnt', Mode: '', RW: true, Propagation: 'rslave' }],
    Config: { Hostname: '83371434e06a', Env: ['A=1', 'FOO=bar'], Cmd: ['sleep', '100'], Image: 'bb:1', Volumes: null, Entrypoint: null, Labels: {} },
    NetworkSettings: { Ports: {}, Networks: { bridge: { IPAMConfig: null, Gateway: '', IPAddress: '' } } },
  };
}

function inspect(format: string, obj: unknown = container()): { stdout: string; stderr: string; code: number } {
  try {
    return formatInspect(format, [obj]);
  } catch (e) {
    if (e instanceof FormatError) return { stdout: e.stdout, stderr: `${e.message}\n`, code: e.exitCode };
    throw e;
  }
}

const out = (format: string, obj?: unknown) => {
  const r = inspect(format, obj);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.replace(/\n$/, '');
};

describe('Go templates as docker inspect -f runs them', () => {
  it('reads fields, paths and ranges', () => {
    assert.equal(out('{{.State.Status}}'), 'created');
    assert.equal(out('{{.Config.Env}}'), '[A=1 FOO=bar]');
    assert.equal(out('{{json .Config.Env}}'), '["A=1","FOO=bar"]');
    assert.equal(out('{{range .Mounts}}{{.Source}}{{end}}'), '/tmp');
    assert.equal(out('{{.HostConfig.Binds}}'), '[/tmp:/mnt]');
    assert.equal(out('  {{.Name}}  '), '  /c1  ');
    assert.equal(out('{{(index .Mounts 0).Source}}'), '/tmp');
    assert.equal(out('{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}'), 'bridge');
  });

  it('prints maps, nil maps, nil slices and structs as Go does', () => {
    assert.equal(out('{{.Config.Labels}}'), 'map[]');
    assert.equal(out('{{.Config.Volumes}} {{.Config.Entrypoint}} {{.ExecIDs}} {{.HostConfig.CapAdd}}'), 'map[] [] [] []');
    // docker's output: the fields its JSON leaves out when empty (State.Health, Mount.Name/Driver) are there too.
    assert.equal(out('{{.State}}'), '{created false false false false false 0 0  0001-01-01T00:00:00Z 0001-01-01T00:00:00Z <nil>}');
    assert.equal(out('{{.Mounts}}'), '[{bind  /tmp /mnt   true rslave}]');
    assert.equal(out('{{.SizeRw}} {{.Config.ExposedPorts}} {{.State.Health}}'), '<nil> map[] <nil>');
    // …and, omitempty, not in their JSON.
    assert.equal(out('{{json .Mounts}}'), '[{"Type":"bind","Source":"/tmp","Destination":"/mnt","Mode":"","RW":true,"Propagation":"rslave"}]');
    assert.equal(out('{{json .State}}'), '{"Status":"created","Running":false,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":0,"ExitCode":0,"Error":"","StartedAt":"0001-01-01T00:00:00Z","FinishedAt":"0001-01-01T00:00:00Z"}');
    assert.equal(inspect('{{.Id}} {{.SizeRw}}').stderr, 'template parsing error: template: :1:10: executing "" at <.SizeRw>: map has no entry for key "SizeRw"\n');
    assert.equal(out('{{.Config.Labels}}', { Config: { Labels: { b: '2', a: '1' } } }), 'map[a:1 b:2]');
    assert.equal(out('{{json .Config.Labels}}', { Config: { Labels: { b: '2', a: '1' } } }), '{"a":"1","b":"2"}');
    assert.equal(out('{{json .Config.Volumes}}'), 'null');
    assert.equal(out('{{.NetworkSettings.Networks.bridge.IPAMConfig}}'), '<nil>');
  });

  it('a missing map key is <no value>; a missing struct field fails as docker', () => {
    assert.equal(out('{{.Config.Labels.foo}}'), '<no value>');
    assert.equal(out('{{index .Config.Labels "x"}}'), '');
    const r = inspect('{{.NoSuchField}}');
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '\n');
    assert.equal(r.stderr, 'template parsing error: template: :1:2: executing "" at <.NoSuchField>: map has no entry for key "NoSuchField"\n');
    // Go reports a chain at its second field.
    assert.equal(inspect('{{.State.Foo}}').stderr, 'template parsing error: template: :1:8: executing "" at <.State.Foo>: map has no entry for key "Foo"\n');
    assert.equal(inspect('{{.State.Status.Foo}}').stderr, 'template parsing error: template: :1:8: executing "" at <.State.Status.Foo>: can\'t evaluate field Foo in type interface {}\n');
  });

  it('syntax errors exit 64 with Go\'s line and message', () => {
    const cases: Array<[string, string]> = [
      ['{{.State.Status', 'unclosed action'],
      ['{{.State.Status}', "bad character U+007D '}'"],
      ['{{foo .X}}', 'function "foo" not defined'],
      ['{{if 1}}', 'unexpected EOF'],
      ['{{$y}}', 'undefined variable "$y"'],
      ['{{else}}', 'unexpected {{else}}'],
      ['{{end}}', 'unexpected {{end}}'],
      ['{{"abc}}', 'unterminated quoted string'],
      ['{{)}}', 'unexpected ")" in command'],
      ['{{|}}', 'unexpected "|" in command'],
      ['a\nb\n{{.X', 'unclosed action'],
      ['{{.A.}}', 'unexpected <.> in operand'],
      ['{{1.2.3}}', 'unexpected ".3" in operand'],
      ['{{ /* a */}}', 'unexpected "/" in command'],
      ['{{0x}}', 'illegal number syntax: "0x"'],
      ["{{'ab'}}", "malformed character constant: 'ab'"],
      ['{{range $a, $b, $c := .X}}{{end}}', 'too many declarations in range'],
      ['{{"x".Y}}', 'unexpected . after term "\\"x\\""'],
      ['{{if .A}}{{else}}{{else}}{{end}}', 'expected end; found {{else}}'],
    ];
    for (const [format, msg] of cases) {
      const r = inspect(format);
      const line = format.split('\n').length;
      assert.deepEqual([r.code, r.stdout, r.stderr], [64, '', `template parsing error: template: :${line}: ${msg}\n`], format);
    }
  });

  it('execution errors carry line:column and the node', () => {
    const cases: Array<[string, string]> = [
      ['{{index .Config.Env 5}}', ':1:2: executing "" at <index .Config.Env 5>: error calling index: index out of range: 5'],
      ['{{eq .State.Status "created"}} {{lt 1 2.5}}', ':1:33: executing "" at <lt 1 2.5>: error calling lt: incompatible types for comparison'],
      ['{{len 3}}', ':1:2: executing "" at <len 3>: error calling len: len of type int'],
      ['{{template "x"}}', ':1:11: executing "" at <{{template "x"}}>: template "x" not defined'],
      ['{{.Name 1}}', ':1:2: executing "" at <.Name>: Name is not a method but has arguments'],
      ['{{nil}}', ':1:2: executing "" at <nil>: nil is not a command'],
      ['{{printf}}', ':1:2: executing "" at <printf>: wrong number of args for printf: want at least 1 got 0'],
      ['x\n  {{.Nope}}', ':2:4: executing "" at <.Nope>: map has no entry for key "Nope"'],
      ['{{$x = 1}}', ':1:7: executing "" at <1>: undefined variable: $x'],
      ['{{slice .Name 2 1}}', ':1:2: executing "" at <slice .Name 2 1>: error calling slice: invalid slice index: 2 > 1'],
    ];
    for (const [format, msg] of cases) assert.equal(inspect(format).stderr, `template parsing error: template: ${msg}\n`, format);
  });

  it('functions, variables, control structures and pipelines', () => {
    assert.equal(out('{{printf "%5.2f|%-6s|%q|%v|%d|%x" 3.14159 "ab" "q" .State.Running 42 255}}'), ' 3.14|ab    |"q"|false|42|ff');
    assert.equal(out('{{$x := .Name}}{{$x}}{{range $i, $m := .Mounts}}{{$i}}={{$m.Source}}{{end}}'), '/c10=/tmp');
    assert.equal(out('{{- " a " -}} {{.Name}}'), ' a /c1');
    assert.equal(out('x  {{- .Name -}}  \n y'), 'x/c1y');
    assert.equal(out('{{len .Name}}{{index .Config.Env 1}}{{slice .Name 1 2}}'), '3FOO=barc');
    assert.equal(out('{{eq .State.Status "x" "created"}} {{ne 1 2}} {{lt 1 2}} {{and 1 0}} {{or 0 "" "z"}} {{not .State.Running}}'), 'true true true 0 z true');
    assert.equal(out('{{title "hello world"}} {{split "a,b" ","}} {{join .Config.Env ";"}} {{pad "x" 1 2}}| {{truncate "abcdef" 3}}'), 'Hello World [a b] A=1;FOO=bar  x  | abc');
    assert.equal(out('{{lower "AbC"}}{{upper "dEf"}}'), 'abcDEF');
    assert.equal(out('{{/* c */}}x{{if .State.Running}}r{{else if eq .State.Status "created"}}c{{else}}o{{end}}'), 'xc');
    assert.equal(out('{{range .Config.Env}}{{if eq . "A=1"}}{{continue}}{{end}}{{.}}{{break}}{{end}}'), 'FOO=bar');
    assert.equal(out('{{with .State}}{{.Status}}{{end}}{{with .Config.Labels}}L{{else}}none{{end}}'), 'creatednone');
    assert.equal(out('{{range .Config.Labels}}x{{else}}empty{{end}}'), 'empty');
    assert.equal(out('{{1.5}} {{0.00001}} {{0x10}} {{\'a\'}} {{true}}'), '1.5 1e-05 16 97 true');
    assert.equal(out('{{ .Name | printf "%s!" | upper }}'), '/C1!');
    assert.equal(out('{{print 1 2 "a" "b" 3}}'), '1 2ab3');
    assert.equal(out('{{println "a" 1}}'), 'a 1\n');
    assert.equal(out('{{html "<a>"}} {{js "a\'b"}} {{urlquery "a b&"}}'), "&lt;a&gt; a\\'b a+b%26");
    assert.equal(out('{{$n := 0}}{{range .Config.Env}}{{$n = .}}{{end}}{{$n}}'), 'FOO=bar');
    assert.equal(out('{{define "T"}}[{{.}}]{{end}}{{template "T" .Name}}'), '[/c1]');
    assert.equal(out('{{range $i, $e := .Config.Env}}{{if $i}},{{end}}{{$e}}{{end}}'), 'A=1,FOO=bar');
    assert.equal(out('{{if and .State (not .State.Running) (eq .State.ExitCode 0)}}ok{{end}}'), 'ok');
    assert.equal(out('{{range $.Config.Cmd}}{{$.Name}}:{{.}} {{end}}'), '/c1:sleep /c1:100 ');
    assert.equal(out('{{printf "%s=%d" "n" (len .Config.Env)}}'), 'n=2');
    assert.equal(out('{{json .}}', { b: 1, a: 'x<y' }), '{"b":1,"a":"x<y"}');
  });

  it('{{.Id}} (Go field ID) runs the template on the decoded JSON, as docker: maps everywhere, JSON keys sorted, null is <no value>', () => {
    const o = { Id: 'abc', RootFS: { Type: 'layers', Layers: ['sha256:1'] }, Config: { Entrypoint: null } };
    assert.equal(out('{{json .RootFS}}', o), '{"Type":"layers","Layers":["sha256:1"]}');
    assert.equal(out('{{.Id}} {{json .RootFS}} {{.RootFS}} {{.Config.Entrypoint}}', o), 'abc {"Layers":["sha256:1"],"Type":"layers"} map[Layers:[sha256:1] Type:layers] <no value>');
    assert.equal(out('{{.RootFS}} {{.Config.Entrypoint}}', o), '{layers [sha256:1]} []');
  });

  it('`--format json` prints the objects as one JSON array', () => {
    const r = inspect('json', { Id: 'a', Config: { Labels: { b: '1', a: '2' } } });
    assert.equal(r.stdout, '[{"Id":"a","Config":{"Labels":{"b":"1","a":"2"}}}]\n');
  });
});

describe('docker list formats', () => {
  const ctx = (name: string, status: string) =>
    formatContext('*formatter.ContainerContext', { ID: name.slice(0, 3) + 'id', Names: name, Status: status, Labels: 'a.b-c=1' }, { Label: (k: string) => (k === 'a.b-c' ? '1' : '') });
  const spec = { headers: { ID: 'CONTAINER ID', Names: 'NAMES', Status: 'STATUS', Labels: 'LABELS' }, defaultTable: 'table {{.ID}}\\t{{.Names}}', style: 'ps' as const };

  it('rows one per line; table adds the header and aligns as tabwriter', () => {
    const rows = [ctx('c1', 'Created'), ctx('a-much-longer-name', 'Up 2 seconds')];
    assert.equal(formatList('{{.Names}} {{.Status}}', rows, spec), 'c1 Created\na-much-longer-name Up 2 seconds\n');
    assert.equal(formatList('table {{.Names}}', rows, spec), 'NAMES\nc1\na-much-longer-name\n');
    assert.equal(formatList('table {{.ID}}\\t{{.Names}}\\t{{.Status}}', rows, spec), 'CONTAINER ID   NAMES                STATUS\nc1id           c1                   Created\na-mid          a-much-longer-name   Up 2 seconds\n');
    assert.equal(formatList('table', rows, spec), 'CONTAINER ID   NAMES\nc1id           c1\na-mid          a-much-longer-name\n');
    // Header functions return the header text; `.Label` gives the last part of the key.
    assert.equal(formatList('table {{.ID}}\t{{.Label "a.b-c"}}|{{json .Names}}|{{upper .Names}}', [ctx('c1', 'x')], spec), 'CONTAINER ID   b c|NAMES|NAMES\nc1id           1|"c1"|C1\n');
  });

  it('json shorthand, sorted keys, HTML escaped as docker marshals its contexts', () => {
    const row = formatContext('*formatter.imageContext', { Repository: 'bb', Tag: '1', Digest: '<none>' });
    assert.equal(formatList('json', [row], spec), '{"Digest":"\\u003cnone\\u003e","Repository":"bb","Tag":"1"}\n');
  });

  it('errors: ps words them its way, the others "template parsing error"; exit 1', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        if (e instanceof FormatError) return [e.exitCode, e.message];
        throw e;
      }
      return undefined;
    };
    assert.deepEqual(err(() => formatList('{{.Nope}}', [ctx('c1', 'x')], spec)), [1, 'failed to execute template: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.ContainerContext']);
    assert.deepEqual(err(() => formatList('{{.Names', [], spec)), [1, 'failed to parse template: template: :1: unclosed action']);
    const img = formatContext('*formatter.imageContext', { ID: 'x' });
    assert.deepEqual(err(() => formatList('{{.Nope}}', [img], { ...spec, style: 'list' })), [1, 'template parsing error: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.imageContext']);
    assert.deepEqual(err(() => formatValue('{{.Nope}}', goStruct('system.versionInfo', { Client: {} }), 'version')), [1, 'template: version:1:2: executing "version" at <.Nope>: can\'t evaluate field Nope in type system.versionInfo']);
    assert.deepEqual(err(() => formatValue('{{.X', {}, 'version')), [64, 'template parsing error: template: version:1: unclosed action']);
  });
});

describe('engine pieces', () => {
  it('tabwriter: minwidth 10, padding 3, the last cell not aligned, blocks end at a line without the cell', () => {
    assert.equal(tabwrite('A\tB\tC\nlonger value\tx\ty\n'), 'A              B         C\nlonger value   x         y\n');
    assert.equal(tabwrite('a\tb\nno tabs\nccc\td\n'), 'a         b\nno tabs\nccc       d\n');
    assert.equal(tabwrite('ü\tx\n'), 'ü         x\n');
  });

  it('Go time strings as docker prints CreatedAt', () => {
    // Local time, as Go's: the exact text is checked where the machine runs on UTC (CI does).
    if (new Date('2026-12-06T18:41:13Z').getTimezoneOffset() === 0) {
      assert.equal(goTimeString('2026-12-06T18:41:13.861979679Z'), '2026-12-06 18:41:13 +0000 UTC');
      assert.equal(goTimeString('2026-12-06T18:41:13.861979600Z', { fraction: true }), '2026-12-06 18:41:13.8619796 +0000 UTC');
    }
    assert.equal(humanDuration(500), 'Less than a second');
    assert.equal(humanDuration(61_000), 'About a minute');
    assert.equal(humanDuration(3 * 3600_000), '3 hours');
    assert.equal(humanDuration(3 * 86400_000), '3 days');
  });

  it('goFloat and printf as fmt', () => {
    assert.equal(goFloat(1e21), '1e+21');
    assert.equal(goFloat(1234567.5), '1.2345675e+06');
    assert.equal(goFloat(123456.5), '123456.5');
    assert.equal(goFloat(0.0001), '0.0001');
    assert.equal(goFloat(0.00001), '1e-05');
    assert.equal(goSprintf('%05d|%+d|%-4d|%3s|%.1s|%t|%v|%%|%c', 42, 3, 7, 'a', 'xyz', true, [1, 'a'], 65), '00042|+3|7   |  a|x|true|[1 a]|%|A');
    assert.equal(goSprintf('%d %s'), '%!d(MISSING) %!s(MISSING)');
    assert.equal(goSprintf('%s', 'a', 1), 'a%!(EXTRA int=1)');
  });

  it('a template is parsed once and executed on many values; struct contexts call methods', () => {
    const t = new GoTemplate('{{.A}}-{{.Twice 2}}');
    const v = (a: string) => goStruct('T', { A: a, Twice: (n: number) => n * 2 });
    assert.equal(t.execute(v('x')), 'x-4');
    assert.equal(t.execute(v('y')), 'y-4');
    assert.throws(() => new GoTemplate('{{.A'), TemplateParseError);
    assert.throws(() => t.execute(goStruct('T', { A: 'a' })), TemplateExecError);
  });

  it('a template that calls itself ends with Go\'s depth error, not a crash', () => {
    const t = new GoTemplate('{{define "a"}}x{{template "a"}}{{end}}{{template "a"}}');
    assert.throws(() => t.execute({}), (e: Error) => e instanceof TemplateExecError && /exceeded maximum template depth \(100000\)/.test(e.message));
  });

  it('without missingkey=error a missing key prints <no value>; maps range in key order', () => {
    const t = new GoTemplate('{{.x}}|{{range $k, $v := .m}}{{$k}}={{$v}};{{end}}');
    assert.equal(t.execute({ m: goMap({ b: 2, a: 1 }) }), '<no value>|a=1;b=2;');
  });

  it('withGoTypes marks docker map fields and nil slices', () => {
    const o = withGoTypes({ Config: { Labels: null, Env: null, Image: null }, HostConfig: { LogConfig: { Config: { k: 'v' } } } });
    assert.equal(new GoTemplate('{{.Config.Labels}} {{.Config.Env}} {{.Config.Image}} {{.HostConfig.LogConfig.Config}}').execute(o), 'map[] [] <nil> map[k:v]');
  });
});
