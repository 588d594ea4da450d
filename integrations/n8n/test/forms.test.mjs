// The operation manifests as a JSON-Schema form library draws them: @rjsf (react-jsonschema-
// form), with its default settings. An untouched form must submit only the defaults the
// manifests declare; in particular no requestSource, so the platform decides it (a oneOf of
// labelled consts was preselected and sent "API" over the platform from every form).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { getDefaultFormState } from '@rjsf/utils';
import { customizeValidator } from '@rjsf/validator-ajv8';
import Ajv2020 from 'ajv/dist/2020.js';

import { loadManifests } from '../scripts/generate.mjs';

const ROOT = new URL('../../../', import.meta.url).pathname;
const { connector, operations } = loadManifests(join(ROOT, 'manifests'));
// @rjsf's validator for draft 2020-12 schemas, told the manifests' vendor keywords.
const validator = customizeValidator({
	AjvClass: Ajv2020,
	ajvOptionsOverrides: { keywords: connector.vendorKeywords },
});

function untouched(schema) {
	return getDefaultFormState(validator, schema, {}, schema);
}

test('an untouched form submits only the defaults its manifest declares', () => {
	for (const m of operations) {
		const declared = Object.fromEntries(
			Object.entries(m.input.properties)
				.filter(([, prop]) => 'default' in prop)
				.map(([name, prop]) => [name, prop.default]),
		);
		assert.deepEqual(untouched(m.input), declared, m.key);
	}
});

test('an untouched form sends no requestSource, so the platform decides it', () => {
	for (const m of operations) {
		assert.ok('requestSource' in m.input.properties, m.key);
		assert.equal('requestSource' in untouched(m.input), false, m.key);
	}
});

test('the check above sees a choice written as a oneOf of consts preselected', () => {
	const schema = {
		type: 'object',
		properties: {
			requestSource: {
				type: 'string',
				oneOf: [
					{ const: 'API', title: 'API' },
					{ const: 'N8N', title: 'n8n' },
				],
			},
		},
	};
	assert.deepEqual(untouched(schema), { requestSource: 'API' });
});
