// Parsing and word expansion: docker's rules, errors with their line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerfileError, parseDockerfile } from './dockerfile.js';
import { processWord, processWords } from './shell-words.js';

const vars = new Map([
  ['A', 'one'],
  ['EMPTY', ''],
  ['SP', 'two words'],
]);

test('expansion: $VAR, ${VAR}, defaults and alternatives, quotes and escapes', () => {
  assert.equal(processWord('$A-${A}', vars), 'one-one');
  assert.equal(processWord('${MISSING:-dflt} ${EMPTY:-e} ${EMPTY-e} ${A:+alt} ${MISSING:+alt}.', vars), 'dflt e  alt .');
  assert.equal(processWord("'$A' \"$A\" \\$A", vars), '$A one $A');
  assert.equal(processWord('${MISSING:-${A}x}', vars), 'onex');
  assert.deepEqual(processWords('a=$SP "b c" d\\ e', vars), ['a=two words', 'b c', 'd e']);
  assert.throws(() => processWord('${MISSING:?must be set}', vars), /MISSING: must be set/);
  assert.throws(() => processWord('"open', vars), /double-quote/);
});

test('instructions with lines, flags, continuations, JSON form, heredocs, directives', () => {
  const df = parseDockerfile(
    [
      '# syntax=docker/dockerfile:1',
      'ARG BASE=busybox',
      'FROM --platform=linux/amd64 ${BASE} AS build',
      '',
      'RUN --mount=type=cache,target=/c echo hi \\',
      '# a comment inside',
      '  && echo there',
      'RUN <<EOF',
      'echo a',
      'EOF',
      'COPY <<-"EOT" /x',
      '\thello $X',
      '\tEOT',
      'CMD ["sh", "-c", "echo"]',
      'ONBUILD RUN echo x',
    ].join('\n'),
  );
  assert.equal(df.syntax, 'docker/dockerfile:1');
  const [arg, from, run1, run2, copy, cmd, onbuild] = df.instructions;
  assert.equal(arg!.keyword, 'ARG');
  assert.equal(arg!.line, 2);
  assert.deepEqual(from!.flags, [{ name: 'platform', value: 'linux/amd64' }]);
  assert.equal(from!.args, '${BASE} AS build');
  assert.equal(run1!.line, 5);
  assert.equal(run1!.args, 'echo hi   && echo there');
  assert.deepEqual(run1!.flags, [{ name: 'mount', value: 'type=cache,target=/c' }]);
  assert.equal(run2!.args, '<<EOF');
  assert.deepEqual(run2!.heredocs, [{ name: 'EOF', content: 'echo a\n', expand: true }]);
  assert.deepEqual(copy!.heredocs, [{ name: 'EOT', content: 'hello $X\n', expand: false }]);
  assert.deepEqual(cmd!.json, ['sh', '-c', 'echo']);
  assert.equal(onbuild!.trigger?.keyword, 'RUN');
  assert.equal(onbuild!.trigger?.args, 'echo x');
});

test('errors name the file and line', () => {
  const err = (text: string) => {
    try {
      parseDockerfile(text);
    } catch (e) {
      assert.ok(e instanceof DockerfileError);
      return e.message;
    }
    assert.fail('no error');
  };
  assert.equal(err('FROM scratch\n\nFORM x\n'), 'Dockerfile:3: unknown instruction: FORM');
  assert.match(err('FROM scratch\nRUN <<EOF\necho\n'), /^Dockerfile:2: unterminated heredoc/);
  assert.equal(err('FROM scratch\nCOPY --nope=1 a b\n'), 'Dockerfile:2: unknown flag: nope');
  assert.equal(err('FROM scratch\nSHELL /bin/bash\n'), 'Dockerfile:2: SHELL requires the arguments to be in JSON form');
  assert.equal(err('FROM scratch\nONBUILD ONBUILD RUN x\n'), "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  assert.match(err('# escape=`\nFROM scratch\nFORM x\n'), /^Dockerfile:3: unknown instruction/);
});

test('the escape directive changes the continuation character', () => {
  const df = parseDockerfile('# escape=`\nFROM scratch\nRUN echo a `\n  b\nCOPY C:\\x /y\n');
  assert.equal(df.escape, '`');
  assert.equal(df.instructions[1]!.args, 'echo a   b');
  assert.equal(df.instructions[2]!.args, 'C:\\x /y');
});

test('stages: names, meta args in FROM, and only what the target needs (FROM, COPY --from, RUN --mount from=)', async () => {
  const { planStages } = await import('./stages.js');
  const df = parseDockerfile(
    [
      'ARG TAG=1.0',
      'FROM base:${TAG} AS deps',
      'RUN true',
      'FROM deps AS unused',
      'FROM scratch AS assets',
      'FROM busybox AS tools',
      'FROM deps AS final',
      'COPY --from=assets /a /a',
      'RUN --mount=type=bind,from=tools,target=/t true',
      'COPY --from=other/image:2 /b /b',
    ].join('\n'),
  );
  const plan = planStages(df, new Map([['TAG', '2.0']]), undefined);
  assert.equal(plan.stages[0]!.base, 'base:2.0');
  assert.equal(plan.target.name, 'final');
  assert.deepEqual(plan.needed, [0, 2, 3, 4], 'the unused stage is not built; an image name is no stage');
  assert.deepEqual(planStages(df, new Map(), 'ASSETS').needed, [2], 'stage names compare case-insensitively');
  assert.throws(() => planStages(parseDockerfile('FROM a AS x\nCOPY --from=y /a /a\nFROM b AS y\n'), new Map(), 'x'), /Dockerfile:2: invalid from flag value y: stage y is defined after it is used/);
  assert.throws(() => planStages(parseDockerfile('FROM a AS x\nFROM b AS x\n'), new Map(), undefined), /Dockerfile:2: duplicate name x/);
  assert.throws(() => planStages(parseDockerfile('RUN true\nFROM a\n'), new Map(), undefined), /Dockerfile:1: no build stage in current context/);
});
