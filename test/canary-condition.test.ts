/**
 * The canary condition language: what it accepts and how it evaluates, and that hostile input (code, property
 * access, huge or deeply nested text, control characters) is refused with a one-line reason and a column,
 * never evaluated. Pure.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConditionError, MAX_CONDITION_LENGTH, parseCondition } from '../src/canary/condition.js';

function reason(src: string): string {
  try {
    parseCondition(src);
  } catch (err) {
    assert.ok(err instanceof ConditionError, `expected ConditionError, got ${String(err)}`);
    assert.equal(err.message.includes('\n'), false, 'one line');
    return err.message;
  }
  assert.fail(`expected ${JSON.stringify(src)} to be refused`);
}

describe('condition language evaluates', () => {
  const cases: Array<[string, number, boolean]> = [
    ['result < 0.05', 0.01, true],
    ['result < 0.05', 0.05, false],
    ['result <= 0.05', 0.05, true],
    ['result > 1e3', 1001, true],
    ['result >= -1', -1, true],
    ['result == 1', 1, true],
    ['result != 1', 2, true],
    ['0.05 > result', 0.01, true],
    ['result > 0.1 and result < 0.2', 0.15, true],
    ['result > 0.1 && result < 0.2', 0.25, false],
    ['result < 0.1 or result > 0.9', 0.95, true],
    ['result < 0.1 || result > 0.9', 0.5, false],
    ['not result < 0.1', 0.5, true],
    ['!(result < 0.1)', 0.05, false],
    ['not (result > 0.1 and result < 0.2) or result == 0.15', 0.15, true],
    ['(result) < .5', 0.4, true],
    ['result[0] < 0.05', 0.01, true],
    ['result > -(-1)', 2, true],
    ['isNaN(result)', NaN, true],
    ['isNaN(result)', 1, false],
    ['isNaN(result) or result < 0.05', NaN, true],
    // NaN compares false, except !=, as in IEEE 754: a NaN result fails `result < x` unless isNaN is used.
    ['result < 0.05', NaN, false],
    ['result >= 0.05', NaN, false],
    ['result != 0.05', NaN, true],
    ['result < 1', Infinity, false],
    ['result > 1', Infinity, true],
    // `and` binds tighter than `or`.
    ['result == 1 or result == 2 and result == 3', 1, true],
    ['(result == 1 or result == 2) and result == 3', 1, false],
  ];
  for (const [src, value, want] of cases) {
    test(`when ${JSON.stringify(src)} meets ${String(value)}, then it is ${String(want)}`, () => {
      assert.equal(parseCondition(src).test(value), want);
    });
  }
});

describe('condition language refuses', () => {
  const cases: Array<[string, string]> = [
    ['', 'empty condition at column 1'],
    ['   ', 'empty condition at column 1'],
    ['result', 'expected a comparison (<, <=, >, >=, ==, !=), got end of condition at column 7'],
    ['result <> 1', 'expected a number or result, got ">" at column 9'],
    ['result = 1', 'unexpected character "=" at column 8'],
    ['result < 1 <', 'comparisons cannot be chained (write a < result and result < b) at column 12'],
    ['0 < result < 1', 'comparisons cannot be chained (write a < result and result < b) at column 12'],
    ['result + 1 > 2', 'unexpected character "+" at column 8'],
    ['result < 1 and', 'expected a number or result, got end of condition at column 15'],
    ['result < 1 2', 'expected and, or, or the end, got "2" at column 12'],
    ['(result < 1', 'expected ")", got end of condition at column 12'],
    ['result < 1)', 'expected and, or, or the end, got ")" at column 11'],
    ['result[1] < 1', 'expected 0 (only result[0] is supported), got "1" at column 8'],
    ['isNaN(result < 1)', 'expected ")", got "<" at column 14'],
    ['result and result', 'expected a comparison (<, <=, >, >=, ==, !=), got "and" at column 8'],
    ['1e999 > result', 'number 1e999 is out of range at column 1'],
    ['Infinity > result', 'unknown name "Infinity" (only result, isNaN, and, or, not) at column 1'],
    ['true', 'unknown name "true" (only result, isNaN, and, or, not) at column 1'],
    // Code and property access never get near an evaluator.
    ['constructor.constructor("return process")() == 1', 'unexpected character "." at column 12'],
    ['constructor(1) == 1', 'unknown name "constructor" (only result, isNaN, and, or, not) at column 1'],
    ['result.constructor == 1', 'unexpected character "." at column 7'],
    ['this == 1', 'unknown name "this" (only result, isNaN, and, or, not) at column 1'],
    ['require("fs") == 1', 'unexpected character "\\"" at column 9'],
    ['result < 1; process.exit(1)', 'unexpected character ";" at column 11'],
    ['`${result}` == 1', 'unexpected character "`" at column 1'],
    ['__proto__ == 1', 'unknown name "__proto__" (only result, isNaN, and, or, not) at column 1'],
    ['result < 1\n or result > 2', 'unexpected character "\\n" at column 11'],
    ['result < 1\u0000', 'unexpected character "\\u0000" at column 11'],
    ['result < １', 'unexpected character "１" at column 10'],
  ];
  for (const [src, want] of cases) {
    test(`when the condition is ${JSON.stringify(src)}, then it is refused with the column`, () => {
      assert.equal(reason(src), want);
    });
  }

  test('when a condition is longer than the limit, then it is refused before tokenizing', () => {
    const long = 'result < 1 or '.repeat(100) + 'result < 1';
    assert.ok(long.length > MAX_CONDITION_LENGTH);
    assert.equal(reason(long), `longer than ${MAX_CONDITION_LENGTH} characters at column ${MAX_CONDITION_LENGTH + 1}`);
  });

  test('when parentheses, nots or minus signs nest very deep, then it is refused, not a stack overflow', () => {
    assert.match(reason('('.repeat(200) + 'result < 1' + ')'.repeat(200)), /^nested more than 32 deep at column 33$/);
    assert.match(reason('not '.repeat(100) + 'result < 1'), /^nested more than 32 deep/);
    assert.match(reason('-'.repeat(100) + '1 < result'), /^nested more than 32 deep/);
    assert.match(reason('(' .repeat(100) + 'result' + ')'.repeat(100) + ' < 1'), /^nested more than 32 deep/);
  });

  test('when a non-string is given, then it is refused', () => {
    assert.equal(reason(42 as unknown as string), 'expected a string at column 1');
  });
});
