import { StevedoreError } from '../util/errors.js';
import { repositoryScope } from './auth.js';
import type { RegistryClient } from './client.js';

/** Extracts the `rel="next"` target of an RFC 8288 Link header. */
export function nextLink(link: string | string[] | undefined): string | undefined {
  const values = Array.isArray(link) ? link : link ? [link] : [];
  for (const v of values) {
    for (const part of v.split(',')) {
      const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part);
      if (m) return m[1];
    }
  }
  return undefined;
}

/** Lists every tag of a repository, following the registry's pagination (Link headers). */
export async function listTags(client: RegistryClient, repo: string, opts: { signal?: AbortSignal; pageSize?: number } = {}): Promise<string[]> {
  const tags: string[] = [];
  let path: string | undefined = `/v2/${repo}/tags/list?n=${opts.pageSize ?? 1000}`;
  for (let pages = 0; path; pages++) {
    if (pages > 10_000) throw new StevedoreError('REGISTRY_ERROR', `${client.registry}/${repo}: tag list pagination does not end`);
    const res = await client.request({ method: 'GET', path, scopes: [repositoryScope(repo, ['pull'])], expect: [200], signal: opts.signal });
    const doc = (await res.body.json()) as { tags?: string[] | null };
    tags.push(...(doc.tags ?? []));
    const next = nextLink(res.headers.link);
    path = next ? new URL(next, res.url).toString() : undefined;
  }
  return tags;
}
