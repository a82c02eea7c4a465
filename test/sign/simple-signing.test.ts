import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SignatureError } from '../../src/sign/errors.js';
import { encodeAtomicPayload, parseAtomicPayload } from '../../src/sign/simple-signing.js';

const digest = fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}` as const);
const payload = fc.record(
  {
    dockerReference: fc.string({ maxLength: 80 }),
    manifestDigest: digest,
    creator: fc.string({ maxLength: 40 }),
    timestamp: fc.integer({ min: 0, max: 2 ** 40 }),
  },
  { requiredKeys: ['dockerReference', 'manifestDigest'] },
);

describe('atomic container signature payload', () => {
  it('round-trips every payload it encodes', () => {
    fc.assert(
      fc.property(payload, (p) => {
        expect(parseAtomicPayload(encodeAtomicPayload(p))).toEqual(p);
      }),
      { numRuns: 300 },
    );
  });

  it('keys sorted as Go writes maps, no spaces', () => {
    const bytes = encodeAtomicPayload({ dockerReference: 'r.example/a:1', manifestDigest: `sha256:${'0'.repeat(64)}`, creator: 'c', timestamp: 1 }).toString();
    expect(bytes).toBe(
      `{"critical":{"identity":{"docker-reference":"r.example/a:1"},"image":{"docker-manifest-digest":"sha256:${'0'.repeat(64)}"},"type":"atomic container signature"},"optional":{"creator":"c","timestamp":1}}`,
    );
  });

  it('anything else is refused with a SignatureError, never another exception or an accepted payload', () => {
    const junk = fc.oneof(
      fc.json(),
      fc.string(),
      // Valid payloads with one field mutated, dropped or added.
      fc
        .tuple(
          payload,
          fc.constantFrom(
            'drop-critical',
            'drop-optional',
            'extra-top',
            'extra-critical',
            'type',
            'digest',
            'ref-number',
            'optional-null',
            'timestamp-float',
            'creator-number',
          ),
        )
        .map(([p, how]) => {
          const doc = JSON.parse(encodeAtomicPayload(p).toString()) as Record<string, any>;
          switch (how) {
            case 'drop-critical':
              delete doc.critical;
              break;
            case 'drop-optional':
              delete doc.optional;
              break;
            case 'extra-top':
              doc.extra = 1;
              break;
            case 'extra-critical':
              doc.critical.extra = 1;
              break;
            case 'type':
              doc.critical.type = 'cosign container image signature';
              break;
            case 'digest':
              doc.critical.image['docker-manifest-digest'] = 'sha256:short';
              break;
            case 'ref-number':
              doc.critical.identity['docker-reference'] = 7;
              break;
            case 'optional-null':
              doc.optional = null;
              break;
            case 'timestamp-float':
              doc.optional.timestamp = 1.5;
              break;
            case 'creator-number':
              doc.optional.creator = 3;
              break;
          }
          return JSON.stringify(doc);
        }),
    );
    fc.assert(
      fc.property(junk, (text) => {
        let accepted = false;
        try {
          parseAtomicPayload(Buffer.from(text));
          accepted = true;
        } catch (err) {
          expect(err).toBeInstanceOf(SignatureError);
        }
        expect(accepted).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
