/** JSON schemas shared by the v1 routes: a model version's route parameters. */
export const keyParams = {
  type: 'object',
  required: ['model', 'version'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
  },
} as const;
