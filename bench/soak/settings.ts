/** The soak's settings from the environment: a bad value stops it with the key and the reason. */
import { randomInt } from 'node:crypto';

export interface SoakSettings {
  minutes: number;
  seed: number;
  models: number;
  killEverySec: number;
}

function num(env: NodeJS.ProcessEnv, key: string, fallback: number, ok: (n: number) => boolean, what: string): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || !ok(n)) throw new Error(`${key}: must be ${what} (got ${JSON.stringify(raw)})`);
  return n;
}

export function soakSettings(env: NodeJS.ProcessEnv): SoakSettings {
  return {
    // Bounded: at most a day, so a typo cannot make it run for ever.
    minutes: num(env, 'MODELGATE_SOAK_MINUTES', 10, (n) => n > 0 && n <= 1440, 'a number of minutes in (0, 1440]'),
    seed: num(env, 'MODELGATE_SOAK_SEED', randomInt(1, 2 ** 31), (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32, 'an integer in [0, 2^32)'),
    models: num(env, 'MODELGATE_SOAK_MODELS', 20, (n) => Number.isInteger(n) && n >= 1 && n <= 200, 'an integer in [1, 200]'),
    killEverySec: num(env, 'MODELGATE_SOAK_KILL_EVERY_S', 30, (n) => n >= 5, 'at least 5 seconds'),
  };
}
