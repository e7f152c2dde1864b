/** Entry point of the benchmark's own workflow bundle (the baselines). */
export { bareSignalWait, skeletonPromotion } from './skeleton.js';
