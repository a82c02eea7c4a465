/**
 * BuildKit's source policy (`--source-policy-file`, the JSON `EXPERIMENTAL_BUILDKIT_SOURCE_POLICY`
 * names): rules that pin a source to another (CONVERT, e.g. a FROM tag to a digest) or refuse it
 * (DENY; ALLOW undoes an earlier DENY). As BuildKit evaluates them: rules in order, a matching
 * CONVERT replaces the identifier and evaluation starts again (at most 20 times), and of the
 * ALLOW/DENY rules that match the last one wins. Selectors match `EXACT`ly (the default),
 * by `WILDCARD` (`*` any text, `?` one character; `${1}`… in a CONVERT's identifier are the
 * wildcard's matches) or by `REGEX` (the whole identifier; `${1}`… its groups).
 *
 * WILDCARD and REGEX selectors run as RE2 (re2js, as the project's other user and administrator
 * regexes: tag filters, ignore patterns), the syntax BuildKit's Go regexp reads, in time linear in
 * the identifier whatever the pattern; constructs RE2 lacks (lookarounds, backreferences) are
 * refused when the policy is read, naming the rule.
 *
 * Identifiers are BuildKit's: `docker-image://docker.io/library/alpine:3.19` for images (FROM,
 * COPY --from, RUN --mount=from), the URL for `ADD https://…` and Git sources.
 */
import { readFile } from 'node:fs/promises';
import { RE2JS } from 're2js';
import { InvalidInputError, StevedoreError } from '../util/errors.js';

/** A source the policy refuses. */
export class SourceDeniedError extends StevedoreError {
  constructor(message: string) {
    super('SOURCE_DENIED', message);
  }
}

type Action = 'ALLOW' | 'DENY' | 'CONVERT';
type MatchType = 'EXACT' | 'WILDCARD' | 'REGEX';

interface Rule {
  action: Action;
  identifier: string;
  matchType: MatchType;
  /** For WILDCARD and REGEX selectors: matches the whole identifier. */
  regex?: RE2JS;
  /** CONVERT: the new identifier (may use ${1}…). */
  update?: string;
}

const MAX_CONVERTS = 20;

/** A WILDCARD selector as RE2: `*` and `?` are groups (for `${1}`…), the rest literal. */
function wildcardRegex(pattern: string): RE2JS {
  return RE2JS.compile([...pattern].map((c) => (c === '*' ? '(.*)' : c === '?' ? '(.)' : RE2JS.quote(c))).join(''));
}

/** A REGEX selector as RE2; a pattern RE2 refuses is named with its rule. */
function selectorRegex(pattern: string, where: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (err) {
    const why = (err as Error).message.replace(/^error parsing regexp: /, '');
    const hint = /\(\?<?[!=]/.test(pattern) ? ' (RE2 has no lookahead or lookbehind)' : '';
    throw new InvalidInputError(`${where}: selector.identifier ${JSON.stringify(pattern)} is not a valid RE2 regular expression: ${why}${hint}`);
  }
}

/** The groups of a whole-identifier match (`[0]` the identifier), or null. */
function matchGroups(re: RE2JS, identifier: string): string[] | null {
  const m = re.matcher(identifier);
  if (!m.matches()) return null;
  const groups = [identifier];
  for (let g = 1; g <= m.groupCount(); g++) groups.push(m.group(g) ?? '');
  return groups;
}

/**
 * The environment variable that carries an administrator's source policy (its JSON text) into a
 * build Pod: the ImageBuild controller sets it from `--build-source-policy`. `stevedore build`
 * refuses --source-policy-file while it is set, so a build cannot swap that policy for its own.
 */
export const SOURCE_POLICY_ENV = 'STEVEDORE_SOURCE_POLICY';

export class SourcePolicy {
  readonly #rules: Rule[];
  readonly #file: string;
  /** The document as read (JSON), for `serialize`. */
  readonly #doc: unknown;

  private constructor(rules: Rule[], file: string, doc: unknown) {
    this.#rules = rules;
    this.#file = file;
    this.#doc = doc;
  }

  /** Reads and checks a policy file: every rule names an action and a selector identifier. */
  static async load(path: string): Promise<SourcePolicy> {
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new InvalidInputError(`--source-policy-file ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    });
    return SourcePolicy.parse(text, path);
  }

  /** Checks a policy document given as text; `where` names it in errors (a file, an environment variable). */
  static parse(text: string, where: string): SourcePolicy {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new InvalidInputError(`${where}: not JSON: ${(err as Error).message}`);
    }
    const rules = (doc as { rules?: unknown })?.rules;
    if (!Array.isArray(rules)) throw new InvalidInputError(`${where}: want {"rules": [...]}`);
    return new SourcePolicy(
      rules.map((r, i) => SourcePolicy.#rule(r, `${where}: rules[${i}]`)),
      where,
      doc,
    );
  }

  /**
   * The policy as compact JSON, the document as it was read (what `parse` reads back): the
   * controller checks an administrator's file once and hands this text to every build Pod.
   */
  serialize(): string {
    return JSON.stringify(this.#doc);
  }

  static #rule(raw: unknown, where: string): Rule {
    const r = raw as { action?: unknown; selector?: { identifier?: unknown; matchType?: unknown }; updates?: { identifier?: unknown } };
    const action = typeof r?.action === 'string' ? r.action.toUpperCase() : undefined;
    if (action !== 'ALLOW' && action !== 'DENY' && action !== 'CONVERT') throw new InvalidInputError(`${where}: action must be ALLOW, DENY or CONVERT`);
    const identifier = r.selector?.identifier;
    if (typeof identifier !== 'string' || identifier === '') throw new InvalidInputError(`${where}: selector.identifier is missing`);
    const mt = r.selector?.matchType === undefined ? 'EXACT' : String(r.selector.matchType).toUpperCase();
    if (mt !== 'EXACT' && mt !== 'WILDCARD' && mt !== 'REGEX') throw new InvalidInputError(`${where}: selector.matchType must be EXACT, WILDCARD or REGEX`);
    const rule: Rule = { action, identifier, matchType: mt };
    if (mt === 'WILDCARD') rule.regex = wildcardRegex(identifier);
    if (mt === 'REGEX') rule.regex = selectorRegex(identifier, where);
    if (action === 'CONVERT') {
      const update = r.updates?.identifier;
      if (typeof update !== 'string' || update === '') throw new InvalidInputError(`${where}: a CONVERT needs updates.identifier`);
      rule.update = update;
    }
    return rule;
  }

  /** The identifier the build must use instead (the same one when no rule converts it); throws SourceDeniedError. */
  evaluate(identifier: string): string {
    let current = identifier;
    for (let round = 0; ; round++) {
      if (round > MAX_CONVERTS) throw new SourceDeniedError(`source ${identifier}: more than ${MAX_CONVERTS} conversions by ${this.#file} (a loop?)`);
      let deny: Rule | undefined;
      let converted: string | undefined;
      for (const rule of this.#rules) {
        const m = rule.identifier === current ? [] : rule.regex ? matchGroups(rule.regex, current) : null;
        if (!m) continue;
        if (rule.action === 'ALLOW') deny = undefined;
        else if (rule.action === 'DENY') deny = rule;
        else {
          const next = rule.update!.replace(/\$\{(\d+)\}/g, (_, n: string) => m[Number(n)] ?? '');
          if (next !== current) {
            converted = next;
            break;
          }
        }
      }
      if (converted !== undefined) {
        current = converted;
        continue;
      }
      if (deny)
        throw new SourceDeniedError(
          `source ${current}${current !== identifier ? ` (from ${identifier})` : ''} is denied by ${this.#file} (rule ${deny.action} ${deny.identifier})`,
        );
      return current;
    }
  }
}

/** BuildKit's identifier of an image reference (already normalised: host/repo:tag[@digest]). */
export function imageIdentifier(normalised: string): string {
  return `docker-image://${normalised}`;
}
