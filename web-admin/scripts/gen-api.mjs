// Generates src/lib/api/schema.gen.ts from the broker's OpenAPI description
// (services/api/openapi.json) with openapi-typescript, and rewrites it only when it changed, so
// that running the tests does not make the console (and the binary embedding it) look stale.
import openapiTS, { astToString } from 'openapi-typescript';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const spec = join(web, '..', 'services', 'api', 'openapi.json');
const out = join(web, 'src', 'lib', 'api', 'schema.gen.ts');

const header = '// Generated from services/api/openapi.json by scripts/gen-api.mjs (npm run gen:api): do not edit.\n\n';
const text = header + astToString(await openapiTS(JSON.parse(readFileSync(spec, 'utf8'))));
if (!existsSync(out) || readFileSync(out, 'utf8') !== text) {
  writeFileSync(out, text);
  console.log('gen:api: src/lib/api/schema.gen.ts updated');
}
