// The generator: every manifest becomes a node whose form holds every input of the manifest,
// nothing lost (labels, bounds, required, advanced), and a new manifest needs one line.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import {
	credentialParameters,
	generate,
	loadManifests,
	missingNodeEntries,
	n8nDescription,
	nodeNames,
	toParameters,
} from '../scripts/generate.mjs';

const ROOT = new URL('../../../', import.meta.url).pathname;
const PKG = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const { connector, operations } = loadManifests(join(ROOT, 'manifests'));

const flat = (params) =>
	params.flatMap((p) => (p.type === 'collection' ? p.options : [p]));

test('every operation manifest becomes a node listed in package.json', () => {
	const files = generate({ connector, operations });
	assert.equal(Object.keys(files).filter((f) => f.endsWith('.node.ts')).length, operations.length);
	assert.deepEqual(missingNodeEntries(files, PKG), { missing: [], extra: [] });
});

test('the nodes are named as the issue asks', () => {
	const byKey = Object.fromEntries(operations.map((m) => [m.key, nodeNames(m)]));
	assert.equal(byKey.get_tiktok_user_following.defaultName, 'TikTok Get Following');
	assert.equal(byKey.new_account_followed.defaultName, 'TikTok New Account Followed');
	assert.equal(byKey.new_account_followed.className, 'TikTokNewAccountFollowedTrigger');
});

for (const manifest of operations) {
	test(`${manifest.key}: every input is a parameter, with its label, bounds and default`, () => {
		const [params, formFields] = toParameters(manifest.input);
		const all = flat(params);
		assert.deepEqual(all.map((p) => p.name).sort(), Object.keys(manifest.input.properties).sort());
		assert.ok(formFields.includes('handle'));
		for (const p of all) {
			const schema = manifest.input.properties[p.name];
			assert.equal(p.displayName.toLowerCase(), schema.title.toLowerCase());
			assert.equal(Boolean(p.required), (manifest.input.required ?? []).includes(p.name));
			if (schema.oneOf) {
				assert.equal(p.type, 'options');
				assert.deepEqual(p.options.map((o) => o.value).sort(), schema.oneOf.map((c) => c.const).sort());
				for (const o of p.options) {
					const choice = schema.oneOf.find((c) => c.const === o.value);
					assert.equal(o.name.toLowerCase(), choice.title.toLowerCase());
				}
			}
			if (schema.minimum !== undefined) assert.equal(p.typeOptions.minValue, schema.minimum);
			if (schema.maximum !== undefined) assert.equal(p.typeOptions.maxValue, schema.maximum);
			if ('default' in schema) assert.equal(p.default, schema.default);
			// Advanced fields, and optional ones without a default, are sent only once added.
			const onForm = formFields.includes(p.name);
			if (schema['x-advanced']) assert.equal(onForm, false, p.name);
		}
	});
}

test('the credentials carry the manifest auth fields, the key masked', () => {
	const params = credentialParameters(connector);
	const key = params.find((p) => p.name === 'apiKey');
	assert.deepEqual(key.typeOptions, { password: true });
	assert.equal(key.required, true);
	assert.equal(params.find((p) => p.name === 'baseUrl').default, connector.auth.properties.baseUrl.default);
	assert.deepEqual(params.map((p) => p.name), ['apiKey', 'baseUrl', 'serviceUrl', 'serviceToken']);
});

test('a new trigger manifest becomes a new node, and the one missing line is named', () => {
	const folder = mkdtempSync(join(tmpdir(), 'manifests-'));
	cpSync(join(ROOT, 'manifests'), folder, { recursive: true });
	const extra = JSON.parse(readFileSync(join(folder, 'new_account_followed.json'), 'utf8'));
	extra.key = 'account_renamed';
	extra.label = 'Account Renamed';
	writeFileSync(join(folder, 'account_renamed.json'), JSON.stringify(extra));
	const index = JSON.parse(readFileSync(join(folder, 'connector.json'), 'utf8'));
	index.operations.push('account_renamed');
	writeFileSync(join(folder, 'connector.json'), JSON.stringify(index));

	const files = generate(loadManifests(folder));
	const path = 'nodes/TikTokAccountRenamedTrigger/TikTokAccountRenamedTrigger.node.ts';
	assert.match(files[path], /async poll\(this: IPollFunctions\)/);
	assert.match(files[path], /const OPERATION = 'account_renamed';/);
	assert.match(files[path], /displayName: "TikTok Account Renamed Trigger"/);
	assert.deepEqual(missingNodeEntries(files, PKG), {
		missing: [`dist/${path.replace(/\.ts$/, '.js')}`],
		extra: [],
	});
});

test("descriptions follow n8n's period rule", () => {
	assert.equal(n8nDescription('One sentence.'), 'One sentence');
	assert.equal(n8nDescription('One. Two'), 'One. Two.');
	assert.equal(n8nDescription('  spaced   out  '), 'spaced out');
});
