// The generator: every manifest becomes a node whose form holds every input of the manifest
// the user should choose, nothing lost (labels, bounds, required, advanced); n8n's own
// conventions where it has them (Return All / Limit, no cursor default, the request source set
// by the node); and a new manifest needs one line.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import {
	ACTION_PAGING,
	SET_BY_NODE,
	credentialParameters,
	generate,
	iconCopies,
	label,
	loadManifests,
	missingNodeEntries,
	n8nDescription,
	nodeNames,
	toParameters,
} from '../scripts/generate.mjs';

const ROOT = new URL('../../../', import.meta.url).pathname;
const PKG = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const { connector, operations } = loadManifests(join(ROOT, 'manifests'));
const ACTION = operations.find((m) => m.kind === 'action');
const TRIGGERS = operations.filter((m) => m.kind === 'trigger');

const flat = (params) => params.flatMap((p) => (p.type === 'collection' ? p.options : [p]));

test('every operation manifest becomes a node listed in package.json', () => {
	const files = generate({ connector, operations });
	assert.equal(Object.keys(files).filter((f) => f.endsWith('.node.ts')).length, operations.length);
	assert.deepEqual(missingNodeEntries(files, PKG), { missing: [], extra: [] });
});

test('the nodes are named as n8n names nodes', () => {
	const byKey = Object.fromEntries(operations.map((m) => [m.key, nodeNames(m)]));
	assert.equal(byKey.get_tiktok_user_following.defaultName, 'TikTok Get Following');
	assert.equal(byKey.new_account_followed.defaultName, 'TikTok New Account Followed');
	assert.equal(byKey.new_account_followed.className, 'TikTokNewAccountFollowedTrigger');
	assert.equal(byKey.account_unfollowed.displayName, 'TikTok Account Unfollowed Trigger');
});

for (const manifest of operations) {
	test(`${manifest.key}: every input a user chooses is a parameter, with its label, bounds and default`, () => {
		const { parameters, plan } = toParameters(manifest);
		const all = flat(parameters);
		const paging = manifest.kind === 'action' ? [ACTION_PAGING.pages, ACTION_PAGING.items] : [];
		const chosen = Object.keys(manifest.input.properties).filter(
			(name) => !SET_BY_NODE.has(name) && !paging.includes(name),
		);
		const own = manifest.kind === 'action' ? ['limit', 'returnAll'] : [];
		assert.deepEqual(all.map((p) => p.name).sort(), [...chosen, ...own].sort());
		assert.ok(plan.formFields.includes('handle'));
		for (const p of all.filter((q) => chosen.includes(q.name))) {
			const schema = manifest.input.properties[p.name];
			assert.equal(p.displayName.toLowerCase(), schema.title.toLowerCase());
			assert.equal(Boolean(p.required), (manifest.input.required ?? []).includes(p.name));
			if (schema.oneOf) {
				assert.equal(p.type, 'options');
				assert.deepEqual(p.options.map((o) => o.value).sort(), schema.oneOf.map((c) => c.const).sort());
			}
			// A cursor is text on the form (sent as a number): its bounds are the connector's to check.
			const bounded = !plan.cursorFields.includes(p.name);
			if (bounded && schema.minimum !== undefined) assert.equal(p.typeOptions.minValue, schema.minimum);
			if (bounded && schema.maximum !== undefined) assert.equal(p.typeOptions.maxValue, schema.maximum);
			if ('default' in schema) assert.equal(p.default, schema.default);
			// Advanced fields, and optional ones without a default, are sent only once added.
			if (schema['x-advanced']) assert.equal(plan.formFields.includes(p.name), false, p.name);
		}
	});

	test(`${manifest.key}: the request source is the node's (platform n8n), not a choice of DumplingAI's internal values`, () => {
		const names = flat(toParameters(manifest).parameters).map((p) => p.name);
		assert.equal(names.includes('requestSource'), false);
		const source = generate({ connector, operations: [manifest] });
		assert.doesNotMatch(Object.values(source).join('\n'), /N8n|AGENT_PREVIEW|PLAYGROUND/);
	});
}

test('the action pages as n8n nodes do: Return All, else a Limit shown only then', () => {
	const { parameters, plan } = toParameters(ACTION);
	const returnAll = parameters.find((p) => p.name === 'returnAll');
	const limit = parameters.find((p) => p.name === 'limit');
	assert.equal(returnAll.type, 'boolean');
	assert.equal(returnAll.default, false);
	assert.deepEqual(limit.displayOptions, { show: { returnAll: [false] } });
	assert.equal(limit.typeOptions.minValue, ACTION.input.properties.maxItems.minimum);
	assert.equal(plan.maxPages, ACTION.input.properties.maxPages.maximum);
	for (const name of ['maxPages', 'maxItems']) {
		assert.equal(flat(parameters).some((p) => p.name === name), false, name);
	}
});

test('the start cursor has no default that would read a wrong place in the list', () => {
	const { parameters, plan } = toParameters(ACTION);
	const cursor = flat(parameters).find((p) => p.name === 'minTime');
	assert.equal(cursor.type, 'string');
	assert.equal(cursor.default, '');
	assert.deepEqual(plan.cursorFields, ['minTime']);
	assert.match(cursor.description, /nextCursor/);
	// The manifest's example is a real cursor: milliseconds, about 1.8e12.
	assert.ok(ACTION.input.properties.minTime.examples[0] > 1e12);
});

test('triggers keep their page budget under Options and have no Return All', () => {
	for (const manifest of TRIGGERS) {
		const { parameters, plan } = toParameters(manifest);
		assert.equal(plan.maxPages, 0);
		assert.equal(parameters.some((p) => p.name === 'returnAll'), false);
		const options = parameters.find((p) => p.name === 'options').options.map((p) => p.name);
		assert.ok(options.includes('maxPages'));
	}
});

test('the generated nodes: light and dark icons, the main connection, a tool only for the action', () => {
	const files = generate({ connector, operations });
	for (const [path, text] of Object.entries(files).filter(([p]) => p.endsWith('.node.ts'))) {
		assert.match(text, /light: "file:tiktok\.svg",\n\s*dark: "file:tiktok\.dark\.svg"/, path);
		assert.match(text, /outputs: \[\n\s*NodeConnectionTypes\.Main\n\s*\]/, path);
		assert.doesNotMatch(text, /'main'|"main"/, path);
		assert.doesNotMatch(text, /testedBy|credentialTest/, path);
		const trigger = path.includes('Trigger');
		assert.equal(/usableAsTool: true/.test(text), !trigger, path);
		assert.equal(/inputs: \[\]/.test(text), trigger, path);
	}
	const credential = files['credentials/TikTokFollowingApi.credentials.ts'];
	assert.match(credential, /icon: Icon = \{\n\s*light: "file:tiktok\.svg",\n\s*dark: "file:tiktok\.dark\.svg"/);
	// The test n8n finds for a package in its custom folder is the credential's own.
	assert.match(credential, /\btest: ICredentialTestRequest/);
});

test('each node and the credential get both icons beside them', () => {
	const files = generate({ connector, operations });
	const copies = Object.keys(iconCopies(files)).sort();
	assert.equal(copies.length, 2 * Object.keys(files).length);
	assert.ok(copies.includes('credentials/tiktok.dark.svg'));
	assert.ok(copies.includes('nodes/TikTokGetFollowing/tiktok.svg'));
});

test('the credential carries the manifest auth fields, the key masked', () => {
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

test("descriptions follow n8n's period rule, labels its title case", () => {
	assert.equal(n8nDescription('One sentence.'), 'One sentence');
	assert.equal(n8nDescription('One. Two'), 'One. Two.');
	assert.equal(n8nDescription('  spaced   out  '), 'spaced out');
	assert.equal(label('page budget per poll'), 'Page Budget per Poll');
	assert.equal(label('n8n'), 'n8n');
});
