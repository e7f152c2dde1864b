/**
 * Which version of a model is Production, from the registry alone: the holder of the `production` alias, and
 * (while the registry serves stages) every version in MLflow stage Production.
 *
 * One get-registered-model gives the aliases and `latest_versions`, but `latest_versions` holds only the
 * newest version *per stage*: two versions in Production show as one. So when it shows any Production version,
 * the model's versions are searched for the rest; when it shows none, there are none and that one call is all.
 */
import { ALIAS } from './tags.js';
import type { MlflowRegistry, RegisteredModel } from './types.js';

export interface ProductionHolders {
  /** What serves: the alias holder, else the highest version in stage Production. */
  serving?: number;
  aliasHolder?: number;
  /** Versions in MLflow stage Production, ascending; empty without stages. */
  stageHolders: number[];
}

export type ProductionSource = Pick<MlflowRegistry, 'getRegisteredModel' | 'searchModelVersions'>;

const PAGE = 1000;

export function aliasHolder(rm: RegisteredModel, alias: string = ALIAS.production): number | undefined {
  return rm.aliases.find((a) => a.alias === alias)?.version;
}

export async function readProductionHolders(mlflow: ProductionSource, model: string, stagesServed: boolean): Promise<ProductionHolders> {
  const rm = await mlflow.getRegisteredModel(model);
  const holder = aliasHolder(rm);
  const stageHolders = stagesServed && rm.latest_versions.some((v) => v.current_stage === 'Production') ? await allInProduction(mlflow, model) : [];
  const serving = holder ?? stageHolders[stageHolders.length - 1];
  return { ...(serving !== undefined ? { serving } : {}), ...(holder !== undefined ? { aliasHolder: holder } : {}), stageHolders };
}

async function allInProduction(mlflow: ProductionSource, model: string): Promise<number[]> {
  const out: number[] = [];
  let pageToken: string | undefined;
  do {
    const page = await mlflow.searchModelVersions({ filter: `name=${literal(model)}`, maxResults: PAGE, pageToken });
    for (const v of page.items) if (v.name === model && v.current_stage === 'Production') out.push(v.version);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out.sort((a, b) => a - b);
}

/** MLflow's filter grammar has no escapes: a name is quoted with the quote it does not contain. */
function literal(value: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"')) return `"${value}"`;
  throw new Error(`model name ${JSON.stringify(value)} has quotes of both kinds; MLflow search cannot express it`);
}
