/**
 * Rendering canary queries: placeholders filled in, and hostile versions or revisions refused or escaped so
 * they can never leave the label matcher's string. Pure.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { escapePromqlString, QueryRenderError, renderQuery, unknownPlaceholders, usesRevision } from '../src/canary/query.js';

const Q = 'sum(rate(model_errors_total{version="{{version}}",revision="{{ revision }}"}[1m]))';

describe('canary query rendering', () => {
  test('when version and revision are given, then both placeholders are filled in', () => {
    assert.equal(
      renderQuery(Q, { version: 7, revision: 'churn-predictor-00002' }),
      'sum(rate(model_errors_total{version="7",revision="churn-predictor-00002"}[1m]))',
    );
  });

  test('when the query does not use the revision, then an unknown revision is fine', () => {
    assert.equal(renderQuery('up{v="{{version}}"}', { version: 3 }), 'up{v="3"}');
    assert.equal(usesRevision('up{v="{{version}}"}'), false);
    assert.equal(usesRevision(Q), true);
  });

  test('when the query uses the revision and it is unknown, then rendering is refused', () => {
    assert.throws(() => renderQuery(Q, { version: 1 }), { name: 'QueryRenderError', message: /uses \{\{revision\}\} but the canary revision is not known/ });
  });

  const hostileRevisions = [
    'x"} or vector(1) #',
    'x",version=~".*',
    "x'} or vector(1)",
    'x\\',
    'UPPER',
    'a'.repeat(64),
    '-leading',
    'with space',
    'new\nline',
    '',
  ];
  for (const revision of hostileRevisions) {
    test(`when the revision is ${JSON.stringify(revision.slice(0, 30))}, then it is refused and no query is rendered`, () => {
      assert.throws(() => renderQuery(Q, { version: 1, revision }), (err: unknown) => {
        assert.ok(err instanceof QueryRenderError);
        assert.equal(err.message, 'revision is not a Kubernetes object name');
        assert.equal(err.message.includes(revision) && revision.length > 0, false, 'the value is not echoed');
        return true;
      });
    });
  }

  for (const version of [0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 2, '1"} or vector(1)' as unknown as number]) {
    test(`when the version is ${String(version)}, then it is refused`, () => {
      assert.throws(() => renderQuery(Q, { version, revision: 'r-1' }), { name: 'QueryRenderError', message: 'version is not a positive whole number' });
    });
  }

  test('when a value holds quotes, backslashes or control characters, then the escape keeps it inside the string', () => {
    assert.equal(escapePromqlString('a"b'), 'a\\"b');
    assert.equal(escapePromqlString("a'b"), "a\\'b");
    assert.equal(escapePromqlString('a\\"} or vector(1)'), 'a\\\\\\"} or vector(1)');
    assert.equal(escapePromqlString('a\nb\rc\td\u0001'), 'a\\nb\\rc\\td\\x01');
    // The escaped text never holds an unescaped quote: every " is preceded by an odd run of backslashes.
    const out = escapePromqlString('\\\\"\\"');
    for (let k = out.indexOf('"'); k >= 0; k = out.indexOf('"', k + 1)) {
      let run = 0;
      for (let j = k - 1; j >= 0 && out[j] === '\\'; j--) run++;
      assert.equal(run % 2, 1, `quote at ${k} is escaped`);
    }
  });

  test('when placeholders are unknown or unbalanced, then they are listed', () => {
    assert.deepEqual(unknownPlaceholders('a{{version}}b{{ revision }}'), []);
    assert.deepEqual(unknownPlaceholders('{{model}} {{args.x}}'), ['{{model}}', '{{args.x}}']);
    assert.deepEqual(unknownPlaceholders('{{version'), ['{{']);
    assert.deepEqual(unknownPlaceholders('version}}'), ['}}']);
  });
});
