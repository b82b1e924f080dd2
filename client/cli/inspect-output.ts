// What every `inspect` verb (image, container, volume, network) prints for the objects it found:
// docker's indented JSON array, or each object through `--format` (client/cli/format.ts, loaded
// only then). Returns the exit code the output asks for (a template error is 64 or 1).
import { writeStdout } from './stdout.js';
export async function writeInspect(objects: unknown[], format: string | undefined): Promise<number> {
  if (!format) {
    writeStdout(JSON.stringify(objects, null, 4) + '\n');
    return 0;
  }
  const { formatInspect } = await import('./format.js');
  const r = formatInspect(format, objects);
  writeStdout(r.stdout);
  process.stderr.write(r.stderr);
  return r.code;
}

/**
 * docker parses an inspect template before it looks anything up: a syntax error is reported
 * (exit 64) with nothing else printed. The exit code when `format` does not parse, else undefined.
 */
export async function inspectTemplateError(format: string | undefined): Promise<number | undefined> {
  if (!format) return undefined;
  const f = await import('./format.js');
  try {
    f.checkInspectFormat(format);
    return undefined;
  } catch (e) {
    if (e instanceof f.FormatError) return f.reportFormatError(e);
    throw e;
  }
}
