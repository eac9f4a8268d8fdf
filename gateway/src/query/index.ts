export { queryDevices, runQuery, prepareQuery } from "./run.js";
export type { QueryOptions, QueryResult, QuerySummary, SilentDevice } from "./run.js";
export { compileQuery, queryEnvironment, QueryExpressionError } from "./compile.js";
export type { Answer } from "./collect.js";
