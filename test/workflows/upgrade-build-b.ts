/** Workflow interceptor module of build B: the extra step, guarded by patched() as docs/operations.md requires. */
import { upgradeStepInterceptors } from './upgrade-step.js';

export const interceptors = () => upgradeStepInterceptors(true);
