// The manifests under a strict JSON-Schema validator (ajv strict mode, draft 2020-12), as any
// form builder in JavaScript would load them; and the handle pattern in an ECMA-262 engine.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

import { loadManifests } from '../scripts/generate.mjs';

const ROOT = new URL('../../../', import.meta.url).pathname;
const { connector, operations } = loadManifests(join(ROOT, 'manifests'));
const CORPUS = JSON.parse(readFileSync(join(ROOT, 'tests', 'data', 'handle_corpus.json'), 'utf8'));

function strictAjv({ declare = true } = {}) {
	// Union types (["string", "null"]) are part of the output schemas; everything else strict.
	const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
	addFormats(ajv);
	if (declare) ajv.addVocabulary(connector.vendorKeywords);
	return ajv;
}

test('every schema compiles in strict mode once the vendor keywords are declared', () => {
	const ajv = strictAjv();
	ajv.compile(connector.auth);
	for (const m of operations) {
		ajv.compile(m.input);
		ajv.compile(m.output);
	}
});

test('without declaring them, strict mode refuses the vendor keywords', () => {
	assert.throws(() => strictAjv({ declare: false }).compile(operations[0].input), /unknown keyword/);
});

test('each sample is valid against its output schema', () => {
	const ajv = strictAjv();
	for (const m of operations) {
		const validate = ajv.compile(m.output);
		assert.ok(validate(m.sample), `${m.key}: ${JSON.stringify(validate.errors)}`);
	}
});

test('the base URL must be a URI', () => {
	const validate = strictAjv().compile(connector.auth);
	assert.ok(validate({ apiKey: 'k', baseUrl: 'https://app.dumplingai.com' }));
	assert.equal(validate({ apiKey: 'k', baseUrl: 'not a url' }), false);
});

for (const m of operations.filter((o) => o.input.properties.handle)) {
	test(`${m.key}: the handle field accepts exactly what the connector accepts`, () => {
		const validate = strictAjv().compile(m.input.properties.handle);
		const wrong = CORPUS.cases.filter((c) => validate(c.value) !== c.accepted).map((c) => c.value);
		assert.deepEqual(wrong, []);
	});

	test(`${m.key}: a labelled choice refuses a value outside it`, () => {
		const validate = strictAjv().compile(m.input);
		assert.equal(validate({ handle: 'a', requestSource: 'NOPE' }), false);
		assert.ok(validate({ handle: 'a', requestSource: 'N8N' }));
	});
}
