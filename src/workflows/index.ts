/** Entry point of the workflow bundle: every workflow type the worker registers. */
export { modelLifecycle } from './lifecycle.js';
export { modelProductionLock } from './lock.js';
