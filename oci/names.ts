// Grammar of repository names and tags: distribution-spec/spec.md#pulling-manifests.
import { RegistryError } from './errors.js';

const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Clients cap host + '/' + name at 255 characters; 255 is the most a name may have on its own. */
export const MAX_NAME_LENGTH = 255;

export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** Throws NAME_INVALID unless `name` matches the spec's grammar; call before a name touches a key or path. */
export function assertRepositoryName(name: string): string {
  if (!isValidRepositoryName(name)) {
    const why = name.length > MAX_NAME_LENGTH ? `longer than ${MAX_NAME_LENGTH} characters` : 'must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*';
    throw new RegistryError('NAME_INVALID', `invalid repository name ${JSON.stringify(name.slice(0, 300))}: ${why}`, { detail: { name: name.slice(0, 300) } });
  }
  return name;
}

/**
 * A glob on repository names as the ACL, retention policies and quota namespaces write them: `*`
 * within a path component, `**` across components, `?` one character; a trailing `/*` (or a lone
 * `*`) also matches every name below, at any depth, as `team/*` reads to a person.
 */
export function repositoryGlob(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else if (i === glob.length - 1 && (i === 0 || glob[i - 1] === '/')) {
        re += '.+';
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
