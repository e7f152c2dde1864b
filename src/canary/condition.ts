/**
 * The success/failure condition language of canary metrics: a deliberately tiny, typed expression language over
 * one number, `result` — comparisons (< <= > >= == !=), `and` / `or` / `not`, parentheses, unary minus,
 * numbers, and `isNaN(result)`. Parsed once into a tree and interpreted: no eval, no Function, no property
 * access, so a policy file cannot run code in the worker. `result[0]` is accepted as `result` because Argo
 * Rollouts users write it (their Prometheus provider returns a vector; ours reduces to one scalar).
 * Types are checked at parse time, so `result and 1` or `result + 1` is a load error with the column, not a
 * surprise at the first measurement. Length and nesting are bounded against hostile input.
 */

export const MAX_CONDITION_LENGTH = 512;
const MAX_DEPTH = 32;

type NumExpr =
  | { kind: 'num'; value: number }
  | { kind: 'result' }
  | { kind: 'neg'; arg: NumExpr };

type BoolExpr =
  | { kind: 'cmp'; op: CmpOp; left: NumExpr; right: NumExpr }
  | { kind: 'isNaN'; arg: NumExpr }
  | { kind: 'not'; arg: BoolExpr }
  | { kind: 'and' | 'or'; left: BoolExpr; right: BoolExpr };

type CmpOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

export interface Condition {
  readonly source: string;
  /** True when `result` meets the condition. Comparisons with NaN are false (`!=` true), as in IEEE 754. */
  test(result: number): boolean;
}

/** A one-line reason with the 1-based column of the offending token. */
export class ConditionError extends Error {
  override name = 'ConditionError';
  constructor(
    message: string,
    readonly column: number,
  ) {
    super(`${message} at column ${column}`);
  }
}

type Token =
  | { t: 'num'; value: number; pos: number; text: string }
  | { t: 'ident'; value: string; pos: number; text: string }
  | { t: 'op'; value: string; pos: number; text: string }
  | { t: 'end'; pos: number; text: string };

const NUMBER = /^(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*/;
const OPS = ['<=', '>=', '==', '!=', '&&', '||', '<', '>', '!', '(', ')', '[', ']', '-'];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    const rest = src.slice(i);
    const num = NUMBER.exec(rest);
    if (num) {
      out.push({ t: 'num', value: Number(num[0]), pos: i, text: num[0] });
      i += num[0].length;
      continue;
    }
    const id = IDENT.exec(rest);
    if (id) {
      out.push({ t: 'ident', value: id[0], pos: i, text: id[0] });
      i += id[0].length;
      continue;
    }
    const op = OPS.find((o) => rest.startsWith(o));
    if (op) {
      out.push({ t: 'op', value: op, pos: i, text: op });
      i += op.length;
      continue;
    }
    // JSON.stringify keeps a control character or quote from breaking the one-line message.
    throw new ConditionError(`unexpected character ${JSON.stringify(c)}`, i + 1);
  }
  out.push({ t: 'end', pos: src.length, text: 'end of condition' });
  return out;
}

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): BoolExpr {
    const e = this.or();
    const t = this.peek();
    if (t.t !== 'end') throw this.unexpected(t, 'and, or, or the end');
    return e;
  }

  private peek(): Token {
    return this.tokens[this.i];
  }

  private next(): Token {
    return this.tokens[this.i++];
  }

  private isWord(t: Token, w: string): boolean {
    return t.t === 'ident' && t.value === w;
  }

  private isOp(t: Token, o: string): boolean {
    return t.t === 'op' && t.value === o;
  }

  private unexpected(t: Token, wanted: string): ConditionError {
    return new ConditionError(`expected ${wanted}, got ${t.t === 'end' ? t.text : JSON.stringify(t.text)}`, t.pos + 1);
  }

  private enter(t: Token): void {
    if (++this.depth > MAX_DEPTH) throw new ConditionError(`nested more than ${MAX_DEPTH} deep`, t.pos + 1);
  }

  private or(): BoolExpr {
    let left = this.and();
    for (let t = this.peek(); this.isWord(t, 'or') || this.isOp(t, '||'); t = this.peek()) {
      this.next();
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): BoolExpr {
    let left = this.not();
    for (let t = this.peek(); this.isWord(t, 'and') || this.isOp(t, '&&'); t = this.peek()) {
      this.next();
      left = { kind: 'and', left, right: this.not() };
    }
    return left;
  }

  private not(): BoolExpr {
    const t = this.peek();
    if (this.isWord(t, 'not') || this.isOp(t, '!')) {
      this.next();
      this.enter(t);
      const arg = this.not();
      this.depth--;
      return { kind: 'not', arg };
    }
    return this.comparison();
  }

  /** A comparison, `isNaN(…)`, or a parenthesised condition. */
  private comparison(): BoolExpr {
    const t = this.peek();
    if (this.isWord(t, 'isNaN')) {
      this.next();
      this.expectOp('(');
      const arg = this.num();
      this.expectOp(')');
      return { kind: 'isNaN', arg };
    }
    if (this.isOp(t, '(') && this.parenHoldsCondition()) {
      this.next();
      this.enter(t);
      const inner = this.or();
      this.depth--;
      this.expectOp(')');
      return inner;
    }
    const left = this.num();
    const opTok = this.next();
    if (opTok.t !== 'op' || !['<', '<=', '>', '>=', '==', '!='].includes(opTok.value)) {
      throw this.unexpected(opTok, 'a comparison (<, <=, >, >=, ==, !=)');
    }
    const right = this.num();
    const after = this.peek();
    if (after.t === 'op' && ['<', '<=', '>', '>=', '==', '!='].includes(after.value)) {
      throw new ConditionError('comparisons cannot be chained (write a < result and result < b)', after.pos + 1);
    }
    return { kind: 'cmp', op: opTok.value as CmpOp, left, right };
  }

  /**
   * At `(`: does it open a condition (`(result < 1 or …)`) or a number (`(result) < 1`)? Scan to the matching
   * `)` and look for a comparison or logical word at depth one; bounded by the token count.
   */
  private parenHoldsCondition(): boolean {
    let depth = 0;
    for (let k = this.i; k < this.tokens.length; k++) {
      const t = this.tokens[k];
      if (this.isOp(t, '(')) depth++;
      else if (this.isOp(t, ')')) {
        if (--depth === 0) return false;
      } else if (depth >= 1) {
        if (t.t === 'op' && ['<', '<=', '>', '>=', '==', '!=', '&&', '||', '!'].includes(t.value)) return true;
        if (t.t === 'ident' && ['and', 'or', 'not', 'isNaN'].includes(t.value)) return true;
      }
    }
    return false;
  }

  private expectOp(o: string): void {
    const t = this.next();
    if (!this.isOp(t, o)) throw this.unexpected(t, JSON.stringify(o));
  }

  private num(): NumExpr {
    const t = this.next();
    if (t.t === 'num') {
      if (!Number.isFinite(t.value)) throw new ConditionError(`number ${t.text} is out of range`, t.pos + 1);
      return { kind: 'num', value: t.value };
    }
    if (this.isWord(t, 'result')) {
      if (this.isOp(this.peek(), '[')) {
        this.next();
        const idx = this.next();
        if (idx.t !== 'num' || idx.value !== 0) throw this.unexpected(idx, '0 (only result[0] is supported)');
        this.expectOp(']');
      }
      return { kind: 'result' };
    }
    if (this.isOp(t, '-')) {
      this.enter(t);
      const arg = this.num();
      this.depth--;
      return { kind: 'neg', arg };
    }
    if (this.isOp(t, '(')) {
      this.enter(t);
      const inner = this.num();
      this.depth--;
      this.expectOp(')');
      return inner;
    }
    if (t.t === 'ident') {
      throw new ConditionError(`unknown name ${JSON.stringify(t.value)} (only result, isNaN, and, or, not)`, t.pos + 1);
    }
    throw this.unexpected(t, 'a number or result');
  }
}

function evalNum(e: NumExpr, result: number): number {
  switch (e.kind) {
    case 'num':
      return e.value;
    case 'result':
      return result;
    case 'neg':
      return -evalNum(e.arg, result);
  }
}

function evalBool(e: BoolExpr, result: number): boolean {
  switch (e.kind) {
    case 'isNaN':
      return Number.isNaN(evalNum(e.arg, result));
    case 'not':
      return !evalBool(e.arg, result);
    case 'and':
      return evalBool(e.left, result) && evalBool(e.right, result);
    case 'or':
      return evalBool(e.left, result) || evalBool(e.right, result);
    case 'cmp': {
      const a = evalNum(e.left, result);
      const b = evalNum(e.right, result);
      switch (e.op) {
        case '<':
          return a < b;
        case '<=':
          return a <= b;
        case '>':
          return a > b;
        case '>=':
          return a >= b;
        case '==':
          return a === b;
        case '!=':
          return a !== b;
      }
    }
  }
}

/** Parse `source`; throws ConditionError (one line, with the column) when it is not a valid condition. */
export function parseCondition(source: string): Condition {
  if (typeof source !== 'string') throw new ConditionError('expected a string', 1);
  if (source.length > MAX_CONDITION_LENGTH) {
    throw new ConditionError(`longer than ${MAX_CONDITION_LENGTH} characters`, MAX_CONDITION_LENGTH + 1);
  }
  if (source.trim() === '') throw new ConditionError('empty condition', 1);
  const tree = new Parser(tokenize(source)).parse();
  return { source, test: (result: number) => evalBool(tree, result) };
}
