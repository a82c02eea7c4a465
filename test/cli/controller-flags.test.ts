// `stevedore controller` refuses a bad cache repository template or base-image poll minimum at
// start-up, naming the flag, before it connects to any API server.
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupCli, stevedore as runStevedore } from './stevedore.js';

afterAll(cleanupCli);

describe('stevedore controller flags', () => {
  it('refuses a cache repository template with a tag, and a poll minimum under 1s or not a duration', async () => {
    const kube = ['--kubeconfig', '/nonexistent/kubeconfig'];
    const tagged = await runStevedore(['controller', '--build-cache-repository', 'cache.example.com/{namespace}/{name}:latest', ...kube]);
    expect(tagged.code).not.toBe(0);
    expect(tagged.stderr).toContain('--build-cache-repository "cache.example.com/{namespace}/{name}:latest": must be a repository');
    const fast = await runStevedore(['controller', '--min-base-image-poll', '100ms', ...kube]);
    expect(fast.code).not.toBe(0);
    expect(fast.stderr).toContain('--min-base-image-poll "100ms": must be at least 1s');
    const word = await runStevedore(['controller', '--min-base-image-poll', 'often', ...kube]);
    expect(word.code).not.toBe(0);
    expect(word.stderr).toMatch(/invalid duration "often"/);
  });
});
