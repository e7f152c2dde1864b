/** The negative control's build B: the same extra step without patched(), which running executions cannot replay. */
import { upgradeStepInterceptors } from './upgrade-step.js';

export const interceptors = () => upgradeStepInterceptors(false);
