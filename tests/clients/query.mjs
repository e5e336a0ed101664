// Open a DuckDB file read-only with @duckdb/node-api (the driver of Node-based BI tools) and
// print the rows of one query as JSON: node query.mjs FILE SQL
import { DuckDBInstance } from '@duckdb/node-api';

const [file, sql] = process.argv.slice(2);
const instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
const connection = await instance.connect();
const reader = await connection.runAndReadAll(sql);
console.log(JSON.stringify(reader.getRowObjectsJson()));
