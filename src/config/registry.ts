/**
 * Settings of the MLflow registry as modelgate writes to it (worker side). Parsed with parseEnv so a bad value
 * stops the process with the key and the reason.
 */
import { z } from 'zod';
import { parseEnv } from '../config.js';

export type StagesMode = 'auto' | 'on' | 'off';

const shape = {
  /**
   * Whether the registry serves model-version stages (transition-stage). `off`: never transition; Production
   * lives in the `production` alias and `modelgate.stage` tags. `auto`: transition until the server refuses
   * the way a stage-less registry does, then behave as `off` for the rest of the process.
   */
  MODELGATE_REGISTRY_STAGES: z.enum(['auto', 'on', 'off']).default('auto'),
};

export interface RegistryConfig {
  stages: StagesMode;
}

export function loadRegistryConfig(env: NodeJS.ProcessEnv = process.env): RegistryConfig {
  const c = parseEnv(shape, env);
  return { stages: c.MODELGATE_REGISTRY_STAGES };
}
