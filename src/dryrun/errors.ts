/** Why a dry run could not answer at all (anything else it can say goes into the report). */
export type DryRunErrorCode = 'invalid_input' | 'not_found' | 'invalid_policy' | 'no_policy' | 'not_configured' | 'unavailable';

export class DryRunError extends Error {
  override name = 'DryRunError';
  constructor(
    readonly code: DryRunErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** HTTP status of each code (the API's error style: `{ code, message }`). */
export const DRY_RUN_STATUS: Record<DryRunErrorCode, number> = {
  invalid_input: 400,
  not_found: 404,
  invalid_policy: 400,
  no_policy: 422,
  not_configured: 503,
  unavailable: 503,
};
