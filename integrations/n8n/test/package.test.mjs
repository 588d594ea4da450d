// What n8n's community-node verification asks of the package: no runtime dependencies, no
// child_process, no environment or file access, every node and credential built and listed,
// with its icons; the package laid out as `npm create @n8n/node` lays one out, so
// `n8n-node lint` runs n8n's own rules (strict mode: the config is the default one).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

const PACKAGE = new URL('..', import.meta.url).pathname;
const PKG = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8'));

function builtFiles(dir = join(PACKAGE, 'dist')) {
	return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
		e.isDirectory() ? builtFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []);
}

test('the package has no runtime dependencies, only n8n-workflow as a peer', () => {
	assert.equal(PKG.dependencies, undefined);
	assert.deepEqual(Object.keys(PKG.peerDependencies), ['n8n-workflow']);
	assert.ok(PKG.keywords.includes('n8n-community-node-package'));
});

test('every listed node and credential is built, with its light and dark icon beside it', () => {
	for (const file of [...PKG.n8n.nodes, ...PKG.n8n.credentials]) {
		assert.ok(existsSync(join(PACKAGE, file)), file);
		for (const icon of ['tiktok.svg', 'tiktok.dark.svg']) {
			assert.ok(existsSync(join(PACKAGE, dirname(file), icon)), `${dirname(file)}/${icon}`);
		}
	}
});

test("the package is built and linted with n8n's own tool, in strict mode", () => {
	assert.equal(PKG.scripts.build, 'node scripts/generate.mjs && n8n-node build');
	assert.equal(PKG.scripts.lint, 'node scripts/generate.mjs && n8n-node lint');
	assert.equal(PKG.n8n.strict, true);
	assert.equal(readFileSync(join(PACKAGE, 'eslint.config.mjs'), 'utf8').replace(/\s+/g, ' ').trim(),
		"import { config } from '@n8n/node-cli/eslint'; export default config;");
	assert.match(PKG.devDependencies['n8n-workflow'], /^2\./);
	assert.match(PKG.author.email, /@/);
	assert.ok(new URL(PKG.homepage));
});

test('built code requires only n8n-workflow and its own files, and touches no env, file or process', () => {
	const files = builtFiles();
	assert.ok(files.length >= 5);
	for (const file of files) {
		const code = readFileSync(file, 'utf8');
		for (const [, name] of code.matchAll(/require\("([^"]+)"\)/g)) {
			assert.ok(name === 'n8n-workflow' || name.startsWith('.'), `${file} requires ${name}`);
		}
		assert.doesNotMatch(code, /process\.|child_process|\bfs\b|globalThis|eval\(/, file);
	}
});
